"""LOGISTIC (sigmoid), int8 (TFLite kernels/activations.cc, kReference).

For int8, SigmoidPrepare fills a 256-entry lookup table (LUTPopulate) in float32:

    dequantized = input_scale * (q - input_zero_point)
    transformed = 1.0f / (1.0f + std::exp(-dequantized))
    rescaled    = std::round(transformed * (1 / output_scale))
    out         = clamp((int32_t)(rescaled + output_zero_point), -128, 127)

and Eval only looks values up. tinyc builds the same table here, with float32 arithmetic and
the C library's expf (the one LiteRT's Prepare calls), so the generated kernel is a table
lookup with no arithmetic at all. Prepare requires output scale 1/256.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ops import Lowered, checker, register
from tinyc.ops._common import check_per_tensor, check_s8_in_out, label
from tinyc.passes.quantize import round_half_away

f32 = np.float32


def _load_expf():
    """The C library's expf, which TFLite's Prepare uses; None if it cannot be loaded."""
    for name in (ctypes.util.find_library("m"), "libm.so.6", ctypes.util.find_library("c")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).expf
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    return None


_EXPF = _load_expf()


def expf(x) -> np.float32:
    if _EXPF is not None:
        return f32(_EXPF(float(f32(x))))
    # exp in double rounded once to float: expf's result except in rare near-tie cases.
    with np.errstate(over="ignore"):
        return f32(np.exp(np.float64(f32(x))))


def logistic_lut(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """The int8 table LUTPopulate builds, indexed by the input byte (uint8 view of q)."""
    inverse_scale = f32(1) / f32(output_scale)
    lut = np.zeros(256, dtype=np.int8)
    for q in range(-128, 128):
        dequantized = f32(input_scale) * f32(q - input_zp)
        transformed = f32(1) / (f32(1) + expf(-dequantized))
        rescaled = f32(round_half_away(float(transformed * inverse_scale)))
        quantized = int(f32(rescaled + f32(output_zp)))
        lut[q & 0xFF] = max(-128, min(127, quantized))
    return lut


@checker("LOGISTIC")
def check_logistic(graph, op):
    lab = label(op, "LOGISTIC")
    x, y = check_s8_in_out(graph, op, lab, 1, "int8 logistic")
    if x.size != y.size:
        raise UnsupportedError(f"{lab} maps {x.size} values to {y.size}; elementwise ops keep the size")
    check_per_tensor(lab, x, y)
    if float(np.float32(y.quant.s)) != 1.0 / 256:
        raise UnsupportedError(f"{lab} has output scale {y.quant.s:g}; TFLite's int8 logistic requires 1/256: "
                               "re-convert the model")


@register("LOGISTIC", kernels=["logistic"])
def lower_logistic(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    lut = logistic_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp)
    name = ctx.const(f"{ctx.ident(op.name or 'logistic')}_lut", lut, "int8_t",
                     f"sigmoid table for input ({x.quant.s:g}, {x.quant.zp}) -> output ({y.quant.s:g}, {y.quant.zp})")
    call = f"tinyc_logistic_s8({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {x.size}, {name});"
    return Lowered(call=call, macs=0)
