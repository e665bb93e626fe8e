/*
 * tinyc fixed-point helpers, defined once for every kernel.
 *
 * These reproduce TensorFlow Lite's reference integer arithmetic bit for bit
 * (tensorflow/lite/kernels/internal/common.h and gemmlowp's fixedpoint.h), with the
 * rounding variant each of LiteRT's BUILTIN_REF kernels actually uses (see below).
 * C99; signed right shifts are arithmetic on every compiler tinyc targets.
 */
#ifndef TINYC_FIXEDPOINT_H
#define TINYC_FIXEDPOINT_H

#include <stdint.h>

#define TINYC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TINYC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TINYC_CLAMP(x, lo, hi) TINYC_MIN(TINYC_MAX((x), (lo)), (hi))

/*
 * A kernel inlined at every call, so that its layer's `static const` params (shifts, offsets,
 * extents) fold into its loops. Used for the small elementwise kernels, whose inner loops
 * otherwise test every shift per element: the three ADD layers of pretrainedResnet_quant
 * (mps2-an386) take 2.48M instructions through one shared function, 0.90M inlined, in less code.
 */
#if defined(__GNUC__)
#define TINYC_ALWAYS_INLINE __attribute__((always_inline)) static inline
#else
#define TINYC_ALWAYS_INLINE static inline
#endif

/*
 * A layer's own function around an always-inline kernel: the kernel is specialised for the
 * layer's constants and keeps its own register frame (the assembly loops need 14 registers).
 */
#if defined(__GNUC__)
#define TINYC_NOINLINE __attribute__((noinline))
#else
#define TINYC_NOINLINE
#endif

/*
 * x * 2^n with int32 wrap-around (as the reference's int32 multiply `x * (1 << n)`). The
 * count is taken mod 32, as x86 does for that `1 << n` when a rescale of 2^30 or more makes
 * n 31 or more (checked against LiteRT 2.3 on every int8 input).
 */
static inline int32_t tinyc_shl_s32(int32_t x, int n)
{
    return (int32_t)((uint32_t)x << (n & 31));
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
 * Requantization: x * multiplier * 2^(shift - 31), multiplier a Q31 in [2^30, 2^31).
 *
 * LiteRT 2.3.0's reference kernels do not all round the same way (found by comparing
 * each op with BUILTIN_REF, 2026-11-26):
 *   FULLY_CONNECTED (per-tensor and per-channel): single rounding, tinyc_requantize_s32;
 *   CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, MEAN, QUANTIZE (int8 -> int8) and the rest:
 *   gemmlowp double rounding, tinyc_requantize_double_s32.
 * Each kernel says which one it uses and why; a wrong pick is a 1-LSB error on a share of
 * outputs. (TFLM uses double rounding everywhere, hence its FULLY_CONNECTED differences.)
 */

/*
 * Single rounding: one 64-bit product, one rounding shift (ties up). shift >= -31.
 * A result outside int32 (a multiplier > 1 on a large accumulator: TFLite's contract says it
 * never happens, calibration on huge ranges makes it happen) is INT32_MIN, which is what
 * LiteRT's FULLY_CONNECTED reference gives there (ai-edge-litert 2.3.0, x86-64: every such
 * output, for any sign and zero point, as if the value went through a float-to-int conversion).
 * shift >= 31 (multiplier >= 2^30): x * multiplier * 2^(shift - 31) exactly, which fits int32
 * only for shift 31 and |x| = 1 (multiplier >= 2^30), or is -2^31 = INT32_MIN anyway.
 */
static inline int32_t tinyc_requantize_s32(int32_t x, int32_t multiplier, int shift)
{
    int64_t result;
    if (shift >= 31) {
        result = (int64_t)x * (int64_t)multiplier;
        if (shift > 31 && x != 0) {
            return INT32_MIN;
        }
    } else {
        const int total_shift = 31 - shift;
        result = ((int64_t)x * (int64_t)multiplier + ((int64_t)1 << (total_shift - 1))) >> total_shift;
    }
    return (result < INT32_MIN || result > INT32_MAX) ? INT32_MIN : (int32_t)result;
}

