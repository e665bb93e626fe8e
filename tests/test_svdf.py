"""SVDF (keyword_scrambled): the corpus model's final softmax saturates on random inputs, so
the SVDF layers are checked on cuts of the model whose output is an SVDF's output, over a
sequence of calls (the state carries over), against LiteRT (int16 state) and TFLM (int8 state,
which LiteRT cannot run). The 8-bit model's SVDF outputs stay constant on random inputs even
so (its state saturates): that case checks the kernel on one value per output only."""

import numpy as np
import pytest

from tflm_corpus import CORPUS
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import convert
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.samples import random_inputs
from tinyc.validate import validate


@pytest.mark.parametrize("stem,reference", [("models__keyword_scrambled", "LiteRT BUILTIN_REF"),
                                            ("models__keyword_scrambled_8bit", "TensorFlow Lite Micro (tflite-micro interpreter)")])
@pytest.mark.parametrize("last_op", [1, 3])
def test_svdf_cut_bit_exact_over_a_sequence(stem, reference, last_op, tmp_path):
    g = load_tflite(CORPUS / f"{stem}.tflite")
    assert g.ops[last_op].kind == "SVDF"
    g.ops = g.ops[:last_op + 1]
    g.outputs = [g.ops[last_op].outputs[0]]
    # A 256x coarser output scale: the model's own saturates to two values on random inputs.
    out = g.tensors[g.outputs[0]]
    out.quant.scale = (out.quant.scale * 256).astype(np.float32)
    (tmp_path / "cut.tflite").write_bytes(graph_to_tflite(g))
    result = convert(tmp_path / "cut.tflite", tmp_path / "out")
    board = load_board("host")
    build(tmp_path / "out", board)
    samples = random_inputs(result.manifest.inputs, 24, seed=2)
    summary = validate(tmp_path / "out", board, samples)
    assert summary.error is None, summary.error
    assert summary.reference == reference
    assert summary.passed, f"{summary.samples - summary.bit_exact} of {summary.samples} differ"


@pytest.mark.parametrize("stem", ["models__keyword_scrambled_8bit", "examples__mnist_lstm__trained_lstm_int8"])
def test_variable_tensors_take_no_arena_slot(stem):
    """SVDF memories and LSTM states live in static arrays of their layer: the arena plan leaves
    them out, so the arena holds at most the other activations."""
    from tinyc.codegen.planner import plan_memory

    g = load_tflite(CORPUS / f"{stem}.tflite")
    variables = set(g.meta["variable_tensors"])
    assert variables
    plan = plan_memory(g)
    assert not variables & set(plan.offsets)
    activations = {t for op in g.ops for t in op.outputs if t not in g.outputs}
    assert plan.arena_bytes <= sum(g.tensors[t].nbytes for t in activations)
