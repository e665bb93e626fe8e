"""CONV_2D and DEPTHWISE_CONV_2D for cores with vectors (AVX2 hosts, AArch64 NEON boards).

Called by the lowerings in conv.py when the target has vectors (`wants_simd`); returns None
where the layer does not fit the fast kernels, and conv.py then lowers it as before. The
data layout is made here, once for every ISA; the kernels (templates/ops/conv_2d_simd.c.j2,
depthwise_conv_2d_simd.c.j2, templates/common/simd_int8.c.j2) pick their inner step with
the preprocessor and keep a portable C step over the same data, so the OUTDIR still builds
and runs bit-exact on any board.

- acc_init = bias + input_offset * sum(w), stored modulo 2^32 (the kernels' int32 sums wrap
  like the reference's).
- CONV_2D weights "OC8xK2": [oc8 / 8][k4 / 2][8 channels][2 k] (channels padded to 8, the
  window K = filter_h * filter_w * input_ch to k4 = ceil4(K), zeros).
- Requantization arrays multiplier, left_shift, right_shift (shift = left - right), padded.
- pair16: no weight is -128, so two int8 products fit an int16 lane (the NEON step);
  otherwise NEON takes the portable step, which is exact for any weight.
"""

from __future__ import annotations

import numpy as np

from tinyc.codegen.gemm_layout import ceil_to
from tinyc.codegen.ops import Lowered

SIMD_FEATURES = ("neon", "avx2")
CONV_KERNELS = ["common/simd_int8", "conv_2d_simd"]
DW_KERNELS = ["common/simd_int8", "depthwise_conv_2d_simd"]
MAX_DW_TAPS = 16        # the NEON step keeps every tap's weights of a channel group in registers


def wants_simd(target) -> bool:
    """Is the C laid out for a core with vectors (the board's [target] features)?"""
    return any(target.has(f) for f in SIMD_FEATURES)


