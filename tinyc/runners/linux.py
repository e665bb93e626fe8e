"""Linux boards (rpi4): the static `tinyc_server` speaking the protocol over a pty.

On a machine of the board's architecture the server runs natively; elsewhere under
qemu-user (qemu-aarch64 -L /usr/aarch64-linux-gnu). Either way it is started with --pty:
it prints "tinyc: serial on /dev/pts/N" and the host opens that path with pyserial, the
same client code as for a real serial port. A real Pi is reached with `--port` (its
server started by hand or by a service, listening on a serial device).
"""

from __future__ import annotations

import os
import platform
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
from tinyc.runners import serial_board
from tinyc.runners.serial_board import DEFAULT_TIMEOUT, BoardSession, read_manifest, serial_open

PTY_LINE = re.compile(r"tinyc: serial on (/dev/pts/\d+)")
ARCH = {"rpi4": "aarch64"}


def board_arch(board: Board) -> str:
    return board.raw.get("arch", ARCH.get(board.name, "aarch64"))


def runs_natively(board: Board) -> bool:
    return board.runner == "native" or platform.machine() == board_arch(board)


def server_command(board: Board, binary: Path) -> list[str]:
    if runs_natively(board):
        return [str(binary), "--pty"]
    q = board.raw.get("qemu", {})
    qbin = q.get("binary", f"qemu-{board_arch(board)}")
    if shutil.which(qbin) is None:
        raise TinycError(f"{qbin} not found: board {board.name} needs the apt package "
                         f"{q.get('package', 'qemu-user')} (`make setup` installs it)")
    cmd = [qbin]
    if q.get("sysroot"):
        cmd += ["-L", q["sysroot"]]
    return cmd + [str(binary), "--pty"]


class ServerProcess:
    def __init__(self, cmd: list[str], *, start_timeout: float = 20.0):
        self.cmd = cmd
        self.lines: deque[str] = deque(maxlen=50)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.pid = self.proc.pid
        self._pty: str | None = None
        self._found = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._found.wait(start_timeout) or self._pty is None:
            self.kill()
            raise TinycError(f"{' '.join(cmd[:2])} did not start within {start_timeout:g} s: "
                             f"{'; '.join(self.lines) or 'no output'}")

    def _drain(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            m = PTY_LINE.search(line)
            if m and self._pty is None:
                self._pty = m.group(1)
                self._found.set()
        self._found.set()

    @property
    def pty(self) -> str:
        assert self._pty is not None
        return self._pty

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            words = "; ".join(l for l in self.lines if not PTY_LINE.search(l)) or "no output"
            raise TinycError(f"the board program ({self.cmd[0]}, pid {self.pid}) exited with code {code} "
                             f"mid-run: {words}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=3)
            except ProcessLookupError:
                pass

    def finish(self, timeout: float = 5.0) -> int | None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        return self.proc.returncode


def server_binary(board: Board, outdir: Path) -> Path:
    binary = build_dir(outdir, board) / "tinyc_server"
    if not binary.exists():
        raise TinycError(f"{binary} is missing: run `tinyc build {outdir} --board {board.name}`")
    return binary


def open_session(board: Board, outdir: Path, *, port: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 model_hash: str | None = None, io=None, handshake_timeout: float = 20.0, link_wrapper=None, **kw):
    """With `port`: a Pi already running the server on that serial device. Without: start
    the server here (natively or under qemu-user) on a pty."""
    outdir = Path(outdir)
    if port:
        return serial_board.open_session(board, outdir, port=port, timeout=timeout, model_hash=model_hash,
                                         handshake_timeout=handshake_timeout, **kw)
    manifest = read_manifest(outdir)
    server = ServerProcess(server_command(board, server_binary(board, outdir)))
    stream = None
    try:
        path = link_wrapper(server.pty) if link_wrapper else server.pty
        try:
            stream = serial_open(path, 115200)
        except TinycError:
            time.sleep(0.2)
            server.check_alive()
            raise
        where = "natively" if runs_natively(board) else "under qemu-user"
        link = Link(stream, name=f"{path} ({board.name} {where})", timeout=timeout, alive=server.check_alive)
        try:
            link.handshake(timeout=handshake_timeout, expect_hash=model_hash or manifest.get("model_hash"))
        except LinkTimeout:
            server.check_alive()
            raise TinycError(f"the {board.name} server on {path} did not answer within {handshake_timeout:g} s") from None
        total_in = sum(int(t["bytes"]) for t in manifest.get("inputs", []))
        session = BoardSession(link, board, emulated=not runs_natively(board), timeout=timeout,
                               on_close=server.finish, expect_inputs=total_in or None)
        session.server = server
        return session
    except BaseException:
        if stream is not None:
            stream.close()
        server.kill()
        raise


def deploy_ssh(binary: Path, host: str, remote_path: str = "~/tinyc_server") -> str:
    """Copy the server to a Pi over ssh (scp); returns the remote path."""
    if shutil.which("scp") is None:
        raise TinycError("scp not found: install openssh-client to deploy to a Pi")
    try:
        proc = subprocess.run(["scp", "-q", "-o", "BatchMode=yes", str(binary), f"{host}:{remote_path}"],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise TinycError(f"copying to {host} timed out after 120 s: is the Pi reachable?") from None
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        raise TinycError(f"copying the server to {host} failed: {lines[-1] if lines else proc.returncode}")
    return remote_path
