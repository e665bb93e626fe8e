"""Static arena planning from tensor lifetimes and in-place contracts.

Every intermediate tensor (not a constant; graph inputs and outputs live in the caller's
buffers, unless `io_in_arena` puts the inputs in the arena) and every per-op scratch buffer
gets a fixed offset in one arena. Tensors that a RESHAPE-like op merely re-labels share one
buffer, so reshapes never copy. An op whose lowering declares an `InPlace(input, min_gap)`
contract may have its output overlap that input when the input dies at the op: the output
then starts at least min_gap bytes before the input (exactly min_gap with an exact contract). Placement is greedy first-fit (as
TFLM's GreedyMemoryPlanner) over several orders; the smallest arena wins.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tinyc.ir import Graph

ALIGN = 16
# Ops whose output is the input's bytes re-labelled: the output aliases the input.
ALIAS_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


@dataclass
class Buffer:
    key: str                 # "t<tensor>" or "s<op>" (scratch)
    size: int
    first: int               # first op index that writes it (0 for a graph input in the arena)
    last: int                # last op index that reads it
    tensors: list[int] = field(default_factory=list)
    offset: int = -1


@dataclass(frozen=True)
class InPlaceUse:
    """Op `op` writes buffer `output` over buffer `input` (which dies there), `min_gap` bytes
    (aligned) or more before it."""
    op: int
    input: str
    output: str
    min_gap: int
    exact: bool = False      # the output starts exactly min_gap bytes before the input, or apart


@dataclass
class Plan:
    arena_bytes: int
    offsets: dict[int, int]            # tensor index -> arena offset
    scratch: dict[int, int]            # op index -> arena offset of its scratch buffer
    alias_of: dict[int, int]           # tensor index -> root tensor whose storage it shares
    buffers: list[Buffer]
    order: str = ""
    inplace: list[InPlaceUse] = field(default_factory=list)  # the in-place pairs allowed
    lower_bound: int = 0               # the most bytes live at one op (in-place pairs overlapped)
    io_in_arena: bool = False

    def buffer(self, key: str) -> Buffer:
        return next(b for b in self.buffers if b.key == key)

    def overlaps_in_place(self, use: InPlaceUse) -> bool:
        """True if the plan really lays the output of use.op over its input."""
        i, o = self.buffer(use.input), self.buffer(use.output)
        return o.offset < i.offset + _align(i.size) and i.offset < o.offset + _align(o.size)


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


def plan_memory(graph: Graph, scratch_sizes: dict[int, int] | None = None,
                inplace: dict | None = None, *, io_in_arena: bool = False) -> Plan:
    """Place every arena buffer. `inplace` maps op index -> ops.InPlace (the lowering's
    contract); `io_in_arena` puts the graph inputs in the arena (the caller writes them there)."""
    scratch_sizes = scratch_sizes or {}
    alias = alias_roots(graph)
    caller_owned = set(graph.outputs) | (set() if io_in_arena else set(graph.inputs))
    # Variable tensors (LSTM states, SVDF memory) outlive a call: their lowerings keep them in
    # static arrays of their own (ctx.state), so they take no arena slot.
    caller_owned |= set(graph.meta.get("variable_tensors", []))
    groups: dict[int, Buffer] = {}
    for i, op in enumerate(graph.ops):
        for t in list(op.inputs) + list(op.outputs):
            if t < 0:
                continue
            r = alias.get(t, t)
            tensor = graph.tensors[r]
            if tensor.is_const or r in caller_owned:
                continue
            b = groups.get(r)
            if b is None:
                b = groups[r] = Buffer(f"t{r}", 0, 0 if r in graph.inputs else i, i)
            b.first, b.last = min(b.first, i), max(b.last, i)
            if t not in b.tensors:
                b.tensors.append(t)
            b.size = max(b.size, graph.tensors[t].nbytes)
    buffers = list(groups.values())
    for i, size in scratch_sizes.items():
        if size > 0:
            buffers.append(Buffer(f"s{i}", size, i, i))
    uses = _inplace_uses(graph, groups, alias, inplace or {})
    gaps = {(u.output, u.input): (u.min_gap, u.exact) for u in uses}

    bound = lower_bound(graph, buffers, uses)
    order, offsets = _search(buffers, gaps, bound)
    total = _arena_end(buffers, offsets)
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
    return Plan(total, tensor_offsets, scratch, alias, buffers, order, uses, bound, io_in_arena)


ORDERS = {
    "size": lambda b: (-b.size, b.first),
    "size*lifetime": lambda b: (-b.size * (b.last - b.first + 1), -b.size),
    "first": lambda b: (b.first, -b.size),
    "lifetime": lambda b: (-(b.last - b.first), -b.size),
    # latest first: a chain of in-place outputs, each placed before its input, then climbs by
    # the min_gaps from offset 0 instead of stacking up whole tensors
    "reverse": lambda b: (-b.first, -b.size),
    "reverse-last": lambda b: (-b.last, -b.size),
}
SEARCH_STEPS = 1000  # swaps tried after the fixed orders (0.1-0.6 s on the MLPerf Tiny models)


def _arena_end(buffers: list[Buffer], offsets: dict[str, int]) -> int:
    return max((offsets[b.key] + _align(b.size) for b in buffers), default=0)


def _search(buffers: list[Buffer], gaps: dict, bound: int) -> tuple[str, dict[str, int]]:
    """First-fit over the fixed orders, then a seeded hill climb over the best order (swap two
    buffers, keep the swap unless the arena grows) until the lower bound or SEARCH_STEPS.
    The fixed orders miss layouts such as a residual block's: the skip tensor beside the
    block's two tensors, the second written over the first, the sum over the skip tensor."""
    best = None
    for name, key in ORDERS.items():
        order = sorted(buffers, key=key)
        offsets = _first_fit(order, gaps)
        total = _arena_end(buffers, offsets)
        if best is None or total < best[0]:
            best = (total, name, order, offsets)
    total, name, order, offsets = best
    rng = random.Random(0)
    steps = 0
    while steps < SEARCH_STEPS and total > bound and len(order) > 1:
        steps += 1
        i, j = rng.randrange(len(order)), rng.randrange(len(order))
        trial = list(order)
        trial[i], trial[j] = trial[j], trial[i]
        trial_offsets = _first_fit(trial, gaps)
        trial_total = _arena_end(buffers, trial_offsets)
        if trial_total <= total:
            if trial_total < total:
                name = f"{best[1]} + search"
            total, order, offsets = trial_total, trial, trial_offsets
    return name, offsets


