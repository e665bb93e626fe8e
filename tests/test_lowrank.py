"""Low-rank factorisation of the float model (--low-rank): SVD of Dense and Tucker-2 of Conv2D
layers, only where that saves parameters and MACs; the int8 result is an ordinary graph,
bit-exact on the host; bad ranks refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import assert_bit_exact
from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.quantize.lowrank import LowRankOptions, RankSpec, factorize_keras, parse_rank, parse_rank_layer


@pytest.fixture(scope="module")
def conv_fc(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(3)
    m = keras.Sequential([keras.Input((10, 10, 4)),
                          keras.layers.Conv2D(24, 3, padding="same", activation="relu", name="c1"),
                          keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="c2"),
                          keras.layers.Flatten(),
                          keras.layers.Dense(64, activation="relu", name="d1"),
                          keras.layers.Dense(5, name="d2")])
    return m


def test_full_rank_svd_and_tucker_reproduce_the_layer(conv_fc):
    x = np.random.default_rng(0).normal(size=(8, 10, 10, 4)).astype(np.float32)
    # rank fraction 1.0 never saves anything: refused per layer, the model is unchanged
    same, rows = factorize_keras(conv_fc, LowRankOptions(RankSpec("rank", 1.0)))
    assert all(r["method"] is None for r in rows)
    new, rows = factorize_keras(conv_fc, LowRankOptions(per_layer={"d1": RankSpec("rank", 0.5),
                                                                   "c2": RankSpec("rank", 0.5)}))
    by = {r["name"]: r for r in rows}
    assert by["d1"]["method"] == "svd" and by["d1"]["ranks"] == [32]
    assert by["d1"]["params_after"] == 32 * (512 + 64) and by["d1"]["params_before"] == 512 * 64
    assert by["c2"]["method"] == "tucker2" and by["c2"]["ranks"] == [12, 16]
    assert by["c2"]["macs_after"] < by["c2"]["macs_before"] and by["c2"]["params_after"] < by["c2"]["params_before"]
    assert new.count_params() < conv_fc.count_params()


def test_exact_on_layers_of_low_rank(conv_fc):
    """A Dense kernel of rank 8 and a convolution of Tucker rank (4, 4) are reproduced exactly
    when the energy kept is (almost) all of it, with those ranks."""
    import keras

    rng = np.random.default_rng(4)
    m = keras.models.clone_model(conv_fc)
    m.set_weights(conv_fc.get_weights())
    m.get_layer("d1").kernel.assign((rng.normal(size=(512, 8)) @ rng.normal(size=(8, 64)) / 20).astype(np.float32))
    k = np.einsum("hwrs,ir,os->hwio", rng.normal(size=(3, 3, 4, 4)), rng.normal(size=(24, 4)), rng.normal(size=(32, 4)))
    m.get_layer("c2").kernel.assign((k / 10).astype(np.float32))
    new, rows = factorize_keras(m, LowRankOptions(per_layer={"d1": RankSpec("energy", 0.999999),
                                                            "c2": RankSpec("energy", 0.999999)}))
    by = {r["name"]: r for r in rows}
    assert by["d1"]["ranks"] == [8] and by["c2"]["ranks"] == [4, 4]
    x = rng.normal(size=(8, 10, 10, 4)).astype(np.float32)
    y0, y1 = np.asarray(m(x)), np.asarray(new(x))
    assert np.allclose(y0, y1, rtol=1e-3, atol=1e-3 * np.abs(y0).max())


def test_energy_rank_and_parsing():
    s = np.array([10.0, 5.0, 1.0, 0.1])
    assert RankSpec("energy", 0.75).rank(s) == 1 and RankSpec("energy", 0.8).rank(s) == 2 and RankSpec("energy", 0.99).rank(s) == 2
    assert RankSpec("rank", 0.25).rank(np.ones(300)) == 75
    assert parse_rank("energy:0.9") == RankSpec("energy", 0.9)
    assert parse_rank_layer("fc1=0.25") == ("fc1", RankSpec("rank", 0.25))
    for bad in ("0", "1.5", "x", "power:0.5"):
        with pytest.raises(TinycError):
            parse_rank(bad)


def test_low_rank_convert_is_bit_exact_and_reported(conv_fc, tmp_path):
    conv_fc.save(tmp_path / "m.keras")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 10, 10, 4)).astype(np.float32)
    y = rng.integers(0, 5, 120)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(out), "--low-rank-layer", "d1=0.25",
                                  "--low-rank-layer", "c2=0.5", "--train", str(tmp_path / "train.npz"),
                                  "--epochs", "1"])
    assert r.exit_code == 0, r.output
    assert "low-rank d1: svd rank [16]" in r.output
    m = json.loads((out / "tinyc.json").read_text())
    lr = m["keras_compression"]["stages"][0]
    assert lr["stage"] == "low_rank" and "fine_tune" in lr
    assert m["compression"]["float32_bytes"] == 4 * conv_fc.count_params()   # the original model's size
    fcs = [l for l in m["layers"] if l["op"] == "FULLY_CONNECTED"]
    convs = [l for l in m["layers"] if l["op"] == "CONV_2D"]
    assert len(fcs) == 3 and len(convs) == 4      # d1 -> two FCs; c2 -> 1x1, 3x3, 1x1
    assert_bit_exact(out / "model.tflite", tmp_path / "exact", n_random=20)
    # an int8 model cannot be factorised
    r = CliRunner().invoke(main, ["convert", str(out / "model.tflite"), "-o", str(tmp_path / "o2"),
                                  "--low-rank", "0.5"])
    assert r.exit_code != 0 and "--low-rank rewrites the float model" in r.output
