"""Pruning of int8 graphs: magnitude (unstructured) and output-channel (structured). Pure
IR -> IR; pruning a Keras model while fine-tuning it is tinyc/quantize/finetune.py.

int8 graphs (an int8 .tflite, no training possible): weights are zeroed in place.
  Magnitude: the |real weight| = |q| * scale (per-channel scales respected) of the chosen
  layers are ranked and exactly round(s * n) of them set to 0, globally over the layers or
  per layer (`per_layer`). Ties are broken by position, so the count is exact.
  Structured: in each FULLY_CONNECTED / CONV_2D layer the output channels with the smallest
  L1 norm are removed and the graph rewritten: the layer's weights, bias, per-channel scales
  and output shape shrink, and so do the ops on the way to the next weight layer (pooling,
  padding, reshape/flatten, depthwise convolution), which loses the matching inputs.

"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyc.errors import TinycError
from tinyc.ir import Graph

WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass
class PruneOptions:
    sparsity: float | None = None                         # global target (--prune)
    per_layer: dict[str, float] = field(default_factory=dict)   # --prune-layer NAME=S
    channels: float | None = None                         # --prune-channels R
    exclude_first_last: bool = True   # leave the first/last layer out of `sparsity` when it is small
    channels_per_layer: dict[str, float] = field(default_factory=dict)   # NAME -> R (overrides channels)
    allocation: str = "magnitude"     # how --prune spreads its zeros over the pooled layers (ALLOCATIONS)
    value_bits: float = 8.0           # "bits" allocation: bits of a stored value (log2 K when clustering)

    @property
    def active(self) -> bool:
        return bool(self.sparsity) or bool(self.per_layer) or bool(self.channels) or bool(self.channels_per_layer)


# The first and last weight layers (input features, class scores) are the most sensitive, so
# --prune leaves them out by default, but only when they hold less than this share of the
# weights: on LeNet-300-100 the first layer is 88% of the model, and leaving it out would turn
# a 92% request into 4x instead of ~30x.
SMALL_LAYER_SHARE = 0.1


ALLOCATIONS = ("magnitude", "bits")


def excluded_by_default(sizes: list[int], options: PruneOptions) -> set[int]:
    """Positions (in layer order) of the first/last weight layers that --prune leaves out."""
    if not options.exclude_first_last or len(sizes) <= 2:
        return set()
    total = sum(sizes)
    return {i for i in (0, len(sizes) - 1) if sizes[i] < SMALL_LAYER_SHARE * total}


def check_fraction(value: float, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TinycError(f"{what} {value!r} is not a number; give a fraction in [0, 1), e.g. 0.9") from None
    if not (0.0 <= v < 1.0):
        raise TinycError(f"{what} {v:g} is outside [0, 1); give the fraction of weights to remove, e.g. 0.9")
    return v


def split_layer_option(text: str, option: str, example: str) -> tuple[str, str]:
    """'NAME=VALUE' -> (NAME, 'VALUE'); the name may itself contain '='."""
    if "=" not in text:
        raise TinycError(f"{option} {text!r}: expected NAME=VALUE, e.g. {example}")
    name, _, value = text.rpartition("=")
    return name, value


def parse_layer_option(text: str) -> tuple[str, float]:
    """'NAME=0.95' -> (NAME, 0.95)."""
    name, value = split_layer_option(text, "--prune-layer", "dense_1=0.95")
    return name, check_fraction(value, f"--prune-layer {name}:")


# ---------------------------------------------------------------------------------- int8 graph

@dataclass
class LayerInfo:
    op_index: int
    name: str
    kind: str
    weight: int          # tensor index


def weight_layers(graph: Graph) -> list[LayerInfo]:
    out = []
    for i, op in enumerate(graph.ops):
        if op.kind in WEIGHT_OPS and len(op.inputs) > 1 and graph.tensors[op.inputs[1]].is_const \
                and graph.tensors[op.inputs[1]].dtype == "int8":
            out.append(LayerInfo(i, op.name or f"op{i}", op.kind, op.inputs[1]))
    return out


def _short_names(name: str) -> set[str]:
    parts = {name}
    for sep in ("/", ";"):
        for p in name.split(sep):
            if p:
                parts.add(p)
    return parts


def resolve_layer(layers: list[LayerInfo], name: str, option: str = "--prune-layer") -> LayerInfo:
    """A layer by its full op name, or by a unique '/'- or ';'-separated part of it (a Keras
    layer name such as dense_1)."""
    exact = [l for l in layers if l.name == name]
    if exact:
        return exact[0]
    part = [l for l in layers if name in _short_names(l.name)]
    if len(part) == 1:
        return part[0]
    names = ", ".join(l.name for l in layers)
    if len(part) > 1:
        raise TinycError(f"{option} {name} matches {len(part)} layers ({', '.join(l.name for l in part)}); "
                         "give the full name")
    raise TinycError(f"{option} {name}: no such layer; layers with weights: {names}")


def _per_axis(w, values: np.ndarray) -> np.ndarray:
    """Per-tensor or per-axis quantization values broadcast against the weight array."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return values.reshape(())
    shape = [1] * w.data.ndim
    shape[w.quant.axis] = values.size
    return values.reshape(shape)


