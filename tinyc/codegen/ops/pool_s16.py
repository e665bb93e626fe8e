"""AVERAGE_POOL_2D and MAX_POOL_2D, 16x8 (TFLite pooling.cc on int16: reference_integer_ops::
AveragePool / MaxPool): input and output share their quantization, windows are clamped to
the input, the average rounds half away from zero over the in-bounds taps; fused activation
bounds clamped to int16. Geometry as ComputePaddingHeightWidth (dilation 1)."""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, label
from tinyc.codegen.ops.conv import compute_out_size, compute_padding
from tinyc.codegen.ops.conv_s16 import INT16_MAX, INT16_MIN
from tinyc.quant_math import activation_range_s8


def _fields(graph, op) -> dict:
    lab = label(op)
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int16" or y.dtype != "int16" or len(x.shape) != 4 or len(y.shape) != 4:
        raise UnsupportedError(f"{lab} needs 4-D int16 input and output here")
    check_per_tensor(lab, x, y)
    if x.quant.s != y.quant.s or x.quant.zp != y.quant.zp:
        raise UnsupportedError(f"{lab} rescales; TFLite's pools keep the input's quantization")
    a = op.attrs
    sh, sw, fh, fw = (int(a.get(k, 1)) for k in ("stride_h", "stride_w", "filter_h", "filter_w"))
    padding = a.get("padding", "VALID")
    if min(sh, sw, fh, fw) < 1 or padding not in ("SAME", "VALID"):
        raise UnsupportedError(f"{lab} has strides {sh}x{sw}, filter {fh}x{fw}, padding {padding}")
    n, ih, iw, c = (int(d) for d in x.shape)
    oh, ow = compute_out_size(padding, ih, fh, sh, 1), compute_out_size(padding, iw, fw, sw, 1)
    if tuple(int(d) for d in y.shape) != (n, oh, ow, c):
        raise UnsupportedError(f"{lab}: output shape {tuple(y.shape)} disagrees with the window; inconsistent model")
    act = a.get("activation", "NONE")
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedError(f"{lab} has fused activation {act}")
    act_min, act_max = activation_range_s8(act, y.quant.s, y.quant.zp, INT16_MIN, INT16_MAX)
    return {"dims": {"batches": n, "input_h": ih, "input_w": iw, "depth": c, "output_h": oh, "output_w": ow,
                     "filter_h": fh, "filter_w": fw},
            "op": {"stride_h": sh, "stride_w": sw, "pad_h": compute_padding(sh, 1, ih, fh, oh)[0],
                   "pad_w": compute_padding(sw, 1, iw, fw, ow)[0], "act_min": act_min, "act_max": act_max}}


def _lower(graph, op, ctx, kernel: str) -> Lowered:
    params = ctx.params("tinyc_pool_params_s16", _fields(graph, op))
    return Lowered(call=f"tinyc_{kernel}_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});",
                   notes=["16x8"])


@checker("AVERAGE_POOL_2D", dtype="int16")
def check_average_pool_2d_s16(graph, op):
    _fields(graph, op)


@register("AVERAGE_POOL_2D", kernels=["pool_s16"], dtype="int16")
def lower_average_pool_2d_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, "average_pool_2d")


@checker("MAX_POOL_2D", dtype="int16")
def check_max_pool_2d_s16(graph, op):
    _fields(graph, op)


@register("MAX_POOL_2D", kernels=["pool_s16"], dtype="int16")
def lower_max_pool_2d_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, "max_pool_2d")
