"""CONV_2D and DEPTHWISE_CONV_2D, int8 activations and weights, int32 bias.

Follows TFLite's conv.cc / depthwise_conv.cc Prepare() and the reference kernels
reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel, which LiteRT's
BUILTIN_REF resolver runs for int8:

- padding as ComputePaddingHeightWidth: out = ceil(in / stride) (SAME) or
  (in - eff_filter + stride) / stride (VALID), pad = max(total, 0) / 2 on the top/left;
  the odd remainder ("offset") only matters to optimized kernels and goes bottom/right,
  which the reference realises by skipping taps outside the image;
- one (multiplier, shift) per output channel from double(input_scale) *
  double(filter_scale[c]) / double(output_scale), per-tensor filter scales broadcast;
- fused activation bounds as CalculateActivationRangeQuantized;
- CONV_2D groups = input channels / filter input channels (the reference supports it).

Requantization is gemmlowp's double rounding (tinyc_requantize_double_s32): LiteRT 2.3's
BUILTIN_REF conv and depthwise kernels disagree with single rounding on ~1 output in 1000.

Speed without changing results: the reference adds `filter * (input + input_offset)` over
the taps inside the image. For a window fully inside the image that sum equals
`sum(filter * input) + input_offset * sum(filter)`, so the second term is folded with the
bias into a per-channel constant (`acc_init`) at generation time and the inner loops are
plain int8 dot products (SXTB16/SMLAD on Arm cores with the DSP extension). CONV_2D copies
a border window into a small scratch buffer padded with the input zero point (those taps
then add exactly 0) and runs the same code; DEPTHWISE_CONV_2D, whose inputs are used once
per pixel, runs the reference formula over the taps inside. If `acc_init` would leave
int32, both kernels fall back to the reference loop everywhere.

Which kernel a layer takes: on a target with vectors (the board's neon / avx2 features) the
vector-core kernels (ops/simd.py); otherwise the specialised GEMM / planar kernels (SMLAD on
DSP cores, portable C elsewhere); where neither applies, and always under --optimize size,
the shared kernels above. Every choice keeps a portable C path, so any OUTDIR builds anywhere.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import TinycError, UnsupportedError
from tinyc.codegen import gemm_layout
from tinyc.codegen.ops import InPlace, Lowered, checker, register, simd
from tinyc.codegen.ops._gemm import folded_quant, gemm_filter
from tinyc.codegen.ops._common import label as _label, raster_min_gap
from tinyc.codegen.ops._encoded import (DECODER_KERNEL, encode_weights, encoded_bias, encoded_filter, lut_bytes,
                                        weight_encoding)
from tinyc.quant_math import activation_range_s8, conv_output_multipliers

_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def _has_bias(op) -> bool:
    return len(op.inputs) > 2 and op.inputs[2] >= 0


def compute_out_size(padding: str, image: int, filt: int, stride: int, dilation: int) -> int:
    """TFLite ComputeOutSize (kernels/padding.h)."""
    eff = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (image + stride - 1) // stride
    return (image + stride - eff) // stride


def compute_padding(stride: int, dilation: int, image: int, filt: int, out: int) -> tuple[int, int]:
    """TFLite ComputePaddingWithOffset: (padding before, odd offset added after)."""
    eff = (filt - 1) * dilation + 1
    total = max((out - 1) * stride + eff - image, 0)
    return total // 2, total % 2


def _tap_range(origin: int, dilation: int, size: int, taps: int) -> tuple[int, int]:
    """The filter taps whose coordinate origin + tap * dilation lies in [0, size) (as the kernels)."""
    lo = max(0, -(origin // dilation)) if origin < 0 else 0
    hi = 0 if size - origin <= 0 else min(taps, -(-(size - origin) // dilation))
    return min(lo, hi), hi


def has_border_windows(g: dict) -> bool:
    """True if some output pixel's window has taps outside the image (zero padding used)."""
    def partial(out, stride, pad, dilation, size, taps):
        return any(_tap_range(o * stride - pad, dilation, size, taps) != (0, taps) for o in range(out))
    return (partial(g["out_h"], g["stride_h"], g["pad_h"], g["dilation_h"], g["in_h"], g["filter_h"])
            or partial(g["out_w"], g["stride_w"], g["pad_w"], g["dilation_w"], g["in_w"], g["filter_w"]))


