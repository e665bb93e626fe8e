"""LOGISTIC, 16x8 (int16 in and out; TFLite activations.cc SigmoidPrepare on int16 and
reference_integer_ops::Logistic for int16, as LiteRT's BUILTIN_REF runs it).

No float at run time: the input is rescaled to steps of 1/(3 * 4096) (so +-2^17 spans
+-10.67) and looked up in a 256-entry table of sigmoid at steps of 1/24 (2^9 rescaled steps),
interpolated linearly on the low 9 bits. Prepare picks the rescale:

- a power-of-two input scale of exactly 2^-12 (CheckedLog2: log2 computed in float32 within
  1e-3 of an integer, input_left_shift = 12 + that integer == 0): multiplier 3, no shift;
- any other scale (the converter's usual max|x| / 32767): multiplier = input_scale * 4096 * 3,
  doubled while <= 32767 / 2 (at most 31 times), truncated to int32, with that many doublings
  as a rounding right shift.

TANH (tanh_s16.py) shares the table and the rescale (tanh(x) = 2 sigmoid(2x) - 1), with
power-of-two shifts 0 and 1. The rescale is folded here into one (multiplier, shift) pair,
as the kernel folds it on entry, so the C sees no special case.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, f32, forward_inplace, label, libm_f32
from tinyc.quant_math import round_half_away

_LOGF = libm_f32("logf")
TABLE_STEP = 1.0 / 24  # sigmoid table spacing: 2^9 steps of 1/(3 * 4096)
INPUT_INTEGER_BITS = 3  # Prepare's kInputIntegerBits for int16
OUTPUT_FRACTIONAL_BITS = 15


def sigmoid_table_u16() -> np.ndarray:
    """LiteRT's sigmoid_table_uint16: sigmoid(i / 24) in 0.16 fixed point, i = 0..255, each
    raised by half the sag of a chord over one step (|sigmoid''| h^2 / 16) so that the linear
    interpolation between entries errs to both sides evenly; the last entry is 65535, the value
    the kernel saturates to past it. (Checked entry for entry against LiteRT's table.)"""
    x = np.arange(256, dtype=np.float64) * TABLE_STEP
    s = 1.0 / (1.0 + np.exp(-x))
    sag = s * (1.0 - s) * (2.0 * s - 1.0) * TABLE_STEP * TABLE_STEP  # -sigmoid''(x) h^2
    table = np.floor(65536.0 * (s + sag / 16.0) + 0.5).astype(np.int64)
    table[-1] = 65535
    return table.astype(np.uint16)


def _logf(x: float) -> np.float32:
    if _LOGF is not None:
        return f32(_LOGF(float(f32(x))))
    return f32(math.log(float(f32(x))))


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLite CheckedLog2 (float32): (whether x is within 1e-3 of a power of two in log2, the
    rounded log2)."""
    x_log2 = f32(_logf(x) * (f32(1.0) / _logf(2.0)))
    rounded = f32(round_half_away(float(x_log2)))
    return bool(abs(f32(x_log2 - rounded)) < f32(1e-3)), int(rounded)


def lut_input_rescale(input_scale: float, pot_shifts: tuple[int, ...]) -> tuple[int, int]:
    """(multiplier, right shift) taking int16 input steps to table steps of 1/(3 * 4096), as
    Sigmoid/TanhPrepare compute them and the int16 kernel folds its power-of-two case in."""
    pot, log2 = checked_log2(input_scale)
    left_shift = (15 - INPUT_INTEGER_BITS) + log2
    if pot and left_shift in pot_shifts:
        return 3 << left_shift, 0
    multiplier = float(f32(input_scale)) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift


def check_lut_s16(graph, op, lab: str, pot_shifts: tuple[int, ...]) -> tuple[int, int]:
    """The checks SigmoidPrepare / TanhPrepare make for int16 (zero points 0, output scale
    2^-15), and that the rescale's int32 product cannot overflow; returns the rescale."""
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 1 and 1 expected")
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int16" or y.dtype != "int16" or x.size != y.size:
        raise UnsupportedError(f"{lab} maps {x.dtype} {list(x.shape)} to {y.dtype} {list(y.shape)}; "
                               "16x8 keeps int16 and the size")
    check_per_tensor(lab, x, y)
    pot, log2 = checked_log2(y.quant.s)
    if x.quant.zp != 0 or y.quant.zp != 0 or not pot or log2 != -OUTPUT_FRACTIONAL_BITS:
        raise UnsupportedError(f"{lab} is quantized ({x.quant.s:g}, {x.quant.zp}) -> ({y.quant.s:g}, {y.quant.zp}); "
                               "TFLite's int16 kernel needs zero points 0 and output scale 2^-15: re-convert the model")
    if not (x.quant.s > 0 and math.isfinite(x.quant.s)):
        raise UnsupportedError(f"{lab} has input scale {x.quant.s:g}")
    multiplier, shift = lut_input_rescale(x.quant.s, pot_shifts)
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    if 32768 * multiplier + rounding > (1 << 31) - 1:
        raise UnsupportedError(f"{lab} has input scale {x.quant.s:g}, whose rescale overflows the reference's "
                               "int32 product; re-convert the model with a smaller input range")
    return multiplier, shift


def lower_lut_s16(graph, op, ctx, kind: str, pot_shifts: tuple[int, ...]) -> Lowered:
    """The call of tinyc_<kind>_s16 with the input rescale as its params."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    multiplier, shift = lut_input_rescale(x.quant.s, pot_shifts)
    params = ctx.params(f"tinyc_{kind}_params_s16", {
        "dims": {"size": x.size},
        "quant": {"input_multiplier": multiplier, "input_shift": shift},
    })
    call = f"tinyc_{kind}_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, inplace=forward_inplace(x, y),
                   notes=[f"16x8; input scale {x.quant.s:g} to table steps: * {multiplier} >> {shift}"])


@checker("LOGISTIC", dtype="int16")
def check_logistic_s16(graph, op):
    lab = label(op, "LOGISTIC")
    check_lut_s16(graph, op, lab, (0,))
    y = graph.tensors[op.outputs[0]]
    if float(f32(y.quant.s)) != 1.0 / 32768:
        raise UnsupportedError(f"{lab} has output scale {y.quant.s:g}; TFLite's int16 logistic requires 1/32768: "
                               "re-convert the model")


@register("LOGISTIC", kernels=["common/sigmoid_table_s16", "logistic_s16"], dtype="int16")
def lower_logistic_s16(graph, op, ctx) -> Lowered:
    return lower_lut_s16(graph, op, ctx, "logistic", (0,))
