"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLite kernels/pooling.cc with
reference_integer_ops::AveragePool / MaxPool).

Prepare() computes the output size and the padding before the first row/column
(ComputePaddingHeightWidth, kernels/padding.h); the kernels clamp every window to the input,
so padded taps are skipped and an average divides by the in-bounds tap count only. The
reference requantizes nothing: it expects the output to share the input's quantization
(a DCHECK in Prepare), so tinyc refuses a pool whose output quantization differs.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import InPlace, Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, check_s8_in_out, label, raster_min_gap
from tinyc.quant_math import activation_range_s8

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def out_size(padding: str, image: int, filt: int, stride: int) -> int:
    """TFLite ComputeOutSize (dilation 1)."""
    if padding == "SAME":
        return (image + stride - 1) // stride
    return (image + stride - filt) // stride


def pad_before(stride: int, image: int, filt: int, out: int) -> int:
    """TFLite ComputePaddingWithOffset: the padding before the first row/column."""
    return max((out - 1) * stride + filt - image, 0) // 2


def _geometry(graph, op) -> dict:
    x = graph.tensors[op.inputs[0]]
    a = op.attrs
    n, h, w, c = (int(d) for d in x.shape)
    sh, sw = int(a.get("stride_h", 1)), int(a.get("stride_w", 1))
    fh, fw = int(a.get("filter_h", 1)), int(a.get("filter_w", 1))
    padding = a.get("padding", "VALID")
    oh, ow = out_size(padding, h, fh, sh), out_size(padding, w, fw, sw)
    return dict(batches=n, in_h=h, in_w=w, depth=c, out_h=oh, out_w=ow, stride_h=sh, stride_w=sw,
                filter_h=fh, filter_w=fw, pad_h=pad_before(sh, h, fh, oh), pad_w=pad_before(sw, w, fw, ow))


def _empty_window(g: dict) -> bool:
    """True if some output window holds no input tap (the reference's AveragePool fails)."""
    for out, stride, pad, filt, size in ((g["out_h"], g["stride_h"], g["pad_h"], g["filter_h"], g["in_h"]),
                                         (g["out_w"], g["stride_w"], g["pad_w"], g["filter_w"], g["in_w"])):
        for o in range(out):
            origin = o * stride - pad
            if min(filt, size - origin) <= max(0, -origin):
                return True
    return False


def _check_pool(graph, op):
    lab = label(op)
    x, y = check_s8_in_out(graph, op, lab, 1, "int8 pools")
    if len(x.shape) != 4:
        raise UnsupportedError(f"{lab} has a rank-{len(x.shape)} input; pools take NHWC (rank 4)")
    check_per_tensor(lab, x, y)
    if x.quant.zp != y.quant.zp or abs(float(x.quant.s) - float(y.quant.s)) > 1e-6:
        raise UnsupportedError(
            f"{lab} has input quantization ({x.quant.s:g}, {x.quant.zp}) and output ({y.quant.s:g}, "
            f"{y.quant.zp}); TFLite pools need them equal: re-convert the model")
    act = op.attrs.get("activation", "NONE")
    if act not in _ACTIVATIONS:
        raise UnsupportedError(f"{lab} has fused activation {act}; tinyc supports {', '.join(_ACTIVATIONS)}")
    pad = op.attrs.get("padding", "VALID")
    if pad not in ("SAME", "VALID"):
        raise UnsupportedError(f"{lab} has padding {pad}; SAME or VALID expected")
    a = op.attrs
    dims = [int(a.get(k, 1)) for k in ("stride_h", "stride_w", "filter_h", "filter_w")]
    if min(dims) < 1:  # checked before _geometry, which divides by the stride
        raise UnsupportedError(f"{lab} has stride {dims[0]}x{dims[1]} and filter {dims[2]}x{dims[3]}; "
                               "all must be >= 1")
    g = _geometry(graph, op)
    if g["out_h"] < 1 or g["out_w"] < 1:
        raise UnsupportedError(f"{lab}: a {g['filter_h']}x{g['filter_w']} VALID window does not fit the "
                               f"{g['in_h']}x{g['in_w']} input")
    want = (g["batches"], g["out_h"], g["out_w"], g["depth"])
    if tuple(int(d) for d in y.shape) != want:
        raise UnsupportedError(f"{lab} has output shape {list(y.shape)}, but its attributes give {list(want)}")
    if op.kind == "AVERAGE_POOL_2D" and _empty_window(g):
        raise UnsupportedError(f"{lab} has an output window with no input tap (stride larger than the "
                               "filter plus padding); TFLite's reference kernel rejects it too")


def _lower_pool(graph, op, ctx, fn: str) -> Lowered:
    y = graph.tensors[op.outputs[0]]
    g = _geometry(graph, op)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    params = ctx.params("tinyc_pool_params_s8", {
        "dims": {"batches": g["batches"], "input_h": g["in_h"], "input_w": g["in_w"], "depth": g["depth"],
                 "output_h": g["out_h"], "output_w": g["out_w"], "filter_h": g["filter_h"], "filter_w": g["filter_w"]},
        "op": {"stride_h": g["stride_h"], "stride_w": g["stride_w"], "pad_h": g["pad_h"], "pad_w": g["pad_w"],
               "act_min": act_min, "act_max": act_max},
    })
    call = f"{fn}({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    taps = int(np.prod([g["batches"], g["out_h"], g["out_w"], g["depth"], g["filter_h"], g["filter_w"]]))
    notes = [f"window {g['filter_h']}x{g['filter_w']}, stride {g['stride_h']}x{g['stride_w']}, "
             f"padding before {g['pad_h']}x{g['pad_w']}"]
    # the kernels walk the output pixels in raster order, each channel after its window taps
    inplace = InPlace(0, raster_min_gap(g, g["depth"], g["depth"]))
    return Lowered(call=call, macs=taps, notes=notes, inplace=inplace)


@checker("AVERAGE_POOL_2D")
def check_average_pool_2d(graph, op):
    _check_pool(graph, op)


@register("AVERAGE_POOL_2D", kernels=["average_pool_2d"])
def lower_average_pool_2d(graph, op, ctx) -> Lowered:
    return _lower_pool(graph, op, ctx, "tinyc_average_pool_2d_s8")


@checker("MAX_POOL_2D")
def check_max_pool_2d(graph, op):
    _check_pool(graph, op)


@register("MAX_POOL_2D", kernels=["max_pool_2d"])
def lower_max_pool_2d(graph, op, ctx) -> Lowered:
    return _lower_pool(graph, op, ctx, "tinyc_max_pool_2d_s8")