def _inplace_uses(graph: Graph, groups: dict[int, Buffer], alias: dict[int, int], inplace: dict) -> list[InPlaceUse]:
    """The in-place contracts the plan may use: the input is in the arena and dies at the op,
    the output is in the arena and is a buffer of its own."""
    uses = []
    for i, contract in sorted(inplace.items()):
        if contract is None:
            continue
        op = graph.ops[i]
        if not op.outputs or contract.input >= len(op.inputs) or op.inputs[contract.input] < 0:
            continue
        r_in = alias.get(op.inputs[contract.input], op.inputs[contract.input])
        r_out = alias.get(op.outputs[0], op.outputs[0])
        b_in, b_out = groups.get(r_in), groups.get(r_out)
        if b_in is None or b_out is None or b_in is b_out or b_in.last != i or b_out.first != i:
            continue
        gap = max(0, int(contract.min_gap))
        exact = bool(getattr(contract, "exact", False))
        if exact and gap % ALIGN:
            continue                     # an exact offset the aligned placement cannot take
        uses.append(InPlaceUse(i, b_in.key, b_out.key, _align(gap), exact))
    return uses


def lower_bound(graph: Graph, buffers: list[Buffer], uses: list[InPlaceUse]) -> int:
    """The most bytes live at one op, with each in-place pair counted as the span it needs at
    least: max(output, min_gap + input)."""
    return max(_live_per_op(graph, buffers, uses), default=0)


