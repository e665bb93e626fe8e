"""`tinyc run` and `tinyc validate`: build when missing or stale, start the board, stream."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.pipeline import load_manifest, update_manifest
from tinyc.runners import open_session
from tinyc.samples import float_input_ranges, from_record, load_inputs, random_inputs, to_record
from tinyc.validate import validate


def _board_for(outdir: Path, board_name: str | None):
    manifest = load_manifest(outdir)
    return load_board(board_name or manifest.get("board") or "host"), manifest


def ensure_built(outdir: Path, board) -> None:
    result = build(outdir, board)
    update_manifest(outdir, code_bytes=result.code_bytes, build={board.name: {
        "code_bytes": result.code_bytes, "weight_bytes_linked": result.weight_bytes, "ram_bytes": result.ram_bytes}})


def _session_options(port):
    return {"port": port} if port else {}


def run_samples(outdir: Path, board_name: str | None, input_path: Path, port: str | None = None):
    board, manifest = _board_for(outdir, board_name)
    samples = load_inputs(input_path, manifest["inputs"])
    ensure_built(outdir, board)
    outs, cycles, unit = [], [], ""
    with open_session(board, outdir, **_session_options(port)) as session:
        for s in samples:
            r = session.infer(to_record(s))
            outs.append(from_record(r.output, manifest["outputs"]))
            if r.cycles is not None:
                cycles.append(r.cycles)
                unit = r.cycle_unit
    if len(manifest["outputs"]) != 1:
        raise TinycError("the model has several outputs; `tinyc run` writes single-output models only")
    arr = np.stack([o[0] for o in outs])  # [N, *output_shape]
    return arr, {"board": board.name, "mean": float(np.mean(cycles)) if cycles else None, "unit": unit}


def validate_outdir(outdir, board_name, input_path, labels_path, n_random, seed, report, port, progress_echo=None):
    board, manifest = _board_for(outdir, board_name)
    samples = []
    if input_path is not None:
        samples += load_inputs(input_path, manifest["inputs"])
    if n_random or input_path is None:
        graph = load_tflite(Path(outdir) / "model.tflite")
        samples += random_inputs(manifest["inputs"], n_random if n_random is not None else 100, seed=seed,
                                 float_ranges=float_input_ranges(graph))
    labels = None
    if labels_path is not None:
        labels = np.load(labels_path).reshape(-1)
        if input_path is None or len(labels) != len(samples) - (n_random or 0):
            raise TinycError(f"--labels has {len(labels)} entries; give one per --input sample")
    ensure_built(outdir, board)
    total = len(samples)
    done = [0]

    def progress(k):
        done[0] += k
        if progress_echo and (done[0] == total or done[0] % max(1, total // 20) == 0):
            width = 30
            filled = width * done[0] // total
            progress_echo(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done[0]}/{total} samples"
                          + ("\n" if done[0] == total else ""))

    summary = validate(outdir, board, samples, labels=labels, report=report, progress=progress,
                       session_options=_session_options(port))
    return summary, board.name, total
