"""Weight sharing (Deep Compression's "trained quantization", Han et al. 2016, section 3) on an
int8 graph: each layer's nonzero int8 weights are clustered by 1-D k-means into at most K
shared values. Pure IR -> IR.

No new storage format is needed: a clustered tensor has at most K distinct nonzero int8
values, and the Huffman encodings (tinyc.passes.encode) already store a canonical code over
the distinct values: that code table is the codebook and each code an index into it, of
log2(K) bits or fewer. The kernels decode in place as for any Huffman-coded layer, and
OUTDIR/model.tflite carries the shared values, so the reference checks them as usual.

Zeros (pruned weights) are not clustered: they stay zero and sparse storage skips them.
Centroids start spread linearly between the smallest and largest weight (the paper found
linear initialisation best: it keeps the few large weights that matter most) and are
integers, so the int8 values in the graph are the shared values themselves. Clustering in
the int8 domain is what guarantees K distinct stored values: float centroids fine-tuned on a
Keras model (tinyc.quantize.cluster) become several int8 values each when per-channel scales
differ; this pass then merges them again and reports the distinct count really stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyc.errors import TinycError
from tinyc.ir import Graph
from tinyc.passes.prune import resolve_layer, split_layer_option, weight_layers

MAX_CLUSTERS = 256


@dataclass
class ClusterOptions:
    clusters: int | None = None                            # --cluster K: every weight layer
    per_layer: dict[str, int] = field(default_factory=dict)   # --cluster-layer NAME=K

    @property
    def active(self) -> bool:
        return bool(self.clusters) or bool(self.per_layer)

    def value_bits(self, default: float = 8.0) -> float:
        """Bits of a stored value after sharing: log2 K (Huffman codes take about that)."""
        ks = [k for k in (self.clusters, *self.per_layer.values()) if k]
        return float(np.log2(max(ks))) if ks else default

    def for_layer(self, names: set[str]) -> int | None:
        """K for a layer known by any of `names` (per-layer setting first)."""
        for n in names:
            if n in self.per_layer:
                return self.per_layer[n]
        return self.clusters


def check_clusters(value, what: str) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise TinycError(f"{what} {value!r} is not a whole number; give the number of shared values, e.g. 16") from None
    if not (2 <= k <= MAX_CLUSTERS) or k != float(value):
        raise TinycError(f"{what} {value} is outside 2..{MAX_CLUSTERS}; give the number of shared values, e.g. 16")
    return k


def parse_cluster_layer(text: str) -> tuple[str, int]:
    """'NAME=16' -> (NAME, 16)."""
    name, value = split_layer_option(text, "--cluster-layer", "dense_1=16")
    return name, check_clusters(value, f"--cluster-layer {name}:")


def linear_init(lo: float, hi: float, k: int) -> np.ndarray:
    return np.linspace(lo, hi, k) if k > 1 else np.array([(lo + hi) / 2.0])


def kmeans_1d(values: np.ndarray, k: int, weights: np.ndarray | None = None, iters: int = 50,
              integer: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on 1-D `values` (optionally weighted), linear initialisation.

    Returns (centroids, assignment per value). With `integer`, centroids are rounded to
    integers after every update, so the result is a set of at most k integers."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    c = linear_init(float(v.min()), float(v.max()), k)
    if integer:
        c = np.round(c)
    assign = np.zeros(v.size, dtype=np.int64)
    for _ in range(iters):
        c = np.unique(c)   # merged centroids stay merged
        edges = (c[1:] + c[:-1]) / 2.0
        assign = np.searchsorted(edges, v)
        sums = np.bincount(assign, weights=w * v, minlength=c.size)
        counts = np.bincount(assign, weights=w, minlength=c.size)
        new = np.where(counts > 0, sums / np.maximum(counts, 1e-300), c)
        if integer:
            new = np.round(new)
        if np.array_equal(new, c):
            break
        c = new
    c = np.unique(c)
    edges = (c[1:] + c[:-1]) / 2.0
    return c, np.searchsorted(edges, v)


def cluster_values(q: np.ndarray, k: int) -> np.ndarray:
    """int8 weights with their nonzero values replaced by at most k shared int8 values (k + 1
    when a centroid at 0 is split into +-1 to keep its weights nonzero)."""
    q = np.asarray(q)
    nz = q != 0
    vals, counts = np.unique(q[nz].astype(np.int64), return_counts=True)
    if vals.size <= k:
        return q.copy()
    centroids, assign = kmeans_1d(vals, k, counts, integer=True)
    shared = centroids[assign].astype(np.int64)
    # a centroid rounded to 0 would prune its weights: keep them at the smallest value, +-1
    shared = np.where(shared == 0, np.sign(vals), shared)
    lookup = dict(zip(vals.tolist(), shared.tolist()))
    out = q.astype(np.int64).copy()
    out[nz] = np.vectorize(lookup.__getitem__, otypes=[np.int64])(out[nz])
    return out.astype(q.dtype)


def distinct_nonzero(q: np.ndarray) -> int:
    return int(np.unique(q[q != 0]).size)


def cluster_int8(graph: Graph, options: ClusterOptions) -> tuple[Graph, list[dict]]:
    """Share weights in every chosen layer. Returns the new graph and one row per layer:
    name, K asked, distinct nonzero values before and after."""
    g = graph.copy()
    layers = weight_layers(g)
    if not layers:
        raise TinycError("the model has no FULLY_CONNECTED or CONV_2D weights to cluster")
    own = {resolve_layer(layers, name, "--cluster-layer").op_index: k for name, k in options.per_layer.items()}
    rows = []
    for l in layers:
        k = own.get(l.op_index, options.clusters)
        t = g.tensors[l.weight]
        before = distinct_nonzero(t.data)
        if k:
            if t.quant is not None and np.any(t.quant.zero_point != 0):
                raise TinycError(f"cannot cluster {l.name}: its weight zero point is not 0")
            t.data = cluster_values(t.data, k)
        rows.append({"name": l.name, "op": l.kind, "clusters": k, "distinct_before": before,
                     "distinct": distinct_nonzero(t.data)})
    return g, rows
