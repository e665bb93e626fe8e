"""TANH, 16x8 (int16 in and out; TFLite activations.cc TanhPrepare on int16 and
reference_integer_ops::Tanh for int16, as LiteRT's BUILTIN_REF runs it): LOGISTIC's sigmoid
table read at twice the input (tanh(x) = 2 sigmoid(2x) - 1: 8 fractional bits instead of 9)
and the same input rescale (logistic_s16.py), whose power-of-two case here also takes input
scale 2^-11 (input_left_shift 1). Prepare only asks the output scale to round to 2^-15."""

from __future__ import annotations

from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.logistic_s16 import check_lut_s16, lower_lut_s16

POT_SHIFTS = (0, 1)


@checker("TANH", dtype="int16")
def check_tanh_s16(graph, op):
    check_lut_s16(graph, op, label(op, "TANH"), POT_SHIFTS)


@register("TANH", kernels=["common/sigmoid_table_s16", "tanh_s16"], dtype="int16")
def lower_tanh_s16(graph, op, ctx) -> Lowered:
    return lower_lut_s16(graph, op, ctx, "tanh", POT_SHIFTS)
