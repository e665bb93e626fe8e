"""Close the float islands TFLite's quantizer sometimes leaves around a data-movement op.

TensorFlow's MLIR quantizer occasionally leaves an op that only moves bytes (SPLIT, UNPACK,
RESHAPE, ...) in float32 between a DEQUANTIZE and QUANTIZE ops, instead of giving it int8
tensors. Seen on Keras GRU layers unrolled: at the first time step the reset-gate slice of the
input projection's SPLIT has no reader, and in about three conversions out of four (the
pattern order is not deterministic) the SPLIT stays float:

    X (int8) -> DEQUANTIZE -> SPLIT (float32) -> QUANTIZE -> Y_k (int8) -> ...

A movement op computes exactly the same on int8 codes as on their dequantized values, so the
island is equivalent to the int8 op on X, with X's scale and zero point on every output,
followed where Y_k's parameters differ by an int8 -> int8 QUANTIZE (TFLite's requantize):

    X (int8) -> SPLIT (int8, X's quantization) [-> QUANTIZE (requantize) -> Y_k] -> ...

The QUANTIZE is dropped where Y_k already has X's parameters. The model tinyc writes (and its
reference interpreter runs) is the rewritten one, so the generated C stays bit-exact with it.
"""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Op, Tensor

# Ops whose int8 kernels copy bytes, so they commute with (de)quantization exactly.
MOVEMENT_OPS = {"SPLIT", "SPLIT_V", "UNPACK", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "STRIDED_SLICE",
                "SLICE", "TRANSPOSE"}


def _same_quant(a: Tensor, b: Tensor) -> bool:
    return (a.quant is not None and b.quant is not None and a.dtype == b.dtype
            and np.array_equal(a.quant.scale, b.quant.scale) and np.array_equal(a.quant.zero_point, b.quant.zero_point))


def _island(graph: Graph, i: int, producers: dict[int, int], consumers: dict[int, list[int]]):
    """(float input, DEQUANTIZE source) of a closable island at op i, or None."""
    op = graph.ops[i]
    if op.kind not in MOVEMENT_OPS:
        return None
    t = graph.tensors
    floats = [x for x in op.inputs if x >= 0 and not t[x].is_const and t[x].dtype == "float32"]
    if len(floats) != 1 or floats[0] not in producers or floats[0] in graph.outputs:
        return None
    deq = graph.ops[producers[floats[0]]]
    if deq.kind != "DEQUANTIZE" or t[deq.inputs[0]].quant is None or t[deq.inputs[0]].quant.per_axis:
        return None
    for out in op.outputs:
        if t[out].dtype != "float32" or out in graph.outputs:
            return None
        if any(graph.ops[c].kind != "QUANTIZE" for c in consumers.get(out, [])):
            return None
    return floats[0], deq.inputs[0]


def close_float_islands(graph: Graph) -> Graph:
    """`graph` with every DEQUANTIZE -> movement op -> QUANTIZE island made int8 (see above)."""
    producers, consumers = graph.producers(), graph.consumers()
    islands = {}
    for i in range(len(graph.ops)):
        found = _island(graph, i, producers, consumers)
        if found is not None:
            islands[i] = found
    if not islands:
        return graph
    g = graph.copy()
    t = g.tensors
    rename: dict[int, int] = {}     # QUANTIZE output dropped -> the int8 tensor that replaces it
    dropped: set[int] = set()       # indices of ops removed
    for i, (float_in, source) in islands.items():
        op = g.ops[i]
        op.inputs = [source if x == float_in else x for x in op.inputs]
        for out in op.outputs:
            t[out] = Tensor(t[out].name, t[out].shape, t[source].dtype, t[source].quant)
            for c in consumers.get(out, []):
                q = g.ops[c]
                if _same_quant(t[q.outputs[0]], t[out]) and q.outputs[0] not in g.outputs:
                    rename[q.outputs[0]] = out
                    dropped.add(c)
                # else: the QUANTIZE stays, now int8 -> int8 (requantize)
    for j, op in enumerate(g.ops):
        if op.kind == "DEQUANTIZE" and all(c in islands for c in consumers.get(op.outputs[0], [])) \
                and op.outputs[0] not in g.outputs:
            dropped.add(j)
    g.ops = [Op(op.kind, [rename.get(x, x) for x in op.inputs], op.outputs, op.attrs, op.name)
             for j, op in enumerate(g.ops) if j not in dropped]
    return g


def has_float_island(graph: Graph) -> bool:
    producers, consumers = graph.producers(), graph.consumers()
    return any(_island(graph, i, producers, consumers) is not None for i in range(len(graph.ops)))