def _check_common(graph, op, kind: str) -> None:
    lab = _label(op, kind)
    if len(op.inputs) < 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                               "expected input, filter, optional bias and one output")
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if not (x.dtype == w.dtype == y.dtype == "int8"):
        raise UnsupportedError(
            f"{lab} has {x.dtype} input, {w.dtype} filter and {y.dtype} output; "
            "tinyc compiles int8 ones: quantize the model to full int8")
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        raise UnsupportedError(f"{lab} has input/filter/output ranks {len(x.shape)}/{len(w.shape)}/"
                               f"{len(y.shape)}; 4-D NHWC tensors expected")
    if not w.is_const:
        raise UnsupportedError(f"{lab} has a non-constant filter; tinyc needs constant weights")
    for t, what in ((x, "input"), (y, "output")):
        if t.quant is None or t.quant.per_axis:
            raise UnsupportedError(f"{lab} has a{'n unquantized' if t.quant is None else ' per-axis quantized'} "
                                   f"{what}; int8 per-tensor activations expected")
    if w.quant is None:
        raise UnsupportedError(f"{lab} has an unquantized filter; quantize the model to full int8")
    if np.any(w.quant.zero_point != 0):
        raise UnsupportedError(f"{lab} has filter zero points other than 0; "
                               "int8 weights must be symmetric (TFLite's int8 spec)")
    if _has_bias(op):
        b = graph.tensors[op.inputs[2]]
        if b.dtype != "int32":
            raise UnsupportedError(f"{lab} has a {b.dtype} bias; int32 expected (int8 activations)")
        if not b.is_const:
            raise UnsupportedError(f"{lab} has a non-constant bias; tinyc needs it constant")
    act = op.attrs.get("activation", "NONE")
    if act not in _ACTIVATIONS:
        raise UnsupportedError(f"{lab} has fused activation {act}; int8 kernels support "
                               f"{', '.join(_ACTIVATIONS)}")
    padding = op.attrs.get("padding", "SAME")
    if padding not in ("SAME", "VALID"):
        raise UnsupportedError(f"{lab} has padding {padding}; SAME or VALID expected")
    for key in ("stride_h", "stride_w", "dilation_h", "dilation_w"):
        if int(op.attrs.get(key, 1)) < 1:
            raise UnsupportedError(f"{lab} has {key} = {op.attrs.get(key)}; it must be >= 1")


