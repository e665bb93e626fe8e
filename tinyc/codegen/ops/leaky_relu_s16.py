"""LEAKY_RELU, 16x8 (int16 in and out): TFLite's LeakyReluPrepare constants (leaky_relu.py's
leaky_relu_params) and reference_ops::QuantizeLeakyRelu<int16_t>, the int8 math with int16
bounds (the negative-alpha form as in leaky_relu.py)."""

from __future__ import annotations

import math

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, label
from tinyc.codegen.ops.leaky_relu import leaky_relu_params


@checker("LEAKY_RELU", dtype="int16")
def check_leaky_relu_s16(graph, op):
    lab = label(op, "LEAKY_RELU")
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int16" or y.dtype != "int16" or x.size != y.size:
        raise UnsupportedError(f"{lab} maps {x.dtype} {list(x.shape)} to {y.dtype} {list(y.shape)}; "
                               "16x8 LEAKY_RELU keeps int16 and the size")
    check_per_tensor(lab, x, y)
    alpha = float(op.attrs.get("alpha", 0.0))
    if not math.isfinite(alpha) or leaky_relu_params(x.quant.s, alpha, y.quant.s)[2] <= -(1 << 31):
        raise UnsupportedError(f"{lab} has alpha {alpha}, whose rescale tinyc cannot represent")


@register("LEAKY_RELU", kernels=["leaky_relu_s16"], dtype="int16")
def lower_leaky_relu_s16(graph, op, ctx) -> Lowered:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    alpha = float(op.attrs.get("alpha", 0.0))
    mi, si, ma, sa = leaky_relu_params(x.quant.s, alpha, y.quant.s)
    params = ctx.params("tinyc_leaky_relu_params_s16", {
        "dims": {"size": x.size},
        "op": {"input_offset": -x.quant.zp, "output_offset": y.quant.zp},
        "quant": {"identity": {"multiplier": mi, "shift": si}, "alpha": {"multiplier": abs(ma), "shift": sa},
                  "alpha_negate": int(ma < 0)},
    })
    call = f"tinyc_leaky_relu_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, notes=[f"16x8; alpha {alpha:g}"])
