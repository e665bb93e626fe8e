"""UNIDIRECTIONAL_SEQUENCE_LSTM (integer, int16 gates and cell): the corpus models' LSTM layers
cut out as the graph output, so their outputs are compared directly: dtln's two LSTMs (one step
per call, states carried across calls; cell scales 2^-11 and 2^-12, output zero points 0 and -4), and mnist_lstm's with other cell scales
and mnist_lstm's (28 steps in one call)."""

import pytest

from tflm_corpus import CORPUS
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import convert
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.samples import random_inputs
from tinyc.validate import validate


@pytest.mark.parametrize("stem,last_op", [("examples__dtln__dtln_noise_suppression", 0),
                                          ("examples__dtln__dtln_noise_suppression", 1),
                                          ("examples__mnist_lstm__trained_lstm_int8", 0)])
def test_lstm_layer_bit_exact_over_a_sequence(stem, last_op, tmp_path):
    g = load_tflite(CORPUS / f"{stem}.tflite")
    assert g.ops[last_op].kind == "UNIDIRECTIONAL_SEQUENCE_LSTM"
    g.ops = g.ops[:last_op + 1]
    g.outputs = [g.ops[last_op].outputs[0]]
    (tmp_path / "cut.tflite").write_bytes(graph_to_tflite(g))
    result = convert(tmp_path / "cut.tflite", tmp_path / "out")
    board = load_board("host")
    build(tmp_path / "out", board)
    summary = validate(tmp_path / "out", board, random_inputs(result.manifest.inputs, 12, seed=3))
    assert summary.error is None, summary.error
    assert summary.reference == "LiteRT BUILTIN_REF"
    assert summary.passed, f"{summary.samples - summary.bit_exact} of {summary.samples} differ"


@pytest.mark.parametrize("cell_log2", [-15, -13])
def test_lstm_other_cell_state_scales_bit_exact(cell_log2, tmp_path):
    """The converter picks the cell state's power-of-two scale from its range: mnist_lstm's LSTM
    with its cell scale set to 2^-13 and 2^-15 (fewer integer bits in the cell's tanh)."""
    g = load_tflite(CORPUS / "examples__mnist_lstm__trained_lstm_int8.tflite")
    g.ops = g.ops[:1]
    g.outputs = [g.ops[0].outputs[0]]
    g.tensors[g.ops[0].inputs[19]].quant.scale[:] = 2.0 ** cell_log2
    (tmp_path / "cut.tflite").write_bytes(graph_to_tflite(g))
    result = convert(tmp_path / "cut.tflite", tmp_path / "out")
    board = load_board("host")
    build(tmp_path / "out", board)
    summary = validate(tmp_path / "out", board, random_inputs(result.manifest.inputs, 12, seed=4))
    assert summary.error is None and summary.reference == "LiteRT BUILTIN_REF", summary.error
    assert summary.passed, f"{summary.samples - summary.bit_exact} of {summary.samples} differ"