def _real_magnitude(graph: Graph, layer: LayerInfo) -> np.ndarray:
    """|q - zero_point| * scale per weight (the channel's values for per-channel weights)."""
    w = graph.tensors[layer.weight]
    q = w.data.astype(np.float64)
    if w.quant is None:
        return np.abs(q)
    return np.abs(q - _per_axis(w, w.quant.zero_point)) * _per_axis(w, w.quant.scale)


def _zero_value(w) -> np.ndarray:
    """The stored value of a real 0: the zero point (0 for TFLite's symmetric int8 weights)."""
    return _per_axis(w, w.quant.zero_point).astype(np.int64) if w.quant is not None else np.int64(0)


def _zeros(w) -> int:
    return int(np.count_nonzero(w.data == _zero_value(w)))


def zero_smallest(mags: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Masks (True = keep) that zero exactly the k smallest of the concatenated magnitudes."""
    flat = np.concatenate([m.reshape(-1) for m in mags]) if mags else np.zeros(0)
    keep = np.ones(flat.size, dtype=bool)
    if k > 0:
        order = np.argsort(flat, kind="stable")
        keep[order[:k]] = False
    out, start = [], 0
    for m in mags:
        out.append(keep[start:start + m.size].reshape(m.shape))
        start += m.size
    return out


def nonzero_bits(density: np.ndarray, value_bits: float) -> np.ndarray:
    """Bits a nonzero costs in an entropy-coded sparse layer of this density: its value, and
    its position, which for independent positions takes H(d) / d bits (binary entropy per
    weight, over the nonzeros): cheap in a dense layer, ~log2(1/d) in a very sparse one."""
    d = np.clip(np.asarray(density, dtype=np.float64), 1e-9, 1.0 - 1e-9)
    return value_bits - (d * np.log2(d) + (1.0 - d) * np.log2(1.0 - d)) / d


# Global pruning (either allocation) keeps in each pooled layer at least this share of the
# nonzeros uniform pruning would leave it: magnitude ranks weights across layers whose scales
# differ, and alone it cannot tell that an emptied layer cuts the network (global --prune 0.5
# emptied ad01's first layer).
MIN_DENSITY_SHARE = 0.25


def reserved_largest(mags: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Per layer, the MIN_DENSITY_SHARE floor of its largest weights (True = never pruned)
    when k of the pooled weights are zeroed."""
    sizes = np.array([m.size for m in mags], dtype=np.float64)
    keep_share = 1.0 - k / max(1.0, sizes.sum())
    floors = np.minimum(np.ceil(MIN_DENSITY_SHARE * keep_share * sizes), sizes).astype(np.int64)
    reserved = []
    for m, f in zip(mags, floors):
        r = np.zeros(m.size, dtype=bool)
        r[np.argsort(-m.reshape(-1), kind="stable")[:f]] = True
        reserved.append(r.reshape(m.shape))
    return reserved


def zero_cheapest(mags: list[np.ndarray], k: int, value_bits: float, iters: int = 50) -> list[np.ndarray]:
    """Masks (True = keep) zeroing exactly k weights, ranked by magnitude per stored bit.

    Rate-aware global pruning: a weight is kept when |w| >= lambda * bits(its layer), the
    Lagrangian of "least magnitude pruned for the bits stored". bits(layer) depends on the
    layer's density after pruning (nonzero_bits), so the per-layer costs are found by fixed-point
    iteration from plain magnitude ranking: nonzeros move to the layers where one is cheap to
    store (dense ones). Each layer keeps its MIN_DENSITY_SHARE floor of largest weights."""
    sizes = np.array([m.size for m in mags], dtype=np.float64)
    reserved = reserved_largest(mags, k)
    cost = np.ones(len(mags))
    kept = None
    for _ in range(iters):
        masks = zero_smallest([np.where(r, np.inf, m / c) for m, r, c in zip(mags, reserved, cost)], k)
        nz = np.array([int(m.sum()) for m in masks])
        if kept is not None and np.array_equal(nz, kept):
            break
        kept = nz
        bits = nonzero_bits(np.maximum(nz, 1) / sizes, value_bits)
        cost = bits / bits.mean()
    return masks


def allocate_zeros(mags: list[np.ndarray], k: int, options: PruneOptions) -> list[np.ndarray]:
    """Masks zeroing exactly k of the pooled weights, by the allocation `options` asks for."""
    if options.allocation == "bits" and len(mags) > 1:
        return zero_cheapest(mags, k, options.value_bits)
    if options.allocation not in ALLOCATIONS:
        raise TinycError(f"--prune-allocation {options.allocation}: choose one of {', '.join(ALLOCATIONS)}")
    if len(mags) > 1:
        return zero_smallest([np.where(r, np.inf, m) for m, r in zip(mags, reserved_largest(mags, k))], k)
    return zero_smallest(mags, k)


def _apply(g: Graph, pool: list[LayerInfo], s: float, options: PruneOptions | None = None) -> None:
    """Zero exactly round(s * n) of the pool's n weights, the smallest |real value| first (per
    stored bit with the "bits" allocation)."""
    mags = [_real_magnitude(g, l) for l in pool]
    n = sum(m.size for m in mags)
    for l, keep in zip(pool, allocate_zeros(mags, int(round(s * n)), options or PruneOptions())):
        t = g.tensors[l.weight]
        t.data = np.where(keep, t.data, _zero_value(t)).astype(np.int8)


def prune_int8(graph: Graph, options: PruneOptions) -> tuple[Graph, list[dict]]:
    """Magnitude pruning of an int8 graph's weights: `sparsity` over the pooled layers (all
    but those with their own target, and but the first and last when excluded), each
    `per_layer` target on its own layer (see excluded_by_default). Returns the new graph and one row per layer."""
    g = graph.copy()
    layers = weight_layers(g)
    if not layers:
        raise TinycError("the model has no FULLY_CONNECTED or CONV_2D weights to prune")
    own: dict[int, float] = {}
    for name, s in options.per_layer.items():
        own[resolve_layer(layers, name).op_index] = check_fraction(s, f"--prune-layer {name}:")
    left_out = excluded_by_default([g.tensors[l.weight].size for l in layers], options)
    pool = [l for k, l in enumerate(layers) if l.op_index not in own and k not in left_out]
    before = {l.op_index: _zeros(g.tensors[l.weight]) for l in layers}
    targets = dict(own)
    if options.sparsity:
        s = check_fraction(options.sparsity, "--prune")
        _apply(g, pool, s, options)
        targets.update({l.op_index: s for l in pool})
    for l in layers:
        if l.op_index in own:
            _apply(g, [l], own[l.op_index])
    rows = []
    for l in layers:
        t = g.tensors[l.weight]
        zeros = _zeros(t)
        if zeros == t.size and l.op_index in targets and before[l.op_index] < t.size:
            raise TinycError(f"pruning empties layer {l.name} (all {t.size} weights would be zero); "
                             "lower its sparsity")
        rows.append({"name": l.name, "op": l.kind, "params": int(t.size), "zeros_before": before[l.op_index],
                     "zeros": zeros, "target": targets.get(l.op_index)})
    return g, rows


# ------------------------------------------------------------------------- structured (int8)

_PASS_THROUGH = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "QUANTIZE")


