"""LEAKY_RELU, int8 (TFLite kernels/activations.cc LeakyReluPrepare, reference_ops::QuantizeLeakyRelu).

Prepare computes two multipliers in float32 (the scales and alpha are floats; only the
results are widened to double) and passes each to QuantizeMultiplier:
  alpha    = input_scale * alpha / output_scale   (negative for a negative alpha, 0 for 0)
  identity = input_scale / output_scale
Eval picks the identity one where q - input_zp >= 0 and the alpha one elsewhere, then adds
the output zero point and clamps to int8.

A negative alpha gives a negative alpha multiplier m. LiteRT 2.3.0 BUILTIN_REF then computes
-MultiplyByQuantizedMultiplier(x, -m, shift), not the gemmlowp rounding of x * m: the two
differ only on exact ties of the high multiply (e.g. alpha -0.5 with equal scales: 65.5 gives
65, not 66). Found on every int8 input of 40 power-of-two setups (0 differences this way, up
to 66 of 256 the other), so the kernel takes |m| and a negate flag.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_unary_s8, forward_inplace, label
from tinyc.quant_math import quantize_multiplier

f32 = np.float32


def leaky_relu_params(input_scale: float, alpha: float, output_scale: float) -> tuple[int, int, int, int]:
    """(identity multiplier, identity shift, alpha multiplier, alpha shift), as LeakyReluPrepare."""
    mi, si = quantize_multiplier(float(f32(input_scale) / f32(output_scale)))
    ma, sa = quantize_multiplier(float(f32(f32(input_scale) * f32(alpha)) / f32(output_scale)))
    return mi, si, ma, sa


@checker("LEAKY_RELU")
def check_leaky_relu(graph, op):
    lab = label(op, "LEAKY_RELU")
    x, y = check_unary_s8(graph, op, lab, "int8 leaky relu")
    alpha = float(op.attrs.get("alpha", 0.0))
    if not math.isfinite(alpha):
        raise UnsupportedError(f"{lab} has alpha {alpha}; a finite slope is needed")
    if leaky_relu_params(x.quant.s, alpha, y.quant.s)[2] <= -(1 << 31):
        raise UnsupportedError(f"{lab} has alpha {alpha:g}, whose rescale rounds to a multiplier of -2^31; "
                               "nudge alpha or the output scale slightly")


@register("LEAKY_RELU", kernels=["leaky_relu"])
def lower_leaky_relu(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    alpha = float(op.attrs.get("alpha", 0.0))
    mi, si, ma, sa = leaky_relu_params(x.quant.s, alpha, y.quant.s)
    params = ctx.params("tinyc_leaky_relu_params_s8", {
        "dims": {"size": x.size},
        "op": {"input_offset": -x.quant.zp, "output_offset": y.quant.zp},
        "quant": {"identity": {"multiplier": mi, "shift": si}, "alpha": {"multiplier": abs(ma), "shift": sa},
                  "alpha_negate": int(ma < 0)},
    })
    call = f"tinyc_leaky_relu_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, notes=[f"alpha {alpha:g}"], inplace=forward_inplace(x, y))
