"""Float `.tflite` -> full-int8 `.tflite`, with TensorFlow's own post-training quantizer.

Path used: the same two steps that `tf.lite.TFLiteConverter` runs after it has produced a
float flatbuffer (lite.py, `_quantize`): `Calibrator.calibrate` (TFLite's calibration
interpreter records each tensor's min/max over the representative data into the flatbuffer),
then `mlir_quantize` (the MLIR quantizer turns those ranges into scales and quantizes weights
and biases). Why this path and not our own quantizer on the IR: the result is then the very
model a TFLite user gets from the converter, op fusions, fixed output ranges (softmax 1/256,
logistic) and "same scale" rules (max pool, reshape, concatenation) included; and a Keras
model converted to float first and then quantized here gives a byte-identical int8 graph
(tests/test_keras_frontend.py checks it). tinyc/quant_math.py holds the same math in
Python (scales, zero points, weights, bias) and is tested against this output.

TensorFlow is imported inside the functions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from tinyc.errors import TinycError, UnsupportedError
from tinyc.frontend.tflite import (dtype_name, io_tensors, is_constant, op_name, parse_model,
                                   several_subgraphs_error, tensor_name)
from tinyc.quantize.keras import captured_output, quiet_tf_env

EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")


def classify(model) -> str:
    """'float', 'int8' (full-int8 core, maybe with float edges), 'hybrid' or 'other'."""
    g = model.subgraphs[0]
    has_float_act = has_int8_act = hybrid = False
    for op in g.operators:
        name = op_name(model, op)
        if name in EDGE_OPS:
            continue
        ins = [g.tensors[i] for i in op.inputs if i >= 0]
        outs = [g.tensors[i] for i in op.outputs]
        acts = [t for t in ins if not is_constant(model, t)] + outs
        consts = [t for t in ins if is_constant(model, t)]
        if any(dtype_name(t) == "float32" for t in acts):
            has_float_act = True
            if any(dtype_name(t) in ("int8", "uint8") for t in consts):
                hybrid = True
        if any(dtype_name(t) in ("int8", "int16") for t in acts):
            has_int8_act = True
    if hybrid:
        return "hybrid"
    if has_float_act:
        return "float"
    if has_int8_act:
        return "int8"
    return "other"


def check_single_io(model, source: str) -> None:
    if len(model.subgraphs) != 1:
        raise several_subgraphs_error(model, source)
    ins, outs = io_tensors(model)
    if len(ins) != 1 or len(outs) != 1:
        raise UnsupportedError(
            f"{source} has {len(ins)} inputs and {len(outs)} outputs; tinyc compiles models with one input and "
            "one output for now")


def float_input_shape(model) -> tuple[int, ...]:
    ins, _ = io_tensors(model)
    return tuple(int(d) for d in ins[0].shape)


def check_float_model(data: bytes, source: str) -> None:
    model = parse_model(data, source)
    check_single_io(model, source)
    kind = classify(model)
    if kind == "hybrid":
        raise UnsupportedError(
            f"{source} is a hybrid (dynamic-range) model: int8 weights with float activations; quantize the "
            "original float model instead (tinyc needs float weights to calibrate)")
    if kind != "float":
        raise TinycError(f"{source} is not a float model ({kind}); pass it to tinyc convert without calibration")
    ins, outs = io_tensors(model)
    for t in ins + outs:
        if dtype_name(t) != "float32" and not (t in ins and dtype_name(t) == "int32"):
            raise UnsupportedError(
                f"{source}: tensor '{tensor_name(t)}' is {dtype_name(t)}; tinyc quantizes models with float32 I/O "
                "(and int32 index inputs)")


def quantize_float_tflite(data: bytes, representative: Callable[[], Iterable], *, per_tensor: bool = False,
                          io: str = "int8", activations: str = "int8") -> bytes:
    """Calibrate a float flatbuffer with `representative` and quantize it to full int8 (or 16x8:
    activations="int16", int16 activations and I/O)."""

    quiet_tf_env()
    with captured_output():
        import tensorflow as tf
        from tensorflow.lite.python.convert import mlir_quantize
        from tensorflow.lite.python.optimize import calibrator as _calibrator

    int_type = tf.int16 if activations == "int16" else tf.int8
    io_type = int_type if io == "int8" else tf.float32
    inference_type = 6 if activations == "int16" else 9   # types_pb2.QUANTIZED_INT16 / QUANTIZED_INT8
    try:
        with captured_output():
            prepared = _calibrator.add_intermediate_tensors(data)
            calibrated = _calibrator.Calibrator(prepared).calibrate(representative)
            quantized = mlir_quantize(
                calibrated, disable_per_channel=bool(per_tensor), input_data_type=io_type,
                output_data_type=io_type, inference_type=inference_type)
    except TinycError:
        raise
    except Exception as e:
        text = str(e).strip().splitlines()
        raise TinycError(f"quantizing the float model failed: {text[0][:240] if text else type(e).__name__}") from None
    return bytes(quantized)


def calibration_ranges(data: bytes, representative: Callable[[], Iterable]) -> dict[str, tuple[float, float]]:
    """tensor name -> (min, max) recorded by TFLite's calibrator (what the quantizer uses)."""

    quiet_tf_env()
    with captured_output():
        from tensorflow.lite.python.optimize import calibrator as _calibrator
        prepared = _calibrator.add_intermediate_tensors(data)
        calibrated = _calibrator.Calibrator(prepared).calibrate(representative)
    model = parse_model(bytes(calibrated))
    out = {}
    for t in model.subgraphs[0].tensors:
        q = t.quantization
        if q is not None and q.min is not None and len(q.min) == 1:
            out[tensor_name(t)] = (float(q.min[0]), float(q.max[0]))
    return out


def check_full_int8(data: bytes, source: str = "quantized model") -> list[str]:
    """Raise UnsupportedError if an op other than the I/O QUANTIZE/DEQUANTIZE stayed float."""
    model = parse_model(data, source)
    g = model.subgraphs[0]
    for i, op in enumerate(g.operators):
        name = op_name(model, op)
        if name in EDGE_OPS:
            continue
        for ti in list(op.inputs) + list(op.outputs):
            if ti < 0:
                continue
            t = g.tensors[ti]
            if dtype_name(t) == "float32" and name == "CAST" and dtype_name(g.tensors[op.outputs[0]]) == "int32":
                raise UnsupportedError(
                    f"op {i} (CAST) turns a float tensor into int32 indices (an Embedding on a float model input); "
                    "tinyc compiles lookups on int32 model inputs, where indices stay exact: give the model an int32 "
                    "input (keras.Input(shape, dtype=\"int32\"))")
            if dtype_name(t) == "float32":
                raise UnsupportedError(
                    f"op {i} ({name}, output '{tensor_name(g.tensors[op.outputs[0]])}') could not be quantized to "
                    "int8 by the TFLite quantizer; tinyc compiles full-int8 models only")
    return [op_name(model, op) for op in g.operators]


def load_bytes(path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise TinycError(f"{p}: no such file")
    return p.read_bytes()
