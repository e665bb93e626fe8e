"""The affine int8 math, in one place.

Everything here mirrors TensorFlow Lite's own helpers (kernels/internal/quantization_util.cc
and kernels/kernel_util.cc) so that the constants tinyc bakes into C equal the ones LiteRT's
reference kernels compute at Prepare time, to the bit. Where TFLite computes in float32 we do
too (np.float32), where it computes in double we use Python floats.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.errors import UnsupportedError

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> float:
    """C's round()/std::round (TfLiteRound): halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = q / 2^31 * 2^shift, q in [2^30, 2^31).

    As built without TFLITE_SINGLE_ROUNDING (the ai-edge-litert wheel the oracle runs): the
    shift is not clamped to 30, so a multiplier of 2^30 or more keeps its shift of 31+ (see
    docs/internals.md, "Beyond int32", for what the kernels then compute).
    """
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

    TFLite quantizes the activation's bounds in float32: zp + round(x / scale), and refuses
    the model (Prepare fails) when round(x / scale) leaves int32: so does tinyc.
    """
    scale32 = np.float32(scale)

    def q(x: float) -> int:
        with np.errstate(all="ignore"):
            v = float(np.float32(x) / scale32)
        t = round_half_away(v) if math.isfinite(v) else v
        if not -2.0 ** 31 <= t <= 2.0 ** 31:  # NaN fails too
            raise UnsupportedError(f"the fused {activation} bound {x:g} is {t:g} steps of the output scale "
                                   f"{scale:g}, beyond int32; TFLite refuses this model too: re-quantize it")
        return zero_point + int(t)

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


# --------------------------------------------------------------------------------------------
# Choosing quantization parameters (what the TFLite converter does at post-training
# quantization). The converter's MLIR quantizer works in double and then, with its
# `legacy_float_scale` setting (on for post-training quantization), recomputes every scale in
# float32 (DownCastScale in quantization_utils.cc). The functions below follow that order of
# operations so that they reproduce the converter's scales, zero points and int8/int32 values
# bit for bit (tests/test_quantize_math.py checks them against converter output).
# --------------------------------------------------------------------------------------------

NEAR_ZERO_TOLERANCE = 1e-6  # kNearZeroTolerance: smaller ranges are widened to this


def _widen_tiny_range(rmin: float, rmax: float) -> tuple[float, float]:
    """ExpandVerySmallRange: a range narrower than 1e-6 becomes at least [-5e-7, 5e-7]."""
    if rmax - rmin > NEAR_ZERO_TOLERANCE:
        return rmin, rmax
    half = NEAR_ZERO_TOLERANCE / 2
    return min(rmin, -half), max(rmax, half)


