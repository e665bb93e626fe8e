"""IR -> C sources: model.h, model.c, weights.h/.c, tinyc_kernels.h, tinyc_types.h, tinyc_fixedpoint.h.

Each op is lowered by its module in tinyc/codegen/ops (constants computed in Python, exactly as
TFLite's Prepare); the memory planner fixes every intermediate tensor's arena offset; Jinja2
templates (templates/) give the files their shape.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from tinyc import __version__
from tinyc.errors import TinycError, UnsupportedError
from tinyc.ir import DTYPES, Graph, Tensor, c_type
from tinyc.codegen.ops import Lowered, check_op, spec_for
from tinyc.codegen.planner import Plan, alias_roots, plan_memory
from tinyc.codegen.target import Target
from tinyc.resources import templates_dir


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def format_array(values: np.ndarray, ctype: str, per_line: int = 16) -> str:
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":
        items = [_c_float(float(v)) for v in flat.astype(np.float32)]
    else:
        items = [str(int(v)) for v in flat]
        if ctype == "int32_t":
            items = [f"({v})" if v == "-2147483648" else v for v in items]
            items = ["(-2147483647 - 1)" if v == "(-2147483648)" else v for v in items]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


def _c_float(v: float) -> str:
    if np.isnan(v):
        return "NAN"
    if np.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    s = repr(float(np.float32(v)))
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def quant_text(t: Tensor) -> str:
    q = t.quant
    if q is None:
        return t.dtype
    if q.per_axis:
        return f"{t.dtype} per-axis({q.axis}) x{q.scale.size} scales [{q.scale.min():.6g}..{q.scale.max():.6g}]"
    return f"{t.dtype} (scale {q.scale[0]:.6g}, zp {int(q.zero_point[0])})"


def shape_text(t: Tensor) -> str:
    return "[" + ",".join(str(d) for d in t.shape) + "]"


_CTYPE_SIZES = {ctype: size for _, ctype, size in DTYPES.values()}


@dataclass
class ConstArray:
    name: str
    ctype: str
    values: np.ndarray
    comment: str = ""

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * _CTYPE_SIZES[self.ctype]


# Short op names in C symbols; every other op kind is used lower-cased (ADD -> add).
_SLUGS = {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "dwconv2d", "FULLY_CONNECTED": "fc",
          "AVERAGE_POOL_2D": "avgpool2d", "MAX_POOL_2D": "maxpool2d"}


def layer_symbol(index: int, kind: str, role: str) -> str:
    """The naming rule of every per-layer C symbol: tinyc_l<layer index>_<op>_<role>,
    e.g. tinyc_l0_conv2d_filter, tinyc_l11_fc_params (docs/internals.md, "Generated files")."""
    return f"tinyc_l{index}_{_SLUGS.get(kind, kind.lower())}_{role}"


def c_initializer(value, indent: str = "", width: int = 100) -> str:
    """A C99 initialiser for value: a dict gives designated fields ({ .a = 1, .b = 2 }), a list
    an array, None NULL, anything else its str(). Fields are packed into lines of `width`; a
    field whose own initialiser spans lines stands on lines of its own."""
    if isinstance(value, dict):
        items = [f".{k} = {c_initializer(v, indent + '    ', width)}" for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [c_initializer(v, indent + "    ", width) for v in value]
    elif value is None:
        return "NULL"
    else:
        return str(int(value)) if isinstance(value, (bool, np.integer)) else str(value)
    one_line = "{ " + ", ".join(items) + " }"
    if len(indent) + len(one_line) <= width and "\n" not in one_line:
        return one_line
    lines, line = [], ""
    for item in items:
        if line and ("\n" in item + line or len(indent) + 4 + len(line) + len(item) + 2 > width):
            lines.append(line)
            line = ""
        line += (" " if line else "") + item + ","
    lines.append(line)
    inner = "\n".join(f"{indent}    {l}" for l in lines)
    return "{\n" + inner + f"\n{indent}}}"


@dataclass
class LoweringContext:
    """Everything the lowering of a graph emits: constant arrays (weights.c), per-layer params
    structs (model.c), scratch requests (planned after lowering). Lowering runs once; arena
    tensors and scratch buffers are referred to by macros whose offsets the plan fixes later."""
    graph: Graph
    target: Target = field(default_factory=Target)
    plan: Plan | None = None
    consts: dict[str, ConstArray] = field(default_factory=dict)
    tensor_consts: dict[int, str] = field(default_factory=dict)
    scratch_requests: dict[int, int] = field(default_factory=dict)
    params: dict[int, list[str]] = field(default_factory=dict)  # op index -> C definitions
    alias_of: dict[int, int] = field(default_factory=dict)

    def __post_init__(self):
        self.alias_of = alias_roots(self.graph)

    def symbol(self, op_index: int, role: str) -> str:
        return layer_symbol(op_index, self.graph.ops[op_index].kind, role)

    def const(self, op_index: int, role: str, values, ctype: str, what: str) -> str:
        """Emit a constant array of layer op_index into weights.c; returns its C name."""
        arr = np.asarray(values).reshape(-1).copy()
        name = self.symbol(op_index, role) if op_index >= 0 else f"tinyc_{role}"
        if name in self.consts:
            raise TinycError(f"internal: two constants named {name}")
        head = f"layer {op_index} {self.graph.ops[op_index].kind}: " if op_index >= 0 else ""
        self.consts[name] = ConstArray(name, ctype, arr, f"{head}{what}, [{arr.size}] {ctype}")
        return name

    def add_params(self, op_index: int, ctype: str, fields: dict, role: str = "params") -> str:
        """A `static const` params struct of layer op_index for model.c; returns its address."""
        name = self.symbol(op_index, role)
        self.params.setdefault(op_index, []).append(
            f"static const {ctype} {name} = {c_initializer(fields)};")
        return f"&{name}"

    def ptr(self, t: int, op_index: int = -1, role: str | None = None) -> str:
        g = self.graph
        tensor = g.tensors[t]
        ctype = c_type(tensor.dtype)
        root = self.alias_of.get(t, t)
        if root in g.inputs:
            return _cast(f"in{g.inputs.index(root)}", ctype, tensor, g.tensors[root], const=True)
        rt = g.tensors[root]
        if rt.is_const:  # even if it is also an output: that gets a copy at the end
            if root not in self.tensor_consts:
                if role is None:
                    users = g.ops[op_index].inputs if op_index >= 0 else []
                    role = f"input{list(users).index(t)}" if t in users else f"tensor{root}"
                self.tensor_consts[root] = self.const(
                    op_index, role, rt.data, c_type(rt.dtype), f"{role} {shape_text(rt)} {quant_text(rt)}")
            return _cast(self.tensor_consts[root], ctype, tensor, rt, const=True)
        if root in g.outputs:
            return _cast(f"out{g.outputs.index(root)}", ctype, tensor, g.tensors[root], const=False)
        return f"TINYC_T{root}" if tensor.dtype == rt.dtype else f"(({ctype} *)TINYC_T{root})"

    def scratch(self, op_index: int, nbytes: int) -> str:
        """An int8_t * scratch buffer of the layer, placed in the arena by the planner."""
        if nbytes <= 0:
            return "NULL"
        self.scratch_requests[op_index] = max(self.scratch_requests.get(op_index, 0), int(nbytes))
        return f"TINYC_L{op_index}_SCRATCH"


def _cast(expr: str, ctype: str, tensor: Tensor, root: Tensor, const: bool) -> str:
    if tensor.dtype == root.dtype:
        return expr
    return f"(({'const ' if const else ''}{ctype} *){expr})"


@dataclass
class Layer:
    index: int
    name: str
    kind: str
    comment: list[str]
    call: str
    macs: int
    params: list[str] = field(default_factory=list)  # static const definitions in model.c


@dataclass
class Generated:
    plan: Plan
    layers: list[Layer]
    consts: list[ConstArray]
    kernels: list[str]
    model_hash: str
    weight_bytes: int
    io_copies: list[str] = field(default_factory=list)
    unused_io: list[str] = field(default_factory=list)


def _attr_text(attrs: dict) -> str:
    parts = []
    for k, v in attrs.items():
        if k.startswith("_") or v is None or k in ("quantized_bias_type", "asymmetric_quantize_inputs",
                                                     "weights_format", "pot_scale_int16", "quant_spec"):
            continue
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def lower_graph(graph: Graph, *, check: bool = True,
                target: Target | None = None) -> tuple[list[Lowered], LoweringContext]:
    """Lower every op once for `target` (default: portable, balanced), then plan the arena
    (tensors and the scratch the ops asked for)."""
    if check:
        check_supported(graph)
    ctx = LoweringContext(graph, target or Target())
    lowered = []
    for i, op in enumerate(graph.ops):
        try:
            lowered.append(spec_for(op.kind).lower(graph, op, OpContext(ctx, i)))
        except UnsupportedError as exc:  # e.g. from the shared quantization math: say which op
            if op.name and f"'{op.name}'" in str(exc):
                raise
            raise UnsupportedError(f"{op.kind} '{op.name or i}': {exc}") from None
    ctx.plan = plan_memory(graph, ctx.scratch_requests)
    return lowered, ctx


class OpContext:
    """What one op's lowering is handed (see tinyc/codegen/ops/__init__.py): constants, params structs,
    tensor pointers and scratch, all named after this layer."""

    def __init__(self, ctx: LoweringContext, op_index: int):
        self._ctx = ctx
        self.op_index = op_index
        self.graph = ctx.graph
        self.target = ctx.target

    def symbol(self, role: str) -> str:
        return self._ctx.symbol(self.op_index, role)

    def const(self, role: str, values, ctype: str, what: str) -> str:
        return self._ctx.const(self.op_index, role, values, ctype, what)

    def params(self, ctype: str, fields: dict, role: str = "params") -> str:
        return self._ctx.add_params(self.op_index, ctype, fields, role)

    def ptr(self, t: int, role: str | None = None) -> str:
        return self._ctx.ptr(t, self.op_index, role)

    def scratch(self, nbytes: int) -> str:
        return self._ctx.scratch(self.op_index, nbytes)


def generate(graph: Graph, outdir: Path, tflite_bytes: bytes, board_name: str = "host", *,
             check: bool = True, target: Target | None = None) -> Generated:
    """Write the C sources for `graph` into outdir, laid out for `target`; return what the
    manifest needs. check=False skips check_supported when the caller has just run it."""
    lowered, ctx = lower_graph(graph, check=check, target=target)
    plan = ctx.plan
    layers = []
    for i, (op, low) in enumerate(zip(graph.ops, lowered)):
        comment = [f"Layer {i}: {op.kind} \"{op.name}\""]
        for role, ts in (("in", op.inputs), ("out", op.outputs)):
            for t in ts:
                if t < 0:
                    continue
                tensor = graph.tensors[t]
                kind = "const" if tensor.is_const else role
                comment.append(f"  {kind:5s} {shape_text(tensor)} {quant_text(tensor)}")
        attrs = _attr_text(op.attrs)
        if attrs:
            comment.append(f"  {attrs}")
        if low.macs:
            comment.append(f"  {low.macs} MACs")
        comment.extend(f"  {n}" for n in low.notes)
        layers.append(Layer(i, op.name, op.kind, comment, low.call, low.macs, ctx.params.get(i, [])))

    kernels: list[str] = []
    for op, low in zip(graph.ops, lowered):
        for k in (low.kernels if low.kernels is not None else spec_for(op.kind).kernels):
            if k not in kernels:
                kernels.append(k)
    io_copies = _output_copies(graph, ctx)
    body = "\n".join([low.call for low in lowered] + io_copies)
    unused_io = [name for name in [f"in{k}" for k in range(len(graph.inputs))]
                 + [f"out{k}" for k in range(len(graph.outputs))]
                 if not re.search(rf"\b{name}\b", body)]
    model_hash = hashlib.sha256(tflite_bytes).hexdigest()[:16]
    consts = list(ctx.consts.values())
    weight_bytes = sum(c.nbytes for c in consts)
    gen = Generated(plan, layers, consts, kernels, model_hash, weight_bytes, io_copies, unused_io)
    _render(graph, gen, outdir, board_name)
    return gen


def _output_copies(graph: Graph, ctx: LoweringContext) -> list[str]:
    """memcpy statements for the outputs no layer writes: an output that is a graph input or a
    constant, or a tensor listed twice among the outputs (layers write its first buffer only)."""
    producers = graph.producers()
    copies = []
    for k, t in enumerate(graph.outputs):
        tensor = graph.tensors[t]
        if graph.outputs.index(t) < k:
            src = f"out{graph.outputs.index(t)}"
        elif t in graph.inputs or tensor.is_const:
            src = ctx.ptr(t, role=f"output{k}")
        elif t in producers:
            continue
        else:
            raise TinycError(f"output {k} ('{tensor.name}') is neither an input, a constant nor written by any "
                             "op; the model is inconsistent")
        copies.append(f"memcpy(out{k}, {src}, {tensor.nbytes});  /* output {k} is {src}'s bytes */")
    return copies


def _io_info(graph: Graph, indices: list[int]) -> list[dict]:
    out = []
    for k, t in enumerate(indices):
        tensor = graph.tensors[t]
        q = tensor.quant
        out.append({
            "index": k, "name": tensor.name, "shape": list(tensor.shape), "dtype": tensor.dtype,
            "ctype": c_type(tensor.dtype), "bytes": tensor.nbytes, "size": tensor.size,
            "scale": _c_float(float(q.scale[0])) if q is not None and not q.per_axis else "0.0f",
            "zero_point": int(q.zero_point[0]) if q is not None and not q.per_axis else 0,
        })
    return out


def _render(graph: Graph, gen: Generated, outdir: Path, board_name: str) -> None:
    env = _env()
    plan = gen.plan
    inputs, outputs = _io_info(graph, graph.inputs), _io_info(graph, graph.outputs)
    mem_rows = []
    for b in sorted(plan.buffers, key=lambda b: (b.offset, b.first)):
        if b.key.startswith("t"):
            root = int(b.key[1:])
            t = graph.tensors[root]
            mem_rows.append({"root": root, "ctype": c_type(t.dtype), "offset": b.offset, "size": b.size,
                             "first": b.first, "last": b.last,
                             "desc": f"{shape_text(t)} {t.dtype}, {b.size} B, layers {b.first}-{b.last}: {t.name}"[:150]})
        else:
            mem_rows.append({"root": None, "layer": int(b.key[1:]), "offset": b.offset, "size": b.size,
                             "first": b.first, "last": b.last, "desc": f"scratch of layer {b.first}, {b.size} B"})
    common = dict(
        version=__version__, model_name=graph.name, board=board_name, inputs=inputs, outputs=outputs,
        layers=gen.layers, arena_bytes=plan.arena_bytes, model_hash=gen.model_hash, mem_rows=mem_rows,
        consts=gen.consts, weight_bytes=gen.weight_bytes, kernels=gen.kernels, format_array=format_array,
        source=Path(graph.meta.get("source", "")).name,  # the file name: no machine path in the C
        uses_float=any(c.ctype == "float" for c in gen.consts),
        io_copies=gen.io_copies, unused_io=gen.unused_io,
    )
    kernel_src = [env.get_template(_kernel_template(k)).render(ctx=None) for k in gen.kernels]
    files = {
        "model.h": env.get_template("model.h.j2").render(**common),
        "model.c": env.get_template("model.c.j2").render(**common),
        "weights.h": env.get_template("weights.h.j2").render(**common),
        "weights.c": env.get_template("weights.c.j2").render(**common),
        "tinyc_kernels.h": env.get_template("tinyc_kernels.h.j2").render(kernel_src=kernel_src, **common),
        "tinyc_fixedpoint.h": (templates_dir() / "common" / "tinyc_fixedpoint.h").read_text(),
        "tinyc_types.h": (templates_dir() / "common" / "tinyc_types.h").read_text(),
    }
    for name, text in files.items():
        (outdir / name).write_text(text)


def _kernel_template(kernel: str) -> str:
    """A kernel name is templates/ops/<name>.c.j2, or templates/common/<name>.c.j2 for the
    "common/<name>" helpers that several kernels share (each rendered once)."""
    return f"{kernel}.c.j2" if kernel.startswith("common/") else f"ops/{kernel}.c.j2"


def check_supported(graph: Graph) -> None:
    """Raise UnsupportedError (one line) for the first op tinyc cannot compile. Pure: checks
    each op's kind, types and attributes; lowers nothing."""
    for i in range(len(graph.ops)):
        check_op(graph, i)


__all__ = ["generate", "lower_graph", "check_supported", "layer_symbol", "format_array", "Target"]
