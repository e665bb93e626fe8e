"""IR -> C: op lowering (ops/), the static arena planner (planner.py) and the renderer that
writes model.c, weights.c and the kernel headers (generator.py).

The rest of tinyc calls two functions: `check_supported(graph)` (refuse what cannot be
generated, before any work) and `generate(...)` (the one lowering)."""

from tinyc.codegen.generator import Generated, check_supported, generate
from tinyc.codegen.target import OPTIMIZE_LEVELS, Target, target_from_board

__all__ = ["Generated", "check_supported", "generate", "OPTIMIZE_LEVELS", "Target", "target_from_board"]
