"""`tinyc run`: OUTDIR's model on a board for every sample of the input files (a .npy, a .npz
with an array per input, or a .npy per input), built when missing or stale."""

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


def run_samples(outdir: Path, board_name: str | None, input_path, port: str | None = None,
                progress: Progress | None = None, *, output_path: Path | None = None, timeout: float | None = None,
                baud: int | None = None):
    """input_path: one path or a list (see samples.load_inputs). Returns ({output name:
    [N, *output_shape]} in output order, {"board", "mean" cycles or None, "unit", "link"}).

    output_path (where the caller will write the outputs) is checked before any work: a
    model with several outputs needs a .npz."""
    if output_path is not None:
        check_writable_file(output_path, "--output")
    manifest = load_manifest(outdir)
    board = load_board(board_name or manifest.board or "host")
    options = session_options(board, port=port, baud=baud, timeout=timeout)
    if output_path is not None and Path(output_path).suffix != ".npz" and len(manifest.outputs) > 1:
        raise TinycError(f"the model has several outputs; give --output {Path(output_path).with_suffix('.npz')} "
                         "(one array per output name)")
    samples = load_inputs(input_path, manifest.inputs)
    _, manifest = build_and_record(outdir, board, manifest)
    with open_session(board, outdir, manifest=manifest, **options) as session:
        results = session.infer_many([to_record(s) for s in samples], progress=progress, stage="run")
        link = getattr(session, "link_stats", None)
    outs = [from_record(r.output, manifest.outputs) for r in results]
    cycles = [r.cycles for r in results if r.cycles is not None]
    unit = next((r.cycle_unit for r in reversed(results) if r.cycles is not None), "")
    arrays = {}
    for k, t in enumerate(manifest.outputs):
        name = t.name if t.name not in arrays else f"output{k}"  # a tensor listed twice keeps both
        arrays[name] = np.stack([o[k] for o in outs]) if outs else np.zeros((0, *t.shape), dtype=t.dtype)
    return arrays, {"board": board.name, "mean": float(np.mean(cycles)) if cycles else None, "unit": unit,
                    "link": link}


def save_outputs(path: Path, outputs: dict[str, np.ndarray]) -> None:
    """The outputs at `path`, written atomically: a .npz with an array per output name, or
    a .npy of the only output."""
    path = Path(path)

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            if path.suffix == ".npz":
                np.savez(fh, **outputs)
            else:
                (only,) = outputs.values()
                np.save(fh, only)
    write_atomically(path, write)