def _geometry(graph, op, kind: str, filter_h: int, filter_w: int, out_ch: int) -> dict:
    """Output size and padding as Prepare() computes them; checks the output tensor agrees."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    a = op.attrs
    g = dict(
        batches=int(x.shape[0]), in_h=int(x.shape[1]), in_w=int(x.shape[2]), in_ch=int(x.shape[3]),
        filter_h=filter_h, filter_w=filter_w,
        stride_h=int(a.get("stride_h", 1)), stride_w=int(a.get("stride_w", 1)),
        dilation_h=int(a.get("dilation_h", 1)), dilation_w=int(a.get("dilation_w", 1)),
    )
    padding = a.get("padding", "SAME")
    g["out_h"] = compute_out_size(padding, g["in_h"], filter_h, g["stride_h"], g["dilation_h"])
    g["out_w"] = compute_out_size(padding, g["in_w"], filter_w, g["stride_w"], g["dilation_w"])
    g["pad_h"], _ = compute_padding(g["stride_h"], g["dilation_h"], g["in_h"], filter_h, g["out_h"])
    g["pad_w"], _ = compute_padding(g["stride_w"], g["dilation_w"], g["in_w"], filter_w, g["out_w"])
    g["out_ch"] = out_ch
    expected = (g["batches"], g["out_h"], g["out_w"], out_ch)
    if g["out_h"] <= 0 or g["out_w"] <= 0:
        raise TinycError(f"{_label(op, kind)}: a {filter_h}x{filter_w} filter (dilation "
                         f"{g['dilation_h']}x{g['dilation_w']}) does not fit the {g['in_h']}x{g['in_w']} "
                         "input with VALID padding")
    if tuple(int(d) for d in y.shape) != expected:
        raise TinycError(f"{_label(op, kind)}: output shape {tuple(y.shape)} disagrees with {expected} "
                         "computed from input, filter, stride and padding; the model is inconsistent")
    return g


def _requant_consts(graph, op, out_ch: int):
    x, w, y = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    scales = np.asarray(w.quant.scale, dtype=np.float32)
    if scales.size == 1:  # per-tensor weights: broadcast along the output channels, as TFLite
        scales = np.repeat(scales, out_ch)
    mult, shift = conv_output_multipliers(x.quant.s, scales, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    return mult, shift, act_min, act_max


def _quant_fields(graph, op, ctx, out_ch: int) -> tuple[dict, int, int]:
    """The per-channel multipliers and shifts as weights.c arrays (the .quant group), and the
    activation bounds."""
    mult, shift, act_min, act_max = _requant_consts(graph, op, out_ch)
    quant = {"multiplier": ctx.const("multiplier", mult, "int32_t", "per-channel requantization multipliers (Q31)"),
             "shift": ctx.const("shift", shift, "int32_t", "per-channel requantization shifts")}
    return quant, act_min, act_max


def _op_fields(g: dict, input_offset: int, output_offset: int, act_min: int, act_max: int) -> dict:
    """The .op group (tinyc_conv_op_params) of a conv / depthwise layer, raw or encoded."""
    return {"stride_h": g["stride_h"], "stride_w": g["stride_w"],
            "dilation_h": g["dilation_h"], "dilation_w": g["dilation_w"], "pad_h": g["pad_h"], "pad_w": g["pad_w"],
            "input_offset": input_offset, "output_offset": output_offset, "act_min": act_min, "act_max": act_max}


def _dims_fields(g: dict, last: str, last_value: int) -> dict:
    """The .dims group: tinyc_conv_dims (last = filter_ch) or tinyc_depthwise_conv_dims
    (last = depth_multiplier)."""
    return {"batches": g["batches"], "input_h": g["in_h"], "input_w": g["in_w"], "input_ch": g["in_ch"],
            "output_h": g["out_h"], "output_w": g["out_w"], "output_ch": g["out_ch"],
            "filter_h": g["filter_h"], "filter_w": g["filter_w"], last: last_value}


def _raster_inplace(g: dict) -> InPlace:
    """The raw conv and depthwise kernels walk the output pixels in raster order, reading a
    pixel's window while writing its channels (the border window goes through scratch first)."""
    return InPlace(0, raster_min_gap(g, g["in_ch"], g["out_ch"]))


def _bias(graph, op, ctx):
    return ctx.ptr(op.inputs[2], "bias") if _has_bias(op) else None


def layer_note(g: dict, act_min: int, act_max: int) -> str:
    return f"padding top {g['pad_h']}, left {g['pad_w']}; activation range [{act_min}, {act_max}]"


def _lower_simd(graph, op, ctx, g: dict, lower, last: str, last_value: int) -> Lowered | None:
    """The vector-core kernel (ops/simd.py) when the target has vectors and the weights are raw;
    not under --optimize size (the shared kernels: the smallest code)."""
    if (not simd.wants_simd(ctx.target) or ctx.target.optimize == "size"
            or weight_encoding(graph, op) is not None):
        return None
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    mult, shift, act_min, act_max = _requant_consts(graph, op, g["out_ch"])
    fields = {"dims": _dims_fields(g, last, last_value),
              "op": _op_fields(g, -x.quant.zp, y.quant.zp, act_min, act_max)}
    return lower(graph, op, ctx, g, fields, mult, shift, [layer_note(g, act_min, act_max)])


def _acc_init(graph, op, filter_sums: np.ndarray, input_offset: int):
    """bias + input_offset * sum(filter) per output channel, or None if it leaves int32."""
    bias = np.zeros(filter_sums.shape, dtype=np.int64)
    if _has_bias(op):
        bias = graph.tensors[op.inputs[2]].data.astype(np.int64).reshape(-1)
    init = bias + np.int64(input_offset) * filter_sums.astype(np.int64)
    if init.min() < _INT32_MIN or init.max() > _INT32_MAX:
        return None
    return init


def _check_channels(graph, op, kind: str, w, out_ch: int, axis: int) -> None:
    """Filter scales and bias per output channel (along the filter's `axis`), then the geometry."""
    n = w.quant.scale.size
    if n != 1 and (n != out_ch or w.quant.axis != axis):
        raise UnsupportedError(f"{_label(op, kind)} has {n} filter scales along axis {w.quant.axis}; "
                               f"expected 1 or {out_ch} along axis {axis}")
    if _has_bias(op) and graph.tensors[op.inputs[2]].size != out_ch:
        raise UnsupportedError(f"{_label(op, kind)} has {graph.tensors[op.inputs[2]].size} bias values for "
                               f"{out_ch} output channels")
    _geometry(graph, op, kind, int(w.shape[1]), int(w.shape[2]), out_ch)


