"""Firmware on emulated boards, validated over the serial link against LiteRT BUILTIN_REF.

Every check goes through the real path: cross-built firmware, QEMU's emulated UART on a
pty, pyserial, tinyc.link. Expected outputs come from LiteRT's reference kernels (through
tinyc.validate) or from golden outputs stored beside the models (made with LiteRT).
The emulated UART takes ~55 us per byte in, so sample counts are kept small for the
large-input models.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from fakemodel import write_fake_model
from faultrelay import FaultRelay, Faults
from tinyc.boards import load_board
from tinyc.cli.text import validate_lines
from tinyc.build import build
from tinyc.errors import TinycError
from tinyc.link import T_RESULT, BoardError, decode_frame
from tinyc.convert import ConvertOptions, convert
from tinyc.outdir import load_manifest
from tinyc.runners import open_session, qemu
from tinyc.samples import random_inputs
from tinyc.validate import validate

# model -> random samples per board run (large inputs cost ~1.5 s each to send)
MODELS = {
    "ad01_int8": 4,
    "kws_ref_model": 4,
    "str_ww_ref_model": 4,
    "pretrainedResnet_quant": 3,
    "pretrainedResnet_large_int8": 2,
    "vww_96_int8": 2,
}


@pytest.fixture(scope="module")
def models(tmp_path_factory, mlperf_dir):
    root = tmp_path_factory.mktemp("fw")
    out = {}
    for name in MODELS:
        out[name] = root / name
        convert(mlperf_dir / f"{name}.tflite", out[name], ConvertOptions(board="mps2-an386"))  # Cortex-M layouts
    return out


@pytest.fixture(scope="module")
def golden(mlperf_dir):
    return json.loads((mlperf_dir / "test_data" / "golden_outputs.json").read_text())["cases"]


def _validate(outdir: Path, board, n: int, seed: int = 0, **kw):
    build(outdir, board)
    samples = random_inputs(load_manifest(outdir).inputs, n, seed=seed)
    return validate(outdir, board, samples, **kw)


def _check_summary(summary, n, manifest, unit="instructions"):
    assert summary.error is None, summary.error
    assert summary.samples == n and summary.bit_exact == n, summary.as_dict()
    assert summary.cycle_unit == unit and len(summary.cycles) == n and min(summary.cycles) > 0
    assert summary.layer_cycles_sum is not None and len(summary.layer_cycles_sum) == len(manifest.layers)
    # the layers run inside the measured region: their sum cannot exceed the total
    assert sum(summary.layer_cycles_sum) <= sum(summary.cycles)


@pytest.mark.parametrize("name", list(MODELS))
def test_mlperf_bit_exact_on_mps2_an386(models, name):
    board = load_board("mps2-an386")
    s = _validate(models[name], board, MODELS[name])
    _check_summary(s, MODELS[name], load_manifest(models[name]))


@pytest.mark.parametrize("name", list(MODELS))
def test_mlperf_on_netduinoplus2_or_refused_with_numbers(models, name):
    board = load_board("netduinoplus2")
    m = load_manifest(models[name])
    io = sum(t.bytes for t in m.inputs + m.outputs)
    stack = board.raw["memory"]["stack_bytes"]
    fits = m.weight_bytes < board.flash_bytes and m.arena_bytes + io + stack <= board.ram_bytes
    if not fits:
        with pytest.raises(TinycError) as exc:
            build(models[name], board)
        msg = str(exc.value)
        need = m.arena_bytes + io + stack
        assert f"{need:,} bytes" in msg and "131,072 bytes" in msg and f"over by {need - 131072:,} bytes" in msg
        return
    s = _validate(models[name], board, min(MODELS[name], 2), seed=1)
    _check_summary(s, min(MODELS[name], 2), m)


def test_large_resnet_fits_netduinoplus2_in_place_and_a_smaller_part_refuses_it(models):
    """In-place execution brings the large ResNet's arena from 123,248 to 83,648 bytes: it fits
    the 128 KB part (and runs bit-exact above); a part with 88 KB of RAM still refuses it."""
    m = load_manifest(models["pretrainedResnet_large_int8"])
    board = load_board("netduinoplus2")
    assert m.arena_bytes + sum(t.bytes for t in m.inputs + m.outputs) + board.raw["memory"]["stack_bytes"] \
        <= board.ram_bytes
    small = dataclasses.replace(board, name="netduino-88k", ram_bytes=88 * 1024)
    with pytest.raises(TinycError, match=r"does not fit netduino-88k.*RAM"):
        build(models["pretrainedResnet_large_int8"], small)


@pytest.mark.parametrize("board_name,name,unit", [
    ("mps2-an500", "kws_ref_model", "instructions"),
    ("mps3-an547", "pretrainedResnet_quant", "instructions"),
    ("rpi4", "kws_ref_model", "ns"),
])
def test_one_model_on_other_boards(models, board_name, name, unit):
    board = load_board(board_name)
    s = _validate(models[name], board, 2, seed=2)
    _check_summary(s, 2, load_manifest(models[name]), unit=unit)


def test_golden_outputs_over_serial(models, golden, mlperf_dir):
    """Outputs stored beside the models (LiteRT BUILTIN_REF) come back from the board."""
    board = load_board("mps2-an386")
    kws = (mlperf_dir / "test_data" / "kws_sample_input_int8.bin").read_bytes()
    cases = [("kws_ref_model", kws, golden["kws_int8"]),
             ("pretrainedResnet_quant", bytes([0x80]) * 3072, golden["ic_pretrainedResnet_quant"])]
    for name, data, case in cases:
        build(models[name], board)
        with open_session(board, models[name]) as s:
            got = np.frombuffer(s.infer(data).output, dtype=np.int8)
        assert got.tolist() == list(case["output"]), name


def test_two_runs_give_identical_instruction_counts(models):
    board = load_board("mps2-an386")
    out = models["kws_ref_model"]
    build(out, board)
    samples = random_inputs(load_manifest(out).inputs, 3, seed=7)
    runs = []
    for _ in range(2):
        with open_session(board, out) as s:
            runs.append([s.infer(x[0].tobytes()) for x in samples])
    a, b = runs
    assert [r.cycles for r in a] == [r.cycles for r in b]
    assert [r.layer_cycles for r in a] == [r.layer_cycles for r in b]


def test_wrong_model_in_qemu_is_refused_with_both_hashes(models):
    board = load_board("mps2-an386")
    out = models["ad01_int8"]
    build(out, board)
    real = load_manifest(out).model_hash
    with pytest.raises(TinycError) as exc:
        open_session(board, out, model_hash="feedfacefeedface")
    assert real in str(exc.value) and "feedfacefeedface" in str(exc.value)


@pytest.mark.stress
def test_noisy_relay_200_samples_all_accounted_for(models, tmp_path):
    """Garbage bursts and 1% dropped frames both ways, 200 samples: all bit-exact, each
    reported once."""
    board = load_board("mps2-an386")
    out = models["ad01_int8"]
    relays = []

    def wrap(pty):
        faults = Faults(garbage_burst=0.1, drop_frame=0.01)
        relays.append(FaultRelay(pty, to_board=faults, to_host=faults, seed=11))
        return relays[-1].path

    report = tmp_path / "noisy.jsonl"
    try:
        s = _validate(out, board, 200, seed=3, report=report, session_options={"link_wrapper": wrap})
    finally:
        for r in relays:
            r.close()
    _check_summary(s, 200, load_manifest(out))
    rows = [json.loads(l) for l in report.read_text().splitlines()]
    samples = [r for r in rows if "index" in r]
    assert sorted(r["index"] for r in samples) == list(range(200))
    assert all(r["bit_exact"] and r["instructions"] > 0 and r["stack_bytes"] > 0 for r in samples)
    st = relays[0].stats
    assert sum(st.garbage_bytes.values()) > 0 and sum(st.dropped_frames.values()) > 0
    # what the link survived is counted, printed in the summary and closes the report
    assert rows[0]["run"]["board"] == "mps2-an386" and rows[0]["run"]["samples"] == 200
    assert s.link is not None and s.link["retries"] > 0 and s.link["resyncs"] > 0, s.link
    assert rows[-1] == {"link": s.link}
    line = next(l for l in validate_lines(out, board.name, s, load_manifest(out)) if l.strip().startswith("link"))
    assert f"{s.link['retries']:,} retr" in line and f"{s.link['resyncs']:,} resync" in line, line
    stack = next(l for l in validate_lines(out, board.name, s, load_manifest(out)) if l.strip().startswith("stack"))
    assert f"{s.stack_max:,} bytes of {board.raw['memory']['stack_bytes']:,} reserved" in stack, stack


def test_emulator_dying_midrun_keeps_partial_report(models, tmp_path, started_emulators):
    board = load_board("mps2-an386")
    out = models["ad01_int8"]
    started = started_emulators
    relays = []

    def wrap(pty):
        relays.append(FaultRelay(pty))
        # 3 RESULTs reach the host, then the emulator is killed
        def is_result(unit):
            frame = decode_frame(unit[:-1])
            return frame is not None and frame.type == T_RESULT
        relays[-1].after_frames(3, lambda: os.kill(started[-1].pid, signal.SIGKILL), match=is_result)
        return relays[-1].path

    report = tmp_path / "partial.jsonl"
    try:
        s = _validate(out, board, 10, report=report, session_options={"link_wrapper": wrap, "timeout": 5.0})
    finally:
        for r in relays:
            r.close()
    assert s.error is not None and "killed by SIGKILL mid-run" in s.error, s.as_dict()
    assert "warning" not in s.error.lower(), s.error   # nothing QEMU said at start-up
    assert s.samples == 3 and s.bit_exact == 3
    rows = [json.loads(l) for l in report.read_text().splitlines()]
    assert [r["index"] for r in rows if "index" in r] == [0, 1, 2]
    assert "error" in rows[-2] and "link" in rows[-1]


# ---------------------------------------------------------------------------- faults on the board

# A stand-in model: adds 1 to each byte; an input starting with 0x7f executes an undefined
# instruction (UsageFault -> HardFault), which the firmware must report as an ERROR frame.
FAKE_C = """#include "model.h"
#define SPIN_LOOPS 100000u
/* exactly 2 instructions per iteration: a known instruction count to measure */
static void spin(uint32_t n)
{
    __asm__ __volatile__("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
}
int tinyc_invoke_all(const void *const inputs[], void *const outputs[])
{
    const int8_t *in = (const int8_t *)inputs[0];
    int8_t *out = (int8_t *)outputs[0];
    int i;
    tinyc_layer_begin(0);
    if (in[0] == 0x7f) {
        __builtin_trap();
    }
    spin(SPIN_LOOPS);
    tinyc_layer_end(0);
    tinyc_layer_begin(1);
    for (i = 0; i < 4; ++i) {
        out[i] = (int8_t)(in[i] + 1);
    }
    tinyc_layer_end(1);
    return 0;
}
"""


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory):
    return write_fake_model(tmp_path_factory.mktemp("fake") / "fake", FAKE_C, model_hash="fa17fa17fa17fa17",
                            num_layers=2)


@pytest.mark.parametrize("board_name", ["mps2-an386", "netduinoplus2", "a72-virt"])
def test_hardfault_becomes_an_error_frame(fake_model, board_name):
    board = load_board(board_name)
    build(fake_model, board)
    s = open_session(board, fake_model, timeout=10.0)
    try:
        r = s.infer(bytes([1, 2, 3, 0xFE]))
        assert r.output == bytes([2, 3, 4, 0xFF])
        assert len(r.layer_cycles) == 2 and r.cycle_unit == "instructions"
        # layer 0 runs a loop of exactly 2 x 100000 instructions (plus a few for the hooks)
        tick = 1e9 / board.clock_hz
        assert 200_000 - tick <= r.layer_cycles[0] <= 200_000 + 100 + tick, r.layer_cycles
        with pytest.raises(BoardError) as exc:
            s.infer(bytes([0x7F, 0, 0, 0]))
        assert "fault" in str(exc.value) and "pc=0x" in str(exc.value)
        with pytest.raises(BoardError):   # still reachable, still saying what happened
            s.infer(bytes([1, 2, 3, 4]))
    finally:
        s.close()
    assert s.qemu.proc.returncode == 3   # EXIT after a fault ends QEMU with the fault code
