"""16x8 LOGISTIC, TANH and MEAN (int16 activations) from TensorFlow's own 16x8 converter mode,
bit-exact with LiteRT BUILTIN_REF: LOGISTIC and TANH on every int16 input at several input
scales (general ones, as the converter makes them, and the power-of-two ones TFLite treats
apart), MEAN over H,W with and without keep_dims and over other axes, with inputs that
saturate both ends; one model with all three on the emulated Cortex-M4; and the CLI's
`convert --precision 16x8` on a float Keras model using them."""

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import assert_bit_exact, convert_keras_int8
from tinyc.cli import main
from tinyc.codegen.ops import check_op
from tinyc.codegen.ops.logistic_s16 import lut_input_rescale, sigmoid_table_u16
from tinyc.errors import UnsupportedError
from tinyc.frontend.tflite import load_tflite
from tinyc.ir import Graph, Op, QuantParams, Tensor

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"

# Calibration ranges max|x| of the LOGISTIC/TANH inputs, one model input each. The input
# scale is max|x| / 32767: general scales (small, around the table's +-10.7, beyond it), and
# the power-of-two cases of Sigmoid/TanhPrepare: 2^-12 (both), 2^-11 (TANH only; LOGISTIC
# takes its general rescale), where the general rescale would give the same x * 3 or x * 6,
# and 2^-12 * 1.0004, which TFLite's CheckedLog2 (1e-3 in log2) still treats as a power of
# two: multiplier 3, where the general rescale differs on 60% of the inputs.
LUT_RANGES = {"general_0.7": 0.7, "general_3": 3.0, "general_9.5": 9.5, "general_40": 40.0,
              "pot_2^-12": 32767 / 4096, "pot_2^-11": 32767 / 2048, "near_pot_2^-12": 32767 / 4096 * 1.0004}
EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 256, 256)


def _convert(model, reps):
    return convert_keras_int8(model, reps, int16_activations=True)


def _ops(tfl: bytes, tmp_path, kind: str):
    path = tmp_path / "probe.tflite"
    path.write_bytes(tfl)
    g = load_tflite(path)
    return g, [op for op in g.ops if op.kind == kind]


@pytest.fixture(scope="module")
def lut_model():
    """Per range: input -> sigmoid and tanh, (256, 256) values so that one sample is every int16."""
    import keras
    L = keras.layers
    rng = np.random.default_rng(0)
    inputs, outputs, reps = [], [], []
    for name, r in LUT_RANGES.items():
        inp = keras.Input((256, 256), name=name.replace("^", "").replace(".", "_").replace("-", "m"))
        inputs.append(inp)
        outputs += [L.Activation("sigmoid")(inp), L.Activation("tanh")(inp)]
        rep = rng.uniform(-r, r, (4, 256, 256)).astype(np.float32)
        rep[0, 0, :2] = (-r, r)  # the calibrated range is exactly +-r
        reps.append(rep)
    return _convert(keras.Model(inputs, outputs), reps)


def test_sigmoid_table_in_template_is_the_formula():
    text = (TEMPLATES / "common" / "sigmoid_table_s16.c.j2").read_text()
    body = re.search(r"tinyc_sigmoid_table_u16\[256\] = \{([^}]*)\}", text).group(1)
    assert [int(v) for v in body.replace(",", " ").split()] == sigmoid_table_u16().tolist()


