"""Ground truth for in-place plans: the order in which each kernel reads its input bytes and
writes its output bytes, simulated from the C loops in templates/ops (not from the ops'
InPlace contracts), and a check of a whole plan against it.

For each kernel, `access_times(graph, op, k)` gives two arrays of "times": for every byte of
input k the last time the kernel reads it (-1: never), and for every byte of the output the
first time it writes it. An output laid over the input is safe if, at every address both
cover, the write comes after the last read. Where a kernel interleaves reads and writes
within a pixel, the simulation takes the strictest order the loop allows (one output channel
after another, each after reading its taps).
"""

from __future__ import annotations

import re

import numpy as np

from tinyc.codegen.ops.conv import compute_out_size, compute_padding
from tinyc.codegen.ops.pool import out_size as pool_out_size, pad_before
from tinyc.codegen.planner import Plan, _align


def _itemsize(t) -> int:
    return t.nbytes // max(t.size, 1)


def _forward(graph, op, k):
    """out[i] = f(in[i]), i = 0, 1, ...: element i read at 2i, written at 2i + 1."""
    x, y = graph.tensors[op.inputs[k]], graph.tensors[op.outputs[0]]
    reads = np.repeat(2 * np.arange(x.size), _itemsize(x))
    writes = np.repeat(2 * np.arange(y.size) + 1, _itemsize(y))
    return reads, writes


def _softmax(graph, op, k):
    """Per row: two passes read the row, the third reads x[c] and writes y[c]."""
    x = graph.tensors[op.inputs[0]]
    depth = int(x.shape[-1])
    i = np.arange(x.size)
    row, c = i // depth, i % depth
    t = row * (2 * depth) + 2 * c
    return t, t + 1


def _windows(g):
    """Per output pixel in raster order, the input rows and columns its window reads inside
    the image: lists of (iy list, ix list)."""
    for b in range(g["batches"]):
        for oy in range(g["out_h"]):
            iys = [oy * g["stride_h"] - g["pad_h"] + ky * g["dil_h"] for ky in range(g["filter_h"])]
            iys = [iy for iy in iys if 0 <= iy < g["in_h"]]
            for ox in range(g["out_w"]):
                ixs = [ox * g["stride_w"] - g["pad_w"] + kx * g["dil_w"] for kx in range(g["filter_w"])]
                yield b, [iy for iy in iys], [ix for ix in ixs if 0 <= ix < g["in_w"]]


def _raster(g, in_ch, out_ch, read_channel_time):
    """Kernels that walk output pixels in raster order: output channel c of pixel p is written
    at t_p + 2c + 1 after reading its taps; input channel ic of the window is last read at
    t_p + read_channel_time[ic]."""
    last_read = np.full(g["batches"] * g["in_h"] * g["in_w"] * in_ch, -1, dtype=np.int64)
    writes = np.empty(g["batches"] * g["out_h"] * g["out_w"] * out_ch, dtype=np.int64)
    step = 2 * out_ch + 2
    for p, (b, iys, ixs) in enumerate(_windows(g)):
        t = p * step
        writes[p * out_ch:(p + 1) * out_ch] = t + 2 * np.arange(out_ch) + 1
        for iy in iys:
            for ix in ixs:
                base = ((b * g["in_h"] + iy) * g["in_w"] + ix) * in_ch
                last_read[base:base + in_ch] = t + read_channel_time
    return last_read, writes


def _conv_geometry(graph, op, filter_h, filter_w):
    x = graph.tensors[op.inputs[0]]
    a = op.attrs
    g = dict(batches=int(x.shape[0]), in_h=int(x.shape[1]), in_w=int(x.shape[2]), filter_h=filter_h,
             filter_w=filter_w, stride_h=int(a.get("stride_h", 1)), stride_w=int(a.get("stride_w", 1)),
             dil_h=int(a.get("dilation_h", 1)), dil_w=int(a.get("dilation_w", 1)))
    pad = a.get("padding", "SAME")
    g["out_h"] = compute_out_size(pad, g["in_h"], filter_h, g["stride_h"], g["dil_h"])
    g["out_w"] = compute_out_size(pad, g["in_w"], filter_w, g["stride_w"], g["dil_w"])
    g["pad_h"] = compute_padding(g["stride_h"], g["dil_h"], g["in_h"], filter_h, g["out_h"])[0]
    g["pad_w"] = compute_padding(g["stride_w"], g["dil_w"], g["in_w"], filter_w, g["out_w"])[0]
    return g


