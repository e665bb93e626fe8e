"""What one inference on a board returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InferResult:
    output: bytes                      # the output tensors' bytes, concatenated in order
    cycles: int | None = None          # per-inference count, in `cycle_unit`
    cycle_unit: str = "cycles"         # "cycles" | "instructions" | "ns"
    layer_cycles: list[int] | None = None
