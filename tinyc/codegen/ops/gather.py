"""GATHER, any element type (TFLite kernels/gather.cc).

The reference (reference_ops::Gather, which gather.cc's optimized path is) views the params
tensor as [batch][outer][axis][inner] and the indices as [batch][coords] (batch = the first
batch_dims dims of both, outer = params dims from batch_dims to axis, inner = the dims after
axis) and copies, for each batch, outer and coordinate i, the run of `inner` elements at
params[batch][outer][indices[batch][i]]. Values are copied unchanged (no requantization), so
int8, int16 and 16x8 models alike are served, and the kernel moves bytes.

Indices are constant (keras.ops.take(x, constant_indices, axis=...)), any index type, checked
here to lie on the axis as the reference checks them at Prepare; or an int32 tensor computed
at run time: a Keras Embedding on an integer model input, where the converter wraps negative
indices (LESS, ADD, SELECT: binary_s32.py, select.py) before the GATHER. For a run-time
index outside the axis the reference fails the inference (gather.cc's Eval returns an error);
the generated C clamps it to the axis instead (it never reads outside the table, and has no
error path inside an inference), so only inputs with every index in range are compared with
the reference: tinyc.samples.input_ranges draws them in [0, axis size).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ir import DTYPES, dtype_size
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label

INDEX_DTYPES = ("int16", "int32", "int64")


def gather_plan(graph, op) -> dict:
    """The kernel's loops: batches, outer, coords (indices per batch), axis_size and
    inner_bytes, plus the resolved axis and batch_dims; raises UnsupportedError."""
    lab = label(op, "GATHER")
    x, idx, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    rank, idx_rank = len(x.shape), len(idx.shape)
    axis = int(op.attrs.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    batch_dims = int(op.attrs.get("batch_dims", 0))
    batch_dims = batch_dims + idx_rank if batch_dims < 0 else batch_dims
    if not 0 <= axis < rank or not 0 <= batch_dims <= min(axis, idx_rank) or batch_dims >= rank:
        raise UnsupportedError(f"{lab} has axis {op.attrs.get('axis', 0)} and batch_dims "
                               f"{op.attrs.get('batch_dims', 0)} for params of rank {rank} and indices of "
                               f"rank {idx_rank}; the model is inconsistent")
    xs, ish = [int(d) for d in x.shape], [int(d) for d in idx.shape]
    if xs[:batch_dims] != ish[:batch_dims]:
        raise UnsupportedError(f"{lab}: params {xs} and indices {ish} differ in their {batch_dims} batch dims")
    want = xs[:axis] + ish[batch_dims:] + xs[axis + 1:]
    if [int(d) for d in y.shape] != want:
        raise UnsupportedError(f"{lab} has output shape {list(y.shape)}, but gathering {ish} along axis "
                               f"{axis} of {xs} gives {want}")
    prod = lambda dims: int(np.prod(dims, dtype=np.int64))  # noqa: E731
    return {"batches": prod(xs[:batch_dims]), "outer": prod(xs[batch_dims:axis]), "coords": prod(ish[batch_dims:]),
            "axis_size": xs[axis], "inner_bytes": prod(xs[axis + 1:]) * dtype_size(x.dtype),
            "axis": axis, "batch_dims": batch_dims}


@checker("GATHER")
def check_gather(graph, op):
    lab = label(op, "GATHER")
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 2 and 1 expected")
    x, idx, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if x.dtype != y.dtype:
        raise UnsupportedError(f"{lab} turns {x.dtype} into {y.dtype}; GATHER only moves values")
    if x.dtype not in DTYPES:
        raise UnsupportedError(f"{lab} gathers {x.dtype} values; tinyc gathers {', '.join(DTYPES)}")
    if idx.dtype not in INDEX_DTYPES:
        raise UnsupportedError(f"{lab} has {idx.dtype} indices; TFLite takes {', '.join(INDEX_DTYPES)}")
    if not idx.is_const and idx.dtype != "int32":
        raise UnsupportedError(f"{lab} reads {idx.dtype} indices computed at run time; tinyc takes "
                               "int32 ones (what Keras' Embedding gives): cast the indices to int32")
    plan = gather_plan(graph, op)
    if not idx.is_const:
        return   # checked at run time: an index off the axis is clamped (see the module's doc)
    values = np.asarray(idx.data).reshape(-1)
    bad = values[(values < 0) | (values >= plan["axis_size"])]
    if bad.size:
        raise UnsupportedError(f"{lab} has index {int(bad[0])} outside [0, {plan['axis_size']}) of axis "
                               f"{plan['axis']}; the reference rejects it too")


@register("GATHER", kernels=["gather"])
def lower_gather(graph, op, ctx) -> Lowered:
    x, idx = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    plan = gather_plan(graph, op)
    if idx.is_const:
        indices = ctx.const("indices", np.asarray(idx.data).reshape(-1).astype(np.int32), "int32_t",
                            f"indices into axis {plan['axis']} ({plan['axis_size']}), [batches {plan['batches']}]"
                            f"[coords {plan['coords']}]")
    else:
        indices = ctx.ptr(op.inputs[1])
    dims = {k: plan[k] for k in ("batches", "outer", "coords", "axis_size", "inner_bytes")}
    params = ctx.params("tinyc_gather_params_s8", {"dims": dims})
    src, dst = ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])
    if x.dtype != "int8":
        src, dst = f"(const int8_t *){src}", f"(int8_t *){dst}"
    notes = [f"axis {plan['axis']}, batch_dims {plan['batch_dims']}: "
             f"{plan['batches'] * plan['outer'] * plan['coords']} runs of {plan['inner_bytes']} bytes"
             + ("" if idx.is_const else f"; indices computed at run time, clamped to [0, {plan['axis_size']})")]
    return Lowered(call=f"tinyc_gather_s8({params}, {src}, {indices}, {dst});", macs=0, notes=notes)
