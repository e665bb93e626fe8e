"""Options that used to be ignored in silence, and results that look better than they are,
now get a note (or a one-line error) saying so."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from tinyc.cli import main
from tinyc.frontend.tflite import graph_to_tflite, load_tflite


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def notes(res) -> list[str]:
    return [l for l in res.stderr.splitlines() if l.startswith("note: ")]


def test_float_io_and_per_tensor_on_an_int8_model_are_noted(tmp_path, mlperf_dir):
    res = cli("convert", mlperf_dir / "ad01_int8.tflite", "-o", tmp_path / "o", "--io", "float", "--per-tensor")
    assert res.exit_code == 0, res.output
    n = notes(res)
    assert any("--io float applies to float models only" in l for l in n), n
    assert any("--per-tensor applies to float models only" in l for l in n), n


def test_prune_with_raw_weights_says_it_shrinks_nothing(tmp_path, mlperf_dir):
    res = cli("convert", mlperf_dir / "ad01_int8.tflite", "-o", tmp_path / "o", "--prune", "0.3")
    assert res.exit_code == 0, res.output
    assert any("--weights raw stores the zeros too" in l and "--weights auto" in l for l in notes(res)), res.stderr


def test_auto_weights_that_keep_every_layer_raw_say_why(tmp_path, mlperf_dir):
    res = cli("convert", mlperf_dir / "kws_ref_model.tflite", "-o", tmp_path / "o", "--weights", "auto")
    assert res.exit_code == 0, res.output
    line = next(l for l in notes(res) if "kept all 10 weight layers raw" in l)
    assert "op 0 CONV_2D" in line and ("smaller than raw" in line or "slower" in line), line
    assert "prune first" in line


def test_pass_on_a_constant_output_gets_a_note(tmp_path, mlperf_dir):
    """The last layer's weights and bias zeroed: every input gives the same output."""
    g = load_tflite(mlperf_dir / "ad01_int8.tflite")
    last = [op for op in g.ops if op.kind == "FULLY_CONNECTED"][-1]
    for t in last.inputs[1:]:
        if t >= 0:
            g.tensors[t].data = np.zeros_like(g.tensors[t].data)
    model = tmp_path / "flat.tflite"
    model.write_bytes(graph_to_tflite(g))
    out = tmp_path / "o"
    assert cli("convert", model, "-o", out).exit_code == 0
    res = cli("validate", out, "--random", "4")
    assert res.exit_code == 0 and "PASS" in res.output, res.output
    assert "all 4 samples gave the same output" in res.output, res.output
    res = cli("validate", out, "--random", "1")   # one sample: nothing to compare with
    assert "same output" not in res.output


def test_inspect_of_a_float_model_judges_its_int8_form(mlperf_dir):
    res = cli("inspect", mlperf_dir / "ad01_fp32.tflite")
    assert res.exit_code == 0, res.stderr
    assert "float model" in res.output and "--calib" in res.output
    assert " NO" not in res.output and "not supported" not in res.stderr
