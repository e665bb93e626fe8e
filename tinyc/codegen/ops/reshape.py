"""RESHAPE, SQUEEZE, EXPAND_DIMS: the same bytes under a new shape.

The planner lets the output alias the input, so these cost nothing; only when the output is
a graph output (the caller's buffer) or the input is one, a copy is made.
"""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register


def _check(graph, op):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.size != y.size or x.dtype != y.dtype:
        raise UnsupportedError(f"{op.kind} '{op.name}' changes size or type ({list(x.shape)} {x.dtype} -> "
                               f"{list(y.shape)} {y.dtype}); the model is inconsistent")
    if (x.quant is None) != (y.quant is None) or (
            x.quant is not None and (x.quant.scale.tolist() != y.quant.scale.tolist()
                                     or x.quant.zero_point.tolist() != y.quant.zero_point.tolist())):
        raise UnsupportedError(f"{op.kind} '{op.name}' changes quantization, which a reshape cannot do")


def _lower(graph, op, ctx) -> Lowered:
    src, dst = ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])
    nbytes = graph.tensors[op.outputs[0]].nbytes
    if src == dst or src.replace("const ", "") == dst:
        return Lowered(call="/* the output aliases the input: nothing to do */", macs=0)
    return Lowered(call=f"memcpy({dst}, {src}, {nbytes});", macs=0)


for _kind in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS"):
    register(_kind, kernels=[])(_lower)
    checker(_kind)(_check)
