"""The generated C's names and kernel-call convention, on a tiny hand-built graph (no Keras).

The naming rule (docs/internals.md, "Generated files"): every per-layer symbol is
tinyc_l<layer index>_<op>_<role>, where <op> is conv2d, dwconv2d, fc, avgpool2d, maxpool2d
for those ops and the lower-cased op kind otherwise. The expected names below are built from
that rule, not copied from the generator's output.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from tinyc.codegen import Target, check_supported, generate
from tinyc.ir import Graph, Op, QuantParams, Tensor
from tinyc.codegen.ops import spec_for

OP_NAMES = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "dwconv2d", "FULLY_CONNECTED": "fc"}


def rule(layer: int, kind: str, role: str) -> str:
    return f"tinyc_l{layer}_{OP_NAMES.get(kind, kind.lower())}_{role}"


def _q(scale, zp=0, axis=0):
    scale = np.atleast_1d(np.asarray(scale, np.float32))
    return QuantParams(scale, np.full(scale.shape, zp, np.int64), axis)


def tiny_graph() -> Graph:
    """input [1,6,6,2] -> CONV_2D 3x3 -> DEPTHWISE 3x3 -> RESHAPE -> FULLY_CONNECTED -> SOFTMAX.
    The op names share a 60-character prefix, as converter names do (kws: 'functional_1/...')."""
    rng = np.random.default_rng(0)
    prefix = "functional_1/activation/Relu;functional_1/batch_normalization/"
    t = [
        Tensor("in", (1, 6, 6, 2), "int8", _q(0.05, -3)),
        Tensor("conv_w", (4, 3, 3, 2), "int8", _q([0.01, 0.02, 0.015, 0.012]),
               rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8)),
        Tensor("conv_b", (4,), "int32", _q(np.float32(0.05) * np.array([0.01, 0.02, 0.015, 0.012])),
               rng.integers(-500, 500, 4).astype(np.int32)),
        Tensor("conv_out", (1, 4, 4, 4), "int8", _q(0.04, -128)),
        Tensor("dw_w", (1, 3, 3, 4), "int8", _q([0.02, 0.01, 0.03, 0.02], axis=3),
               rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8)),
        Tensor("dw_b", (4,), "int32", _q(np.float32(0.04) * np.array([0.02, 0.01, 0.03, 0.02])),
               rng.integers(-500, 500, 4).astype(np.int32)),
        Tensor("dw_out", (1, 2, 2, 4), "int8", _q(0.05, -128)),
        Tensor("shape", (2,), "int32", None, np.array([1, 16], np.int32)),
        Tensor("flat", (1, 16), "int8", _q(0.05, -128)),
        Tensor("fc_w", (3, 16), "int8", _q(0.01), rng.integers(-127, 128, (3, 16)).astype(np.int8)),
        Tensor("fc_b", (3,), "int32", _q(0.0005), rng.integers(-500, 500, 3).astype(np.int32)),
        Tensor("logits", (1, 3), "int8", _q(0.1, 5)),
        Tensor("probs", (1, 3), "int8", _q(1 / 256, -128)),
    ]
    conv_attrs = dict(padding="VALID", stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, activation="RELU")
    ops = [
        Op("CONV_2D", [0, 1, 2], [3], dict(conv_attrs), prefix + "conv2d/BiasAdd"),
        Op("DEPTHWISE_CONV_2D", [3, 4, 5], [6], dict(conv_attrs, depth_multiplier=1), prefix + "depthwise/BiasAdd"),
        Op("RESHAPE", [6, 7], [8], {}, prefix + "flatten"),
        Op("FULLY_CONNECTED", [8, 9, 10], [11], {"activation": "NONE"}, prefix + "dense/BiasAdd"),
        Op("SOFTMAX", [11], [12], {"beta": 1.0}, prefix + "softmax"),
    ]
    return Graph(t, ops, [0], [12], name="tiny")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    """The shared kernels (--optimize size)."""
    out = tmp_path_factory.mktemp("naming")
    generate(tiny_graph(), out, b"tiny model bytes", target=Target(optimize="size"))
    return out


@pytest.fixture(scope="module")
def fast_outdir(tmp_path_factory):
    """The specialised kernels (--optimize speed takes them on every layer; balanced only
    where their scratch does not raise the arena, which on this tiny graph it would)."""
    out = tmp_path_factory.mktemp("naming_fast")
    generate(tiny_graph(), out, b"tiny model bytes", target=Target(optimize="speed"))
    return out


def test_specialised_layers_are_named_by_layer_and_role(fast_outdir):
    weights = (fast_outdir / "weights.c").read_text()
    names = re.findall(r"^const \w+ (\w+)\[\d+\]", weights, re.M)
    expected = {rule(i, kind, r) for i, kind, roles in ((0, "CONV_2D", ("filter", "requant")),
                                                        (1, "DEPTHWISE_CONV_2D", ("taps", "requant")),
                                                        (3, "FULLY_CONNECTED", ("filter", "requant")))
                for r in roles}
    assert sorted(names) == sorted(expected)
    model = (fast_outdir / "model.c").read_text()
    functions = re.findall(r"^static TINYC_NOINLINE void (\w+)\(", model, re.M)
    assert functions == [rule(0, "CONV_2D", "layer"), rule(1, "DEPTHWISE_CONV_2D", "layer"),
                         rule(3, "FULLY_CONNECTED", "layer")]
    body = model[model.index("int tinyc_invoke("):]
    calls = re.findall(r"^\s+(tinyc_\w+)\((.*)\);$", body, re.M)
    assert [fn for fn, _ in calls] == functions + ["tinyc_softmax_s8"]
    assert all(len(args.split(",")) <= 4 for _, args in calls)


def test_constants_are_named_by_layer_and_role(outdir):
    weights = (outdir / "weights.c").read_text()
    names = re.findall(r"^const \w+ (\w+)\[\d+\]", weights, re.M)
    conv_roles = ["filter", "bias", "multiplier", "shift", "acc_init"]
    expected = ({rule(0, "CONV_2D", r) for r in conv_roles} | {rule(1, "DEPTHWISE_CONV_2D", r) for r in conv_roles}
                | {rule(3, "FULLY_CONNECTED", r) for r in ("filter", "bias", "multiplier", "shift")})
    assert set(names) == expected
    assert len(names) == len(expected)
    # each array has a one-line comment right above it
    for name in names:
        above = weights.split(f" {name}[")[0].rstrip().splitlines()[-2]
        assert above.startswith("/* layer ") and above.endswith("*/"), name


def test_kernels_take_a_params_struct_with_designated_initialisers(outdir):
    model = (outdir / "model.c").read_text()
    structs = re.findall(r"^static const (\w+) (\w+) = \{", model, re.M)
    assert [name for _, name in structs] == [rule(0, "CONV_2D", "params"), rule(1, "DEPTHWISE_CONV_2D", "params"),
                                             rule(3, "FULLY_CONNECTED", "params"), rule(4, "SOFTMAX", "params")]
    assert ".input_offset = 3" in model and ".filter = " + rule(3, "FULLY_CONNECTED", "filter") in model
    body = model[model.index("int tinyc_invoke("):]
    calls = re.findall(r"^\s+(tinyc_\w+)\((.*)\);$", body, re.M)
    assert [fn for fn, _ in calls] == ["tinyc_conv_2d_s8", "tinyc_depthwise_conv_2d_s8",
                                       "tinyc_fully_connected_s8", "tinyc_softmax_s8"]
    for fn, args in calls:
        assert args.startswith("&tinyc_l") and len(args.split(",")) <= 4, (fn, args)
        assert "0" not in [a.strip() for a in args.split(",")], (fn, args)  # NULL, not 0


def test_no_numbered_or_tensor_index_names_nor_paths(outdir):
    text = "\n".join(p.read_text() for p in outdir.iterdir() if p.suffix in (".c", ".h"))
    assert not re.search(r"\btinyc_t\d+", text)
    symbols = "\n".join((outdir / f).read_text() for f in ("model.c", "weights.c", "weights.h"))
    assert not re.search(r"\btinyc_\w+_\d+\b", symbols)  # no collision suffix (_2, _3)
    assert "/work/" not in text and "/tmp/" not in text
    assert "#include <math.h>" not in text  # no float path in this model


def test_generated_c_compiles_strictly(outdir, fast_outdir, tmp_path):
    for d in (outdir, fast_outdir):
        for src in ("model.c", "weights.c"):
            subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c", str(d / src),
                            "-o", str(tmp_path / (src + ".o"))], check=True)


def test_check_supported_does_not_lower(monkeypatch):
    graph = tiny_graph()
    for kind in {op.kind for op in graph.ops}:
        monkeypatch.setattr(spec_for(kind), "lower", lambda *a, **k: pytest.fail("check_supported lowered an op"))
    check_supported(graph)


def test_bundled_kws_example_reads_like_a_library(tmp_path):
    """The issue's acceptance greps over the generated sources of examples/kws_ref_model.tflite,
    converted from its absolute path (which must not leak into the C)."""
    from pathlib import Path

    from tinyc.frontend.tflite import load_tflite

    model = (Path(__file__).resolve().parent.parent / "examples" / "kws_ref_model.tflite")
    generate(load_tflite(model), tmp_path, model.read_bytes(), "mps2-an386")
    sources = {p.name: p.read_text() for p in tmp_path.iterdir() if p.suffix in (".c", ".h")}
    symbols = "\n".join(sources[f] for f in ("model.c", "weights.c", "weights.h"))
    assert not re.search(r"\btinyc_\w+_\d+\b", symbols)
    assert not re.search(r"\btinyc_t\d+", "\n".join(sources.values()))
    assert not any(str(model.parent) in text for text in sources.values())
    assert "Model: main (kws_ref_model.tflite)\n" in sources["model.h"]
    body = sources["model.c"][sources["model.c"].index("int tinyc_invoke("):]
    calls = re.findall(r"^\s+tinyc_\w+\((.*)\);$", body, re.M)
    assert len(calls) == 12 and all(len(args.split(",")) <= 4 for args in calls)  # RESHAPE aliases: no call
