"""Quantization-aware fine-tuning (--qat): on a depthwise-separable CNN whose per-tensor
post-training quantization loses at least 2 points, QAT brings the int8 model (the TFLite
int8 scheme, generated C bit-exact with BUILTIN_REF) back to within 0.5 points of float."""

from __future__ import annotations

import numpy as np
import pytest

from digits_cnn import digits_split
from tinyc.convert import ConvertOptions, convert
from tinyc.errors import TinycError
from tinyc.quantize.finetune import TrainOptions

SPREAD = 8.0   # channel ranges of the depthwise layers spread over 1/8 .. 8


def ds_cnn():
    import keras
    L = keras.layers
    inp = keras.Input((8, 8, 1))
    h = L.Conv2D(16, 3, padding="same", use_bias=False)(inp)
    h = L.ReLU()(L.BatchNormalization()(h))
    for c in (32, 32):
        h = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(h)))
        h = L.ReLU()(L.BatchNormalization()(L.Conv2D(c, 1, use_bias=False)(h)))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(10)(h))


def spread_channel_ranges(model, spread: float, seed: int) -> None:
    """Scale each depthwise channel's output by a (its batch norm's gamma and beta) and the
    pointwise weights reading it by 1/a: the same function (ReLU is positively homogeneous),
    but per-channel ranges as uneven as trained MobileNets have (Nagel et al. 2019), which
    per-tensor weight scales cannot serve."""
    rng = np.random.default_rng(seed)
    layers = model.layers
    for i, l in enumerate(layers):
        if type(l).__name__ == "DepthwiseConv2D":
            bn, pw = layers[i + 1], layers[i + 3]
            a = np.exp(rng.uniform(-np.log(spread), np.log(spread), l.kernel.shape[2])).astype(np.float32)
            gamma, beta, mean, var = bn.get_weights()
            bn.set_weights([gamma * a, beta * a, mean, var])
            pw.kernel.assign(pw.kernel.numpy() / a[None, None, :, None])


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    import keras

    d = tmp_path_factory.mktemp("qat")
    keras.utils.set_random_seed(0)
    xtr, ytr, xte, yte = digits_split(0)
    m = ds_cnn()
    m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(xtr, ytr, epochs=30, batch_size=32, verbose=0)
    before = np.argmax(m.predict(xte, verbose=0), 1)
    spread_channel_ranges(m, SPREAD, 0)
    assert np.array_equal(np.argmax(m.predict(xte, verbose=0), 1), before)   # same function
    m.save(d / "ds.keras")
    np.savez(d / "train.npz", x=xtr, y=ytr)
    np.savez(d / "test.npz", x=xte, y=yte)
    return d, float(np.mean(before == yte))


def test_qat_recovers_what_per_tensor_ptq_loses(skewed):
    d, float_acc = skewed
    ptq = convert(d / "ds.keras", d / "ptq", ConvertOptions(calib=d / "train.npz", per_tensor=True,
                                                            eval_data=d / "test.npz"))
    qat = convert(d / "ds.keras", d / "qat", ConvertOptions(train=d / "train.npz", qat=True, per_tensor=True,
                                                            eval_data=d / "test.npz",
                                                            training=TrainOptions(epochs=8, learning_rate=1e-3)))
    e_ptq, e_qat = ptq.manifest.section("evaluation"), qat.manifest.section("evaluation")
    acc_ptq, acc_qat = e_ptq["int8_reference"]["accuracy"], e_qat["int8_reference"]["accuracy"]
    print(f"float {100 * float_acc:.2f}%  per-tensor PTQ int8 {100 * acc_ptq:.2f}%  QAT int8 {100 * acc_qat:.2f}%")
    assert acc_ptq <= float_acc - 0.02                     # the problem is real
    # QAT (channel ranges equalised, then fake-quant fine-tuning) wins it back: within 0.5
    # points of float (measured: 94.96% -> 98.99% against 97.48% float)
    assert acc_qat >= acc_ptq + 0.015 and acc_qat >= float_acc - 0.005
    for e in (e_ptq, e_qat):                               # the C runs the int8 model bit-exactly
        assert e["c_vs_reference"]["bit_exact"] and e["c"]["accuracy"] == e["int8_reference"]["accuracy"]
    assert [s["stage"] for s in qat.manifest.section("keras_compression")["stages"]] == ["qat"]


def test_equalisation_keeps_the_function_and_evens_the_ranges():
    import keras

    from tinyc.quantize.equalize import equalise
    from tinyc.quantize.qat import _all_layers, _consumers

    keras.utils.set_random_seed(1)
    m = ds_cnn()
    spread_channel_ranges(m, SPREAD, 1)
    x = np.random.default_rng(1).uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    before = m.predict(x, verbose=0)
    layers = _all_layers(m)
    rows = equalise(layers, _consumers(layers))
    # the two depthwise -> pointwise pairs (the first conv feeds a depthwise, the last a pooling)
    assert [type(m.get_layer(r["second"])).__name__ for r in rows] == ["Conv2D", "Conv2D"]
    assert all(r["range_spread_before"] > 8 and r["range_spread_after"] < 2 for r in rows)
    np.testing.assert_allclose(m.predict(x, verbose=0), before, rtol=1e-4, atol=1e-5)


def test_qat_and_distill_need_training_data(skewed):
    d, _ = skewed
    for opts, what in ((ConvertOptions(calib=d / "train.npz", qat=True), "--qat"),):
        with pytest.raises(TinycError, match=f"{what} .* give --train"):
            convert(d / "ds.keras", d / "bad", opts)
    assert not (d / "bad").exists()
