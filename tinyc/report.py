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
            "candidates": e["candidates"],
            "value_bits_per_nonzero": e["value_bits"] / nz if nz else 0.0,
            "index_bits_per_nonzero": e["index_bits"] / nz if nz else 0.0,
            "bits_per_param": 8.0 * e["bytes"] / o["weights"] if o["weights"] else 0.0,
            "macs_dense": o.get("macs_dense", 0), "macs": r.get("macs_dense", 0) if e["kind"] in ("raw", "huffman")
            else int(r.get("macs_dense", 0) * (nz / r["weights"] if r["weights"] else 0)),
            "why_raw": e.get("why_raw"),
        })
    total_nz = sum(l["nonzeros"] for l in layers)
    total_w = sum(l["params"] for l in layers)
    return {
        "weights_mode": comp_report.get("weights_mode"),
        "params": int(params), "weights": int(total_w), "nonzeros": int(total_nz),
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
                 f"{'val b/nz':>8s} {'idx b/nz':>8s} {'b/param':>7s}")
    for l in c["layers"]:
        lines.append(f"{l['name'][-34:]:34s} {l['op']:16s} {l['params']:>8,} {l['nonzeros']:>8,} {l['encoding']:15s} "
                     f"{l['bytes']:>8,} {l['value_bits_per_nonzero']:>8.2f} {l['index_bits_per_nonzero']:>8.2f} "
                     f"{l['bits_per_param']:>7.2f}")
    lines.append(f"{'total weights':34s} {'':16s} {c['weights']:>8,} {c['nonzeros']:>8,} {'':15s} "
                 f"{c['encoded_weight_bytes']:>8,}   sparsity {c['sparsity'] * 100:.1f}%")
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
    if "speedup_rate_vs_int8" in c:
        lines.append(f"  speedup rate vs raw int8 build: {c['speedup_rate_vs_int8']:.2f}x ({c.get('speed_unit')})")
    else:
        lines.append("  speedup: not measured (`tinyc report OUTDIR --speed` times it against a raw build)")
    return lines


def measure_speed(outdir, board_name: str = "host", n: int = 20, seed: int = 0) -> dict:
    """Mean time per inference of OUTDIR and of the same model with raw weights (built beside
    it in OUTDIR/raw_baseline), on the same inputs; stored in tinyc.json as `speed`."""
    from pathlib import Path

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
    graph = load_tflite(outdir / "model.tflite")
    convert_graph(graph, raw_dir, board.name)
    samples = random_inputs(manifest["inputs"], n, seed=seed)
    result = {}
    for key, d in (("compressed", outdir), ("raw", raw_dir)):
        ensure_built(d, board)
        with open_session(board, d) as s:
            rs = [s.infer(to_record(x)) for x in samples]
        cyc = [r.cycles for r in rs if r.cycles is not None]
        result[key] = float(np.median(cyc)) if cyc else None
        result["unit"] = rs[0].cycle_unit if rs else None
    result["board"] = board.name
    update_manifest(outdir, speed=result)
    return result
