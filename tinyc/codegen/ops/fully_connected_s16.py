"""FULLY_CONNECTED, 16x8 (TFLite fully_connected.cc with int16 input: reference_integer_ops::
FullyConnected / FullyConnectedPerChannel with an int64 accumulator and bias). LiteRT 2.3.0
BUILTIN_REF then rounds once with the full Q31 multiplier (tinyc_requantize_single_s64), not
the Q15 form CONV_2D uses: found on a random 40 -> 16 layer (0 of 3,200 outputs differ this
way, 454 the other). Multipliers as for int8:
double(input_scale) * double(filter_scale) / double(output_scale), per channel when the
filter has several scales."""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.conv_s16 import check_16x8, has_bias, INT16_MAX, INT16_MIN
from tinyc.quant_math import activation_range_s8, conv_output_multipliers


@checker("FULLY_CONNECTED", dtype="int16")
def check_fully_connected_s16(graph, op):
    lab = label(op, "FULLY_CONNECTED")
    if len(op.inputs) < 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} needs input, weights (, bias) and one output")
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    check_16x8(graph, op, lab, 0, 2, ranks=(1, 2, 3, 4, 5, 6))
    if len(w.shape) != 2 or x.size % int(w.shape[1]) or y.size != x.size // int(w.shape[1]) * int(w.shape[0]):
        raise UnsupportedError(f"{lab}: weights {list(w.shape)} do not map input {list(x.shape)} to "
                               f"output {list(y.shape)}")
    if op.attrs.get("weights_format", "DEFAULT") not in ("DEFAULT", 0):
        raise UnsupportedError(f"{lab} has shuffled weights; tinyc reads the default format")


@register("FULLY_CONNECTED", kernels=["common/requantize_s64", "fully_connected_s16"], dtype="int16")
def lower_fully_connected_s16(graph, op, ctx) -> Lowered:
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    output_depth, accum_depth = int(w.shape[0]), int(w.shape[1])
    batches = x.size // accum_depth
    scales = np.asarray(w.quant.scale, dtype=np.float32)
    mult, shift = conv_output_multipliers(x.quant.s, scales, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp,
                                           INT16_MIN, INT16_MAX)
    params = ctx.params("tinyc_fully_connected_params_s16", {
        "dims": {"batches": batches, "accum_depth": accum_depth, "output_depth": output_depth},
        "op": {"input_offset": -x.quant.zp, "filter_offset": 0, "output_offset": y.quant.zp,
               "act_min": act_min, "act_max": act_max},
        "quant": {"multiplier": ctx.const("multiplier", mult, "int32_t", "requantization multipliers (Q31)"),
                  "shift": ctx.const("shift", shift, "int32_t", "requantization shifts"),
                  "per_channel": int(scales.size > 1)},
        "filter": ctx.ptr(op.inputs[1], "filter"),
        "bias": ctx.ptr(op.inputs[2], "bias") if has_bias(op) else None,
    })
    call = f"tinyc_fully_connected_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=batches * accum_depth * output_depth, notes=["16x8"])
