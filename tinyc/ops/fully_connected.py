"""FULLY_CONNECTED, int8 weights per-tensor or per-channel, optional bias."""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.ops import Lowered, checker, register
from tinyc.ops.compressed import lower_encoded
from tinyc.passes.quantize import activation_range_s8, conv_output_multipliers


@checker("FULLY_CONNECTED")
def check_fully_connected(graph, op):
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if not (x.dtype == w.dtype == y.dtype == "int8"):
        raise UnsupportedError(
            f"FULLY_CONNECTED '{op.name}' has {x.dtype} input, {w.dtype} weights and {y.dtype} output; "
            "tinyc compiles int8 ones: quantize the model to full int8")
    if not w.is_const:
        raise UnsupportedError(f"FULLY_CONNECTED '{op.name}' has non-constant weights; tinyc needs them constant")
    if len(op.inputs) > 2 and op.inputs[2] >= 0 and graph.tensors[op.inputs[2]].dtype != "int32":
        raise UnsupportedError(f"FULLY_CONNECTED '{op.name}' has a {graph.tensors[op.inputs[2]].dtype} bias; int32 expected")
    if op.attrs.get("weights_format", 0) != 0:
        raise UnsupportedError(f"FULLY_CONNECTED '{op.name}' uses shuffled weights, which tinyc does not support")


@register("FULLY_CONNECTED", kernels=["fully_connected"])
def lower_fully_connected(graph, op, ctx) -> Lowered:
    encoded = lower_encoded(graph, op, ctx)  # sparse / Huffman-coded weights: tinyc/ops/compressed.py
    if encoded is not None:
        return encoded
    x = graph.tensors[op.inputs[0]]
    w = graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    output_depth, accum_depth = int(w.shape[0]), int(w.shape[-1])
    batches = x.size // accum_depth

    mult, shift = conv_output_multipliers(x.quant.s, w.quant.scale, y.quant.s)
    per_channel = w.quant.per_axis
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    base = ctx.ident(op.name or "fc")
    mult_name = ctx.const(f"{base}_mult", mult, "int32_t")
    shift_name = ctx.const(f"{base}_shift", shift, "int32_t")
    bias = ctx.ptr(op.inputs[2]) if has_bias else "0"
    call = (
        f"tinyc_fully_connected_s8({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, {bias}, {ctx.ptr(op.outputs[0])},\n"
        f"    {batches}, {accum_depth}, {output_depth},\n"
        f"    {-x.quant.zp}, {-int(w.quant.zero_point[0])}, {y.quant.zp},\n"
        f"    {mult_name}, {shift_name}, {1 if per_channel else 0}, {act_min}, {act_max});"
    )
    return Lowered(call=call, macs=batches * accum_depth * output_depth)
