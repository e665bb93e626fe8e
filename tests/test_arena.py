"""The arena: in-place execution, its plan invariants, and the arena against TensorFlow Lite
Micro's for every MLPerf Tiny int8 model."""

import sys

import numpy as np
import pytest

from tinyc.convert import ConvertOptions, convert
from tinyc.codegen.generator import lower_graph
from tinyc.codegen.planner import plan_memory
from tinyc.frontend.tflite import load_tflite, tflite_to_graph

from access_order import check_plan, layer_kernels, required_gap, safe_at
from conftest import MLPERF_INT8_MODELS as MODELS, REPO
from helpers import assert_bit_exact, convert_keras_int8

sys.path.insert(0, str(REPO / "bench"))
from tflm import tflm_arena  # noqa: E402  (the TFLM probe belongs to the benches)

# tinyc's arena at most this times TFLM's activation arena (head), default options (balanced:
# the specialised kernels, their scratch included), for the Cortex-M4 whose TFLM arena the
# targets are about (vector cores trade arena for speed: their kernels widen whole planes).
HEAD_RATIO = {"kws_ref_model": 0.6, "vww_96_int8": 0.6, "pretrainedResnet_quant": 0.7}


@pytest.mark.parametrize("model", MODELS)
def test_arena_against_tflm_head(model, mlperf_dir, tmp_path):
    path = mlperf_dir / f"{model}.tflite"
    ours = convert(path, tmp_path / "out", ConvertOptions(board="mps2-an386")).manifest.arena_bytes
    head = tflm_arena(path)["head"]
    ratio = HEAD_RATIO.get(model, 1.0)
    assert 0 < ours <= ratio * head, f"{model}: tinyc arena {ours} B > {ratio} x TFLM head {head} B"


@pytest.mark.parametrize("io_in_arena", [False, True], ids=["io-caller", "io-in-arena"])
@pytest.mark.parametrize("model", MODELS)
def test_plan_invariants(model, io_in_arena, mlperf_dir):
    """No buffer is overwritten while still needed (in-place pairs checked against the simulated
    read/write order of their kernel); every contract is at least what the simulation needs;
    the arena is not below the lower bound, nor the lower bound below the live bytes."""
    graph = load_tflite(mlperf_dir / f"{model}.tflite")
    lowered, ctx = lower_graph(graph, io_in_arena=io_in_arena)
    plan = ctx.plan
    kernels = layer_kernels(ctx)
    check_plan(graph, plan, kernels)
    for i, (op, low) in enumerate(zip(graph.ops, lowered)):
        if low.inplace is not None and low.inplace.exact:  # strips: safe at that one distance
            assert safe_at(graph, op, low.inplace.input, low.inplace.min_gap, kernels.get(i)), f"layer {i} {op.kind}"
        elif low.inplace is not None:
            need = required_gap(graph, op, low.inplace.input, kernels.get(i))
            assert low.inplace.min_gap >= need, f"layer {i} {op.kind}: contract {low.inplace.min_gap} < {need}"
    assert plan.arena_bytes >= plan.lower_bound
    if model != "ad01_int8":
        assert any(plan.overlaps_in_place(u) for u in plan.inplace), "no layer runs in place"
    # Without in-place contracts the old bound holds: the most bytes live at one op.
    plain = plan_memory(graph, ctx.scratch_requests, io_in_arena=io_in_arena)
    for i in range(len(graph.ops)):
        assert plain.arena_bytes >= sum(b.size for b in plain.buffers if b.first <= i <= b.last)


@pytest.fixture(scope="module")
def chain_model():
    """x [8,8,4] -> 1x1 conv to 8 channels -> LEAKY_RELU -> TANH -> 3x3 depthwise -> 1x1 conv
    to 4 channels: four intermediate tensors of 8 * 8 * 8 = 512 bytes in a chain."""
    import keras
    L = keras.layers
    inp = keras.Input((8, 8, 4))
    a = L.Conv2D(8, 1)(inp)
    b = L.LeakyReLU(negative_slope=0.1)(a)
    c = L.Activation("tanh")(b)
    d = L.DepthwiseConv2D(3, padding="same")(c)
    out = L.Conv2D(4, 1)(d)
    rng = np.random.default_rng(3)
    return convert_keras_int8(keras.Model(inp, out), rng.normal(size=(64, 8, 8, 4)).astype(np.float32))


