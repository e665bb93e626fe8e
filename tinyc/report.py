"""Compression metrics: what `tinyc report OUTDIR` and the end of `tinyc convert` show.

Following Deep Compression's definitions, for a model M and its compressed form M*:
compression rate a/a*, space saving rate (a - a*)/a*, speedup rate s/s*. Every byte count
is measured, not estimated from bit counts:
  - float32 bytes: 4 bytes per weight and bias of the original model (the float32 model's
    parameters; before any pruning);
  - plain int8 bytes: the constant data of the original graph compiled with raw weights
    (weights, biases, multipliers, shifts), summed over the C arrays codegen emits;
  - compressed bytes: `weight_bytes` of OUTDIR, the C arrays really emitted (encoded
    weights, indices, code tables, biases, multipliers).
Per layer, the encoded weight bytes are the sizes of the arrays of that layer's encoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.ir import Graph


def plain_int8_weight_bytes(graph: Graph) -> int:
    """Constant bytes of `graph` compiled with raw int8 weights (codegen's own accounting)."""
    from tinyc.codegen import lower_graph

    g = graph.copy()
    g.meta = {k: v for k, v in g.meta.items() if k != "weight_encoding"}
    _, ctx = lower_graph(g)
    return int(sum(c.nbytes for c in ctx.consts.values()))


def _rate(a, b):
    return float(a) / float(b) if b else None


def _saving(a, b):
    return (float(a) - float(b)) / float(b) if b else None


def compression_summary(original: Graph, comp_report: dict, weight_bytes: int) -> dict:
    """The `compression` section of tinyc.json.

    original: the int8 graph before pruning; comp_report: from tinyc.compress.compress;
    weight_bytes: the measured constant bytes of the generated C.
    """
    orig_rows = {r["name"]: r for r in comp_report.get("original", [])}
    params = sum(r["weights"] + r["biases"] for r in comp_report.get("original", []))
    float_bytes = 4 * params
    int8_bytes = plain_int8_weight_bytes(original)
    layers = []
    for r in comp_report.get("layers", []):
        e = r["encoding"]
        nz = r["nonzeros"]
        o = orig_rows.get(r["name"], r)
        layers.append({
            "name": r["name"], "op": r["op"],
            "params": o["weights"], "params_after": r["weights"], "nonzeros": nz,
            "density": nz / o["weights"] if o["weights"] else 0.0,
            "encoding": e["kind"], "bytes": e["bytes"], "raw_bytes": r["weights"],
            "candidates": e["candidates"], "estimated_slowdown": e.get("estimated_slowdown"),
            "value_bits_per_nonzero": e["value_bits"] / nz if nz else 0.0,
            "index_bits_per_nonzero": e["index_bits"] / nz if nz else 0.0,
            "bits_per_param": 8.0 * e["bytes"] / o["weights"] if o["weights"] else 0.0,
            "macs_dense": o.get("macs_dense", 0),
            "why_raw": e.get("why_raw"),
        })
    total_nz = sum(l["nonzeros"] for l in layers)
    total_w = sum(l["params"] for l in layers)
    return {
        "weights_mode": comp_report.get("weights_mode"),
        "params": int(params), "weights": int(total_w), "nonzeros": int(total_nz),
        "weights_after": int(sum(l["params_after"] for l in layers)),
        "sparsity": 1.0 - total_nz / total_w if total_w else 0.0,
        "float32_bytes": int(float_bytes), "int8_bytes": int8_bytes, "compressed_bytes": int(weight_bytes),
        "compression_rate_vs_float32": _rate(float_bytes, weight_bytes),
        "space_saving_rate_vs_float32": _saving(float_bytes, weight_bytes),
        "compression_rate_vs_int8": _rate(int8_bytes, weight_bytes),
        "space_saving_rate_vs_int8": _saving(int8_bytes, weight_bytes),
        "encoded_weight_bytes": int(sum(l["bytes"] for l in layers)),
        "layers": layers,
        "channel_pruning": comp_report.get("channel_pruning"),
    }


def with_measurements(summary: dict, manifest: dict) -> dict:
    """Add flash (weights + code, when a build measured the code) and speedup (when runs of
    the compressed and the raw build were measured) to a compression summary."""
    out = dict(summary)
    code = manifest.get("code_bytes")
    if code is not None:
        out["code_bytes"] = int(code)
        out["flash_bytes"] = int(code) + int(manifest["weight_bytes"])
    speed = manifest.get("speed")
    if speed and speed.get("raw") and speed.get("compressed"):
        out["speedup_rate_vs_int8"] = speed["raw"] / speed["compressed"]
        out["speed_unit"] = speed.get("unit")
        lr, lc = speed.get("layers_raw"), speed.get("layers_compressed")
        if lr and lc:
            out["layer_time_ratio"] = [{"index": i, "name": l["name"], "op": l["op"], "raw": r, "compressed": c,
                                        "ratio": c / r if r else None}
                                       for i, (l, r, c) in enumerate(zip(manifest["layers"], lr, lc))]
        if speed.get("raw_code_bytes") is not None:
            out["flash_bytes_raw"] = int(speed["raw_code_bytes"]) + int(speed["raw_weight_bytes"])
    return out


def report_lines(manifest: dict) -> list[str]:
    """The text `tinyc report` prints."""
    c = manifest.get("compression")
    lines = []
    if not c:
        lines.append(f"no compression data: weight_bytes {manifest.get('weight_bytes', 0):,} "
                     "(convert with --prune/--weights to get a compression report)")
        return lines
    c = with_measurements(c, manifest)
    lines.append(f"{'layer':34s} {'op':16s} {'params':>8s} {'nonzero':>8s} {'enc':15s} {'bytes':>8s} "
                 f"{'val b/nz':>8s} {'idx b/nz':>8s} {'b/param':>7s} {'est time':>8s}")
    for l in c["layers"]:
        est = (l.get("estimated_slowdown") or {}).get(l["encoding"])
        lines.append(f"{l['name'][-34:]:34s} {l['op']:16s} {l['params']:>8,} {l['nonzeros']:>8,} {l['encoding']:15s} "
                     f"{l['bytes']:>8,} {l['value_bits_per_nonzero']:>8.2f} {l['index_bits_per_nonzero']:>8.2f} "
                     f"{l['bits_per_param']:>7.2f} {(f'{est:.2f}x' if est is not None else '-'):>8s}")
    lines.append(f"{'total weights':34s} {'':16s} {c['weights']:>8,} {c['nonzeros']:>8,} {'':15s} "
                 f"{c['encoded_weight_bytes']:>8,}   sparsity {c['sparsity'] * 100:.1f}%")
    lines.append("  (est time: the layer's estimated time over raw int8 on a Cortex-M4; auto keeps it <= 2x)")
    lines.append(f"  float32 model   {c['float32_bytes']:>10,} B  ({c['params']:,} parameters x 4)")
    lines.append(f"  plain int8      {c['int8_bytes']:>10,} B  (constant data, raw weights)")
    lines.append(f"  compressed      {c['compressed_bytes']:>10,} B  (constant data as emitted: weights, indices, "
                 "code tables, biases, multipliers)")
    lines.append(f"  vs float32: compression rate {c['compression_rate_vs_float32']:.2f}x, "
                 f"space saving rate {c['space_saving_rate_vs_float32']:.2f}")
    lines.append(f"  vs int8:    compression rate {c['compression_rate_vs_int8']:.2f}x, "
                 f"space saving rate {c['space_saving_rate_vs_int8']:.2f}")
    if "flash_bytes" in c:
        lines.append(f"  flash (weights + code incl. decoder) {c['flash_bytes']:,} B (code {c['code_bytes']:,} B)")
    else:
        lines.append("  flash: code not measured yet (run `tinyc build OUTDIR`)")
    if "flash_bytes_raw" in c and "flash_bytes" in c:
        lines.append(f"  flash of the raw int8 build {c['flash_bytes_raw']:,} B: compression rate "
                     f"{c['flash_bytes_raw'] / c['flash_bytes']:.2f}x on weights + code")
    if "speedup_rate_vs_int8" in c:
        lines.append(f"  speedup rate vs raw int8 build: {c['speedup_rate_vs_int8']:.2f}x ({c.get('speed_unit')})")
        for t in c.get("layer_time_ratio", []):
            lines.append(f"    layer {t['index']:>3} {t['op']:18s} raw {t['raw']:>12,.0f}  compressed {t['compressed']:>12,.0f}"
                         f"  compressed/raw {t['ratio'] if t['ratio'] is not None else float('nan'):5.2f}  {t['name'][-40:]}")
    else:
        lines.append("  speedup: not measured (`tinyc report OUTDIR --speed` times it against a raw build)")
    return lines


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


def callgrind_available() -> bool:
    import shutil
    return shutil.which("valgrind") is not None and Path("/usr/include/valgrind/callgrind.h").exists() \
        and shutil.which("gcc") is not None


def layer_instructions(outdir, sample: bytes) -> list[int]:
    """Instructions of each layer for one inference on the host (-O2), counted by callgrind
    between the layer hooks of model.c (single-input models)."""
    import re
    import shutil
    import subprocess
    import tempfile

    from tinyc.errors import TinycError

    outdir = Path(outdir)
    work = Path(tempfile.mkdtemp(prefix="tinyc-cg-"))
    try:
        (work / "harness.c").write_text(_CALLGRIND_HARNESS)
        (work / "in.bin").write_bytes(sample)
        exe = work / "bench"
        cc = subprocess.run(["gcc", "-std=gnu99", "-O2", "-DTINYC_LAYER_HOOKS", f"-I{outdir}", str(work / "harness.c"),
                             str(outdir / "model.c"), str(outdir / "weights.c"), "-o", str(exe), "-lm"],
                            capture_output=True, text=True)
        if cc.returncode != 0:
            raise TinycError(f"building the callgrind harness for {outdir} failed: {cc.stderr.strip()[:200]}")
        run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.out", str(exe),
                              str(work / "in.bin")], capture_output=True, text=True)
        if run.returncode != 0:
            raise TinycError(f"callgrind failed on {outdir}: {run.stderr.strip().splitlines()[-1:]}")
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
    from tinyc.boards import load_board
    from tinyc.frontend.tflite import load_tflite
    from tinyc.pipeline import convert_graph, load_manifest, update_manifest
    from tinyc.runflow import ensure_built
    from tinyc.runners import open_session
    from tinyc.samples import random_inputs, to_record

    outdir = Path(outdir)
    manifest = load_manifest(outdir)
    board = load_board(board_name)
    raw_dir = outdir / "raw_baseline"
    raw = convert_graph(load_tflite(outdir / "model.tflite"), raw_dir, board.name)
    samples = random_inputs(manifest["inputs"], n, seed=seed)
    result: dict = {"board": board.name}
    for d in (outdir, raw_dir):
        ensure_built(d, board)
    if board.runner == "host" and callgrind_available() and len(manifest["inputs"]) == 1:
        sample = to_record(samples[0])
        for key, d in (("compressed", outdir), ("raw", raw_dir)):
            layers = layer_instructions(d, sample)
            result[key] = float(sum(layers))
            result[f"layers_{key}"] = layers
        result["unit"] = "instructions (callgrind, host -O2)"
    else:
        for key, d in (("compressed", outdir), ("raw", raw_dir)):
            with open_session(board, d) as s:
                rs = [s.infer(to_record(x)) for x in samples]
            cyc = [r.cycles for r in rs if r.cycles is not None]
            result[key] = float(np.median(cyc)) if cyc else None
            result["unit"] = rs[0].cycle_unit if rs else None
    m_raw = load_manifest(raw_dir)
    result["raw_code_bytes"] = m_raw.get("code_bytes")
    result["raw_weight_bytes"] = raw.manifest["weight_bytes"]
    update_manifest(outdir, speed=result)
    return result