# ----------------------------------------------------------------------------------- CONV_2D

@checker("CONV_2D")
def check_conv_2d(graph, op):
    _check_common(graph, op, "CONV_2D")
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    in_ch, out_ch, filter_in_ch = int(x.shape[3]), int(w.shape[0]), int(w.shape[3])
    lab = _label(op, "CONV_2D")
    if filter_in_ch <= 0 or in_ch % filter_in_ch != 0:
        raise UnsupportedError(f"{lab} has {in_ch} input channels and a filter over {filter_in_ch}; "
                               "grouped convolution needs input channels divisible by filter channels")
    groups = in_ch // filter_in_ch
    if out_ch % groups != 0:
        raise UnsupportedError(f"{lab} has {groups} groups and {out_ch} output channels; "
                               "output channels must be divisible by the groups")
    _check_channels(graph, op, "CONV_2D", w, out_ch, 0)


@register("CONV_2D", kernels=["common/conv_tap_range", "conv_2d"])
def lower_conv_2d(graph, op, ctx) -> Lowered:
    x, w, y = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    out_ch, filter_h, filter_w, filter_in_ch = (int(d) for d in w.shape)
    g = _geometry(graph, op, "CONV_2D", filter_h, filter_w, out_ch)
    groups = g["in_ch"] // filter_in_ch
    input_offset = -x.quant.zp
    fast = _lower_simd(graph, op, ctx, g, simd.lower_conv_2d_simd, "filter_ch", filter_in_ch)
    if fast is None and groups == 1 and weight_encoding(graph, op) is None:
        fast = _lower_conv_2d_gemm(graph, op, ctx, g)
    if fast is not None:
        return fast
    quant, act_min, act_max = _quant_fields(graph, op, ctx, out_ch)
    fields = {"dims": _dims_fields(g, "filter_ch", filter_in_ch),
              "op": _op_fields(g, input_offset, y.quant.zp, act_min, act_max), "quant": quant}
    notes = [layer_note(g, act_min, act_max) + (f"; {groups} groups" if groups > 1 else "")]
    enc = weight_encoding(graph, op)
    if enc is not None:
        return _lower_conv_2d_encoded(graph, op, ctx, enc, fields, g, notes)
    sums = w.data.astype(np.int64).reshape(out_ch, -1).sum(axis=1)
    init = _acc_init(graph, op, sums, input_offset)
    fields["filter"] = ctx.ptr(op.inputs[1], "filter")
    fields["bias"] = _bias(graph, op, ctx)
    fields["acc_init"] = None if init is None else ctx.const(
        "acc_init", init, "int32_t", "bias + input_offset * sum(filter) per output channel")
    # Border windows are copied, zero-point padded, into a scratch window (see the kernel).
    window = "NULL"
    if init is not None and has_border_windows(g):
        window = ctx.scratch(filter_h * filter_w * g["in_ch"])
    params = ctx.params("tinyc_conv_2d_params_s8", fields)
    call = f"tinyc_conv_2d_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {window});"
    macs = g["batches"] * g["out_h"] * g["out_w"] * out_ch * filter_h * filter_w * filter_in_ch
    return Lowered(call=call, macs=macs, notes=notes, inplace=_raster_inplace(g))


def _specialisable(ctx, g: dict) -> bool:
    """The specialised conv kernels take batch 1, no dilation, and are not used under
    --optimize size (which keeps the shared kernels: the smallest code), nor where the balanced
    plan keeps the shared kernel because the specialised one's scratch would raise the arena."""
    return (ctx.specialise and g["batches"] == 1
            and g["dilation_h"] == 1 and g["dilation_w"] == 1)


