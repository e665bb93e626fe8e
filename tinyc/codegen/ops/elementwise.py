"""ADD and MUL, int8, with TFLite's general broadcasting and fused activations.

Constants follow TFLite's kernels/add.cc and kernels/mul.cc Prepare():
  ADD: left_shift 20, twice_max_input_scale = 2 * max(s1, s2) (max in float32, the rest in
       double), three QuantizeMultiplierSmallerThanOneExp multipliers;
  MUL: real_multiplier = s1 * s2 / s_out computed in float32 (as written in mul.cc), then
       QuantizeMultiplier.
The per-element math is the same in the reference's flat path (Add/Mul) and its broadcast
path (BroadcastAdd6DSlow/BroadcastMul6DSlow), so one strided loop serves both: the shapes
are collapsed here into at most 6 dims with per-input strides (0 where an input broadcasts).
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import InPlace, Lowered, checker, register
from tinyc.codegen.ops._common import dying_input
from tinyc.quant_math import (activation_range_s8, quantize_multiplier,
                                   quantize_multiplier_smaller_than_one_exp)

MAX_DIMS = 6  # the reference's broadcast kernels handle up to 6 dims


def broadcast_loops(shape1, shape2, out_shape) -> tuple[list[int], list[int], list[int]]:
    """(dims, strides1, strides2), each MAX_DIMS long, for a row-major walk over the output.

    Dims of extent 1 are dropped, neighbouring dims where both inputs broadcast the same way
    are merged, and the result is left-padded with dims of extent 1. A stride of 0 means the
    input repeats along that dim. Raises ValueError if the shapes do not broadcast.
    """
    rank = max(len(shape1), len(shape2), len(out_shape))
    s1 = [1] * (rank - len(shape1)) + [int(d) for d in shape1]
    s2 = [1] * (rank - len(shape2)) + [int(d) for d in shape2]
    so = [1] * (rank - len(out_shape)) + [int(d) for d in out_shape]
    # Merged dims as [extent, extent in input 1, extent in input 2].
    merged: list[list[int]] = []
    for a, b, o in zip(s1, s2, so):
        if a not in (1, o) or b not in (1, o):
            raise ValueError(f"shapes {tuple(shape1)} and {tuple(shape2)} do not broadcast to {tuple(out_shape)}")
        if o == 1:
            continue
        if merged:
            prev = merged[-1]
            if (prev[1] == 1) == (a == 1) and (prev[2] == 1) == (b == 1):
                prev[0] *= o
                prev[1] *= a
                prev[2] *= b
                continue
        merged.append([o, a, b])
    if len(merged) > MAX_DIMS:
        raise ValueError(f"broadcast needs {len(merged)} loop levels; at most {MAX_DIMS} are supported")
    dims, st1, st2 = [], [], []
    step1 = step2 = 1
    for o, a, b in reversed(merged):
        dims.append(o)
        st1.append(0 if a == 1 else step1)
        st2.append(0 if b == 1 else step2)
        step1 *= a
        step2 *= b
    pad = MAX_DIMS - len(dims)
    return [1] * pad + dims[::-1], [0] * pad + st1[::-1], [0] * pad + st2[::-1]


def _check_binary(graph, op, kind: str) -> None:
    name = op.name or kind
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{kind} '{name}' has {len(op.inputs)} inputs; 2 expected")
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    if not (a.dtype == b.dtype == y.dtype == "int8"):
        raise UnsupportedError(
            f"{kind} '{name}' has {a.dtype}/{b.dtype} inputs and a {y.dtype} output; "
            "tinyc compiles int8 ones: quantize the model to full int8")
    for t in (a, b, y):
        if t.quant is None or t.quant.per_axis:
            raise UnsupportedError(
                f"{kind} '{name}': tensor '{t.name}' is not per-tensor quantized; "
                "tinyc needs one scale and zero point per tensor")
    act = op.attrs.get("activation", "NONE")
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        raise UnsupportedError(f"{kind} '{name}' has fused activation {act}, which tinyc does not support")
    try:
        broadcast_loops(a.shape, b.shape, y.shape)
    except ValueError as e:
        raise UnsupportedError(f"{kind} '{name}': {e}") from None


def add_params(s1: float, s2: float, s_out: float, left_shift: int = 20) -> dict:
    """TFLite add.cc Prepare for 8-bit (left shift 20) and general 16-bit (15): the left shift
    and three (multiplier, shift) pairs."""
    twice_max_input_scale = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    real1 = float(np.float32(s1)) / twice_max_input_scale
    real2 = float(np.float32(s2)) / twice_max_input_scale
    real_out = twice_max_input_scale / (float(1 << left_shift) * float(np.float32(s_out)))
    if not 0.0 < real_out < 1.0:
        raise ValueError(f"output rescale {real_out:g} is outside (0, 1)")
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real1)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real2)
    mo, sho = quantize_multiplier_smaller_than_one_exp(real_out)
    return dict(left_shift=left_shift, m1=m1, sh1=sh1, m2=m2, sh2=sh2, mo=mo, sho=sho)


def mul_params(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    """TFLite mul.cc Prepare: `double real_multiplier = s1 * s2 / s_out;` evaluated in float
    (the scales are floats; only the result is widened). Evaluating it in double gives another
    31-bit multiplier for ~1 scale triple in 1500, and 1-LSB errors on a few products."""
    real = float(np.float32(np.float32(s1) * np.float32(s2)) / np.float32(s_out))
    return quantize_multiplier(real)


def _broadcast_dims(graph, op) -> dict:
    """The .dims group (tinyc_broadcast_dims) of ADD, SUB and MUL."""
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    dims, st1, st2 = broadcast_loops(a.shape, b.shape, y.shape)
    return {"extent": dims, "input1_stride": st1, "input2_stride": st2}


def _dims_note(d: dict) -> str:
    return f"loops {d['extent']}, strides {d['input1_stride']} / {d['input2_stride']}"


def check_add_like(graph, op, kind: str) -> None:
    """ADD's checks, which SUB shares: its constants come from add_params too."""
    _check_binary(graph, op, kind)
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    try:
        add_params(a.quant.s, b.quant.s, y.quant.s)
    except ValueError as e:
        raise UnsupportedError(f"{kind} '{op.name or kind}': {e}; TFLite refuses such scales too") from None