def _slice_quant(t, keep: np.ndarray, axis: int):
    if t.quant is not None and t.quant.per_axis and t.quant.axis == axis:
        t.quant.scale = t.quant.scale[keep]
        t.quant.zero_point = t.quant.zero_point[keep]


def _chain(graph: Graph, op_index: int):
    """Ops from layer op_index's output to the next weight layer, or None if the channels
    cannot be followed (several consumers, graph output, an op that mixes channels)."""
    consumers = graph.consumers()
    out = graph.ops[op_index].outputs[0]
    chain = []
    while True:
        if out in graph.outputs:
            return None
        users = consumers.get(out, [])
        if len(users) != 1:
            return None
        j = users[0]
        op = graph.ops[j]
        if op.inputs[0] != out:
            return None
        if op.kind in ("FULLY_CONNECTED", "CONV_2D"):
            chain.append(j)
            return chain
        if op.kind == "DEPTHWISE_CONV_2D":
            x = graph.tensors[op.inputs[0]]
            if graph.tensors[op.outputs[0]].shape[-1] != x.shape[-1]:
                return None   # depth multiplier > 1
        elif op.kind == "PAD":
            pads = graph.tensors[op.inputs[1]].data if len(op.inputs) > 1 else None
            if pads is None or np.any(np.asarray(pads).reshape(-1, 2)[-1] != 0):
                return None
        elif op.kind == "RESHAPE":
            x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
            if not (len(y.shape) == 2 and int(y.shape[0]) == int(x.shape[0])):
                return None   # only a flatten to [batch, n]
        elif op.kind not in _PASS_THROUGH:
            return None
        chain.append(j)
        out = op.outputs[0]


