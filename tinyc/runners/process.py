"""A board program run here (QEMU, or the Linux server natively / under qemu-user) that
announces a pty on its output; and the protocol session over that pty.

The program is started in its own session, its output drained by a thread (the last 50
lines kept for error messages), and always ended by its PID: SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.link import Link, LinkTimeout
from tinyc.outdir import Manifest, binary_path
from tinyc.runners.serial_board import BoardSession, serial_open


def built_binary(board: Board, outdir: Path) -> Path:
    """outdir's firmware or server for board; a TinycError saying how to build it if missing."""
    path = binary_path(outdir, board)
    if not path.exists():
        raise TinycError(f"{path} is missing: run `tinyc build {outdir} --board {board.name}`")
    return path


class PtyProcess:
    """One board program: started, its pty found, its output drained, ended by PID.

    Subclasses set `pty_line` (the regex whose group 1 is the pty path) and word the two
    errors: `start_error(start_timeout)` and `exit_error(code)`.
    """

    pty_line: re.Pattern

    def __init__(self, cmd: list[str], *, stdout, stderr, start_timeout: float = 20.0,
                 max_seconds: float | None = None):
        self.cmd = cmd
        self.lines: deque[str] = deque(maxlen=50)      # every output line
        self.later: deque[str] = deque(maxlen=50)      # the lines after the pty announcement
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self._pty: str | None = None
        self._found = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self._watchdog = None
        if max_seconds is not None:  # a wall-clock limit on the whole run
            self._watchdog = threading.Timer(max_seconds, self.kill)
            self._watchdog.daemon = True
            self._watchdog.start()
        if not self._found.wait(start_timeout) or self._pty is None:
            self.kill()
            raise TinycError(self.start_error(start_timeout))

    def start_error(self, start_timeout: float) -> str:
        raise NotImplementedError

    def exit_error(self, code: int) -> str:
        raise NotImplementedError

    def _drain(self) -> None:
        out = self.proc.stdout if self.proc.stdout is not None else self.proc.stderr
        for raw in iter(out.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            if self._pty is not None:
                self.later.append(line)
            m = self.pty_line.search(line)
            if m and self._pty is None:
                self._pty = m.group(1)
                self._found.set()
        self._found.set()  # EOF: the program is gone

    @property
    def pty(self) -> str:
        assert self._pty is not None
        return self._pty

    def words(self, last: int | None = None, skip_blank: bool = False) -> str:
        """The program's output lines, '; '-joined: once it is running, only those after the
        pty announcement (start-up warnings say nothing about why a run ended)."""
        lines = self.later if self._pty is not None else self.lines
        words = [l for l in lines if (l or not skip_blank) and not self.pty_line.search(l)]
        return "; ".join(words if last is None else words[-last:]) or "no output"

    @staticmethod
    def ended(code: int) -> str:
        """'exited with code N' or 'was killed by SIGKILL'."""
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise TinycError(self.exit_error(code))

    def kill(self) -> None:
        """End the program by its PID (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=3)
            except ProcessLookupError:
                pass
        if self._watchdog is not None:
            self._watchdog.cancel()

    def finish(self, timeout: float = 5.0) -> int | None:
        """Wait for a clean exit (after EXIT), else kill; returns the exit code."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        return self.proc.returncode


def pty_session(board: Board, proc: PtyProcess, manifest: Manifest, *, baud: int, emulated: bool,
                link_name: Callable[[str], str], no_answer: Callable[[str], str], timeout: float,
                handshake_timeout: float, model_hash: str | None, link_wrapper=None) -> BoardSession:
    """Open proc's pty, handshake, and return a BoardSession that ends proc on close.

    `link_name(path)` names the link; `no_answer(path)` is the error when the handshake
    times out. On any failure proc is killed. `link_wrapper(pty) -> path` may put something
    between the host and the pty (tests use a fault-injecting relay).
    """
    stream = None
    try:
        path = link_wrapper(proc.pty) if link_wrapper else proc.pty
        try:
            stream = serial_open(path, baud)
        except TinycError:
            time.sleep(0.2)
            proc.check_alive()  # a clearer message when the program is what went away
            raise
        link = Link(stream, name=link_name(path), timeout=timeout, alive=proc.check_alive)
        try:
            link.handshake(timeout=handshake_timeout, expect_hash=model_hash or manifest.model_hash)
        except LinkTimeout:
            proc.check_alive()
            raise TinycError(no_answer(path)) from None
        return BoardSession(link, board, emulated=emulated, timeout=timeout, on_close=proc.finish,
                            expect_inputs=manifest.input_bytes_total)
    except BaseException:
        if stream is not None:
            stream.close()
        proc.kill()
        raise
