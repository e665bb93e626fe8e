"""`tinyc run`: OUTDIR's model on a board for every sample of a .npy (built when missing or stale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build_and_record
from tinyc.errors import TinycError
from tinyc.outdir import load_manifest
from tinyc.paths import check_writable_file, write_atomically
from tinyc.progress import Progress
from tinyc.runners import open_session, session_options
from tinyc.samples import from_record, load_inputs, to_record


def run_samples(outdir: Path, board_name: str | None, input_path: Path, port: str | None = None,
                progress: Progress | None = None, *, output_path: Path | None = None, timeout: float | None = None,
                baud: int | None = None):
    """Returns ([N, *output_shape] outputs, {"board", "mean" cycles or None, "unit", "link"}).

    output_path (where the caller will write the outputs) is checked before any work."""
    if output_path is not None:
        check_writable_file(output_path, "--output")
    manifest = load_manifest(outdir)
    board = load_board(board_name or manifest.board or "host")
    options = session_options(board, port=port, baud=baud, timeout=timeout)
    if len(manifest.outputs) != 1:
        raise TinycError("the model has several outputs; `tinyc run` writes single-output models only")
    samples = load_inputs(input_path, manifest.inputs)
    _, manifest = build_and_record(outdir, board, manifest)
    with open_session(board, outdir, manifest=manifest, **options) as session:
        results = session.infer_many([to_record(s) for s in samples], progress=progress, stage="run")
        link = getattr(session, "link_stats", None)
    outs = [from_record(r.output, manifest.outputs) for r in results]
    cycles = [r.cycles for r in results if r.cycles is not None]
    unit = next((r.cycle_unit for r in reversed(results) if r.cycles is not None), "")
    arr = np.stack([o[0] for o in outs])  # [N, *output_shape]
    return arr, {"board": board.name, "mean": float(np.mean(cycles)) if cycles else None, "unit": unit,
                 "link": link}


def save_outputs(path: Path, outputs: np.ndarray) -> None:
    """The outputs as a .npy at `path`, written atomically."""
    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.save(fh, outputs)
    write_atomically(path, write)
