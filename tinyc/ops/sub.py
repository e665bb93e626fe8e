"""SUB, int8, with TFLite's general broadcasting and fused activations (kernels/sub.cc).

PrepareGeneralSubOp computes ADD's constants (left shift 20, twice_max_input_scale, three
QuantizeMultiplierSmallerThanOneExp multipliers: elementwise.add_params) and negates input 2's
multiplier; Eval then runs the int8 ADD kernels (reference_integer_ops::Add, or a broadcast
one when the shapes differ: LiteRT 2.3.0 broadcasts rank 5 too, checked here).

With LiteRT 2.3.0 BUILTIN_REF, rescaling by the negated multiplier gives exactly
-(input 2 rescaled by the positive one) (as LEAKY_RELU's negative alpha does; see
leaky_relu.py), so the kernel subtracts the two rescaled inputs: checked on all 256x256
input pairs for several scale triples, power-of-two ones included.
"""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.ops import Lowered, checker, register
from tinyc.ops.elementwise import _check_binary, _loop_consts, add_params
from tinyc.passes.quantize import activation_range_s8

@checker("SUB")
def check_sub(graph, op):
    _check_binary(graph, op, "SUB")
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    name = op.name or "SUB"
    try:
        add_params(a.quant.s, b.quant.s, y.quant.s)
    except ValueError as e:
        raise UnsupportedError(f"SUB '{name}': {e}; TFLite refuses such scales too") from None
    activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)


@register("SUB", kernels=["sub"])
def lower_sub(graph, op, ctx) -> Lowered:
    a, b = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    y = graph.tensors[op.outputs[0]]
    p = add_params(a.quant.s, b.quant.s, y.quant.s)
    act_min, act_max = activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)
    base = ctx.ident(op.name or "sub")
    loops, dims, st1, st2 = _loop_consts(graph, op, ctx, base)
    call = (
        f"tinyc_sub_s8({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, {ctx.ptr(op.outputs[0])}, {loops},\n"
        f"    {-a.quant.zp}, {p['m1']}, {p['sh1']}, {-b.quant.zp}, {p['m2']}, {p['sh2']},\n"
        f"    {p['left_shift']}, {y.quant.zp}, {p['mo']}, {p['sho']}, {act_min}, {act_max});"
    )
    return Lowered(call=call, macs=0, notes=[f"loops {dims}, strides {st1} / {st2}"])
