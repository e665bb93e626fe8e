"""Speed of a compressed OUTDIR against the same model with raw int8 weights (`tinyc report
--speed`): per-layer instructions counted by callgrind on the host, or the board's own counter."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build_and_record
from tinyc.build.toolchain import run_tool
from tinyc.convert import convert_graph
from tinyc.frontend.tflite import load_tflite
from tinyc.outdir import MODEL_SOURCES, MODEL_TFLITE, load_manifest, update_manifest
from tinyc.runners import open_session
from tinyc.samples import random_inputs, to_record

_CALLGRIND_HARNESS = r"""
#include <stdio.h>
#include <valgrind/callgrind.h>
#include "model.h"
void tinyc_layer_begin(int i) { (void)i; CALLGRIND_ZERO_STATS; }
void tinyc_layer_end(int i) { char name[32]; snprintf(name, sizeof name, "layer%d", i); CALLGRIND_DUMP_STATS_AT(name); }
int main(int argc, char **argv) {
    static union { long long a; unsigned char b[TINYC_INPUT_BYTES_TOTAL]; } in;
    static union { long long a; unsigned char b[TINYC_OUTPUT_BYTES_TOTAL]; } out;
    const void *inputs[1]; void *outputs[1];
    FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
    if (!f || fread(in.b, 1, sizeof in.b, f) != sizeof in.b) return 2;
    fclose(f);
    inputs[0] = in.b; outputs[0] = out.b;
    tinyc_invoke_all(inputs, outputs);
    return 0;
}
"""


def _host_cc() -> str:
    return os.environ.get("CC", load_board("host").cc)


def callgrind_available() -> bool:
    return shutil.which("valgrind") is not None and Path("/usr/include/valgrind/callgrind.h").exists() \
        and shutil.which(_host_cc()) is not None


def layer_instructions(outdir, sample: bytes) -> list[int]:
    """Instructions of each layer for one inference on the host (-O2), counted by callgrind
    between the layer hooks of model.c (single-input models)."""
    outdir = Path(outdir)
    work = Path(tempfile.mkdtemp(prefix="tinyc-cg-"))
    try:
        (work / "harness.c").write_text(_CALLGRIND_HARNESS)
        (work / "in.bin").write_bytes(sample)
        exe = work / "bench"
        run_tool([_host_cc(), "-std=gnu99", "-O2", "-DTINYC_LAYER_HOOKS", f"-I{outdir}", str(work / "harness.c"),
                  *(str(outdir / s) for s in MODEL_SOURCES), "-o", str(exe), "-lm"],
                 f"building the callgrind harness for {outdir}")
        run_tool(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.out", str(exe),
                  str(work / "in.bin")], f"callgrind on {outdir}")
        counts = {}
        for p in work.glob("cg.out*"):
            text = p.read_text(errors="replace")
            m = re.search(r"Client Request: layer(\d+)", text)
            t = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
            if m and t:
                counts[int(m.group(1))] = int(t.group(1))
        return [counts.get(i, 0) for i in range(max(counts) + 1)] if counts else []
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_speed(outdir, board_name: str = "host", n: int = 20, seed: int = 0) -> dict:
    """Time OUTDIR against the same model (its model.tflite) with raw weights, converted into
    OUTDIR/raw_baseline, on the same inputs; stored in tinyc.json as `speed`.

    On the host with valgrind: instructions per layer and per inference (callgrind, one
    input: deterministic). Otherwise: the board's own counter (median of n inferences)."""
    outdir = Path(outdir)
    manifest = load_manifest(outdir)
    board = load_board(board_name)
    raw_dir = outdir / "raw_baseline"
    raw = convert_graph(load_tflite(outdir / MODEL_TFLITE), raw_dir, board.name)
    samples = random_inputs(manifest.inputs, n, seed=seed)
    result: dict = {"board": board.name}
    _, manifest = build_and_record(outdir, board, manifest)
    _, raw_manifest = build_and_record(raw_dir, board, raw.manifest)
    if board.runner == "host" and callgrind_available() and len(manifest.inputs) == 1:
        sample = to_record(samples[0])
        for key, d in (("compressed", outdir), ("raw", raw_dir)):
            layers = layer_instructions(d, sample)
            result[key] = float(sum(layers))
            result[f"layers_{key}"] = layers
        result["unit"] = "instructions (callgrind, host -O2)"
    else:
        for key, d, m in (("compressed", outdir, manifest), ("raw", raw_dir, raw_manifest)):
            with open_session(board, d, manifest=m) as s:
                rs = s.infer_many([to_record(x) for x in samples])
            cyc = [r.cycles for r in rs if r.cycles is not None]
            result[key] = float(np.median(cyc)) if cyc else None
            result["unit"] = rs[0].cycle_unit if rs else None
    result["raw_code_bytes"] = raw_manifest.code_bytes
    result["raw_weight_bytes"] = raw.manifest.weight_bytes
    update_manifest(outdir, manifest, speed=result)
    return result
