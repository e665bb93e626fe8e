"""Op lowering: one module per op (family), each turning an IR op into a C call.

Contract (every module in this package follows it):

    @register("CONV_2D", kernels=["conv_2d"])
    def lower_conv_2d(graph, op, ctx) -> Lowered: ...

    @checker("CONV_2D")
    def check_conv_2d(graph, op) -> None: ...   # raise UnsupportedError(one clear line)

- `kernels` names files in templates/ops/<name>.c.j2. Each defines `static` C functions
  (CMSIS-style names: tinyc_conv_2d_s8, ...) using only <stdint.h>, <string.h>,
  <math.h> (float paths only) and templates/common/tinyc_fixedpoint.h. Only the kernels
  of ops the model uses are rendered into the generated `tinyc_kernels.h`. A template may
  use Jinja only for optional code paths; keep it readable C. It is rendered with the
  context {"ctx": KernelRenderInfo} (unused today; reserved for per-board variants).
- `lower` computes every constant on the Python side (multipliers, shifts, activation
  bounds, padding offsets) exactly as TFLite's Prepare() does, and returns the C statement
  that performs the layer, built with `ctx`:
    ctx.ptr(t)                C expression for tensor t's data, typed `const T *` for
                              constants and graph inputs, `T *` otherwise
    ctx.const(base, array, ctype)
                              emits a `const` array into weights.c, returns its C name
    ctx.scratch(op_index, nbytes)
                              C expression (int8_t *) of a per-op scratch buffer, planned in
                              the arena with the op's lifetime
    ctx.ident(text)           a C identifier made from text
- `Lowered.macs` is the multiply-accumulate count for the report.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from tinyc.errors import UnsupportedError


@dataclass
class Lowered:
    call: str  # C statement(s) for the layer body
    macs: int = 0
    notes: list[str] = field(default_factory=list)  # extra comment lines for the layer header
    kernels: list[str] | None = None  # kernel templates used instead of the op's registered ones


@dataclass
class OpSpec:
    kind: str
    kernels: list[str]
    lower: Callable
    check: Callable | None = None


REGISTRY: dict[str, OpSpec] = {}
_pending_checks: dict[str, Callable] = {}


def register(kind: str, kernels: list[str]):
    def deco(fn):
        REGISTRY[kind] = OpSpec(kind, list(kernels), fn, _pending_checks.pop(kind, None))
        return fn
    return deco


def checker(kind: str):
    def deco(fn):
        if kind in REGISTRY:
            REGISTRY[kind].check = fn
        else:
            _pending_checks[kind] = fn
        return fn
    return deco


def _load_all() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def supported_ops() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


def spec_for(kind: str) -> OpSpec | None:
    _load_all()
    return REGISTRY.get(kind)


def check_op(graph, op_index: int) -> None:
    """Raise UnsupportedError if op `op_index` cannot be compiled."""
    op = graph.ops[op_index]
    spec = spec_for(op.kind)
    if spec is None:
        raise UnsupportedError(
            f"op {op_index} ({op.name or op.kind}) is {op.kind}, which tinyc does not support; "
            f"supported ops: {', '.join(supported_ops())}")
    if spec.check is not None:
        spec.check(graph, op)
