/*
 * tinyc fixed-point helpers, defined once for every kernel.
 *
 * These reproduce TensorFlow Lite's reference integer arithmetic bit for bit
 * (tensorflow/lite/kernels/internal/common.h, built with TFLITE_SINGLE_ROUNDING as
 * LiteRT's BUILTIN_REF kernels are, and gemmlowp's fixedpoint.h for the helpers that
 * softmax and logistic still use).
 * C99; signed right shifts are arithmetic on every compiler tinyc targets.
 */
#ifndef TINYC_FIXEDPOINT_H
#define TINYC_FIXEDPOINT_H

#include <stdint.h>

#define TINYC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TINYC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TINYC_CLAMP(x, lo, hi) TINYC_MIN(TINYC_MAX((x), (lo)), (hi))

/* x * 2^n with int32 wrap-around (as the reference's int32 multiply). */
static inline int32_t tinyc_shl_s32(int32_t x, int n)
{
    return (int32_t)((uint32_t)x << n);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), saturating. */
static inline int32_t tinyc_sat_rounding_doubling_high_mul_s32(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from zero. */
static inline int32_t tinyc_rounding_divide_by_pot_s32(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/*
 * TFLite MultiplyByQuantizedMultiplier: round(x * multiplier * 2^(shift - 31)).
 *
 * LiteRT's reference kernels are built with TFLITE_SINGLE_ROUNDING: one 64-bit product and
 * one rounding shift (ties round up). Checked against ai-edge-litert 2.3.0 BUILTIN_REF, where
 * the gemmlowp double-rounding variant (below, kept for TFLM-compatible builds) differs by
 * 1 LSB on a share of outputs. shift is in [-31, 30].
 */
static inline int32_t tinyc_requantize_s32(int32_t x, int32_t multiplier, int shift)
{
    const int total_shift = 31 - shift;
    const int64_t round = (int64_t)1 << (total_shift - 1);
    return (int32_t)(((int64_t)x * (int64_t)multiplier + round) >> total_shift);
}

/* TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (left_shift <= 0); single rounding. */
static inline int32_t tinyc_requantize_lt1_s32(int32_t x, int32_t multiplier, int left_shift)
{
    return tinyc_requantize_s32(x, multiplier, left_shift);
}

/* TFLite MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0); single rounding. */
static inline int32_t tinyc_requantize_gt1_s32(int32_t x, int32_t multiplier, int left_shift)
{
    return tinyc_requantize_s32(x, multiplier, left_shift);
}

/*
 * gemmlowp double rounding (TFLite without TFLITE_SINGLE_ROUNDING, and TFLM): a rounding
 * doubling high multiply, then a rounding right shift. Not the reference's variant.
 */
static inline int32_t tinyc_requantize_double_s32(int32_t x, int32_t multiplier, int shift)
{
    const int left_shift = shift > 0 ? shift : 0;
    const int right_shift = shift > 0 ? 0 : -shift;
    return tinyc_rounding_divide_by_pot_s32(
        tinyc_sat_rounding_doubling_high_mul_s32(tinyc_shl_s32(x, left_shift), multiplier),
        right_shift);
}

#endif /* TINYC_FIXEDPOINT_H */
