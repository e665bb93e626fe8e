"""The board-farm path: `tinyc validate OUT --labgrid ENV.yaml [--place NAME]` on
mps2-an386, with no hardware.

labgrid's QEMUDriver boots the bare-metal firmware (its `kernel` image) and its console
carries the tinyc protocol; with --place a local labgrid coordinator (gRPC on loopback,
started here and ended by PID) hands out the place, which tinyc acquires and releases.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyc.boards import load_board
from tinyc.outdir import load_manifest
from tinyc.samples import random_inputs
from tinyc.validate import validate

ENV = Path(__file__).resolve().parents[1] / "examples" / "labgrid" / "mps2-an386-qemu.yaml"
BIN = Path(sys.executable).parent


def _tinyc(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tinyc.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def _rows(path):
    """The per-sample rows of a report (the run marker's time differs from run to run)."""
    return [r for r in map(json.loads, path.read_text().splitlines()) if "index" in r]


def test_labgrid_qemu_driver_validates_kws_bit_exact(kws_an386, tmp_path):
    """Through labgrid's QEMUDriver: bit-exact, and each row equals the row of tinyc's own
    QEMU runner (same instruction counts: the same emulated board, -icount both ways)."""
    board = load_board("mps2-an386")
    samples = random_inputs(load_manifest(kws_an386).inputs, 4, seed=7)
    via_lab, direct = tmp_path / "lab.jsonl", tmp_path / "direct.jsonl"
    s = validate(kws_an386, board, samples, report=via_lab, session_options={"labgrid": ENV})
    assert s.error is None and s.samples == 4 and s.bit_exact == 4, s.as_dict()
    validate(kws_an386, board, samples, report=direct)
    assert _rows(via_lab) == _rows(direct)


@pytest.fixture
def coordinator(tmp_path):
    """A labgrid coordinator on a free loopback port; yields its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    proc = subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", address], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield address
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _client(address, *args):
    return subprocess.run([str(BIN / "labgrid-client"), "-x", address, *args], capture_output=True, text=True,
                          timeout=60)


def test_place_is_acquired_and_released(kws_an386, tmp_path, coordinator):
    assert _client(coordinator, "-p", "an386-1", "create").returncode == 0
    env = {**os.environ, "LG_COORDINATOR": coordinator, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = _tinyc("validate", str(kws_an386), "--board", "mps2-an386", "--random", "2", "--labgrid", str(ENV),
                  "--place", "an386-1", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact      2/2" in proc.stdout
    show = _client(coordinator, "-p", "an386-1", "show")
    assert "acquired: None" in show.stdout, show.stdout
    # a place nobody made: one line naming the client's complaint, and nothing left acquired
    proc = _tinyc("validate", str(kws_an386), "--board", "mps2-an386", "--random", "2", "--labgrid", str(ENV),
                  "--place", "no-such-place", env=env)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyc: error: labgrid-client -p no-such-place acquire failed")


def test_labgrid_and_jobs_are_refused_together(kws_an386):
    proc = _tinyc("validate", str(kws_an386), "--board", "mps2-an386", "--labgrid", str(ENV), "--jobs", "2")
    assert proc.returncode != 0
    assert proc.stderr.strip() == ("tinyc: error: --labgrid runs on the one place the environment names: "
                                   "drop --jobs and --port")


def test_labgrid_client_is_installed():
    assert shutil.which("labgrid-client", path=str(BIN)) and shutil.which("labgrid-coordinator", path=str(BIN))
