"""Boards: one TOML file each in boards/.

Keys (all boards):
  name, description
  kind          "host" | "linux" | "mcu"
  runner        "host" | "qemu-user" | "qemu-system" | "openocd" | "st-flash" | "pyocd" | "ssh"
  cc            compiler command (e.g. "cc", "arm-none-eabi-gcc")
  cflags        list of compiler flags for the CPU (e.g. ["-mcpu=cortex-m4", "-mthumb"])
  ldflags       list of linker flags
  flash_bytes, ram_bytes   0 = unlimited (host)
  clock_hz
  cycle_source  "clock" | "systick" | "dwt" | "instructions"
Further keys (qemu machine, uart, linker script, serial port, baud, ...) are read by the
runners that need them and kept in `Board.raw`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tinyc.errors import TinycError
from tinyc.resources import boards_dir

DEFAULT_BOARD = "host"


@dataclass
class Board:
    name: str
    description: str
    kind: str
    runner: str
    cc: str
    cflags: list[str] = field(default_factory=list)
    ldflags: list[str] = field(default_factory=list)
    flash_bytes: int = 0
    ram_bytes: int = 0
    clock_hz: int = 0
    cycle_source: str = "clock"
    raw: dict = field(default_factory=dict)
    path: Path | None = None


def board_names() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def load_board(name: str) -> Board:
    path = boards_dir() / f"{name}.toml"
    if not path.is_file():
        raise TinycError(f"unknown board '{name}'; known boards: {', '.join(board_names())}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TinycError(f"board file {path} is not valid TOML: {exc}") from None
    try:
        return Board(
            name=raw.get("name", name),
            description=raw.get("description", ""),
            kind=raw["kind"],
            runner=raw["runner"],
            cc=raw["cc"],
            cflags=list(raw.get("cflags", [])),
            ldflags=list(raw.get("ldflags", [])),
            flash_bytes=int(raw.get("flash_bytes", 0)),
            ram_bytes=int(raw.get("ram_bytes", 0)),
            clock_hz=int(raw.get("clock_hz", 0)),
            cycle_source=raw.get("cycle_source", "clock"),
            raw=raw,
            path=path,
        )
    except KeyError as exc:
        raise TinycError(f"board file {path} lacks the key {exc.args[0]}") from None


def load_all_boards() -> list[Board]:
    return [load_board(n) for n in board_names()]


def board_arch(board: Board) -> str:
    """The CPU a Linux board's server is built for."""
    return board.raw.get("arch", "aarch64")


def runs_natively(board: Board) -> bool:
    """A Linux board's server runs on this machine without qemu-user."""
    import platform

    return board.runner == "native" or platform.machine() == board_arch(board)


def runner_status(board: Board) -> tuple[bool, str]:
    """(available, why): can this machine build and run the board right now?"""
    import shutil

    if board.runner == "host":
        ok = shutil.which(board.cc) is not None
        return ok, "local process" if ok else f"{board.cc} not found"
    if shutil.which(board.cc) is None:
        return False, f"{board.cc} missing (apt: {board.raw.get('toolchain_package', '?')})"
    if board.runner == "qemu-system":
        q = board.raw.get("qemu", {})
        binary = q.get("binary", "qemu-system-arm")
        if shutil.which(binary) is None:
            return False, f"{binary} missing (apt: {q.get('package', 'qemu-system-arm')})"
        return True, f"{binary} -M {q.get('machine', board.name)}"
    if board.runner in ("qemu-user", "native"):
        if runs_natively(board):
            return True, "native"
        q = board.raw.get("qemu", {})
        binary = q.get("binary", f"qemu-{board_arch(board)}")
        if shutil.which(binary) is None:
            return False, f"{binary} missing (apt: {q.get('package', 'qemu-user')})"
        return True, binary
    if board.runner in ("openocd", "st-flash", "pyocd"):
        tools = [c[0] for c in board.raw.get("flash", {}).values()] or [board.runner]
        if board.raw.get("pyocd", {}).get("target"):
            import importlib.util

            tools.insert(0, "pyocd")
        found = [t for t in tools if (importlib.util.find_spec("pyocd") if t == "pyocd" else shutil.which(t))]
        port = board.raw.get("serial", {}).get("port", "")
        sibling = board.raw.get("emulated_sibling")
        note = f" (emulated sibling: {sibling})" if sibling else ""
        if not found:
            return False, f"real board: needs {' or '.join(tools)} and a board on {port or '--port'}{note}"
        return True, f"real board via {found[0]} on {port or '--port'}{note}"
    return False, f"unknown runner {board.runner}"