def _folded_requant(graph, op, w2: np.ndarray, pad_to: int | None = None):
    """gemm_layout.requant_records for a conv / depthwise layer ([O][K] weights), or None."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    mult, shift, act_min, act_max = _requant_consts(graph, op, w2.shape[0])
    bias = graph.tensors[op.inputs[2]].data if _has_bias(op) else None
    rq = gemm_layout.requant_records(w2, bias, -x.quant.zp, mult, shift, y.quant.zp, act_min, act_max,
                                     single=False, pad_to=pad_to)
    return rq, act_min, act_max


def _lower_conv_2d_gemm(graph, op, ctx, g: dict) -> Lowered | None:
    """CONV_2D as im2col + GEMM (conv_2d_gemm): pair-interleaved weights, folded requantization,
    in a function of its own; None where it does not apply (the general kernel then runs)."""
    x, w, y = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    if not _specialisable(ctx, g):
        return None
    out_ch = g["out_ch"]
    w2 = w.data.astype(np.int64).reshape(out_ch, -1)
    rq, act_min, act_max = _folded_requant(graph, op, w2, pad_to=out_ch + out_ch % 2)
    if rq is None:
        return None
    depth4 = gemm_layout.ceil_to(w2.shape[1], 4)
    filt, filt16, what = gemm_filter(ctx, w2, depth4)
    fields = {"dims": _dims_fields(g, "filter_ch", g["in_ch"]),
              "op": _op_fields(g, -x.quant.zp, y.quant.zp, act_min, act_max),
              "quant": folded_quant(ctx, rq), "depth4": depth4, "filter": filt, "filter16": filt16}
    params = ctx.params("tinyc_conv_2d_gemm_params_s8", fields)
    # two widened windows, and a byte window to gather a layer of 1-3 input channels
    scratch = ctx.scratch(2 * 2 * depth4 + (depth4 if g["in_ch"] % 4 else 0))
    call = ctx.specialised_call("tinyc_conv_2d_gemm_s8", params, op.inputs[0], op.outputs[0], scratch)
    notes = [layer_note(g, act_min, act_max),
             f"specialised: im2col + GEMM, 2 channels x 2 pixels per pass, {what}"
             + (f", {rq.dead} dead channels folded to constants" if rq.dead else "")]
    # pixels p, p+1 are written after both windows were read (im2col): writing them must only
    # spare the windows of the pixels after (1x1, stride 1: (P - 2) * (Cout - Cin), 0 if Cout <= Cin)
    inplace = InPlace(0, raster_min_gap(g, g["in_ch"], out_ch, block=2))
    macs = g["out_h"] * g["out_w"] * out_ch * w2.shape[1]
    return Lowered(call=call, macs=macs, notes=notes, kernels=["common/gemm_s8", "conv_2d_gemm"], inplace=inplace)


def _lower_conv_2d_encoded(graph, op, ctx, enc: dict, fields: dict, g: dict, notes: list[str]) -> Lowered:
    """CONV_2D whose filter is stored encoded (tinyc/codegen/ops/_encoded.py)."""
    w = graph.tensors[op.inputs[1]]
    e = encode_weights(graph, op, enc)
    filter_fields, enc_notes = encoded_filter(ctx, e)
    filter_size = int(np.prod(w.shape[1:]))
    lut = lut_bytes(e)
    fields.update(filter=filter_fields, **encoded_bias(graph, op, ctx), lut_bytes=lut)
    # scratch: Huffman tables (uint16), packed taps (int32), the decoded filter
    scratch = ctx.scratch(lut + 4 * filter_size + filter_size)
    params = ctx.params("tinyc_conv_2d_encoded_params_s8", fields)
    call = f"tinyc_conv_2d_encoded_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {scratch});"
    macs = g["batches"] * g["out_h"] * g["out_w"] * int(np.count_nonzero(w.data))
    return Lowered(call=call, macs=macs, notes=enc_notes + notes,
                   kernels=[DECODER_KERNEL, "common/conv_tap_range", "conv_2d_sparse"])


# ------------------------------------------------------------------------- DEPTHWISE_CONV_2D

@checker("DEPTHWISE_CONV_2D")
def check_depthwise_conv_2d(graph, op):
    _check_common(graph, op, "DEPTHWISE_CONV_2D")
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    lab = _label(op, "DEPTHWISE_CONV_2D")
    in_ch, out_ch = int(x.shape[3]), int(w.shape[3])
    if int(w.shape[0]) != 1:
        raise UnsupportedError(f"{lab} has filter shape {tuple(w.shape)}; [1, h, w, channels] expected")
    if in_ch <= 0 or out_ch % in_ch != 0:
        raise UnsupportedError(f"{lab} has {out_ch} filter channels for {in_ch} input channels; "
                               "they must be a multiple (the depth multiplier)")
    # The depth_multiplier attribute is redundant: LiteRT derives it from the shapes (checked
    # with ai-edge-litert 2.3: 0 or a wrong value gives the same results), and so does tinyc.
    _check_channels(graph, op, "DEPTHWISE_CONV_2D", w, out_ch, 3)


@register("DEPTHWISE_CONV_2D", kernels=["common/conv_tap_range", "depthwise_conv_2d"])
def lower_depthwise_conv_2d(graph, op, ctx) -> Lowered:
    x, w, y = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    _, filter_h, filter_w, out_ch = (int(d) for d in w.shape)
    g = _geometry(graph, op, "DEPTHWISE_CONV_2D", filter_h, filter_w, out_ch)
    depth_multiplier = out_ch // g["in_ch"]
    input_offset = -x.quant.zp
    fast = _lower_simd(graph, op, ctx, g, simd.lower_depthwise_conv_2d_simd, "depth_multiplier", depth_multiplier)
    if fast is None and depth_multiplier == 1 and weight_encoding(graph, op) is None:
        fast = _lower_depthwise_planar(graph, op, ctx, g)
    if fast is not None:
        return fast
    quant, act_min, act_max = _quant_fields(graph, op, ctx, out_ch)
    fields = {"dims": _dims_fields(g, "depth_multiplier", depth_multiplier),
              "op": _op_fields(g, input_offset, y.quant.zp, act_min, act_max), "quant": quant}
    notes = [layer_note(g, act_min, act_max) + f"; depth multiplier {depth_multiplier}"]
    enc = weight_encoding(graph, op)
    if enc is not None:
        return _lower_depthwise_conv_2d_encoded(graph, op, ctx, enc, fields, g, notes)
    sums = w.data.astype(np.int64).reshape(-1, out_ch).sum(axis=0)
    init = _acc_init(graph, op, sums, input_offset)
    fields["filter"] = ctx.ptr(op.inputs[1], "filter")
    fields["bias"] = _bias(graph, op, ctx)
    fields["acc_init"] = None if init is None else ctx.const(
        "acc_init", init, "int32_t", "bias + input_offset * sum(filter) per output channel")
    params = ctx.params("tinyc_depthwise_conv_2d_params_s8", fields)
    call = f"tinyc_depthwise_conv_2d_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    macs = g["batches"] * g["out_h"] * g["out_w"] * out_ch * filter_h * filter_w
    return Lowered(call=call, macs=macs, notes=notes, inplace=_raster_inplace(g))


def _depthwise_planar_shape(g: dict) -> str | None:
    """Which planar kernel a depthwise layer takes: "planar" (3x3, stride 1 or 2), "column"
    (k x 1 on a width-1 image, stride 1, enough output rows to pay for the transposition), or None."""
    if (g["filter_h"], g["filter_w"]) == (3, 3) and g["stride_h"] == g["stride_w"] in (1, 2):
        return "planar"
    if (g["filter_w"] == 1 and g["in_w"] == 1 and g["out_w"] == 1 and g["stride_h"] == 1
            and g["out_h"] >= 4):
        return "column"
    return None


# the int16 planes the planar depthwise kernels keep at once (a strip of channels)
PLANAR_SCRATCH_BYTES = 1024


def _pack_s16(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(lo, hi) int16 pairs as int32 words, lo in the low half (the kernel's tinyc_dw_pack)."""
    word = (lo.astype(np.int64) & 0xFFFF) | ((hi.astype(np.int64) & 0xFFFF) << 16)
    return np.where(word >= 1 << 31, word - (1 << 32), word).astype(np.int64)