def test_logistic_tanh_16x8_every_input_bit_exact(lut_model, tmp_path):
    g, ops = _ops(lut_model, tmp_path, "LOGISTIC")
    _, tanhs = _ops(lut_model, tmp_path, "TANH")
    assert len(ops) == len(tanhs) == len(LUT_RANGES)
    scales = {g.tensors[op.inputs[0]].quant.s for op in ops}
    assert {g.tensors[op.inputs[0]].dtype for op in ops + tanhs} == {"int16"} and len(scales) == len(LUT_RANGES)
    # every branch of Prepare's rescale is taken: the power-of-two folds (3 << shift, 0) ...
    pot = {lut_input_rescale(s, (0, 1)) for s in scales} & {(3, 0), (6, 0)}
    assert pot == {(3, 0), (6, 0)}
    assert lut_input_rescale(2 ** -11, (0,)) != (6, 0)  # ... which LOGISTIC does not take for 2^-11
    # ... and general scales, some saturating inside the int16 range, some not
    assert any(32767 * s > 10.7 for s in scales) and any(32767 * s < 5 for s in scales)
    every = [EVERY_INT16] * len(LUT_RANGES)
    extremes = [[np.full((1, 256, 256), v, np.int16)] * len(LUT_RANGES) for v in (-32768, 32767)]
    assert_bit_exact(lut_model, tmp_path, n_random=2, inputs=[every, *extremes])


def _mean_model(ranges):
    """Per range: a (6, 5, 3) input averaged over H,W (with and without keep_dims), over axes
    1 and 3, and over channels; then a (256, 256, 1) input averaged over its 2^16 values, the
    most whose int32 sum cannot overflow."""
    import keras
    L = keras.layers
    rng = np.random.default_rng(1)
    inputs, outputs, reps = [], [], []
    for k, r in enumerate(ranges):
        inp = keras.Input((6, 5, 3), name=f"x{k}")
        inputs.append(inp)
        outputs += [L.GlobalAveragePooling2D()(inp), L.GlobalAveragePooling2D(keepdims=True)(inp),
                    L.Lambda(lambda t: keras.ops.mean(t, axis=(1, 3), keepdims=True))(inp),
                    L.Lambda(lambda t: keras.ops.mean(t, axis=-1))(inp)]
        reps.append(rng.normal(0, r / 3, (16, 6, 5, 3)).astype(np.float32))
    big = keras.Input((256, 256, 1), name="big")
    inputs.append(big)
    outputs.append(L.GlobalAveragePooling2D()(big))
    reps.append(rng.normal(0, 1, (16, 256, 256, 1)).astype(np.float32))
    return keras.Model(inputs, outputs), reps


@pytest.fixture(scope="module")
def mean_model():
    return _convert(*_mean_model([0.5, 4.0, 100.0]))


def test_mean_16x8_bit_exact(mean_model, tmp_path):
    g, ops = _ops(mean_model, tmp_path, "MEAN")
    assert len(ops) == 13 and {g.tensors[op.outputs[0]].dtype for op in ops} == {"int16"}
    assert {bool(op.attrs.get("keep_dims")) for op in ops} == {True, False}
    # saturation at both ends: constant extremes (the 2^16-value sum reaching -2^31), and rows
    # of extremes of either sign
    samples = [[np.full((1, 6, 5, 3), v, np.int16)] * 3 + [np.full((1, 256, 256, 1), v, np.int16)]
               for v in (-32768, 32767)]
    stripes = np.where(np.arange(90).reshape(1, 6, 5, 3) % 2 == 0, 32767, -32768).astype(np.int16)
    samples.append([stripes, -stripes - 1, stripes, np.zeros((1, 256, 256, 1), np.int16)])
    assert_bit_exact(mean_model, tmp_path, n_random=20, inputs=samples)


def test_logistic_tanh_mean_16x8_on_mps2(tmp_path):
    """The three ops in one small model on the emulated Cortex-M4 (mps2-an386)."""
    import keras
    keras.utils.set_random_seed(2)
    L = keras.layers
    inp = keras.Input((6, 6, 4))
    h = L.Conv2D(4, 3, padding="same")(inp)
    a = L.GlobalAveragePooling2D()(L.Activation("sigmoid")(h))
    b = L.GlobalAveragePooling2D(keepdims=True)(L.Activation("tanh")(inp))
    model = keras.Model(inp, [a, L.Flatten()(b)])
    rep = np.random.default_rng(3).normal(0, 3.0, (16, 6, 6, 4)).astype(np.float32)
    tfl = _convert(model, rep)
    g, _ = _ops(tfl, tmp_path, "MEAN")
    assert {"LOGISTIC", "TANH", "MEAN"} <= {op.kind for op in g.ops}
    extremes = [[np.full((1, 6, 6, 4), v, np.int16)] for v in (-32768, 32767)]
    assert_bit_exact(tfl, tmp_path, n_random=10, inputs=extremes, board="mps2-an386")


