"""The affine int8 math, in one place.

Everything here mirrors TensorFlow Lite's own helpers (kernels/internal/quantization_util.cc
and kernels/kernel_util.cc) so that the constants tinyc bakes into C equal the ones LiteRT's
reference kernels compute at Prepare time, to the bit. Where TFLite computes in float32 we do
too (np.float32), where it computes in double we use Python floats.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> float:
    """C's round()/std::round (TfLiteRound): halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = q / 2^31 * 2^shift, q in [2^30, 2^31)."""
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = int(round_half_away(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real_multiplier: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierSmallerThanOneExp: (multiplier, left_shift <= 0)."""
    assert 0.0 < real_multiplier < 1.0, real_multiplier
    q, shift = quantize_multiplier(real_multiplier)
    assert shift <= 0
    return q, shift


def quantize_multiplier_greater_than_one(real_multiplier: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierGreaterThanOne: (multiplier, left_shift >= 0)."""
    assert real_multiplier > 1.0, real_multiplier
    q, shift = quantize_multiplier(real_multiplier)
    assert shift >= 0
    return q, shift


def conv_output_multipliers(input_scale, filter_scales, output_scale) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) for CONV/DEPTHWISE/FC, as PopulateConvolutionQuantizationParams.

    effective = double(input_scale) * double(filter_scale[c]) / double(output_scale)
    """
    mults, shifts = [], []
    for fs in np.atleast_1d(filter_scales):
        eff = float(np.float32(input_scale)) * float(np.float32(fs)) / float(np.float32(output_scale))
        m, s = quantize_multiplier(eff)
        mults.append(m)
        shifts.append(s)
    return np.array(mults, dtype=np.int64), np.array(shifts, dtype=np.int64)


def activation_range_s8(activation: str, scale: float, zero_point: int,
                        qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLite CalculateActivationRangeQuantized for a fused activation.

    TFLite quantizes the activation's bounds in float32: zp + round(x / scale).
    """
    scale32 = np.float32(scale)

    def q(x: float) -> int:
        return zero_point + int(round_half_away(float(np.float32(x) / scale32)))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, q(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"unknown fused activation {activation}")


def dtype_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo({"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32}[dtype])
    return int(info.min), int(info.max)
