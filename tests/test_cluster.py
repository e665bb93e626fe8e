"""Weight sharing: k-means to K shared values (int8 pass and Keras centroid fine-tuning), stored
as Huffman codes over the shared values, bit-exact with BUILTIN_REF; and --prune's default
exclusion of only small first/last layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import convert_keras_int8
from test_compressed_kernels import run_compressed
from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.passes.cluster import ClusterOptions, cluster_int8, cluster_values, kmeans_1d, parse_cluster_layer
from tinyc.passes import encode as E
from tinyc.passes.compress import CompressOptions
from tinyc.passes.prune import PruneOptions, excluded_by_default, weight_layers


@pytest.fixture(scope="module")
def fc_model(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    m = keras.Sequential([keras.Input((30,)), keras.layers.Dense(40, activation="relu"),
                          keras.layers.Dense(20, activation="relu"), keras.layers.Dense(6)])
    path = tmp_path_factory.mktemp("cluster") / "fc.tflite"
    path.write_bytes(convert_keras_int8(m, rng.normal(size=(64, 30)).astype(np.float32)))
    return path


def test_kmeans_linear_init_finds_separated_groups():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(-5, 0.1, 50), rng.normal(0.5, 0.1, 30), rng.normal(4, 0.1, 20)])
    c, a = kmeans_1d(v, 3)
    assert np.allclose(np.sort(c), [-5, 0.5, 4], atol=0.1)
    assert np.bincount(a).tolist() == [50, 30, 20]


def test_cluster_values_keeps_zeros_and_at_most_k_values():
    rng = np.random.default_rng(1)
    q = rng.integers(-127, 128, size=(50, 20)).astype(np.int8)
    q[rng.random(q.shape) < 0.5] = 0
    out = cluster_values(q, 8)
    assert np.array_equal(out == 0, q == 0)                  # pruned stay pruned, no new zeros
    assert np.unique(out[out != 0]).size <= 8 + 1            # a centroid at 0 becomes -1 and +1
    assert np.abs(out.astype(int) - q).max() <= 255 // 8     # 8 values over 255 steps: error < one gap
    few = np.where(q > 0, 5, np.where(q < 0, -9, 0)).astype(np.int8)
    assert np.array_equal(cluster_values(few, 8), few)       # already shared: unchanged


@pytest.mark.parametrize("k", [4, 16])
def test_clustered_weights_are_huffman_coded_and_bit_exact(fc_model, tmp_path, k):
    opts = CompressOptions(PruneOptions(sparsity=0.5, exclude_first_last=False), "kind:sparse_huffman",
                           cluster=ClusterOptions(clusters=k))
    m = run_compressed(fc_model, tmp_path, opts)
    c = m["compression"]
    g = load_tflite(m["outdir"] / "model.tflite")
    for l, row in zip(weight_layers(g), c["layers"]):
        w = g.tensors[l.weight].data
        assert np.unique(w[w != 0]).size <= k
        assert row["distinct_values"] <= k
        # the Huffman code over the shared values (and the fillers' 0) is the codebook: at most
        # ceil(log2(K + 1)) bits per stored value, fewer when the values are unevenly used
        enc = E.encode(E.kernel_order(l.kind, w).reshape(-1), "sparse_huffman")
        assert enc.value_bits <= enc.entries * np.ceil(np.log2(k + 1))
        assert row["value_bits_per_nonzero"] < 8
    assert [r["clusters"] for r in c["clustering"]] == [k] * 3


def test_cluster_layer_only_touches_that_layer(fc_model):
    g = load_tflite(fc_model)
    layers = weight_layers(g)
    name = layers[1].name
    cg, rows = cluster_int8(g, ClusterOptions(per_layer={name: 4}))
    assert [r["clusters"] for r in rows] == [None, 4, None]
    assert np.array_equal(cg.tensors[layers[0].weight].data, g.tensors[layers[0].weight].data)
    assert rows[1]["distinct"] <= 4 < rows[1]["distinct_before"]


def test_bad_cluster_options():
    with pytest.raises(TinycError, match="outside 2..256"):
        parse_cluster_layer("fc=1")
    with pytest.raises(TinycError, match="expected NAME=VALUE"):
        parse_cluster_layer("fc")
    r = CliRunner().invoke(main, ["convert", "x.tflite", "-o", "o", "--cluster", "1"])
    assert r.exit_code != 0


def test_prune_leaves_out_only_small_first_and_last_layers():
    opts = PruneOptions(sparsity=0.9)
    assert excluded_by_default([235200, 30000, 1000], opts) == {2}     # LeNet-300-100: fc1 is 88%
    assert excluded_by_default([500, 25000, 400000, 5000], opts) == {0, 3}
    assert excluded_by_default([500, 25000], opts) == set()
    assert excluded_by_default([500, 25000, 400000, 5000], PruneOptions(exclude_first_last=False)) == set()


def test_keras_cluster_fine_tunes_shared_centroids(tmp_path):
    """--prune --cluster --train: float centroids trained with summed gradients, assignments kept;
    per-tensor int8 weights then hold at most K values per layer, and the C is bit-exact."""
    import keras

    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 12)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
    m = keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    m.save(tmp_path / "m.keras")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(out), "--train",
                                  str(tmp_path / "train.npz"), "--prune", "0.5", "--cluster", "8", "--per-tensor",
                                  "--epochs", "2"])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "tinyc.json").read_text())
    stages = manifest["keras_compression"]["stages"]
    assert [s["stage"] for s in stages] == ["prune", "cluster"]
    assert all(row["distinct"] <= 8 for row in stages[1]["layers"])     # float: still K values after training
    c = manifest["compression"]
    assert [st["stage"] for st in c["stages"]] == ["float32", "int8", "prune", "cluster", "huffman"]
    assert c["stages"][-1]["bytes"] == manifest["weight_bytes"]
    assert all("cluster" in l["methods"] for l in c["layers"])
    assert [("prune" in l["methods"]) for l in c["layers"]] == [True, True, False]   # the small last layer left out
    assert all(l["macs_effective"] <= l["macs_dense"] for l in c["layers"])
    rep = CliRunner().invoke(main, ["report", str(out)])
    assert rep.exit_code == 0 and "a/a* (float32)" in rep.output and "prune+cluster" in rep.output
    g = load_tflite(out / "model.tflite")
    for l in weight_layers(g):
        w = g.tensors[l.weight].data
        assert np.unique(w[w != 0]).size <= 8
    from tinyc.boards import load_board
    from tinyc.build import build
    from tinyc.reference import Reference
    from tinyc.runners import open_session
    from tinyc.samples import random_inputs, to_record
    board = load_board("host")
    build(out, board)
    ref = Reference(out / "model.tflite")
    from tinyc.outdir import load_manifest
    samples = random_inputs(load_manifest(out).inputs, 20, seed=1)
    with open_session(board, out) as s:
        got = s.infer_many([to_record(v) for v in samples])
    assert all(res.output == ref.run(*v)[0].tobytes() for res, v in zip(got, samples))
