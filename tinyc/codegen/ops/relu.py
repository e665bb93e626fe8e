"""RELU, RELU6, RELU_N1_TO_1 as standalone ops, int8 (TFLite kernels/activations.cc).

The converter fuses a ReLU into the op before it when it can; after a CONCATENATION, a pool
with no fusable slot, a MEAN or a graph input it cannot, and emits one of these ops.

ReluPrepare: `double real_multiplier = input_scale / output_scale;` (the division is in
float32, only its result is widened), then QuantizeMultiplier. QuantizedReluX clamps to
zero_point + (int32)roundf(bound / output_scale) (float32), bounded by the int8 range:
RELU [0, inf), RELU6 [0, 6], RELU_N1_TO_1 [-1, 1]. ReluX then computes, per element,
  clamp(output_zp + MultiplyByQuantizedMultiplier(q - input_zp, m, shift), min, max).
"""

from __future__ import annotations

import numpy as np

from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_unary_s8, forward_inplace, label
from tinyc.quant_math import activation_range_s8, quantize_multiplier

KINDS = ("RELU", "RELU6", "RELU_N1_TO_1")


def rescale_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """ReluPrepare / LeakyReluPrepare identity multiplier: input_scale / output_scale in float32."""
    return quantize_multiplier(float(np.float32(input_scale) / np.float32(output_scale)))


def check_relu(graph, op):
    lab = label(op)
    x, y = check_unary_s8(graph, op, lab, f"int8 {op.kind.lower()}")
    activation_range_s8(op.kind, y.quant.s, y.quant.zp)  # raises if a bound leaves int32


def lower_relu(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    mult, shift = rescale_multiplier(x.quant.s, y.quant.s)
    act_min, act_max = activation_range_s8(op.kind, y.quant.s, y.quant.zp)
    params = ctx.params("tinyc_relu_params_s8", {
        "dims": {"size": x.size},
        "op": {"input_offset": -x.quant.zp, "output_offset": y.quant.zp, "act_min": act_min, "act_max": act_max},
        "quant": {"multiplier": mult, "shift": shift},
    })
    call = f"tinyc_relu_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, notes=[f"{op.kind}: clamp to [{act_min}, {act_max}]"],
                   inplace=forward_inplace(x, y))


for _kind in KINDS:
    checker(_kind)(check_relu)
    register(_kind, kernels=["relu"])(lower_relu)
