"""Pruning: exact sparsity (global, per layer, first/last excluded), magnitude order, structured
channel pruning that shrinks the model and stays bit-exact, Keras gradual pruning, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import convert_keras_int8
from test_compressed_kernels import run_compressed
from tinyc.cli import main
from tinyc.passes.compress import CompressOptions
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.passes.prune import (PruneOptions, nonzero_bits, prune_channels, prune_int8, weight_layers,
                                zero_cheapest, zero_smallest)
from tinyc.quantize.finetune import TrainOptions, load_training_data, prune_keras


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(11)
    rng = np.random.default_rng(11)
    m = keras.Sequential([
        keras.Input((10, 10, 2)),
        keras.layers.Conv2D(12, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        keras.layers.Conv2D(10, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(20, activation="relu"),
        keras.layers.Dense(6),
    ])
    path = tmp_path_factory.mktemp("prune") / "conv.tflite"
    path.write_bytes(convert_keras_int8(m, rng.normal(size=(64, 10, 10, 2)).astype(np.float32)))
    return path


def _real(graph, layer):
    w = graph.tensors[layer.weight]
    s = w.quant.scale.astype(np.float64)
    shape = [1] * w.data.ndim
    shape[w.quant.axis] = s.size
    return np.abs(w.data.astype(np.float64)) * (s.reshape(shape) if s.size > 1 else s[0])


def test_global_sparsity_is_exact_and_excludes_first_last(conv_model):
    g = load_tflite(conv_model)
    layers = weight_layers(g)
    pg, rows = prune_int8(g, PruneOptions(sparsity=0.7))
    pooled = layers[1:-1]
    n = sum(g.tensors[l.weight].size for l in pooled)
    zeros = sum(int((pg.tensors[l.weight].data == 0).sum()) for l in pooled)
    assert zeros == round(0.7 * n)
    for l in (layers[0], layers[-1]):
        assert np.array_equal(pg.tensors[l.weight].data, g.tensors[l.weight].data)
    # global magnitude order: every pruned weight is no larger than every kept one
    pruned = np.concatenate([_real(g, l)[pg.tensors[l.weight].data == 0] for l in pooled])
    kept = np.concatenate([_real(g, l)[pg.tensors[l.weight].data != 0] for l in pooled])
    assert pruned.max() <= kept.min()
    assert np.array_equal(g.tensors[layers[1].weight].data[pg.tensors[layers[1].weight].data != 0],
                          pg.tensors[layers[1].weight].data[pg.tensors[layers[1].weight].data != 0])


def _stored_bits(masks, value_bits):
    nz = np.array([int(m.sum()) for m in masks])
    size = np.array([m.size for m in masks])
    return float((nz * nonzero_bits(nz / size, value_bits)).sum())


def test_bits_allocation_is_exact_and_stores_fewer_bits():
    # a big layer of small weights and a small one of larger weights (an FC stack's first
    # and second layers): per stored bit, nonzeros move to the denser small layer
    rng = np.random.default_rng(3)
    mags = [np.abs(rng.normal(0, 0.03, (300, 784))), np.abs(rng.normal(0, 0.06, (100, 300)))]
    k = round(0.92 * sum(m.size for m in mags))
    plain, rated = zero_smallest(mags, k), zero_cheapest(mags, k, value_bits=4.0)
    assert sum(int((~m).sum()) for m in rated) == k
    dens = [[m.mean() for m in masks] for masks in (plain, rated)]
    assert dens[1][1] > dens[0][1] and dens[1][0] < dens[0][0]
    assert _stored_bits(rated, 4.0) < 0.95 * _stored_bits(plain, 4.0)
    # within a layer the order is still by magnitude
    for m, keep in zip(mags, rated):
        assert m[~keep].max() <= m[keep].min()


def test_global_magnitude_pruning_never_empties_a_layer(mlperf_dir):
    """ad01's first layer has the smallest int8-dequantized weights of its five: ranked across
    layers by magnitude alone, --prune 0.5 zeroed all of it (and was refused). Each pooled layer
    now keeps at least a quarter of what uniform pruning would leave it; the total stays exact."""
    g = load_tflite(mlperf_dir / "ad01_int8.tflite")
    pruned, rows = prune_int8(g, PruneOptions(sparsity=0.5, exclude_first_last=False))
    pooled = [r for r in rows if r["target"] == 0.5]
    assert len(pooled) == len(weight_layers(g))
    total = sum(r["params"] for r in pooled)
    zeros, already = sum(r["zeros"] for r in pooled), sum(r["zeros_before"] for r in pooled)
    assert round(0.5 * total) <= zeros <= round(0.5 * total) + already   # k zeroed; old zeros may be kept ones
    for r in pooled:
        assert r["params"] - r["zeros"] >= np.ceil(0.25 * 0.5 * r["params"]), r


def test_bits_allocation_on_int8_graph_and_cli(conv_model, tmp_path):
    g = load_tflite(conv_model)
    layers = weight_layers(g)
    pg, _ = prune_int8(g, PruneOptions(sparsity=0.8, exclude_first_last=False, allocation="bits"))
    n = sum(g.tensors[l.weight].size for l in layers)
    assert sum(int((pg.tensors[l.weight].data == 0).sum()) for l in layers) == round(0.8 * n)
    r = CliRunner().invoke(main, ["convert", str(conv_model), "-o", str(tmp_path / "o"), "--prune", "0.8",
                                  "--prune-allocation", "bits", "--weights", "huffman"])
    assert r.exit_code == 0, r.output
    c = json.loads((tmp_path / "o" / "tinyc.json").read_text())["compression"]
    pooled = c["layers"][1:-1]
    assert sum(l["params"] - l["nonzeros"] for l in pooled) == round(0.8 * sum(l["params"] for l in pooled))


@pytest.mark.parametrize("s", [0.1, 0.5, 0.93])
def test_per_layer_sparsity_is_exact(conv_model, s):
    g = load_tflite(conv_model)
    layers = weight_layers(g)
    opts = PruneOptions(per_layer={l.name: s for l in layers}, exclude_first_last=False)
    pg, _ = prune_int8(g, opts)
    for l in layers:
        t = pg.tensors[l.weight]
        assert int((t.data == 0).sum()) == round(s * t.size), l.name
        real = _real(g, l)
        assert real[t.data == 0].max() <= real[t.data != 0].min()


def test_short_layer_names_and_overrides(conv_model):
    g = load_tflite(conv_model)
    layers = weight_layers(g)
    dense = [l for l in layers if l.kind == "FULLY_CONNECTED"][0]
    short = next(p for p in dense.name.replace(";", "/").split("/") if p.startswith("dense"))
    pg, rows = prune_int8(g, PruneOptions(sparsity=0.3, per_layer={short: 0.9}))
    t = pg.tensors[dense.weight]
    assert int((t.data == 0).sum()) == round(0.9 * t.size)


def test_bad_input_one_line(conv_model, tmp_path):
    g = load_tflite(conv_model)
    with pytest.raises(TinycError, match=r"outside \[0, 1\)"):
        prune_int8(g, PruneOptions(sparsity=1.0))
    with pytest.raises(TinycError, match=r"outside \[0, 1\)"):
        prune_int8(g, PruneOptions(sparsity=-0.1))
    names = [l.name for l in weight_layers(g)]
    with pytest.raises(TinycError) as e:
        prune_int8(g, PruneOptions(per_layer={"no_such_layer": 0.5}))
    assert all(n in str(e.value) for n in names)
    last = weight_layers(g)[-1]     # 120 weights: 0.999 rounds to all of them
    with pytest.raises(TinycError, match="empties layer"):
        prune_int8(g, PruneOptions(per_layer={last.name: 0.999}))
    runner = CliRunner()
    for args, text in ((["--prune", "1.5"], "outside [0, 1)"), (["--prune-layer", "nope=0.5"], "no such layer"),
                       (["--prune-layer", f"{last.name}=0.999"], "empties layer"),
                       (["--prune-channels", "2"], "outside [0, 1)"),
                       (["--train", str(conv_model), "--prune", "0.5"], "--train needs a Keras model")):
        r = runner.invoke(main, ["convert", str(conv_model), "-o", str(tmp_path / "o"), *args])
        assert r.exit_code != 0, args
        err = r.output.strip().splitlines()
        assert len(err) == 1 and text in err[0], (args, r.output)


def test_structured_pruning_shrinks_and_stays_bit_exact(conv_model, tmp_path):
    g = load_tflite(conv_model)
    pg, rows = prune_channels(g, 0.5)
    removed = {r["name"]: r["removed"] for r in rows}
    # the first conv (through max pool and depthwise), the second conv (through flatten) and
    # the hidden dense lose half their outputs; the output layer keeps its classes
    assert sum(1 for v in removed.values() if v) == 3
    assert weight_layers(pg)[-1].name in removed and removed[weight_layers(pg)[-1].name] == 0
    base = run_compressed(conv_model, tmp_path / "base", CompressOptions(PruneOptions(), "raw", report=True))
    small = run_compressed(conv_model, tmp_path / "small", CompressOptions(PruneOptions(channels=0.5), "raw"))
    assert small["compression"]["weights_after"] == sum(l["params_after"] for l in small["compression"]["layers"])
    params_before = sum(l["params"] for l in base["compression"]["layers"])
    params_after = sum(l["params_after"] for l in small["compression"]["layers"])
    assert params_after < 0.5 * params_before
    assert small["macs"] < 0.6 * base["macs"]
    assert small["weight_bytes"] < base["weight_bytes"]
    # combined with unstructured pruning and encoding
    run_compressed(conv_model, tmp_path / "both", CompressOptions(PruneOptions(channels=0.25, sparsity=0.5), "auto"))


def test_keras_gradual_pruning_exact_and_masks_fixed(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 12)).astype(np.float32)
    y = (x[:, :3].sum(axis=1) > 0).astype(np.int64) + (x[:, 3] > 1)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    log = []
    pm, rows = prune_keras(model, x, y, PruneOptions(sparsity=0.8, exclude_first_last=False),
                           TrainOptions(epochs=3, batch_size=32, rewind=True),
                           progress=lambda stage, done, total, note="": log.append((stage, done, total, note)))
    kernels = [l.kernel.numpy() for l in pm.layers]
    n = sum(k.size for k in kernels)
    assert sum(int((k == 0).sum()) for k in kernels) == round(0.8 * n)
    assert len(log) == 3 and log[-1][:3] == ("pruning", 3, 3) and "sparsity" in log[-1][3]
    # the bits allocation (the same ramp, masks by magnitude per stored bit): exact too
    pm, _ = prune_keras(keras.models.clone_model(model), x, y,
                        PruneOptions(sparsity=0.8, exclude_first_last=False, allocation="bits", value_bits=4.0),
                        TrainOptions(epochs=2, batch_size=32))
    assert sum(int((l.kernel.numpy() == 0).sum()) for l in pm.layers) == round(0.8 * n)
    # bad training data: one clear line
    p = tmp_path / "bad.npz"
    np.savez(p, x=np.zeros((10, 13), np.float32), y=np.zeros(10, np.int64))
    with pytest.raises(TinycError, match=r"x has shape \(10, 13\), the model takes \(N, 12\)"):
        load_training_data(p, (1, 12))
    np.savez(p, x=np.zeros((10, 12), np.float32), y=np.zeros(9, np.int64))
    with pytest.raises(TinycError, match="one label per sample"):
        load_training_data(p, (1, 12))


def test_keras_train_cli_end_to_end(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    m = keras.Sequential([keras.Input((16,)), keras.layers.Dense(24, activation="relu"),
                          keras.layers.Dense(24, activation="relu"), keras.layers.Dense(2)])
    m.save(tmp_path / "m.keras")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.savez(tmp_path / "bad.npz", x=x[:, :5], y=y)
    runner = CliRunner()
    out = tmp_path / "out"
    r = runner.invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(out), "--train", str(tmp_path / "bad.npz"),
                             "--prune", "0.5"])
    assert r.exit_code != 0 and "x has shape (200, 5)" in r.output
    r = runner.invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(out), "--train", str(tmp_path / "train.npz"),
                             "--prune", "0.6", "--no-prune-exclude-first-last", "--weights", "auto"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "tinyc.json").read_text())
    c = manifest["compression"]
    kp = manifest["keras_pruning"]
    assert sum(r["zeros"] for r in kp) == round(0.6 * sum(r["params"] for r in kp))   # exact on the float model
    assert c["weights"] - c["nonzeros"] >= round(0.6 * c["weights"])               # zeros stay zero in int8
    r = runner.invoke(main, ["report", str(out)])
    assert r.exit_code == 0 and "compression rate" in r.output
