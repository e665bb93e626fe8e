"""The serial link against an emulated Cortex-M board (mps2-an386 in QEMU, its UART on a
pty): a board reset mid-run, stale bytes left by an interrupted session, and the stack
high-water mark the firmware measures by painting its stack.
"""

from __future__ import annotations


import numpy as np
import pytest

from fakemodel import write_fake_model
from tinyc import link as L
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import convert
from tinyc.outdir import binary_path, load_manifest
from tinyc.reference import Reference
from tinyc.runners import open_session, qemu
from tinyc.runners.serial_board import serial_open
from tinyc.samples import random_inputs, to_record

BOARD = "mps2-an386"

# A stand-in model: out = in + 1. Input 0x7e... resets the board (SYSRESETREQ) once: a
# marker in .noinit (kept across the reset) lets the host's retry through. Input 0x10...
# runs a kernel with a 4 KB frame, so the stack high-water mark has a known size.
FAKE_C = """#include "model.h"
#define AIRCR (*(volatile uint32_t *)0xE000ED0Cu)
#define BIG_FRAME_BYTES 4096
__attribute__((section(".noinit"))) static volatile uint32_t reset_marker;
static __attribute__((noinline)) int8_t big_frame_kernel(int8_t seed)
{
    volatile int8_t scratch[BIG_FRAME_BYTES];
    int i;
    for (i = 0; i < BIG_FRAME_BYTES; ++i) {
        scratch[i] = (int8_t)(seed + i);
    }
    return (int8_t)(scratch[BIG_FRAME_BYTES - 1] - (int8_t)(BIG_FRAME_BYTES - 1));
}
int tinyc_invoke_all(const void *const inputs[], void *const outputs[])
{
    const int8_t *in = (const int8_t *)inputs[0];
    int8_t *out = (int8_t *)outputs[0];
    int8_t base = in[0];
    int i;
    tinyc_layer_begin(0);
    if (in[0] == 0x7e && reset_marker != 0x5e7e5e7eu) {
        reset_marker = 0x5e7e5e7eu;
        AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
        for (;;) {
        }
    }
    if (in[0] == 0x10) {
        base = big_frame_kernel(in[0]);
    }
    out[0] = (int8_t)(base + 1);
    for (i = 1; i < 4; ++i) {
        out[i] = (int8_t)(in[i] + 1);
    }
    tinyc_layer_end(0);
    return 0;
}
"""


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    out = write_fake_model(tmp_path_factory.mktemp("linkfake") / "fake", FAKE_C, model_hash="5e75e75e75e75e75",
                           num_layers=1)
    build(out, load_board(BOARD))
    return out


@pytest.fixture(scope="module")
def mlperf(tmp_path_factory, mlperf_dir):
    root = tmp_path_factory.mktemp("linkmodels")
    out = {}
    for name in ("ad01_int8", "kws_ref_model"):
        out[name] = root / name
        convert(mlperf_dir / f"{name}.tflite", out[name])
        build(out[name], load_board(BOARD))
    return out


def test_board_reset_is_survived_and_counted(fake):
    board = load_board(BOARD)
    with open_session(board, fake, timeout=10.0) as s:
        assert s.infer(bytes([1, 2, 3, 4])).output == bytes([2, 3, 4, 5])
        assert s.infer(bytes([5, 6, 7, 8])).output == bytes([6, 7, 8, 9])
        assert s.link_stats["resets"] == 0
        # the board resets instead of answering; the retry reaches the restarted board
        assert s.infer(bytes([0x7E, 1, 1, 1])).output == bytes([0x7F, 2, 2, 2])
        assert s.link.infer_count == 1                 # counting INFERs from 1 again
        assert s.link_stats["resets"] == 1 and s.link_stats["retries"] >= 1
        assert s.infer(bytes([9, 9, 9, 9])).output == bytes([10, 10, 10, 10])
        assert s.link_stats["resets"] == 1


def test_stack_high_water_mark_of_a_known_frame(fake):
    """A kernel with a 4,096-byte local array: the mark is at least that and not much more;
    the plain path uses far less. Both are below the board's stack size."""
    board = load_board(BOARD)
    stack_size = board.raw["memory"]["stack_bytes"]
    with open_session(board, fake, timeout=10.0) as s:
        small = s.infer(bytes([1, 2, 3, 4])).stack_bytes
        big = s.infer(bytes([0x10, 2, 3, 4])).stack_bytes
        again = s.infer(bytes([1, 2, 3, 4])).stack_bytes   # repainted: measured alone, not the max so far
    assert 0 < small < 256, small
    assert 4096 <= big < 4096 + 256, big
    assert again == small
    assert big < stack_size


def test_stack_high_water_mark_of_real_models(mlperf):
    """ad01 is fully connected layers only; kws runs convolutions, whose kernels keep more
    in their frames: the marks are non-zero, below the stack size, and in that order."""
    board = load_board(BOARD)
    stack_size = board.raw["memory"]["stack_bytes"]
    marks = {}
    for name, out in mlperf.items():
        x = random_inputs(load_manifest(out).inputs, 1, seed=4)[0]
        with open_session(board, out) as s:
            marks[name] = s.infer(to_record(x)).stack_bytes
    assert all(0 < m < stack_size for m in marks.values()), marks
    assert marks["ad01_int8"] < marks["kws_ref_model"], marks


def test_stale_bytes_of_an_interrupted_session_are_not_taken(mlperf):
    """Session 1 sends an INFER and half of another frame, then goes away without reading.
    Session 2 on the same (still running) board must resynchronise, drop the RESULT meant
    for session 1 (same seq as its own first INFER) and get its own, bit-exact."""
    board = load_board(BOARD)
    out = mlperf["ad01_int8"]
    manifest = load_manifest(out)
    ref = Reference(out / "model.tflite")
    xs = [np.random.default_rng(s).integers(-128, 128, size=640).astype(np.int8) for s in (40, 41, 42)]
    emu = qemu.QemuProcess(qemu.qemu_command(board, binary_path(out, board)), max_seconds=120)
    try:
        s1 = serial_open(emu.pty, 115200)
        l1 = L.Link(s1, name="session 1")
        l1.handshake(timeout=20.0, expect_hash=manifest.model_hash)
        l1.send(L.T_INFER, 2, xs[0].tobytes())               # the seq session 2's first INFER gets
        s1.write(L.encode_frame(L.T_INFER, 3, xs[1].tobytes())[:300])   # cut off mid-frame
        s1.flush()
        s1.close()

        s2 = serial_open(emu.pty, 115200)
        l2 = L.Link(s2, name="session 2", timeout=10.0)
        l2.handshake(timeout=20.0, expect_hash=manifest.model_hash)
        got = l2.infer(xs[2].tobytes())
        assert l2.seq == 2 + l2.stats.retries      # a retry (a loaded machine) takes the next seq
        want = ref.run(xs[2].reshape(1, 640))[0].astype(np.int8).tobytes()
        assert got.output == want
        assert got.infer_count == 2 + l2.stats.retries   # the board did serve session 1's INFER
        assert l2.stats.stale >= 1                  # ...and its RESULT reached session 2, which dropped it
        assert l2.exit(timeout=15.0)             # patient: a loaded machine delays QEMU
        s2.close()
    finally:
        emu.kill()
