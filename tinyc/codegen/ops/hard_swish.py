"""HARD_SWISH, int8 (TFLite kernels/activations.cc HardSwishPrepare, reference_ops::HardSwish).

Prepare, in float32 (all the scales are floats):
  hires_input_scale   = (1/128) * input_scale
  output_multiplier   = hires_input_scale / output_scale
  reluish_multiplier  = hires_input_scale / (3 / 32768)
each through QuantizeMultiplier to a Q31 multiplier and an exponent, then rounded to Q15
(DownScaleInt32ToInt16Multiplier: (m + 2^15) >> 16, or 32767 near the top). Prepare fails
unless the output exponent is <= 0. Eval works in 16-bit fixed point (see the kernel).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_unary_s8, forward_inplace, label
from tinyc.quant_math import quantize_multiplier

f32 = np.float32
INT32_MAX = (1 << 31) - 1


def downscale_to_q15(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, output_scale: float) -> dict:
    hires = f32(f32(1.0) / f32(128.0)) * f32(input_scale)
    reluish_scale = f32(3.0) / f32(32768.0)
    om, oe = quantize_multiplier(float(f32(hires / f32(output_scale))))
    rm, re = quantize_multiplier(float(f32(hires / reluish_scale)))
    return dict(output_multiplier=downscale_to_q15(om), output_exponent=oe,
                reluish_multiplier=downscale_to_q15(rm), reluish_exponent=re)


@checker("HARD_SWISH")
def check_hard_swish(graph, op):
    lab = label(op, "HARD_SWISH")
    x, y = check_unary_s8(graph, op, lab, "int8 hard swish")
    p = hard_swish_params(x.quant.s, y.quant.s)
    if p["output_exponent"] > 0:
        raise UnsupportedError(f"{lab} has output scale {y.quant.s:g} below input scale / 128 ({x.quant.s:g} / 128); "
                               "TFLite's Prepare refuses this too: re-quantize the model")
    if p["reluish_exponent"] > 30:
        raise UnsupportedError(f"{lab} has input scale {x.quant.s:g}, too large for the 16-bit fixed-point "
                               "kernel: re-quantize the model")


@register("HARD_SWISH", kernels=["hard_swish"])
def lower_hard_swish(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    p = hard_swish_params(x.quant.s, y.quant.s)
    params = ctx.params("tinyc_hard_swish_params_s8", {
        "dims": {"size": x.size},
        "op": {"input_zero_point": x.quant.zp, "output_zero_point": y.quant.zp},
        "quant": p,
    })
    call = f"tinyc_hard_swish_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, inplace=forward_inplace(x, y))