def wrap_s32(v: np.ndarray) -> np.ndarray:
    """int64 -> int32 modulo 2^32."""
    return ((np.asarray(v, dtype=np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def oc8_k2(w: np.ndarray, k4: int) -> np.ndarray:
    """[O][K] weights -> OC8xK2 bytes: [oc8 / 8][k4 / 2][8 channels][2 k], zero padded."""
    o, k = w.shape
    o8 = ceil_to(o, 8)
    wp = np.zeros((o8, k4), dtype=np.int64)
    wp[:o, :k] = w
    return wp.reshape(o8 // 8, 8, k4 // 2, 2).transpose(0, 2, 1, 3).reshape(-1).astype(np.int8)


def shifts_fit(shift: np.ndarray) -> bool:
    """The vector requantization shifts by left in [0, 30] and right in [0, 31]."""
    shift = np.asarray(shift, dtype=np.int64)
    return bool(shift.size) and int(shift.max()) <= 30 and int(shift.min()) >= -31


def quant_fields(ctx, init: np.ndarray, mult, shift, n_padded: int) -> dict:
    """The tinyc_simd_quant_params arrays, padded to n_padded channels (padding: zeros)."""
    def pad(a):
        a = np.asarray(a, dtype=np.int64).reshape(-1)
        return np.concatenate([a, np.zeros(n_padded - a.size, dtype=np.int64)])
    shift = np.asarray(shift, dtype=np.int64)
    return {"acc_init": ctx.const("acc_init", wrap_s32(pad(init)), "int32_t",
                                  "bias + input_offset * sum(filter) per output channel (mod 2^32), padded"),
            "multiplier": ctx.const("multiplier", pad(mult), "int32_t", "requantization multipliers (Q31), padded"),
            "left_shift": ctx.const("left_shift", pad(np.maximum(shift, 0)), "int32_t",
                                    "requantization left shifts, padded"),
            "right_shift": ctx.const("right_shift", pad(np.maximum(-shift, 0)), "int32_t",
                                     "requantization right shifts (rounding), padded")}


def _bias(graph, op, n: int) -> np.ndarray:
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        return graph.tensors[op.inputs[2]].data.astype(np.int64).reshape(-1)
    return np.zeros(n, dtype=np.int64)


def lower_conv_2d_simd(graph, op, ctx, g: dict, fields: dict, mult, shift, notes: list[str]) -> Lowered | None:
    """CONV_2D as a blocked GEMM; `fields` holds the layer's dims and op groups. None: the layer
    has batches, groups or shifts the kernel does not take."""
    w = graph.tensors[op.inputs[1]]
    out_ch, fh, fw, fc = (int(d) for d in w.shape)
    if g["batches"] != 1 or fc != g["in_ch"] or not shifts_fit(shift):
        return None
    k = fh * fw * fc
    k4, oc8 = ceil_to(k, 4), ceil_to(out_ch, 8)
    wk = w.data.astype(np.int64).reshape(out_ch, k)
    input_offset = fields["op"]["input_offset"]
    init = _bias(graph, op, out_ch) + input_offset * wk.sum(axis=1)
    direct = int(fh == fw == 1 and g["stride_h"] == g["stride_w"] == 1 and g["pad_h"] == g["pad_w"] == 0
                 and k == k4)
    pair16 = int(not np.any(wk == -128))
    fields = dict(fields)
    fields["gemm"] = {"k": k, "k4": k4, "oc8": oc8, "direct": direct, "pair16": pair16}
    fields["quant"] = quant_fields(ctx, init, mult, shift, oc8)
    fields["filter"] = ctx.const("filter", oc8_k2(wk, k4), "int8_t",
                                 "filter as OC8xK2: [oc8/8][k4/2][8 channels][2 taps], zero padded")
    params = ctx.params("tinyc_conv_2d_simd_params_s8", fields)
    # 4 windows of k4 int16 (the widest tinyc_simd_act_t), whatever core builds it
    scratch = ctx.scratch(4 * k4 * 2)
    call = ctx.specialised_call("tinyc_conv_2d_simd_s8", params, op.inputs[0], op.outputs[0], scratch)
    macs = g["out_h"] * g["out_w"] * out_ch * k
    note = f"blocked GEMM (OC8xK2 filter, K {k} -> {k4}){'' if pair16 else '; a weight is -128: NEON takes the portable step'}"
    return Lowered(call=call, macs=macs, notes=notes + [note], kernels=CONV_KERNELS)


def lower_depthwise_conv_2d_simd(graph, op, ctx, g: dict, fields: dict, mult, shift,
                                 notes: list[str]) -> Lowered | None:
    """DEPTHWISE_CONV_2D over a zero-point padded plane; None for batches, a depth multiplier,
    dilation, channels not a multiple of 8, more than MAX_DW_TAPS taps or unusual shifts."""
    w = graph.tensors[op.inputs[1]]
    _, fh, fw, c = (int(d) for d in w.shape)
    if (g["batches"] != 1 or c != g["in_ch"] or c % 8 or g["dilation_h"] != 1 or g["dilation_w"] != 1
            or fh * fw > MAX_DW_TAPS or not shifts_fit(shift)):
        return None
    taps = w.data.astype(np.int64).reshape(fh * fw, c)
    init = _bias(graph, op, c) + fields["op"]["input_offset"] * taps.sum(axis=0)
    plane_h = max(g["in_h"] + g["pad_h"], (g["out_h"] - 1) * g["stride_h"] + fh)
    plane_w = max(g["in_w"] + g["pad_w"], (g["out_w"] - 1) * g["stride_w"] + fw)
    c16 = ceil_to(c, 16)
    pair16 = int(not np.any(taps == -128))
    fields = dict(fields)
    fields.update(plane_h=plane_h, plane_w=plane_w, pair16=pair16)
    fields["quant"] = quant_fields(ctx, init, mult, shift, c16)
    fields["filter"] = ctx.const("filter", np.concatenate([taps.reshape(-1), np.zeros(16, np.int64)]).astype(np.int8),
                                 "int8_t", "filter [filter_h][filter_w][channels], then 16 zero bytes")
    params = ctx.params("tinyc_depthwise_conv_2d_simd_params_s8", fields)
    # packed tap-pair weights (AVX2), the plane in int16 (the widest element), slack for the last group
    scratch = ctx.scratch((fh * fw + 1) // 2 * (c16 // 16) * 64 + plane_h * plane_w * c * 2 + 64)
    call = ctx.specialised_call("tinyc_depthwise_conv_2d_simd_s8", params, op.inputs[0], op.outputs[0], scratch)
    macs = g["out_h"] * g["out_w"] * c * fh * fw
    note = f"zero-point padded plane {plane_h}x{plane_w}{'' if pair16 else '; a weight is -128: NEON takes the portable step'}"
    return Lowered(call=call, macs=macs, notes=notes + [note], kernels=DW_KERNELS)
