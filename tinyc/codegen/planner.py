"""Static arena planning from tensor lifetimes.

Every intermediate tensor (not a constant, not a graph input or output: those live in the
caller's buffers) and every per-op scratch buffer gets a fixed offset in one arena. Tensors
that a RESHAPE-like op merely re-labels share one buffer, so reshapes never copy. Placement
is greedy first-fit (as TFLM's GreedyMemoryPlanner) over several orders; the smallest arena
wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinyc.ir import Graph

ALIGN = 16
# Ops whose output is the input's bytes re-labelled: the output aliases the input.
ALIAS_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


@dataclass
class Buffer:
    key: str                 # "t<tensor>" or "s<op>" (scratch)
    size: int
    first: int               # first op index that writes it
    last: int                # last op index that reads it
    tensors: list[int] = field(default_factory=list)
    offset: int = -1


@dataclass
class Plan:
    arena_bytes: int
    offsets: dict[int, int]            # tensor index -> arena offset
    scratch: dict[int, int]            # op index -> arena offset of its scratch buffer
    alias_of: dict[int, int]           # tensor index -> root tensor whose storage it shares
    buffers: list[Buffer]
    order: str = ""


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def alias_roots(graph: Graph) -> dict[int, int]:
    """tensor -> root tensor it shares storage with (for RESHAPE-like ops).

    A graph output never aliases (it lives in the caller's buffer, so the op copies into it).
    """
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while t in root:
            t = root[t]
        return t

    outputs = set(graph.outputs)
    for op in graph.ops:
        if op.kind in ALIAS_OPS and op.outputs and op.outputs[0] not in outputs:
            root[op.outputs[0]] = find(op.inputs[0])
    return {t: find(t) for t in root}


def plan_memory(graph: Graph, scratch_sizes: dict[int, int] | None = None) -> Plan:
    scratch_sizes = scratch_sizes or {}
    alias = alias_roots(graph)
    io = set(graph.inputs) | set(graph.outputs)
    groups: dict[int, Buffer] = {}
    for i, op in enumerate(graph.ops):
        for t in list(op.inputs) + list(op.outputs):
            if t < 0:
                continue
            r = alias.get(t, t)
            tensor = graph.tensors[r]
            if tensor.is_const or r in io:
                continue
            b = groups.get(r)
            if b is None:
                b = groups[r] = Buffer(f"t{r}", 0, i, i)
            b.first, b.last = min(b.first, i), max(b.last, i)
            if t not in b.tensors:
                b.tensors.append(t)
            b.size = max(b.size, graph.tensors[t].nbytes)
    buffers = list(groups.values())
    for i, size in scratch_sizes.items():
        if size > 0:
            buffers.append(Buffer(f"s{i}", size, i, i))

    best: tuple[int, str, dict[str, int]] | None = None
    orders = {
        "size": lambda b: (-b.size, b.first),
        "size*lifetime": lambda b: (-b.size * (b.last - b.first + 1), -b.size),
        "first": lambda b: (b.first, -b.size),
        "lifetime": lambda b: (-(b.last - b.first), -b.size),
    }
    for name, key in orders.items():
        offsets = _first_fit(sorted(buffers, key=key))
        total = max((offsets[b.key] + _align(b.size) for b in buffers), default=0)
        if best is None or total < best[0]:
            best = (total, name, offsets)
    total, order, offsets = best
    for b in buffers:
        b.offset = offsets[b.key]
    tensor_offsets = {}
    for b in buffers:
        for t in b.tensors:
            tensor_offsets[t] = b.offset
    for t, r in alias.items():
        if r in groups:
            tensor_offsets[t] = groups[r].offset
    scratch = {int(b.key[1:]): b.offset for b in buffers if b.key.startswith("s")}
    return Plan(total, tensor_offsets, scratch, alias, buffers, order)


def _first_fit(buffers: list[Buffer]) -> dict[str, int]:
    placed: list[Buffer] = []
    offsets: dict[str, int] = {}
    for b in buffers:
        size = _align(b.size)
        busy = sorted((offsets[p.key], offsets[p.key] + _align(p.size)) for p in placed
                      if not (p.last < b.first or b.last < p.first))
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[b.key] = offset
        placed.append(b)
    return offsets
