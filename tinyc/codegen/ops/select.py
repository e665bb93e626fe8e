"""SELECT and SELECT_V2, any element type (TFLite kernels/select.cc).

output = condition ? x : y, element by element; the values are moved unchanged. SELECT (v1)
takes a condition of the values' shape, or a scalar, or a rank-1 condition along the first
dim (RankOneSelect: one choice per row), with x and y of one shape; SELECT_V2 broadcasts all
three (BroadcastSelect4DSlow: at most 4 dims when the shapes differ). A Keras Embedding on an
integer input gives SELECT(LESS(i, 0), i + vocabulary, i) in front of its GATHER.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ir import DTYPES, dtype_size
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.binary_s32 import REFERENCE_BROADCAST_RANK
from tinyc.codegen.ops.elementwise import MAX_DIMS


def select_shapes(graph, op) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
    """The shapes of condition, x and y as they broadcast over the output, and the output's;
    raises UnsupportedError for shapes the reference refuses."""
    lab = label(op)
    cond, x, y = ([int(d) for d in graph.tensors[t].shape] for t in op.inputs)
    out = tuple(int(d) for d in graph.tensors[op.outputs[0]].shape)
    if cond == x == y:
        shapes = [tuple(x)] * 3
    elif op.kind == "SELECT":
        if x != y or not (cond == [] or (len(cond) == 1 and x and cond[0] == x[0])):
            raise UnsupportedError(f"{lab} has condition {cond}, x {x} and y {y}; SELECT takes x and y of one "
                                   "shape and a condition of that shape, a scalar or one per first-dim row")
        shapes = [tuple(cond) + (1,) * (len(x) - len(cond)), tuple(x), tuple(y)]
    else:
        try:
            want = tuple(np.broadcast_shapes(tuple(cond), tuple(x), tuple(y)))
        except ValueError:
            raise UnsupportedError(f"{lab}: condition {cond}, x {x} and y {y} do not broadcast") from None
        if len(want) > REFERENCE_BROADCAST_RANK:
            raise UnsupportedError(f"{lab} broadcasts over {len(want)} dims; LiteRT's reference takes at most "
                                   f"{REFERENCE_BROADCAST_RANK}")
        shapes = [tuple(cond), tuple(x), tuple(y)]
    if tuple(np.broadcast_shapes(*shapes)) != out:
        raise UnsupportedError(f"{lab} has output shape {list(out)}, but its inputs give "
                               f"{list(np.broadcast_shapes(*shapes))}; the model is inconsistent")
    return shapes, out


def select_dims(shapes, out) -> dict:
    """tinyc_select_dims: the output's extents in MAX_DIMS loops and each input's element
    strides along them (0 where it broadcasts). Inputs of the output's shape walk it flat."""
    if all(s == out for s in shapes):
        out, shapes = (int(np.prod(out, dtype=np.int64)),), [(int(np.prod(out, dtype=np.int64)),)] * 3
    pad = MAX_DIMS - len(out)
    extent = [1] * pad + list(out)
    strides = []
    for s in shapes:
        s = [1] * (len(out) - len(s)) + list(s)
        step, st = 1, []
        for d, o in zip(reversed(s), reversed(out)):
            st.append(0 if d == 1 and o != 1 else step)
            step *= d
        strides.append([0] * pad + st[::-1])
    return {"extent": extent, "condition_stride": strides[0], "x_stride": strides[1], "y_stride": strides[2]}


def check_select(graph, op):
    lab = label(op)
    if len(op.inputs) != 3 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 3 and 1 expected")
    cond, x, y, out = (graph.tensors[t] for t in (*op.inputs, op.outputs[0]))
    if cond.dtype != "bool":
        raise UnsupportedError(f"{lab} has a {cond.dtype} condition; SELECT takes bool")
    if not x.dtype == y.dtype == out.dtype or x.dtype not in DTYPES:
        raise UnsupportedError(f"{lab} selects between {x.dtype} and {y.dtype} into {out.dtype}; "
                               "it takes one element type")
    shapes, out_shape = select_shapes(graph, op)
    if len(out_shape) > MAX_DIMS and any(s != out_shape for s in shapes):
        raise UnsupportedError(f"{lab} broadcasts over {len(out_shape)} dims; tinyc takes at most {MAX_DIMS}")


def lower_select(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[1]]
    dims = select_dims(*select_shapes(graph, op))
    params = ctx.params("tinyc_select_params_s8", {"dims": dims, "element_bytes": dtype_size(x.dtype)})
    cond, xs, ys, out = (ctx.ptr(t) for t in (*op.inputs, op.outputs[0]))
    if x.dtype != "int8":
        xs, ys, out = f"(const int8_t *){xs}", f"(const int8_t *){ys}", f"(int8_t *){out}"
    call = (f"{{\n    const int8_t *const values[2] = {{ {xs}, {ys} }};  /* x, y */\n"
            f"    tinyc_select_s8({params}, {cond}, values, {out});\n}}")
    note = f"loops {dims['extent']}, strides {dims['condition_stride']} / {dims['x_stride']} / {dims['y_stride']}"
    return Lowered(call=call, macs=0, notes=[note])


for _kind in ("SELECT", "SELECT_V2"):
    checker(_kind)(check_select)
    register(_kind, kernels=["select"])(lower_select)
