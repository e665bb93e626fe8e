"""The specialised kernels at every --optimize level, on the host and the emulated Cortex-M
boards: bit-exact with LiteRT BUILTIN_REF. (The default level, balanced, also runs through the
rest of the suite: op tests, random models, compressed weights, MLPerf on host and mps2-an386.)"""

from __future__ import annotations

import os

import pytest

from conftest import MLPERF_INT8_MODELS
from helpers import assert_bit_exact
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.outdir import load_manifest
from tinyc.samples import random_inputs
from tinyc.validate import validate

BOARD_MODELS = ["ad01_int8", "kws_ref_model", "str_ww_ref_model", "pretrainedResnet_quant", "vww_96_int8"]


@pytest.mark.parametrize("optimize", ["speed", "size"])
@pytest.mark.parametrize("model", MLPERF_INT8_MODELS)
def test_mlperf_levels_generated_for_the_m4_bit_exact_on_host(model, optimize, mlperf_dir, tmp_path):
    """An OUTDIR laid out for mps2-an386 runs bit-exact on the host (portable C path)."""
    m = assert_bit_exact(mlperf_dir / f"{model}.tflite", tmp_path, n_random=20, optimize=optimize,
                         generate_for="mps2-an386")
    model_c = (m["outdir"] / "model.c").read_text()
    assert ("TINYC_NOINLINE" in model_c) == (optimize != "size")


# The M7 and M55 run the M4's DSP-extension kernels: `make test` checks them there on one FC and
# one CONV/DEPTHWISE model, `make test-stress` (TINYC_ALL_BOARD_MODELS=1) on all five, and
# every level with every weight encoding there too.
OTHER_BOARD_MODELS = BOARD_MODELS if os.environ.get("TINYC_ALL_BOARD_MODELS") else ["ad01_int8", "kws_ref_model"]
BOARD_CASES = [(m, "mps2-an386", "speed") for m in BOARD_MODELS] + [
    (m, board, level) for board in ("mps2-an500", "mps3-an547") for level in ("balanced", "speed")
    for m in OTHER_BOARD_MODELS]


@pytest.mark.parametrize("model,board_name,optimize", BOARD_CASES)
def test_mlperf_levels_bit_exact_on_cortex_m(model, board_name, optimize, mlperf_dir, tmp_path):
    board = load_board(board_name)
    out = tmp_path / "out"
    convert(mlperf_dir / f"{model}.tflite", out, ConvertOptions(board=board_name, optimize=optimize))
    build(out, board)
    samples = random_inputs(load_manifest(out).inputs, 1, seed=3)
    s = validate(out, board, samples)
    assert s.error is None, s.error
    assert s.samples == 1 and s.bit_exact == 1, s.as_dict()


@pytest.mark.parametrize("weights", ["raw", "sparse", "huffman"])
@pytest.mark.parametrize("optimize", ["balanced", "speed", "size"])
@pytest.mark.parametrize("board_name", ["mps2-an386"] + (["mps2-an500", "mps3-an547"]
                                                         if os.environ.get("TINYC_ALL_BOARD_MODELS") else []))
def test_levels_and_weight_encodings_bit_exact_on_cortex_m(board_name, optimize, weights, mlperf_dir, tmp_path):
    """Every level with every weight encoding (pruned by 30 %, so sparse pays) on the emulated
    Cortex-M4 (and, in make test-stress, the M7 and M55): encoded layers take the decoding
    kernels, the rest the level's kernels."""
    from tinyc.passes.compress import CompressOptions
    from tinyc.passes.prune import PruneOptions

    board = load_board(board_name)
    out = tmp_path / "out"
    compress = CompressOptions(PruneOptions(sparsity=0.3), weights)
    convert(mlperf_dir / "kws_ref_model.tflite", out,
            ConvertOptions(board=board.name, optimize=optimize, compress=compress))
    if weights != "raw":   # the encoded weights really reach the kernels
        assert weights in (out / "tinyc_kernels.h").read_text()
    build(out, board)
    samples = random_inputs(load_manifest(out).inputs, 2, seed=4)
    s = validate(out, board, samples)
    assert s.error is None, s.error
    assert s.samples == 2 and s.bit_exact == 2, s.as_dict()
