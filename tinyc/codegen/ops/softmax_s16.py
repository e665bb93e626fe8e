"""SOFTMAX, int8 -> int16 (keyword_scrambled's last layer; TFLite activations.cc with the
reference_ops::Softmax fixed-point kernel for OutputT = int16_t): softmax.py's constants
(PreprocessSoftmaxScaling, CalculateInputRadius) and exp/reciprocal helpers, the result
shifted for 16 output bits and offset by -32768 (output scale 1/65536, zero point -32768, as
Prepare requires). An int16 input takes the 16x8 int16 -> int16 kernel of softmax_lut_s16.py."""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, label
from tinyc.codegen.ops.softmax import MAX_DEPTH, softmax_params
from tinyc.codegen.ops.softmax_lut_s16 import check_softmax_s16, lower_softmax_s16


def _int16_input(graph, op) -> bool:
    return graph.tensors[op.inputs[0]].dtype == "int16"


@checker("SOFTMAX", dtype="int16")
def check_softmax_int16(graph, op):
    """A SOFTMAX with an int16 input or output: int8 -> int16 here, int16 -> int16 in softmax_lut_s16."""
    lab = label(op, "SOFTMAX")
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 1 and 1 expected")
    if _int16_input(graph, op):
        return check_softmax_s16(graph, op, lab)
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int8" or y.dtype != "int16":
        raise UnsupportedError(f"{lab} maps {x.dtype} to {y.dtype}; tinyc compiles int8 -> int8, int8 -> int16 "
                               "and int16 -> int16 softmax")
    check_per_tensor(lab, x, y)
    if tuple(x.shape) != tuple(y.shape) or not x.shape or int(x.shape[-1]) > MAX_DEPTH:
        raise UnsupportedError(f"{lab} maps shape {list(x.shape)} to {list(y.shape)}")
    if y.quant.zp != -32768 or abs(float(y.quant.s) - 1.0 / 65536) > 0.001 / 65536:
        raise UnsupportedError(f"{lab} has an int16 output quantized ({y.quant.s:g}, {y.quant.zp}); TFLite requires "
                               "scale 1/65536, zero point -32768 for it")
    try:
        softmax_params(float(op.attrs.get("beta", 1.0)), x.quant.s)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}; TFLite's reference softmax rejects it too") from None


@register("SOFTMAX", kernels=["softmax", "softmax_s8_s16"], dtype="int16")
def lower_softmax_int16(graph, op, ctx) -> Lowered:
    if _int16_input(graph, op):
        return lower_softmax_s16(graph, op, ctx)
    x = graph.tensors[op.inputs[0]]
    mult, left_shift, diff_min = softmax_params(float(op.attrs.get("beta", 1.0)), x.quant.s)
    depth = int(x.shape[-1])
    params = ctx.params("tinyc_softmax_params_s8", {
        "dims": {"rows": x.size // depth, "depth": depth},
        "quant": {"input_beta_multiplier": mult, "input_beta_left_shift": left_shift, "diff_min": diff_min},
    })
    call = f"tinyc_softmax_s8_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=x.size, notes=["int8 -> int16 output (scale 1/65536, zero point -32768)"])
