"""The host board: OUTDIR's C and firmware/host/main.c compiled for this machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tinyc.boards import Board
from tinyc.build.toolchain import (STRICT_CFLAGS, BuildResult, fingerprint, forget_build, is_fresh, model_result,
                                   record_build, run_tool)
from tinyc.errors import TinycError
from tinyc.outdir import MODEL_SOURCES, binary_path, build_dir, generated_files
from tinyc.resources import firmware_dir


def build_host(outdir: Path, board: Board, force: bool = False) -> BuildResult:
    bdir = build_dir(outdir, board)
    binary = binary_path(outdir, board)
    harness = firmware_dir() / "host" / "main.c"
    cc = os.environ.get("CC", board.cc)
    if shutil.which(cc) is None:
        raise TinycError(f"C compiler '{cc}' not found: install gcc (run `make setup`)")
    cflags = [*STRICT_CFLAGS, *board.cflags, f"-I{outdir}"]
    objs = [bdir / (Path(s).stem + ".o") for s in MODEL_SOURCES]
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