/* a + b wrapping as int32 (the reference's `acc += output_offset` after an INT32_MIN). */
static inline int32_t tinyc_add_wrap_s32(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

/*
 * gemmlowp double rounding (TFLite MultiplyByQuantizedMultiplier without
 * TFLITE_SINGLE_ROUNDING): a rounding doubling high multiply, then a rounding right shift.
 *
 * Fast form of the same function for shift <= 0 (every kernel's hot path), equal for every
 * input (proof below; checked against the two-step form on 3e8 random and all corner
 * inputs): with p = x * multiplier + 2^30, the high multiply's trunc((x*m + nudge) / 2^31)
 * is floor(p / 2^31) for either sign of the nudge; rounding that by 2^e half away from
 * zero is floor((p - [p < 0] * 2^31 + 2^(30+e)) / 2^(31+e)) for e >= 1, which for e >= 2
 * only needs the high word: (hi + 2^(e-2)) >> (e-1).
 */
static inline int32_t tinyc_requantize_double_s32(int32_t x, int32_t multiplier, int shift)
{
    if (shift <= 0 && !(x == INT32_MIN && multiplier == INT32_MIN)) {
        const int exponent = -shift;
        const int64_t p = (int64_t)x * (int64_t)multiplier + ((int64_t)1 << 30);
        int64_t q;
        if (exponent == 0) {
            return (int32_t)(p >> 31);
        }
        q = p < 0 ? p - ((int64_t)1 << 31) : p;
        if (exponent == 1) {
            return (int32_t)((q + ((int64_t)1 << 31)) >> 32);
        }
        return ((int32_t)(q >> 32) + (1 << (exponent - 2))) >> (exponent - 1);
    }
    {   /* multiplier > 1 (left shift) or the saturating corner: the two gemmlowp steps */
        const int left_shift = shift > 0 ? shift : 0;
        const int right_shift = shift > 0 ? 0 : -shift;
        return tinyc_rounding_divide_by_pot_s32(
            tinyc_sat_rounding_doubling_high_mul_s32(tinyc_shl_s32(x, left_shift), multiplier),
            right_shift);
    }
}

/* TFLite MultiplyByQuantizedMultiplierSmallerThanOneExp (left_shift <= 0), double rounding. */
static inline int32_t tinyc_requantize_lt1_s32(int32_t x, int32_t multiplier, int left_shift)
{
    return tinyc_rounding_divide_by_pot_s32(
        tinyc_sat_rounding_doubling_high_mul_s32(x, multiplier), -left_shift);
}

/* TFLite MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0), double rounding. */
static inline int32_t tinyc_requantize_gt1_s32(int32_t x, int32_t multiplier, int left_shift)
{
    return tinyc_sat_rounding_doubling_high_mul_s32(tinyc_shl_s32(x, left_shift), multiplier);
}

/*
 * The last step of an int8 kernel: requantize the int32 accumulator, add the output offset
 * (zero point), clamp to the activation bounds.
 * _double: CONV_2D and DEPTHWISE_CONV_2D (gemmlowp double rounding, raw and encoded weights);
 * _single: FULLY_CONNECTED (single rounding; the offset added with wraparound after an
 * INT32_MIN result, as the reference does).
 */
static inline int8_t tinyc_requantize_double_output_s8(int32_t acc, int32_t multiplier, int32_t shift,
                                                       int32_t output_offset, int32_t act_min, int32_t act_max)
{
    acc = tinyc_requantize_double_s32(acc, multiplier, (int)shift) + output_offset;
    return (int8_t)TINYC_CLAMP(acc, act_min, act_max);
}

static inline int8_t tinyc_requantize_single_output_s8(int32_t acc, int32_t multiplier, int32_t shift,
                                                       int32_t output_offset, int32_t act_min, int32_t act_max)
{
    acc = tinyc_add_wrap_s32(tinyc_requantize_s32(acc, multiplier, (int)shift), output_offset);
    return (int8_t)TINYC_CLAMP(acc, act_min, act_max);
}

#endif /* TINYC_FIXEDPOINT_H */
