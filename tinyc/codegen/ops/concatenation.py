"""CONCATENATION along any axis.

TFLite's kernels/concatenation.cc requires, for int8, that every input has the output's scale
and zero point (Prepare refuses anything else; the converter inserts requantizing ops
instead), and refuses fused activations; the int8/int16/float reference kernel
(reference_ops::Concatenation) then only copies. Only uint8 takes the rescaling path
(ConcatenationWithScaling), which full-int8 models never use: tinyc copies uint8 only when
no rescaling is needed. The copy is done on bytes, one strided copy per input: for each of
the `outer` slices before the axis, input i contributes a contiguous block.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ir import dtype_size
from tinyc.codegen.ops import Lowered, checker, register


def _axis(graph, op) -> int:
    y = graph.tensors[op.outputs[0]]
    axis = int(op.attrs.get("axis", 0))
    return axis + len(y.shape) if axis < 0 else axis


@checker("CONCATENATION")
def check_concatenation(graph, op):
    name = op.name or "CONCATENATION"
    y = graph.tensors[op.outputs[0]]
    xs = [graph.tensors[i] for i in op.inputs]
    axis = _axis(graph, op)
    if not (0 <= axis < max(len(y.shape), 1)):
        raise UnsupportedError(f"CONCATENATION '{name}' has axis {op.attrs.get('axis')} for a rank-{len(y.shape)} output")
    if op.attrs.get("activation", "NONE") != "NONE":
        raise UnsupportedError(f"CONCATENATION '{name}' has a fused {op.attrs['activation']}, which TFLite refuses too")
    for x in xs:
        if x.dtype != y.dtype:
            raise UnsupportedError(f"CONCATENATION '{name}' mixes {x.dtype} and {y.dtype} tensors")
        if len(x.shape) != len(y.shape) or any(
                a != b for d, (a, b) in enumerate(zip(x.shape, y.shape)) if d != axis):
            raise UnsupportedError(f"CONCATENATION '{name}': input shape {tuple(x.shape)} does not fit "
                                   f"output {tuple(y.shape)} on axis {axis}")
        if y.dtype in ("int8", "uint8") and y.quant is not None and (
                x.quant is None or x.quant.per_axis or x.quant.zp != y.quant.zp
                or np.float32(x.quant.s) != np.float32(y.quant.s)):
            raise UnsupportedError(
                f"CONCATENATION '{name}': input '{x.name}' is quantized differently from the output; "
                "TFLite's int8 kernel refuses that (requantize the inputs to the output's scale first)")
    if y.shape and sum(int(x.shape[axis]) for x in xs) != int(y.shape[axis]):
        raise UnsupportedError(f"CONCATENATION '{name}': input extents on axis {axis} do not add up")


@register("CONCATENATION", kernels=["concatenation"])
def lower_concatenation(graph, op, ctx) -> Lowered:
    y = graph.tensors[op.outputs[0]]
    axis = _axis(graph, op)
    esize = dtype_size(y.dtype)
    outer = int(np.prod(y.shape[:axis], dtype=np.int64)) if y.shape else 1
    out_block = (y.size // outer) * esize if outer else 0  # bytes per outer slice of the output
    dst = ctx.ptr(op.outputs[0])
    if y.dtype != "int8":
        dst = f"(int8_t *){dst}"
    lines, offset = [], 0
    for t in op.inputs:
        x = graph.tensors[t]
        block = (x.size // outer) * esize if outer else 0
        src = ctx.ptr(t) if y.dtype == "int8" else f"(const int8_t *){ctx.ptr(t)}"
        params = ctx.params("tinyc_concatenation_params",
                            {"outer": outer, "block_bytes": block, "output_block_bytes": out_block,
                             "output_start": offset}, role=f"input{len(lines)}_params")
        lines.append(f"tinyc_concatenation_s8({params}, {src}, {dst});")
        offset += block
    return Lowered(call="\n".join(lines), macs=0, notes=[f"axis {axis}, {len(op.inputs)} inputs"])
