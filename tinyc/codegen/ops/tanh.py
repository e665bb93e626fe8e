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

import math

import numpy as np

from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_unary_s8, f32, label, libm_f32, lower_lut_s8, lut_s8


_TANHF = libm_f32("tanhf")


def tanhf(x) -> np.float32:
    if _TANHF is not None:
        return f32(_TANHF(float(f32(x))))
    # tanh in double rounded once to float: tanhf's result except in rare near-tie cases.
    return f32(math.tanh(float(f32(x))))


def tanh_lut(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """The int8 table PopulateLookupTable builds, indexed by the input byte (uint8 view of q)."""
    return lut_s8(tanhf, input_scale, input_zp, output_scale, output_zp)


@checker("TANH")
def check_tanh(graph, op):
    check_unary_s8(graph, op, label(op, "TANH"), "int8 tanh")


@register("TANH", kernels=["lookup_table"])
def lower_tanh(graph, op, ctx) -> Lowered:
    return lower_lut_s8(graph, op, ctx, "tanh", tanh_lut)
