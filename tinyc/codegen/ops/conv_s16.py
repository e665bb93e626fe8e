"""CONV_2D and DEPTHWISE_CONV_2D, 16x8 (int16 activations, int8 weights, int64 bias).

TFLite's conv.cc / depthwise_conv.cc run reference_integer_ops::ConvPerChannel and
DepthwiseConvPerChannel for int16 input: an int64 accumulator, the int64 bias, then
MultiplyByQuantizedMultiplier(int64) (the Q31 multiplier rounded to Q15, one rounding shift;
tinyc_requantize_s64). Multipliers, padding and activation bounds come from Prepare exactly
as in the int8 case (PopulateConvolutionQuantizationParams, ComputePaddingHeightWidth), the
bounds clamped to int16.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.conv import compute_out_size, compute_padding
from tinyc.quant_math import activation_range_s8, conv_output_multipliers

INT16_MIN, INT16_MAX = -32768, 32767
_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def has_bias(op, index: int = 2) -> bool:
    return len(op.inputs) > index and op.inputs[index] >= 0


def check_16x8(graph, op, lab: str, x_index: int, bias_index: int, ranks=(4,)) -> None:
    """int16 input and output (per-tensor), a constant symmetric int8 filter (input 1) and an
    optional constant int64 bias."""
    x, w, y = graph.tensors[op.inputs[x_index]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if not (x.dtype == y.dtype == "int16" and w.dtype == "int8"):
        raise UnsupportedError(f"{lab} has {x.dtype} input, {w.dtype} filter and {y.dtype} output; tinyc compiles "
                               "full int8 layers and 16x8 ones (int16 input and output, int8 weights)")
    if len(x.shape) not in ranks or len(y.shape) not in ranks:
        raise UnsupportedError(f"{lab} has input/output ranks {len(x.shape)}/{len(y.shape)}; "
                               f"{' or '.join(map(str, ranks))} expected")
    for t, what in ((x, "input"), (y, "output")):
        if t.quant is None or t.quant.per_axis:
            raise UnsupportedError(f"{lab} needs a per-tensor quantized {what}")
    if not w.is_const or w.quant is None or np.any(w.quant.zero_point != 0):
        raise UnsupportedError(f"{lab} needs constant, quantized, symmetric int8 weights")
    if has_bias(op, bias_index):
        b = graph.tensors[op.inputs[bias_index]]
        if b.dtype != "int64" or not b.is_const:
            raise UnsupportedError(f"{lab} has a {'non-constant ' if not b.is_const else ''}{b.dtype} bias; "
                                   "tinyc's 16x8 kernels take the constant int64 bias of TFLite's 16x8 scheme")
    act = op.attrs.get("activation", "NONE")
    if act not in _ACTIVATIONS:
        raise UnsupportedError(f"{lab} has fused activation {act}; supported: {', '.join(_ACTIVATIONS)}")


def requant_arrays(graph, op, ctx, x_index: int, out_ch: int) -> tuple[dict, int, int]:
    """The .quant group (per-channel Q31 multipliers and shifts in weights.c) and the int16
    activation bounds."""
    x, w, y = graph.tensors[op.inputs[x_index]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    scales = np.asarray(w.quant.scale, dtype=np.float32)
    if scales.size == 1:
        scales = np.repeat(scales, out_ch)
    mult, shift = conv_output_multipliers(x.quant.s, scales, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp,
                                           INT16_MIN, INT16_MAX)
    quant = {"multiplier": ctx.const("multiplier", mult, "int32_t", "per-channel requantization multipliers (Q31)"),
             "shift": ctx.const("shift", shift, "int32_t", "per-channel requantization shifts")}
    return quant, act_min, act_max


def _geometry(graph, op, lab: str, filter_h: int, filter_w: int, out_ch: int) -> dict:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    a = op.attrs
    g = dict(batches=int(x.shape[0]), in_h=int(x.shape[1]), in_w=int(x.shape[2]), in_ch=int(x.shape[3]),
             stride_h=int(a.get("stride_h", 1)), stride_w=int(a.get("stride_w", 1)),
             dilation_h=int(a.get("dilation_h", 1)), dilation_w=int(a.get("dilation_w", 1)))
    if min(g["stride_h"], g["stride_w"], g["dilation_h"], g["dilation_w"]) < 1:
        raise UnsupportedError(f"{lab} has a stride or dilation below 1")
    padding = a.get("padding", "SAME")
    if padding not in ("SAME", "VALID"):
        raise UnsupportedError(f"{lab} has padding {padding}; SAME or VALID expected")
    g["out_h"] = compute_out_size(padding, g["in_h"], filter_h, g["stride_h"], g["dilation_h"])
    g["out_w"] = compute_out_size(padding, g["in_w"], filter_w, g["stride_w"], g["dilation_w"])
    g["pad_h"], _ = compute_padding(g["stride_h"], g["dilation_h"], g["in_h"], filter_h, g["out_h"])
    g["pad_w"], _ = compute_padding(g["stride_w"], g["dilation_w"], g["in_w"], filter_w, g["out_w"])
    if tuple(int(d) for d in y.shape) != (g["batches"], g["out_h"], g["out_w"], out_ch):
        raise UnsupportedError(f"{lab}: output shape {tuple(y.shape)} disagrees with input, filter, stride and "
                               "padding; the model is inconsistent")
    return g


def conv_op_fields(g: dict, input_offset: int, output_offset: int, act_min: int, act_max: int) -> dict:
    return {"stride_h": g["stride_h"], "stride_w": g["stride_w"], "dilation_h": g.get("dilation_h", 1),
            "dilation_w": g.get("dilation_w", 1), "pad_h": g["pad_h"], "pad_w": g["pad_w"],
            "input_offset": input_offset, "output_offset": output_offset, "act_min": act_min, "act_max": act_max}


@checker("CONV_2D", dtype="int16")
def check_conv_2d_s16(graph, op):
    lab = label(op, "CONV_2D")
    check_16x8(graph, op, lab, 0, 2)
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    if len(w.shape) != 4 or w.shape[3] < 1 or x.shape[3] % w.shape[3] or w.shape[0] % (x.shape[3] // w.shape[3]):
        raise UnsupportedError(f"{lab}: filter {tuple(w.shape)} does not fit input channels {x.shape[3]}")
    _geometry(graph, op, lab, int(w.shape[1]), int(w.shape[2]), int(w.shape[0]))


def _lower(graph, op, ctx, depthwise: bool) -> Lowered:
    """Both kernels: the same dims (the last field filter_ch or depth_multiplier), op and quant
    groups; tinyc_<kernel>_s16(&params, input, output)."""
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    fh, fw = int(w.shape[1]), int(w.shape[2])
    out_ch = int(w.shape[3]) if depthwise else int(w.shape[0])
    g = _geometry(graph, op, label(op), fh, fw, out_ch)
    quant, act_min, act_max = requant_arrays(graph, op, ctx, 0, out_ch)
    last = ("depth_multiplier", out_ch // g["in_ch"]) if depthwise else ("filter_ch", int(w.shape[3]))
    kernel = "depthwise_conv_2d" if depthwise else "conv_2d"
    params = ctx.params(f"tinyc_{kernel}_params_s16", {
        "dims": {"batches": g["batches"], "input_h": g["in_h"], "input_w": g["in_w"], "input_ch": g["in_ch"],
                 "output_h": g["out_h"], "output_w": g["out_w"], "output_ch": out_ch,
                 "filter_h": fh, "filter_w": fw, last[0]: last[1]},
        "op": conv_op_fields(g, -x.quant.zp, y.quant.zp, act_min, act_max),
        "quant": quant,
        "filter": ctx.ptr(op.inputs[1], "filter"),
        "bias": ctx.ptr(op.inputs[2], "bias") if has_bias(op) else None,
    })
    call = f"tinyc_{kernel}_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    macs = g["batches"] * g["out_h"] * g["out_w"] * out_ch * fh * fw * (1 if depthwise else int(w.shape[3]))
    return Lowered(call=call, macs=macs,
                   notes=[f"16x8; padding top {g['pad_h']}, left {g['pad_w']}; activation range [{act_min}, {act_max}]"])


@register("CONV_2D", kernels=["common/requantize_s64", "conv_2d_s16"], dtype="int16")
def lower_conv_2d_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, depthwise=False)


@checker("DEPTHWISE_CONV_2D", dtype="int16")
def check_depthwise_conv_2d_s16(graph, op):
    lab = label(op, "DEPTHWISE_CONV_2D")
    check_16x8(graph, op, lab, 0, 2)
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if len(w.shape) != 4 or w.shape[0] != 1 or w.shape[3] != y.shape[3] or y.shape[3] % x.shape[3]:
        raise UnsupportedError(f"{lab}: filter {tuple(w.shape)} does not fit input channels {x.shape[3]}")
    _geometry(graph, op, lab, int(w.shape[1]), int(w.shape[2]), int(w.shape[3]))


@register("DEPTHWISE_CONV_2D", kernels=["common/requantize_s64", "depthwise_conv_2d_s16"], dtype="int16")
def lower_depthwise_conv_2d_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, depthwise=True)