def test_in_place_chain_arena_and_bit_exact(chain_model, tmp_path):
    graph = tflite_to_graph(chain_model)
    assert [op.kind for op in graph.ops] == ["CONV_2D", "LEAKY_RELU", "TANH", "DEPTHWISE_CONV_2D", "CONV_2D"]
    # Without in-place: two 512-byte tensors live at every layer between the convs.
    lowered, ctx = lower_graph(graph)
    assert plan_memory(graph, ctx.scratch_requests).arena_bytes == 1024
    # In place: LEAKY_RELU and TANH write over their input (min_gap 0); the depthwise kernel
    # writes pixel (y, x) after reading rows y-1..y+1, so its output starts 80 bytes before its
    # input (pixel (y, x) ends at (8y + x + 1) * 8, the window of (y, x) begins at
    # (8(y-1) + x - 1) * 8: 10 pixels of 8 bytes). 512 + 80 bytes in all.
    assert ctx.plan.arena_bytes == 592
    assert [u.op for u in ctx.plan.inplace if ctx.plan.overlaps_in_place(u)] == [1, 2, 3]
    check_plan(graph, ctx.plan)
    result = assert_bit_exact(chain_model, tmp_path / "caller", n_random=50, generate_for="mps2-an386")
    assert result["arena_bytes"] == 592
    # The input (256 B) in the arena: the first conv (4 -> 8 channels, GEMM over pixel pairs)
    # writes pixels 0..61 before it reads the windows of 62 and 63, so its output starts
    # 62 * 8 - 62 * 4 = 248 -> 256 (aligned) bytes before the input: a span of
    # max(512, 256 + 256) bytes, within the 592. (The pixel-by-pixel kernel of --optimize size
    # needs 64 * 8 - 63 * 4 = 260 -> 272: 608 bytes.)
    result = assert_bit_exact(chain_model, tmp_path / "arena", n_random=50, io_in_arena=True,
                              generate_for="mps2-an386")
    assert result["arena_bytes"] == 592


def test_inspect_plan_and_plot(mlperf_dir, tmp_path):
    """`tinyc inspect OUTDIR --plan` lists every buffer, the in-place layers and the lower
    bound; --plot draws the arena into a PNG."""
    import json
    import subprocess
    out = tmp_path / "kws"
    convert(mlperf_dir / "kws_ref_model.tflite", out, ConvertOptions(board="mps2-an386"))
    tinyc = [sys.executable, "-m", "tinyc.cli", "inspect", str(out)]
    proc = subprocess.run([*tinyc, "--plan", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    manifest = json.loads((out / "tinyc.json").read_text())
    assert plan["arena_bytes"] == manifest["arena_bytes"]
    assert plan["lower_bound_bytes"] == manifest["memory"]["lower_bound_bytes"] <= plan["arena_bytes"]
    over = [r["over"]["layer"] for r in plan["buffers"] if r["over"]]
    assert over == manifest["memory"]["in_place_layers"] and len(over) >= 8
    for r in plan["buffers"]:
        assert 0 <= r["offset"] and r["offset"] + r["bytes"] <= plan["arena_bytes"]
    text = subprocess.run([*tinyc, "--plan", "--plot", str(tmp_path / "plan.png")], capture_output=True,
                          text=True, timeout=300)
    assert text.returncode == 0, text.stderr
    assert "lower bound" in text.stdout and "over t" in text.stdout
    assert (tmp_path / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = subprocess.run([*tinyc[:-1], str(mlperf_dir / "kws_ref_model.tflite"), "--plan"],
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "OUTDIR" in refused.stderr and "Traceback" not in refused.stderr
