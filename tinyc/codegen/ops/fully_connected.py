"""FULLY_CONNECTED, int8 weights per-tensor or per-channel, optional bias."""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen import gemm_layout
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._gemm import folded_quant, gemm_filter
from tinyc.codegen.ops._encoded import (DECODER_KERNEL, encode_weights, encoded_bias, encoded_filter, lut_bytes,
                                        weight_encoding)
from tinyc.quant_math import activation_range_s8, conv_output_multipliers


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
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    output_depth, accum_depth = int(w.shape[0]), int(w.shape[-1])
    batches = x.size // accum_depth
    mult, shift = conv_output_multipliers(x.quant.s, w.quant.scale, y.quant.s)
    per_channel = w.quant.per_axis
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    which = "per-channel" if per_channel else "per-tensor"
    fields = {
        "dims": {"batches": batches, "accum_depth": accum_depth, "output_depth": output_depth},
        "op": {"input_offset": -x.quant.zp, "filter_offset": -int(w.quant.zero_point[0]),
               "output_offset": y.quant.zp, "act_min": act_min, "act_max": act_max},
    }
    enc = weight_encoding(graph, op)
    if enc is None:
        fast = _lower_fully_connected_gemm(graph, op, ctx, fields, mult, shift)
        if fast is not None:
            return fast
    fields["quant"] = {
        "multiplier": ctx.const("multiplier", mult, "int32_t", f"{which} requantization multipliers (Q31)"),
        "shift": ctx.const("shift", shift, "int32_t", f"{which} requantization shifts"),
        "per_channel": int(per_channel)}
    if enc is not None:
        return _lower_fully_connected_encoded(graph, op, ctx, enc, fields)
    fields["filter"] = ctx.ptr(op.inputs[1], "filter")
    fields["bias"] = _bias(op, ctx)
    params = ctx.params("tinyc_fully_connected_params_s8", fields)
    call = f"tinyc_fully_connected_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=batches * accum_depth * output_depth)


def _lower_fully_connected_gemm(graph, op, ctx, fields: dict, mult, shift) -> Lowered | None:
    """The specialised kernel (fully_connected_gemm): pair-interleaved weights, the input offset
    in acc_init, folded single-rounding records; None where it does not apply (--optimize
    size, a layer the balanced plan keeps shared, asymmetric weights, or a layer where the folded requantization is not exact)."""
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    dims, o = fields["dims"], fields["op"]
    # the folded form rounds once, as LiteRT; TFLM's double rounding takes the shared kernel
    if not ctx.specialise or o["filter_offset"] != 0 or ctx.target.numerics != "litert":
        return None
    w2 = w.data.astype(np.int64).reshape(dims["output_depth"], dims["accum_depth"])
    bias = graph.tensors[op.inputs[2]].data if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    rq = gemm_layout.requant_records(w2, bias, o["input_offset"], mult, shift, o["output_offset"],
                                     o["act_min"], o["act_max"], single=True,
                                     pad_to=dims["output_depth"] + dims["output_depth"] % 2)
    if rq is None:
        return None
    depth4 = gemm_layout.ceil_to(dims["accum_depth"], 4)
    filt, filt16, what = gemm_filter(ctx, w2, depth4)
    fields = {"dims": dims, "op": o, "quant": folded_quant(ctx, rq), "depth4": depth4,
              "filter": filt, "filter16": filt16}
    params = ctx.params("tinyc_fully_connected_gemm_params_s8", fields)
    # batch 1, whole groups of 4, int8 weights: the kernel reads the input directly, no scratch
    direct = dims["batches"] == 1 and depth4 == dims["accum_depth"] and filt16 is None
    scratch = "NULL" if direct else ctx.scratch(2 * 2 * depth4)
    call = ctx.specialised_call("tinyc_fully_connected_gemm_s8", params, op.inputs[0], op.outputs[0], scratch)
    notes = [f"specialised: input offset folded into acc_init, "
             + ("int8 input read directly, 4 channels per pass" if direct else "channel pairs x 2 rows per pass")
             + f", {what}"]
    return Lowered(call=call, macs=dims["batches"] * dims["accum_depth"] * dims["output_depth"], notes=notes,
                   kernels=["common/gemm_s8", "fully_connected_gemm"])


def _lower_fully_connected_encoded(graph, op, ctx, enc: dict, fields: dict) -> Lowered:
    """FULLY_CONNECTED whose weights are stored encoded (tinyc/codegen/ops/_encoded.py): the Huffman
    kernel decodes one row before its dot product, the sparse one walks the entries."""
    w = graph.tensors[op.inputs[1]]
    e = encode_weights(graph, op, enc)  # refuses nonzero weight zero points: filter_offset is 0
    filter_fields, notes = encoded_filter(ctx, e)
    lut = lut_bytes(e)
    fields.update(filter=filter_fields, **encoded_bias(graph, op, ctx), lut_bytes=lut)
    dims = fields["dims"]
    huffman = e.kind == "huffman"
    # scratch: lookup tables, then one decoded row (Huffman) or one int32 sum per row (sparse)
    scratch = ctx.scratch(lut + (dims["accum_depth"] if huffman else 4 * dims["output_depth"]))
    kernel = "fully_connected_huffman" if huffman else "fully_connected_sparse"
    params = ctx.params("tinyc_fully_connected_encoded_params_s8", fields)
    call = f"tinyc_{kernel}_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, {scratch});"
    nnz = int(np.count_nonzero(w.data))
    macs = dims["batches"] * (dims["accum_depth"] * dims["output_depth"] if huffman else nnz)
    return Lowered(call=call, macs=macs, notes=notes, kernels=[DECODER_KERNEL, kernel])


def _bias(op, ctx):
    return ctx.ptr(op.inputs[2], "bias") if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
