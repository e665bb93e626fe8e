"""MEAN, int8 (TFLite kernels/reduce.cc, as ai-edge-litert 2.3.0's BUILTIN_REF runs it).

Every int8 MEAN there, whatever the axes and keep_dims, and whether or not input and output
share their quantization, goes through reference_ops::QuantizedMeanOrSum: an int32 sum per
output, minus input_zero_point * n, requantized by a multiplier that Prepare() derives from
input_scale / output_scale (QuantizeMultiplier) and Eval folds 1/n into:

    shift_n    = min(floor(log2(n)), 32, 31 + shift)
    multiplier = (multiplier << shift_n) / n        (int64, truncating)
    shift      = shift - shift_n

then MultiplyByQuantizedMultiplier (the gemmlowp double-rounding variant: checked against
2.3.0, where the single-rounding one differs on ~5 % of outputs), + output zero point, clamp.

The reduced axes are resolved as the reference does (negative axes wrap, duplicates count
once). Dims are then merged into runs of kept and reduced dims; the kernel walks the pattern
kept/reduced/kept/reduced/kept, which covers every axis set of a rank <= 4 tensor and any
set that forms at most two separate runs.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, check_s8_in_out, label
from tinyc.quant_math import quantize_multiplier


def resolve_axes(axes, rank: int) -> list[int]:
    """reference_ops::ResolveAxis: wrap negative axes, drop duplicates, keep first-seen order."""
    out: list[int] = []
    for a in axes:
        a = int(a)
        a = a + rank if a < 0 else a
        if a not in out:
            out.append(a)
    return out


def reduce_loops(shape, axes) -> list[int] | None:
    """[outer, reduce0, mid, reduce1, inner] extents for the kernel, or None if the reduced
    dims form more than two separate runs."""
    runs: list[list] = []  # [is_reduced, extent]
    for d, extent in enumerate(shape):
        red = d in axes
        if runs and runs[-1][0] == red:
            runs[-1][1] *= int(extent)
        else:
            runs.append([red, int(extent)])
    slots = [1, 1, 1, 1, 1]  # kept, reduced, kept, reduced, kept
    pos = 0
    for red, extent in runs:
        while pos < 5 and (pos % 2 == 1) != red:
            pos += 1
        if pos >= 5:
            return None
        slots[pos] = extent
        pos += 1
    return slots


def mean_multiplier(input_scale: float, output_scale: float, n: int) -> tuple[int, int]:
    """The (multiplier, shift) QuantizedMeanOrSum uses: Prepare's input/output ratio with 1/n folded in."""
    real = float(np.float32(input_scale)) / float(np.float32(output_scale))
    mult, shift = quantize_multiplier(real)  # the double-rounding build: shift not clamped to 30
    shift_n = n.bit_length() - 1  # 63 - CountLeadingZeros(n)
    shift_n = min(shift_n, 32, 31 + shift)
    mult = (mult << shift_n) // n
    return mult, shift - shift_n


def reduce_axes(graph, op) -> list[int]:
    """The resolved constant axes of a reduce op."""
    x = graph.tensors[op.inputs[0]]
    data = np.asarray(graph.tensors[op.inputs[1]].data).reshape(-1)
    return resolve_axes(data.tolist(), len(x.shape))


@checker("MEAN")
def check_mean(graph, op):
    lab = label(op, "MEAN")
    x, y = check_s8_in_out(graph, op, lab, 2, "int8 MEAN")
    check_per_tensor(lab, x, y)
    n = check_mean_axes(graph, op, lab)
    if n * 128 + abs(x.quant.zp) * n >= 1 << 31:
        raise UnsupportedError(f"{lab} averages {n} values, which overflows the reference's int32 sum")


def check_reduce_axes(graph, op, lab: str) -> list[int]:
    """The checks every reduce op over constant axes needs (MEAN, REDUCE_MAX): constant int32
    axes in range, at most two runs (the kernels' loop pattern), the output shape keep_dims
    gives; returns the resolved axes."""
    x, y, ax = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]], graph.tensors[op.inputs[1]]
    if not ax.is_const or ax.dtype != "int32":
        raise UnsupportedError(f"{lab} has {'non-constant' if not ax.is_const else ax.dtype} axes; "
                               "tinyc needs constant int32 axes")
    rank = len(x.shape)
    if rank == 0:
        raise UnsupportedError(f"{lab} reduces a scalar; nothing to compile")
    raw = np.asarray(ax.data).reshape(-1).tolist()
    if any(not -rank <= int(a) < rank for a in raw):
        raise UnsupportedError(f"{lab} has axes {raw} for a rank-{rank} input")
    axes = reduce_axes(graph, op)
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


def check_mean_axes(graph, op, lab: str) -> int:
    """MEAN's axes (check_reduce_axes); returns the count of values each output averages."""
    x = graph.tensors[op.inputs[0]]
    axes = check_reduce_axes(graph, op, lab)
    return int(np.prod([int(x.shape[a]) for a in axes], dtype=np.int64)) if axes else 1


def mean_fields(graph, op) -> tuple[dict, int, str]:
    """The dims and quant groups of a MEAN's params (the int8 and int16 kernels share them),
    the count n each output averages, and the layer note."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    axes = reduce_axes(graph, op)
    loops = reduce_loops(x.shape, axes)
    n = loops[1] * loops[3]
    mult, shift = mean_multiplier(x.quant.s, y.quant.s, n)
    fields = {"dims": dict(zip(("outer", "reduce0", "mid", "reduce1", "inner"), loops)),
              "quant": {"multiplier": mult, "shift": shift}}
    return fields, n, f"axes {sorted(axes)}: mean of {n} values; loops outer/reduce/mid/reduce/inner = {loops}"


@register("MEAN", kernels=["mean"])
def lower_mean(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    fields, n, note = mean_fields(graph, op)
    params = ctx.params("tinyc_mean_params_s8", {
        "dims": fields["dims"],
        "op": {"input_zero_point_n": x.quant.zp * n, "output_offset": y.quant.zp},
        "quant": fields["quant"],
    })
    call = f"tinyc_mean_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=x.size, notes=[note])
