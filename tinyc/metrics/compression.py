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

import numpy as np

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


def _methods(row: dict, enc: dict, clusters: dict, low_rank: set[str]) -> list[str]:
    names = {row["name"], *row["name"].replace(";", "/").split("/")}
    out = ["low_rank"] if names & low_rank else []
    if row["nonzeros"] < row["weights"] and row.get("pruned"):
        out.append("prune")
    if clusters.get(row["name"]):
        out.append("cluster")
    if enc["kind"] != "raw":
        out.append(enc["kind"])
    return out


def _stages(layers: list[dict], float_bytes: int, int8_bytes: int, weight_bytes: int, other_bytes: int,
            keras: dict | None, pruned: bool, clustered: bool) -> list[dict]:
    """Deep Compression's figure, stage after stage: the bytes of the model after each.

    Every stage but "cluster" is a form tinyc emits, measured as emitted. Shared values are
    never stored as fixed-width indices here (Huffman codes over them are smaller), so the
    cluster stage is computed: ceil(log2(values)) bits per entry + the gaps + a K-byte codebook."""
    rows = [{"stage": "float32", "bytes": float_bytes, "how": "4 bytes per parameter of the float model"}]
    lr = [s for s in (keras or {}).get("stages", []) if s["stage"] == "low_rank"]
    if lr and any(r.get("method") for r in lr[0]["layers"]):
        rows.append({"stage": "low_rank", "bytes": 4 * int(keras["params_after"]),
                     "how": "float32 after factorisation"})
    rows.append({"stage": "int8", "bytes": int8_bytes, "how": "constant data with raw int8 weights"})
    if pruned:
        rows.append({"stage": "prune", "bytes": other_bytes + sum(min(l["candidates"]["raw"], l["candidates"]["sparse"])
                                                                   for l in layers),
                     "how": "raw or sparse int8 (8-bit values + gaps), the smaller per layer"})
    if clustered:
        total = other_bytes
        for l in layers:
            k = max(1, l["distinct_values"])
            bits = max(1, int(np.ceil(np.log2(k + (0 if l["nonzeros"] == l["params_after"] else 1)))))
            e = l["sparse_entries"]
            sparse = (e * (bits + l["sparse_gap_bits"]) + 7) // 8 + k if e else None
            dense = (l["params_after"] * bits + 7) // 8 + k
            total += min(dense, sparse) if sparse is not None else dense
        rows.append({"stage": "cluster", "bytes": int(total),
                     "how": "computed: fixed-width indices into a codebook of the shared values (+ gaps)"})
    rows.append({"stage": "huffman" if (pruned or clustered or any(l["encoding"] != "raw" for l in layers))
                 else "encoded", "bytes": int(weight_bytes), "how": "as emitted: the generated C's constant data"})
    for prev, r in zip([None, *rows], rows):
        r["compression_rate"] = _rate(float_bytes, r["bytes"])
        r["space_saving_rate"] = _saving(float_bytes, r["bytes"])
        r["rate_vs_previous"] = _rate(prev["bytes"], r["bytes"]) if prev else None
    return rows


def compression_summary(original: Graph, comp_report: dict, weight_bytes: int, keras: dict | None = None) -> dict:
    """The `compression` section of tinyc.json.

    original: the int8 graph before pruning; comp_report: from tinyc.passes.compress.compress;
    weight_bytes: the measured constant bytes of the generated C; keras: the
    `keras_compression` section when the float model was compressed before quantization
    (its parameter count before low-rank factorisation is the float32 baseline).
    """
    orig_rows = {r["name"]: r for r in comp_report.get("original", [])}
    params = sum(r["weights"] + r["biases"] for r in comp_report.get("original", []))
    if keras:
        params = int(keras["float_params"])
    float_bytes = 4 * params
    clusters = {r["name"]: r["clusters"] for r in comp_report.get("clustering") or []}
    low_rank = {r["name"] for s in (keras or {}).get("stages", []) if s["stage"] == "low_rank"
                for r in s["layers"] if r.get("method")}
    pruned = bool(comp_report.get("pruning")) or any(s["stage"] == "prune" for s in (keras or {}).get("stages", []))
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
            "macs_dense": o.get("macs_dense", 0), "macs_after": r.get("macs_dense", 0),
            "macs_effective": int(round(r.get("macs_dense", 0) * (nz / r["weights"] if r["weights"] else 0)))
            if e["kind"].startswith("sparse") else r.get("macs_dense", 0),
            "why_raw": e.get("why_raw"),
            "clusters": clusters.get(r["name"]), "distinct_values": int(r.get("distinct_values", 0)),
            "sparse_gap_bits": e.get("sparse_gap_bits", 0), "sparse_entries": e.get("sparse_entries", 0),
            "methods": _methods({**r, "pruned": pruned}, e, clusters, low_rank),
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
        "clustering": comp_report.get("clustering"),
        "stages": _stages(layers, float_bytes, int8_bytes, weight_bytes,
                          int(weight_bytes) - int(sum(l["bytes"] for l in layers)), keras, pruned,
                          bool(comp_report.get("clustering"))),
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
