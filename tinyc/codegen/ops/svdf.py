"""SVDF, int8 input and output (TFLite kernels/svdf.cc, integer path; keyword_scrambled).

Inputs: input [batches, input_size] int8, weights_feature [filters, input_size] int8,
weights_time [filters, memory] int16 (or int8: TFLM's 8-bit variant, which LiteRT refuses),
bias [units] int32 (optional), state [batches, filters * memory] (a variable tensor: kept
between invocations; zero at start, or its zero point for int8, as TFLite resets variables;
tinyc keeps it in a static array of the layer).
Prepare (in float32, then widened to double, as svdf.cc writes it):
  scale_1 = input_scale * feature_scale / state_scale,  scale_2 = state_scale * time_scale / output_scale
each through QuantizeMultiplier.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.quant_math import quantize_multiplier

f32 = np.float32


def _tensors(graph, op):
    x, wf, wt = (graph.tensors[op.inputs[k]] for k in range(3))
    bias = graph.tensors[op.inputs[3]] if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    state = graph.tensors[op.inputs[4]]
    return x, wf, wt, bias, state, graph.tensors[op.outputs[0]]


@checker("SVDF")
def check_svdf(graph, op):
    lab = label(op, "SVDF")
    if len(op.inputs) != 5 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} needs input, feature and time weights, bias, state and one output")
    x, wf, wt, bias, state, y = _tensors(graph, op)
    if x.dtype != "int8" or y.dtype != "int8" or wf.dtype != "int8" or wt.dtype not in ("int16", "int8") \
            or state.dtype != wt.dtype:
        raise UnsupportedError(f"{lab} has {x.dtype} input, {wt.dtype} time weights, {state.dtype} state; tinyc "
                               "compiles the integer SVDF (int8 input/output, int16 or int8 state); float SVDF: "
                               "quantize the model")
    if not (wf.is_const and wt.is_const) or (bias is not None and (not bias.is_const or bias.dtype != "int32")):
        raise UnsupportedError(f"{lab} needs constant weights and an int32 bias")
    if state.is_const or op.inputs[4] in graph.inputs or op.inputs[4] in graph.producers():
        raise UnsupportedError(f"{lab}: its state must be a variable tensor (no producer, not an input)")
    rank = int(op.attrs.get("rank", 1))
    filters, memory = int(wt.shape[0]), int(wt.shape[1])
    if rank < 1 or filters % rank or int(wf.shape[0]) != filters or state.size != x.shape[0] * filters * memory \
            or y.size != x.shape[0] * filters // rank:
        raise UnsupportedError(f"{lab}: shapes of weights, state and output do not fit rank {rank}")
    for t in (x, wf, wt, state, y):
        if t.quant is None or t.quant.per_axis:
            raise UnsupportedError(f"{lab}: tensor '{t.name}' is not per-tensor quantized")


@register("SVDF", kernels=["svdf"])
def lower_svdf(graph, op, ctx) -> Lowered:
    x, wf, wt, bias, state, y = _tensors(graph, op)
    rank = int(op.attrs.get("rank", 1))
    filters, memory = int(wt.shape[0]), int(wt.shape[1])
    batches, input_size = int(x.shape[0]), int(x.size // x.shape[0])
    scale_1 = float(f32(f32(f32(x.quant.s) * f32(wf.quant.s)) / f32(state.quant.s)))
    scale_2 = float(f32(f32(f32(state.quant.s) * f32(wt.quant.s)) / f32(y.quant.s)))
    m1, s1 = quantize_multiplier(scale_1)
    m2, s2 = quantize_multiplier(scale_2)
    int8_state = wt.dtype == "int8"
    state_ctype = "int8_t" if int8_state else "int16_t"
    state_name = ctx.state("state", state_ctype, state.size,
                           f"SVDF memory [{batches}][{filters}][{memory}] {state.dtype}",
                           fill=state.quant.zp if int8_state else 0)
    params = ctx.params("tinyc_svdf_state_s8_params_s8" if int8_state else "tinyc_svdf_params_s8", {
        "dims": {"batches": batches, "input_size": input_size, "filters": filters, "memory": memory,
                 "units": filters // rank, "rank": rank},
        "op": {"input_offset": -x.quant.zp, "state_zero_point": state.quant.zp, "output_offset": y.quant.zp},
        "quant": {"feature": {"multiplier": m1, "shift": s1}, "time": {"multiplier": m2, "shift": s2}},
        "weights_feature": ctx.ptr(op.inputs[1], "weights_feature"),
        "weights_time": ctx.ptr(op.inputs[2], "weights_time"),
        "bias": ctx.ptr(op.inputs[3], "bias") if bias is not None else None,
        "state": state_name,
    })
    fn = "tinyc_svdf_state_s8_s8" if int8_state else "tinyc_svdf_s8"
    call = f"{fn}({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    macs = batches * filters * (input_size + memory)
    return Lowered(call=call, macs=macs, notes=[f"rank {rank}, {filters} filters x {memory} steps of "
                                                f"{state.dtype} state (kept between calls)"])
