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

from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops.elementwise import check_add_like, lower_add_like
from tinyc.quant_math import activation_range_s8


@checker("SUB")
def check_sub(graph, op):
    check_add_like(graph, op, "SUB")
    y = graph.tensors[op.outputs[0]]
    activation_range_s8(op.attrs.get("activation", "NONE"), y.quant.s, y.quant.zp)


@register("SUB", kernels=["common/add_sub", "sub"])
def lower_sub(graph, op, ctx) -> Lowered:
    return lower_add_like(graph, op, ctx, "sub")
