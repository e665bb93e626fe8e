"""Linux boards (rpi4): the static `tinyc_server` speaking the protocol over a pty.

On a machine of the board's architecture the server runs natively; elsewhere under
qemu-user (qemu-aarch64 -L /usr/aarch64-linux-gnu). Either way it is started with --pty:
it prints "tinyc: serial on /dev/pts/N" and the host opens that path with pyserial, the
same client code as for a real serial port. A real Pi is reached with `--port` (its
server started by hand or by a service, listening on a serial device).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tinyc.boards import Board, board_arch, runs_natively
from tinyc.errors import TinycError
from tinyc.runners import serial_board
from tinyc.runners.process import PtyProcess, built_binary, pty_session
from tinyc.outdir import Manifest, load_manifest
from tinyc.runners.session import default_timeout

PTY_LINE = re.compile(r"tinyc: serial on (/dev/pts/\d+)")


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


class ServerProcess(PtyProcess):
    pty_line = PTY_LINE

    def __init__(self, cmd: list[str], *, start_timeout: float = 20.0):
        super().__init__(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_timeout=start_timeout)

    def start_error(self, start_timeout: float) -> str:
        return f"{' '.join(self.cmd[:2])} did not start within {start_timeout:g} s: {self.words()}"

    def exit_error(self, code: int) -> str:
        return (f"the board program ({self.cmd[0]}, pid {self.pid}) {self.ended(code)} "
                f"mid-run: {self.words()}")


def open_session(board: Board, outdir: Path, *, port: str | None = None, timeout: float | None = None,
                 model_hash: str | None = None, io=None, handshake_timeout: float = 20.0, link_wrapper=None,
                 manifest: Manifest | None = None, **kw):
    """With `port`: a Pi already running the server on that serial device. Without: start
    the server here (natively or under qemu-user) on a pty."""
    outdir = Path(outdir)
    if port:
        return serial_board.open_session(board, outdir, port=port, timeout=timeout, model_hash=model_hash,
                                         handshake_timeout=handshake_timeout, **kw)
    manifest = manifest if manifest is not None else load_manifest(outdir)
    timeout = timeout if timeout is not None else default_timeout(manifest)
    server = ServerProcess(server_command(board, built_binary(board, outdir)))
    where = "natively" if runs_natively(board) else "under qemu-user"
    session = pty_session(
        board, server, manifest, baud=115200, emulated=not runs_natively(board),
        link_name=lambda path: f"{path} ({board.name} {where})",
        no_answer=lambda path: f"the {board.name} server on {path} did not answer within {handshake_timeout:g} s",
        timeout=timeout, handshake_timeout=handshake_timeout, model_hash=model_hash, link_wrapper=link_wrapper)
    session.server = server
    return session


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
