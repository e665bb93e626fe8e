"""`tinyc run`: OUTDIR's model on a board for every sample of the input files (a .npy, a .npz
with an array per input, or a .npy per input), built when missing or stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build_and_record
from tinyc.outdir import load_manifest
from tinyc.progress import Progress
from tinyc.runners import open_session
from tinyc.samples import from_record, load_inputs, to_record


def run_samples(outdir: Path, board_name: str | None, input_path, port: str | None = None,
                progress: Progress | None = None):
    """input_path: one path or a list (see samples.load_inputs). Returns ({output name:
    [N, *output_shape]} in output order, {"board", "mean" cycles or None, "unit"})."""
    manifest = load_manifest(outdir)
    board = load_board(board_name or manifest.board or "host")
    samples = load_inputs(input_path, manifest.inputs)
    _, manifest = build_and_record(outdir, board, manifest)
    with open_session(board, outdir, manifest=manifest, **({"port": port} if port else {})) as session:
        results = session.infer_many([to_record(s) for s in samples], progress=progress, stage="run")
    outs = [from_record(r.output, manifest.outputs) for r in results]
    cycles = [r.cycles for r in results if r.cycles is not None]
    unit = next((r.cycle_unit for r in reversed(results) if r.cycles is not None), "")
    arrays = {}
    for k, t in enumerate(manifest.outputs):
        name = t.name if t.name not in arrays else f"output{k}"  # a tensor listed twice keeps both
        arrays[name] = np.stack([o[k] for o in outs]) if outs else np.zeros((0, *t.shape), dtype=t.dtype)
    return arrays, {"board": board.name, "mean": float(np.mean(cycles)) if cycles else None, "unit": unit}
