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


MLPERF_SAMPLES = {"ad01_int8": 3, "kws_ref_model": 3, "str_ww_ref_model": 3, "pretrainedResnet_quant": 2,
                  "pretrainedResnet_large_int8": 2, "vww_96_int8": 2}


@pytest.mark.parametrize("name", sorted(MLPERF_SAMPLES))
def test_mlperf_bit_exact_on_a72_virt(name, mlperf_dir, tmp_path):
    """Laid out for the A72 (NEON kernels), counted on the emulated core."""
    from helpers import assert_bit_exact
    r = assert_bit_exact(mlperf_dir / f"{name}.tflite", tmp_path, n_random=MLPERF_SAMPLES[name], board=BOARD)
    assert r["board"] == BOARD


@pytest.mark.parametrize("name", sorted(MLPERF_SAMPLES))
def test_mlperf_bit_exact_on_rpi4(name, mlperf_dir, tmp_path):
    """The Pi 4 board (aarch64 Linux, the same NEON kernels) under qemu-aarch64."""
    from helpers import assert_bit_exact
    assert_bit_exact(mlperf_dir / f"{name}.tflite", tmp_path, n_random=2, board="rpi4")


@pytest.mark.parametrize("run_on", ["host-portable", "host", "rpi4", "mps2-an386"])
def test_vector_layout_is_bit_exact_on_every_core(run_on, mlperf_dir, tmp_path, monkeypatch):
    """An OUTDIR laid out for the A72 runs its AVX2 step on the host, NEON under qemu-aarch64
    (rpi4), and the portable C step on the host (TINYC_VECTOR_ISA=none) and on a Cortex-M4."""
    from helpers import assert_bit_exact
    board = run_on
    if run_on == "host-portable":
        monkeypatch.setenv("TINYC_VECTOR_ISA", "none")
        board = "host"
    assert_bit_exact(mlperf_dir / "kws_ref_model.tflite", tmp_path, n_random=3, board=board, generate_for=BOARD)
    model_c = (tmp_path / "out_kws_ref_model" / "model.c").read_text()
    assert "tinyc_conv_2d_simd_s8(" in model_c and "tinyc_depthwise_conv_2d_simd_s8(" in model_c



@pytest.mark.parametrize("run_on", [BOARD, "host"])
@pytest.mark.parametrize("optimize", ["speed", "size"])
def test_every_level_of_the_vector_layout_is_bit_exact(optimize, run_on, mlperf_dir, tmp_path):
    """--optimize speed (the vector kernels on every layer) and size (the shared kernels),
    laid out for the A72, on the emulated A72 and on the host (balanced: the tests above)."""
    from helpers import assert_bit_exact
    assert_bit_exact(mlperf_dir / "kws_ref_model.tflite", tmp_path, n_random=3, board=run_on,
                     generate_for=BOARD, optimize=optimize)
    model_c = (tmp_path / "out_kws_ref_model" / "model.c").read_text()
    assert ("tinyc_conv_2d_simd_s8(" in model_c) == (optimize == "speed")


@pytest.mark.parametrize("optimize", ["balanced", "size"])
def test_cortex_m_layout_is_bit_exact_on_the_a72(optimize, mlperf_dir, tmp_path):
    """An OUTDIR laid out for a Cortex-M4 (the specialised SMLAD kernels, or the shared ones
    under size) runs their portable C on the A72."""
    from helpers import assert_bit_exact
    assert_bit_exact(mlperf_dir / "kws_ref_model.tflite", tmp_path, n_random=3, board=BOARD,
                     generate_for="mps2-an386", optimize=optimize)
    model_c = (tmp_path / "out_kws_ref_model" / "model.c").read_text()
    assert ("tinyc_conv_2d_gemm_s8(" in model_c) == (optimize != "size")
    assert "tinyc_conv_2d_simd_s8(" not in model_c

def _with_minus_128_weights(path) -> bytes:
    """The model with one weight of every CONV_2D and DEPTHWISE_CONV_2D filter set to -128
    (legal int8, outside TFLite's symmetric [-127, 127]): two such products overflow the
    int16 lanes of the NEON step, so those layers must take an exact one."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    m = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    g = m.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    for op in g.operators:
        code = m.operatorCodes[op.opcodeIndex]
        if names.get(max(code.builtinCode, code.deprecatedBuiltinCode)) in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            buf = m.buffers[g.tensors[op.inputs[1]].buffer]
            data = np.array(buf.data, dtype=np.uint8)
            data[: min(8, data.size)] = 0x80
            buf.data = data
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.mark.parametrize("board", [BOARD, "host"])
def test_minus_128_weights_stay_bit_exact(board, mlperf_dir, tmp_path):
    from helpers import assert_bit_exact
    tfl = _with_minus_128_weights(mlperf_dir / "kws_ref_model.tflite")
    inputs = [[np.full((1, 49, 10, 1), -128, dtype=np.int8)]]   # -128 x -128 products
    assert_bit_exact(tfl, tmp_path, n_random=3, board=board, generate_for=BOARD, inputs=inputs)
    assert "a weight is -128: NEON takes the portable step" in next(tmp_path.glob("out_*/model.c")).read_text()
