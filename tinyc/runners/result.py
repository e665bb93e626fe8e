"""What one inference on a board returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InferResult:
    output: bytes                      # the output tensors' bytes, concatenated in order
    cycles: int | None = None          # per-inference count, in `cycle_unit`
    cycle_unit: str = "cycles"         # "cycles" | "instructions" | "ns"
    layer_cycles: list[int] | None = None
    stack_bytes: int | None = None     # stack high-water mark of the inference (None: not measured)
