"""Cross-layer equalisation (Nagel et al. 2019, "Data-Free Quantization", section 4.1) of a Keras
model, in place, before quantization-aware fine-tuning.

Where a layer's output channel c reaches the next weight layer only through a batch norm and
a ReLU (positively homogeneous: relu(y / s) = relu(y) / s), dividing channel c of the first
layer by s_c and multiplying the second layer's input channel c by s_c leaves the float
function unchanged. s_c = sqrt(r1_c / r2_c), with r1_c the range of the first layer's folded
weights of channel c and r2_c that of the second layer's weights reading it, gives both the
same range sqrt(r1_c r2_c): per-tensor weight scales then serve every channel alike, and the
activation between them, which TFLite quantizes per tensor, loses its uneven channel ranges
too. Pairs along a chain (depthwise -> pointwise -> depthwise ...) are equalised a few times
over, as the paper does.
"""

from __future__ import annotations

import numpy as np

FIRST = ("Conv2D", "DepthwiseConv2D", "Dense")
SECOND = ("Conv2D", "Dense")
SWEEPS = 4


def _relu(layer) -> bool:
    kind = type(layer).__name__
    if kind == "ReLU":
        cfg = layer.get_config()
        return not cfg.get("negative_slope") and cfg.get("max_value") is None and not cfg.get("threshold")
    return kind == "Activation" and getattr(layer.activation, "__name__", "") == "relu"


def _out_channels(layer) -> int:
    k = layer.kernel.shape
    return int(k[-2] * k[-1]) if type(layer).__name__ == "DepthwiseConv2D" else int(k[-1])


def pairs(layers, consumers) -> list[tuple]:
    """(first, batch norm or None, second) chains: first -> [batch norm] -> ReLU -> second, each
    link the only reader of the tensor before it, no activation inside the layers but the ReLU."""
    out = []
    for a in layers:
        if type(a).__name__ not in FIRST or getattr(getattr(a, "activation", None), "__name__", "linear") != "linear":
            continue
        chain, bn = consumers.get(id(a), []), None
        if len(chain) == 1 and type(chain[0]).__name__ == "BatchNormalization":
            bn = chain[0]
            chain = consumers.get(id(bn), [])
        if len(chain) != 1 or not _relu(chain[0]):
            continue
        chain = consumers.get(id(chain[0]), [])
        if len(chain) != 1 or type(chain[0]).__name__ not in SECOND:
            continue
        b = chain[0]
        if getattr(getattr(b, "activation", None), "__name__", "linear") not in ("linear", "relu"):
            continue
        if int(b.kernel.shape[-2]) != _out_channels(a) or (bn is not None and not bn.scale):
            continue
        out.append((a, bn, b))
    return out


def _fold(a, bn) -> np.ndarray:
    """Per output channel of a, the factor its weights take when the batch norm folds in."""
    if bn is None:
        return np.ones(_out_channels(a))
    var = np.asarray(bn.moving_variance.numpy(), dtype=np.float64)
    return np.asarray(bn.gamma.numpy(), dtype=np.float64) / np.sqrt(var + bn.epsilon)


def _flat(a) -> np.ndarray:
    """a's kernel as [weights per output channel, output channels]."""
    w = np.asarray(a.kernel.numpy(), dtype=np.float64)
    return w.reshape(-1, _out_channels(a))


def equalise_pair(a, bn, b) -> np.ndarray:
    """Rescale one pair in place; returns the scales s_c."""
    r1 = np.abs(_flat(a) * _fold(a, bn)).max(axis=0)
    w2 = np.asarray(b.kernel.numpy(), dtype=np.float64)
    r2 = np.abs(w2.reshape(-1, w2.shape[-2], w2.shape[-1])).max(axis=(0, 2))
    ok = (r1 > 0) & (r2 > 0)
    s = np.where(ok, np.sqrt(np.where(ok, r1, 1.0) / np.where(ok, r2, 1.0)), 1.0)
    if bn is not None:   # channel c of the batch norm's output / s_c
        bn.gamma.assign((bn.gamma.numpy() / s).astype(np.float32))
        if bn.beta is not None:
            bn.beta.assign((bn.beta.numpy() / s).astype(np.float32))
    else:                # of the layer's own output
        a.kernel.assign((_flat(a) / s).reshape(a.kernel.shape).astype(np.float32))
        if getattr(a, "bias", None) is not None:
            a.bias.assign((a.bias.numpy() / s).astype(np.float32))
    b.kernel.assign((w2 * s[:, None]).astype(np.float32) if w2.ndim == 2
                    else (w2 * s[None, None, :, None]).astype(np.float32))
    return s


def equalise(layers, consumers) -> list[dict]:
    """Equalise every pair found; one report row per pair (names and the spread of the channel
    ranges of the second layer's input before and after)."""
    rows = []
    found = pairs(layers, consumers)
    before = {id(b): _spread(a, bn) for a, bn, b in found}
    for _ in range(SWEEPS):
        for a, bn, b in found:
            equalise_pair(a, bn, b)
    for a, bn, b in found:
        rows.append({"first": a.name, "second": b.name, "range_spread_before": before[id(b)],
                     "range_spread_after": _spread(a, bn)})
    return rows


def _spread(a, bn) -> float:
    """Largest over smallest channel range of a's folded weights."""
    r = np.abs(_flat(a) * _fold(a, bn)).max(axis=0)
    r = r[r > 0]
    return float(r.max() / r.min()) if r.size else 1.0
