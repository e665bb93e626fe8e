"""Low-rank factorisation of a Keras model's layers (`--low-rank`), before quantization, so the
int8 result is an ordinary graph of smaller layers.

Dense (in -> out): truncated SVD, W = U S V^T ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T): two Dense
  layers, in -> r (no bias, linear) and r -> out (the bias and activation of the original).
Conv2D (kh x kw, cin -> cout): Tucker-2 over the two channel modes by truncated HOSVD (the
  leading left singular vectors of each mode's unfolding; Kim et al. 2016): 1x1 cin -> r1,
  kh x kw r1 -> r2 with the original stride, padding and dilation, 1x1 r2 -> cout with the
  original bias and activation. TensorLy's partial_tucker would give the same starting
  point; the HOSVD is a few lines of numpy, so no new dependency.

A layer is factorised only where that reduces both its parameters and its MACs. The rank is
a fraction of the full rank (`0.25`) or the energy kept, the share of the squared singular
values (`energy:0.9`), globally or per layer. Fine-tuning (with --train) is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinyc.errors import TinycError
from tinyc.passes.prune import split_layer_option


@dataclass(frozen=True)
class RankSpec:
    kind: str      # "rank": fraction of the full rank kept; "energy": share of sum(S^2) kept
    value: float

    def rank(self, singular: np.ndarray) -> int:
        full = singular.size
        if self.kind == "rank":
            return max(1, min(full, int(round(self.value * full))))
        energy = np.cumsum(singular.astype(np.float64) ** 2)
        return max(1, min(full, int(np.searchsorted(energy / energy[-1], self.value - 1e-12) + 1)))

    def __str__(self):
        return f"{self.value:g}" if self.kind == "rank" else f"energy:{self.value:g}"


@dataclass
class LowRankOptions:
    spec: RankSpec | None = None                                  # --low-rank R
    per_layer: dict[str, RankSpec] = field(default_factory=dict)  # --low-rank-layer NAME=R

    @property
    def active(self) -> bool:
        return self.spec is not None or bool(self.per_layer)


def parse_rank(text: str, what: str = "--low-rank") -> RankSpec:
    """'0.25' (fraction of the rank kept) or 'energy:0.9' (share of the energy kept)."""
    kind, _, value = text.rpartition(":") if ":" in text else ("rank", "", text)
    if kind not in ("rank", "energy"):
        raise TinycError(f"{what} {text!r}: give a fraction of the rank (0.25) or of the energy (energy:0.9)")
    try:
        v = float(value)
    except ValueError:
        raise TinycError(f"{what} {text!r}: {value!r} is not a number; e.g. 0.25 or energy:0.9") from None
    if not 0.0 < v <= 1.0:
        raise TinycError(f"{what} {text!r}: the fraction must be in (0, 1], e.g. 0.25 or energy:0.9")
    return RankSpec(kind, v)


def parse_rank_layer(text: str) -> tuple[str, RankSpec]:
    name, value = split_layer_option(text, "--low-rank-layer", "fc1=0.25 or conv2=energy:0.9")
    return name, parse_rank(value, f"--low-rank-layer {name}:")


def _mode_basis(kernel: np.ndarray, axis: int, spec: RankSpec) -> np.ndarray:
    unfolded = np.moveaxis(kernel, axis, 0).reshape(kernel.shape[axis], -1)
    u, s, _ = np.linalg.svd(unfolded.astype(np.float64), full_matrices=False)
    return u[:, :spec.rank(s)]


def _spatial(shape) -> int:
    return int(np.prod([int(d) for d in shape[1:-1]])) if len(shape) > 2 else 1


def factor_dense(layer, spec: RankSpec) -> dict | None:
    w = np.asarray(layer.kernel.numpy(), dtype=np.float64)
    n_in, n_out = w.shape
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    r = spec.rank(s)
    if r * (n_in + n_out) >= n_in * n_out:
        return None
    root = np.sqrt(s[:r])
    positions = _spatial(layer.input.shape)
    return {"method": "svd", "ranks": [r], "full_rank": int(s.size),
            "kernels": [(u[:, :r] * root).astype(np.float32), (root[:, None] * vt[:r]).astype(np.float32)],
            "params_before": int(w.size), "params_after": int(r * (n_in + n_out)),
            "macs_before": int(positions * w.size), "macs_after": int(positions * r * (n_in + n_out)),
            "energy_kept": float((s[:r] ** 2).sum() / (s ** 2).sum())}


def factor_conv(layer, spec: RankSpec) -> dict | None:
    if getattr(layer, "groups", 1) != 1:
        return None
    k = np.asarray(layer.kernel.numpy(), dtype=np.float64)    # (kh, kw, cin, cout)
    kh, kw, cin, cout = k.shape
    u_in, u_out = _mode_basis(k, 2, spec), _mode_basis(k, 3, spec)
    r1, r2 = u_in.shape[1], u_out.shape[1]
    core = np.einsum("hwio,ir,os->hwrs", k, u_in, u_out)
    p_in, p_out = _spatial(layer.input.shape), _spatial(layer.output.shape)
    params_after = cin * r1 + kh * kw * r1 * r2 + r2 * cout
    macs_after = p_in * cin * r1 + p_out * (kh * kw * r1 * r2 + r2 * cout)
    if params_after >= k.size or macs_after >= p_out * k.size:
        return None
    return {"method": "tucker2", "ranks": [r1, r2], "full_rank": [cin, cout],
            "kernels": [u_in.reshape(1, 1, cin, r1).astype(np.float32), core.astype(np.float32),
                        u_out.T.reshape(1, 1, r2, cout).astype(np.float32)],
            "params_before": int(k.size), "params_after": int(params_after),
            "macs_before": int(p_out * k.size), "macs_after": int(macs_after)}


def _replacement(layer, plan: dict):
    import keras
    cfg = layer.get_config()
    name = layer.name
    if plan["method"] == "svd":
        (r,) = plan["ranks"]
        parts = [keras.layers.Dense(r, use_bias=False, name=f"{name}_lr_u"),
                 keras.layers.Dense(cfg["units"], activation=cfg["activation"], use_bias=cfg["use_bias"],
                                    name=f"{name}_lr_v")]
    else:
        r1, r2 = plan["ranks"]
        parts = [keras.layers.Conv2D(r1, 1, use_bias=False, name=f"{name}_lr_in"),
                 keras.layers.Conv2D(r2, cfg["kernel_size"], strides=cfg["strides"], padding=cfg["padding"],
                                     dilation_rate=cfg["dilation_rate"], use_bias=False, name=f"{name}_lr_core"),
                 keras.layers.Conv2D(cfg["filters"], 1, activation=cfg["activation"], use_bias=cfg["use_bias"],
                                     name=f"{name}_lr_out")]
    return keras.Sequential(parts, name=name)


def factorize_keras(model, options: LowRankOptions) -> tuple[object, list[dict]]:
    """A new Keras model with the chosen layers factorised (weights copied or decomposed), and
    one row per Dense/Conv2D layer: method, ranks, parameters and MACs before and after."""
    import keras

    candidates = {l.name: l for l in model.layers if type(l).__name__ in ("Dense", "Conv2D")}
    for name in options.per_layer:
        if name not in candidates:
            raise TinycError(f"--low-rank-layer {name}: no such Dense or Conv2D layer; "
                             f"layers: {', '.join(candidates)}")
    plans, rows = {}, []
    for name, layer in candidates.items():
        spec = options.per_layer.get(name, options.spec)
        if spec is None:
            continue
        plan = factor_dense(layer, spec) if type(layer).__name__ == "Dense" else factor_conv(layer, spec)
        row = {"name": name, "op": type(layer).__name__, "spec": str(spec)}
        if plan is None:
            rows.append({**row, "method": None, "why": "would not reduce its parameters and MACs"})
            continue
        plans[name] = plan
        rows.append({**row, **{k: v for k, v in plan.items() if k != "kernels"}})

    def clone(layer):
        if layer.name in plans:
            return _replacement(layer, plans[layer.name])
        return layer.__class__.from_config(layer.get_config())

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        target = new.get_layer(layer.name)
        if layer.name not in plans:
            target.set_weights(layer.get_weights())
            continue
        kernels = plans[layer.name]["kernels"]
        for part, kernel in zip(target.layers, kernels):
            part.kernel.assign(kernel)
        if layer.use_bias:
            target.layers[-1].bias.assign(layer.bias.numpy())
    return new, rows


def rank_budget_note(rows: list[dict]) -> str:
    """One line: the layers factorised and the parameters saved."""
    done = [r for r in rows if r.get("method")]
    before = sum(r["params_before"] for r in done)
    after = sum(r["params_after"] for r in done)
    return (f"low-rank: {len(done)} layer(s) factorised, their parameters {before:,} -> {after:,}"
            + (f" ({before / after:.2f}x)" if after else "")) if done else "low-rank: no layer would get smaller"

