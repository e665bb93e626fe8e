"""Float models in (Keras 3 .keras/.h5/SavedModel, float .tflite), a full-int8 .tflite out.

    prepared = prepare_int8(path, calib="calib.npz")   # -> PreparedModel
    prepared.tflite          # the int8 flatbuffer tinyc compiles
    prepared.report          # per-layer quantization report (tinyc/qreport.py)
    evaluate(prepared, outdir, "test.npz")   # float / int8 reference / generated C accuracy

Keras models go through tf.lite.TFLiteConverter (tinyc/frontend/keras.py); float .tflite
files through TensorFlow's calibrator and MLIR quantizer (tinyc/frontend/float_tflite.py),
the same two steps the converter runs. int8 .tflite files pass through unchanged.

Nothing here prints; `progress(stage, done, total)` is called during calibration, the report
and evaluation so that the CLI can show progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinyc.errors import TinycError
from tinyc.frontend import float_tflite as ft
from tinyc.frontend import keras as kf

Progress = Callable[[str, int, int], None]


def progress_adapter(progress) -> Progress | None:
    """Accept progress(stage, done, total), or a one-argument text sink such as click.echo.

    A text sink gets one line per stage when it completes (not one per sample).
    """
    if progress is None:
        return None
    import inspect

    try:
        params = [p for p in inspect.signature(progress).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        three = len(params) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(progress).parameters.values())
    except (TypeError, ValueError):
        three = True
    if three:
        return progress

    def text(stage: str, done: int, total: int) -> None:
        if done == total:
            progress(f"{stage}: {total} samples done")
    return text
REPORT_SAMPLES = 64  # samples of the calibration data used by the per-layer report


@dataclass
class FloatModel:
    """The float model as TFLite runs it, kept for --eval and the per-layer report."""

    tflite: bytes            # float32 flatbuffer (the converter's output for Keras models)
    input_shape: tuple       # with batch 1
    source: str
    kind: str                # "keras", "saved_model" or "tflite"
    calib: np.ndarray | None = None   # calibration samples, float32, (N, *input_shape[1:])


@dataclass
class PreparedModel:
    tflite: bytes            # the full-int8 flatbuffer tinyc compiles
    float_model: object      # FloatModel, or None for an int8 input
    report: dict | None      # per-layer quantization report (JSON-able), None for int8 input
    warnings: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- model kinds

def is_float_model(path) -> bool:
    """True for Keras models and float .tflite files (they need calibration data)."""
    p = Path(path)
    if kf.is_keras_path(p):
        return True
    if p.is_dir():
        raise TinycError(f"{p} is a folder but not a SavedModel (no saved_model.pb)")
    if not p.is_file():
        raise TinycError(f"{p}: no such file")
    if p.suffix.lower() != ".tflite":
        with p.open("rb") as fh:
            head = fh.read(8)
        if head[4:8] != b"TFL3":
            raise TinycError(f"{p}: unknown model format; tinyc reads .tflite, .keras, .h5 and SavedModel folders")
    model = ft.read_model(p.read_bytes(), str(p))
    return ft.classify(model) in ("float", "hybrid")


# ----------------------------------------------------------------------------- calibration data

def load_samples(path, input_shape: tuple, what: str = "calibration data", key: str = "x") -> tuple[np.ndarray, list[str]]:
    """Float32 samples shaped (N, *input_shape[1:]) from a .npy, or a .npz holding `key`."""
    p = Path(path)
    if not p.is_file():
        raise TinycError(f"{what} {p}: no such file")
    try:
        loaded = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise TinycError(f"{what} {p} cannot be read without pickle ({str(e).splitlines()[0][:120]}); save plain "
                         "numeric arrays with np.save / np.savez") from None
    except Exception as e:
        raise TinycError(f"{what} {p} is not a .npy or .npz file ({type(e).__name__})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = list(loaded.files)
            if not names:
                raise TinycError(f"{what} {p} is an empty .npz; save the samples with np.savez(path, {key}=samples)")
            if key not in names:
                raise TinycError(f"{what} {p} has no array '{key}' (it has: {', '.join(names)}); "
                                 f"save the samples with np.savez(path, {key}=samples)")
            x = loaded[key]
    else:
        x = loaded
    return check_samples(x, input_shape, f"{what} {p.name}")


def check_samples(x: np.ndarray, input_shape: tuple, what: str) -> tuple[np.ndarray, list[str]]:
    """Validate dtype, shape and values; returns (float32 samples, warnings)."""
    warnings: list[str] = []
    x = np.asarray(x)
    want = tuple(int(d) for d in input_shape[1:])
    if x.dtype.kind not in "fiu":
        raise TinycError(f"{what} has dtype {x.dtype}, the model input is float32: give numeric samples")
    if x.dtype.kind in "iu":
        warnings.append(f"{what} is {x.dtype}; its values are used as float32")
    if x.size == 0 or x.ndim == 0:
        raise TinycError(f"{what} holds no samples (shape {x.shape}); give an array of shape (N, {_dims(want)})")
    shape = tuple(x.shape)
    if shape[1:] == want:
        pass
    elif shape == tuple(input_shape) and len(input_shape) > len(want):
        pass  # one sample with its batch dimension
    elif shape[1:] == tuple(input_shape):
        x = x.reshape((shape[0],) + want)  # (N, 1, ...) samples with a batch dimension each
    elif shape == want:
        x = x.reshape((1,) + want)
        warnings.append(f"{what} is one sample of shape {shape}; calibrating with 1 sample")
    elif _squeezed(shape[1:]) == _squeezed(want) and int(np.prod(shape[1:])) == int(np.prod(want)):
        x = x.reshape((shape[0],) + want)
        warnings.append(f"{what} samples of shape {shape[1:]} reshaped to the model input {want}")
    else:
        raise TinycError(f"{what} has samples of shape {shape[1:]} (array {shape}) but the model input is "
                         f"{tuple(input_shape)}: give an array of shape (N, {_dims(want)})")
    x = x.reshape((-1,) + want)
    xf = x.astype(np.float32)
    bad = ~np.isfinite(xf)
    if bad.any():
        first = int(np.argmax(bad.reshape(len(xf), -1).any(axis=1)))
        raise TinycError(f"{what} has {int(bad.sum())} NaN/Inf values (first in sample {first}); "
                         "clean or drop those samples")
    return xf, warnings


def _dims(shape: tuple) -> str:
    return ", ".join(str(d) for d in shape)


def _squeezed(shape) -> tuple:
    return tuple(d for d in shape if d != 1)


def random_samples(n: int, input_shape: tuple, seed: int = 0) -> np.ndarray:
    """`--calib-random N`: uniform samples in [0, 1) for smoke tests only (scales meaningless)."""
    if n <= 0:
        raise TinycError("--calib-random needs a positive number of samples")
    rng = np.random.default_rng(seed)
    return rng.random((n,) + tuple(input_shape[1:]), dtype=np.float32)


def _representative(samples: np.ndarray, progress: Progress | None):
    def gen():
        n = len(samples)
        for k in range(n):
            yield [samples[k:k + 1]]
            if progress:
                kf.uncaptured(progress, "calibrate", k + 1, n)
    return gen


# ----------------------------------------------------------------------------- main entry

def prepare_int8(path, *, calib=None, calib_random=None, per_tensor: bool = False, io: str = "int8",
                 progress: Progress | None = None) -> PreparedModel:
    """Turn a model file into a full-int8 .tflite (bytes) plus the per-layer report.

    calib: path of a .npy (samples) or .npz (array `x`), or an array of samples.
    calib_random: number of random samples, for smoke tests only.
    per_tensor: per-tensor weight scales instead of per-channel.
    io: "int8" (int8 input/output) or "float" (float32 I/O, QUANTIZE/DEQUANTIZE at the edges).
    """
    if io not in ("int8", "float"):
        raise TinycError(f"--io must be 'int8' or 'float', not '{io}'")
    progress = progress_adapter(progress)
    path = Path(path)
    warnings: list[str] = []
    if not is_float_model(path):
        if calib is not None or calib_random:
            warnings.append(f"{path.name} is already int8: calibration data ignored")
        if io == "float" or per_tensor:
            warnings.append(f"{path.name} is already int8: --io/--per-tensor apply to float models only")
        return PreparedModel(ft.load_bytes(path), None, None, warnings)

    if calib is None and not calib_random:
        raise TinycError(
            f"{path.name} is a float model: int8 quantization needs calibration data to choose each tensor's "
            "range; give --calib DATA (.npy samples or .npz with 'x'), or --calib-random N for a smoke test")
    if calib is not None and calib_random:
        raise TinycError("give either --calib or --calib-random, not both")

    # 1. the float model as TFLite sees it (and its input shape)
    if kf.is_keras_path(path):
        if path.is_dir():
            kind, keras_model = "saved_model", None
            float_bytes = kf.convert_float(path)
        else:
            kind = "keras"
            keras_model = kf.load_keras(path)
            kf.check_keras_model(keras_model)
            float_bytes = kf.convert_float(keras_model)
    else:
        kind, keras_model = "tflite", None
        float_bytes = ft.load_bytes(path)
    ft.check_float_model(float_bytes, str(path.name))
    in_shape = ft.float_input_shape(ft.read_model(float_bytes))

    # 2. calibration samples
    trustworthy = True
    if calib_random:
        samples = random_samples(int(calib_random), in_shape)
        trustworthy = False
        warnings.append(f"calibrated on {int(calib_random)} random samples: scales are NOT trustworthy "
                        "(smoke test only); use --calib DATA for a real model")
    elif isinstance(calib, (str, Path)):
        samples, w = load_samples(calib, in_shape)
        warnings += w
    else:
        samples, w = check_samples(np.asarray(calib), in_shape, "calibration data")
        warnings += w
    if len(samples) < 10:
        warnings.append(f"only {len(samples)} calibration samples; ranges may not cover real inputs "
                        "(a few hundred are typical)")

    # 3. quantize
    rep = _representative(samples, progress)
    if kind == "keras":
        int8_bytes = kf.convert_int8(keras_model, rep, per_tensor=per_tensor, io=io)
    elif kind == "saved_model":
        int8_bytes = kf.convert_int8(path, rep, per_tensor=per_tensor, io=io)
    else:
        int8_bytes = ft.quantize_float_tflite(float_bytes, rep, per_tensor=per_tensor, io=io)
    ft.check_full_int8(int8_bytes, f"{path.name} after quantization")

    fm = FloatModel(float_bytes, in_shape, str(path), kind, samples)
    # 4. per-layer report on (part of) the calibration data
    from tinyc.qreport import layer_report
    report = layer_report(float_bytes, int8_bytes, samples, max_samples=REPORT_SAMPLES,
                          trustworthy=trustworthy, progress=progress)
    report.update({"source": str(path), "source_kind": kind, "calibration_samples": int(len(samples)),
                   "calibration": "random" if calib_random else "data", "per_channel": not per_tensor, "io": io})
    return PreparedModel(int8_bytes, fm, report, warnings)


# ----------------------------------------------------------------------------- evaluation

def _labels_and_samples(data_npz, input_shape) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
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


def evaluate(prepared: PreparedModel, outdir, data_npz, board: str = "host",
             progress: Progress | None = None) -> dict:
    """Accuracy (with labels `y`) and agreement of the float model, the int8 reference
    (LiteRT BUILTIN_REF on OUTDIR/model.tflite) and the generated C run on `board`.

    Returns {"samples", "float": {...}, "int8_reference": {...}, "c": {...}, "c_vs_reference":
    {"bytes_equal": share of samples whose output bytes equal the reference, "mismatches": n}}.
    """
    from tinyc.qreport import _interpreter, as_input
    from tinyc.reference import Reference

    progress = progress_adapter(progress)
    outdir = Path(outdir)
    model_path = outdir / "model.tflite"
    if not model_path.is_file():
        raise TinycError(f"{outdir} has no model.tflite: run tinyc convert first")
    int8_bytes = model_path.read_bytes()
    ref = Reference(int8_bytes)
    in_d, out_d = ref.inputs[0], ref.outputs[0]
    in_shape = tuple(int(d) for d in in_d["shape"])
    x, y, warnings = _labels_and_samples(data_npz, in_shape)
    n = len(x)

    def out_float(raw: np.ndarray) -> np.ndarray:
        if out_d["dtype"] == np.float32:
            return raw.astype(np.float32).reshape(-1)
        from tinyc.passes.quantize import dequantize_array
        scale, zp = out_d["quantization"]
        return dequantize_array(raw, scale, zp).reshape(-1)

    # float model
    float_out = None
    fm = prepared.float_model if prepared is not None else None
    if fm is not None:
        it = _interpreter(fm.tflite, reference=False, preserve=False)
        fi, fo = it.get_input_details()[0], it.get_output_details()[0]
        float_out = []
        for k in range(n):
            it.set_tensor(fi["index"], as_input(fi, x[k]))
            it.invoke()
            float_out.append(it.get_tensor(fo["index"]).astype(np.float32).reshape(-1))
            if progress:
                progress("eval float", k + 1, n)
        float_out = np.stack(float_out)

    # int8 reference
    ref_raw, inputs = [], []
    for k in range(n):
        inp = as_input(in_d, x[k])
        inputs.append(inp)
        ref_raw.append(ref.run(inp)[0])
        if progress:
            progress("eval int8 reference", k + 1, n)
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


def _run_c(outdir: Path, board_name: str, inputs: list[np.ndarray], out_d: dict, progress) -> list[np.ndarray]:
    """Build OUTDIR for `board_name` if needed and run every input through the generated C."""
    from tinyc import boards as _boards
    from tinyc.build import build
    from tinyc.runners import open_session
    from tinyc.samples import to_record

    board = _boards.load_board(board_name)
    build(outdir, board)
    records = [to_record([i]) for i in inputs]
    dtype = out_d["dtype"]
    shape = tuple(out_d["shape"])
    with open_session(board, outdir) as session:
        if hasattr(session, "run_batch"):
            results = session.run_batch(records)
        else:
            results = []
            for k, r in enumerate(records):
                results.append(session.infer(r))
                if progress:
                    progress("eval C", k + 1, len(records))
    return [np.frombuffer(r.output, dtype=dtype).reshape(shape) for r in results]



def format_evaluation(result: dict) -> list[str]:
    """Text lines for the CLI: the accuracies side by side, and the C-vs-reference check."""
    def acc(part):
        d = result.get(part)
        if not d:
            return "-"
        return f"{100 * d['accuracy']:.2f}%" if "accuracy" in d else "n/a"
    lines = [f"evaluation on {result['samples']} samples:",
             f"  accuracy  float {acc('float')}   int8 reference {acc('int8_reference')}   generated C {acc('c')}"]
    cmp = result.get("c_vs_reference", {})
    lines.append("  generated C vs int8 reference: " + (
        "bit-exact on every sample" if cmp.get("bit_exact") else f"{cmp.get('mismatched_samples')} samples differ"))
    if result.get("int8_vs_float", {}).get("top1_agreement") is not None:
        lines.append(f"  int8 vs float top-1 agreement {100 * result['int8_vs_float']['top1_agreement']:.2f}%")
    return lines
