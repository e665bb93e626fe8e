"""The counted Cortex-A72: bare-metal firmware on QEMU's virt machine (a72-virt), the tinyc
protocol over its PL011, PMCCNTR as instruction counter under -icount shift=0.

Everything goes through the real path: the aarch64 cross compiler, qemu-system-aarch64, the
emulated UART on a pty, pyserial, tinyc.link; expected outputs come from LiteRT BUILTIN_REF
(through tinyc.validate) or from the golden outputs stored beside the models.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tinyc.boards import load_board, runner_status
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.outdir import load_manifest
from tinyc.runners import open_session
from tinyc.samples import random_inputs
from tinyc.validate import validate

BOARD = "a72-virt"


@pytest.fixture(scope="module")
def board():
    return load_board(BOARD)


@pytest.fixture(scope="module")
def kws(tmp_path_factory, mlperf_dir, board):
    out = tmp_path_factory.mktemp("a72") / "kws"
    convert(mlperf_dir / "kws_ref_model.tflite", out, ConvertOptions(board=BOARD))
    build(out, board)
    return out


def test_board_file_and_runner_status(board):
    assert board.kind == "mcu" and board.raw["firmware"] == "aarch64" and board.cycle_source == "pmccntr"
    assert board.raw["qemu"]["machine"] == "virt" and "cortex-a72" in board.raw["qemu"]["extra_args"]
    assert "-mcpu=cortex-a72" in board.cflags
    ok, why = runner_status(board)
    assert ok == bool(shutil.which("qemu-system-aarch64") and shutil.which(board.cc)), why


def test_kws_bit_exact_with_instructions_per_inference_and_layer(kws, board):
    manifest = load_manifest(kws)
    s = validate(kws, board, random_inputs(manifest.inputs, 3, seed=5))
    assert s.error is None, s.error
    assert s.samples == 3 and s.bit_exact == 3, s.as_dict()
    assert s.cycle_unit == "instructions" and min(s.cycles) > 100_000
    assert len(s.layer_cycles_sum) == len(manifest.layers)
    assert sum(s.layer_cycles_sum) <= sum(s.cycles)
    # every layer that computes something is counted
    assert all(c > 0 for c, layer in zip(s.layer_cycles_sum, manifest.layers) if layer.macs)


def test_golden_output_and_identical_counts_in_two_runs(kws, board, mlperf_dir):
    data = (mlperf_dir / "test_data" / "kws_sample_input_int8.bin").read_bytes()
    golden = json.loads((mlperf_dir / "test_data" / "golden_outputs.json").read_text())["cases"]["kws_int8"]
    samples = [data] + [x[0].tobytes() for x in random_inputs(load_manifest(kws).inputs, 2, seed=9)]
    runs = []
    for _ in range(2):
        with open_session(board, kws) as s:
            runs.append([s.infer(x) for x in samples])
    a, b = runs
    assert np.frombuffer(a[0].output, dtype=np.int8).tolist() == list(golden["output"])
    assert [r.cycles for r in a] == [r.cycles for r in b]
    assert [r.layer_cycles for r in a] == [r.layer_cycles for r in b]
    assert all(r.stack_bytes is not None and 0 < r.stack_bytes < board.raw["memory"]["stack_bytes"] for r in a)
