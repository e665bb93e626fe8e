"""QUANTIZE into or out of int16 (16x8 models, and the int8/int16 joins of mixed precision):
int16 <-> int8, int16 -> int16, int16 <-> int32, as TFLite's quantize.cc with the reference
Requantize: q = clamp(MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out), (m, shift)
= QuantizeMultiplier(double(s_in) / double(s_out)), double rounding. float32 -> int16 is
quantize.py's AffineQuantize."""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, label
from tinyc.codegen.ops.quantize import check_quantize, lower_quantize
from tinyc.quant_math import quantize_multiplier

_SHORT = {"int8": "s8", "int16": "s16", "int32": "s32"}
_PAIRS = {("int16", "int8"), ("int8", "int16"), ("int16", "int16"), ("int16", "int32"), ("int32", "int16")}


@checker("QUANTIZE", dtype="int16")
def check_quantize_s16(graph, op):
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype == "float32":
        return check_quantize(graph, op)
    lab = label(op, "QUANTIZE")
    if (x.dtype, y.dtype) not in _PAIRS:
        raise UnsupportedError(f"{lab} from {x.dtype} to {y.dtype} is not supported; with int16 tinyc requantizes "
                               "int16 <-> int8, int16 -> int16 and int16 <-> int32")
    check_per_tensor(lab, x, y)
    if x.size != y.size:
        raise UnsupportedError(f"{lab} changes the element count ({x.size} -> {y.size})")


@register("QUANTIZE", kernels=["quantize", "quantize_s16"], dtype="int16")
def lower_quantize_s16(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype == "float32":
        return lower_quantize(graph, op, ctx)
    real = float(np.float32(x.quant.s)) / float(np.float32(y.quant.s))
    mult, shift = quantize_multiplier(real)
    params = ctx.params("tinyc_requantize_params", {
        "dims": {"size": y.size}, "op": {"input_zero_point": x.quant.zp, "output_zero_point": y.quant.zp},
        "quant": {"multiplier": mult, "shift": shift}})
    fn = f"tinyc_requantize_{_SHORT[x.dtype]}_{_SHORT[y.dtype]}"
    call = f"{fn}({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, kernels=["quantize_s16"], notes=[f"rescale {real:.9g} = {mult} * 2^({shift} - 31)"])
