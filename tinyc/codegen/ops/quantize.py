"""QUANTIZE (float32 -> int8/uint8/int16, and int8/uint8 -> int8/uint8 requantize) and
DEQUANTIZE (int8/uint8/int16 -> float32), per-tensor, as TFLite's kernels/quantize.cc and
kernels/dequantize.cc with the reference kernels:

  AffineQuantize:  q = clamp((int32)round(x / scale) + zero_point), division and
                   round-half-away in float32, clamping in int32
  Requantize:      q = clamp(MultiplyByQuantizedMultiplier(x - zp_in, m, shift) + zp_out),
                   (m, shift) = QuantizeMultiplier(double(s_in) / double(s_out))
  Dequantize:      y = (float)(double(scale) * (x - zero_point))

These are the float paths of a float-I/O model (QUANTIZE at the inputs, DEQUANTIZE at the
outputs); the int8 core between them stays integer-only.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import forward_inplace
from tinyc.quant_math import quantize_multiplier

_SHORT = {"int8": "s8", "uint8": "u8", "int16": "s16", "float32": "f32"}
_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def c_float(v: float) -> str:
    """A C float literal that parses to exactly the float32 value v."""
    f = float(np.float32(v))
    s = repr(f)
    if "e" not in s and "." not in s and "inf" not in s and "nan" not in s:
        s += ".0"
    return s + "f"


def _per_tensor(t, kind, name):
    if t.quant is None or t.quant.per_axis:
        raise UnsupportedError(f"{kind} '{name}': tensor '{t.name}' is not per-tensor quantized; "
                               "tinyc supports one scale and zero point per tensor here")


@checker("QUANTIZE")
def check_quantize(graph, op):
    name = op.name or "QUANTIZE"
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    ok = (x.dtype == "float32" and y.dtype in ("int8", "uint8", "int16")) or (
        x.dtype in ("int8", "uint8") and y.dtype in ("int8", "uint8"))
    if not ok:
        raise UnsupportedError(f"QUANTIZE '{name}' from {x.dtype} to {y.dtype} is not supported; "
                               "tinyc quantizes float32 to int8/uint8/int16 and requantizes int8/uint8")
    _per_tensor(y, "QUANTIZE", name)
    if x.dtype != "float32":
        _per_tensor(x, "QUANTIZE", name)
    if x.size != y.size:
        raise UnsupportedError(f"QUANTIZE '{name}' changes the element count ({x.size} -> {y.size})")


@register("QUANTIZE", kernels=["quantize"])
def lower_quantize(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    src, dst = ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])
    if x.dtype == "float32":
        fn = f"tinyc_quantize_f32_{_SHORT[y.dtype]}"
        params = ctx.params("tinyc_affine_params", {"dims": {"size": y.size},
                                                    "quant": {"scale": c_float(y.quant.s), "zero_point": y.quant.zp}})
        call = f"{fn}({params}, {src}, {dst});"
        return Lowered(call=call, notes=["float -> int: round(x / scale) + zero_point, clamped"],
                       inplace=forward_inplace(x, y))
    real = float(np.float32(x.quant.s)) / float(np.float32(y.quant.s))
    mult, shift = quantize_multiplier(real)
    fn = f"tinyc_requantize_{_SHORT[x.dtype]}_{_SHORT[y.dtype]}"
    params = ctx.params("tinyc_requantize_params", {
        "dims": {"size": y.size}, "op": {"input_zero_point": x.quant.zp, "output_zero_point": y.quant.zp},
        "quant": {"multiplier": mult, "shift": shift}})
    call = f"{fn}({params}, {src}, {dst});"
    return Lowered(call=call, notes=[f"rescale {real:.9g} = {mult} * 2^({shift} - 31)"],
                   inplace=forward_inplace(x, y))


@checker("DEQUANTIZE")
def check_dequantize(graph, op):
    name = op.name or "DEQUANTIZE"
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype not in ("int8", "uint8", "int16") or y.dtype != "float32":
        raise UnsupportedError(f"DEQUANTIZE '{name}' from {x.dtype} to {y.dtype} is not supported; "
                               "tinyc dequantizes int8/uint8/int16 to float32")
    _per_tensor(x, "DEQUANTIZE", name)


@register("DEQUANTIZE", kernels=["dequantize"])
def lower_dequantize(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    fn = f"tinyc_dequantize_{_SHORT[x.dtype]}_f32"
    params = ctx.params("tinyc_affine_params", {"dims": {"size": y.size},
                                                "quant": {"scale": c_float(x.quant.s), "zero_point": x.quant.zp}})
    call = f"{fn}({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, notes=["int -> float: scale * (x - zero_point)"], inplace=forward_inplace(x, y))
