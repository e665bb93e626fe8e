"""The op lowerings (tinyc/ops) still import the int8 math from here; it lives in tinyc.quant_math.

Removed when the codegen move rewrites `tinyc.passes.quantize` to `tinyc.quant_math` in ops/.
"""

from tinyc.quant_math import (activation_range_s8, conv_output_multipliers,  # noqa: F401
                              quantize_multiplier, quantize_multiplier_smaller_than_one_exp, round_half_away)
