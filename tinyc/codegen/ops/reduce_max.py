"""REDUCE_MAX, int8 (TFLite kernels/reduce.cc EvalType with ReduceType kMax).

The reference keeps every value as it is: for int8 it requires the output to share the
input's scale and zero point (Eval fails otherwise, in ai-edge-litert 2.3.0 and LiteRT's
main branch alike), so there is nothing to requantize. Each output is the largest input over
the reduced axes, starting from -128 (std::numeric_limits<int8_t>::lowest()).

Keras emits it for GlobalMaxPooling1D/2D and keras.ops.max(x, axis=...). The axes are
resolved as MEAN's (negative axes wrap, duplicates count once) and the kernel walks the
same outer/reduce/mid/reduce/inner pattern (mean.reduce_loops).
"""

from __future__ import annotations

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, check_s8_in_out, label
from tinyc.codegen.ops.mean import check_reduce_axes, reduce_axes, reduce_loops

LOOP_NAMES = ("outer", "reduce0", "mid", "reduce1", "inner")


@checker("REDUCE_MAX")
def check_reduce_max(graph, op):
    lab = label(op, "REDUCE_MAX")
    x, y = check_s8_in_out(graph, op, lab, 2, "int8 REDUCE_MAX")
    check_per_tensor(lab, x, y)
    if x.quant.s != y.quant.s or x.quant.zp != y.quant.zp:
        raise UnsupportedError(f"{lab} has input quantization ({x.quant.s:g}, {x.quant.zp}) and output "
                               f"({y.quant.s:g}, {y.quant.zp}); TFLite's REDUCE_MAX needs them equal "
                               "(its reference fails otherwise): re-quantize the model")
    check_reduce_axes(graph, op, lab)
    if x.size == 0:
        raise UnsupportedError(f"{lab} reduces an empty tensor {list(x.shape)}")


@register("REDUCE_MAX", kernels=["reduce_max"])
def lower_reduce_max(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    axes = reduce_axes(graph, op)
    loops = reduce_loops(x.shape, axes)
    params = ctx.params("tinyc_reduce_max_params_s8", {"dims": dict(zip(LOOP_NAMES, loops))})
    call = f"tinyc_reduce_max_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    notes = [f"axes {sorted(axes)}: max of {loops[1] * loops[3]} values; loops outer/reduce/mid/reduce/inner = {loops}"]
    return Lowered(call=call, macs=0, notes=notes)
