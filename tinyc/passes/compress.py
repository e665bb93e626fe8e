"""Compression of an int8 graph, as one call: structured pruning, magnitude pruning, and the
choice of an encoding per weight tensor.

    graph, encodings, report = compress(graph, CompressOptions(...))

The returned graph holds the pruned weights (it is what OUTDIR/model.tflite and the
reference run) and `graph.meta["weight_encoding"] = {weight tensor index: {"kind", ...}}`,
which the FULLY_CONNECTED / CONV_2D lowerings hand to their encoded lowering (tinyc/codegen/ops/conv.py, fully_connected.py). The report
holds, per weight layer, the parameters, nonzeros and the bytes of every candidate encoding;
tinyc/metrics/compression.py adds the bytes measured in the generated C. Pure: no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tinyc.errors import TinycError
from tinyc.ir import Graph, op_macs
from tinyc.passes import encode as E
from tinyc.passes.cluster import ClusterOptions, cluster_int8
from tinyc.passes.prune import PruneOptions, prune_channels, prune_int8, resolve_layer, weight_layers


@dataclass
class CompressOptions:
    prune: PruneOptions = field(default_factory=PruneOptions)
    weights: str | None = None    # auto | raw | sparse | huffman; None: auto when clustering, else raw
    report: bool = False          # write the compression report even with nothing left to do
    per_layer_weights: dict[str, str] = field(default_factory=dict)   # layer name -> mode (overrides weights)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)

    @property
    def active(self) -> bool:
        return (self.prune.active or self.cluster.active or self.weights_mode != "raw" or self.report
                or bool(self.per_layer_weights))

    @property
    def weights_mode(self) -> str:
        """Shared weights only take less room Huffman-coded, so clustering defaults to auto."""
        if self.weights is not None:
            return self.weights
        return "auto" if self.cluster.active else "raw"


# Op kinds whose lowering hands encoded weights to tinyc/codegen/ops/compressed.py (lower_encoded).
ENCODABLE_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def layer_params(graph: Graph) -> list[dict]:
    """Weight layers with their weight and bias element counts."""
    rows = []
    for l in weight_layers(graph):
        op = graph.ops[l.op_index]
        w = graph.tensors[l.weight]
        bias = graph.tensors[op.inputs[2]].size if len(op.inputs) > 2 and op.inputs[2] >= 0 else 0
        nz = w.data[w.data != 0]
        rows.append({"name": l.name, "op": l.kind, "op_index": l.op_index, "weight": l.weight,
                     "weights": int(w.size), "biases": int(bias), "nonzeros": int(nz.size),
                     "distinct_values": int(np.unique(nz).size), "macs_dense": int(op_macs(graph, op))})
    return rows


# Instructions per unit of work on a Cortex-M4 (mps2-an386 under QEMU, -O2), measured on
# LeNet-style layers with tinyc's kernels: the cost model behind `--weights auto`, which keeps
# the smallest encoding whose layer is estimated at most MAX_SLOWDOWN times slower than raw.
MAX_SLOWDOWN = 2.0
_RAW_MAC = {"FULLY_CONNECTED": 6.0, "CONV_2D": 2.3, "DEPTHWISE_CONV_2D": 3.0,
            "CONV_2D_narrow": 9.0}   # fewer than 4 input channels: no 4-wide inner loop
_DECODE = {"sparse": 7.0, "sparse_huffman": 27.0, "huffman": 15.0}   # per entry (sparse) / per weight
_ENC_MAC = {"FULLY_CONNECTED": 6.0, "gather": 7.0, "dense_rows": 5.6, "scan": 5.0}


def estimated_slowdown(op_kind: str, enc: E.Encoded, nonzeros: int, uses: int, narrow: bool = False) -> float:
    """Estimated time of a layer with `enc` weights over its time with raw weights.

    uses: how often each weight is used per inference (FC: rows of the input; convolutions:
    output positions)."""
    if enc.kind == "raw":
        return 1.0
    size = enc.size
    units = enc.entries if enc.kind in ("sparse", "sparse_huffman") else size
    raw = _RAW_MAC["CONV_2D_narrow" if narrow and op_kind == "CONV_2D" else op_kind] * size * uses
    if op_kind == "FULLY_CONNECTED":   # decoded again for every input row
        mac = _ENC_MAC["FULLY_CONNECTED"] * (size if enc.kind == "huffman" else enc.entries)
        return (_DECODE[enc.kind] * units + mac) * uses / raw
    per_position = _ENC_MAC["dense_rows"] * size if 2 * nonzeros > size else _ENC_MAC["gather"] * nonzeros
    return (_DECODE[enc.kind] * units + _ENC_MAC["scan"] * size + per_position * uses) / raw


def _uses(graph: Graph, op) -> int:
    w = graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if op.kind == "FULLY_CONNECTED":
        return max(1, int(y.size // max(1, int(w.shape[0]))))
    return max(1, int(y.size // max(1, int(y.shape[-1]))))


def _layer_modes(graph: Graph, options: CompressOptions) -> dict[int, str]:
    """op index -> weight mode of the layers `per_layer_weights` names."""
    layers = weight_layers(graph)
    return {resolve_layer(layers, name).op_index: mode for name, mode in options.per_layer_weights.items()}


def compress(graph: Graph, options: CompressOptions) -> tuple[Graph, dict, dict]:
    """Prune and encode an int8 graph. Returns (graph, encodings, report)."""
    for mode in (options.weights_mode, *options.per_layer_weights.values()):
        if not E.valid_mode(mode):
            raise TinycError(f"--weights {mode}: choose one of {', '.join(E.CHOICES)}")
    original = layer_params(graph)
    report: dict = {"weights_mode": mode, "original": original}
    g = graph
    if options.prune.channels or options.prune.channels_per_layer:
        g, report["channel_pruning"] = prune_channels(g, options.prune.channels, options.prune.channels_per_layer)
    if options.prune.sparsity or options.prune.per_layer:
        prune = replace(options.prune, value_bits=options.cluster.value_bits(options.prune.value_bits))
        g, report["pruning"] = prune_int8(g, prune)
    if options.cluster.active:
        report["pruned"] = layer_params(g)
        g, report["clustering"] = cluster_int8(g, options.cluster)
    if g is graph:
        g = graph.copy()
    encodings: dict[int, dict] = {}
    consumers = g.consumers()
    layers = []
    modes = _layer_modes(g, options)
    for row in layer_params(g):
        mode = modes.get(row["op_index"], options.weights_mode)
        op = g.ops[row["op_index"]]
        w = g.tensors[row["weight"]]
        flat = E.kernel_order(op.kind, w.data).reshape(-1)
        cands = E.candidates(flat)
        sizes = {k: e.nbytes for k, e in cands.items()}
        narrow = op.kind == "CONV_2D" and int(w.shape[-1]) < 4
        slow = {k: round(estimated_slowdown(op.kind, e, row["nonzeros"], _uses(g, op), narrow), 2)
                for k, e in cands.items()}
        fast = [k for k in E.KINDS if slow[k] <= MAX_SLOWDOWN]
        enc = cands[min(fast, key=lambda k: (sizes[k], E.KINDS.index(k)))]
        why = None
        if mode == "raw":
            enc = cands["raw"]
        elif op.kind not in ENCODABLE_OPS:
            why = f"no encoded kernel for {op.kind}"
        elif len(consumers.get(row["weight"], [])) != 1:
            why = "weights shared by several ops"
        elif w.quant is not None and np.any(w.quant.zero_point != 0):
            why = "weight zero point is not 0"
        elif mode != "auto":   # forced (or "smallest"): no time limit
            enc = E.pick(cands, mode)
        if why is not None:
            enc = cands["raw"]
        info = {**enc.summary(), "candidates": sizes, "estimated_slowdown": slow,
                "sparse_entries": cands["sparse"].entries, "sparse_gap_bits": cands["sparse"].gap_bits}
        if why:
            info["why_raw"] = why
        encodings[row["weight"]] = info
        layers.append({**row, "encoding": info})
    g.meta = dict(g.meta)
    g.meta["weight_encoding"] = {t: e for t, e in encodings.items() if e["kind"] != "raw"}
    report["layers"] = layers
    return g, encodings, report
