"""Test data builder: a small CNN trained on scikit-learn's bundled 8x8 digits (no download).

The network has every layer kind issue 3 names: Conv2D, BatchNormalization, ReLU,
DepthwiseConv2D, one residual Add, MaxPooling2D, GlobalAveragePooling2D, Dropout, Dense and
Softmax. Training is short (a few seconds on one core) and seeded.

`digits_assets(tmp_path_factory)` builds it once per test session and returns the paths of
the .keras model, its float .tflite, calibration samples and the held-out split.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_CACHE: dict = {}


@dataclass
class DigitsAssets:
    keras_path: Path        # trained model, .keras
    float_tflite: Path      # the same model converted to float32 .tflite
    calib_npy: Path         # 200 training samples, (200, 8, 8, 1) float32
    test_npz: Path          # held-out split: x (N, 8, 8, 1) float32, y (N,) int64
    float_accuracy: float   # Keras' own accuracy on the held-out split
    dir: Path


def digits_split(seed: int = 0):
    """(x_train, y_train, x_test, y_test): pixels scaled to [0, 1], shape (N, 8, 8, 1)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    x, y = x[idx], y[idx]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def build_digits_cnn():
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 1), name="pixels")
    h = layers.Conv2D(12, 3, padding="same", use_bias=False, name="conv_in")(inp)
    h = layers.BatchNormalization(name="bn_in")(h)
    h = layers.ReLU(name="relu_in")(h)
    r = layers.DepthwiseConv2D(3, padding="same", name="dw")(h)
    r = layers.BatchNormalization(name="bn_dw")(r)
    r = layers.ReLU(name="relu_dw")(r)
    r = layers.Conv2D(12, 1, name="pw")(r)
    h = layers.Add(name="residual")([h, r])
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Conv2D(24, 3, padding="same", activation="relu", name="conv_mid")(h)
    h = layers.GlobalAveragePooling2D(name="gap")(h)
    h = layers.Dropout(0.2, name="drop")(h)
    h = layers.Dense(10, name="logits")(h)
    out = layers.Softmax(name="probs")(h)
    return keras.Model(inp, out, name="digits_cnn")


def train_digits_cnn(epochs: int = 15, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    xtr, ytr, xte, yte = digits_split(seed)
    model = build_digits_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0)
    return model, (xtr, ytr, xte, yte)


def digits_assets(tmp_path_factory) -> DigitsAssets:
    """Train, save and convert the digits CNN once per session."""
    if "assets" in _CACHE:
        return _CACHE["assets"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tinyc.quantize.keras import convert_float

    d = tmp_path_factory.mktemp("digits")
    model, (xtr, ytr, xte, yte) = train_digits_cnn()
    keras_path = d / "digits.keras"
    model.save(keras_path)
    float_tflite = d / "digits_float.tflite"
    float_tflite.write_bytes(convert_float(model))
    calib = d / "calib.npy"
    np.save(calib, xtr[:200])
    test = d / "test.npz"
    np.savez(test, x=xte, y=yte)
    acc = float(np.mean(np.argmax(model.predict(xte, verbose=0), axis=1) == yte))
    assets = DigitsAssets(keras_path, float_tflite, calib, test, acc, d)
    _CACHE["assets"] = assets
    return assets
