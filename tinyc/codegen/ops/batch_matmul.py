"""BATCH_MATMUL, int8 x int8 -> int8 (TFLite kernels/batch_matmul.cc, reference_ops::BatchMatMul).

out[b][i][j] = clamp(requantize(sum_k (x[b][i][k] - x_zp) * (y[b][k][j] - y_zp)) + out_zp),
x the LHS ([..., rows, depth], or [..., depth, rows] with adj_x), y the RHS ([..., depth,
cols], or [..., cols, depth] with adj_y), both usually activations (keras.ops.matmul, the
Q.K^T and scores.V products of an attention block). The batch dims (up to three: ranks 2..5)
broadcast where one operand has extent 1.

The reference first transposes the RHS (unless adj_y) and the LHS (if adj_x) into scratch
and then runs its FULLY_CONNECTED-like loop over "RHS rows x LHS rows"; it also folds a
[..., 1, depth, cols] RHS into the LHS rows. All of that only reorders an exact int32 sum;
this kernel takes the operands with the strides adj_x/adj_y imply.
Constants as Prepare(): real multiplier = double(float(s_x * s_y)) / double(s_out)
(GetQuantizedConvolutionMultipler without a bias: the product is taken in float32, unlike
conv's all-double one; the two differ in the last bits of the multiplier and, on a rounding
tie, by 1 LSB), QuantizeMultiplier, offsets -x_zp, -y_zp, +out_zp,
bounds [-128, 127] (no fused activation). The int32 sum holds depth * 255 * 255, checked
here (depth <= 33025). The kernel folds the offsets out of the inner loop (row and column
sums) and, like the reference, copies an operand not laid out along the depth into scratch
(the RHS without adj_y, an LHS row with adj_x), so that every dot product reads contiguous
bytes; scratch: cols int32 column sums + those copies.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import check_per_tensor, label
from tinyc.quant_math import quantize_multiplier

MAX_BATCH_DIMS = 3  # ranks 2..5, as the reference's ExtendedShape(5, ...)
MAX_DEPTH = ((1 << 31) - 1) // (255 * 255)


def matmul_shapes(graph, op) -> dict:
    """rows, depth, cols, the broadcast batch dims and the strides of both operands."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    adj_x, adj_y = bool(op.attrs.get("adj_x", False)), bool(op.attrs.get("adj_y", False))
    xs, ys = [int(d) for d in x.shape], [int(d) for d in y.shape]
    rows, depth_x = (xs[-1], xs[-2]) if adj_x else (xs[-2], xs[-1])
    depth_y, cols = (ys[-1], ys[-2]) if adj_y else (ys[-2], ys[-1])
    rank = max(len(xs), len(ys))
    xb = [1] * (rank - len(xs)) + xs[:-2]
    yb = [1] * (rank - len(ys)) + ys[:-2]
    # where LHS element (i, k) and RHS element (k, j) sit in their matrices, in elements
    return {"adj_x": adj_x, "adj_y": adj_y, "rows": rows, "depth_x": depth_x, "depth_y": depth_y, "cols": cols,
            "x_batch": xb, "y_batch": yb,
            "lhs_row_stride": 1 if adj_x else depth_x, "lhs_depth_stride": rows if adj_x else 1,
            "rhs_depth_stride": 1 if adj_y else cols, "rhs_col_stride": depth_y if adj_y else 1}


def _batch_loops(xb: list[int], yb: list[int], x_matrix: int, y_matrix: int):
    """Per batch dim (outermost first, padded to MAX_BATCH_DIMS): output extent and each
    operand's stride in elements (0 where it broadcasts)."""
    def strides(b, matrix):
        out, acc = [], matrix
        for d in reversed(b):
            out.append(acc if d != 1 else 0)
            acc *= d
        return out[::-1]
    ext = [max(a, b) for a, b in zip(xb, yb)]
    sx, sy = strides(xb, x_matrix), strides(yb, y_matrix)
    pad = MAX_BATCH_DIMS - len(ext)
    return [1] * pad + ext, [0] * pad + sx, [0] * pad + sy


