"""The one way tinyc runs a compiler or binutils tool, and what it reads back: section sizes
and staleness of a build."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyc.errors import TinycError

STRICT_CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffp-contract=off"]


@dataclass
class BuildResult:
    binary: Path
    code_bytes: int        # .text of the model (kernels + layer code), harness excluded
    weight_bytes: int      # constant data of the model (.rodata of weights.c)
    ram_bytes: int | None  # static RAM of the model (.data + .bss: the arena)


def run_tool(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    """Run a toolchain command; its first error line becomes a one-line TinycError."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError:
        raise TinycError(f"{cmd[0]} not found (`make setup` installs the toolchains)") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        first = next((l for l in lines if "error" in l.lower() or "overflow" in l.lower()),
                     lines[0] if lines else "")
        raise TinycError(f"{what} failed: {first.strip()}")
    return proc.stdout


def section_sizes(obj: Path, size_tool: str = "size") -> tuple[int, int, int]:
    """(text, data, bss) of an object file (Berkeley format)."""
    out = run_tool([size_tool, str(obj)], f"{size_tool} {obj.name}")
    nums = re.findall(r"^\s*(\d+)\s+(\d+)\s+(\d+)", out, re.M)
    text, data, bss = (int(x) for x in nums[0])
    return text, data, bss


def model_result(binary: Path, model_obj: Path, weights_obj: Path, size_tool: str = "size") -> BuildResult:
    """The model's own sizes, from the objects of model.c and weights.c."""
    text_m, data_m, bss_m = section_sizes(model_obj, size_tool)
    text_w, data_w, _ = section_sizes(weights_obj, size_tool)
    return BuildResult(binary, code_bytes=text_m, weight_bytes=text_w + data_w, ram_bytes=data_m + bss_m)


def is_stale(binary: Path, inputs: list[Path]) -> bool:
    if not binary.exists():
        return True
    t = binary.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > t for p in inputs)
