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
    result = convert(tmp_path / "kws.keras", tmp_path / "out", ConvertOptions(calib=tmp_path / "calib.npy"))
    kinds = {op.kind for op in load_tflite(tmp_path / "out" / "model.tflite").ops}
    assert {"UNPACK", "FULLY_CONNECTED", "LOGISTIC", "TANH"} <= kinds
    board = load_board("host")
    build(tmp_path / "out", board)
    summary = validate(tmp_path / "out", board, random_inputs(result.manifest.inputs, 20, seed=6))
    assert summary.passed, summary.as_dict()
