"""Accuracy of a converted model: the float model, the int8 reference (LiteRT BUILTIN_REF on
OUTDIR/model.tflite) and the generated C run on a board, side by side (`tinyc convert --eval`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.progress import Progress, report
from tinyc.quant_math import dequantize_array
from tinyc.quantize.calibration import load_samples
from tinyc.quantize.prepare import PreparedModel
from tinyc.quantize.sqnr import as_input, interpreter
from tinyc.reference import reference_outputs
from tinyc.runners import open_session
from tinyc.samples import to_record


def labelled_samples(data_npz, input_shape) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    p = Path(data_npz)
    if not p.is_file():
        raise TinycError(f"evaluation data {p}: no such file")
    if p.suffix.lower() != ".npz":
        raise TinycError(f"evaluation data {p} must be a .npz with arrays 'x' (samples) and 'y' (labels)")
    x, warnings = load_samples(p, input_shape, what="evaluation data")
    with np.load(p, allow_pickle=False) as z:
        y = z["y"] if "y" in z.files else None
    if y is not None:
        y = np.asarray(y).reshape(len(y), -1) if np.asarray(y).ndim > 1 else np.asarray(y)
        if len(y) != len(x):
            raise TinycError(f"evaluation data {p.name} has {len(x)} samples but {len(y)} labels")
        if y.ndim > 1 and y.shape[1] > 1:
            y = np.argmax(y, axis=1)  # one-hot labels
        y = y.reshape(-1).astype(np.int64)
    return x, y, warnings


def _detail(graph, t: int) -> dict:
    """An interpreter-style tensor detail read from the graph (no interpreter in this process)."""
    tensor = graph.tensors[t]
    q = tensor.quant
    return {"shape": tuple(tensor.shape), "dtype": np.dtype(tensor.dtype),
            "quantization": (float(q.scale[0]), int(q.zero_point[0])) if q is not None else (0.0, 0)}


def evaluate(prepared: PreparedModel | None, outdir, data_npz, board: str = "host",
             progress: Progress | None = None) -> dict:
    """Accuracy (with labels `y`) and agreement of the float model, the int8 reference
    (LiteRT BUILTIN_REF on OUTDIR/model.tflite) and the generated C run on `board`.

    Returns {"samples", "float": {...}, "int8_reference": {...}, "c": {...}, "c_vs_reference":
    {"bytes_equal": share of samples whose output bytes equal the reference, "mismatches": n}}.
    """
    outdir = Path(outdir)
    model_path = outdir / "model.tflite"
    if not model_path.is_file():
        raise TinycError(f"{outdir} has no model.tflite: run tinyc convert first")
    int8_bytes = model_path.read_bytes()
    graph = load_tflite(model_path)
    in_d, out_d = _detail(graph, graph.inputs[0]), _detail(graph, graph.outputs[0])
    in_shape = tuple(int(d) for d in in_d["shape"])
    x, y, warnings = labelled_samples(data_npz, in_shape)
    n = len(x)

    def out_float(raw: np.ndarray) -> np.ndarray:
        if out_d["dtype"] == np.float32:
            return raw.astype(np.float32).reshape(-1)
        scale, zp = out_d["quantization"]
        return dequantize_array(raw, scale, zp).reshape(-1)

    # float model
    float_out = None
    fm = prepared.float_model if prepared is not None else None
    if fm is not None:
        it = interpreter(fm.tflite, reference=False, preserve=False)
        fi, fo = it.get_input_details()[0], it.get_output_details()[0]
        float_out = []
        for k in range(n):
            it.set_tensor(fi["index"], as_input(fi, x[k]))
            it.invoke()
            float_out.append(it.get_tensor(fo["index"]).astype(np.float32).reshape(-1))
            report(progress, "eval float", k + 1, n)
        float_out = np.stack(float_out)

    # int8 reference
    inputs = [as_input(in_d, x[k]) for k in range(n)]
    report(progress, "eval int8 reference", 0, n)
    ref_raw = [outs[0] for outs in reference_outputs(int8_bytes, [[i] for i in inputs])]
    report(progress, "eval int8 reference", n, n)
    ref_out = np.stack([out_float(r) for r in ref_raw])

    # generated C on the board
    c_raw = _run_c(outdir, board, inputs, out_d, progress)
    c_out = np.stack([out_float(r) for r in c_raw])
    mismatches = sum(1 for a, b in zip(ref_raw, c_raw) if a.tobytes() != b.tobytes())

    def summary(outputs: np.ndarray | None) -> dict | None:
        if outputs is None:
            return None
        d: dict = {"samples": int(len(outputs))}
        if y is not None and outputs.shape[1] > 1:
            d["accuracy"] = float(np.mean(np.argmax(outputs, axis=1) == y))
        return d

    result = {
        "samples": n,
        "labels": y is not None,
        "float": summary(float_out),
        "int8_reference": summary(ref_out),
        "c": summary(c_out),
        "c_vs_reference": {"bit_exact": mismatches == 0, "mismatched_samples": int(mismatches)},
        "warnings": warnings,
    }
    if float_out is not None:
        result["int8_vs_float"] = {
            "top1_agreement": float(np.mean(np.argmax(ref_out, 1) == np.argmax(float_out, 1)))
            if ref_out.shape[1] > 1 else None,
            "max_abs_error": float(np.max(np.abs(ref_out - float_out))),
        }
    return result


def _run_c(outdir: Path, board_name: str, inputs: list[np.ndarray], out_d: dict,
           progress: Progress | None) -> list[np.ndarray]:
    """Build OUTDIR for `board_name` if needed and run every input through the generated C."""
    board = load_board(board_name)
    build(outdir, board)
    records = [to_record([i]) for i in inputs]
    dtype = out_d["dtype"]
    shape = tuple(out_d["shape"])
    with open_session(board, outdir) as session:
        results = session.infer_many(records, progress=progress, stage="eval C")
    return [np.frombuffer(r.output, dtype=dtype).reshape(shape) for r in results]
