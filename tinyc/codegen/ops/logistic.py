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

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_unary_s8, f32, label, libm_f32, lower_lut_s8, lut_s8


_EXPF = libm_f32("expf")


def expf(x) -> np.float32:
    if _EXPF is not None:
        return f32(_EXPF(float(f32(x))))
    # exp in double rounded once to float: expf's result except in rare near-tie cases.
    with np.errstate(over="ignore"):
        return f32(np.exp(np.float64(f32(x))))


def logistic_lut(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """The int8 table LUTPopulate builds, indexed by the input byte (uint8 view of q)."""
    return lut_s8(lambda d: f32(1) / (f32(1) + expf(-d)), input_scale, input_zp, output_scale, output_zp)


@checker("LOGISTIC")
def check_logistic(graph, op):
    lab = label(op, "LOGISTIC")
    x, y = check_unary_s8(graph, op, lab, "int8 logistic")
    if float(np.float32(y.quant.s)) != 1.0 / 256:
        raise UnsupportedError(f"{lab} has output scale {y.quant.s:g}; TFLite's int8 logistic requires 1/256: "
                               "re-convert the model")


@register("LOGISTIC", kernels=["lookup_table"])
def lower_logistic(graph, op, ctx) -> Lowered:
    return lower_lut_s8(graph, op, ctx, "sigmoid", logistic_lut)