@checker("BATCH_MATMUL")
def check_batch_matmul(graph, op):
    lab = label(op, "BATCH_MATMUL")
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; 2 and 1 expected")
    x, y, out = (graph.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if (x.dtype, y.dtype, out.dtype) != ("int8", "int8", "int8"):
        raise UnsupportedError(f"{lab} multiplies {x.dtype} by {y.dtype} into {out.dtype}; tinyc compiles "
                               "int8 x int8 -> int8 BATCH_MATMUL: quantize the model to full int8")
    for t in (x, y):
        check_per_tensor(lab, t, out)
    if not (2 <= len(x.shape) <= 5 and 2 <= len(y.shape) <= 5):
        raise UnsupportedError(f"{lab} has operands of rank {len(x.shape)} and {len(y.shape)}; "
                               "TFLite takes ranks 2 to 5")
    s = matmul_shapes(graph, op)
    if s["depth_x"] != s["depth_y"]:
        raise UnsupportedError(f"{lab} multiplies {list(x.shape)} (adj_x={s['adj_x']}) by {list(y.shape)} "
                               f"(adj_y={s['adj_y']}): depths {s['depth_x']} and {s['depth_y']} differ")
    if any(a != b and 1 not in (a, b) for a, b in zip(s["x_batch"], s["y_batch"])):
        raise UnsupportedError(f"{lab}: batch dims {s['x_batch']} and {s['y_batch']} do not broadcast")
    want = [max(a, b) for a, b in zip(s["x_batch"], s["y_batch"])] + [s["rows"], s["cols"]]
    if [int(d) for d in out.shape] != want:
        raise UnsupportedError(f"{lab} has output shape {list(out.shape)}, but its operands give {want}")
    if s["depth_x"] > MAX_DEPTH:
        raise UnsupportedError(f"{lab} sums {s['depth_x']} products, which can overflow the reference's int32 "
                               f"accumulator (at most {MAX_DEPTH})")


@register("BATCH_MATMUL", kernels=["batch_matmul"])
def lower_batch_matmul(graph, op, ctx) -> Lowered:
    x, y, out = (graph.tensors[t] for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    s = matmul_shapes(graph, op)
    rows, depth, cols = s["rows"], s["depth_x"], s["cols"]
    batch, x_stride, y_stride = _batch_loops(s["x_batch"], s["y_batch"], rows * depth, depth * cols)
    product = float(np.float32(x.quant.s) * np.float32(y.quant.s))   # float32, as the reference
    mult, shift = quantize_multiplier(product / float(np.float32(out.quant.s)))
    params = ctx.params("tinyc_batch_matmul_params_s8", {
        "dims": {"batch": batch, "lhs_batch_stride": x_stride, "rhs_batch_stride": y_stride,
                 "rows": rows, "depth": depth, "cols": cols,
                 "lhs_row_stride": s["lhs_row_stride"], "lhs_depth_stride": s["lhs_depth_stride"],
                 "rhs_depth_stride": s["rhs_depth_stride"], "rhs_col_stride": s["rhs_col_stride"]},
        "op": {"lhs_offset": -x.quant.zp, "rhs_offset": -y.quant.zp, "output_offset": out.quant.zp,
               "act_min": -128, "act_max": 127},
        "quant": {"multiplier": mult, "shift": shift},
    })
    # the RHS column sums of one matrix, then its transpose (no adj_y) and an LHS row (adj_x)
    scratch = ctx.scratch(4 * cols + (cols * depth if s["rhs_depth_stride"] != 1 else 0)
                          + (depth if s["lhs_depth_stride"] != 1 else 0))
    call = (f"tinyc_batch_matmul_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.inputs[1])}, "
            f"{ctx.ptr(op.outputs[0])}, {scratch});")
    notes = [f"{int(np.prod(batch))} x [{rows} x {depth}] . [{depth} x {cols}], adj_x={s['adj_x']}, "
             f"adj_y={s['adj_y']}, batch strides lhs {x_stride} rhs {y_stride}"]
    return Lowered(call=call, macs=out.size * depth, notes=notes)