def prune_channels(graph: Graph, ratio: float | None,
                   per_layer: dict[str, float] | None = None) -> tuple[Graph, list[dict]]:
    """Remove round(ratio * C) output channels (smallest L1) of every FULLY_CONNECTED / CONV_2D
    layer whose output reaches exactly one next weight layer through channel-wise ops;
    `per_layer` (layer name -> ratio) overrides the ratio of the layers it names."""
    ratio = check_fraction(ratio or 0.0, "--prune-channels")
    layers = weight_layers(graph)
    own = {resolve_layer(layers, name).op_index: check_fraction(r, f"channel ratio of {name}:")
           for name, r in (per_layer or {}).items()}
    g = graph.copy()
    rows = []
    for layer in layers:
        i = layer.op_index
        layer_ratio = own.get(i, ratio)
        op = g.ops[i]
        if op.kind not in ("FULLY_CONNECTED", "CONV_2D"):
            continue
        chain = _chain(g, i)
        w = g.tensors[op.inputs[1]]
        channels = int(w.shape[0])
        if chain is None:
            rows.append({"name": op.name, "op": op.kind, "channels": channels, "removed": 0,
                         "why": "its output does not lead to exactly one weight layer through channel-wise ops"})
            continue
        n_remove = int(round(layer_ratio * channels))
        if n_remove >= channels:
            raise TinycError(f"--prune-channels {layer_ratio:g} removes every channel of {op.name}; lower it")
        if n_remove == 0:
            rows.append({"name": op.name, "op": op.kind, "channels": channels, "removed": 0, "why": "ratio too small"})
            continue
        l1 = _real_magnitude(g, LayerInfo(i, op.name, op.kind, op.inputs[1])).reshape(channels, -1).sum(axis=1)
        drop = np.sort(np.argsort(l1, kind="stable")[:n_remove])
        keep = np.setdiff1d(np.arange(channels), drop)
        _remove_channels(g, i, chain, keep, channels)
        rows.append({"name": op.name, "op": op.kind, "channels": channels, "removed": int(n_remove)})
    return g, rows


