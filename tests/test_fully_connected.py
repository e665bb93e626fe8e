"""FULLY_CONNECTED: per-tensor and per-channel weights, bias or none, bit-exact."""

import numpy as np

from helpers import assert_bit_exact
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.ir import QuantParams


def _per_channel_variant(graph, seed=0):
    """Requantize every FC's weights per output row (as a per-channel converter would)."""
    rng = np.random.default_rng(seed)
    for op in graph.ops:
        x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        real = w.data.astype(np.float64) * w.quant.s
        scales = (np.abs(real).max(axis=1) / 127 * rng.uniform(0.9, 1.1, size=real.shape[0])).astype(np.float32)
        w.data = np.clip(np.round(real / scales[:, None]), -127, 127).astype(np.int8)
        w.quant = QuantParams(scales, np.zeros(len(scales), np.int64), 0)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = graph.tensors[op.inputs[2]]
            bs = (scales.astype(np.float64) * x.quant.s).astype(np.float32)
            b.quant = QuantParams(bs, np.zeros(len(bs), np.int64), 0)
    return graph


def test_fc_per_channel_bit_exact(mlperf_dir, tmp_path):
    graph = _per_channel_variant(load_tflite(mlperf_dir / "ad01_int8.tflite"))
    assert graph.tensors[graph.ops[0].inputs[1]].quant.per_axis
    assert_bit_exact(graph_to_tflite(graph), tmp_path, n_random=60)


def test_fc_without_bias_bit_exact(mlperf_dir, tmp_path):
    graph = load_tflite(mlperf_dir / "ad01_int8.tflite")
    for op in graph.ops[::2]:
        op.inputs = op.inputs[:2] + [-1]
    model = graph_to_tflite(graph)
    manifest = assert_bit_exact(model, tmp_path / "balanced", n_random=60)
    assert "tinyc_fully_connected_gemm_s8" in (manifest["outdir"] / "model.c").read_text()  # bias folded
    manifest = assert_bit_exact(model, tmp_path / "size", n_random=60, optimize="size")
    assert ".bias = NULL" in (manifest["outdir"] / "model.c").read_text()  # a NULL bias is passed
