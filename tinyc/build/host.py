"""The host board: OUTDIR's C and firmware/host/main.c compiled for this machine.

`vector_isa = "auto"` in boards/host.toml adds the widest x86-64 level this machine and the
compiler both have (-march=x86-64-v3: AVX2, or -v2: SSE4.2), so the kernels take their
vector steps; the binary only ever runs here, where it was built. TINYC_VECTOR_ISA=none in
the environment builds portable C (how the tests run the portable path on this machine).
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path

from tinyc.boards import Board
from tinyc.build.toolchain import (STRICT_CFLAGS, BuildResult, fingerprint, forget_build, is_fresh, model_result,
                                   record_build, run_tool)
from tinyc.errors import TinycError
from tinyc.outdir import MODEL_SOURCES, binary_path, build_dir, generated_files
from tinyc.resources import firmware_dir


X86_LEVELS = (("x86-64-v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
              ("x86-64-v2", {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}))


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((l for l in text.splitlines() if l.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@functools.lru_cache(maxsize=None)
def compiler_accepts(cc: str, flag: str) -> bool:
    try:
        proc = subprocess.run([cc, flag, "-x", "c", "-c", "-o", os.devnull, "-"], input="int x;\n",
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def vector_flags(board: Board, cc: str) -> list[str]:
    """-march for the host's vector extensions (see the module docstring), or nothing."""
    if board.raw.get("vector_isa") != "auto" or os.environ.get("TINYC_VECTOR_ISA") == "none":
        return []
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []   # AArch64 hosts have Advanced SIMD in the baseline
    flags = cpu_flags()
    for level, needs in X86_LEVELS:
        if needs <= flags and compiler_accepts(cc, f"-march={level}"):
            return [f"-march={level}"]
    return []


def build_host(outdir: Path, board: Board, force: bool = False) -> BuildResult:
    bdir = build_dir(outdir, board)
    binary = binary_path(outdir, board)
    harness = firmware_dir() / "host" / "main.c"
    cc = os.environ.get("CC", board.cc)
    if shutil.which(cc) is None:
        raise TinycError(f"C compiler '{cc}' not found: install gcc (run `make setup`)")
    cflags = [*STRICT_CFLAGS, *board.cflags, *vector_flags(board, cc), f"-I{outdir}"]
    objs = [bdir / (Path(s).stem + ".o") for s in MODEL_SOURCES]
    # the flags are in the fingerprint: a build with other flags (TINYC_VECTOR_ISA, CC) is stale too
    fp = fingerprint(generated_files(outdir) + [harness], [cc, *cflags, *board.ldflags])
    fresh = not force and is_fresh(binary, fp) and all(o.is_file() for o in objs)
    if not fresh:
        bdir.mkdir(parents=True, exist_ok=True)
        forget_build(binary)
        for src, obj in zip(MODEL_SOURCES, objs):
            run_tool([cc, *cflags, "-c", str(outdir / src), "-o", str(obj)], f"compiling {src}")
        tmp = binary.with_suffix(".tmp")
        run_tool([cc, *cflags, "-o", str(tmp), str(harness), *map(str, objs), *board.ldflags, "-lm"],
                 "linking the host harness")
        tmp.replace(binary)
        record_build(binary, fp)
    result = model_result(binary, objs[0], objs[1])
    result.rebuilt = not fresh
    return result
