"""Putting firmware on a real Cortex-M board: pyOCD (the default), openocd or st-flash.

pyOCD is driven through its Python API (probe discovery, a Session for the board's target
type, FileProgrammer); openocd and st-flash run as the command lines in the board's
[flash] table. `flash_plan` says what would run without running it.

Board TOML:
  [pyocd]  target = "stm32f446retx"   (pyOCD target type; `pack` names the CMSIS-Pack
                                        part for targets pyOCD does not build in)
  [probe]  kind = "stlink"            (what tinyc.probes looks for)
  [flash]  openocd = [...], st-flash = [...]   ({elf}, {bin} and {probe} are filled in)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.tools import run_checked

TOOLS = ("pyocd", "openocd", "st-flash")
# how each command-line tool is told which probe to use
PROBE_ARGS = {"openocd": ["-c", "adapter serial {probe}"], "st-flash": ["--serial", "{probe}"]}
TIMEOUT = 120.0


def pyocd_target(board: Board) -> str:
    target = board.raw.get("pyocd", {}).get("target")
    if not target:
        raise TinycError(f"board {board.name} names no pyOCD target ([pyocd] target in {board.path}): "
                         "add it, or choose --tool openocd|st-flash")
    return target


def pyocd_knows(target: str) -> bool:
    """Whether pyOCD has the target type built in or from an installed CMSIS-Pack."""
    from pyocd.target import TARGET

    if target.lower() in TARGET:
        return True
    from pyocd.target.pack.pack_target import ManagedPacks

    return any(d.part_number.lower() == target.lower() for d in ManagedPacks.get_installed_targets())


def default_tool(board: Board) -> str:
    """pyOCD for every Cortex-M board that names a target; else the board's runner."""
    return "pyocd" if board.raw.get("pyocd", {}).get("target") else board.runner


def _command(board: Board, tool: str, elf: Path, probe: str | None) -> list[str]:
    if tool == "pyocd":
        argv = ["pyocd", "flash", "--target", pyocd_target(board)]
        return argv + (["--uid", probe] if probe else []) + [str(elf)]
    cmd = board.raw.get("flash", {}).get(tool)
    if not cmd:
        raise TinycError(f"board {board.name} has no {tool} command ([flash] {tool} in {board.path})")
    fill = {"elf": str(elf), "bin": str(Path(elf).with_suffix(".bin")), "probe": probe or ""}
    argv = [a.format(**fill) for a in cmd]
    if probe:   # openocd: after the interface and target files, before the first command
        at = argv.index("-c") if tool == "openocd" and "-c" in argv else 1
        argv[at:at] = [a.format(**fill) for a in PROBE_ARGS[tool]]
    return argv


def flash_plan(board: Board, elf: Path, *, tool: str | None = None, probe: str | None = None) -> list[str]:
    """The command line that flashes elf (for pyOCD: the CLI equivalent of the API calls)."""
    tool = tool or default_tool(board)
    if tool not in TOOLS:
        raise TinycError(f"unknown flashing tool '{tool}'; choose one of {', '.join(TOOLS)}")
    return _command(board, tool, elf, probe)


def flash_firmware(board: Board, elf: Path, *, tool: str | None = None, probe: str | None = None) -> str:
    """Write elf to the board; returns a line saying what did it (tool, probe)."""
    tool = tool or default_tool(board)
    if tool == "pyocd":
        return _flash_pyocd(board, elf, probe)
    argv = flash_plan(board, elf, tool=tool, probe=probe)
    if shutil.which(argv[0]) is None:
        raise TinycError(f"{argv[0]} not found: install it (apt: {'stlink-tools' if tool == 'st-flash' else tool}) "
                         "or use --tool pyocd")
    run_checked(argv, f"{tool} flashing {board.name}", TIMEOUT, "is the board connected?")
    return tool


def _flash_pyocd(board: Board, elf: Path, probe_id: str | None) -> str:
    target = pyocd_target(board)
    try:
        from pyocd.core import exceptions
        from pyocd.core.helpers import ConnectHelper
        from pyocd.core.session import Session
        from pyocd.flash.file_programmer import FileProgrammer
    except ImportError:
        raise TinycError("pyOCD is not installed: `make setup` (or pip install pyocd) installs it") from None
    probes = ConnectHelper.get_all_connected_probes(blocking=False, unique_id=probe_id, print_wait_message=False)
    if not probes:
        which = f"with id {probe_id} " if probe_id else ""
        raise TinycError(f"no debug probe {which}connected: pyOCD looked for ST-LINK, CMSIS-DAP and J-Link probes "
                         f"on USB to flash {board.name} (target {target}); plug one in (`tinyc probes` lists them)")
    if len(probes) > 1:
        ids = ", ".join(f"{p.unique_id} ({p.description})" for p in probes)
        raise TinycError(f"{len(probes)} debug probes connected: {ids}; choose one with --probe ID")
    if not pyocd_knows(target):
        pack = board.raw.get("pyocd", {}).get("pack", target)
        raise TinycError(f"pyOCD does not know target '{target}' of {board.name}: "
                         f"install its CMSIS-Pack with `pyocd pack install {pack}`")
    probe = probes[0]
    try:
        with Session(probe, target_override=target, auto_unlock=False, connect_mode="under-reset") as session:
            FileProgrammer(session).program(str(elf), file_format="elf")
            session.target.reset()
    except (exceptions.Error, OSError) as exc:
        raise TinycError(f"pyOCD failed to flash {board.name} through probe {probe.unique_id}: {exc}") from None
    return f"pyocd (probe {probe.unique_id}, target {target})"
