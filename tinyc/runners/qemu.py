"""Emulated microcontrollers: qemu-system-arm running the firmware, its UART on a pty.

QEMU is started with -icount shift=0 (one instruction = 1 ns of virtual time, so SysTick
counts are deterministic instruction counts) and semihosting (the firmware's EXIT ends
the emulator with its code). It always runs under a wall-clock limit and is ended by its
PID. If it dies mid-run, the session raises a TinycError saying so, with its last words.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

from tinyc.boards import Board
from tinyc.build import build_dir
from tinyc.errors import TinycError
from tinyc.link import Link, LinkTimeout
from tinyc.runners.serial_board import DEFAULT_TIMEOUT, BoardSession, read_manifest, serial_open

PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")
MAX_SECONDS = 6 * 3600.0   # wall-clock limit of one emulator run


def qemu_command(board: Board, elf: Path) -> list[str]:
    q = board.raw.get("qemu", {})
    binary = q.get("binary", "qemu-system-arm")
    if shutil.which(binary) is None:
        raise TinycError(f"{binary} not found: board {board.name} needs the apt package "
                         f"{q.get('package', 'qemu-system-arm')} (`make setup` installs it)")
    machine = q.get("machine", board.name)
    return [binary, "-M", machine, "-display", "none", "-monitor", "none", "-nodefaults",
            "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
            "-kernel", str(elf), "-serial", "pty", *q.get("extra_args", [])]


class QemuProcess:
    """One emulator: started, its pty found, its output drained, ended by PID."""

    def __init__(self, cmd: list[str], *, start_timeout: float = 20.0, max_seconds: float = MAX_SECONDS):
        self.cmd = cmd
        self.lines: deque[str] = deque(maxlen=50)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        self._pty: str | None = None
        self._found = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        self._watchdog = threading.Timer(max_seconds, self.kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        if not self._found.wait(start_timeout) or self._pty is None:
            self.kill()
            raise TinycError(f"{cmd[0]} did not start within {start_timeout:g} s: {self.last_words()}")

    def _drain(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            m = PTY_LINE.search(line)
            if m and self._pty is None:
                self._pty = m.group(1)
                self._found.set()
        self._found.set()  # EOF: QEMU is gone

    @property
    def pty(self) -> str:
        assert self._pty is not None
        return self._pty

    def last_words(self) -> str:
        words = [l for l in self.lines if l and not PTY_LINE.search(l)]
        return "; ".join(words[-3:]) or "no output"

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise TinycError(f"the emulator ({self.cmd[0]} -M {self.cmd[2]}, pid {self.pid}) exited with code "
                             f"{code} mid-run: {self.last_words()}")

    def kill(self) -> None:
        """End QEMU by its PID (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=3)
            except ProcessLookupError:
                pass
        self._watchdog.cancel()

    def finish(self, timeout: float = 5.0) -> int | None:
        """Wait for a clean exit (after EXIT), else kill; returns the exit code."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        return self.proc.returncode


def firmware_elf(board: Board, outdir: Path) -> Path:
    elf = build_dir(outdir, board) / "firmware.elf"
    if not elf.exists():
        raise TinycError(f"{elf} is missing: run `tinyc build {outdir} --board {board.name}`")
    return elf


def open_session(board: Board, outdir: Path, *, port: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 model_hash: str | None = None, io=None, handshake_timeout: float = 20.0,
                 max_seconds: float = MAX_SECONDS, link_wrapper=None, **_):
    """Start QEMU on the board's firmware and handshake over its pty.

    `port` is ignored (QEMU makes its own pty). `link_wrapper(pty) -> path` may put
    something between the host and the emulated UART (tests use a fault-injecting relay).
    """
    outdir = Path(outdir)
    manifest = read_manifest(outdir)
    elf = firmware_elf(board, outdir)
    qemu = QemuProcess(qemu_command(board, elf), max_seconds=max_seconds)
    stream = None
    try:
        path = link_wrapper(qemu.pty) if link_wrapper else qemu.pty
        try:
            stream = serial_open(path, int(board.raw.get("uart", {}).get("baud", 115200)))
        except TinycError:
            time.sleep(0.2)
            qemu.check_alive()  # a clearer message when the emulator is what went away
            raise
        link = Link(stream, name=f"{path} ({board.name} in QEMU)", timeout=timeout, alive=qemu.check_alive)
        try:
            link.handshake(timeout=handshake_timeout, expect_hash=model_hash or manifest.get("model_hash"))
        except LinkTimeout:
            qemu.check_alive()
            raise TinycError(f"the firmware in QEMU ({board.name}, {path}) did not answer within "
                             f"{handshake_timeout:g} s: {qemu.last_words()}") from None
        total_in = sum(int(t["bytes"]) for t in manifest.get("inputs", []))
        session = BoardSession(link, board, emulated=True, timeout=timeout, on_close=qemu.finish,
                               expect_inputs=total_in or None)
        session.qemu = qemu
        return session
    except BaseException:
        if stream is not None:
            stream.close()
        qemu.kill()
        raise
