"""codegen/gemm_layout.py: the generation-time transforms of the specialised kernels, and the
folded requantization checked against tinyc_fixedpoint.h's general form (compiled C) on
adversarial inputs, ties of both roundings included."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tinyc.codegen import gemm_layout as gl
from tinyc.resources import templates_dir


def _tie_cases(rng, n: int):
    """(x, m, shift, zp, act_min) with many exact ties: of the second rounding (h = k*2^e +-
    2^(e-1)), of the first (m = 2^30, odd x), at m = 2^30 and m = 2^31 - 1, x near +-2^30."""
    rows = []
    for _ in range(n):
        e = int(rng.integers(0, gl.MAX_E + 1))
        m = int(rng.choice([1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31))]))
        zp = int(rng.integers(-128, 128))
        act_min = int(rng.choice([-128, zp, min(127, zp + int(rng.integers(0, 20)))]))
        kind = rng.integers(0, 4)
        if kind == 0 and e >= 1:   # second-rounding tie
            h = int(rng.integers(-2000, 2000)) * (1 << e) + (1 << (e - 1)) * int(rng.choice([-1, 1]))
            x = (h * (1 << 31)) // m + int(rng.integers(-2, 3))
        elif kind == 1:            # first-rounding tie at m = 2^30
            m = 1 << 30
            x = 2 * int(rng.integers(-(1 << 20), 1 << 20)) + 1
        elif kind == 2:            # the edges of |x| < 2^30
            x = int(rng.choice([-1, 1])) * ((1 << 30) - 1 - int(rng.integers(0, 5)))
        else:
            x = int(rng.integers(-(1 << 30) + 1, 1 << 30))
        x = max(-(1 << 30) + 1, min((1 << 30) - 1, x))
        rows.append((x, m, -e, zp, act_min))
    return rows


def test_folded_form_equals_the_reference_in_python():
    rng = np.random.default_rng(1)
    for x, m, shift, zp, act_min in _tie_cases(rng, 20000):
        e = -shift
        khi = zp if e == 0 else (1 << (e - 1)) + zp * (1 << e)
        ref = gl.requantize_double(x, m, shift) + zp
        if e >= 1:  # the signed form needs e >= 1 (requant_records refuses e = 0 there)
            assert gl.folded_requantize(x, m, khi, e, gl.RQ_DOUBLE_SIGNED) == ref, (x, m, shift, zp)
        if act_min >= zp:  # the RELU form is exact after the clamp
            got = gl.folded_requantize(x, m, khi, e, gl.RQ_DOUBLE_RELU)
            assert max(min(got, 127), act_min) == max(min(ref, 127), act_min), (x, m, shift, zp)
        single = gl.requantize_single(x, m, shift) + zp
        assert gl.folded_requantize(x, m, khi, e, gl.RQ_SINGLE) == single, (x, m, shift, zp)


C_HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "tinyc_fixedpoint.h"
#include "gemm_s8.h"
int main(void)
{
    long x, m, shift, zp, lo, mode;
    while (scanf("%ld %ld %ld %ld %ld %ld", &x, &m, &shift, &zp, &lo, &mode) == 6) {
        int32_t e = (int32_t)-shift;
        int32_t r[4] = {0, (int32_t)m, e == 0 ? (int32_t)zp : (1 << (e - 1)) + (int32_t)zp * (1 << e), e};
        int got = tinyc_gemm_output_s8((int32_t)x, r, (int)mode, (int32_t)lo, 127);
        int ref = mode == TINYC_RQ_SINGLE
            ? tinyc_requantize_single_output_s8((int32_t)x, (int32_t)m, (int32_t)shift, (int32_t)zp, (int32_t)lo, 127)
            : tinyc_requantize_double_output_s8((int32_t)x, (int32_t)m, (int32_t)shift, (int32_t)zp, (int32_t)lo, 127);
        if (got != ref) {
            printf("MISMATCH %ld %ld %ld %ld %ld %ld: %d != %d\n", x, m, shift, zp, lo, mode, got, ref);
            return 1;
        }
    }
    printf("ok\n");
    return 0;
}
"""


