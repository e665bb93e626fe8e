"""The search space of `tinyc fit`: per weight layer, one dimension per compression method.

A plan is {layer name: {method name: value}}; `compress_options(plan)` turns it into the
`CompressOptions` that `tinyc.passes.compress.compress` applies. Every method is a `Method`
in METHODS: its choices for a layer (None: not applicable), the value that leaves the layer
as it is, the levels the sensitivity scan probes, and how a value goes into the options.
A new compression method (clustering, low rank, ...) is one more `Method` here and one more
per-layer field of `CompressOptions`; the search, the sensitivity scan and the report pick
it up without further changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from tinyc.errors import TinycError
from tinyc.ir import Graph
from tinyc.passes.compress import CompressOptions
from tinyc.passes.prune import PruneOptions, prune_channels, weight_layers

Plan = dict[str, dict[str, object]]


@dataclass(frozen=True)
class Method:
    name: str
    neutral: object                                  # the value that changes nothing
    choices: Callable[[Graph, str, str], tuple | None]   # (graph, layer name, op kind) -> choices
    apply: Callable[[CompressOptions, str, object], None]   # put one layer's value into the options
    lossy: bool = True                               # False: outputs unchanged, no sensitivity scan


SPARSITY_LEVELS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
CHANNEL_LEVELS = (0.0, 0.125, 0.25, 0.375, 0.5)
ENCODINGS = ("raw", "auto", "smallest")   # tinyc.passes.encode modes: raw, <=2x time, no time limit


def _sparsity_choices(graph, name, kind):
    return SPARSITY_LEVELS


def _channel_choices(graph, name, kind):
    if kind not in ("FULLY_CONNECTED", "CONV_2D"):
        return None
    # Only layers whose channels can be followed to the next weight layer can lose some.
    _, rows = prune_channels(graph, None, {name: 0.5})
    row = next((r for r in rows if r["name"] == name), None)
    return CHANNEL_LEVELS if row is not None and row.get("removed", 0) > 0 else None


def _encoding_choices(graph, name, kind):
    return ENCODINGS


def _set_sparsity(o: CompressOptions, name: str, v) -> None:
    if v:
        o.prune.per_layer[name] = float(v)


def _set_channels(o: CompressOptions, name: str, v) -> None:
    if v:
        o.prune.channels_per_layer[name] = float(v)


def _set_encoding(o: CompressOptions, name: str, v) -> None:
    if v != "raw":
        o.per_layer_weights[name] = str(v)


METHODS = (
    Method("channels", 0.0, _channel_choices, _set_channels),
    Method("sparsity", 0.0, _sparsity_choices, _set_sparsity),
    Method("weights", "raw", _encoding_choices, _set_encoding, lossy=False),
)
METHOD_BY_NAME = {m.name: m for m in METHODS}


@dataclass
class LayerSpace:
    """One weight layer and the choices of every method that applies to it."""

    key: str                      # short, stable parameter prefix: L0, L1, ...
    name: str                     # the op name (what --prune-layer and the report use)
    op: str
    params: int
    choices: dict[str, tuple] = field(default_factory=dict)   # method name -> choices

    def restricted(self, method: str, allowed: tuple) -> "LayerSpace":
        return dataclasses.replace(self, choices={**self.choices, method: allowed})


def build_space(graph: Graph) -> list[LayerSpace]:
    layers = weight_layers(graph)
    if not layers:
        raise TinycError("the model has no FULLY_CONNECTED or CONV_2D weights: nothing for fit to compress")
    out = []
    for k, l in enumerate(layers):
        choices = {}
        for m in METHODS:
            c = m.choices(graph, l.name, l.kind)
            if c:
                choices[m.name] = tuple(c)
        out.append(LayerSpace(f"L{k}", l.name, l.kind, int(graph.tensors[l.weight].size), choices))
    return out


def neutral_plan(space: list[LayerSpace]) -> Plan:
    return {l.name: {m: METHOD_BY_NAME[m].neutral for m in l.choices} for l in space}


def compress_options(plan: Plan) -> CompressOptions:
    """The options that apply `plan` (layers and methods it does not name stay as they are)."""
    o = CompressOptions(PruneOptions(exclude_first_last=False), weights="raw", report=True)
    for name, values in plan.items():
        for method, v in values.items():
            METHOD_BY_NAME[method].apply(o, name, v)
    return o


def param_name(layer: LayerSpace, method: str) -> str:
    return f"{layer.key}.{method}"


def suggest_plan(trial, space: list[LayerSpace]) -> Plan:
    """Ask an Optuna trial for one value per layer and method."""
    return {l.name: {m: trial.suggest_categorical(param_name(l, m), list(c)) for m, c in l.choices.items()}
            for l in space}


def trial_params(plan: Plan, space: list[LayerSpace]) -> dict:
    """A plan as Optuna parameters (for study.enqueue_trial)."""
    return {param_name(l, m): plan[l.name][m] for l in space for m in l.choices}
