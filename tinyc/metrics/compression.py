"""Compression metrics: the `compression` section of tinyc.json, which `tinyc report OUTDIR`
and the end of `tinyc convert` show.

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

import tempfile
from pathlib import Path

from tinyc.codegen import generate
from tinyc.ir import Graph
from tinyc.outdir import Manifest


def plain_int8_weight_bytes(graph: Graph) -> int:
    """Constant bytes of `graph` compiled with raw int8 weights (codegen's own accounting):
    the baseline the compression rates are measured against, generated into a scratch folder."""
    g = graph.copy()
    g.meta = {k: v for k, v in g.meta.items() if k != "weight_encoding"}
    with tempfile.TemporaryDirectory(prefix="tinyc-int8-baseline-") as tmp:
        return int(generate(g, Path(tmp), b"", "host").weight_bytes)


def _rate(a, b):
    return float(a) / float(b) if b else None


def _saving(a, b):
    return (float(a) - float(b)) / float(b) if b else None


def compression_summary(original: Graph, comp_report: dict, weight_bytes: int) -> dict:
    """The `compression` section of tinyc.json.

    original: the int8 graph before pruning; comp_report: from tinyc.passes.compress.compress;
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


def with_measurements(summary: dict, manifest: Manifest) -> dict:
    """Add flash (weights + code, when a build measured the code) and speedup (when runs of
    the compressed and the raw build were measured) to a compression summary."""
    out = dict(summary)
    code = manifest.code_bytes
    if code is not None:
        out["code_bytes"] = int(code)
        out["flash_bytes"] = int(code) + int(manifest.weight_bytes)
    speed = manifest.section("speed")
    if speed and speed.get("raw") and speed.get("compressed"):
        out["speedup_rate_vs_int8"] = speed["raw"] / speed["compressed"]
        out["speed_unit"] = speed.get("unit")
        lr, lc = speed.get("layers_raw"), speed.get("layers_compressed")
        if lr and lc:
            out["layer_time_ratio"] = [{"index": i, "name": l.name, "op": l.op, "raw": r, "compressed": c,
                                        "ratio": c / r if r else None}
                                       for i, (l, r, c) in enumerate(zip(manifest.layers, lr, lc))]
        if speed.get("raw_code_bytes") is not None:
            out["flash_bytes_raw"] = int(speed["raw_code_bytes"]) + int(speed["raw_weight_bytes"])
    return out
