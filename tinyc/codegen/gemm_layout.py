"""Generation-time transforms for the fast CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED kernels.

Pure functions over numpy arrays (no IR, no C): the lowerings in ops/conv.py and
ops/fully_connected.py call them, tests/test_gemm_layout.py checks them.

- acc_init[o] = bias[o] + input_offset * sum_k w[o][k]: the input offset leaves the inner loop.
  A tap outside the image holds the input zero point, which adds w * (zp + input_offset) = 0.
- Pair-interleaved weights (`pair_interleave`): K padded to k4 = ceil4(K) with zero weights,
  channels padded to an even count; for channel pair j and 4-k group g the 4 bytes of channel
  2j, then the 4 of channel 2j+1. The kernels widen activations to int16 in the order
  (x0, x2), (x1, x3) - what SXTB16 and SXTB16 ROR 8 make of the 4 weight bytes - so SMLAD pairs
  match (and the portable path uses the same permutation).
- Folded requantization records (`requant_records`): {acc_init, multiplier, khi, e} per
  channel, for the cheap form `SMMLAR(2x, m, khi [+ (x >> 31)]) >> e` of gemmlowp's double
  rounding and `SMMLA(2x, m, khi) >> e` of single rounding, used only where exact (below).
- Dead channels (all-zero weights) have a constant output, folded into the record.
- `acc_bound`: the largest |accumulator| a channel can reach, which the cheap form needs < 2^30.

Why the folded form is exact (m in [2^30, 2^31), e = -shift in [0, 22], |x| < 2^30, zp the
output zero point): double rounding is h = floor((x*m + 2^30) / 2^31) (the nudged, truncated
high multiply, for either sign), then r = floor((h + 2^(e-1) - [h<0]) / 2^e) (half away from
zero). Since floor(floor(a / 2^31) / 2^e) = floor(a / 2^(31+e)),
    r + zp = floor((2xm + 2^31 + (khi - [h<0]) * 2^32) / 2^(32+e)),  khi = 2^(e-1) + zp * 2^e,
which is SMMLAR(2x, m, khi - [h<0]) >> e (SMMLAR(a, b, c) = floor((c*2^32 + a*b + 2^31) / 2^32)).
For e = 0, r = h and khi = zp with no [h<0] term (the kernels always add it in the signed
mode, so a signed layer with e = 0 keeps the general kernel). [h<0] = [x<0] for every m in [2^30, 2^31)
except x = -1, m = 2^30 (h = 0, not a tie: the extra -1 changes nothing). When act_min >= zp
(ReLU-like) the term is dropped: it only moves exact negative ties, whose candidates r-1, r <= 0
both clamp to act_min. e <= 22 keeps khi and the sum in int32 for |zp| <= 128.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RQ_DOUBLE_SIGNED = 0   # double rounding, the [x<0] term kept
RQ_DOUBLE_RELU = 1     # double rounding, act_min >= zp: the term dropped
RQ_SINGLE = 2          # single rounding (FULLY_CONNECTED)

MAX_E = 22
ACC_LIMIT = 1 << 30


def ceil_to(n: int, m: int) -> int:
    return -(-int(n) // m) * m


def acc_init(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """bias + input_offset * sum_k w[o][k] per output channel (int64), w as [O][K]."""
    w = np.asarray(w, dtype=np.int64)
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
    return b + np.int64(input_offset) * w.sum(axis=1)


def acc_bound(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """Per channel, the largest |accumulator| any int8 input gives, in either the folded sum
    acc_init + sum w*x or the reference's sum w*(x + offset) + bias: |bias| + max|x + off| *
    sum|w| bounds both (int64)."""
    w = np.abs(np.asarray(w, dtype=np.int64))
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.abs(np.asarray(bias, dtype=np.int64)).reshape(-1)
    xmax = max(abs(-128 + input_offset), abs(127 + input_offset), 128)
    return b + xmax * w.sum(axis=1)


def pair_interleave(w: np.ndarray, k4: int) -> np.ndarray:
    """[O][K] int8 -> flat int8: channel pairs x k4/4 groups x [4 of channel 2j][4 of channel 2j+1]
    (K zero-padded to k4, O to even)."""
    w = np.asarray(w, dtype=np.int64)
    o, k = w.shape
    o2 = o + o % 2
    wp = np.zeros((o2, k4), dtype=np.int64)
    wp[:o, :k] = w
    return wp.reshape(o2 // 2, 2, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(-1).astype(np.int8)


def reorder_int16(x: np.ndarray) -> np.ndarray:
    """The int16 order of the widened activations of each 4-group: x0, x2, x1, x3."""
    x = np.asarray(x).reshape(-1, 4)
    return x[:, [0, 2, 1, 3]].reshape(-1)


def pair_interleave_int16(w: np.ndarray, k4: int) -> np.ndarray:
    """--optimize speed: the pair-interleaved weights pre-widened to int16 in the activations'
    order (w0, w2, w1, w3 per 4-group), so the inner loop loads SMLAD operands directly."""
    return reorder_int16(pair_interleave(w, k4)).astype(np.int16)


def dead_channels(w: np.ndarray) -> np.ndarray:
    """Channels whose weights are all zero (their output is a constant)."""
    return ~np.any(np.asarray(w) != 0, axis=1)


# ------------------------------------------------------------------ reference requantization

def requantize_double(x: int, m: int, shift: int) -> int:
    """tinyc_requantize_double_s32 (gemmlowp SRDHM then RoundingDivideByPOT), Python ints,
    for shift <= 0 and the non-saturating case."""
    ab = x * m
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    t = ab + nudge
    h = abs(t) >> 31 if t >= 0 else -(abs(t) >> 31)   # C division truncates toward zero
    e = -shift
    mask = (1 << e) - 1
    rem = h & mask
    threshold = (mask >> 1) + (1 if h < 0 else 0)
    return (h >> e) + (1 if rem > threshold else 0)


def requantize_single(x: int, m: int, shift: int) -> int:
    """tinyc_requantize_s32 for shift <= 0: one rounding, ties up."""
    total = 31 - shift
    return (x * m + (1 << (total - 1))) >> total


def _wrap32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def smmlar(a: int, b: int, c: int) -> int:
    return _wrap32((c * (1 << 32) + a * b + (1 << 31)) >> 32)


def smmla(a: int, b: int, c: int) -> int:
    return _wrap32((c * (1 << 32) + a * b) >> 32)


def folded_requantize(x: int, m: int, khi: int, e: int, mode: int) -> int:
    """What the kernels compute (before the clamp) from a record: Python model of the C."""
    if mode == RQ_SINGLE:
        return smmlar(2 * x, m, khi) if e == 0 else smmla(2 * x, m, khi) >> e
    if mode == RQ_DOUBLE_SIGNED:
        khi += -1 if x < 0 else 0
    return smmlar(2 * x, m, khi) >> e


# ------------------------------------------------------------------------- records

@dataclass
class Requant:
    records: np.ndarray   # [O_padded][4] int32: acc_init, multiplier, khi, e
    mode: int             # RQ_DOUBLE_SIGNED, RQ_DOUBLE_RELU or RQ_SINGLE
    dead: int             # channels folded to a constant


def requant_records(w: np.ndarray, bias: np.ndarray | None, input_offset: int, mult, shift,
                    output_zp: int, act_min: int, act_max: int, single: bool,
                    pad_to: int | None = None) -> Requant | None:
    """The folded records of a layer ([O][K] weights), or None when the cheap form is not exact
    for some live channel (left shift, e > 22, multiplier outside [2^30, 2^31), or an
    accumulator that can reach 2^30): the caller then keeps the general kernel."""
    w = np.asarray(w, dtype=np.int64)
    init = acc_init(w, bias, input_offset)
    bound = acc_bound(w, bias, input_offset)
    dead = dead_channels(w)
    mult = np.asarray(mult, dtype=np.int64).reshape(-1)
    shift = np.asarray(shift, dtype=np.int64).reshape(-1)
    if mult.size == 1:
        mult, shift = np.repeat(mult, w.shape[0]), np.repeat(shift, w.shape[0])
    mode = RQ_SINGLE if single else (RQ_DOUBLE_RELU if act_min >= output_zp else RQ_DOUBLE_SIGNED)
    rows = []
    for o in range(w.shape[0]):
        m, s, a = int(mult[o]), int(shift[o]), int(init[o])
        if dead[o]:
            if abs(a) >= (1 << 31) or s > 0:
                return None
            y = (requantize_single(a, m, s) if single else requantize_double(a, m, s)) + output_zp
            rows.append((0, 0, min(max(y, act_min), act_max), 0))
            continue
        e = -s
        if not (0 <= e <= MAX_E and (1 << 30) <= m < (1 << 31) and bound[o] < ACC_LIMIT):
            return None
        if e == 0 and mode == RQ_DOUBLE_SIGNED:   # r = h: the kernels' [x<0] term would be wrong
            return None
        khi = output_zp if e == 0 else (1 << (e - 1)) + output_zp * (1 << e)
        rows.append((a, m, khi, e))
    while len(rows) < (pad_to or 0):
        rows.append((0, 0, 0, 0))
    return Requant(np.array(rows, dtype=np.int64).astype(np.int32), mode, int(dead.sum()))
