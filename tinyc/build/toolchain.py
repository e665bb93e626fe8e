"""The one way tinyc runs a compiler or binutils tool, and what it reads back: section sizes
and freshness of a build.

A build is fresh when the hash of its sources' contents, the compiler and the flags equals
the one recorded beside the binary when it was made (`BUILD_STAMP`). File dates are not
trusted: files restored with old dates (tar -x, cp -p, rsync -t) would look older than a
binary they do not match."""

from __future__ import annotations

import hashlib
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
    rebuilt: bool = True   # False: the existing build was up to date


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


BUILD_STAMP = ".tinyc-build.sha256"   # beside the binary: the fingerprint it was built from


def fingerprint(sources: list[Path], command: list[str]) -> str:
    """sha256 over every source's name and content and the compiler command (flags and
    defines); a missing source is a TinycError naming it."""
    h = hashlib.sha256()
    for p in sources:
        p = Path(p)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise TinycError(f"{p} is missing: convert the model again (`tinyc convert MODEL -o {p.parent}`) "
                             "or reinstall tinyc if it is one of its firmware files") from None
        except OSError as exc:
            raise TinycError(f"cannot read {p}: {exc.strerror or exc}") from None
        h.update(p.name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    h.update("\0".join(command).encode())
    return h.hexdigest()


def is_fresh(binary: Path, fp: str) -> bool:
    """True when `binary` exists and was built from the sources and flags hashed in `fp`."""
    stamp = Path(binary).with_name(BUILD_STAMP)
    try:
        return Path(binary).is_file() and stamp.read_text().strip() == fp
    except OSError:
        return False


def record_build(binary: Path, fp: str) -> None:
    """Note that `binary` was just built from `fp` (called after it is complete)."""
    Path(binary).with_name(BUILD_STAMP).write_text(fp + "\n")


def forget_build(binary: Path) -> None:
    """A build is starting: until it completes, the old binary is not fresh."""
    Path(binary).with_name(BUILD_STAMP).unlink(missing_ok=True)
