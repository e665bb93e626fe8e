"""`tinyc validate --jobs N`: samples shared over N emulator instances, the report still
complete and in sample order, and a session that dies mid-run loses no sample.

Real path throughout: firmware in QEMU on mps2-an386, its pty, the framed link, LiteRT
BUILTIN_REF. Instruction counts under -icount are deterministic, so a row from one
emulator equals the same sample's row from another, byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from faultrelay import FaultRelay
from tinyc.boards import load_board
from tinyc.errors import TinycError
from tinyc.link import T_RESULT, decode_frame
from tinyc.outdir import load_manifest
from tinyc.runners import open_session
from tinyc.runners.pool import infer_sharded
from tinyc.samples import random_inputs, to_record
from tinyc.validate import validate, validate_outdir

N = 10


def _rows(path):
    """The rows of a report but its run marker and final link row (their time and link counts
    differ from run to run)."""
    return [r for r in map(json.loads, path.read_text().splitlines()) if "run" not in r and "link" not in r]


def _killing_wrapper(started_emulators, relays, after_results, victims):
    """link_wrapper: a relay in front of each emulator; an emulator is killed once
    `after_results` RESULT frames have reached the host through its relay, until `victims`
    are dead (the first to get there dies first, however the jobs were scheduled)."""
    killed = []
    lock = threading.Lock()

    def is_result(unit):
        frame = decode_frame(unit[:-1])
        return frame is not None and frame.type == T_RESULT

    def wrap(pty):
        relay = FaultRelay(pty)
        relays.append(relay)
        victim = next(e for e in started_emulators if e.pty == pty)   # jobs start in parallel

        def kill():
            with lock:
                if len(killed) < victims:
                    killed.append(victim)
                    os.kill(victim.pid, signal.SIGKILL)
        relay.after_frames(after_results, kill, match=is_result)
        return relay.path
    return wrap


def _validate_killing(kws_an386, report, started_emulators, *, after_results, victims):
    """validate N samples over 2 emulators, the first `victims` killed after `after_results`."""
    relays = []
    wrap = _killing_wrapper(started_emulators, relays, after_results, victims)
    samples = random_inputs(load_manifest(kws_an386).inputs, N, seed=5)
    try:
        return validate(kws_an386, load_board("mps2-an386"), samples, report=report, jobs=2,
                        session_options={"link_wrapper": wrap, "timeout": 5.0})
    finally:
        for r in relays:
            r.close()


def test_jobs_2_gives_the_rows_of_jobs_1(kws_an386, tmp_path, started_emulators):
    board = load_board("mps2-an386")
    samples = random_inputs(load_manifest(kws_an386).inputs, N, seed=5)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    s1 = validate(kws_an386, board, samples, report=one, jobs=1)
    assert len(started_emulators) == 1
    s2 = validate(kws_an386, board, samples, report=two, jobs=2)
    assert len(started_emulators) == 3          # two more: one per job
    assert s1.error is None and s2.error is None, (s1.error, s2.error)
    assert s1.bit_exact == s2.bit_exact == N
    rows1, rows2 = _rows(one), _rows(two)
    assert [r["index"] for r in rows2] == list(range(N))
    assert rows2 == rows1                        # outputs (top-1, bit-exact) and instruction counts
    assert s2.cycles == s1.cycles and s2.lost_sessions == []


def test_pool_outputs_equal_one_session(kws_an386):
    board = load_board("mps2-an386")
    manifest = load_manifest(kws_an386)
    records = [to_record(s) for s in random_inputs(manifest.inputs, 6, seed=9)]
    with open_session(board, kws_an386, manifest=manifest) as s:
        single = [r.output for r in s.infer_many(records)]

    def open_one(k):
        return open_session(board, kws_an386, manifest=manifest)
    got = list(infer_sharded(open_one, records, 2))
    assert [i for i, _ in got] == list(range(6))
    assert [r.output for _, r in got] == single


def test_session_killed_midrun_loses_no_sample(kws_an386, tmp_path, started_emulators):
    """The first emulator to return 3 results is killed: its in-flight sample is run again on
    the other, and the report still has every sample once, in order, all bit-exact."""
    report = tmp_path / "killed.jsonl"
    s = _validate_killing(kws_an386, report, started_emulators, after_results=3, victims=1)
    assert s.error is None, s.as_dict()
    assert s.samples == N and s.bit_exact == N
    assert len(s.lost_sessions) == 1 and "killed by SIGKILL" in s.lost_sessions[0]
    assert sum(e.proc.returncode == -signal.SIGKILL for e in started_emulators) == 1
    rows = _rows(report)
    assert [r["index"] for r in rows] == list(range(N)) and all(r["bit_exact"] for r in rows)


def test_all_sessions_dying_keeps_what_was_measured_in_order(kws_an386, tmp_path, started_emulators):
    report = tmp_path / "dead.jsonl"
    s = _validate_killing(kws_an386, report, started_emulators, after_results=2, victims=2)
    assert s.error is not None and "all 2 board sessions failed" in s.error and "mid-run" in s.error
    assert s.samples == 4 and s.bit_exact == 4
    rows = _rows(report)
    indices = [r["index"] for r in rows if "index" in r]
    assert len(indices) == 4 and indices == sorted(indices)
    assert "error" in rows[-1]


def test_more_jobs_than_ports_is_refused(kws_an386):
    with pytest.raises(TinycError, match=r"--jobs 3 needs 3 serial ports, --port gives 2"):
        validate_outdir(kws_an386, "nucleo-f446re", None, None, 2, 0, None, "/dev/ttyACM0,/dev/ttyACM1", jobs=3)


def test_cli_jobs_2(kws_an386, tmp_path):
    report = tmp_path / "cli.jsonl"
    proc = subprocess.run([sys.executable, "-m", "tinyc.cli", "validate", str(kws_an386), "--board", "mps2-an386",
                           "--random", "4", "--jobs", "2", "--report", str(report)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact      4/4" in proc.stdout
    assert [r["index"] for r in _rows(report)] == [0, 1, 2, 3]
