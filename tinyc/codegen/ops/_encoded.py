"""Weights stored encoded (sparse / Huffman): what the FULLY_CONNECTED, CONV_2D and
DEPTHWISE_CONV_2D lowerings share. (A helper, not an op module: tinyc.codegen.ops._load_all skips
module names that start with "_".)

An op's weights are encoded when `graph.meta["weight_encoding"][weight_tensor]` names an
encoding other than raw. The weights are re-encoded here from the tensor's data with the
recorded kind and gap width (tinyc/passes/encode.py), so the C always holds exactly the
graph's weights; they are emitted as the encoded arrays only, never as a raw copy.

Kernels (templates/ops/): weights_huffman_decode (bit reader, canonical Huffman decoder,
the encoded-weights reader), fully_connected_sparse (walks the entries: fewer MACs),
fully_connected_huffman (decodes each weight right before its MAC), conv_2d_sparse and
depthwise_conv_2d_sparse (any encoding: decode one filter into scratch, list its nonzero
taps, and run every output position of that channel over them).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.passes import encode as E

DECODER_KERNEL = "weights_huffman_decode"

_KIND_CODES = {"sparse": "TINYC_WEIGHTS_SPARSE", "huffman": "TINYC_WEIGHTS_HUFFMAN",
               "sparse_huffman": "TINYC_WEIGHTS_SPARSE_HUFFMAN"}


def weight_encoding(graph, op) -> dict | None:
    """The recorded encoding of op's weights (input 1), or None when they are stored raw."""
    enc = graph.meta.get("weight_encoding", {}).get(op.inputs[1])
    return None if not enc or enc["kind"] == "raw" else enc


def encode_weights(graph, op, enc: dict) -> E.Encoded:
    w = graph.tensors[op.inputs[1]]
    if w.quant is not None and np.any(w.quant.zero_point != 0):
        raise UnsupportedError(f"{op.kind} '{op.name}' has weight zero points other than 0; encoded weights "
                               "need symmetric int8 weights (use --weights raw)")
    flat = E.kernel_order(op.kind, w.data).reshape(-1)
    return E.encode(flat, enc["kind"], enc.get("gap_bits") or None)


def encoded_bias(graph, op, ctx) -> dict:
    """The bias fields of an encoded layer: {"bias": int32 array, "bias16": None}, or the other
    way round when every bias value fits in int16 (then stored in half the bytes; the kernel
    adds the same int32 value). A bias another op also reads stays int32 (one shared array)."""
    if len(op.inputs) <= 2 or op.inputs[2] < 0:
        return {"bias": None, "bias16": None}
    t = op.inputs[2]
    b = graph.tensors[t]
    data = np.asarray(b.data).reshape(-1) if b.is_const and b.data is not None else None
    alone = len(graph.consumers().get(t, [])) == 1 and t not in graph.outputs
    if data is None or not alone or b.dtype != "int32" or data.size == 0 \
            or data.min() < np.iinfo(np.int16).min or data.max() > np.iinfo(np.int16).max:
        return {"bias": ctx.ptr(t, "bias"), "bias16": None}
    return {"bias": None, "bias16": ctx.const("bias16", data.astype(np.int16), "int16_t",
                                              "int32 bias values, each within int16")}


def lut_bytes(e: E.Encoded) -> int:
    """Scratch bytes of the Huffman lookup tables the decoder builds."""
    return sum(2 << t.lut_bits() for t in (e.value_table, e.gap_table) if t is not None)


def encoded_filter(ctx, e: E.Encoded) -> tuple[dict, list[str]]:
    """The fields of a tinyc_encoded_weights (its arrays emitted to weights.c as the layer's
    filter_*), and the layer comment's note on the encoding."""
    values = None
    if e.values is not None:
        vals = e.values if e.values.size else np.zeros(1, np.int8)
        values = ctx.const("filter_values", vals, "int8_t", f"{e.entries} sparse filter values")
    fields = {"kind": _KIND_CODES[e.kind], "values": values, "gap_bits": e.gap_bits, "entries": e.entries,
              "value_stream": None, "value_counts": None, "value_symbols": None, "value_lut_bits": 0,
              "gap_stream": None, "gap_counts": None, "gap_symbols": None, "gap_lut_bits": 0}
    canonical = "canonical Huffman code: longest length, then codes per length"
    if e.value_stream is not None:
        fields["value_stream"] = ctx.const("filter_value_code", e.value_stream, "uint8_t",
                                           f"Huffman-coded filter values, {e.value_bits} bits")
        fields["value_counts"] = ctx.const("filter_value_counts", e.value_table.c_header(), "int16_t", canonical)
        fields["value_symbols"] = ctx.const("filter_value_symbols", e.value_table.c_symbols(), "uint8_t",
                                            "filter value symbols in code order")
        fields["value_lut_bits"] = e.value_table.lut_bits()
    if e.gap_stream is not None:
        what = (f"{e.gap_bits}-bit gaps" if e.gap_table is None else "Huffman-coded gaps") + f", {e.index_bits} bits"
        fields["gap_stream"] = ctx.const("filter_gap_code", e.gap_stream, "uint8_t", f"filter {what}")
    if e.gap_table is not None:
        fields["gap_counts"] = ctx.const("filter_gap_counts", e.gap_table.c_header(), "int16_t", canonical)
        fields["gap_symbols"] = ctx.const("filter_gap_symbols", e.gap_table.c_symbols(), "uint8_t",
                                          "gap symbols in code order")
        fields["gap_lut_bits"] = e.gap_table.lut_bits()
    notes = [f"weights {e.kind}: {e.nbytes} B instead of {int(e.size)} B"
             + (f"; {e.entries} entries ({e.fillers} fillers), {e.gap_bits}-bit gaps"
                if e.kind in ("sparse", "sparse_huffman") else "")]
    return fields, notes
