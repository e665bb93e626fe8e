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
