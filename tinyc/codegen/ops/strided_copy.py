"""STRIDED_SLICE, SLICE, TRANSPOSE, SPLIT and UNPACK: ops that only move elements, any dtype.

Each output element is one input element at start + sum(i[d] * step[d]) for the output index
i: the Python side works out start and steps exactly as TFLite does (strided_slice_logic.h's
StartForAxis / StopForAxis with begin/end/shrink masks and `offset`; slice.cc's begin/size;
transpose.cc's permutation; split.cc's equal parts; unpack.cc's slices along an axis, which
Keras' unrolled LSTM and GRU use per time step), in bytes, merges dims that are
contiguous in both tensors, and the kernel copies runs of bytes (tinyc_strided_copy_s8).
Values are copied unchanged, so int8, int16 and 16x8 models alike are served; quantization
must be the same on both sides (TFLite requires it for these ops).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ir import dtype_size
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label

MAX_DIMS = 6


def copy_loops(out_shape, starts, steps, elem: int) -> dict:
    """The tinyc_strided_copy_dims of an output of out_shape whose element i is the input
    element at sum((starts[d] + i[d] * steps[d]) * input_stride[d]); steps here are already
    in input elements along the flattened input (see _element_steps)."""
    dims = [[int(n), int(s) * elem] for n, s in zip(out_shape, steps)] + [[elem, 1]]
    dims = [d for d in dims if d[0] != 1] or [[elem, 1]]
    merged: list[list[int]] = []
    for n, s in dims:
        if merged and merged[-1][1] == n * s:  # the outer dim steps over exactly this run
            merged[-1] = [merged[-1][0] * n, s]
        else:
            merged.append([n, s])
    if merged[-1][1] != 1:
        merged.append([1, 1])
    if len(merged) > MAX_DIMS:
        raise ValueError(f"the copy needs {len(merged)} loop levels; at most {MAX_DIMS} are supported")
    merged = [[1, 0]] * (MAX_DIMS - len(merged)) + merged
    return {"extent": [m[0] for m in merged], "stride": [m[1] for m in merged], "start": int(starts) * elem}


def _element_strides(shape) -> list[int]:
    strides, acc = [], 1
    for d in reversed([int(x) for x in shape]):
        strides.append(acc)
        acc *= d
    return strides[::-1]


def _same_quant(graph, op, lab: str) -> None:
    x = graph.tensors[op.inputs[0]]
    for t in op.outputs:
        y = graph.tensors[t]
        if x.dtype != y.dtype:
            raise UnsupportedError(f"{lab} turns {x.dtype} into {y.dtype}; it only moves values")
        if (x.quant is None) != (y.quant is None) or (x.quant is not None and (
                x.quant.scale.tolist() != y.quant.scale.tolist()
                or x.quant.zero_point.tolist() != y.quant.zero_point.tolist())):
            raise UnsupportedError(f"{lab} changes quantization, which TFLite does not allow for it either")
    if dtype_size(x.dtype) > 8:
        raise UnsupportedError(f"{lab} has {x.dtype} values")


def _const_ints(graph, t: int, lab: str, what: str) -> list[int]:
    tensor = graph.tensors[t]
    if not tensor.is_const:
        raise UnsupportedError(f"{lab} has a non-constant {what}; tinyc needs it constant")
    return [int(v) for v in np.asarray(tensor.data).reshape(-1)]


# ------------------------------------------------------------------------ STRIDED_SLICE
def strided_slice_plan(graph, op) -> tuple[list[int], list[int], list[int]]:
    """(start, step, extent) per input dim, as TFLite's StartForAxis/StopForAxis."""
    lab = label(op, "STRIDED_SLICE")
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    rank = len(x.shape)
    begin = _const_ints(graph, op.inputs[1], lab, "begin")
    end = _const_ints(graph, op.inputs[2], lab, "end")
    strides = _const_ints(graph, op.inputs[3], lab, "strides") if len(op.inputs) > 3 else [1] * rank
    a = op.attrs
    if int(a.get("ellipsis_mask", 0)) or int(a.get("new_axis_mask", 0)):
        raise UnsupportedError(f"{lab} uses ellipsis or new-axis masks; tinyc supports begin, end and shrink masks")
    if not (len(begin) == len(end) == len(strides) == rank) or 0 in strides or rank > 5:
        raise UnsupportedError(f"{lab} needs begin, end and non-zero strides for each of the input's "
                               f"{rank} (<= 5) dims")
    begin_mask, end_mask = int(a.get("begin_mask", 0)), int(a.get("end_mask", 0))
    shrink = int(a.get("shrink_axis_mask", 0))
    offset = bool(a.get("offset", False))
    starts, steps, extents = [], [], []
    for d in range(rank):
        size, step = int(x.shape[d]), strides[d]
        start = begin[d]
        if begin_mask & (1 << d):
            start = -(1 << 31) if step > 0 else (1 << 31) - 1
        if start < 0:
            start += size
        start = min(max(start, 0), size) if step > 0 else min(max(start, -1), size - 1)
        if shrink & (1 << d):
            stop = start + 1
            extent = 1
        else:
            stop = end[d] + (begin[d] if offset else 0)
            if end_mask & (1 << d) and not offset:
                stop = (1 << 31) - 1 if step > 0 else -(1 << 31)
            if stop < 0:
                stop += size
            stop = min(max(stop, 0), size) if step > 0 else min(max(stop, -1), size - 1)
            extent = max(0, -(-(stop - start) // step)) if step > 0 else max(0, -(-(start - stop) // -step))
        starts.append(start)
        steps.append(step)
        extents.append(extent)
    kept = [e for d, e in enumerate(extents) if not shrink & (1 << d)]
    if int(np.prod(kept, dtype=np.int64)) != y.size:
        raise UnsupportedError(f"{lab}: the slice has extents {kept} but the output is {list(y.shape)}; "
                               "the model is inconsistent")
    return starts, steps, extents


@checker("STRIDED_SLICE")
def check_strided_slice(graph, op):
    lab = label(op, "STRIDED_SLICE")
    if len(op.inputs) < 3 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} needs input, begin, end (, strides) and one output")
    _same_quant(graph, op, lab)
    starts, steps, extents = strided_slice_plan(graph, op)
    x = graph.tensors[op.inputs[0]]
    try:
        _lower_loops(x, starts, steps, extents)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None


def _lower_loops(x, starts, steps, extents) -> dict:
    st = _element_strides(x.shape)
    base = sum(s * k for s, k in zip(starts, st)) if all(e > 0 for e in extents) else 0
    return copy_loops(extents, base, [s * k for s, k in zip(steps, st)], dtype_size(x.dtype))


def _copy_call(ctx, loops: dict, src_t: int, dst_t: int, x, role: str = "params") -> str:
    params = ctx.params("tinyc_strided_copy_params_s8", {"dims": loops}, role=role)
    src, dst = ctx.ptr(src_t), ctx.ptr(dst_t)
    if x.dtype != "int8":
        src, dst = f"(const int8_t *){src}", f"(int8_t *){dst}"
    return f"tinyc_strided_copy_s8({params}, {src}, {dst});"


def _note(loops: dict) -> str:
    return f"bytes: extents {loops['extent']}, strides {loops['stride']}, start {loops['start']}"


@register("STRIDED_SLICE", kernels=["strided_copy"])
def lower_strided_slice(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    loops = _lower_loops(x, *strided_slice_plan(graph, op))
    return Lowered(call=_copy_call(ctx, loops, op.inputs[0], op.outputs[0], x), notes=[_note(loops)])


# --------------------------------------------------------------------------------- SLICE
def _slice_plan(graph, op):
    lab = label(op, "SLICE")
    x = graph.tensors[op.inputs[0]]
    begin = _const_ints(graph, op.inputs[1], lab, "begin")
    size = _const_ints(graph, op.inputs[2], lab, "size")
    if len(begin) != len(x.shape) or len(size) != len(x.shape):
        raise UnsupportedError(f"{lab} needs begin and size for each of the input's {len(x.shape)} dims")
    extents = [int(x.shape[d]) - begin[d] if size[d] == -1 else size[d] for d in range(len(begin))]
    if any(b < 0 or e < 0 or b + e > int(x.shape[d]) for d, (b, e) in enumerate(zip(begin, extents))):
        raise UnsupportedError(f"{lab}: begin {begin} size {size} leave the input {list(x.shape)}")
    return begin, [1] * len(begin), extents


@checker("SLICE")
def check_slice(graph, op):
    lab = label(op, "SLICE")
    _same_quant(graph, op, lab)
    try:
        _lower_loops(graph.tensors[op.inputs[0]], *_slice_plan(graph, op))
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None


@register("SLICE", kernels=["strided_copy"])
def lower_slice(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    loops = _lower_loops(x, *_slice_plan(graph, op))
    return Lowered(call=_copy_call(ctx, loops, op.inputs[0], op.outputs[0], x), notes=[_note(loops)])


# ----------------------------------------------------------------------------- TRANSPOSE
def _transpose_loops(graph, op) -> dict:
    lab = label(op, "TRANSPOSE")
    x = graph.tensors[op.inputs[0]]
    perm = _const_ints(graph, op.inputs[1], lab, "permutation")
    rank = len(x.shape)
    perm = [p + rank if p < 0 else p for p in perm]
    if sorted(perm) != list(range(rank)):
        raise UnsupportedError(f"{lab} has permutation {perm} for a rank-{rank} input")
    st = _element_strides(x.shape)
    return copy_loops([int(x.shape[p]) for p in perm], 0, [st[p] for p in perm], dtype_size(x.dtype))


@checker("TRANSPOSE")
def check_transpose(graph, op):
    lab = label(op, "TRANSPOSE")
    _same_quant(graph, op, lab)
    try:
        _transpose_loops(graph, op)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None


@register("TRANSPOSE", kernels=["strided_copy"])
def lower_transpose(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    loops = _transpose_loops(graph, op)
    return Lowered(call=_copy_call(ctx, loops, op.inputs[0], op.outputs[0], x), notes=[_note(loops)])


# --------------------------------------------------------------------------------- SPLIT
def _split_parts(graph, op) -> tuple[int, list[tuple[list[int], list[int], list[int]]]]:
    """SPLIT (inputs: axis, data) into equal parts: (data tensor, [(start, step, extent)] per output)."""
    lab = label(op, "SPLIT")
    axis = _const_ints(graph, op.inputs[0], lab, "axis")[0]
    data = op.inputs[1]
    x = graph.tensors[data]
    rank = len(x.shape)
    axis = axis + rank if axis < 0 else axis
    n = len(op.outputs)
    if not 0 <= axis < rank or int(x.shape[axis]) % n:
        raise UnsupportedError(f"{lab} splits dim {axis} of {list(x.shape)} into {n} equal parts; it must divide")
    part = int(x.shape[axis]) // n
    plans = []
    for k in range(n):
        start = [0] * rank
        start[axis] = k * part
        extents = [int(d) for d in x.shape]
        extents[axis] = part
        plans.append((start, [1] * rank, extents))
    return data, plans


@checker("SPLIT")
def check_split(graph, op):
    lab = label(op, "SPLIT")
    data, plans = _split_parts(graph, op)
    x = graph.tensors[data]
    for t in op.outputs:
        y = graph.tensors[t]
        if y.dtype != x.dtype or (x.quant is None) != (y.quant is None):
            raise UnsupportedError(f"{lab} changes type or quantization")
    try:
        for plan in plans:
            _lower_loops(x, *plan)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None


@register("SPLIT", kernels=["strided_copy"])
def lower_split(graph, op, ctx) -> Lowered:
    data, plans = _split_parts(graph, op)
    x = graph.tensors[data]
    calls = []
    for k, (t, plan) in enumerate(zip(op.outputs, plans)):
        loops = _lower_loops(x, *plan)
        calls.append(_copy_call(ctx, loops, data, t, x, role=f"output{k}_params"))
    return Lowered(call="\n".join(calls), notes=[f"{len(plans)} equal parts"])


# -------------------------------------------------------------------------------- UNPACK
def _unpack_parts(graph, op) -> list[tuple[list[int], list[int], list[int]]]:
    lab = label(op, "UNPACK")
    x = graph.tensors[op.inputs[0]]
    rank = len(x.shape)
    axis = int(op.attrs.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or int(x.shape[axis]) != len(op.outputs):
        raise UnsupportedError(f"{lab} unpacks dim {axis} of {list(x.shape)} into {len(op.outputs)} outputs")
    plans = []
    for k in range(len(op.outputs)):
        start = [0] * rank
        start[axis] = k
        extents = [int(d) for d in x.shape]
        extents[axis] = 1
        plans.append((start, [1] * rank, extents))
    return plans


@checker("UNPACK")
def check_unpack(graph, op):
    lab = label(op, "UNPACK")
    _same_quant(graph, op, lab)
    try:
        for plan in _unpack_parts(graph, op):
            _lower_loops(graph.tensors[op.inputs[0]], *plan)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None


@register("UNPACK", kernels=["strided_copy"])
def lower_unpack(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    calls = [_copy_call(ctx, _lower_loops(x, *plan), op.inputs[0], t, x, role=f"output{k}_params")
             for k, (t, plan) in enumerate(zip(op.outputs, _unpack_parts(graph, op)))]
    return Lowered(call="\n".join(calls), notes=[f"{len(calls)} slices"])
