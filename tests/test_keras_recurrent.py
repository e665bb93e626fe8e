"""Keras LSTM and GRU keyword-spotting-shaped models convert from .keras and run bit-exact.
TensorFlow 2.21's converter dies calibrating a Keras 3 LSTM/GRU layer in its fused form, so
tinyc converts them unrolled (FULLY_CONNECTED, LOGISTIC, TANH, MUL, ADD, SUB, SPLIT,
STRIDED_SLICE and UNPACK per time step)."""

import numpy as np
import pytest

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.frontend.tflite import load_tflite
from tinyc.outdir import load_manifest
from tinyc.samples import random_inputs
from tinyc.validate import validate


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_keras_recurrent_model_converts_and_is_bit_exact(layer, tmp_path):
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((20, 10), name="mfcc")
    h = getattr(keras.layers, layer)(16, name="rnn")(inp)   # unroll left at its default (False)
    model = keras.Model(inp, keras.layers.Dense(12, name="keywords")(h))
    model.save(tmp_path / "kws.keras")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(size=(48, 20, 10)).astype(np.float32))
    # TensorFlow's quantizer leaves the GRU's first-step SPLIT float in most conversions (not
    # deterministically): tinyc.quantize.float_islands closes it. The converter runs in its own
    # process (tinyc.quantize.prepare.CONVERTER), as for users of the CLI.
    convert(tmp_path / "kws.keras", tmp_path / "out", ConvertOptions(calib=str(tmp_path / "calib.npy")))
    kinds = {op.kind for op in load_tflite(tmp_path / "out" / "model.tflite").ops}
    assert {"UNPACK", "FULLY_CONNECTED", "LOGISTIC", "TANH"} <= kinds
    board = load_board("host")
    build(tmp_path / "out", board)
    summary = validate(tmp_path / "out", board, random_inputs(load_manifest(tmp_path / "out").inputs, 20, seed=6))
    assert summary.passed, summary.as_dict()


def test_saved_model_with_a_recurrent_loop_is_refused_in_one_line(tmp_path):
    """A SavedModel keeps an LSTM as a while-loop (no unrolling possible there): one line that says
    what to give instead, nothing written."""
    import keras
    from click.testing import CliRunner

    from tinyc.cli import main

    inp = keras.Input((8, 4), batch_size=1)
    keras.Model(inp, keras.layers.LSTM(6)(inp)).export(tmp_path / "lstm_saved_model")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).normal(size=(8, 8, 4)).astype(np.float32))
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "lstm_saved_model"), "-o", str(tmp_path / "out"),
                                    "--calib", str(tmp_path / "calib.npy")])
    lines = [l for l in res.stderr.splitlines() if l.startswith("tinyc:")]
    assert res.exit_code != 0 and len(lines) == 1 and "Traceback" not in res.output + res.stderr, res.stderr
    assert "while-loop" in lines[0] and "unroll=True" in lines[0] and ".keras" in lines[0]
    assert not (tmp_path / "out").exists()
