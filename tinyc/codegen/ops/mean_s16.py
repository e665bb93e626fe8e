"""MEAN, 16x8 (int16 in and out; TFLite reduce.cc on int16, as LiteRT's BUILTIN_REF runs it).

Every int16 MEAN there, over any axes, with or without keep_dims, goes through EvalQuantizedMean
-> reference_ops::QuantizedMeanOrSum<int16_t, int32_t>, the int8 path (mean.py) with int16
loads and bounds: an int32 sum per output, requantized by Prepare's input/output multiplier
with 1/n folded in (mean_multiplier), gemmlowp double rounding, clamp to int16 (never
reference_integer_ops::Mean: the fast path is for int8 only). PrepareSimple / PrepareMeanOrSum
require both zero points to be 0, so the kernel has no offsets.
"""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, label
from tinyc.codegen.ops.mean import check_mean_axes, mean_fields


@checker("MEAN", dtype="int16")
def check_mean_s16(graph, op):
    lab = label(op, "MEAN")
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 2 and 1 expected")
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int16" or y.dtype != "int16":
        raise UnsupportedError(f"{lab} maps {x.dtype} to {y.dtype}; 16x8 MEAN keeps int16")
    check_per_tensor(lab, x, y)
    if x.quant.zp != 0 or y.quant.zp != 0:
        raise UnsupportedError(f"{lab} has zero points {x.quant.zp} -> {y.quant.zp}; TFLite's int16 MEAN needs 0: "
                               "re-convert the model")
    n = check_mean_axes(graph, op, lab)
    if n > 65536:  # the sum lies in [-32768 n, 32767 n], inside int32 up to n = 2^16
        raise UnsupportedError(f"{lab} averages {n} values, which overflows the reference's int32 sum")


@register("MEAN", kernels=["mean_s16"], dtype="int16")
def lower_mean_s16(graph, op, ctx) -> Lowered:
    fields, _, note = mean_fields(graph, op)
    params = ctx.params("tinyc_mean_params_s16", fields)
    call = f"tinyc_mean_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=graph.tensors[op.inputs[0]].size, notes=[f"16x8; {note}"])