def _set_shape(t, shape):
    t.shape = tuple(int(d) for d in shape)


def _set_data(t, data: np.ndarray) -> None:
    """Replace a constant tensor's data (and shape) with `data`."""
    t.data = np.ascontiguousarray(data)
    _set_shape(t, t.data.shape)


def _flat_positions(spatial: int, channels: int, index: np.ndarray) -> np.ndarray:
    """Flat positions of the kept channels `index` in an NHWC tensor flattened to
    [batch, spatial * channels]: element (p, c) sits at p * channels + c."""
    return (np.arange(spatial)[:, None] * channels + index[None, :]).reshape(-1)


def _keep_bias(g: Graph, op, index: np.ndarray) -> None:
    """Keep only the `index` entries of op's bias (if it has one)."""
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.tensors[op.inputs[2]]
        _set_data(b, b.data.reshape(-1)[index])
        _slice_quant(b, index, 0)


def _remove_channels(g: Graph, i: int, chain: list[int], keep: np.ndarray, channels: int) -> None:
    op = g.ops[i]
    w = g.tensors[op.inputs[1]]
    _set_data(w, w.data[keep])
    _slice_quant(w, keep, 0)
    _keep_bias(g, op, keep)
    y = g.tensors[op.outputs[0]]
    _set_shape(y, (*y.shape[:-1], keep.size))
    # Positions of the kept values along the last axis of each tensor down the chain.
    index = keep            # kept channel indices, within a channel-last tensor
    flat = False            # after a flatten, index holds kept flat positions
    for j in chain:
        nop = g.ops[j]
        x_shape = g.tensors[nop.inputs[0]].shape   # already updated
        if nop.kind == "FULLY_CONNECTED":
            nw = g.tensors[nop.inputs[1]]
            cols = index
            if not flat:   # an FC reading a [.., H, W, C] tensor flattens it itself
                cols = _flat_positions(int(nw.shape[1]) // channels, channels, index)
            _set_data(nw, nw.data[:, cols])
            return
        if nop.kind == "CONV_2D":
            nw = g.tensors[nop.inputs[1]]
            if int(nw.shape[3]) != channels:
                raise TinycError(f"cannot remove channels of {op.name}: {nop.name} is a grouped convolution")
            _set_data(nw, nw.data[..., index])
            return
        ny = g.tensors[nop.outputs[0]]
        if nop.kind == "DEPTHWISE_CONV_2D":
            dw = g.tensors[nop.inputs[1]]
            _set_data(dw, dw.data[..., index])
            _slice_quant(dw, index, 3)
            _keep_bias(g, nop, index)
            _set_shape(ny, (*ny.shape[:-1], index.size))
        elif nop.kind == "RESHAPE":
            spatial = int(np.prod(x_shape[1:-1])) if len(x_shape) > 2 else 1
            index = _flat_positions(spatial, channels, index)
            flat = True
            _set_shape(ny, (ny.shape[0], int(np.prod(x_shape[1:]))))
            if len(nop.inputs) > 1 and nop.inputs[1] >= 0 and g.tensors[nop.inputs[1]].is_const:
                st = g.tensors[nop.inputs[1]]
                st.data = np.asarray(ny.shape, dtype=st.data.dtype).reshape(st.data.shape)
            if "new_shape" in nop.attrs and nop.attrs["new_shape"] is not None:
                nop.attrs["new_shape"] = list(ny.shape)
        else:   # pooling, channel-free padding, requantize: same channels
            _set_shape(ny, (*ny.shape[:-1], x_shape[-1]))
