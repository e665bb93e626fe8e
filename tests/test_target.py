"""Board [target] tables, --optimize, and the Target the lowering is handed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tinyc.boards import board_names, load_board
from tinyc.cli import main as cli
from tinyc.codegen import OPTIMIZE_LEVELS, Target, target_from_board
from tinyc.codegen.generator import lower_graph
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kws_ref_model.tflite"


def test_every_board_names_its_isa_and_features():
    expected = {"mps2-an386": ("armv7e-m", {"dsp"}), "mps2-an500": ("armv7e-m", {"dsp"}),
                "mps3-an547": ("armv8.1-m.main", {"dsp", "mve"}), "rpi4": ("armv8-a", {"neon"}),
                "host": ("x86-64", {"avx2"}), "a72-virt": ("armv8-a", {"neon"})}
    for name in board_names():
        t = target_from_board(load_board(name).raw)
        assert t.isa and t.isa != "generic", name
        assert t.optimize == "balanced"
        if name in expected:
            assert (t.isa, set(t.features)) == expected[name]
    assert target_from_board(load_board("mps3-an547").raw, "speed").has("mve")


def test_unknown_optimize_level_is_refused():
    with pytest.raises(TinycError, match="optimize level 'fast'"):
        target_from_board({}, "fast")
    assert OPTIMIZE_LEVELS == ("balanced", "speed", "size")


def test_lowering_context_carries_the_target():
    graph = load_tflite(EXAMPLE)
    target = Target("armv7e-m", ("dsp",), "speed")
    _, ctx = lower_graph(graph, target=target)
    assert ctx.target is target
    _, ctx = lower_graph(graph)
    assert ctx.target == Target()


def test_convert_records_board_target_and_level(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["convert", str(EXAMPLE), "-o", str(out),
                                   "--board", "mps2-an386", "--optimize", "size"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "tinyc.json").read_text())
    assert m["target"] == {"isa": "armv7e-m", "features": ["dsp"], "optimize": "size", "numerics": "litert"}
    res = CliRunner().invoke(cli, ["convert", str(EXAMPLE), "-o", str(tmp_path / "x"),
                                   "--optimize", "fastest"])
    assert res.exit_code != 0 and "fastest" in res.output and not (tmp_path / "x").exists()


def _conv_kernels(target: Target) -> set[str]:
    graph = load_tflite(EXAMPLE)
    lowered, _ = lower_graph(graph, target=target)
    return {k for op, low in zip(graph.ops, lowered) if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")
            for k in (low.kernels or ["shared"])}


def test_lowering_precedence_vectors_then_dsp_then_shared():
    """Vector cores take the vector-core kernels, Cortex-M DSP cores the specialised GEMM /
    planar ones; --optimize size keeps the shared kernels on every core."""
    for features in (("neon",), ("avx2",)):
        ks = _conv_kernels(Target("armv8-a", features))
        assert {"conv_2d_simd", "depthwise_conv_2d_simd"} <= ks and "conv_2d_gemm" not in ks, features
        assert _conv_kernels(Target("armv8-a", features, "size")) == {"shared"}
    ks = _conv_kernels(Target("armv7e-m", ("dsp",)))
    assert {"conv_2d_gemm", "depthwise_conv_2d_planar"} <= ks and "conv_2d_simd" not in ks
    assert _conv_kernels(Target("armv7e-m", ("dsp",), "size")) == {"shared"}
