"""Runs that cannot hang and builds that cannot be stale: every runner has a deadline (a
host binary that never answers is ended with a clear error), and a host build is judged by
the content of its sources and flags, not by file dates."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from click.testing import CliRunner

from tinyc.cli import main
from tinyc.outdir import binary_path
from tinyc.boards import load_board


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_error_line(res) -> str:
    assert res.exit_code != 0, res.output
    lines = [l for l in res.stderr.splitlines() if l.strip() and not l.lstrip().startswith(("validate:", "run:"))]
    assert len(lines) == 1 and lines[0].startswith("tinyc: error: "), res.stderr
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr
    return lines[0]


@pytest.fixture()
def ad01(tmp_path, mlperf_dir):
    out = tmp_path / "ad01"
    assert cli("convert", mlperf_dir / "ad01_int8.tflite", "-o", out).exit_code == 0
    assert cli("build", out, "--board", "host").exit_code == 0
    return out


def _hang(out):
    """Replace the built host binary by one that reads nothing and never answers (its
    sources are unchanged, so the build stays fresh and this is what runs)."""
    binary = binary_path(out, load_board("host"))
    binary.write_text("#!/bin/sh\nexec sleep 600\n")
    binary.chmod(0o755)


def test_a_hung_host_binary_is_ended_with_a_clear_timeout(ad01, tmp_path):
    _hang(ad01)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 640), np.int8))
    t0 = time.monotonic()
    res = cli("run", ad01, "--input", x, "--output", tmp_path / "y.npy", "--timeout", "1")
    line = one_error_line(res)
    assert "no reply within 1 s" in line and "--timeout" in line, line
    assert not (tmp_path / "y.npy").exists()
    res = cli("validate", ad01, "--random", "2", "--timeout", "0.5")
    line = one_error_line(res)
    assert "no reply within 0.5 s" in line, line
    assert time.monotonic() - t0 < 30


def test_timeout_and_baud_are_checked(ad01):
    assert "--timeout" in one_error_line(cli("validate", ad01, "--timeout", "0"))
    assert "--timeout" in one_error_line(cli("validate", ad01, "--timeout", "-2"))
    line = one_error_line(cli("validate", ad01, "--board", "host", "--baud", "9600"))
    assert "--baud" in line and "drop --baud" in line, line
    line = one_error_line(cli("validate", ad01, "--board", "mps2-an386", "--port", "/dev/ttyACM0"))
    assert "--port" in line and "emulator" in line, line


def test_a_build_restored_with_old_dates_is_rebuilt(ad01, tmp_path, mlperf_dir):
    """Another model's OUTDIR copied over this one with old file dates (as tar -x, cp -p or
    rsync -t leave them): the binary is newer than every source, yet must be rebuilt."""
    kws = tmp_path / "kws"
    assert cli("convert", mlperf_dir / "kws_ref_model.tflite", "-o", kws).exit_code == 0
    old = time.time() - 10 * 365 * 86400
    for p in kws.iterdir():
        if p.is_file():
            shutil.copy2(p, ad01 / p.name)
            os.utime(ad01 / p.name, (old, old))
    res = cli("build", ad01, "--board", "host")
    assert res.exit_code == 0 and res.output.startswith("built "), res.output
    res = cli("build", ad01, "--board", "host")
    assert res.output.startswith("up to date: "), res.output
    res = cli("validate", ad01, "--board", "host", "--random", "3")
    assert res.exit_code == 0 and "bit-exact      3/3" in res.output, res.output


def test_a_missing_source_is_named(ad01):
    (ad01 / "weights.h").unlink()
    line = one_error_line(cli("build", ad01, "--board", "host"))
    assert "weights.h is missing" in line and "convert" in line, line
