"""Running an external tool (a flasher, labgrid's client) under a time limit, its failure
turned into one line: the tool's last words."""

from __future__ import annotations

import shlex
import subprocess

from tinyc.errors import TinycError


def run_checked(argv: list[str], what: str, timeout: float, late: str) -> subprocess.CompletedProcess:
    """Run argv; TinycError "`what` failed: <last line>" on a non-zero exit, and
    "`what` did not finish within `timeout` s: `late`" when it hangs."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TinycError(f"{what} did not finish within {timeout:g} s: {late}") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise TinycError(f"{what} failed: {lines[-1] if lines else f'exit {proc.returncode}'} (ran: {shlex.join(argv)})")
    return proc
