"""ADD and the comparisons on plain int32 tensors (no quantization): index arithmetic.

A Keras Embedding on an integer model input converts to LESS(indices, 0), ADD(indices,
vocabulary) and SELECT before its GATHER (negative indices wrap, as in numpy). LiteRT's
reference computes them as plain integers: ADD (add.cc) as input1 + input2 clamped to the
fused activation's int32 range (CalculateActivationRange: RELU [0, max], RELU6 [0, 6],
RELU_N1_TO_1 [-1, 1]); the comparisons (comparisons.cc) as one bool per element. Both
broadcast with the 4-D slow kernels, so a broadcast over more than 4 dims is refused, as the
reference cannot run it. One always-inlined kernel serves all of them (tinyc_binary_s32).
"""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.elementwise import broadcast_loops

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
COMPARISONS = ("EQUAL", "NOT_EQUAL", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL")
ACTIVATION_RANGES = {"NONE": (INT32_MIN, INT32_MAX), "RELU": (0, INT32_MAX), "RELU6": (0, 6),
                     "RELU_N1_TO_1": (-1, 1)}
REFERENCE_BROADCAST_RANK = 4   # BroadcastAdd4DSlow, BroadcastComparison4DSlow


def check_broadcast(graph, op, lab: str) -> None:
    """Every input broadcasts to the output, in at most 4 dims where the shapes differ."""
    shapes = [tuple(graph.tensors[t].shape) for t in op.inputs]
    out = tuple(graph.tensors[op.outputs[0]].shape)
    if any(s != out for s in shapes) and max(len(s) for s in shapes + [out]) > REFERENCE_BROADCAST_RANK:
        raise UnsupportedError(f"{lab} broadcasts {' and '.join(map(str, map(list, shapes)))} over more than "
                               f"{REFERENCE_BROADCAST_RANK} dims, which LiteRT's reference cannot run either")


def _check_binary_s32(graph, op, out_dtype: str) -> None:
    lab = label(op)
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 2 and 1 expected")
    a, b, y = (graph.tensors[t] for t in (*op.inputs, op.outputs[0]))
    if any(t.dtype != "int32" or t.quant is not None for t in (a, b)) or y.dtype != out_dtype:
        raise UnsupportedError(f"{lab} has {a.dtype}/{b.dtype} inputs and a {y.dtype} output; tinyc compiles "
                               f"it on plain int32 inputs (index arithmetic) with a {out_dtype} output")
    try:
        broadcast_loops(a.shape, b.shape, y.shape)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None
    check_broadcast(graph, op, lab)


def _lower_binary_s32(graph, op, ctx, kind: str, act_min: int = 0, act_max: int = 0) -> Lowered:
    a, b, y = (graph.tensors[t] for t in (*op.inputs, op.outputs[0]))
    dims, st1, st2 = broadcast_loops(a.shape, b.shape, y.shape)
    params = ctx.params("tinyc_binary_params_s32", {
        "dims": {"extent": dims, "input1_stride": st1, "input2_stride": st2},
        "op": {"kind": f"TINYC_BINARY_{kind}", "act_min": act_min, "act_max": act_max},
    })
    call = f"tinyc_binary_s32({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, notes=[f"loops {dims}, strides {st1} / {st2}"])


@checker("ADD", dtype="int32")
def check_add_s32(graph, op):
    _check_binary_s32(graph, op, "int32")
    act = op.attrs.get("activation", "NONE")
    if act not in ACTIVATION_RANGES:
        raise UnsupportedError(f"{label(op)} has fused activation {act}; tinyc takes "
                               f"{', '.join(ACTIVATION_RANGES)} on int32")


@register("ADD", kernels=["binary_s32"], dtype="int32")
def lower_add_s32(graph, op, ctx) -> Lowered:
    act_min, act_max = ACTIVATION_RANGES[op.attrs.get("activation", "NONE")]
    return _lower_binary_s32(graph, op, ctx, "ADD", act_min, act_max)


def _register_comparison(kind: str) -> None:
    checker(kind)(lambda graph, op: _check_binary_s32(graph, op, "bool"))
    register(kind, kernels=["binary_s32"])(lambda graph, op, ctx: _lower_binary_s32(graph, op, ctx, kind))


for _kind in COMPARISONS:
    _register_comparison(_kind)
