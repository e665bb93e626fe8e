"""Compile OUTDIR's C for a board. The host board is built here; the others by
tinyc.firmware (cross toolchains, startup code, linker scripts)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyc.boards import Board
from tinyc.errors import TinycError
from tinyc.resources import firmware_dir

STRICT_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]
MODEL_SOURCES = ["model.c", "weights.c"]


@dataclass
class BuildResult:
    binary: Path
    code_bytes: int        # .text of the model (kernels + layer code), harness excluded
    weight_bytes: int      # constant data of the model (.rodata of weights.c)
    ram_bytes: int | None  # static RAM of the model (.data + .bss: the arena)


def build_dir(outdir: Path, board: Board) -> Path:
    return Path(outdir) / "build" / board.name


def _sources(outdir: Path) -> list[Path]:
    return [Path(outdir) / n for n in (*MODEL_SOURCES, "model.h", "weights.h", "tinyc_kernels.h", "tinyc_fixedpoint.h")]


def is_stale(binary: Path, inputs: list[Path]) -> bool:
    if not binary.exists():
        return True
    t = binary.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > t for p in inputs)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError:
        raise TinycError(f"{cmd[0]} not found: install a C compiler (run `make setup`)") from None
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        first = next((l for l in msg if "error" in l), msg[0] if msg else "")
        raise TinycError(f"{what} failed: {first}")
    return proc.stdout


def section_sizes(obj: Path, size_tool: str = "size") -> tuple[int, int, int]:
    """(text, data, bss) of an object file (Berkeley format)."""
    out = _run([size_tool, str(obj)], f"{size_tool} {obj.name}")
    nums = re.findall(r"^\s*(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    text, data, bss = (int(x) for x in nums[0])
    return text, data, bss


def build(outdir: Path, board: Board, force: bool = False) -> BuildResult:
    outdir = Path(outdir)
    if not (outdir / "model.c").exists():
        raise TinycError(f"{outdir} has no generated sources: run `tinyc convert MODEL -o {outdir}` first")
    if board.runner != "host":
        from tinyc import firmware  # cross builds live there
        return firmware.build_firmware(outdir, board, force=force)
    return build_host(outdir, board, force=force)


def build_host(outdir: Path, board: Board, force: bool = False) -> BuildResult:
    bdir = build_dir(outdir, board)
    binary = bdir / "tinyc_host"
    harness = firmware_dir() / "host" / "main.c"
    cc = os.environ.get("CC", board.cc)
    if shutil.which(cc) is None:
        raise TinycError(f"C compiler '{cc}' not found: install gcc (run `make setup`)")
    cflags = [*STRICT_CFLAGS, *board.cflags, f"-I{outdir}"]
    objs = []
    if force or is_stale(binary, _sources(outdir) + [harness]):
        bdir.mkdir(parents=True, exist_ok=True)
        for src in MODEL_SOURCES:
            obj = bdir / (Path(src).stem + ".o")
            _run([cc, *cflags, "-c", str(outdir / src), "-o", str(obj)], f"compiling {src}")
            objs.append(obj)
        tmp = binary.with_suffix(".tmp")
        _run([cc, *cflags, "-o", str(tmp), str(harness), *map(str, objs), *board.ldflags, "-lm"],
             "linking the host harness")
        tmp.replace(binary)
    else:
        objs = [bdir / (Path(s).stem + ".o") for s in MODEL_SOURCES]
    text_m, data_m, bss_m = section_sizes(objs[0])
    text_w, data_w, _ = section_sizes(objs[1])
    return BuildResult(binary, code_bytes=text_m, weight_bytes=text_w + data_w, ram_bytes=data_m + bss_m)
