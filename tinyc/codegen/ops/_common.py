"""Checks and helpers shared by the op modules. (A helper, not an op module: tinyc.codegen.ops._load_all skips
module names that start with "_".)"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import InPlace, Lowered
from tinyc.codegen.planner import alias_roots
from tinyc.quant_math import round_half_away

f32 = np.float32


def label(op, kind: str | None = None) -> str:
    """How error messages name an op: its kind, then its name if it has one."""
    kind = kind or op.kind
    return f"{kind} '{op.name}'" if op.name else kind


def check_s8_in_out(graph, op, lab: str, n_inputs: int, what: str):
    """n_inputs inputs and one output, the first input and the output int8; returns them.
    `what` names the op for the dtype error ("int8 logistic")."""
    if len(op.inputs) != n_inputs or len(op.outputs) != 1:
        raise UnsupportedError(f"{lab} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                               f"{n_inputs} and 1 expected")
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.dtype != "int8" or y.dtype != "int8":
        raise UnsupportedError(f"{lab} has a {x.dtype} input and a {y.dtype} output; tinyc compiles {what}: "
                               "quantize the model to full int8")
    return x, y


def check_per_tensor(lab: str, x, y) -> None:
    """x and y have one scale and zero point each."""
    if x.quant is None or y.quant is None or x.quant.per_axis or y.quant.per_axis:
        raise UnsupportedError(f"{lab} needs per-tensor quantized input and output")


def check_unary_s8(graph, op, lab: str, what: str):
    """An elementwise int8 op: one input and one output of the same size, per-tensor quantized;
    returns them."""
    x, y = check_s8_in_out(graph, op, lab, 1, what)
    if x.size != y.size:
        raise UnsupportedError(f"{lab} maps {x.size} values to {y.size}; elementwise ops keep the size")
    check_per_tensor(lab, x, y)
    return x, y


def libm_f32(name: str):
    """The C library's float function `name` (expf, tanhf: what TFLite's Prepare calls);
    None if it cannot be loaded."""
    for lib in (ctypes.util.find_library("m"), "libm.so.6", ctypes.util.find_library("c")):
        if not lib:
            continue
        try:
            fn = getattr(ctypes.CDLL(lib), name)
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_float
        fn.argtypes = [ctypes.c_float]
        return fn
    return None


def lut_s8(transform, input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> np.ndarray:
    """The int8 table TFLite's LUTPopulate builds in float32, indexed by the input byte (uint8
    view of q): out = clamp((int32_t)(round(transform(dequantized) / output_scale) + output_zp))."""
    inverse_scale = f32(1) / f32(output_scale)
    lut = np.zeros(256, dtype=np.int8)
    for q in range(-128, 128):
        dequantized = f32(input_scale) * f32(q - input_zp)
        rescaled = f32(round_half_away(float(transform(dequantized) * inverse_scale)))
        quantized = float(f32(rescaled + f32(output_zp)))
        # (int32_t) of a float beyond int32 gives INT32_MIN on x86; clamped to -128 either way.
        q_out = int(quantized) if -2.0 ** 31 <= quantized < 2.0 ** 31 else -(1 << 31)
        lut[q & 0xFF] = max(-128, min(127, q_out))
    return lut


def lower_lut_s8(graph, op, ctx, what: str, make_lut):
    """A table-lookup op (LOGISTIC, TANH; kernel "lookup_table"): the table make_lut(input_scale,
    input_zp, output_scale, output_zp) builds, as a constant, and a call of tinyc_lookup_table_s8."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    lut = make_lut(x.quant.s, x.quant.zp, y.quant.s, y.quant.zp)
    table = ctx.const("table", lut, "int8_t", f"{what} of input ({x.quant.s:g}, {x.quant.zp}) quantized "
                                              f"as output ({y.quant.s:g}, {y.quant.zp}), by input byte")
    params = ctx.params("tinyc_lookup_table_params_s8", {"dims": {"size": x.size}, "table": table})
    call = f"tinyc_lookup_table_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    return Lowered(call=call, macs=0, inplace=forward_inplace(x, y))


