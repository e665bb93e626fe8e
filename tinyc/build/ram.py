"""The RAM and flash a model takes on a board, from the build and the stack measured on it.

RAM = arena (intermediate tensors, per-op scratch, the inputs with --io-in-arena) + the
model's other .data/.bss + the caller's input and output buffers (unless in the arena) + the
peak stack of tinyc_invoke (measured by stack painting during `tinyc validate` / `run`;
until then the board's stack reserve stands in, marked as such). Flash = the model's code +
its constants. Recorded per board in tinyc.json's `ram` section.
"""

from __future__ import annotations

from tinyc.outdir import Manifest


def io_buffer_bytes(manifest: Manifest) -> int:
    """The caller's buffers: outputs always, inputs unless they live in the arena."""
    in_arena = bool((manifest.section("memory") or {}).get("io_in_arena"))
    return sum(int(t.bytes) for t in manifest.outputs + ([] if in_arena else manifest.inputs))


def ram_summary(manifest: Manifest, board: str, *, model_static: int | None = None, code: int | None = None,
                weights: int | None = None, stack: int | None = None, stack_reserve: int | None = None) -> dict:
    """The `ram` entry of one board: what is given here, else what tinyc.json holds already."""
    old = dict((manifest.section("ram") or {}).get(board, {}))
    arena = int(manifest.arena_bytes or 0)
    if model_static is not None:
        old["static_bytes"] = max(0, model_static - arena)   # the arena is in the model's .bss
    if code is not None and weights is not None:
        old["flash_bytes"] = code + weights
        old["code_bytes"], old["constant_bytes"] = code, weights
    if stack is not None:
        old["stack_bytes"], old["stack_measured"] = int(stack), True
    elif "stack_bytes" not in old or not old.get("stack_measured"):
        old["stack_bytes"], old["stack_measured"] = stack_reserve, False
    d = {"arena_bytes": arena, "static_bytes": old.get("static_bytes"), "io_bytes": io_buffer_bytes(manifest),
         "stack_bytes": old.get("stack_bytes"), "stack_measured": bool(old.get("stack_measured")),
         "flash_bytes": old.get("flash_bytes"), "code_bytes": old.get("code_bytes"),
         "constant_bytes": old.get("constant_bytes")}
    parts = [d["arena_bytes"], d["static_bytes"], d["io_bytes"], d["stack_bytes"]]
    d["ram_bytes"] = sum(parts) if all(p is not None for p in parts) else None
    return {"ram_bytes": d.pop("ram_bytes"), **d}


def ram_lines(d: dict) -> list[str]:
    """Two summary lines: RAM and flash with their parts."""
    def n(v):
        return "?" if v is None else f"{v:,}"
    stack = (f"peak stack of tinyc_invoke {n(d['stack_bytes'])} (measured)" if d.get("stack_measured") else
             f"stack {n(d['stack_bytes'])} (the board's reserve: not measured yet, run validate)")
    return [f"RAM   {n(d['ram_bytes'])} B = arena {n(d['arena_bytes'])} + model .data/.bss {n(d['static_bytes'])} "
            f"+ I/O buffers {n(d['io_bytes'])} + {stack}",
            f"flash {n(d['flash_bytes'])} B = code {n(d['code_bytes'])} + constants {n(d['constant_bytes'])}"]
