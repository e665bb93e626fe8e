"""Test data for `tinyc fit`: a small CNN on scikit-learn's digits with one large dense layer
(the part worth compressing), trained in a few seconds, seeded, and its int8 .tflite.

`fit_assets(tmp_path_factory)` builds it once per test session."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits_cnn import digits_split

_CACHE: dict = {}


@dataclass
class FitAssets:
    keras_path: Path
    int8_tflite: Path
    eval_npz: Path        # held-out digits: x (N, 8, 8, 1) float32, y (N,)
    train_npz: Path
    dir: Path


def build_fit_cnn():
    import keras
    from keras import layers

    inp = keras.Input((8, 8, 1), name="pixels")
    h = layers.Conv2D(8, 3, activation="relu", name="conv")(inp)
    h = layers.Flatten(name="flat")(h)
    # L1 on the big layer: its weights end up prunable by magnitude without fine-tuning.
    h = layers.Dense(64, activation="relu", name="hidden", kernel_regularizer=keras.regularizers.l1(1e-4))(h)
    h = layers.Dense(10, name="logits")(h)
    out = layers.Softmax(name="probs")(h)
    return keras.Model(inp, out, name="fit_cnn")


def fit_assets(tmp_path_factory) -> FitAssets:
    if "assets" in _CACHE:
        return _CACHE["assets"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from helpers import convert_keras_int8

    keras.utils.set_random_seed(0)
    xtr, ytr, xte, yte = digits_split(0)
    model = build_fit_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(xtr, ytr, epochs=20, batch_size=32, verbose=0)
    d = tmp_path_factory.mktemp("fit_cnn")
    keras_path = d / "fit_cnn.keras"
    model.save(keras_path)
    int8 = d / "fit_cnn_int8.tflite"
    int8.write_bytes(convert_keras_int8(model, xtr[:200]))
    ev = d / "eval.npz"
    np.savez(ev, x=xte, y=yte)
    tr = d / "train.npz"
    np.savez(tr, x=xtr, y=ytr)
    assets = FitAssets(keras_path, int8, ev, tr, d)
    _CACHE["assets"] = assets
    return assets
