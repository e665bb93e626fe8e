"""Compile OUTDIR's C for a board: the host harness here (host.py), firmware and Linux
servers with the board's cross toolchain (firmware.py), every tool run by toolchain.py.

`build_and_record` also writes the measured sizes into OUTDIR's manifest."""

from __future__ import annotations

from pathlib import Path

from tinyc.boards import Board
from tinyc.build.firmware import build_firmware, memory_layout
from tinyc.build.host import build_host
from tinyc.build.ram import ram_summary
from tinyc.build.toolchain import BuildResult
from tinyc.outdir import Manifest, require_sources, update_manifest


def build(outdir: Path, board: Board, force: bool = False, manifest: Manifest | None = None) -> BuildResult:
    outdir = Path(outdir)
    require_sources(outdir)
    if board.runner == "host":
        return build_host(outdir, board, force=force)
    return build_firmware(outdir, board, force=force, manifest=manifest)


def build_and_record(outdir: Path, board: Board, manifest: Manifest | None = None,
                     force: bool = False) -> tuple[BuildResult, Manifest]:
    """Build when missing or stale (always with force), and record code and RAM bytes in
    tinyc.json (the `build` and `ram` sections; the stack measured by an earlier run is kept)."""
    result = build(outdir, board, force=force, manifest=manifest)
    manifest = update_manifest(outdir, manifest, code_bytes=result.code_bytes, build={board.name: {
        "code_bytes": result.code_bytes, "weight_bytes_linked": result.weight_bytes, "ram_bytes": result.ram_bytes}})
    ram = ram_summary(manifest, board.name, model_static=result.ram_bytes, code=result.code_bytes,
                      weights=result.weight_bytes, stack_reserve=stack_reserve(board))
    manifest = update_manifest(outdir, manifest, ram={**(manifest.section("ram") or {}), board.name: ram})
    return result, manifest


def record_stack(outdir: Path, board: Board, manifest: Manifest, stack: int) -> Manifest:
    """Put the peak stack measured on the board into tinyc.json's `ram` section."""
    ram = ram_summary(manifest, board.name, stack=stack)
    return update_manifest(outdir, manifest, ram={**(manifest.section("ram") or {}), board.name: ram})


def stack_reserve(board: Board) -> int | None:
    """The stack the board's linker script reserves (microcontrollers), else None."""
    return memory_layout(board)["stack_bytes"] if board.kind == "mcu" else None


__all__ = ["build", "build_and_record", "record_stack", "stack_reserve", "BuildResult"]