def raster_min_gap(g: dict, in_pixel_bytes: int, out_pixel_bytes: int, block: int = 0) -> int:
    """The in-place min_gap of a kernel that walks the output pixels in raster order (batch,
    row, column) and reads each pixel's window of the input before and while it writes that
    pixel's out_pixel_bytes (the conv, depthwise and pool kernels of today). Writing pixel p
    must not reach an input byte that pixel p or a later one still reads: the output may start
    max over p of ((p + 1) * out_pixel_bytes - the lowest byte read from pixel p on) bytes
    before the input. g: batches, in_h/in_w, out_h/out_w, stride_h/w, pad_h/w, filter_h/w,
    dilation_h/w (1 if absent). block > 0: the kernel reads the windows of `block` pixels
    (im2col) before it writes any of them, so writing a block must only spare the later ones."""
    def first_inside(out, stride, pad, dilation, size, taps):
        """per output row/column: the first coordinate inside the image a window reads, or
        size (none)"""
        first = []
        for o in range(out):
            origin = o * stride - pad
            k = max(0, -(origin // dilation)) if origin < 0 else 0
            coord = origin + k * dilation
            first.append(coord if k < taps and coord < size else size)
        return np.array(first, dtype=np.int64)

    dh, dw = g.get("dilation_h", 1), g.get("dilation_w", 1)
    rows = first_inside(g["out_h"], g["stride_h"], g["pad_h"], dh, g["in_h"], g["filter_h"])
    cols = first_inside(g["out_w"], g["stride_w"], g["pad_w"], dw, g["in_w"], g["filter_w"])
    batch = np.arange(g["batches"], dtype=np.int64)[:, None, None]
    lo = ((batch * g["in_h"] + rows[None, :, None]) * g["in_w"] + cols[None, None, :]) * in_pixel_bytes
    empty = (rows[None, :, None] >= g["in_h"]) | (cols[None, None, :] >= g["in_w"])
    lo = np.where(empty, np.iinfo(np.int64).max // 2, lo).reshape(-1)
    still_read = np.minimum.accumulate(lo[::-1])[::-1]
    if block > 0:   # block ending at pixel e (exclusive) written: pixels e.. still to be read
        ends = np.minimum(np.arange(block, lo.size + block, block, dtype=np.int64), lo.size)
        ends = ends[ends < lo.size]
        return max(0, int((ends * out_pixel_bytes - still_read[ends]).max(initial=0)))
    written = (np.arange(lo.size, dtype=np.int64) + 1) * out_pixel_bytes
    return max(0, int((written - still_read).max()))


def forward_inplace(x, y, input: int = 0) -> InPlace:
    """The contract of a kernel that walks i = 0, 1, ... reading input[i], then writing
    output[i]: when an output element is wider than an input element, the writes run ahead of
    the reads by (n - 1) * (output width - input width) bytes at most."""
    grow = y.nbytes // max(y.size, 1) - x.nbytes // max(x.size, 1)
    return InPlace(input, max(0, (y.size - 1) * grow))


def dying_input(graph, op_index: int, candidates: list[int]) -> int | None:
    """Of the op's input numbers `candidates`, the one an in-place output should go over: one
    whose tensor no later op reads and that is no graph output, the longest-lived of those
    (in a residual block that is the skip tensor, whose bytes the next block then reuses);
    else the first candidate."""
    op = graph.ops[op_index]
    roots = alias_roots(graph)
    later = {roots.get(t, t) for o in graph.ops[op_index + 1:] for t in o.inputs if t >= 0}
    outputs = {roots.get(t, t) for t in graph.outputs}
    producers = graph.producers()
    dying = [k for k in candidates if roots.get(op.inputs[k], op.inputs[k]) not in later | outputs]
    if dying:
        return min(dying, key=lambda k: producers.get(roots.get(op.inputs[k], op.inputs[k]), -1))
    return candidates[0] if candidates else None
