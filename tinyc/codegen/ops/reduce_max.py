"""REDUCE_MAX, int8 (TFLite kernels/reduce.cc EvalType with ReduceType kMax).

The reference keeps every value as it is: for int8 it requires the output to share the
input's scale and zero point (Eval fails otherwise, in ai-edge-litert 2.3.0 and LiteRT's
main branch alike), so there is nothing to requantize. Each output is the largest input over
the reduced axes, starting from -128 (std::numeric_limits<int8_t>::lowest()).

Keras emits it for GlobalMaxPooling1D/2D and keras.ops.max(x, axis=...). The axes are
resolved as MEAN's (negative axes wrap, duplicates count once) and the kernel walks the
same outer/reduce/mid/reduce/inner pattern (mean.reduce_loops).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, check_s8_in_out, label
from tinyc.codegen.ops.mean import reduce_loops, resolve_axes

LOOP_NAMES = ("outer", "reduce0", "mid", "reduce1", "inner")


def _axes(graph, op) -> list[int]:
    x = graph.tensors[op.inputs[0]]
    data = np.asarray(graph.tensors[op.inputs[1]].data).reshape(-1)
    return resolve_axes(data.tolist(), len(x.shape))


def check_reduce_axes(graph, op, lab: str) -> list[int]:
    """The checks every reduce op over constant axes needs (the kernel's loop pattern, the
    output shape keep_dims gives); returns the resolved axes. (MEAN's checker repeats these
    lines; it may call this instead.)"""
    x, y, ax = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]], graph.tensors[op.inputs[1]]
    if not ax.is_const or ax.dtype != "int32":
        raise UnsupportedError(f"{lab} has {'non-constant' if not ax.is_const else ax.dtype} axes; "
                               "tinyc needs constant int32 axes")
    rank = len(x.shape)
    raw = np.asarray(ax.data).reshape(-1).tolist()
    if rank == 0 or any(not -rank <= int(a) < rank for a in raw):
        raise UnsupportedError(f"{lab} has axes {raw} for a rank-{rank} input")
    axes = _axes(graph, op)
    if reduce_loops(x.shape, axes) is None:
        raise UnsupportedError(f"{lab} reduces axes {sorted(axes)} of a rank-{rank} tensor, which form more "
                               "than two separate runs; transpose the input so they are adjacent")
    keep = bool(op.attrs.get("keep_dims", False))
    want = [1 if d in axes else int(e) for d, e in enumerate(x.shape)] if keep else \
        [int(e) for d, e in enumerate(x.shape) if d not in axes]
    if [int(e) for e in y.shape] != want:
        raise UnsupportedError(f"{lab} has output shape {list(y.shape)}, but axes {raw} with "
                               f"keep_dims={keep} give {want}")
    return axes


@checker("REDUCE_MAX")
def check_reduce_max(graph, op):
    lab = label(op, "REDUCE_MAX")
    x, y = check_s8_in_out(graph, op, lab, 2, "int8 REDUCE_MAX")
    check_per_tensor(lab, x, y)
    if x.quant.s != y.quant.s or x.quant.zp != y.quant.zp:
        raise UnsupportedError(f"{lab} has input quantization ({x.quant.s:g}, {x.quant.zp}) and output "
                               f"({y.quant.s:g}, {y.quant.zp}); TFLite's REDUCE_MAX needs them equal "
                               "(its reference fails otherwise): re-quantize the model")
    check_reduce_axes(graph, op, lab)
    if x.size == 0:
        raise UnsupportedError(f"{lab} reduces an empty tensor {list(x.shape)}")


@register("REDUCE_MAX", kernels=["reduce_max"])
def lower_reduce_max(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    axes = _axes(graph, op)
    loops = reduce_loops(x.shape, axes)
    params = ctx.params("tinyc_reduce_max_params_s8", {"dims": dict(zip(LOOP_NAMES, loops))})
    call = f"tinyc_reduce_max_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    notes = [f"axes {sorted(axes)}: max of {loops[1] * loops[3]} values; loops outer/reduce/mid/reduce/inner = {loops}"]
    return Lowered(call=call, macs=0, notes=notes)
