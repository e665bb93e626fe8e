"""The search space of `tinyc fit`: per weight layer, one dimension per compression method,
and model-wide dimensions (the --optimize level).

A plan is {layer name: {method name: value}} (model-wide methods under MODEL);
`plan_settings(plan)` turns it into the `Settings` a candidate is made with: the
`CompressOptions` that `tinyc.passes.compress.compress` applies, the --optimize level the C
is generated at, and the layers computed in 16x8. Every method is a `Method` in METHODS: its
choices for a layer (None: not applicable), ordered from the value that leaves the layer as
it is to the most aggressive one, the levels the sensitivity scan probes (lossy methods), and
how a value goes into the settings. A new compression method is one more `Method` here; the
search, the sensitivity scan, the printed plan and the report pick it up without further
changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

from tinyc.codegen import OPTIMIZE_LEVELS
from tinyc.codegen.ops import check_op
from tinyc.errors import TinycError, UnsupportedError
from tinyc.ir import Graph
from tinyc.passes.compress import CompressOptions
from tinyc.passes.cluster import ClusterOptions
from tinyc.passes.prune import LayerInfo, PruneOptions, prune_channels, weight_layers

Plan = dict[str, dict[str, object]]
MODEL = "(model)"   # the plan's entry for model-wide methods


@dataclass
class Settings:
    """What a plan asks for, in the terms of the passes and the code generator."""

    compress: CompressOptions
    optimize: str = "balanced"
    precision: dict[str, str] = field(default_factory=dict)   # layer name -> "16x8"


@dataclass
class Source:
    """What the choices of a method may depend on: the int8 graph, and its 16x8 conversion
    when the model is float (None for an int8 .tflite)."""

    graph: Graph
    graph_16x8: Graph | None = None


@dataclass(frozen=True)
class Method:
    name: str
    neutral: object                                       # the value that changes nothing
    choices: Callable[[Source, LayerInfo], tuple | None]  # neutral first, then ever more aggressive
    apply: Callable[[Settings, str, object], None]        # put one layer's value into the settings
    lossy: bool = True            # False: accuracy not lowered, no sensitivity scan
    model_wide: bool = False      # one value for the whole model (choices get no layer)
    start: Callable[[str], object] | None = None   # value in the starting plans, by --objective
    help: str = ""


SPARSITY_LEVELS = (0.0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
CHANNEL_LEVELS = (0.0, 0.125, 0.25, 0.375, 0.5)
ENCODINGS = ("raw", "auto", "smallest")   # tinyc.passes.encode modes: raw, <=2x time, no time limit
CLUSTER_LEVELS = (0, 64, 32, 16, 8, 4)    # shared values per layer (0: not clustered)
PRECISIONS = ("int8", "16x8")


def _sparsity_choices(src, layer):
    return SPARSITY_LEVELS


def _channel_choices(src, layer):
    if layer.kind not in ("FULLY_CONNECTED", "CONV_2D"):
        return None
    # Only layers whose channels can be followed to the next weight layer can lose some.
    _, rows = prune_channels(src.graph, None, {layer.name: 0.5})
    row = next((r for r in rows if r["name"] == layer.name), None)
    return CHANNEL_LEVELS if row is not None and row.get("removed", 0) > 0 else None


def _encoding_choices(src, layer):
    return ENCODINGS


def _cluster_choices(src, layer):
    w = src.graph.tensors[layer.weight]
    if w.quant is not None and (w.quant.zero_point != 0).any():
        return None
    return CLUSTER_LEVELS


def _precision_choices(src, layer):
    if src.graph_16x8 is None:
        return None
    try:
        check_op(src.graph_16x8, layer.op_index)   # tinyc has a 16x8 kernel for it
    except (UnsupportedError, TinycError):
        return None
    return PRECISIONS


def _optimize_choices(src, layer):
    return OPTIMIZE_LEVELS


def _set_sparsity(s: Settings, name: str, v) -> None:
    if v:
        s.compress.prune.per_layer[name] = float(v)


def _set_channels(s: Settings, name: str, v) -> None:
    if v:
        s.compress.prune.channels_per_layer[name] = float(v)


def _set_encoding(s: Settings, name: str, v) -> None:
    if v != "raw":
        s.compress.per_layer_weights[name] = str(v)


def _set_clusters(s: Settings, name: str, v) -> None:
    if v:
        s.compress.cluster.per_layer[name] = int(v)


def _set_precision(s: Settings, name: str, v) -> None:
    if v == "16x8":
        s.precision[name] = "16x8"


def _set_optimize(s: Settings, name: str, v) -> None:
    s.optimize = str(v)


METHODS = (
    Method("channels", 0.0, _channel_choices, _set_channels, help="output channels removed"),
    Method("sparsity", 0.0, _sparsity_choices, _set_sparsity, help="weights zeroed by magnitude"),
    Method("clusters", 0, _cluster_choices, _set_clusters, help="shared weight values per layer"),
    Method("weights", "raw", _encoding_choices, _set_encoding, lossy=False, start=lambda objective: "auto",
           help="weight encoding"),
    Method("precision", "int8", _precision_choices, _set_precision, lossy=False, start=lambda objective: "int8",
           help="int8 or 16x8 activations, float models only"),
    Method("optimize", "balanced", _optimize_choices, _set_optimize, lossy=False, model_wide=True,
           start=lambda objective: {"size": "size", "speed": "speed"}.get(objective, "balanced"),
           help="the --optimize level of the C"),
)
METHOD_BY_NAME = {m.name: m for m in METHODS}
DEFAULT_METHODS = ("channels", "sparsity", "weights")


def parse_methods(text: str | tuple | list) -> tuple[str, ...]:
    """'channels,sparsity,clusters' -> the methods in METHODS order."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    unknown = [n for n in names if n not in METHOD_BY_NAME]
    if unknown or not names:
        raise TinycError(f"--methods {','.join(names) if isinstance(text, str) else text}: "
                         f"{'unknown ' + ', '.join(unknown) if unknown else 'give at least one'}; "
                         f"choose from {','.join(METHOD_BY_NAME)}")
    return tuple(m.name for m in METHODS if m.name in names)