def _conv(graph, op, k):
    """Per pixel, output channel oc after a dot product over its group's channels of the window."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    out_ch, fh, fw, filter_ch = (int(d) for d in w.shape)
    in_ch = int(x.shape[3])
    per_group = out_ch // (in_ch // filter_ch)
    last_oc = (np.arange(in_ch) // filter_ch + 1) * per_group - 1
    return _raster(_conv_geometry(graph, op, fh, fw), in_ch, out_ch, 2 * last_oc)


def _depthwise(graph, op, k):
    """Per pixel, output channel c = ic * multiplier + m after its taps of input channel ic."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    _, fh, fw, out_ch = (int(d) for d in w.shape)
    in_ch = int(x.shape[3])
    dm = out_ch // in_ch
    return _raster(_conv_geometry(graph, op, fh, fw), in_ch, out_ch, 2 * (np.arange(in_ch) * dm + dm - 1))


def _pool(graph, op, k):
    """Per pixel, channel c after its window's taps of channel c."""
    x = graph.tensors[op.inputs[0]]
    a = op.attrs
    n, h, w, c = (int(d) for d in x.shape)
    g = dict(batches=n, in_h=h, in_w=w, filter_h=int(a.get("filter_h", 1)), filter_w=int(a.get("filter_w", 1)),
             stride_h=int(a.get("stride_h", 1)), stride_w=int(a.get("stride_w", 1)), dil_h=1, dil_w=1)
    pad = a.get("padding", "VALID")
    g["out_h"] = pool_out_size(pad, h, g["filter_h"], g["stride_h"])
    g["out_w"] = pool_out_size(pad, w, g["filter_w"], g["stride_w"])
    g["pad_h"] = pad_before(g["stride_h"], h, g["filter_h"], g["out_h"])
    g["pad_w"] = pad_before(g["stride_w"], w, g["filter_w"], g["out_w"])
    return _raster(g, c, c, 2 * np.arange(c))


def _binary(graph, op, k):
    """ADD / SUB / MUL over a full-size input k: element i of it read, then output i written."""
    x, y = graph.tensors[op.inputs[k]], graph.tensors[op.outputs[0]]
    assert x.size == y.size, "in place over a broadcast input"
    return _forward(graph, op, k)


