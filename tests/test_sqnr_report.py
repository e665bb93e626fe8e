"""The per-layer quantization report (tinyc/quantize/sqnr.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from digits_cnn import digits_assets
from tinyc.frontend import tflite as tfl
from tinyc.quantize import float_tflite as ft
from tinyc.cli.text import format_worst
from tinyc.quantize.sqnr import channel_sqnr_db, single_op_model, sqnr_db
from tinyc.quantize.prepare import prepare_int8

BROKEN = "conv_mid"  # the digits CNN's second 3x3 convolution


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return digits_assets(tmp_path_factory)


@pytest.fixture(scope="module")
def healthy(digits):
    return prepare_int8(digits.keras_path, calib=digits.calib_npy)


@pytest.fixture(scope="module")
def broken(digits, tmp_path_factory):
    """The same trained model with one weight of `conv_mid` set to 30x the largest weight."""
    import keras

    model = keras.models.load_model(digits.keras_path)
    layer = model.get_layer(BROKEN)
    w = layer.get_weights()
    k = w[0].copy()
    k[0, 0, 6, 14] = 30 * np.abs(k).max()
    w[0] = k
    layer.set_weights(w)
    path = tmp_path_factory.mktemp("broken") / "broken.keras"
    model.save(path)
    return prepare_int8(path, calib=digits.calib_npy)


def _layer(report, needle):
    hits = [e for e in report["layers"] if needle in e["name"]]
    assert len(hits) == 1, [e["name"] for e in report["layers"]]
    return hits[0]


def test_sqnr_math():
    ref = np.array([3.0, -4.0])
    assert sqnr_db(ref, ref + np.array([0.3, 0.4])) == pytest.approx(20.0)  # 25 / 0.25 = 100
    assert sqnr_db(ref, ref) == 200.0
    assert sqnr_db(np.zeros(3), np.zeros(3)) == 200.0
    assert sqnr_db(np.zeros(2), np.ones(2)) == -200.0
    # per channel: channel 0 error-free, channel 1 at 10 dB, channel 2 silent (skipped)
    r = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0]])
    t = r + np.array([[0.0, np.sqrt(0.1), 0.0], [0.0, -np.sqrt(0.1), 0.0]])
    assert channel_sqnr_db(r, t) == pytest.approx((200.0 + 10.0) / 2)


def test_single_op_cut_runs_like_the_full_model(healthy, digits):
    """Each one-op model cut from the int8 flatbuffer reproduces the full run's output."""
    data = healthy.tflite
    m = tfl.parse_model(data)
    g = m.subgraphs[0]
    full = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                       experimental_preserve_all_tensors=True)
    full.allocate_tensors()
    i = full.get_input_details()[0]
    full.set_tensor(i["index"], np.random.default_rng(0).integers(-128, 128, i["shape"], dtype=np.int8))
    full.invoke()
    for k, op in enumerate(g.operators):
        cut = Interpreter(model_content=single_op_model(m, k), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        cut.allocate_tensors()
        feeds = [t for t in op.inputs if t >= 0 and not tfl.is_constant(m, g.tensors[t])]
        for d, t in zip(cut.get_input_details(), feeds):
            cut.set_tensor(d["index"], full.get_tensor(t))
        cut.invoke()
        np.testing.assert_array_equal(cut.get_tensor(cut.get_output_details()[0]["index"]),
                                      full.get_tensor(op.outputs[0]))


def test_report_covers_every_layer_and_is_json(healthy):
    r = healthy.report
    ops = [tfl.op_name(tfl.parse_model(healthy.tflite), o) for o in tfl.parse_model(healthy.tflite).subgraphs[0].operators]
    assert [e["op"] for e in r["layers"]] == ops
    json.dumps(r, allow_nan=False)
    for e in r["layers"]:
        assert e["sqnr_db"] is not None and e["local_sqnr_db"] is not None, e
        assert e["scale"] > 0
    conv = _layer(r, BROKEN)
    assert conv["weights_per_channel"] and conv["weights_clipped"] == 0.0
    assert 0 < conv["weight_scale_min"] <= conv["weight_scale_max"]
    assert r["trustworthy"] and len(r["worst"]) == 5
    # a healthy 8-bit model: every layer well above 20 dB, rounding-level error per layer
    assert min(e["local_sqnr_db"] for e in r["layers"]) > 20
    assert all(e["rmse_over_scale"] < 1.0 for e in r["layers"] if e["op"] != "SOFTMAX")


def test_report_names_the_broken_layer_worst(broken, healthy):
    worst = broken.report["worst"][0]
    assert BROKEN in worst["name"], format_worst(broken.report)
    before, after = _layer(healthy.report, BROKEN), _layer(broken.report, BROKEN)
    assert after["channel_sqnr_db"] < before["channel_sqnr_db"] - 10
    assert after["weight_scale_max"] > 10 * before["weight_scale_max"]
    lines = format_worst(broken.report)
    assert BROKEN in lines[1]
