"""No native abort reachable from user input: LiteRT interpreters that may abort run in a
child process (tinyc.isolated), whose death by a signal becomes one line naming the op."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.isolated import run_isolated
from tinyc.reference import reference_outputs


def _softmax_beta_model(mlperf_dir, beta=1e-9) -> bytes:
    """kws with SOFTMAX beta so small that LiteRT's reference softmax aborts in Prepare."""
    g = load_tflite(mlperf_dir / "kws_ref_model.tflite")
    op = next(op for op in g.ops if op.kind == "SOFTMAX")
    op.attrs["beta"] = beta
    return graph_to_tflite(g)


def test_reference_abort_becomes_one_line_naming_the_op(mlperf_dir):
    model = _softmax_beta_model(mlperf_dir)
    with pytest.raises(TinycError) as exc:
        reference_outputs(model, [[np.zeros((1, 49, 10, 1), np.int8)]])
    msg = str(exc.value)
    assert "SIGABRT" in msg and "SOFTMAX" in msg and "\n" not in msg


def test_reference_outputs_equal_in_process_reference(mlperf_dir):
    from tinyc.reference import Reference

    x = np.random.default_rng(1).integers(-128, 128, (3, 1, 640), dtype=np.int8)
    got = reference_outputs(mlperf_dir / "ad01_int8.tflite", [[s] for s in x])
    ref = Reference(mlperf_dir / "ad01_int8.tflite")
    assert all(np.array_equal(g[0], ref.run(s)[0]) for g, s in zip(got, x))


def test_a_child_killed_by_a_signal_and_errors_raised_in_it():
    with pytest.raises(TinycError, match=r"LiteRT was killed by SIGABRT while testing \(no message\); do this"):
        run_isolated(os.abort, what="testing", hint=lambda: "do this")
    with pytest.raises(TinycError, match="testing failed: ValueError"):
        run_isolated(int, "x", what="testing")
    assert run_isolated(sum, [1, 2, 3], what="testing") == 6


def test_validate_on_a_model_litert_aborts_on(tmp_path, mlperf_dir):
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(main, ["convert", str(mlperf_dir / "kws_ref_model.tflite"), "-o", str(out)]).exit_code == 0
    (out / "model.tflite").write_bytes(_softmax_beta_model(mlperf_dir))
    res = runner.invoke(main, ["validate", str(out), "--board", "host", "--random", "2"])
    assert res.exit_code != 0
    lines = [l for l in res.stderr.splitlines() if l.startswith("tinyc:")]
    assert len(lines) == 1 and "SIGABRT" in lines[0] and "SOFTMAX" in lines[0], res.stderr
