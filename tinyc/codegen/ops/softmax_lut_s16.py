"""SOFTMAX, 16x8: int16 -> int16 (TFLite activations.cc SoftmaxPrepare on int16 and
reference_ops::SoftmaxInt16, as LiteRT's BUILTIN_REF runs it; the last layer of a classifier
TensorFlow converts in 16x8 mode). softmax_s16.py dispatches to it.

No float at run time: each difference to the row's maximum is rescaled so that [-65535, 0]
spans [-10, 0] (times beta), looked up in a 513-entry exp table, the Q0.15 exps summed, the
sum normalised to [1, 2) and looked up in a 513-entry 1/(1+x) table (templates/ops/
softmax_luts_s16.c.j2). Prepare builds both tables with LUTPopulate<int16_t> in double (its
"backward compatibility" overload): computed in float32 instead, the 1/(1+x) table differs at
entries 160 and 294. The tables are the same for every layer, so they live in the kernel
template, emitted once per model; tests compare them with softmax_luts_s16() and run LiteRT
over inputs that reach every entry.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import InPlace, Lowered
from tinyc.codegen.ops._common import check_per_tensor, f32, libm_f32
from tinyc.quant_math import quantize_multiplier, round_half_away

_EXPF = libm_f32("expf")
LUT_SIZE = 513  # 512 steps indexed by the high 9 bits, one more for the last slope
INT16_RANGE = 65535  # int16 max - min
EXP_INPUT_RANGE = 10.0  # the exp table spans [-10, 0]: exp(-10) * 32768 < 2
# sum_of_exps is an int32 of exps <= 32767: 65538 of them stay below 2^31.
MAX_DEPTH = ((1 << 31) - 1) // 32767


def lut_populate_s16(transform, input_scale: float, input_zero_point: int, output_scale: float,
                     output_zero_point: int, dtype=np.float64) -> np.ndarray:
    """TFLite LUTPopulateInt16<FloatT> (FloatT = dtype): transform sampled at 513 points over the
    input range, each of the first 512 lowered by half the error of linear interpolation at
    the step's midpoint, clamped to int16."""
    F = dtype

    def rnd(v):
        return F(round_half_away(float(v)))

    def fn(v):
        return F(transform(F(v)))

    input_min = F(input_scale) * F(-32768 - input_zero_point)
    input_max = F(input_scale) * F(32767 - input_zero_point)
    output_min = F(output_scale) * F(-32768 - output_zero_point)
    output_max = F(output_scale) * F(32767 - output_zero_point)
    step = (input_max - input_min) / F(512)
    half_step = step / F(2)
    scaling_inv = F(65536) / (output_max - output_min)
    lut = np.zeros(LUT_SIZE, dtype=np.int16)
    for i in range(512):
        val = fn(input_min + F(i) * step)
        val_midpoint = fn(input_min + F(i) * step + half_step)
        val_next = fn(input_min + F(i + 1) * step)
        sample = rnd(val * scaling_inv)
        midpoint_interp = rnd((val_next * scaling_inv + rnd(val * scaling_inv)) / F(2))
        midpoint_err = midpoint_interp - rnd(val_midpoint * scaling_inv)
        lut[i] = int(min(max(sample - rnd(midpoint_err / F(2)), F(-32768)), F(32767)))
    lut[512] = int(min(max(rnd(fn(input_max) * scaling_inv), F(-32768)), F(32767)))
    return lut


def softmax_luts_s16(dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """(exp table, 1/(1+x) table) as SoftmaxPrepare builds them: exp over [-10, 0] (input
    scale 10/65535, zero point 32767) and 1/(1+x) over [0, 1] (scale 1/65535, zero point
    -32768), both to output scale 2/65535 (Q0.15). math.exp is the C library's exp, as
    std::exp(double). dtype float32 (the C library's expf, float arithmetic) only shows what
    the float overload would give."""
    F = dtype
    exp = math.exp if F is np.float64 or _EXPF is None else _EXPF
    exp_lut = lut_populate_s16(exp, EXP_INPUT_RANGE / INT16_RANGE, 32767, 2.0 / INT16_RANGE, 0, F)
    recip_lut = lut_populate_s16(lambda v: F(1) / (F(1) + F(v)), 1.0 / INT16_RANGE, -32768, 2.0 / INT16_RANGE, 0, F)
    return exp_lut, recip_lut


def input_rescale_s16(beta: float, input_scale: float) -> tuple[int, int]:
    """(multiplier, shift) taking input differences to exp-table steps of 10/65535:
    QuantizeMultiplier(input_scale * beta / (10 / 65535)), the product in float32 (both are
    float in the TfLite structs), the division in double."""
    real = float(f32(f32(input_scale) * f32(beta))) / (EXP_INPUT_RANGE / INT16_RANGE)
    return quantize_multiplier(real)


def check_softmax_s16(graph, op, lab: str) -> None:
    """What SoftmaxPrepare requires of int16 -> int16 (zero points 0, output scale 1/32768
    within 0.1%), and what tinyc needs besides (per-tensor, int32 sum)."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if y.dtype != "int16":
        raise UnsupportedError(f"{lab} maps int16 to {y.dtype}; TFLite's int16 softmax writes int16")
    check_per_tensor(lab, x, y)
    if tuple(x.shape) != tuple(y.shape) or not x.shape:
        raise UnsupportedError(f"{lab} maps shape {list(x.shape)} to {list(y.shape)}; "
                               "equal shapes of rank >= 1 expected")
    if x.quant.zp != 0 or y.quant.zp != 0:
        raise UnsupportedError(f"{lab} has zero points {x.quant.zp} (input) and {y.quant.zp} (output); TFLite's "
                               "int16 softmax requires 0 for both: re-convert the model")
    if abs(f32(y.quant.s) - f32(1.0 / 32768)) > f32(0.001) * f32(1.0 / 32768):
        raise UnsupportedError(f"{lab} has output scale {y.quant.s:g}; TFLite's int16 softmax requires 1/32768: "
                               "re-convert the model")
    if int(x.shape[-1]) > MAX_DEPTH:
        raise UnsupportedError(f"{lab} normalises over {int(x.shape[-1])} values; the reference's int32 sum of "
                               f"exps overflows past {MAX_DEPTH}")
    beta = float(op.attrs.get("beta", 1.0))
    if not math.isfinite(float(f32(x.quant.s) * f32(beta))):
        raise UnsupportedError(f"{lab} has input scale {x.quant.s:g} and beta {beta:g}, whose product is not a "
                               "finite float")


def lower_softmax_s16(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    beta = float(op.attrs.get("beta", 1.0))
    multiplier, shift = input_rescale_s16(beta, x.quant.s)
    depth = int(x.shape[-1])
    params = ctx.params("tinyc_softmax_params_s16", {
        "dims": {"rows": x.size // depth, "depth": depth},
        "quant": {"multiplier": multiplier, "shift": shift},
    })
    call = f"tinyc_softmax_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    # Per row: the max pass reads the row, the next reads x[c] and then writes y[c] (the exps
    # are cached in the output), the last only touches y: in place is safe.
    return Lowered(call=call, macs=x.size, kernels=["softmax_luts_s16", "softmax_s16"], inplace=InPlace(0, 0),
                   notes=[f"16x8; beta {f32(beta):g}, input scale {x.quant.s:g} to exp-table steps of 10/65535: "
                          f"multiplier {multiplier}, shift {shift}"])