def binary_inplace(graph, op, ctx) -> InPlace | None:
    """ADD, SUB and MUL walk the output in order, reading element i of each input before writing
    element i: the output may lie over an input of the output's shape (not a broadcast one),
    preferably one that dies here."""
    y = graph.tensors[op.outputs[0]]
    full = [k for k in (0, 1) if graph.tensors[op.inputs[k]].size == y.size]
    k = dying_input(graph, ctx.op_index, full)
    return None if k is None else InPlace(k, 0)


def lower_add_like(graph, op, ctx, kind: str) -> Lowered:
    """ADD's lowering, which SUB shares: the same params (tinyc_add_params_s8) passed to tinyc_<kind>_s8."""
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    p = add_params(a.quant.s, b.quant.s, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    dims = _broadcast_dims(graph, op)
    params = ctx.params("tinyc_add_params_s8", {
        "dims": dims,
        "op": {"input1_offset": -a.quant.zp, "input2_offset": -b.quant.zp, "left_shift": p["left_shift"],
               "output_offset": y.quant.zp, "act_min": act_min, "act_max": act_max},
        "quant": {"input1": {"multiplier": p["m1"], "shift": p["sh1"]},
                  "input2": {"multiplier": p["m2"], "shift": p["sh2"]},
                  "output": {"multiplier": p["mo"], "shift": p["sho"]}},
    })
    call = (f"tinyc_{kind}_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, "
            f"{ctx.ptr(op.outputs[0])});")
    return Lowered(call=call, macs=0, notes=[_dims_note(dims)], inplace=binary_inplace(graph, op, ctx))


@checker("ADD")
def check_add(graph, op):
    check_add_like(graph, op, "ADD")


@register("ADD", kernels=["common/add_sub", "add"])
def lower_add(graph, op, ctx) -> Lowered:
    return lower_add_like(graph, op, ctx, "add")


@checker("MUL")
def check_mul(graph, op):
    _check_binary(graph, op, "MUL")


@register("MUL", kernels=["mul"])
def lower_mul(graph, op, ctx) -> Lowered:
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    mult, shift = mul_params(a.quant.s, b.quant.s, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    dims = _broadcast_dims(graph, op)
    params = ctx.params("tinyc_mul_params_s8", {
        "dims": dims,
        "op": {"input1_offset": -a.quant.zp, "input2_offset": -b.quant.zp, "output_offset": y.quant.zp,
               "act_min": act_min, "act_max": act_max},
        "quant": {"multiplier": mult, "shift": shift},
    })
    call = (f"tinyc_mul_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, "
            f"{ctx.ptr(op.outputs[0])});")
    return Lowered(call=call, macs=y.size, notes=[_dims_note(dims)], inplace=binary_inplace(graph, op, ctx))
