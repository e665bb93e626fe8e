"""ADD, SUB and MUL, 16x8 (int16 tensors), TFLite's general-rescale form (pot_scale_int16 false).

add.cc / sub.cc Prepare take the 8-bit path's constants with left_shift 15 instead of 20
(elementwise.add_params); Eval runs the same AddFunc math on int16 (reference_integer_ops::Add
or the 6-D broadcast), SUB with input 2's rescaled value subtracted. The int8 loop over
tinyc_broadcast_dims serves both shapes, with int16 loads and stores.
int32 headroom: |x + offset| <= 65535, so x * 2^15 < 2^31.
MUL (mul.cc, reference_integer_ops::MulElementwise on int16): the int8 constants
(elementwise.mul_params) and math, (x1 + o1) * (x2 + o2) < 2^31 with zero points 0.
"""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.codegen.ops.elementwise import add_params, broadcast_loops, mul_params
from tinyc.quant_math import activation_range_s8

INT16_MIN, INT16_MAX = -32768, 32767


def _check(graph, op, kind: str) -> None:
    lab = label(op, kind)
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs; 2 expected")
    a, b, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if not (a.dtype == b.dtype == y.dtype == "int16"):
        raise UnsupportedError(f"{lab} has {a.dtype}/{b.dtype} inputs and a {y.dtype} output; "
                               "16x8 ADD and SUB take int16 throughout")
    for t in (a, b, y):
        if t.quant is None or t.quant.per_axis:
            raise UnsupportedError(f"{lab}: tensor '{t.name}' is not per-tensor quantized")
    if op.attrs.get("pot_scale_int16", False):
        raise UnsupportedError(f"{lab} uses power-of-two int16 scales (pot_scale_int16); tinyc compiles the "
                               "general-rescale form")
    act = op.attrs.get("activation", "NONE")
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedError(f"{lab} has fused activation {act}, which tinyc does not support")
    if kind == "MUL" and (a.quant.zp or b.quant.zp):
        raise UnsupportedError(f"{lab} has int16 zero points other than 0; TFLite's 16x8 scheme has none")
    try:
        broadcast_loops(a.shape, b.shape, y.shape)
        if kind != "MUL":
            add_params(a.quant.s, b.quant.s, y.quant.s, left_shift=15)
    except ValueError as e:
        raise UnsupportedError(f"{lab}: {e}") from None


def _lower(graph, op, ctx, kind: str) -> Lowered:
    a, b, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    p = add_params(a.quant.s, b.quant.s, y.quant.s, left_shift=15)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp,
                                           INT16_MIN, INT16_MAX)
    dims, st1, st2 = broadcast_loops(a.shape, b.shape, y.shape)
    params = ctx.params("tinyc_add_params_s16", {
        "dims": {"extent": dims, "input1_stride": st1, "input2_stride": st2},
        "op": {"input1_offset": -a.quant.zp, "input2_offset": -b.quant.zp, "left_shift": p["left_shift"],
               "output_offset": y.quant.zp, "act_min": act_min, "act_max": act_max},
        "quant": {"input1": {"multiplier": p["m1"], "shift": p["sh1"]},
                  "input2": {"multiplier": p["m2"], "shift": p["sh2"]},
                  "output": {"multiplier": p["mo"], "shift": p["sho"]}},
    })
    call = (f"tinyc_{kind}_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, "
            f"{ctx.ptr(op.outputs[0])});")
    return Lowered(call=call, macs=0, notes=[f"16x8; loops {dims}, strides {st1} / {st2}"])


@checker("ADD", dtype="int16")
def check_add_s16(graph, op):
    _check(graph, op, "ADD")


@register("ADD", kernels=["add_sub_s16"], dtype="int16")
def lower_add_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, "add")


@checker("SUB", dtype="int16")
def check_sub_s16(graph, op):
    _check(graph, op, "SUB")


@register("SUB", kernels=["add_sub_s16"], dtype="int16")
def lower_sub_s16(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx, "sub")


@checker("MUL", dtype="int16")
def check_mul_s16(graph, op):
    _check(graph, op, "MUL")


@register("MUL", kernels=["mul_s16"], dtype="int16")
def lower_mul_s16(graph, op, ctx) -> Lowered:
    a, b, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    mult, shift = mul_params(a.quant.s, b.quant.s, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp,
                                           INT16_MIN, INT16_MAX)
    dims, st1, st2 = broadcast_loops(a.shape, b.shape, y.shape)
    params = ctx.params("tinyc_mul_params_s16", {
        "dims": {"extent": dims, "input1_stride": st1, "input2_stride": st2},
        "op": {"input1_offset": -a.quant.zp, "input2_offset": -b.quant.zp, "output_offset": y.quant.zp,
               "act_min": act_min, "act_max": act_max},
        "quant": {"multiplier": mult, "shift": shift},
    })
    call = (f"tinyc_mul_s16({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, "
            f"{ctx.ptr(op.outputs[0])});")
    return Lowered(call=call, macs=y.size, notes=[f"16x8; loops {dims}, strides {st1} / {st2}"])
