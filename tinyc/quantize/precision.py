"""Mixed precision as a compression choice: int8 everywhere, 16x8 everywhere (TensorFlow's
int16-activation mode), or int8 with some layers in 16x8, chosen by name or by the per-layer
SQNR report ("auto": every layer whose own error is below a bound, worst first).

A mixed model is one graph: the full-int8 model, in which each chosen op is replaced by its
16x8 counterpart from the 16x8 conversion of the same float model and calibration data (its
int8 weights, int64 bias and int16 activation scales), joined to its int8 neighbours by
QUANTIZE ops (int8 -> int16 before it, int16 -> int8 after it where an int8 op or nothing
reads it). Consecutive 16x8 ops pass int16 directly; a graph output produced by a 16x8 op
stays int16. LiteRT's reference runs such a graph as it is. Pure: IR in, IR out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyc.codegen.ops import check_op
from tinyc.errors import TinycError, UnsupportedError
from tinyc.ir import Graph, Op, Tensor

PRECISIONS = ("int8", "16x8", "auto")
DEFAULT_AUTO_SQNR_DB = 20.0
_QUANTIZE_VERSION = 3


@dataclass
class PrecisionOptions:
    precision: str = "int8"                                  # int8 | 16x8 | auto
    per_layer: dict[str, str] = field(default_factory=dict)  # layer name -> "16x8" | "int8"
    auto_sqnr_db: float = DEFAULT_AUTO_SQNR_DB               # auto: layers below this go to 16x8

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise TinycError(f"--precision must be one of {', '.join(PRECISIONS)}, not '{self.precision}'")
        for name, p in self.per_layer.items():
            if p not in ("int8", "16x8"):
                raise TinycError(f"--precision-layer {name}={p}: the precision must be int8 or 16x8")

    @property
    def needs_16x8(self) -> bool:
        return self.precision in ("16x8", "auto") or any(p == "16x8" for p in self.per_layer.values())


def _match_layer(graph: Graph, name: str) -> int:
    """The op whose name (its output tensor's) is `name`, or the one op whose name contains it."""
    exact = [i for i, op in enumerate(graph.ops) if op.name == name]
    if exact:
        return exact[0]
    inside = [i for i, op in enumerate(graph.ops) if name in op.name]
    if len(inside) != 1:
        what = "no layer" if not inside else f"{len(inside)} layers ({', '.join(graph.ops[i].name[:40] for i in inside[:3])})"
        raise TinycError(f"--precision-layer {name}: {what} match; give a name from the report "
                         "(tinyc inspect MODEL lists them)")
    return inside[0]


def _compiles_16x8(g16: Graph, i: int) -> bool:
    try:
        check_op(g16, i)
        return True
    except (UnsupportedError, TinycError):
        return False


def choose_16x8_layers(g8: Graph, g16: Graph, options: PrecisionOptions, report: dict | None) -> list[int]:
    """Op indices (of the int8 graph) to compute in 16x8."""
    chosen: set[int] = set()
    if options.precision == "auto":
        if report is None:
            raise TinycError("--precision auto needs the per-layer report of a float model")
        ranked = sorted((e for e in report.get("layers", []) if e.get("local_sqnr_db") is not None),
                        key=lambda e: e.get("channel_sqnr_db") if e.get("channel_sqnr_db") is not None
                        else e["local_sqnr_db"])
        for e in ranked:  # the layers that lose most first, while they are below the bound
            sqnr = e.get("channel_sqnr_db") if e.get("channel_sqnr_db") is not None else e["local_sqnr_db"]
            if sqnr >= options.auto_sqnr_db:
                break
            if _compiles_16x8(g16, e["index"]):
                chosen.add(int(e["index"]))
    for name, p in options.per_layer.items():
        i = _match_layer(g8, name)
        if p == "16x8":
            if not _compiles_16x8(g16, i):
                raise TinycError(f"--precision-layer {name}=16x8: layer {i} ({g8.ops[i].kind}) has no 16x8 kernel "
                                 "in tinyc; keep it int8")
            chosen.add(i)
        else:
            chosen.discard(i)
    return sorted(chosen)


def _same_structure(g8: Graph, g16: Graph) -> None:
    if [op.kind for op in g8.ops] != [op.kind for op in g16.ops] or any(
            len(a.inputs) != len(b.inputs) or len(a.outputs) != len(b.outputs) for a, b in zip(g8.ops, g16.ops)):
        raise TinycError("the int8 and 16x8 conversions of the model have different graphs; mixed precision "
                         "needs them op for op: use --precision int8 or 16x8")


def mix_precision(g8: Graph, g16: Graph, layers: list[int]) -> Graph:
    """The int8 graph with ops `layers` taken from the 16x8 graph, joined by QUANTIZE ops."""
    _same_structure(g8, g16)
    chosen = set(layers)
    out = Graph(list(g8.tensors), [], list(g8.inputs), list(g8.outputs), g8.name, dict(g8.meta))
    consumers = g8.consumers()
    as_int16: dict[int, int] = {}   # int8 graph tensor -> the tensor holding it in int16

    def add_tensor(t: Tensor, suffix: str) -> int:
        out.tensors.append(Tensor(t.name + suffix, t.shape, t.dtype, t.quant, t.data))
        return len(out.tensors) - 1

    for i, op in enumerate(g8.ops):
        if i not in chosen:
            out.ops.append(op)
            continue
        op16 = g16.ops[i]
        inputs = []
        for t8, t16 in zip(op.inputs, op16.inputs):
            if t8 < 0:
                inputs.append(-1)
            elif g8.tensors[t8].is_const:
                inputs.append(add_tensor(g16.tensors[t16], ""))
            else:
                if t8 not in as_int16:
                    as_int16[t8] = add_tensor(g16.tensors[t16], "_int16")
                    out.ops.append(Op("QUANTIZE", [t8], [as_int16[t8]], {"_version": _QUANTIZE_VERSION},
                                      g8.tensors[t8].name + "_int16"))
                inputs.append(as_int16[t8])
        outputs = []
        for t8, t16 in zip(op.outputs, op16.outputs):
            as_int16[t8] = add_tensor(g16.tensors[t16], "_int16")
            outputs.append(as_int16[t8])
        out.ops.append(Op(op16.kind, inputs, outputs, dict(op16.attrs), op.name))
        for t8 in op.outputs:
            if any(c not in chosen for c in consumers.get(t8, [])):
                out.ops.append(Op("QUANTIZE", [as_int16[t8]], [t8], {"_version": _QUANTIZE_VERSION},
                                  g8.tensors[t8].name))
    # A graph output made by a 16x8 op (and read by no int8 op) stays int16.
    out.outputs = [as_int16[t] if t in as_int16 and not any(c not in chosen for c in consumers.get(t, []))
                   else t for t in g8.outputs]
    return out


def apply_precision(int8_bytes: bytes, s16_bytes: bytes, options: PrecisionOptions,
                    report: dict | None) -> tuple[bytes, list[str]]:
    """The model tinyc compiles for `options`: (flatbuffer, names of the layers in 16x8)."""
    from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph

    g8, g16 = tflite_to_graph(int8_bytes), tflite_to_graph(s16_bytes)
    if options.precision == "16x8":
        keep_int8 = {_match_layer(g8, n) for n, p in options.per_layer.items() if p == "int8"}
        if not keep_int8:
            return s16_bytes, [op.name for op in g16.ops]
        layers = [i for i in range(len(g8.ops)) if i not in keep_int8 and _compiles_16x8(g16, i)]
    else:
        layers = choose_16x8_layers(g8, g16, options, report)
    if not layers:
        return int8_bytes, []
    return graph_to_tflite(mix_precision(g8, g16, layers)), [g8.ops[i].name for i in layers]


def parse_precision_layer(text: str) -> tuple[str, str]:
    """NAME=P of --precision-layer."""
    name, sep, p = text.rpartition("=")
    if not sep or not name or p not in ("int8", "16x8"):
        raise TinycError(f"--precision-layer {text}: write NAME=16x8 or NAME=int8")
    return name, p