@dataclass
class LayerSpace:
    """One weight layer (or the model, for model-wide methods) and the choices of every
    method that applies to it."""

    key: str                      # short, stable parameter prefix: L0, L1, ..., M
    name: str                     # the op name (what --prune-layer and the report use), or MODEL
    op: str
    params: int
    choices: dict[str, tuple] = field(default_factory=dict)   # method name -> choices

    def restricted(self, method: str, allowed: tuple) -> "LayerSpace":
        return dataclasses.replace(self, choices={**self.choices, method: allowed})


def build_space(graph: Graph, methods=DEFAULT_METHODS, graph_16x8: Graph | None = None) -> list[LayerSpace]:
    layers = weight_layers(graph)
    if not layers:
        raise TinycError("the model has no FULLY_CONNECTED or CONV_2D weights: nothing for fit to compress")
    src = Source(graph, graph_16x8)
    chosen = [METHOD_BY_NAME[m] for m in parse_methods(methods)]
    out = []
    for k, l in enumerate(layers):
        choices = {}
        for m in chosen:
            c = None if m.model_wide else m.choices(src, l)
            if c:
                choices[m.name] = tuple(c)
        out.append(LayerSpace(f"L{k}", l.name, l.kind, int(graph.tensors[l.weight].size), choices))
    model_wide = {m.name: tuple(m.choices(src, None)) for m in chosen if m.model_wide}
    if model_wide:
        out.append(LayerSpace("M", MODEL, "model", 0, model_wide))
    return out


def layers_of(space: list[LayerSpace]) -> list[LayerSpace]:
    """The weight layers of a space (without the model-wide entry)."""
    return [l for l in space if l.name != MODEL]


def neutral_plan(space: list[LayerSpace]) -> Plan:
    return {l.name: {m: METHOD_BY_NAME[m].neutral for m in l.choices} for l in space}


def plan_settings(plan: Plan) -> Settings:
    """The settings that apply `plan` (layers and methods it does not name stay as they are)."""
    s = Settings(CompressOptions(PruneOptions(exclude_first_last=False), weights="raw", report=True,
                                 cluster=ClusterOptions()))
    for name, values in plan.items():
        for method, v in values.items():
            METHOD_BY_NAME[method].apply(s, name, v)
    # tinyc's 16x8 kernels read raw weights: an encoding chosen for such a layer is not used.
    for name in s.precision:
        s.compress.per_layer_weights.pop(name, None)
    return s


def compress_options(plan: Plan) -> CompressOptions:
    """The compress options of `plan`."""
    return plan_settings(plan).compress


def rename_plan(plan: Plan, space: list[LayerSpace], graph: Graph) -> Plan:
    """`plan` with its layers named as in `graph`, a graph of the same structure (the model
    fine-tuned and quantized again: the converter may name its ops differently)."""
    new = weight_layers(graph)
    old = layers_of(space)
    if [l.op for l in old] != [l.kind for l in new]:
        raise TinycError("the fine-tuned model's weight layers differ from the original's; "
                         "fit cannot map its plan onto them")
    names = {o.name: n.name for o, n in zip(old, new)}
    return {names.get(k, k): dict(v) for k, v in plan.items()}


def param_name(layer: LayerSpace, method: str) -> str:
    return f"{layer.key}.{method}"


def suggest_plan(trial, space: list[LayerSpace]) -> Plan:
    """Ask an Optuna trial for one value per layer and method."""
    return {l.name: {m: trial.suggest_categorical(param_name(l, m), list(c)) for m, c in l.choices.items()}
            for l in space}


def trial_params(plan: Plan, space: list[LayerSpace]) -> dict:
    """A plan as Optuna parameters (for study.enqueue_trial)."""
    return {param_name(l, m): plan[l.name][m] for l in space for m in l.choices}
