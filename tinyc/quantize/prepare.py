"""Float models in (Keras 3 .keras/.h5/SavedModel, float .tflite), a full-int8 .tflite out.

    prepared = prepare_int8(path, calib="calib.npz")   # -> PreparedModel
    prepared.tflite          # the int8 flatbuffer tinyc compiles
    prepared.report          # per-layer quantization report (tinyc/quantize/sqnr.py)

Keras models go through tf.lite.TFLiteConverter (tinyc/quantize/keras.py); float .tflite
files through TensorFlow's calibrator and MLIR quantizer (tinyc/quantize/float_tflite.py),
the same two steps the converter runs. int8 .tflite files pass through unchanged.

Nothing here prints; `progress(stage, done, total)` (tinyc.progress) is called during
calibration and the report so that the CLI can show progress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import numpy as np

from tinyc.errors import TinycError, UnsupportedError
from tinyc.frontend import model_format
from tinyc.frontend.tflite import graph_to_tflite, load_tflite, parse_model, tflite_to_graph
from tinyc.ir import first_float_op, np_dtype
from tinyc.isolated import Worker, run_isolated
from tinyc.reference import abort_hint
from tinyc.progress import Progress, report as report_progress
from tinyc.quantize import float_tflite as ft
from tinyc.quantize import keras as kf
from tinyc.quantize.float_islands import close_float_islands
from tinyc.quantize.calibration import check_samples, load_samples, random_samples
from tinyc.quantize.precision import PrecisionOptions, apply_precision
from tinyc.quantize.sqnr import layer_report
from tinyc.samples import index_bounds

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


def is_float_model(path, fmt: str | None = None) -> bool:
    """True for Keras models and float .tflite files (they need calibration data): the same
    test `tinyc.convert` applies, on the IR."""
    fmt = fmt or model_format(path)
    return fmt != "tflite" or first_float_op(load_tflite(path)) is not None


def _representative(samples: np.ndarray, progress: Progress | None):
    def gen():
        n = len(samples)
        for k in range(n):
            yield [samples[k:k + 1]]
            if progress:
                kf.uncaptured(progress, "calibrate", k + 1, n)
    return gen


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
    path = Path(path)
    fmt = model_format(path)
    if not is_float_model(path, fmt):
        warnings: list[str] = []
        if calib is not None or calib_random:
            warnings.append(f"{path.name} is already int8: calibration data ignored")
        if io == "float" or per_tensor:
            warnings.append(f"{path.name} is already int8: --io/--per-tensor apply to float models only")
        return PreparedModel(ft.load_bytes(path), None, None, warnings)
    return quantize_float(path, fmt, calib=calib, calib_random=calib_random, per_tensor=per_tensor, io=io,
                          progress=progress)


def quantize_float(path: Path, fmt: str, *, calib=None, calib_random=None, per_tensor: bool = False,
                   io: str = "int8", progress: Progress | None = None,
                   check: Callable[[bytes], None] | None = None,
                   precision: PrecisionOptions | None = None) -> PreparedModel:
    """A float model (`fmt` from tinyc.frontend.model_format) -> full-int8 .tflite + report.

    `check(int8_bytes)` runs before any LiteRT interpreter sees the int8 model (tinyc.convert
    passes its support check: a model tinyc refuses is refused in one line, not by an abort
    inside LiteRT); the report's interpreters then run in a child process (tinyc.isolated)."""
    path = Path(path)
    if io not in ("int8", "float"):
        raise TinycError(f"--io must be 'int8' or 'float', not '{io}'")
    warnings: list[str] = []
    if calib is None and not calib_random:
        raise TinycError(
            f"{path.name} is a float model: int8 quantization needs calibration data to choose each tensor's "
            "range; give --calib DATA (.npy samples or .npz with 'x'), or --calib-random N for a smoke test")
    if calib is not None and calib_random:
        raise TinycError("give either --calib or --calib-random, not both")

    # 1. the float model as TFLite sees it (and its input shape)
    kind = fmt
    float_bytes = float_flatbuffer(path)
    ft.check_float_model(float_bytes, str(path.name))
    in_shape = ft.float_input_shape(parse_model(float_bytes))
    float_graph = tflite_to_graph(float_bytes, "float model")
    in_dtype = float_graph.tensors[float_graph.inputs[0]].dtype   # float32, or int32 indices
    integer = in_dtype != "float32"
    lowest, rows = index_bounds(float_graph).get(float_graph.inputs[0], (None, None))   # the table's rows
    if integer and precision is not None and precision.needs_16x8:
        raise UnsupportedError("16x8 layers (--precision 16x8 or auto, --precision-layer) need TensorFlow's 16x8 "
                               "conversion, which fails on an int32 model input (it finds no calibrated range "
                               "for it): use int8 for this model")

    # 2. calibration samples (float32; an index input's whole numbers are exact in float32)
    trustworthy = True
    if calib_random:
        samples = random_samples(int(calib_random), in_shape,
                                 index_count=(rows or 256) if integer else None)
        trustworthy = False
        warnings.append(f"calibrated on {int(calib_random)} random samples: scales are NOT trustworthy "
                        "(smoke test only); use --calib DATA for a real model")
    elif isinstance(calib, (str, Path)):
        samples, w = load_samples(calib, in_shape, integer=integer)
        warnings += w
    else:
        samples, w = check_samples(np.asarray(calib), in_shape, "calibration data", integer=integer)
        warnings += w
    if rows is not None and samples.size and not lowest <= samples.min() <= samples.max() < rows:
        raise TinycError(f"calibration data holds indices in [{samples.min():.0f}, {samples.max():.0f}], outside the "
                         f"[{lowest}, {rows}) that the model's {rows}-row table takes: give in-range indices")
    if len(samples) < 10:
        warnings.append(f"only {len(samples)} calibration samples; ranges may not cover real inputs "
                        "(a few hundred are typical)")

    # 3. quantize (in TensorFlow's process: a crash there costs this model only)
    model_samples = samples.astype(np_dtype(in_dtype))   # what the converter feeds the model
    int8_bytes = _without_float_islands(_quantize(path, kind, float_bytes, model_samples, per_tensor, io, "int8",
                                                  progress))
    ft.check_full_int8(int8_bytes, f"{path.name} after quantization")
    if check is not None:
        check(int8_bytes)

    fm = FloatModel(float_bytes, in_shape, str(path), kind, samples)
    # 4. per-layer report on (part of) the calibration data
    n_report = min(len(samples), REPORT_SAMPLES)
    report_progress(progress, "report", 0, n_report)
    report = run_isolated(layer_report, float_bytes, int8_bytes, samples, max_samples=REPORT_SAMPLES,
                          trustworthy=trustworthy, what="building the per-layer quantization report",
                          hint=lambda: abort_hint(int8_bytes))
    report_progress(progress, "report", n_report, n_report)
    report.update({"source": str(path), "source_kind": kind, "calibration_samples": int(len(samples)),
                   "calibration": "random" if calib_random else "data", "per_channel": not per_tensor, "io": io})
    # 5. 16x8 layers (--precision): the 16x8 conversion of the same model and samples, mixed in
    if precision is not None and precision.needs_16x8:
        s16_bytes = _without_float_islands(_quantize(path, kind, float_bytes, model_samples, per_tensor, io, "int16",
                                                     progress))
        int8_bytes, layers = apply_precision(int8_bytes, s16_bytes, precision, report)
        report["precision"] = {"mode": precision.precision, "layers_16x8": layers}
    return PreparedModel(int8_bytes, fm, report, warnings)


