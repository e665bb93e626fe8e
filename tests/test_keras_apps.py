"""Keras models judged on their converted graph, not on Keras class names: Conv1D,
SeparableConv2D, Rescaling, swish and hard_sigmoid lower to ops tinyc has, so such models
convert from .keras and validate bit-exact on host and on the emulated Cortex-M4. A model
whose converted graph tinyc (and LiteRT's reference) cannot run is refused in one line,
never by a native abort.

keras.applications' MobileNetV2 and MobileNetV3Small take minutes: they carry the `models`
marker and run with `make test-models`.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from tinyc.cli import main
from tinyc.convert import ConvertOptions, convert
from tinyc.validate import validate_outdir

BOARDS = ["host", "mps2-an386"]


def _keras():
    import keras
    keras.utils.set_random_seed(0)
    return keras


def _convert_and_validate(model, tmp_path, n=4) -> None:
    path = tmp_path / "model.keras"
    model.save(path)
    out = tmp_path / "out"
    result = convert(path, out, ConvertOptions(board="mps2-an386", calib_random=32))
    assert any("random" in w for w in result.warnings)
    for board in BOARDS:
        summary, _, _ = validate_outdir(out, board, None, None, n, 0, None, None)
        assert summary.error is None, summary.error
        assert summary.samples == n and summary.bit_exact == n, (board, summary.as_dict())


def test_conv1d_keyword_model(tmp_path):
    keras = _keras()
    layers = keras.layers
    i = keras.Input((49, 10))
    x = layers.Conv1D(16, 3, activation="relu")(i)
    x = layers.Conv1D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(12, activation="softmax")(x)
    _convert_and_validate(keras.Model(i, x), tmp_path)


def test_separable_conv_rescaling_swish_hard_sigmoid(tmp_path):
    keras = _keras()
    layers = keras.layers
    i = keras.Input((24, 24, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1)(i)
    x = layers.SeparableConv2D(8, 3, activation="relu")(x)
    x = layers.SeparableConv2D(16, 3, strides=2, padding="same")(x)
    x = layers.Activation("swish")(x)
    x = layers.Activation("hard_sigmoid")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(5)(x)
    _convert_and_validate(keras.Model(i, x), tmp_path)


def test_softmax_of_tiny_logits_is_refused_in_one_line_not_aborted(tmp_path):
    """Untrained logits give SOFTMAX beta * input_scale ~ 1e-9: LiteRT's reference softmax
    aborts on it while preparing. tinyc's support check runs before any interpreter, and
    the per-layer report's interpreters run in a child, so the user gets one line."""
    keras = _keras()
    i = keras.Input((8,))
    x = keras.layers.Dense(10, kernel_initializer=keras.initializers.RandomNormal(stddev=1e-9),
                           bias_initializer="zeros")(i)
    x = keras.layers.Softmax()(x)
    path = tmp_path / "tiny.keras"
    keras.Model(i, x).save(path)
    res = CliRunner().invoke(main, ["convert", str(path), "-o", str(tmp_path / "out"), "--calib-random", "16"])
    assert res.exit_code == 2, res.output
    lines = [l for l in res.stderr.splitlines() if l.startswith("tinyc:")]
    assert len(lines) == 1 and "SOFTMAX" in lines[0] and "beta" in lines[0], res.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- keras.applications (slow)

@pytest.mark.models
@pytest.mark.parametrize("name", ["MobileNetV2", "MobileNetV3Small"])
def test_keras_application_logits_convert_and_validate(name, tmp_path):
    keras = _keras()
    kw = {"alpha": 0.35} if name == "MobileNetV2" else {"alpha": 0.75}
    model = getattr(keras.applications, name)(input_shape=(96, 96, 3), weights=None, classes=10,
                                              classifier_activation=None, **kw)
    _convert_and_validate(model, tmp_path, n=2)


@pytest.mark.models
@pytest.mark.parametrize("name", ["MobileNetV2", "MobileNetV3Small"])
def test_untrained_keras_application_with_softmax_is_refused_in_one_line(name, tmp_path):
    keras = _keras()
    kw = {"alpha": 0.35} if name == "MobileNetV2" else {"alpha": 0.75}
    model = getattr(keras.applications, name)(input_shape=(96, 96, 3), weights=None, classes=10, **kw)
    path = tmp_path / "m.keras"
    model.save(path)
    res = CliRunner().invoke(main, ["convert", str(path), "-o", str(tmp_path / "out"), "--calib-random", "32"])
    assert res.exit_code == 2, res.output
    lines = [l for l in res.stderr.splitlines() if l.startswith("tinyc:")]
    assert len(lines) == 1 and "SOFTMAX" in lines[0], res.stderr
    assert np.all([not p.name.startswith(".out") for p in tmp_path.iterdir()])
