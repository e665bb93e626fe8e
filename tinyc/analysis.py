"""Facts about a graph that need no code generation: parameters and MACs per op."""

from __future__ import annotations

import numpy as np

from tinyc.ir import Graph, Op


def op_macs(graph: Graph, op: Op) -> int:
    t = graph.tensors
    if not op.outputs:
        return 0
    out = t[op.outputs[0]]
    if op.kind == "CONV_2D":
        w = t[op.inputs[1]]
        return out.size * int(np.prod(w.shape[1:]))
    if op.kind == "DEPTHWISE_CONV_2D":
        w = t[op.inputs[1]]
        return out.size * int(w.shape[1] * w.shape[2])
    if op.kind == "FULLY_CONNECTED":
        w = t[op.inputs[1]]
        return out.size * int(w.shape[-1])
    if op.kind in ("ADD", "MUL", "AVERAGE_POOL_2D", "MEAN", "SOFTMAX", "LOGISTIC"):
        if op.kind == "AVERAGE_POOL_2D":
            return out.size * int(op.attrs.get("filter_h", 1)) * int(op.attrs.get("filter_w", 1))
        if op.kind == "MEAN":
            return t[op.inputs[0]].size
        return out.size
    return 0
