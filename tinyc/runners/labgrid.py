"""Boards in a labgrid farm: `tinyc validate OUT --labgrid ENV.yaml [--place NAME]`.

The labgrid environment file describes the target (role `main`) with the drivers a lab
already has for the board; tinyc uses them by protocol, not by name:

- a console (ConsoleProtocol: SerialDriver on a local or exported serial port, or
  QEMUDriver's own socket) carries the tinyc serial protocol;
- the firmware goes on through a BootstrapProtocol driver (OpenOCDDriver,
  FlashScriptDriver, ... `load(elf)`), or, for QEMUDriver, as the image its `kernel` key names;
- a PowerProtocol driver, when there is one, is cycled after flashing so the board starts
  the new firmware; QEMUDriver is powered on (started) and off (quit over QMP).

With --place, the place is acquired with `labgrid-client` before the environment is used
(its RemotePlace resource then finds the exported resources through the coordinator) and
released afterwards, also on failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.link import Link, LinkTimeout
from tinyc.outdir import Manifest, load_manifest
from tinyc.runners.process import built_binary
from tinyc.runners.serial_board import DEFAULT_TIMEOUT, BoardSession
from tinyc.tools import run_checked

CLIENT_TIMEOUT = 60.0


class ConsoleStream:
    """A labgrid console driver as the byte stream tinyc.link reads and writes (pyserial's
    read / write / timeout / in_waiting)."""

    CHUNK = 4096

    def __init__(self, console):
        self.console = console
        self.timeout = 0.2
        self.buffer = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self.buffer)

    def read(self, n: int = 1) -> bytes:
        from pexpect import TIMEOUT

        if not self.buffer:
            try:   # whatever has arrived, in one call: consoles sleep a little per read
                self.buffer += self.console.read(size=1, timeout=self.timeout, max_size=self.CHUNK)
            except TIMEOUT:
                return b""
        out = bytes(self.buffer[:max(1, n)])
        del self.buffer[:len(out)]
        return out

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:   # a console may take part of it (QEMUDriver's socket is non-blocking)
            try:
                sent = self.console.write(bytes(view))
            except BlockingIOError:
                sent = 0
            view = view[sent or 0:]
        return len(data)

    def close(self) -> None:
        pass


def _client(args: list[str], coordinator: str | None) -> None:
    exe = shutil.which("labgrid-client")
    if exe is None:
        raise TinycError("labgrid-client not found: `make setup` (or pip install labgrid) installs it")
    cmd = [exe] + (["-x", coordinator] if coordinator else []) + args
    run_checked(cmd, f"labgrid-client {' '.join(args)}", CLIENT_TIMEOUT, "is the coordinator running?")


class LabgridBoard:
    """One labgrid target: acquired (with a place), flashed, powered, and given back."""

    def __init__(self, env_path: Path, place: str | None = None, coordinator: str | None = None):
        try:
            from labgrid import Environment
        except ImportError:
            raise TinycError("labgrid is not installed: `make setup` (or pip install labgrid) installs it") from None
        self.place, self.coordinator = place, coordinator or os.environ.get("LG_COORDINATOR")
        if place:
            os.environ["LG_PLACE"] = place   # what a RemotePlace's `name: !template $LG_PLACE` reads
            _client(["-p", place, "acquire"], self.coordinator)
        try:
            self.env = Environment(str(env_path))
            self.target = self.env.get_target("main")
            if self.target is None:
                raise TinycError(f"{env_path} has no target named 'main'")
        except TinycError:
            self.release()
            raise
        except Exception as exc:  # labgrid's own config errors: one line
            self.release()
            raise TinycError(f"labgrid cannot use {env_path}: {exc}") from None
        self.power = None

    def driver(self, protocol: str, activate: bool = True):
        try:
            return self.target.get_driver(protocol, activate=activate)
        except Exception:  # labgrid's NoDriverFoundError (and friends): the target has none
            return None

    def flash_and_start(self, elf: Path) -> str:
        """Put elf on the board and start it; returns how."""
        qemu = self.driver("QEMUDriver", activate=False)
        if qemu is not None:
            if not qemu.kernel:
                raise TinycError("the QEMUDriver of the labgrid target names no `kernel` image for the firmware")
            self.env.config.data.setdefault("images", {})[qemu.kernel] = str(Path(elf).resolve())
            self.target.activate(qemu)
            qemu.on()
            self.power = qemu
            return "QEMUDriver"
        loader = self.driver("BootstrapProtocol")
        if loader is None:
            raise TinycError("the labgrid target has no flashing driver (BootstrapProtocol: OpenOCDDriver, "
                             "FlashScriptDriver, ...) and no QEMUDriver")
        loader.load(str(elf))
        self.power = self.driver("PowerProtocol")
        if self.power is not None:
            self.power.cycle()
        return type(loader).__name__

    def console(self):
        console = self.driver("ConsoleProtocol")
        if console is None:
            raise TinycError("the labgrid target has no console driver (SerialDriver, QEMUDriver)")
        return console

    def close(self) -> None:
        try:
            if self.power is not None and type(self.power).__name__ == "QEMUDriver":
                try:
                    self.power.off()
                except Exception:  # noqa: BLE001 - QEMU already gone; the driver's cleanup ends it otherwise
                    pass
        finally:
            try:
                self.env.cleanup()
            finally:
                self.release()

    def release(self) -> None:
        if self.place:
            place, self.place = self.place, None
            _client(["-p", place, "release"], self.coordinator)


def open_session(board: Board, outdir: Path, *, labgrid: Path, place: str | None = None,
                 coordinator: str | None = None, timeout: float = DEFAULT_TIMEOUT, model_hash: str | None = None,
                 handshake_timeout: float = 20.0, manifest: Manifest | None = None, **_) -> BoardSession:
    """Flash outdir's firmware through the labgrid target's drivers and handshake over its console."""
    outdir = Path(outdir)
    manifest = manifest if manifest is not None else load_manifest(outdir)
    elf = built_binary(board, outdir)
    lab = LabgridBoard(Path(labgrid), place, coordinator)
    try:
        how = lab.flash_and_start(elf)
        console = lab.console()
        name = f"labgrid {place or Path(labgrid).name} ({how})"
        link = Link(ConsoleStream(console), name=name, timeout=timeout,
                    baud=int(board.raw.get("uart", {}).get("baud", 115200)))
        try:
            link.handshake(timeout=handshake_timeout, expect_hash=model_hash or manifest.model_hash)
        except LinkTimeout:
            raise TinycError(f"the firmware on {name} did not answer within {handshake_timeout:g} s") from None
        emulated = board.runner == "qemu-system"
        return BoardSession(link, board, emulated=emulated, timeout=timeout, on_close=lab.close,
                            expect_inputs=manifest.input_bytes_total, say_exit=False)
    except BaseException:
        lab.close()
        raise
