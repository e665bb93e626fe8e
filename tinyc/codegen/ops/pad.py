"""PAD and PADV2 (constant padding), any dtype whose pad value is one repeated byte.

TFLite's kernels/pad.cc pads quantized int8/uint8 tensors with the output zero point (PAD)
or with the constant value (PADV2, which must share the output's quantization); float and
plain integer tensors with 0 or the constant. Values are copied unchanged, so the kernel
moves bytes: each element is treated as `elem_size` bytes, and the pad value must be one
byte repeated (true for every 8-bit pad value and for 0 of any type).
Shapes are collapsed here: a dim without padding is merged into the dim before it, so a
ZeroPadding2D on NHWC becomes rows of W*C bytes with H padding around them.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.ir import dtype_size, np_dtype
from tinyc.codegen.ops import Lowered, checker, register

MAX_DIMS = 6


def pad_loops(in_shape, paddings, elem_size: int = 1) -> tuple[list[int], list[int], list[int]]:
    """(in_dims, before, after), MAX_DIMS each, in bytes along the innermost dim."""
    dims = [[int(d), int(p[0]), int(p[1])] for d, p in zip(in_shape, paddings)]
    dims.append([elem_size, 0, 0])
    merged: list[list[int]] = []
    for d, b, a in dims:
        if merged and b == 0 and a == 0:
            prev = merged[-1]
            prev[0] *= d
            prev[1] *= d
            prev[2] *= d
        else:
            merged.append([d, b, a])
    if len(merged) > MAX_DIMS:
        raise ValueError(f"padding needs {len(merged)} loop levels; at most {MAX_DIMS} are supported")
    pad = [[1, 0, 0]] * (MAX_DIMS - len(merged))
    full = pad + merged
    return [m[0] for m in full], [m[1] for m in full], [m[2] for m in full]


def _paddings(graph, op):
    return np.asarray(graph.tensors[op.inputs[1]].data, dtype=np.int64).reshape(-1, 2)


def _pad_value(graph, op):
    """The pad value as raw bytes of the output dtype."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    has_const = len(op.inputs) > 2 and op.inputs[2] >= 0
    if has_const:
        c = graph.tensors[op.inputs[2]]
        value = np.asarray(c.data).reshape(-1)[:1].astype(np_dtype(y.dtype))
    elif x.quant is not None and y.dtype in ("int8", "uint8", "int16"):
        value = np.array([y.quant.zp], dtype=np_dtype(y.dtype))
    else:
        value = np.zeros(1, dtype=np_dtype(y.dtype))
    return value.tobytes()


def _check(graph, op):
    kind = op.kind
    name = op.name or kind
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != y.dtype or x.dtype not in ("int8", "uint8", "int16", "int32", "float32"):
        raise UnsupportedError(f"{kind} '{name}' has a {x.dtype} input and a {y.dtype} output; "
                               "tinyc pads int8 (or other same-typed) tensors")
    p = graph.tensors[op.inputs[1]]
    if not p.is_const:
        raise UnsupportedError(f"{kind} '{name}' has non-constant paddings; tinyc needs them constant")
    pads = _paddings(graph, op)
    if pads.shape[0] != len(x.shape) or np.any(pads < 0):
        raise UnsupportedError(f"{kind} '{name}' has paddings {pads.tolist()} for a rank-{len(x.shape)} "
                               "input; one non-negative (before, after) pair per dim expected")
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        c = graph.tensors[op.inputs[2]]
        if not c.is_const or c.size != 1 or c.dtype != x.dtype:
            raise UnsupportedError(f"{kind} '{name}' needs a constant scalar {x.dtype} pad value")
        if x.quant is not None and c.quant is not None and (
                c.quant.zp != y.quant.zp or np.float32(c.quant.s) != np.float32(y.quant.s)):
            raise UnsupportedError(f"{kind} '{name}': the pad value is quantized differently from the "
                                   "output, which TFLite refuses too")
    value = _pad_value(graph, op)
    if len(set(value)) != 1:
        raise UnsupportedError(f"{kind} '{name}' pads {y.dtype} with a value whose bytes differ; "
                               "tinyc pads with 8-bit values or 0 only")
    try:
        pad_loops(x.shape, pads, dtype_size(x.dtype))
    except ValueError as e:
        raise UnsupportedError(f"{kind} '{name}': {e}") from None
    expect = tuple(int(d + b + a) for d, (b, a) in zip(x.shape, pads))
    if tuple(y.shape) != expect:
        raise UnsupportedError(f"{kind} '{name}' output shape {tuple(y.shape)} is not the padded {expect}")


@checker("PAD")
def check_pad(graph, op):
    _check(graph, op)


@checker("PADV2")
def check_padv2(graph, op):
    _check(graph, op)


def _lower(graph, op, ctx) -> Lowered:
    x = graph.tensors[op.inputs[0]]
    dims, before, after = pad_loops(x.shape, _paddings(graph, op), dtype_size(x.dtype))
    value = _pad_value(graph, op)[0]
    byte = value - 256 if value > 127 else value
    params = ctx.params("tinyc_pad_params_s8", {"dims": {"extent": dims, "before": before, "after": after},
                                                 "op": {"pad_value": byte}})
    src, dst = ctx.ptr(op.inputs[0]), ctx.ptr(op.outputs[0])
    if x.dtype != "int8":
        src, dst = f"(const int8_t *){src}", f"(int8_t *){dst}"
    call = f"tinyc_pad_s8({params}, {src}, {dst});"
    return Lowered(call=call, macs=0, notes=[f"bytes: extents {dims}, before {before}, after {after}"])


@register("PAD", kernels=["pad"])
def lower_pad(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx)


@register("PADV2", kernels=["pad"])
def lower_padv2(graph, op, ctx) -> Lowered:
    return _lower(graph, op, ctx)