def test_cli_convert_precision_16x8_float_model_with_sigmoid_tanh_mean(tmp_path):
    import keras
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input((8, 8, 2))
    h = L.Conv2D(4, 3, padding="same", activation="sigmoid")(inp)
    h = L.Activation("tanh")(L.Conv2D(4, 3, padding="same")(h))
    out = L.Dense(3)(L.GlobalAveragePooling2D()(h))
    keras.Model(inp, out).save(tmp_path / "m.keras")
    np.save(tmp_path / "calib.npy", np.random.default_rng(5).normal(0, 1, (32, 8, 8, 2)).astype(np.float32))
    out_dir = tmp_path / "out"
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(out_dir), "--calib",
                                    str(tmp_path / "calib.npy"), "--precision", "16x8"])
    assert res.exit_code == 0, res.output
    g = load_tflite(out_dir / "model.tflite")
    kinds = {op.kind: g.tensors[op.outputs[0]].dtype for op in g.ops}
    assert {kinds.get(k) for k in ("LOGISTIC", "TANH", "MEAN")} == {"int16"}, kinds
    res = CliRunner().invoke(main, ["validate", str(out_dir), "--random", "10"])
    assert res.exit_code == 0 and "LiteRT BUILTIN_REF" in res.output, res.output


def _q(scale, zp=0):
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64), 0)


def _unary(kind, in_q, out_q, shape=(1, 4)):
    t = [Tensor("x", shape, "int16", in_q), Tensor("y", shape, "int16", out_q)]
    return Graph(t, [Op(kind, [0], [1], {}, "act")], [0], [1], name="g")


def _mean(shape, in_q, out_q):
    t = [Tensor("x", shape, "int16", in_q), Tensor("axes", (2,), "int32", None, np.array([1, 2], np.int32)),
         Tensor("y", (shape[0], shape[3]), "int16", out_q)]
    return Graph(t, [Op("MEAN", [0, 1], [2], {"keep_dims": False}, "mean")], [0], [2], name="g")


@pytest.mark.parametrize("graph, needle", [
    (_unary("LOGISTIC", _q(1e-3), _q(2 ** -14)), "2^-15"),                # output scale TFLite refuses
    (_unary("TANH", _q(1e-3, 5), _q(2 ** -15)), "zero points 0"),
    (_unary("LOGISTIC", _q(1e-3), _q(2 ** -15 * 1.0002)), "1/32768"),     # exact for LOGISTIC ...
    (_unary("TANH", _q(10.0), _q(2 ** -15)), "overflows"),                # x * multiplier beyond int32
    (_mean((1, 257, 256, 1), _q(0.01), _q(0.01)), "overflows"),           # 65792 values > 2^16
    (_mean((1, 4, 4, 2), _q(0.01, 3), _q(0.01)), "zero points"),
])
def test_16x8_refusals_name_the_reason(graph, needle):
    with pytest.raises(UnsupportedError, match=re.escape(needle)):
        check_op(graph, 0)


def test_16x8_tanh_takes_a_near_power_of_two_output_scale():
    check_op(_unary("TANH", _q(1e-3), _q(2 ** -15 * 1.0002)), 0)  # ... TANH only checks log2 within 1e-3
    check_op(_mean((1, 256, 256, 1), _q(0.01), _q(0.01)), 0)     # and MEAN of 2^16 values still fits
