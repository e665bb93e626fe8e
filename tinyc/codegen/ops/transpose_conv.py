"""TRANSPOSE_CONV, int8 and 16x8 (TFLite kernels/transpose_conv.cc, reference kernels).

Inputs: output_shape (int32 [4]; constant, or a graph input: the output tensor's static
shape is used, which is what TFLM does and what the model declares), filter
[output_ch, h, w, input_ch] (int8, symmetric), the data, an optional bias (int32 for int8,
int64 for 16x8). Padding is ComputePaddingHeightWidth of the forward convolution from
the output back to the input (stride, dilation 1, the output's height and width as the
image); multipliers from PopulateConvolutionQuantizationParams.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.conv import compute_out_size, compute_padding
from tinyc.codegen.ops.conv_s16 import check_16x8, conv_op_fields, has_bias, requant_arrays
from tinyc.quant_math import activation_range_s8, conv_output_multipliers


def _geometry(graph, op) -> dict:
    w, x, y = (graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]], graph.tensors[op.outputs[0]])
    lab = label(op, "TRANSPOSE_CONV")
    a = op.attrs
    g = dict(stride_h=int(a.get("stride_h", 1)), stride_w=int(a.get("stride_w", 1)))
    if len(w.shape) != 4 or len(x.shape) != 4 or len(y.shape) != 4 or min(g["stride_h"], g["stride_w"]) < 1:
        raise UnsupportedError(f"{lab} needs 4-D input, filter and output and strides >= 1")
    if int(w.shape[3]) != int(x.shape[3]) or int(w.shape[0]) != int(y.shape[3]) or x.shape[0] != y.shape[0]:
        raise UnsupportedError(f"{lab}: filter {tuple(w.shape)} does not join input {tuple(x.shape)} to "
                               f"output {tuple(y.shape)}")
    padding = a.get("padding", "SAME")
    if padding not in ("SAME", "VALID"):
        raise UnsupportedError(f"{lab} has padding {padding}; SAME or VALID expected")
    fh, fw = int(w.shape[1]), int(w.shape[2])
    oh, ow = int(y.shape[1]), int(y.shape[2])
    g["pad_h"], _ = compute_padding(g["stride_h"], 1, oh, fh, compute_out_size(padding, oh, fh, g["stride_h"], 1))
    g["pad_w"], _ = compute_padding(g["stride_w"], 1, ow, fw, compute_out_size(padding, ow, fw, g["stride_w"], 1))
    g["dims"] = {"batches": int(x.shape[0]), "input_h": int(x.shape[1]), "input_w": int(x.shape[2]),
                 "input_ch": int(x.shape[3]), "output_h": oh, "output_w": ow, "output_ch": int(y.shape[3]),
                 "filter_h": fh, "filter_w": fw, "filter_ch": int(x.shape[3])}
    return g


def _check(graph, op, dtype: str) -> None:
    lab = label(op, "TRANSPOSE_CONV")
    if len(op.inputs) < 3 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs; output_shape, filter, input (, bias) expected")
    s = graph.tensors[op.inputs[0]]
    y = graph.tensors[op.outputs[0]]
    if s.dtype != "int32" or s.size != len(y.shape):
        raise UnsupportedError(f"{lab} needs an int32 output_shape of {len(y.shape)} values")
    if s.is_const and [int(v) for v in np.asarray(s.data).reshape(-1)] != [int(d) for d in y.shape]:
        raise UnsupportedError(f"{lab}: output_shape {np.asarray(s.data).tolist()} disagrees with the output "
                               f"tensor's shape {list(y.shape)}")
    if not s.is_const and op.inputs[0] not in graph.inputs:
        raise UnsupportedError(f"{lab} has an output_shape computed at run time; tinyc needs static shapes")
    if dtype == "int16":
        check_16x8(graph, op, lab, 2, 3)
    else:
        x, w = graph.tensors[op.inputs[2]], graph.tensors[op.inputs[1]]
        if not (x.dtype == y.dtype == w.dtype == "int8"):
            raise UnsupportedError(f"{lab} has {x.dtype} input, {w.dtype} filter and {y.dtype} output; "
                                   "tinyc compiles int8 and 16x8 ones")
        for t in (x, y):
            if t.quant is None or t.quant.per_axis:
                raise UnsupportedError(f"{lab} needs per-tensor quantized input and output")
        if not w.is_const or w.quant is None or np.any(w.quant.zero_point != 0):
            raise UnsupportedError(f"{lab} needs constant, quantized, symmetric int8 weights")
        if has_bias(op, 3) and (graph.tensors[op.inputs[3]].dtype != "int32" or not graph.tensors[op.inputs[3]].is_const):
            raise UnsupportedError(f"{lab} needs a constant int32 bias")
    if op.attrs.get("activation", "NONE") not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedError(f"{lab} has fused activation {op.attrs.get('activation')}")
    _geometry(graph, op)


def _lower(graph, op, ctx, dtype: str) -> Lowered:
    x, y = graph.tensors[op.inputs[2]], graph.tensors[op.outputs[0]]
    g = _geometry(graph, op)
    d = g["dims"]
    if dtype == "int16":
        quant, act_min, act_max = requant_arrays(graph, op, ctx, 2, d["output_ch"])
    else:
        w = graph.tensors[op.inputs[1]]
        scales = np.asarray(w.quant.scale, dtype=np.float32)
        scales = np.repeat(scales, d["output_ch"]) if scales.size == 1 else scales
        mult, shift = conv_output_multipliers(x.quant.s, scales, y.quant.s)
        act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
        quant = {"multiplier": ctx.const("multiplier", mult, "int32_t", "per-channel requantization multipliers (Q31)"),
                 "shift": ctx.const("shift", shift, "int32_t", "per-channel requantization shifts")}
    suffix = "s16" if dtype == "int16" else "s8"
    params = ctx.params(f"tinyc_transpose_conv_params_{suffix}", {
        "dims": d,
        "op": conv_op_fields(g, -x.quant.zp, y.quant.zp, act_min, act_max),
        "quant": quant,
        "filter": ctx.ptr(op.inputs[1], "filter"),
        "bias": ctx.ptr(op.inputs[3], "bias") if has_bias(op, 3) else None,
    })
    call = f"tinyc_transpose_conv_{suffix}({params}, {ctx.ptr(op.inputs[2])}, {ctx.ptr(op.outputs[0])});"
    macs = d["batches"] * d["input_h"] * d["input_w"] * d["input_ch"] * d["filter_h"] * d["filter_w"] * d["output_ch"]
    return Lowered(call=call, macs=macs, notes=[
        f"{'16x8' if dtype == 'int16' else 'int8'}; padding top {g['pad_h']}, left {g['pad_w']}; "
        f"the output_shape input is the output tensor's static shape"])


@checker("TRANSPOSE_CONV")
def check_transpose_conv(graph, op):
    _check(graph, op, "int8")


@register("TRANSPOSE_CONV", kernels=["common/transpose_conv_source", "transpose_conv"])
def lower_transpose_conv(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, "int8")


@checker("TRANSPOSE_CONV", dtype="int16")
def check_transpose_conv_s16(graph, op):
    _check(graph, op, "int16")


@register("TRANSPOSE_CONV", kernels=["common/requantize_s64", "common/transpose_conv_source", "transpose_conv_s16"],
          dtype="int16")
def lower_transpose_conv_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, "int16")