def live_bytes_per_op(graph: Graph, plan: Plan) -> list[int]:
    """The bytes live at each op of a plan (in-place pairs overlapped as in lower_bound)."""
    return _live_per_op(graph, plan.buffers, plan.inplace)


def _live_per_op(graph: Graph, buffers: list[Buffer], uses: list[InPlaceUse]) -> list[int]:
    sizes = {b.key: _align(b.size) for b in buffers}
    by_op: dict[int, list[InPlaceUse]] = {}
    for u in uses:
        by_op.setdefault(u.op, []).append(u)
    out = []
    for i in range(len(graph.ops)):
        live = sum(_align(b.size) for b in buffers if b.first <= i <= b.last)
        for u in by_op.get(i, []):
            s_in, s_out = sizes[u.input], sizes[u.output]
            live -= s_in + s_out - max(s_out, min(u.min_gap, s_out) + s_in)
        out.append(live)
    return out


def _forbidden(b: Buffer, p: Buffer, p_offset: int, gaps: dict) -> list[tuple[int, int]]:
    """The offsets o, lo < o < hi, that b (size aligned) must not take, p being placed at
    p_offset and live at the same time as b: b must end by p's start or start at p's end. An
    in-place pair allows more: the output may start min_gap or more bytes before the input
    (exactly min_gap for an exact contract: the one offset between two forbidden ranges)."""
    size_b, size_p = _align(b.size), _align(p.size)
    if (b.key, p.key) in gaps:      # b is written over p: b.offset <= p.offset - gap also does
        gap, exact = gaps[b.key, p.key]
        if exact and gap < size_b:
            return [(p_offset - size_b, p_offset - gap), (p_offset - gap, p_offset + size_p)]
        if exact:
            return [(p_offset - size_b, p_offset + size_p)]
        return [(p_offset - min(gap, size_b), p_offset + size_p)]
    if (p.key, b.key) in gaps:      # p is written over b: b.offset >= p.offset + gap also does
        gap, exact = gaps[p.key, b.key]
        if exact and gap < size_p:
            return [(p_offset - size_b, p_offset + gap), (p_offset + gap, p_offset + size_p)]
        if exact:
            return [(p_offset - size_b, p_offset + size_p)]
        return [(p_offset - size_b, p_offset + min(gap, size_p))]
    return [(p_offset - size_b, p_offset + size_p)]


def _first_fit(buffers: list[Buffer], gaps: dict) -> dict[str, int]:
    """Each buffer in turn at the lowest offset no placed buffer live at the same time forbids."""
    placed: list[Buffer] = []
    offsets: dict[str, int] = {}
    for b in buffers:
        forbidden = sorted(iv for p in placed if not (p.last < b.first or b.last < p.first)
                           for iv in _forbidden(b, p, offsets[p.key], gaps) if iv[1] - iv[0] > 1)
        offset = 0
        for lo, hi in forbidden:
            if offset <= lo:
                break
            offset = max(offset, hi)
        offsets[b.key] = offset
        placed.append(b)
    return offsets


def buffer_rows(graph, plan: Plan) -> list[dict]:
    """Every arena buffer as the manifest and `tinyc inspect --plan` show it: offset, bytes,
    the layers it lives across (first writer to last reader), and the input an in-place
    output is written over."""
    over = {u.output: u for u in plan.inplace if plan.overlaps_in_place(u)}
    rows = []
    for b in sorted(plan.buffers, key=lambda b: (b.first, b.offset)):
        if b.key.startswith("t"):
            t = int(b.key[1:])
            what = ("input " if t in graph.inputs else "") + graph.tensors[t].name
        else:
            what = f"scratch of layer {b.key[1:]}"
        u = over.get(b.key)
        rows.append({"buffer": b.key, "what": what, "kind": "tensor" if b.key.startswith("t") else "scratch",
                     "offset": int(b.offset), "bytes": int(b.size), "first": int(b.first), "last": int(b.last),
                     "over": None if u is None else {"buffer": u.input, "layer": u.op, "min_gap": u.min_gap}})
    return rows