def choose_qparams(rmin: float, rmax: float, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[float, int]:
    """(scale, zero_point) of an activation whose calibrated range is [rmin, rmax].

    Asymmetric, full range [-128, 127]. The range is first stretched to hold 0.0 (so that 0,
    e.g. padding, is exact), then the scale is (max - min) / 255 computed in float32 and the zero
    point qmin - min / scale, rounded half away from zero and clamped into [qmin, qmax].
    """
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    rmin, rmax = _widen_tiny_range(rmin, rmax)
    f32 = np.float32
    scale = f32(f32(rmax) - f32(rmin)) / f32(qmax - qmin)
    zp_from_min = float(f32(qmin - rmin / float(scale)))
    if zp_from_min < qmin:
        zp = qmin
    elif zp_from_min > qmax:
        zp = qmax
    else:
        zp = int(round_half_away(zp_from_min))
    return float(scale), zp


def _round_half_away_array(x: np.ndarray) -> np.ndarray:
    """Elementwise C round() of float32 values; the +0.5 is done in double, where it is exact."""
    x = np.asarray(x).astype(np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _channel_absmax(w: np.ndarray, axis: int | None) -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    if axis is None:
        return np.array([np.max(np.abs(w))], dtype=np.float64) if w.size else np.zeros(1)
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    return np.max(np.abs(moved), axis=1).astype(np.float64)


def symmetric_weight_scales(w: np.ndarray, axis: int | None = 0) -> np.ndarray:
    """Scales of symmetric int8 weights ([-127, 127], zero point 0), per slice of `axis`.

    axis=None gives one per-tensor scale. scale = (m - (-m)) / 254 in float32, m = max |w|
    over the slice (a slice narrower than 1e-6 is widened to +-5e-7 first).
    """
    f32 = np.float32
    scales = []
    for m in _channel_absmax(w, axis):
        lo, hi = _widen_tiny_range(-m, m)
        scales.append(f32(f32(hi) - f32(lo)) / f32(254))
    return np.array(scales, dtype=np.float32)


def quantize_weights_symmetric(w: np.ndarray, scales: np.ndarray, axis: int | None = 0) -> np.ndarray:
    """int8 weights for the given symmetric scales, as the converter writes them.

    Per-axis: q = round(w * float32(1.0 / scale)) (SymmetricPerChannelQuantizeValues).
    Per-tensor: q = round(w * float32(127 / max|w|)) (PortableSymmetricQuantizeFloats).
    Both clamp to [-127, 127]; rounding is half away from zero.
    """
    w = np.asarray(w, dtype=np.float32)
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float32))
    if axis is None:
        rng = np.float32(np.max(np.abs(w))) if w.size else np.float32(0)
        inv = np.float32(0) if rng == 0 else np.float32(127) / rng
        prod = w * inv
    else:
        inv = np.array([0.0 if s == 0 else 1.0 / float(s) for s in scales], dtype=np.float32)
        shape = [1] * w.ndim
        shape[axis] = -1
        prod = w * inv.reshape(shape)
    q = _round_half_away_array(prod)
    return np.clip(q, -127, 127).astype(np.int8)


def bias_scales(input_scale: float, weight_scales) -> np.ndarray:
    """Scale of an int32 bias: input_scale * weight_scale[c], product in double, stored as float32."""
    return np.array([float(np.float32(input_scale)) * float(np.float32(s)) for s in np.atleast_1d(weight_scales)],
                    dtype=np.float32)


def quantize_bias(b: np.ndarray, input_scale: float, weight_scales) -> np.ndarray:
    """int32 bias, zero point 0 (SymmetricBiasQuantize): q = round(b * float32(1.0 / scale[c]))."""
    b = np.asarray(b, dtype=np.float32).reshape(-1)
    scales = bias_scales(input_scale, weight_scales)
    if scales.size == 1:
        scales = np.repeat(scales, b.size)
    inv = np.array([0.0 if s == 0 else 1.0 / float(s) for s in scales], dtype=np.float32)
    q = _round_half_away_array(b * inv)
    lim = np.iinfo(np.int32).max
    return np.clip(q, -lim, lim).astype(np.int32)


def quantize_array(x: np.ndarray, scale: float, zero_point: int, dtype: str = "int8") -> np.ndarray:
    """Float data -> integers exactly as TFLite's QUANTIZE (AffineQuantize):
    zp + round(x / scale) with a float32 division, rounded half away from zero, clamped."""
    x = np.asarray(x, dtype=np.float32)
    r = _round_half_away_array(x / np.float32(scale))
    lo, hi = dtype_range(dtype)
    return np.clip(r.astype(np.int64) + int(zero_point), lo, hi).astype(dtype)


def dequantize_array(q: np.ndarray, scale, zero_point, axis: int | None = None) -> np.ndarray:
    """real = scale * (q - zp), in double then float32 as TFLite's DEQUANTIZE."""
    q = np.asarray(q).astype(np.float64)
    scale = np.atleast_1d(np.asarray(scale, dtype=np.float32)).astype(np.float64)
    zp = np.atleast_1d(np.asarray(zero_point)).astype(np.float64)
    if axis is not None and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (scale * (q - zp)).astype(np.float32)
