"""C kernels over encoded weights (sparse, Huffman, both): bit-exact with LiteRT BUILTIN_REF on
the pruned OUTDIR/model.tflite, and the bytes the report counts are the bytes emitted."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from helpers import convert_keras_int8
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.passes.compress import CompressOptions
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.passes import encode as E
from tinyc.passes.prune import PruneOptions, weight_layers
from tinyc.reference import Reference
from tinyc.runners import open_session
from tinyc.samples import from_record, random_inputs, to_record

KINDS = ["sparse", "huffman", "sparse_huffman"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    import keras

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    d = tmp_path_factory.mktemp("models")
    out = {}
    fc = keras.Sequential([keras.Input((40,)), keras.layers.Dense(48, activation="relu"),
                           keras.layers.Dense(24, activation="relu6"), keras.layers.Dense(10)])
    out["fc"] = convert_keras_int8(fc, rng.normal(size=(64, 40)).astype(np.float32))
    out["fc_per_tensor"] = convert_keras_int8(fc, rng.normal(size=(64, 40)).astype(np.float32), per_tensor=True)
    seq = keras.Sequential([keras.Input((5, 12)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(7)])
    out["fc_batched"] = convert_keras_int8(seq, rng.normal(size=(64, 5, 12)).astype(np.float32))
    conv = keras.Sequential([
        keras.Input((9, 9, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(6, 3, strides=2, padding="valid", activation="relu"),
        keras.layers.Conv2D(5, 3, dilation_rate=2, padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    out["conv"] = convert_keras_int8(conv, rng.normal(size=(64, 9, 9, 3)).astype(np.float32))
    dw = keras.Sequential([
        keras.Input((9, 9, 4)),
        keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2),
        keras.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="relu6"),
        keras.layers.Flatten(),
        keras.layers.Dense(5),
    ])
    out["depthwise"] = convert_keras_int8(dw, rng.normal(size=(64, 9, 9, 4)).astype(np.float32))
    paths = {}
    for k, v in out.items():
        paths[k] = d / f"{k}.tflite"
        paths[k].write_bytes(v)
    return paths


def weights_c_bytes(outdir: Path) -> int:
    """Bytes of every array in weights.c, counted from the C text itself."""
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4}
    total = 0
    for ctype, n in re.findall(r"^const (\w+) \w+\[(\d+)\]", (outdir / "weights.c").read_text(), re.M):
        total += sizes[ctype] * int(n)
    return total


def run_compressed(model: Path, tmp_path: Path, options: CompressOptions, n: int = 40) -> dict:
    outdir = tmp_path / "out"
    result = convert(model, outdir, ConvertOptions(compress=options))
    board = load_board("host")
    build(outdir, board)
    ref = Reference(outdir / "model.tflite")
    samples = random_inputs(result.manifest.inputs, n, seed=3)
    with open_session(board, outdir) as s:
        got = s.infer_many([to_record(x) for x in samples])
    bad = 0
    for x, r in zip(samples, got):
        out = from_record(r.output, result.manifest.outputs)[0]
        bad += out.tobytes() != ref.run(*x)[0].astype(out.dtype).tobytes()
    assert bad == 0, f"{bad} of {n} samples differ from BUILTIN_REF"
    assert result.manifest.weight_bytes == weights_c_bytes(outdir)
    return {**result.manifest.to_dict(), "outdir": outdir}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sparsity", [0.0, 0.75])
def test_fully_connected_encoded_bit_exact(models, tmp_path, kind, sparsity):
    opts = CompressOptions(PruneOptions(sparsity=sparsity or None, exclude_first_last=False), f"kind:{kind}")
    m = run_compressed(models["fc"], tmp_path, opts)
    layers = m["compression"]["layers"]
    assert [l["encoding"] for l in layers] == [kind] * 3
    # the report's encoded bytes are the arrays emitted
    assert m["compression"]["compressed_bytes"] == m["weight_bytes"]
    if sparsity and kind != "huffman":   # walking the sparse list skips pruned weights
        dense = sum(l["macs_dense"] for l in layers)
        assert sum(l["macs"] for l in m["layers"] if l["op"] == "FULLY_CONNECTED") < 0.35 * dense


@pytest.mark.parametrize("kind", KINDS)
def test_fully_connected_several_rows_per_batch(models, tmp_path, kind):
    # Dense on a [1, 5, 12] input: FULLY_CONNECTED over 5 rows (keep_num_dims)
    opts = CompressOptions(PruneOptions(sparsity=0.5, exclude_first_last=False), f"kind:{kind}")
    m = run_compressed(models["fc_batched"], tmp_path, opts)
    assert all(l["encoding"] == kind for l in m["compression"]["layers"])


def test_long_codes_take_the_slow_path(models, tmp_path):
    # unpruned int8 weights: rare values get codes longer than the 8-bit lookup table
    m = run_compressed(models["fc"], tmp_path, CompressOptions(PruneOptions(), "kind:huffman"))
    assert all(l["encoding"] == "huffman" for l in m["compression"]["layers"])
    g = load_tflite(m["outdir"] / "model.tflite")
    lens = [E.encode(g.tensors[l.weight].data.reshape(-1), "huffman").value_table.max_len for l in weight_layers(g)]
    assert max(lens) > 8


def test_fully_connected_per_tensor_weights(models, tmp_path):
    m = run_compressed(models["fc_per_tensor"], tmp_path, CompressOptions(PruneOptions(sparsity=0.6), "sparse"))
    first, middle, last = m["compression"]["layers"]
    # the last layer (7% of the weights) is left out by default, the first (58%) is not
    pooled = first["params"] + middle["params"]
    assert first["nonzeros"] + middle["nonzeros"] == pooled - round(0.6 * pooled)
    assert last["nonzeros"] == last["params"]
    assert all(l["encoding"] == "sparse" for l in (first, middle, last))


@pytest.mark.parametrize("kind", KINDS)
def test_conv_encoded_bit_exact(models, tmp_path, kind):
    opts = CompressOptions(PruneOptions(sparsity=0.6, exclude_first_last=False), f"kind:{kind}")
    m = run_compressed(models["conv"], tmp_path, opts)
    convs = [l for l in m["compression"]["layers"] if l["op"] == "CONV_2D"]
    assert len(convs) == 3 and all(l["encoding"] == kind for l in convs)


@pytest.mark.parametrize("kind", KINDS)
def test_depthwise_encoded_bit_exact(models, tmp_path, kind):
    opts = CompressOptions(PruneOptions(sparsity=0.5, exclude_first_last=False), f"kind:{kind}")
    m = run_compressed(models["depthwise"], tmp_path, opts)
    dws = [l for l in m["compression"]["layers"] if l["op"] == "DEPTHWISE_CONV_2D"]
    assert len(dws) == 3 and all(l["encoding"] == kind for l in dws)


def test_unpruned_conv_huffman_bit_exact(models, tmp_path):
    m = run_compressed(models["conv"], tmp_path, CompressOptions(PruneOptions(), "huffman"))
    assert {l["encoding"] for l in m["compression"]["layers"]} <= {"huffman", "sparse_huffman"}


def test_auto_is_never_larger_than_raw(models, tmp_path):
    m = run_compressed(models["conv"], tmp_path, CompressOptions(PruneOptions(sparsity=0.8, exclude_first_last=False),
                                                                 "auto"))
    c = m["compression"]
    for l in c["layers"]:   # the smallest encoding not estimated more than 2x slower than raw
        slow = l["estimated_slowdown"]
        assert l["bytes"] == min(b for k, b in l["candidates"].items() if slow[k] <= 2.0)
        assert slow[l["encoding"]] <= 2.0 and l["bytes"] <= l["candidates"]["raw"]
    # rates from the measured bytes
    assert c["compression_rate_vs_int8"] == pytest.approx(c["int8_bytes"] / m["weight_bytes"])
    assert c["compression_rate_vs_float32"] == pytest.approx(c["float32_bytes"] / m["weight_bytes"])
    assert c["space_saving_rate_vs_int8"] == pytest.approx((c["int8_bytes"] - m["weight_bytes"]) / m["weight_bytes"])
    assert c["int8_bytes"] > m["weight_bytes"]
    # the plain int8 build, measured; laid out for a core without vectors (the host's vector
    # layout pads its filters to whole blocks and adds requantization arrays)
    raw = convert(models["conv"], tmp_path / "raw", ConvertOptions(board="mps2-an386"))
    assert c["int8_bytes"] == raw.manifest.weight_bytes


def test_report_command_measures_speed_and_flash(models, tmp_path):
    import json

    from click.testing import CliRunner

    from tinyc.cli import main

    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(main, ["convert", str(models["fc"]), "-o", str(out), "--prune", "0.8",
                             "--no-prune-exclude-first-last", "--weights", "sparse"])
    assert r.exit_code == 0, r.output
    assert "compression rate" in r.output            # the summary at the end of convert
    r = runner.invoke(main, ["report", str(out), "--speed"])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "tinyc.json").read_text())
    speed = m["speed"]
    assert len(speed["layers_raw"]) == len(speed["layers_compressed"]) == len(m["layers"])
    assert speed["raw"] == sum(speed["layers_raw"]) and speed["compressed"] == sum(speed["layers_compressed"])
    assert f"speedup rate vs raw int8 build: {speed['raw'] / speed['compressed']:.2f}x" in r.output
    # flash = measured code + the constant bytes emitted; the raw build is measured the same way
    assert f"flash (weights + code incl. decoder) {m['code_bytes'] + m['weight_bytes']:,} B" in r.output
    raw = json.loads((out / "raw_baseline" / "tinyc.json").read_text())
    assert speed["raw_weight_bytes"] == raw["weight_bytes"] > m["weight_bytes"]


@pytest.mark.parametrize("pattern", ["all_zeros", "one_value", "all_256_values", "long_zero_runs"])
def test_adversarial_weights_in_c(models, tmp_path, pattern):
    """Weights that stress the encoders, through the C kernels of every encoding."""
    g = load_tflite(models["fc"])
    layer = weight_layers(g)[1]                      # the 48 -> 24 layer: 1152 weights
    t = g.tensors[layer.weight]
    rng = np.random.default_rng(5)
    if pattern == "all_zeros":
        w = np.zeros(t.size, np.int8)
    elif pattern == "one_value":
        w = np.full(t.size, -77, np.int8)
    elif pattern == "all_256_values":
        w = rng.permutation(np.resize(np.arange(-128, 128), t.size)).astype(np.int8)
    else:
        w = np.zeros(t.size, np.int8)
        w[[0, 1, 600, 601, t.size - 1]] = [127, -128, 1, -1, 64]
    t.data = w.reshape(t.shape)
    src = tmp_path / "adv.tflite"
    src.write_bytes(graph_to_tflite(g))
    for kind in KINDS:
        m = run_compressed(src, tmp_path / kind, CompressOptions(PruneOptions(), f"kind:{kind}"), n=20)
        assert m["compression"]["layers"][1]["encoding"] == kind



def test_bias_in_int16_where_it_fits(tmp_path):
    """An encoded layer stores its int32 bias in int16 when every value fits (same sums, half
    the bytes), in int32 otherwise; bit-exact either way, in every encoded kernel."""
    import keras

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    m = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                          keras.layers.DepthwiseConv2D(3, activation="relu"), keras.layers.Flatten(),
                          keras.layers.Dense(12, activation="relu"), keras.layers.Dense(5)])
    for layer in m.layers[:2] + m.layers[3:]:        # every layer but Flatten
        w = layer.get_weights()
        w[1] = rng.uniform(-0.3, 0.3, w[1].shape).astype(np.float32)
        if layer.name.startswith("dense") and w[1].size == 12:
            w[1][4] = 40.0                           # beyond int16 at the bias scale: int32 kept
        layer.set_weights(w)
    src = tmp_path / "bias.tflite"
    src.write_bytes(convert_keras_int8(m, rng.normal(size=(64, 6, 6, 3)).astype(np.float32)))
    g = load_tflite(src)
    wide = [g.ops[l.op_index] for l in weight_layers(g)
            if np.abs(g.tensors[g.ops[l.op_index].inputs[2]].data).max() > 32767]
    assert len(wide) == 1
    for kind in KINDS:
        out = run_compressed(src, tmp_path / kind, CompressOptions(PruneOptions(), f"kind:{kind}"), n=20)
        text = (out["outdir"] / "weights.c").read_text()
        assert len(re.findall(r"^const int16_t \w+_bias16\[", text, re.M)) == 3
        assert re.findall(r"^const int32_t \w+_bias\[(\d+)\]", text, re.M) == ["12"]
