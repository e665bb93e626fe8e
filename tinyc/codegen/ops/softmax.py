"""SOFTMAX, int8 -> int8 (TFLite kernels/activations.cc, kReference).

For int8 input, LiteRT's BUILTIN_REF (checked on ai-edge-litert 2.3.0) runs the fixed-point
reference_ops::Softmax, not the float lookup table of the optimized kernel: Prepare() calls
PreprocessSoftmaxScaling(beta, input_scale, kScaledDiffIntegerBits = 5) and
CalculateInputRadius, which this module reproduces; the kernel (templates/ops/softmax.c.j2)
is all integer. The output quantization is implied (scale 1/256, zero point -128), as
Prepare() requires.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import InPlace, Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, check_s8_in_out, label
from tinyc.quant_math import quantize_multiplier

SCALED_DIFF_INTEGER_BITS = 5
MAX_DEPTH = 4095  # the Q12.19 sum of exps holds up to 4096 ones


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               input_integer_bits: int = SCALED_DIFF_INTEGER_BITS) -> tuple[int, int]:
    """TFLite PreprocessSoftmaxScaling (double-rounding build): (multiplier, left_shift)."""
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - input_integer_bits)),
               (1 << 31) - 1.0)
    if not real > 1.0:  # QuantizeMultiplierGreaterThanOne's CHECK
        raise ValueError(f"beta * input_scale = {real / (1 << (31 - input_integer_bits)):g} is too small")
    # QuantizeMultiplier as built without TFLITE_SINGLE_ROUNDING (the build whose MEAN results
    # 2.3.0 reproduces): no clamp of the shift to 30, so the capped multiplier gets shift 31.
    return quantize_multiplier(real)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite CalculateInputRadius: the largest |input| whose rescaled value cannot overflow."""
    max_input_rescaled = (1.0 * ((1 << input_integer_bits) - 1) * (1 << (total_signed_bits - input_integer_bits))
                          / (1 << input_left_shift))
    return int(math.floor(max_input_rescaled))


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input_beta_multiplier, input_beta_left_shift, diff_min) as SoftmaxPrepare computes them."""
    mult, left_shift = preprocess_softmax_scaling(beta, input_scale)
    diff_min = -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, left_shift)
    return mult, left_shift, diff_min


@checker("SOFTMAX")
def check_softmax(graph, op):
    lab = label(op, "SOFTMAX")
    x, y = check_s8_in_out(graph, op, lab, 1, "int8 -> int8 softmax")
    if len(x.shape) < 1 or tuple(x.shape) != tuple(y.shape):
        raise UnsupportedError(f"{lab} maps shape {list(x.shape)} to {list(y.shape)}; "
                               "equal shapes of rank >= 1 expected")
    check_per_tensor(lab, x, y)
    if y.quant.zp != -128 or abs(float(y.quant.s) - 1.0 / 256) > 0.001 / 256:
        raise UnsupportedError(f"{lab} has output quantization ({y.quant.s:g}, {y.quant.zp}); int8 softmax "
                               "writes scale 1/256, zero point -128: re-convert the model")
    depth = int(x.shape[-1])
    if depth > MAX_DEPTH:
        raise UnsupportedError(f"{lab} normalises over {depth} values; the reference's fixed-point sum holds at "
                               f"most {MAX_DEPTH}")
    try:
        softmax_params(float(op.attrs.get("beta", 1.0)), x.quant.s)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}; TFLite's reference softmax rejects it too") from None


@register("SOFTMAX", kernels=["softmax"])
def lower_softmax(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    beta = float(op.attrs.get("beta", 1.0))
    mult, left_shift, diff_min = softmax_params(beta, x.quant.s)
    depth = int(x.shape[-1])
    rows = x.size // depth
    params = ctx.params("tinyc_softmax_params_s8", {
        "dims": {"rows": rows, "depth": depth},
        "quant": {"input_beta_multiplier": mult, "input_beta_left_shift": left_shift, "diff_min": diff_min},
    })
    call = f"tinyc_softmax_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    # Each row is read whole before its last pass reads x[c] and then writes y[c]: in place is safe.
    return Lowered(call=call, macs=x.size, notes=[f"beta {np.float32(beta):g}: input multiplier {mult}, "
                                                  f"left shift {left_shift}, diff_min {diff_min}"],
                   inplace=InPlace(0, 0))
