"""Op lowering: one module per op (family), each turning an IR op into a C call.

Contract (every module in this package follows it):

    @register("CONV_2D", kernels=["common/conv_tap_range", "conv_2d"])
    def lower_conv_2d(graph, op, ctx) -> Lowered: ...

    @checker("CONV_2D")
    def check_conv_2d(graph, op) -> None: ...   # raise UnsupportedError(one clear line)

- `kernels` names files in templates/ops/<name>.c.j2, or templates/common/<name>.c.j2 for
  "common/<name>" (helpers several kernels share: listed before the kernel, rendered once).
  Each defines `static inline` C functions (CMSIS-style names: tinyc_conv_2d_s8, ...) using
  only <stddef.h>, <stdint.h>, <string.h>, templates/common/tinyc_fixedpoint.h and the
  params types of templates/common/tinyc_types.h. Only the kernels of ops the model uses are
  rendered into the generated `tinyc_kernels.h`. A template may use Jinja only for optional
  code paths; keep it readable C. It is rendered with the context {"ctx": None} (reserved
  for per-board variants).
- Kernel-call convention: `tinyc_<kernel>_s8(&params, tensors...)`, at most four arguments;
  `params` is a `static const tinyc_<kernel>_params_s8` in model.c, written with designated
  initialisers in the groups .dims / .op / .quant (then the constant arrays it reads).
- `lower` computes every constant on the Python side (multipliers, shifts, activation
  bounds, padding offsets) exactly as TFLite's Prepare() does, and returns the C statement
  that performs the layer, built with `ctx` (a codegen.OpContext for this layer):
    ctx.params(ctype, fields, role="params")
                              emits `static const ctype tinyc_l<i>_<op>_<role> = {...}` into
                              model.c (fields: nested dicts -> designated initialisers, lists
                              -> arrays, None -> NULL) and returns its address
    ctx.const(role, array, ctype, what)
                              emits the `const` array tinyc_l<i>_<op>_<role> into weights.c,
                              with a one-line comment (layer, what, size); returns its name
    ctx.ptr(t, role=None)     C expression for tensor t's data, typed `const T *` for
                              constants and graph inputs, `T *` otherwise; a constant tensor
                              is emitted on first use as tinyc_l<i>_<op>_<role> (role
                              "filter", "bias", ...; default input<k>)
    ctx.scratch(nbytes)       C expression (int8_t *) of this layer's scratch buffer, planned
                              in the arena after lowering (NULL for 0 bytes)
    ctx.target                the codegen.target.Target (board ISA, features, --optimize
                              level): a lowering may choose a data layout from it; the kernel
                              keeps a portable C path for every other target
- `Lowered.macs` is the multiply-accumulate count for the report.
- `Lowered.inplace` (an `InPlace(input, min_gap)` or None): the op's output may overlap its
  input number `input` when the output starts at least `min_gap` bytes before that input
  (output offset <= input offset - min_gap; any smaller offset, or disjoint, is safe too).
  The lowering derives min_gap from its kernel's read/write order; the planner uses it only
  when that input dies at this op. tests/access_order.py checks each contract against a
  simulation of the kernel's accesses.
- Raw and encoded (sparse / Huffman) lowerings of an op live side by side in its module; the
  encoding helpers shared by them are in _encoded.py.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from tinyc.errors import UnsupportedError


@dataclass(frozen=True)
class InPlace:
    """The output may overlap input number `input` if it starts >= min_gap bytes before it;
    exact: only exactly min_gap bytes before it (a kernel whose order is safe at that distance
    only, e.g. one walking channel strips: each output byte must lie on its own channel)."""
    input: int
    min_gap: int
    exact: bool = False


@dataclass
class Lowered:
    call: str  # C statement(s) for the layer body
    macs: int = 0
    notes: list[str] = field(default_factory=list)  # extra comment lines for the layer header
    kernels: list[str] | None = None  # kernel templates used instead of the op's registered ones
    inplace: InPlace | None = None  # when the output may be written over an input (see above)


@dataclass
class OpSpec:
    kind: str
    kernels: list[str]
    lower: Callable
    check: Callable | None = None


REGISTRY: dict[str, OpSpec] = {}
# Variants for int16 activations (16x8: int16 activations, int8 weights), by op kind; an op
# whose non-constant inputs or outputs include an int16 tensor uses its kind's variant here
# when there is one (see spec_for_op).
REGISTRY_S16: dict[str, OpSpec] = {}
# Variants for plain int32 tensors (no quantization: index arithmetic such as an Embedding's
# negative-index wrap), for the kinds whose int8 registration computes on quantized values.
REGISTRY_S32: dict[str, OpSpec] = {}
_VARIANTS = {"int16": REGISTRY_S16, "int32": REGISTRY_S32}
_pending_checks: dict[tuple[str, str], Callable] = {}


def _table(dtype: str) -> dict[str, OpSpec]:
    return _VARIANTS.get(dtype, REGISTRY)


def register(kind: str, kernels: list[str], dtype: str = "int8"):
    def deco(fn):
        _table(dtype)[kind] = OpSpec(kind, list(kernels), fn, _pending_checks.pop((kind, dtype), None))
        return fn
    return deco


def checker(kind: str, dtype: str = "int8"):
    def deco(fn):
        if kind in _table(dtype):
            _table(dtype)[kind].check = fn
        else:
            _pending_checks[(kind, dtype)] = fn
        return fn
    return deco


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def supported_ops() -> list[str]:
    _load_all()
    return sorted(set(REGISTRY) | set(REGISTRY_S16) | set(REGISTRY_S32))


def spec_for(kind: str, dtype: str = "int8") -> OpSpec | None:
    _load_all()
    return _VARIANTS.get(dtype, {}).get(kind) or REGISTRY.get(kind)


def activation_dtype(graph, op) -> str:
    """"int16" when a non-constant input or an output of op is int16 (a 16x8 layer, or a
    QUANTIZE into or out of one); else "int32" when one is an unquantized int32 tensor (index
    arithmetic); else "int8"."""
    tensors = [graph.tensors[t] for t in list(op.inputs) + list(op.outputs)
               if t >= 0 and not graph.tensors[t].is_const]
    if any(t.dtype == "int16" for t in tensors):
        return "int16"
    if any(t.dtype == "int32" and t.quant is None for t in tensors):
        return "int32"
    return "int8"


def spec_for_op(graph, op) -> OpSpec | None:
    return spec_for(op.kind, activation_dtype(graph, op))


def check_op(graph, op_index: int) -> None:
    """Raise UnsupportedError if op `op_index` cannot be compiled."""
    op = graph.ops[op_index]
    spec = spec_for_op(graph, op)
    if spec is None:
        raise UnsupportedError(
            f"op {op_index} ({op.name or op.kind}) is {op.kind}, which tinyc does not support; "
            f"supported ops: {', '.join(supported_ops())}")
    if spec.check is not None:
        spec.check(graph, op)