def test_folded_c_equals_tinyc_fixedpoint_general_form(tmp_path):
    """The kernels' C (portable path of templates/common/gemm_s8.c.j2) against
    tinyc_requantize_{double,single}_output_s8 on the same adversarial cases."""
    (tmp_path / "tinyc_fixedpoint.h").write_text((templates_dir() / "common" / "tinyc_fixedpoint.h").read_text())
    (tmp_path / "gemm_s8.h").write_text((templates_dir() / "common" / "gemm_s8.c.j2").read_text())
    (tmp_path / "t.c").write_text(C_HARNESS)
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
                    "-I", str(tmp_path), str(tmp_path / "t.c"), "-o", str(tmp_path / "t")], check=True)
    rng = np.random.default_rng(2)
    lines = []
    for x, m, shift, zp, act_min in _tie_cases(rng, 30000):
        if shift <= -1:
            lines.append(f"{x} {m} {shift} {zp} {act_min} {gl.RQ_DOUBLE_SIGNED}")
        lines.append(f"{x} {m} {shift} {zp} {act_min} {gl.RQ_SINGLE}")
        if act_min >= zp:
            lines.append(f"{x} {m} {shift} {zp} {act_min} {gl.RQ_DOUBLE_RELU}")
    res = subprocess.run([str(tmp_path / "t")], input="\n".join(lines) + "\n", capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout[:300]


def test_acc_init_regroups_the_reference_sum():
    rng = np.random.default_rng(3)
    w = rng.integers(-127, 128, (6, 37))
    bias = rng.integers(-5000, 5000, 6)
    x = rng.integers(-128, 128, 37)
    off = 77
    ref = (w * (x + off)).sum(axis=1) + bias
    assert np.array_equal(gl.acc_init(w, bias, off) + w @ x, ref)
    assert np.all(np.abs(ref) <= gl.acc_bound(w, bias, off))


def test_pair_interleave_matches_the_widened_activation_order():
    """Each 4-group: channel 2j's bytes then 2j+1's; a group of channel c dotted with the
    activations in the order x0 x2 x1 x3, weights read as SXTB16 / SXTB16 ROR 8 read them."""
    rng = np.random.default_rng(4)
    o, k = 5, 11
    w = rng.integers(-127, 128, (o, k))
    x = rng.integers(-128, 128, k)
    k4 = gl.ceil_to(k, 4)
    packed = gl.pair_interleave(w, k4).astype(np.int64).reshape(o // 2 + 1, k4 // 4, 2, 4)
    xs = gl.reorder_int16(np.concatenate([x, np.zeros(k4 - k, np.int64)])).reshape(-1, 4)
    for c in range(o):
        groups = packed[c // 2, :, c % 2, :]
        dot = sum(int(g[0] * a[0] + g[2] * a[1] + g[1] * a[2] + g[3] * a[3]) for g, a in zip(groups, xs))
        assert dot == int(w[c] @ x)
    wide = gl.pair_interleave_int16(w, k4).astype(np.int64).reshape(o // 2 + 1, k4 // 4, 2, 4)
    for c in range(o):
        assert sum(int(g @ a) for g, a in zip(wide[c // 2, :, c % 2, :], xs)) == int(w[c] @ x)
    assert packed[o // 2, :, 1, :].sum() == 0   # the padding channel is zero


def test_records_refuse_what_the_folded_form_cannot_do():
    w = np.ones((2, 4), np.int64)
    args = dict(bias=None, input_offset=0, output_zp=0, act_min=-128, act_max=127, single=False)
    assert gl.requant_records(w, mult=[1 << 30] * 2, shift=[1, -1], **args) is None        # left shift
    assert gl.requant_records(w, mult=[1 << 30] * 2, shift=[-23, -1], **args) is None      # e > 22
    assert gl.requant_records(w, mult=[(1 << 30) - 1] * 2, shift=[-1, -1], **args) is None  # m < 2^30
    assert gl.requant_records(w, mult=[1 << 30] * 2, shift=[0, -1], **args) is None        # signed, e = 0
    assert gl.requant_records(w, mult=[1 << 30] * 2, shift=[0, -1], **dict(args, act_min=0)) is not None
    big = dict(args, bias=np.array([1 << 30, 0]))
    assert gl.requant_records(w, mult=[1 << 30] * 2, shift=[-1, -1], **big) is None       # |acc| can reach 2^30
    rq = gl.requant_records(w, mult=[1 << 30] * 2, shift=[-1, -3], pad_to=4, **args)
    assert rq.records.shape == (4, 4) and rq.mode == gl.RQ_DOUBLE_SIGNED
    assert rq.records[1].tolist() == [0, 1 << 30, 4, 3] and rq.records[3].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("single", [False, True])
def test_dead_channels_fold_to_their_constant_output(single):
    w = np.zeros((2, 8), np.int64)
    w[1, 3] = 5
    bias = np.array([-(1 << 30) - 12345, 10])
    rq = gl.requant_records(w, bias, -3, [1518500250, 1 << 30], [-7, -2], output_zp=-20, act_min=-128,
                            act_max=127, single=single)
    out = (gl.requantize_single if single else gl.requantize_double)(int(bias[0]), 1518500250, -7) - 20
    assert rq.dead == 1 and rq.records[0].tolist() == [0, 0, max(-128, min(127, out)), 0]
    assert gl.folded_requantize(0, 0, int(rq.records[0][2]), 0, rq.mode) == max(-128, min(127, out))