# TensorFlow's converter and quantizer run in one child process (tinyc.isolated.Worker): they
# have died natively on models (a Keras 3 LSTM calibrated in its fused form: SIGSEGV), and
# tinyc must outlive that with one line. The child pays TensorFlow's import once per tinyc run.
CONVERTER = Worker("TensorFlow's converter")
CONVERTER_HINT = ("TensorFlow crashed on this model, which is a TensorFlow bug: convert it to a .tflite file "
                  "yourself (another TensorFlow version may work) and give tinyc that file")
_KERAS_MODELS: dict = {}   # in the converter process: (path, mtime, size) -> loaded Keras model


def _keras_model(path: str):
    """The Keras model at `path`, loaded and checked once per converter process."""
    st = Path(path).stat()
    key = (path, st.st_mtime_ns, st.st_size)
    if key not in _KERAS_MODELS:
        model = kf.load_keras(path)
        kf.check_keras_model(model)
        _KERAS_MODELS.clear()
        _KERAS_MODELS[key] = model
    return _KERAS_MODELS[key]


def float_flatbuffer(path) -> bytes:
    """The float32 .tflite of a Keras model or SavedModel folder (converted in CONVERTER's
    process), or the bytes of a .tflite file."""
    path = Path(path)
    fmt = model_format(path)
    if fmt not in ("saved_model", "keras"):
        return ft.load_bytes(path)
    return CONVERTER.call(_float_flatbuffer, str(path), fmt, what=f"converting {path.name} to TFLite",
                          hint=CONVERTER_HINT)


def _float_flatbuffer(path: str, kind: str) -> bytes:
    """(Converter process) the float32 .tflite of a Keras model or SavedModel."""
    return kf.convert_float(_keras_model(path) if kind == "keras" else path)


def _quantize_in_converter(path: str, kind: str, float_bytes: bytes, samples: np.ndarray, per_tensor: bool,
                           io: str, activations: str, progress: Progress | None = None) -> bytes:
    """(Converter process) the int8 (or 16x8) .tflite, calibrated on `samples`."""
    rep = _representative(samples, progress)
    if kind == "keras":
        return kf.convert_int8(_keras_model(path), rep, per_tensor=per_tensor, io=io, activations=activations)
    if kind == "saved_model":
        return kf.convert_int8(path, rep, per_tensor=per_tensor, io=io, activations=activations)
    return ft.quantize_float_tflite(float_bytes, rep, per_tensor=per_tensor, io=io, activations=activations)


def _quantize(path: Path, kind: str, float_bytes: bytes, samples: np.ndarray, per_tensor: bool, io: str,
              activations: str, progress: Progress | None) -> bytes:
    mode = "16x8" if activations == "int16" else "int8"
    return CONVERTER.call(_quantize_in_converter, str(path), kind, float_bytes, samples, per_tensor, io,
                          activations, what=f"quantizing {path.name} to {mode}", hint=CONVERTER_HINT,
                          progress=progress)


def _without_float_islands(quantized: bytes) -> bytes:
    """The quantizer's output, with any float island around a movement op made int8
    (tinyc.quantize.float_islands); the bytes unchanged when there is none."""
    graph = tflite_to_graph(quantized, "quantized model")
    closed = close_float_islands(graph)
    return quantized if closed is graph else graph_to_tflite(closed)
