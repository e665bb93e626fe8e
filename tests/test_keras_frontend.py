"""Keras and float .tflite models in, full-int8 out (tinyc.quantize.prepare.prepare_int8).

The digits CNN (tests/digits_cnn.py) is trained once per session. Expected accuracies come
from Keras / LiteRT (BUILTIN_REF for int8), bit-exactness from tests/helpers.assert_bit_exact.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from digits_cnn import digits_assets
from helpers import assert_bit_exact
from tinyc.errors import TinycError, UnsupportedError
from tinyc.frontend import tflite as tfl
from tinyc.quantize import float_tflite as ft
from tinyc.quant_math import dequantize_array, quantize_array
from tinyc.quantize.prepare import is_float_model, prepare_int8

DIGITS_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return digits_assets(tmp_path_factory)


@pytest.fixture(scope="module")
def from_keras(digits):
    return prepare_int8(digits.keras_path, calib=digits.calib_npy)


@pytest.fixture(scope="module")
def from_tflite(digits):
    return prepare_int8(digits.float_tflite, calib=digits.calib_npy)


def _ops(data: bytes) -> list[str]:
    m = tfl.parse_model(data)
    return [tfl.op_name(m, o) for o in m.subgraphs[0].operators]


def _int8_accuracy(data: bytes, x: np.ndarray, y: np.ndarray) -> float:
    it = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    hits = 0
    for xs, ys in zip(x, y):
        v = xs[None].astype(np.float32)
        if i["dtype"] == np.int8:
            v = quantize_array(v, *i["quantization"])
        it.set_tensor(i["index"], v)
        it.invoke()
        out = it.get_tensor(o["index"])
        if o["dtype"] == np.int8:
            out = dequantize_array(out, *o["quantization"])
        hits += int(np.argmax(out) == ys)
    return hits / len(y)


def _float_accuracy(data: bytes, x, y) -> float:
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    hits = 0
    for xs, ys in zip(x, y):
        it.set_tensor(i["index"], xs[None].astype(np.float32))
        it.invoke()
        hits += int(np.argmax(it.get_tensor(o["index"])) == ys)
    return hits / len(y)


def test_is_float_model(digits, mlperf_dir):
    assert is_float_model(digits.keras_path)
    assert is_float_model(digits.float_tflite)
    assert is_float_model(mlperf_dir / "ad01_fp32.tflite")
    assert not is_float_model(mlperf_dir / "ad01_int8.tflite")
    assert not is_float_model(mlperf_dir / "vww_96_int8.tflite")


def test_keras_digits_converts_full_int8(from_keras):
    ops = _ops(from_keras.tflite)
    assert set(ops) == DIGITS_OPS, ops  # BatchNorm folded, ReLU fused, Dropout gone
    assert ft.classify(tfl.parse_model(from_keras.tflite)) == "int8"
    m = tfl.parse_model(from_keras.tflite)
    ins, outs = tfl.io_tensors(m)
    assert [tfl.dtype_name(t) for t in ins + outs] == ["int8", "int8"]
    assert list(ins[0].shape) == [1, 8, 8, 1]  # batch fixed to 1
    assert from_keras.report is not None and from_keras.float_model is not None


def test_keras_and_float_tflite_paths_give_the_same_graph(from_keras, from_tflite):
    """The converter with a representative dataset and our calibrate+quantize of the float
    flatbuffer produce the same tensors, scales and weights."""
    a, b = tfl.parse_model(from_keras.tflite), tfl.parse_model(from_tflite.tflite)
    ga, gb = a.subgraphs[0], b.subgraphs[0]
    assert _ops(from_keras.tflite) == _ops(from_tflite.tflite)
    assert len(ga.tensors) == len(gb.tensors)
    for ta, tb in zip(ga.tensors, gb.tensors):
        assert list(ta.shape) == list(tb.shape) and ta.type == tb.type
        if ta.quantization is not None and ta.quantization.scale is not None:
            np.testing.assert_array_equal(ta.quantization.scale, tb.quantization.scale)
            np.testing.assert_array_equal(ta.quantization.zeroPoint, tb.quantization.zeroPoint)
        da = a.buffers[ta.buffer].data
        db = b.buffers[tb.buffer].data
        assert (da is None or len(da) == 0) == (db is None or len(db) == 0)
        if da is not None and len(da):
            np.testing.assert_array_equal(np.asarray(da), np.asarray(db))


@pytest.mark.parametrize("which", ["keras", "tflite"])
def test_digits_int8_accuracy_within_1pp_of_float(digits, from_keras, from_tflite, which):
    prepared = from_keras if which == "keras" else from_tflite
    with np.load(digits.test_npz) as z:
        x, y = z["x"], z["y"]
    float_acc = _float_accuracy(prepared.float_model.tflite, x, y)
    assert abs(float_acc - digits.float_accuracy) < 0.005  # the float .tflite is the Keras model
    assert float_acc > 0.85, "the digits CNN did not train"
    int8_acc = _int8_accuracy(prepared.tflite, x, y)
    assert abs(int8_acc - float_acc) <= 0.01, (float_acc, int8_acc)


@pytest.mark.parametrize("which", ["keras", "tflite"])
def test_digits_c_is_bit_exact(digits, from_keras, from_tflite, which, tmp_path):
    prepared = from_keras if which == "keras" else from_tflite
    with np.load(digits.test_npz) as z:
        x = z["x"][:40]
    m = tfl.parse_model(prepared.tflite)
    q = tfl.io_tensors(m)[0][0].quantization
    real = [[quantize_array(s[None], float(q.scale[0]), int(q.zeroPoint[0]))] for s in x]
    assert_bit_exact(prepared.tflite, tmp_path, n_random=40, inputs=real)


def test_per_tensor_weights(digits):
    p = prepare_int8(digits.float_tflite, calib=digits.calib_npy, per_tensor=True)
    m = tfl.parse_model(p.tflite)
    g = m.subgraphs[0]
    for op in g.operators:
        if tfl.op_name(m, op) in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert len(g.tensors[op.inputs[1]].quantization.scale) == 1
    assert p.report["per_channel"] is False


def test_float_io_keeps_float_edges(digits, tmp_path):
    p = prepare_int8(digits.keras_path, calib=digits.calib_npy, io="float")
    ops = _ops(p.tflite)
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    ins, outs = tfl.io_tensors(tfl.parse_model(p.tflite))
    assert [tfl.dtype_name(t) for t in ins + outs] == ["float32", "float32"]
    with np.load(digits.test_npz) as z:
        x, y = z["x"], z["y"]
    assert abs(_int8_accuracy(p.tflite, x, y) - digits.float_accuracy) <= 0.01
    assert_bit_exact(p.tflite, tmp_path, n_random=20, inputs=[[s[None].astype(np.float32)] for s in x[:20]])


def test_saved_model_and_h5(digits, tmp_path):
    import keras

    model = keras.models.load_model(digits.keras_path)
    h5 = tmp_path / "digits.h5"
    model.save(h5)
    p_h5 = prepare_int8(h5, calib=digits.calib_npy)
    sm = tmp_path / "digits_savedmodel"
    model.export(sm, verbose=False)
    p_sm = prepare_int8(sm, calib=digits.calib_npy)
    for p in (p_h5, p_sm):
        assert set(_ops(p.tflite)) == DIGITS_OPS
        assert list(tfl.io_tensors(tfl.parse_model(p.tflite))[0][0].shape) == [1, 8, 8, 1]
    assert p_sm.report["source_kind"] == "saved_model"


# ------------------------------------------------------------------------------ bad input

def test_float_model_without_calibration_is_refused(digits):
    with pytest.raises(TinycError, match="calibration data"):
        prepare_int8(digits.keras_path)


def test_calibration_shape_mismatch_names_both_shapes(digits, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((10, 7, 7, 1), np.float32))
    with pytest.raises(TinycError) as e:
        prepare_int8(digits.float_tflite, calib=bad)
    msg = str(e.value)
    assert "(7, 7, 1)" in msg and "(1, 8, 8, 1)" in msg and "\n" not in msg


@pytest.mark.parametrize("case", ["nan", "inf", "empty_npz", "no_x", "strings", "zero_samples"])
def test_bad_calibration_data(digits, tmp_path, case):
    p = tmp_path / f"{case}.npz"
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    expect = {"nan": "NaN/Inf", "inf": "NaN/Inf", "empty_npz": "empty .npz", "no_x": "no array 'x'",
              "strings": "dtype", "zero_samples": "no samples"}[case]
    if case == "nan":
        x[3, 1, 1, 0] = np.nan
        np.savez(p, x=x)
    elif case == "inf":
        x[0, 0, 0, 0] = np.inf
        np.savez(p, x=x)
    elif case == "empty_npz":
        np.savez(p)
    elif case == "no_x":
        np.savez(p, images=x)
    elif case == "strings":
        np.savez(p, x=np.array(["a", "b"]))
    else:
        np.savez(p, x=np.zeros((0, 8, 8, 1), np.float32))
    with pytest.raises(TinycError, match=expect) as e:
        prepare_int8(digits.float_tflite, calib=p)
    assert "\n" not in str(e.value)


def test_calib_random_warns(digits):
    p = prepare_int8(digits.float_tflite, calib_random=8)
    assert any("NOT trustworthy" in w for w in p.warnings)
    assert p.report["trustworthy"] is False and "not trustworthy" in p.report["note"]


def test_custom_layer_is_named(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="tinyc_test")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    inp = keras.Input((4,))
    out = keras.layers.Dense(2)(Doubler(name="twice")(inp))
    path = tmp_path / "custom.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(UnsupportedError, match=r"'twice'.*Doubler"):
        prepare_int8(path, calib_random=4)


def test_unknown_custom_class_on_load_is_named(tmp_path):
    import keras

    class Halver(keras.layers.Layer):  # not registered: loading fails
        def call(self, x):
            return x * 0.5

    inp = keras.Input((4,))
    out = keras.layers.Dense(2)(Halver(name="half")(inp))
    path = tmp_path / "unregistered.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(UnsupportedError, match=r"'half'.*Halver"):
        prepare_int8(path, calib_random=4)


def test_unsupported_layer_is_named(tmp_path):
    import keras

    inp = keras.Input((5, 3))
    out = keras.layers.Dense(2)(keras.layers.SimpleRNN(4, name="memory")(inp))   # LSTM and GRU are supported
    path = tmp_path / "rnn.keras"
    keras.Model(inp, out).save(path)
    # judged on the converted graph: the op the layer lowers to, and the layer's name in its tensor
    with pytest.raises(UnsupportedError, match=r"op \d+ WHILE \('[^']*memory[^']*'\).*unroll"):
        prepare_int8(path, calib_random=4)


def test_several_inputs_refused(tmp_path):
    import keras

    a, b = keras.Input((4,)), keras.Input((4,))
    out = keras.layers.Dense(2)(keras.layers.Add()([a, b]))
    path = tmp_path / "two_inputs.keras"
    keras.Model([a, b], out).save(path)
    with pytest.raises(UnsupportedError, match="2 inputs"):
        prepare_int8(path, calib_random=4)


def test_int8_model_passes_through(mlperf_dir):
    p = prepare_int8(mlperf_dir / "ad01_int8.tflite")
    assert p.tflite == (mlperf_dir / "ad01_int8.tflite").read_bytes()
    assert p.report is None and p.float_model is None


def test_evaluate_side_by_side(digits, from_keras, tmp_path):
    from tinyc.convert import convert
    from tinyc.metrics.accuracy import evaluate

    model = tmp_path / "digits_int8.tflite"
    model.write_bytes(from_keras.tflite)
    outdir = tmp_path / "out"
    convert(model, outdir)
    seen = []
    r = evaluate(from_keras, outdir, digits.test_npz, progress=lambda stage, done, total, note="": seen.append(stage))
    with np.load(digits.test_npz) as z:
        x, y = z["x"], z["y"]
    assert r["samples"] == len(y) and r["labels"]
    assert r["float"]["accuracy"] == pytest.approx(digits.float_accuracy, abs=0.005)
    assert r["int8_reference"]["accuracy"] == pytest.approx(_int8_accuracy(from_keras.tflite, x, y))
    assert r["c"]["accuracy"] == r["int8_reference"]["accuracy"]
    assert r["c_vs_reference"] == {"bit_exact": True, "mismatched_samples": 0}
    assert {"eval float", "eval int8 reference"} <= set(seen)


def test_evaluate_needs_labels_shape(digits, from_keras, tmp_path):
    from tinyc.convert import convert
    from tinyc.metrics.accuracy import evaluate

    model = tmp_path / "digits_int8.tflite"
    model.write_bytes(from_keras.tflite)
    convert(model, tmp_path / "out")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 8, 8, 1), np.float32), y=np.zeros(4, np.int64))
    with pytest.raises(TinycError, match="5 samples but 4 labels"):
        evaluate(from_keras, tmp_path / "out", bad)


def test_converter_output_captured_and_progress_reported(digits, capfd):
    calls = []
    prepare_int8(digits.keras_path, calib=digits.calib_npy,
                 progress=lambda stage, done, total, note="": calls.append((stage, done, total)))
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the converter's C++ prints did not reach the terminal
    assert ("calibrate", 200, 200) in calls and ("report", 64, 64) in calls


def test_hybrid_model_refused_with_reason(mlperf_dir):
    """kws_ref_model_float32 has int8 conv weights with float activations: no float weights to calibrate."""
    with pytest.raises(UnsupportedError, match="hybrid") as e:
        prepare_int8(mlperf_dir / "kws_ref_model_float32.tflite", calib_random=4)
    assert "\n" not in str(e.value)


def test_a_converter_crash_costs_one_model_not_tinyc(digits):
    """TensorFlow's converter runs in its own process: one that dies natively (a read at address
    0, standing for the converter's own crashes) becomes one line, and the next model converts."""
    import ctypes

    from tinyc.isolated import Worker
    from tinyc.quantize.prepare import CONVERTER_HINT, float_flatbuffer

    crashing = Worker("TensorFlow's converter")   # not the shared one: its TensorFlow stays loaded
    try:
        with pytest.raises(TinycError, match=r"^TensorFlow's converter was killed by SIGSEGV while converting x "
                                             r"\(.*\); TensorFlow crashed on this model"):
            crashing.call(ctypes.string_at, 0, what="converting x", hint=CONVERTER_HINT)
    finally:
        crashing.close()
    assert "CONV_2D" in _ops(float_flatbuffer(digits.keras_path))
