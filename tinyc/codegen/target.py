"""What the generated C is laid out for: the board's ISA and features and the --optimize level.

A lowering reads `ctx.target` to choose a data layout at generation time (e.g. weights
interleaved for SMLAD when the target has the DSP extension, int16 weights under "speed").
The C inside a kernel still picks its inner step with the preprocessor and always keeps a
portable fallback, so an OUTDIR generated for one board builds and runs bit-exact on any other.
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZE_LEVELS = ("balanced", "speed", "size")


@dataclass(frozen=True)
class Target:
    isa: str = "generic"                 # "armv7e-m", "armv8.1-m.main", "armv8-a", "x86-64", ...
    features: tuple[str, ...] = ()       # "dsp", "mve", "neon", ...
    optimize: str = "balanced"           # one of OPTIMIZE_LEVELS

    def has(self, feature: str) -> bool:
        return feature in self.features

    def to_dict(self) -> dict:
        return {"isa": self.isa, "features": list(self.features), "optimize": self.optimize}


def target_from_board(board_raw: dict, optimize: str = "balanced") -> Target:
    """The Target of a board (its TOML's [target] table: isa, features) at an optimize level."""
    from tinyc.errors import TinycError

    if optimize not in OPTIMIZE_LEVELS:
        raise TinycError(f"unknown optimize level '{optimize}'; use one of {', '.join(OPTIMIZE_LEVELS)}")
    t = board_raw.get("target", {})
    return Target(isa=str(t.get("isa", "generic")), features=tuple(str(f) for f in t.get("features", ())),
                  optimize=optimize)