def _planar_min_gap(g: dict) -> int:
    """In-place gap of the 3x3 planar kernel: output row oy is written once input rows up to
    oy * stride - pad + 2 are in the ring, so it must end before the first unread input row."""
    row_in, row_out = g["in_w"] * g["in_ch"], g["out_w"] * g["out_ch"]
    gap = 0
    for oy in range(g["out_h"]):
        read = min(g["in_h"], max(0, oy * g["stride_h"] - g["pad_h"] + 3))
        gap = max(gap, (oy + 1) * row_out - read * row_in)
    return gap


def _lower_depthwise_planar(graph, op, ctx, g: dict) -> Lowered | None:
    """DEPTHWISE_CONV_2D on int16 channel planes (depthwise_conv_2d_planar), folded
    requantization, in a function of its own; None where it does not apply."""
    x, w, y = (graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]])
    shape = _depthwise_planar_shape(g)
    if not _specialisable(ctx, g) or shape is None:
        return None
    c = g["out_ch"]
    w2 = w.data.astype(np.int64).reshape(-1, c).T
    rq, act_min, act_max = _folded_requant(graph, op, w2)
    if rq is None:
        return None
    filt = w.data.astype(np.int64).reshape(g["filter_h"], g["filter_w"], c)
    if shape == "planar":
        plane = gemm_layout.ceil_to(max((g["out_w"] - 1) * g["stride_w"] + 4, g["pad_w"] + g["in_w"]), 2)
        per_channel = 2 * 3 * plane                      # the ring: 3 rows of int16
        taps = np.stack([_pack_s16(filt[ky, 0], filt[ky, 1]) if j == 0 else _pack_s16(filt[ky, 1], filt[ky, 2])
                         for ky in range(3) for j in range(2)], axis=1)
        kernel, gap = "tinyc_depthwise_conv_2d_planar_s8", _planar_min_gap(g)
        how = f"3x3 on int16 channel planes (ring of 3 rows of {plane}), 2 outputs per step"
    else:
        kp = (g["filter_h"] + 1) // 2
        plane = gemm_layout.ceil_to(max(g["out_h"] + 2 * kp, g["pad_h"] + g["in_h"]), 2)
        per_channel = 2 * plane                          # the channel's whole column
        col = np.concatenate([filt[:, 0], np.zeros((2 * kp - g["filter_h"], c), np.int64)])
        taps = np.stack([_pack_s16(col[2 * j], col[2 * j + 1]) for j in range(kp)], axis=1)
        kernel, gap = "tinyc_depthwise_conv_2d_column_s8", 0   # a strip reads all its input first
        how = f"{g['filter_h']}x1 along int16 channel planes of {plane}, taps in pairs"
    strip = max(1, min(c, PLANAR_SCRATCH_BYTES // per_channel))
    if strip < c:
        # strips: each output byte must lie on an input byte of its own channel, whose rows the
        # strip reads in order: exactly a multiple of the pixel (and of the alignment) before
        step = np.lcm(c, 16)
        inplace = InPlace(0, -(-gap // step) * step, exact=True)
        how += f", strips of {strip} channels"
    else:
        inplace = InPlace(0, gap)
    fields = {"dims": _dims_fields(g, "depth_multiplier", 1),
              "op": _op_fields(g, -x.quant.zp, y.quant.zp, act_min, act_max),
              "quant": folded_quant(ctx, rq), "plane_w": plane, "strip": strip,
              "taps": ctx.const("taps", taps, "int32_t", "pairs of int16 taps per channel (the kernel's order)")}
    params = ctx.params("tinyc_depthwise_conv_2d_planar_params_s8", fields)
    call = ctx.specialised_call(kernel, params, op.inputs[0], op.outputs[0], ctx.scratch(strip * per_channel))
    notes = [layer_note(g, act_min, act_max), f"specialised: {how}"
             + (f", {rq.dead} dead channels folded to constants" if rq.dead else "")]
    macs = g["out_h"] * g["out_w"] * c * g["filter_h"] * g["filter_w"]
    return Lowered(call=call, macs=macs, notes=notes, inplace=inplace,
                   kernels=["common/gemm_s8", "depthwise_conv_2d_planar"])


def _lower_depthwise_conv_2d_encoded(graph, op, ctx, enc: dict, fields: dict, g: dict,
                                     notes: list[str]) -> Lowered:
    """DEPTHWISE_CONV_2D whose filter is stored encoded (tinyc/codegen/ops/_encoded.py)."""
    w = graph.tensors[op.inputs[1]]
    e = encode_weights(graph, op, enc)
    filter_fields, enc_notes = encoded_filter(ctx, e)
    taps = g["filter_h"] * g["filter_w"]
    lut = lut_bytes(e)
    fields.update(filter=filter_fields, **encoded_bias(graph, op, ctx), lut_bytes=lut)
    scratch = ctx.scratch(lut + 4 * taps + taps)
    params = ctx.params("tinyc_depthwise_conv_2d_encoded_params_s8", fields)
    call = (f"tinyc_depthwise_conv_2d_encoded_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, "
            f"{scratch});")
    macs = g["batches"] * g["out_h"] * g["out_w"] * int(np.count_nonzero(w.data))
    return Lowered(call=call, macs=macs, notes=enc_notes + notes,
                   kernels=[DECODER_KERNEL, "common/conv_tap_range", "depthwise_conv_2d_sparse"])