def _conv_gemm(graph, op, k, strip=None):
    """conv_2d_gemm: the windows of pixels p, p+1 are widened into im2col scratch, then every
    channel of both pixels is written: block b = p // 2 reads at 2b, writes at 2b + 1."""
    x, w = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
    out_ch, fh, fw, _ = (int(d) for d in w.shape)
    in_ch = int(x.shape[3])
    g = _conv_geometry(graph, op, fh, fw)
    last_read = np.full(g["batches"] * g["in_h"] * g["in_w"] * in_ch, -1, dtype=np.int64)
    writes = np.empty(g["batches"] * g["out_h"] * g["out_w"] * out_ch, dtype=np.int64)
    for p, (b, iys, ixs) in enumerate(_windows(g)):
        t = 2 * (p // 2)
        writes[p * out_ch:(p + 1) * out_ch] = t + 1
        for iy in iys:
            for ix in ixs:
                base = ((b * g["in_h"] + iy) * g["in_w"] + ix) * in_ch
                last_read[base:base + in_ch] = t
    return last_read, writes


def _depthwise_planar(graph, op, k, strip):
    """depthwise_conv_2d_planar (3x3), channels in strips of `strip`, each strip over the whole
    image: per output row oy, the strip's channels of the input rows iy0 .. iy0 + 2 not yet in
    the ring (iy0 = oy * stride - pad) are read (at 2 oy), then the strip's channels of output
    row oy are written (at 2 oy + 1), as the kernel's `loaded` bookkeeping; strip s after s - 1."""
    x = graph.tensors[op.inputs[0]]
    g = _conv_geometry(graph, op, 3, 3)
    c = int(x.shape[3])
    last_read = np.full((g["in_h"], g["in_w"], c), -1, dtype=np.int64)
    writes = np.empty((g["out_h"], g["out_w"], c), dtype=np.int64)
    span = 2 * g["out_h"]
    for n, c0 in enumerate(range(0, c, strip)):
        chans = slice(c0, min(c, c0 + strip))
        loaded = -1000
        for oy in range(g["out_h"]):
            iy0 = oy * g["stride_h"] - g["pad_h"]
            for r in range(iy0 if loaded < iy0 else loaded + 1, iy0 + 3):
                if 0 <= r < g["in_h"]:
                    last_read[r, :, chans] = n * span + 2 * oy
            loaded = iy0 + 2
            writes[oy, :, chans] = n * span + 2 * oy + 1
    return last_read.reshape(-1), writes.reshape(-1)


def _depthwise_column(graph, op, k, strip):
    """depthwise_conv_2d_column (k x 1 on a width-1 image): strip s of channels is transposed
    into int16 planes (read at 2s), then its outputs are written (at 2s + 1)."""
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    c = int(x.shape[3])
    return (2 * ((np.arange(x.size) % c) // strip)).astype(np.int64), (2 * ((np.arange(y.size) % c) // strip) + 1).astype(np.int64)


# The specialised kernels (--optimize balanced / speed), by the kernel function a layer calls.
KERNEL_SIMULATORS = {"tinyc_conv_2d_gemm_s8": _conv_gemm,
                     "tinyc_depthwise_conv_2d_planar_s8": _depthwise_planar,
                     "tinyc_depthwise_conv_2d_column_s8": _depthwise_column}


def layer_kernels(ctx) -> dict[int, tuple[str, int | None]]:
    """op index -> (the specialised kernel its layer function calls, the `.strip` of its params
    or None), read from the generated model.c definitions of lowering context `ctx`."""
    found = {}
    for i, defs in ctx.params.items():
        text = "\n".join(defs)
        for name in KERNEL_SIMULATORS:
            if f"{name}(" in text:
                m = re.search(r"\.strip = (\d+)", text)
                found[i] = (name, int(m.group(1)) if m else None)
    return found


SIMULATORS = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool,
    "ADD": _binary, "SUB": _binary, "MUL": _binary, "SOFTMAX": _softmax,
    **{kind: _forward for kind in ("RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC",
                                   "TANH", "QUANTIZE", "DEQUANTIZE")},
}


def access_times(graph, op, k, kernel: tuple | None = None):
    """kernel: (specialised kernel, strip) the layer runs (layer_kernels), None: the shared one."""
    if kernel:
        return KERNEL_SIMULATORS[kernel[0]](graph, op, k, kernel[1])
    return SIMULATORS[op.kind](graph, op, k)


def required_gap(graph, op, k, kernel: tuple | None = None) -> int:
    """The smallest gap such that the output at any offset <= input offset - gap never
    overwrites an input byte before its last read: output byte j (written at writes[j]) lies
    on input byte j - gap, so the gap must exceed j - i for every input byte i still to be read
    then (reads[i] >= writes[j])."""
    reads, writes = access_times(graph, op, k, kernel)
    order = np.argsort(-reads, kind="stable")
    lowest_index = np.minimum.accumulate(order)          # among the len+1 latest-read bytes
    still_read = np.searchsorted(-reads[order], -writes, side="right")  # bytes with reads >= w
    needed = still_read > 0
    first = lowest_index[np.maximum(still_read - 1, 0)]
    j = np.arange(len(writes))
    return int(max(0, (j[needed] - first[needed] + 1).max(initial=0)))


def safe_at(graph, op, k, gap: int, kernel: tuple | None = None) -> bool:
    """True if the output exactly `gap` bytes before input k is safe (exact contracts)."""
    return _safe(*access_times(graph, op, k, kernel), gap)


def _safe(reads, writes, gap) -> bool:
    """Output at -gap relative to the input: output byte j is input byte j - gap."""
    j = np.arange(len(writes))
    i = j - gap
    inside = (i >= 0) & (i < len(reads))
    return bool(np.all(writes[inside] > reads[i[inside]]))


def check_plan(graph, plan: Plan, kernels: dict | None = None) -> None:
    """Raise AssertionError if the plan lets a buffer be overwritten while still needed: two
    buffers live at the same op overlap, unless they are an in-place pair whose simulated
    kernel writes every shared byte after its last read of it. kernels: layer_kernels(ctx)
    (without it, every layer is simulated as its shared kernel)."""
    kernels = kernels or {}
    pairs = {(u.output, u.input): u for u in plan.inplace}
    bufs = plan.buffers
    for n, a in enumerate(bufs):
        assert a.offset >= 0 and a.offset + a.size <= plan.arena_bytes, f"{a.key} outside the arena"
        for b in bufs[n + 1:]:
            if a.last < b.first or b.last < a.first:
                continue
            if not (a.offset < b.offset + b.size and b.offset < a.offset + a.size):
                continue
            use = pairs.get((a.key, b.key)) or pairs.get((b.key, a.key))
            assert use is not None, f"{a.key} and {b.key} overlap while both live"
            out, inp = plan.buffer(use.output), plan.buffer(use.input)
            op = graph.ops[use.op]
            k = next(k for k, t in enumerate(op.inputs) if t >= 0 and plan.offsets.get(t) == inp.offset
                     and f"t{plan.alias_of.get(t, t)}" == inp.key)
            reads, writes = access_times(graph, op, k, kernels.get(use.op))
            assert _safe(reads, writes, inp.offset - out.offset), (
                f"layer {use.op} {op.kind} writes {out.key} at {out.offset} over {inp.key} at {inp.offset} "
                f"before reading it all (needs a gap of {required_gap(graph, op, k, kernels.get(use.op))})")
            assert out.offset <= inp.offset - use.min_gap and use.min_gap % 16 == 0 == _align(use.min_gap) - use.min_gap
