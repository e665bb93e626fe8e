"""Emulated microcontrollers: qemu-system-arm running the firmware, its UART on a pty.

QEMU is started with -icount shift=0 (one instruction = 1 ns of virtual time, so SysTick
counts are deterministic instruction counts) and semihosting (the firmware's EXIT ends
the emulator with its code). It always runs under a wall-clock limit and is ended by its
PID. If it dies mid-run, the session raises a TinycError saying so, with its last words.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.runners.process import PtyProcess, built_binary, pty_session
from tinyc.outdir import Manifest, load_manifest
from tinyc.runners.session import default_timeout

PTY_LINE = re.compile(r"char device redirected to (/dev/pts/\d+)")
QEMU_WARNING = re.compile(r"^qemu-system-\w+: warning: ")
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


class QemuProcess(PtyProcess):
    """One emulator: started, its pty found, its output drained, ended by PID."""

    pty_line = PTY_LINE

    def __init__(self, cmd: list[str], *, start_timeout: float = 20.0, max_seconds: float = MAX_SECONDS):
        super().__init__(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_timeout=start_timeout,
                         max_seconds=max_seconds)

    def last_words(self) -> str:
        """QEMU's last lines, without its start-up warnings (e.g. 'nic lan9118.0 has no peer')."""
        said = [w for w in self.words(skip_blank=True).split("; ") if not QEMU_WARNING.match(w)]
        return "; ".join(said[-3:]) or "no output"

    def start_error(self, start_timeout: float) -> str:
        return f"{self.cmd[0]} did not start within {start_timeout:g} s: {self.last_words()}"

    def exit_error(self, code: int) -> str:
        said = ("(a signal from outside: another process or the out-of-memory killer)" if code < 0
                else self.last_words())
        return f"the emulator ({self.cmd[0]} -M {self.cmd[2]}, pid {self.pid}) {self.ended(code)} mid-run: {said}"


def open_session(board: Board, outdir: Path, *, port: str | None = None, timeout: float | None = None,
                 model_hash: str | None = None, io=None, handshake_timeout: float = 20.0,
                 max_seconds: float = MAX_SECONDS, link_wrapper=None, manifest: Manifest | None = None, **_):
    """Start QEMU on the board's firmware and handshake over its pty.

    `port` is ignored (QEMU makes its own pty). `link_wrapper(pty) -> path` may put
    something between the host and the emulated UART (tests use a fault-injecting relay).
    """
    outdir = Path(outdir)
    manifest = manifest if manifest is not None else load_manifest(outdir)
    timeout = timeout if timeout is not None else default_timeout(manifest)
    elf = built_binary(board, outdir)
    qemu = QemuProcess(qemu_command(board, elf), max_seconds=max_seconds)
    session = pty_session(
        board, qemu, manifest, baud=int(board.raw.get("uart", {}).get("baud", 115200)), emulated=True,
        link_name=lambda path: f"{path} ({board.name} in QEMU)",
        no_answer=lambda path: (f"the firmware in QEMU ({board.name}, {path}) did not answer within "
                                f"{handshake_timeout:g} s: {qemu.last_words()}"),
        timeout=timeout, handshake_timeout=handshake_timeout, model_hash=model_hash, link_wrapper=link_wrapper)
    session.qemu = qemu
    return session
