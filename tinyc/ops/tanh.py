"""TANH, int8 (TFLite kernels/activations.cc, kReference).

For int8, TanhPrepare fills a 256-entry table (PopulateLookupTable) in float32:

    dequantized = input_scale * (q - input_zero_point)
    transformed = std::tanh(dequantized)            (float overload: tanhf)
    rescaled    = std::round(transformed * (1 / output_scale))
    out         = clamp((int32_t)(rescaled + output_zero_point), -128, 127)

and Eval only looks values up (EvalUsingLookupTable). Unlike LOGISTIC, Prepare puts no
constraint on the output quantization. tinyc builds the same table with float32 arithmetic
and the C library's tanhf, so the kernel is LOGISTIC's table lookup.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ops import Lowered, checker, register
from tinyc.ops._common import check_per_tensor, check_s8_in_out, label
from tinyc.passes.quantize import round_half_away

f32 = np.float32


def _load_tanhf():
    """The C library's tanhf, which TFLite's Prepare uses; None if it cannot be loaded."""
    for name in (ctypes.util.find_library("m"), "libm.so.6", ctypes.util.find_library("c")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).tanhf
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    return None


_TANHF = _load_tanhf()


def tanhf(x) -> np.float32:
    if _TANHF is not None:
        return f32(_TANHF(float(f32(x))))
    # tanh in double rounded once to float: tanhf's result except in rare near-tie cases.
    return f32(math.tanh(float(f32(x))))


def tanh_lut(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """The int8 table PopulateLookupTable builds, indexed by the input byte (uint8 view of q)."""
    inverse_scale = f32(1) / f32(output_scale)
    lut = np.zeros(256, dtype=np.int8)
    for q in range(-128, 128):
        dequantized = f32(input_scale) * f32(q - input_zp)
        transformed = tanhf(dequantized)
        rescaled = f32(round_half_away(float(transformed * inverse_scale)))
        quantized = float(f32(rescaled + f32(output_zp)))
        # (int32_t) of a float beyond int32 gives INT32_MIN on x86; clamped to -128 either way.
        q_out = int(quantized) if -2.0 ** 31 <= quantized < 2.0 ** 31 else -(1 << 31)
        lut[q & 0xFF] = max(-128, min(127, q_out))
    return lut


@checker("TANH")
def check_tanh(graph, op):
    lab = label(op, "TANH")
    x, y = check_s8_in_out(graph, op, lab, 1, "int8 tanh")
    if x.size != y.size:
        raise UnsupportedError(f"{lab} maps {x.size} values to {y.size}; elementwise ops keep the size")
    check_per_tensor(lab, x, y)


@register("TANH", kernels=["tanh"])
def lower_tanh(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    lut = tanh_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp)
    name = ctx.const(f"{ctx.ident(op.name or 'tanh')}_lut", lut, "int8_t",
                     f"tanh table for input ({x.quant.s:g}, {x.quant.zp}) -> output ({y.quant.s:g}, {y.quant.zp})")
    call = f"tinyc_tanh_s8({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {x.size}, {name});"
    return Lowered(call=call, macs=0)
