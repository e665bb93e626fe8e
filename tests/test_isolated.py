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


# ------------------------------------------------------------------ the persistent worker
# (TensorFlow's converter runs in one: tinyc.quantize.prepare.CONVERTER)

def _count_to(n, progress=None):
    for k in range(n):
        progress("counting", k + 1, n)
    return os.getpid()


def test_worker_answers_calls_streams_progress_and_outlives_a_crash(monkeypatch):
    import ctypes
    from pathlib import Path

    from tinyc.isolated import Worker

    worker = Worker("the test child")
    with pytest.raises(TinycError, match="counting failed: the call cannot be read in the child"):
        worker.call(_count_to, 1, what="counting")     # this test module is not on the child's path
    worker.close()
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    try:
        seen = []
        pid = worker.call(_count_to, 3, what="counting", progress=lambda *a: seen.append(a))
        assert pid != os.getpid() and seen == [("counting", 1, 3), ("counting", 2, 3), ("counting", 3, 3)]
        assert worker.call(_count_to, 0, what="counting") == pid          # the same child answers again
        with pytest.raises(TinycError, match="reading failed: ValueError"):
            worker.call(int, "x", what="reading")
        # A native crash (a read at address 0) ends the call with one line, not the caller.
        with pytest.raises(TinycError, match=r"^the test child was killed by SIGSEGV while crashing \(.*\); mend it$"):
            worker.call(ctypes.string_at, 0, what="crashing", hint="mend it")
        assert worker.call(_count_to, 0, what="counting") not in (pid, os.getpid())   # a new child
    finally:
        worker.close()
