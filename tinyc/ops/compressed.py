"""FULLY_CONNECTED and CONV_2D whose weights are stored encoded (sparse / Huffman).

The ops' own lowerings (fully_connected.py, conv.py) first ask `lower_encoded`, which lowers
the layer when `graph.meta["weight_encoding"][weight_tensor]` names an encoding other than raw. The
weights are re-encoded here from the tensor's data with the recorded kind and gap width
(tinyc/passes/encode.py), so the C always holds exactly the graph's weights; they are
emitted as the encoded arrays only, never as a raw copy.

Kernels (templates/ops/): weights_huffman_decode (bit reader, canonical Huffman decoder,
the encoded-weights reader), fully_connected_sparse (walks the entries: fewer MACs),
fully_connected_huffman (decodes each weight right before its MAC), conv_2d_sparse (any
encoding: decodes one filter into scratch, lists its nonzero taps, and runs every output
position of that channel over them).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ops import Lowered
from tinyc.passes import encode as E
from tinyc.passes.quantize import activation_range_s8, conv_output_multipliers

_KIND_CODES = {"sparse": "TINYC_WEIGHTS_SPARSE", "huffman": "TINYC_WEIGHTS_HUFFMAN",
               "sparse_huffman": "TINYC_WEIGHTS_SPARSE_HUFFMAN"}


def _encoded(graph, op, enc: dict) -> E.Encoded:
    w = graph.tensors[op.inputs[1]]
    if w.quant is not None and np.any(w.quant.zero_point != 0):
        raise UnsupportedError(f"{op.kind} '{op.name}' has weight zero points other than 0; encoded weights "
                               "need symmetric int8 weights (use --weights raw)")
    flat = E.kernel_order(op.kind, w.data).reshape(-1)
    return E.encode(flat, enc["kind"], enc.get("gap_bits") or None)


def _lut_bytes(e: E.Encoded) -> int:
    return sum(2 << t.lut_bits() for t in (e.value_table, e.gap_table) if t is not None)


def _struct(ctx, base: str, e: E.Encoded) -> tuple[str, list[str]]:
    """C initializer of a tinyc_encoded_weights for e (arrays emitted to weights.c)."""
    values = "0"
    if e.values is not None:
        vals = e.values if e.values.size else np.zeros(1, np.int8)
        values = ctx.const(f"{base}_w_values", vals, "int8_t", f"{e.entries} sparse values (int8)")
    vstream = vcounts = vsyms = gstream = gcounts = gsyms = "0"
    vlut = glut = 0
    if e.value_stream is not None:
        vstream = ctx.const(f"{base}_w_value_code", e.value_stream, "uint8_t",
                            f"Huffman-coded weights, {e.value_bits} bits")
        vcounts = ctx.const(f"{base}_w_value_counts", e.value_table.c_header(), "int16_t",
                            "canonical code: longest length, then codes per length")
        vsyms = ctx.const(f"{base}_w_value_symbols", e.value_table.c_symbols(), "uint8_t", "symbols in code order")
        vlut = e.value_table.lut_bits()
    if e.gap_stream is not None:
        what = (f"{e.gap_bits}-bit gaps" if e.gap_table is None else "Huffman-coded gaps") + f", {e.index_bits} bits"
        gstream = ctx.const(f"{base}_w_gap_code", e.gap_stream, "uint8_t", what)
    if e.gap_table is not None:
        gcounts = ctx.const(f"{base}_w_gap_counts", e.gap_table.c_header(), "int16_t",
                            "canonical code: longest length, then codes per length")
        gsyms = ctx.const(f"{base}_w_gap_symbols", e.gap_table.c_symbols(), "uint8_t", "symbols in code order")
        glut = e.gap_table.lut_bits()
    init = (f"{_KIND_CODES[e.kind]}, {values}, {e.gap_bits}, {e.entries},\n"
            f"        {vstream}, {vcounts}, {vsyms}, {vlut},\n"
            f"        {gstream}, {gcounts}, {gsyms}, {glut}")
    raw = int(e.size)
    notes = [f"weights {e.kind}: {e.nbytes} B instead of {raw} B"
             + (f"; {e.entries} entries ({e.fillers} fillers), {e.gap_bits}-bit gaps"
                if e.kind in ("sparse", "sparse_huffman") else "")]
    return init, notes


def _filter_block(init: str) -> str:
    """The `static const tinyc_encoded_weights filter` of a kernel call (init from _struct)."""
    return ("    static const tinyc_encoded_weights filter = {\n"
            f"        {init}\n"
            "    };\n")


def lower_encoded(graph, op, ctx) -> Lowered | None:
    """The lowering of op if its weights are stored encoded, else None (raw weights)."""
    enc = graph.meta.get("weight_encoding", {}).get(op.inputs[1])
    if not enc or enc["kind"] == "raw":
        return None
    if op.kind == "FULLY_CONNECTED":
        return _lower_fc(graph, op, ctx, enc)
    if op.kind == "CONV_2D":
        return _lower_conv(graph, op, ctx, enc)
    if op.kind == "DEPTHWISE_CONV_2D":
        return _lower_depthwise(graph, op, ctx, enc)
    raise UnsupportedError(f"{op.kind} '{op.name}' cannot use encoded weights; use --weights raw")


def _lower_fc(graph, op, ctx, enc: dict) -> Lowered:
    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    e = _encoded(graph, op, enc)
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    output_depth, accum_depth = int(w.shape[0]), int(w.shape[-1])
    batches = x.size // accum_depth
    mult, shift = conv_output_multipliers(x.quant.s, w.quant.scale, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    base = ctx.ident(op.name or "fc")
    mult_name = ctx.const(f"{base}_mult", mult, "int32_t")
    shift_name = ctx.const(f"{base}_shift", shift, "int32_t")
    bias = ctx.ptr(op.inputs[2]) if has_bias else "0"
    init, notes = _struct(ctx, base, e)
    lut = _lut_bytes(e)
    # scratch: lookup tables, then one decoded row (Huffman) or one int32 sum per row (sparse)
    scratch = ctx.scratch(lut + (accum_depth if e.kind == "huffman" else 4 * output_depth))
    fn = "tinyc_fully_connected_huffman_s8" if e.kind == "huffman" else "tinyc_fully_connected_sparse_s8"
    call = (
        "{\n"
        + _filter_block(init)
        + f"    {fn}({ctx.ptr(op.inputs[0])}, &filter, {scratch}, {lut}, {bias}, {ctx.ptr(op.outputs[0])},\n"
        f"        {batches}, {accum_depth}, {output_depth},\n"
        f"        {-x.quant.zp}, {y.quant.zp},\n"
        f"        {mult_name}, {shift_name}, {1 if w.quant.per_axis else 0}, {act_min}, {act_max});\n"
        "}"
    )
    nnz = int(np.count_nonzero(w.data))
    macs = batches * (accum_depth * output_depth if e.kind == "huffman" else nnz)
    kernel = "fully_connected_huffman" if e.kind == "huffman" else "fully_connected_sparse"
    return Lowered(call=call, macs=macs, notes=notes, kernels=["weights_huffman_decode", kernel])


def _lower_conv(graph, op, ctx, enc: dict) -> Lowered:
    from tinyc.ops import conv as C

    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    out_ch, filter_h, filter_w, filter_in_ch = (int(d) for d in w.shape)
    g = C._geometry(graph, op, "CONV_2D", filter_h, filter_w, out_ch)
    groups = g["in_ch"] // filter_in_ch
    input_offset = -x.quant.zp
    e = _encoded(graph, op, enc)
    base = ctx.ident(op.name or "conv_2d")
    mult_name, shift_name, act_min, act_max = C.requant_arrays(graph, op, ctx, base, out_ch)
    bias = ctx.ptr(op.inputs[2]) if C._has_bias(op) else "0"
    init, notes = _struct(ctx, base, e)
    filter_size = filter_h * filter_w * filter_in_ch
    # scratch: Huffman tables (uint16), packed taps (int32), the decoded filter
    lut = _lut_bytes(e)
    scratch = ctx.scratch(lut + 4 * filter_size + filter_size)
    call = (
        "{\n"
        + _filter_block(init)
        + C.params_block("tinyc_conv_2d_encoded_params_s8", g, C.conv_filter_row(filter_in_ch, groups),
                         input_offset, y.quant.zp, act_min, act_max)
        + f"    tinyc_conv_2d_encoded_s8(&params, {ctx.ptr(op.inputs[0])}, &filter, {bias},\n"
        f"        {mult_name}, {shift_name}, {ctx.ptr(op.outputs[0])}, {scratch}, {lut});\n"
        "}"
    )
    nnz = int(np.count_nonzero(w.data))
    macs = g["batches"] * g["out_h"] * g["out_w"] * nnz
    notes.append(C.layer_note(g, act_min, act_max) + (f"; {groups} groups" if groups > 1 else ""))
    return Lowered(call=call, macs=macs, notes=notes, kernels=["weights_huffman_decode", "conv_2d_sparse"])


def _lower_depthwise(graph, op, ctx, enc: dict) -> Lowered:
    from tinyc.ops import conv as C

    x, w, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    _, filter_h, filter_w, out_ch = (int(d) for d in w.shape)
    g = C._geometry(graph, op, "DEPTHWISE_CONV_2D", filter_h, filter_w, out_ch)
    depth_multiplier = out_ch // g["in_ch"]
    input_offset = -x.quant.zp
    e = _encoded(graph, op, enc)
    base = ctx.ident(op.name or "depthwise_conv_2d")
    mult_name, shift_name, act_min, act_max = C.requant_arrays(graph, op, ctx, base, out_ch)
    bias = ctx.ptr(op.inputs[2]) if C._has_bias(op) else "0"
    init, notes = _struct(ctx, base, e)
    taps = filter_h * filter_w
    lut = _lut_bytes(e)
    scratch = ctx.scratch(lut + 4 * taps + taps)
    call = (
        "{\n"
        + _filter_block(init)
        + C.params_block("tinyc_depthwise_conv_2d_encoded_params_s8", g, C.depthwise_filter_row(depth_multiplier),
                         input_offset, y.quant.zp, act_min, act_max)
        + f"    tinyc_depthwise_conv_2d_encoded_s8(&params, {ctx.ptr(op.inputs[0])}, &filter, {bias},\n"
        f"        {mult_name}, {shift_name}, {ctx.ptr(op.outputs[0])}, {scratch}, {lut});\n"
        "}"
    )
    nnz = int(np.count_nonzero(w.data))
    macs = g["batches"] * g["out_h"] * g["out_w"] * nnz
    notes.append(C.layer_note(g, act_min, act_max) + f"; depth multiplier {depth_multiplier}")
    return Lowered(call=call, macs=macs, notes=notes,
                   kernels=["weights_huffman_decode", "depthwise_conv_2d_sparse"])
