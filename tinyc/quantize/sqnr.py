"""Per-layer quantization report: which layer lost the accuracy?

For every op of the int8 model (QUANTIZE/DEQUANTIZE at the edges excepted) and over a set of
samples (the calibration data), it compares the float model with the int8 model:

- `sqnr_db`, `max_abs_error`: the float model's activation against the dequantized int8
  activation, both models run end to end from the same float input. This is the error
  accumulated up to this layer.
- `local_sqnr_db`, `local_max_abs_error`, `rmse_over_scale`: the error this layer adds by
  itself. The float op alone (a one-op model cut from the float flatbuffer) is fed the
  dequantized int8 inputs that the int8 op received, and its output is compared with the int8
  op's output. rmse/scale is ~0.29 (1/sqrt(12)) when the only error is the final rounding.
  `channel_sqnr_db` is the median over output channels of the per-channel local SQNR: a
  layer whose output range is blown up by one channel (a weight outlier) loses every other
  channel while the aggregate SQNR, dominated by that one channel, may still look fine.
- `scale`, `zero_point` of the output; `weight_scale_min/max` of the weights (per channel);
  `weights_clipped` (share of float weights outside the int8 grid, [-127.5, 127.5] steps),
  `weights_zeroed` (share of non-zero float weights that became 0: what one huge outlier
  does to the rest of its channel or tensor); `activations_clipped` (share of float activation
  values outside the output's int8 range).

Layers are ranked by `channel_sqnr_db` (`local_sqnr_db` for fixed-range ops such as
softmax, and as the tie-break), lowest first: `worst` names
the five worst. Float and int8 tensors are matched by name (the quantizer keeps them), and
by position among the compute ops when names differ.

The interpreters: LiteRT BUILTIN_REF for the int8 model (the oracle), the built-in float
kernels without delegates for the float model (delegates would hide intermediate tensors).
"""

from __future__ import annotations

import copy
import math

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from tinyc.frontend.tflite import dtype_name, is_constant, op_name, parse_model, tensor_name
from tinyc.progress import Progress
from tinyc.quant_math import dequantize_array, quantize_array
from tinyc.quantize.float_tflite import EDGE_OPS

WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")
# Ops whose output range is fixed by the int8 spec, not calibrated (softmax: 1/256, -128):
# tiny probabilities below one step are lost by design, so their per-channel SQNR says nothing.
FIXED_RANGE_OPS = ("SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX")
SQNR_CAP_DB = 200.0  # an exact match reports this instead of infinity (JSON has no inf)


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float | None:
    """10 log10(sum ref^2 / sum (ref - test)^2), capped at +-200 dB (exact: +200)."""
    ref = np.asarray(ref, dtype=np.float64)
    err = np.sum((ref - np.asarray(test, dtype=np.float64)) ** 2)
    sig = np.sum(ref ** 2)
    if err == 0:
        return SQNR_CAP_DB
    if sig == 0:
        return -SQNR_CAP_DB
    return float(min(SQNR_CAP_DB, 10.0 * math.log10(sig / err)))


def channel_sqnr_db(ref: np.ndarray, test: np.ndarray) -> float | None:
    """Median over the last axis (channels) of the per-channel SQNR, skipping silent channels."""
    ref = np.asarray(ref, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if ref.ndim == 0 or ref.shape[-1] < 2:
        return sqnr_db(ref, test)
    c = ref.shape[-1]
    r, t = ref.reshape(-1, c), test.reshape(-1, c)
    vals = [sqnr_db(r[:, i], t[:, i]) for i in range(c) if np.any(r[:, i] != 0)]
    return float(np.median(vals)) if vals else None


def interpreter(content: bytes, *, reference: bool, preserve: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=bytes(content), experimental_op_resolver_type=kind,
                     experimental_preserve_all_tensors=preserve, num_threads=1)
    it.allocate_tensors()
    return it


def as_input(detail: dict, sample_f32: np.ndarray) -> np.ndarray:
    """Float data as an interpreter input: quantized with the input's parameters if it is integer."""
    x = np.asarray(sample_f32, dtype=np.float32).reshape(detail["shape"])
    if detail["dtype"] != np.float32:
        scale, zp = detail["quantization"]
        if not scale:   # plain integers (indices): the samples hold them exactly
            return x.astype(detail["dtype"])
        x = quantize_array(x, scale, zp, np.dtype(detail["dtype"]).name)
    return x


def _feed(it, detail: dict, sample_f32: np.ndarray) -> None:
    it.set_tensor(detail["index"], as_input(detail, sample_f32))


def single_op_model(model, op_index: int) -> bytes:
    """A one-op flatbuffer: the op, its tensors, and the buffers of its constant inputs."""
    g = model.subgraphs[0]
    op = g.operators[op_index]
    new = schema.ModelT()
    new.version = model.version
    new.description = b"tinyc single-op cut"
    new.operatorCodes = [model.operatorCodes[op.opcodeIndex]]
    empty = schema.BufferT()
    new.buffers = [empty]
    tensors, remap, graph_inputs = [], {}, []
    all_ids = list(op.inputs) + list(op.outputs) + list(op.intermediates if op.intermediates is not None else [])
    for ti in all_ids:
        if ti < 0 or ti in remap:
            continue
        t = copy.copy(g.tensors[ti])
        if is_constant(model, g.tensors[ti]):
            b = schema.BufferT()
            b.data = model.buffers[g.tensors[ti].buffer].data
            new.buffers.append(b)
            t.buffer = len(new.buffers) - 1
        else:
            t.buffer = 0
            if ti in op.inputs:
                graph_inputs.append(len(tensors))
        remap[ti] = len(tensors)
        tensors.append(t)
    nop = copy.copy(op)
    nop.opcodeIndex = 0
    nop.inputs = [remap[i] if i >= 0 else -1 for i in op.inputs]
    nop.outputs = [remap[i] for i in op.outputs]
    if op.intermediates is not None:
        nop.intermediates = [remap[i] for i in op.intermediates]
    sg = schema.SubGraphT()
    sg.tensors = tensors
    sg.operators = [nop]
    sg.inputs = graph_inputs
    sg.outputs = [remap[i] for i in op.outputs]
    sg.name = b"main"
    new.subgraphs = [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(new.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _compute_ops(model) -> list[int]:
    return [i for i, op in enumerate(model.subgraphs[0].operators) if op_name(model, op) not in EDGE_OPS]


def _match_ops(fm, qm) -> dict[int, int]:
    """int8 op index -> float op index: by output tensor name, else by position."""
    fg, qg = fm.subgraphs[0], qm.subgraphs[0]
    by_name = {}
    for i in _compute_ops(fm):
        by_name[tensor_name(fg.tensors[fg.operators[i].outputs[0]])] = i
    f_ops, q_ops = _compute_ops(fm), _compute_ops(qm)
    positional = {}
    if len(f_ops) == len(q_ops) and all(op_name(fm, fg.operators[a]) == op_name(qm, qg.operators[b])
                                        for a, b in zip(f_ops, q_ops)):
        positional = dict(zip(q_ops, f_ops))
    out = {}
    for i in q_ops:
        name = tensor_name(qg.tensors[qg.operators[i].outputs[0]])
        j = by_name.get(name, positional.get(i))
        if j is not None and op_name(fm, fg.operators[j]) == op_name(qm, qg.operators[i]):
            out[i] = j
    return out


def _stack(values: list[np.ndarray]) -> np.ndarray:
    return np.stack(values) if values else np.zeros((0,))


def _weights_metrics(fm, qm, f_op, q_op) -> dict:
    fg, qg = fm.subgraphs[0], qm.subgraphs[0]
    wf_t, wq_t = fg.tensors[f_op.inputs[1]], qg.tensors[q_op.inputs[1]]
    if not (is_constant(fm, wf_t) and is_constant(qm, wq_t)) or dtype_name(wf_t) != "float32":
        return {}
    wf = np.frombuffer(bytes(fm.buffers[wf_t.buffer].data), dtype=np.float32).reshape(list(wf_t.shape))
    wq = np.frombuffer(bytes(qm.buffers[wq_t.buffer].data), dtype=np.int8).reshape(list(wq_t.shape))
    q = wq_t.quantization
    scales = np.asarray(q.scale, dtype=np.float64)
    if scales.size > 1:
        shape = [1] * wf.ndim
        shape[q.quantizedDimension] = -1
        s = scales.reshape(shape)
    else:
        s = scales.reshape([1] * wf.ndim)
    nonzero = wf != 0
    return {
        "weight_scale_min": float(scales.min()),
        "weight_scale_max": float(scales.max()),
        "weights_per_channel": bool(scales.size > 1),
        "weights_clipped": float(np.mean(np.abs(wf) > 127.5 * s)),
        "weights_zeroed": float(np.mean(wq[nonzero] == 0)) if np.any(nonzero) else 0.0,
    }


def layer_report(float_tflite: bytes, int8_tflite: bytes, samples: np.ndarray, *, max_samples: int = 64,
                 trustworthy: bool = True, progress: Progress | None = None) -> dict:
    """The per-layer report (a JSON-able dict) over up to `max_samples` float samples."""
    fm, qm = parse_model(float_tflite, "float model"), parse_model(int8_tflite, "int8 model")
    fg, qg = fm.subgraphs[0], qm.subgraphs[0]
    samples = np.asarray(samples, dtype=np.float32)[:max_samples]
    n = len(samples)

    f_it = interpreter(float_tflite, reference=False, preserve=True)
    q_it = interpreter(int8_tflite, reference=True, preserve=True)
    matches = _match_ops(fm, qm)
    q_ops = _compute_ops(qm)

    want_q = set()
    for i in q_ops:
        op = qg.operators[i]
        want_q.update(t for t in list(op.inputs) + list(op.outputs) if t >= 0 and not is_constant(qm, qg.tensors[t]))
    want_f = set()
    for i in matches.values():
        op = fg.operators[i]
        want_f.update(t for t in list(op.inputs) + list(op.outputs) if t >= 0 and not is_constant(fm, fg.tensors[t]))
    q_vals: dict[int, list] = {t: [] for t in want_q}
    f_vals: dict[int, list] = {t: [] for t in want_f}
    f_in, q_in = f_it.get_input_details()[0], q_it.get_input_details()[0]
    for k, x in enumerate(samples):
        _feed(f_it, f_in, x)
        f_it.invoke()
        for t in want_f:
            f_vals[t].append(f_it.get_tensor(t).copy())
        _feed(q_it, q_in, x)
        q_it.invoke()
        for t in want_q:
            q_vals[t].append(q_it.get_tensor(t).copy())
        if progress:
            progress("report", k + 1, n)
    del f_it, q_it

    def deq(t_index: int, values: np.ndarray) -> np.ndarray:
        t = qg.tensors[t_index]
        q = t.quantization
        if dtype_name(t) == "float32" or q is None or q.scale is None or len(q.scale) == 0:
            return np.asarray(values, dtype=np.float32)
        return dequantize_array(values, q.scale, q.zeroPoint)

    layers = []
    for i in q_ops:
        op = qg.operators[i]
        out_t = op.outputs[0]
        t = qg.tensors[out_t]
        kind = op_name(qm, op)
        entry = {"index": i, "name": tensor_name(t), "op": kind, "shape": [int(d) for d in t.shape],
                 "dtype": dtype_name(t)}
        qp = t.quantization
        if qp is not None and qp.scale is not None and len(qp.scale):
            entry["scale"] = float(qp.scale[0])
            entry["zero_point"] = int(qp.zeroPoint[0])
        j = matches.get(i)
        if j is None or dtype_name(t) not in ("int8", "int16"):
            entry["note"] = "no float counterpart found" if j is None else "not an integer tensor"
            layers.append(entry)
            continue
        f_op = fg.operators[j]
        deq_q = deq(out_t, _stack(q_vals[out_t]))
        ref = _stack(f_vals[f_op.outputs[0]]).astype(np.float32)
        entry["sqnr_db"] = sqnr_db(ref, deq_q)
        entry["max_abs_error"] = float(np.max(np.abs(ref - deq_q))) if ref.size else 0.0
        if "scale" in entry:
            lo = entry["scale"] * (-128 - entry["zero_point"]) - entry["scale"] / 2
            hi = entry["scale"] * (127 - entry["zero_point"]) + entry["scale"] / 2
            entry["activations_clipped"] = float(np.mean((ref < lo) | (ref > hi))) if ref.size else 0.0
        if kind in WEIGHTED_OPS and len(op.inputs) > 1:
            entry.update(_weights_metrics(fm, qm, f_op, op))
        # The error this op adds by itself: the float op on the int8 op's (dequantized) inputs.
        try:
            local = _run_local(fm, j, op, f_op, qg, q_vals, f_vals, deq, n)
        except Exception as e:  # an op LiteRT cannot run alone: report what we have
            entry["note"] = f"local error not measured ({type(e).__name__})"
            local = None
        if local is not None:
            entry["local_sqnr_db"] = sqnr_db(local, deq_q)
            if kind not in FIXED_RANGE_OPS:
                entry["channel_sqnr_db"] = channel_sqnr_db(local, deq_q)
            entry["local_max_abs_error"] = float(np.max(np.abs(local - deq_q))) if local.size else 0.0
            if "scale" in entry and entry["scale"] > 0:
                rmse = float(np.sqrt(np.mean((local.astype(np.float64) - deq_q) ** 2))) if local.size else 0.0
                entry["rmse_over_scale"] = rmse / entry["scale"]
        layers.append(entry)

    def rank_key(e):
        loc = e.get("local_sqnr_db")
        loc = loc if loc is not None else SQNR_CAP_DB
        c = e.get("channel_sqnr_db")
        return (c if c is not None else loc, loc)

    ranked = sorted((e for e in layers if "local_sqnr_db" in e), key=rank_key)
    report = {
        "samples": n,
        "trustworthy": bool(trustworthy),
        "metric": "channel_sqnr_db (median per-channel SQNR of the error each layer adds itself), lowest first",
        "layers": layers,
        "worst": [{"index": e["index"], "name": e["name"], "op": e["op"],
                   "channel_sqnr_db": e.get("channel_sqnr_db"), "local_sqnr_db": e.get("local_sqnr_db"),
                   "sqnr_db": e.get("sqnr_db"), "max_abs_error": e.get("max_abs_error"),
                   "local_max_abs_error": e.get("local_max_abs_error")} for e in ranked[:5]],
    }
    if not trustworthy:
        report["note"] = ("calibrated on random data (--calib-random): the scales, and so this report, "
                          "are not trustworthy; calibrate with real samples (--calib DATA)")
    return report


def _run_local(fm, f_index, q_op, f_op, qg, q_vals, f_vals, deq, n) -> np.ndarray | None:
    fg = fm.subgraphs[0]
    content = single_op_model(fm, f_index)
    it = interpreter(content, reference=False, preserve=False)
    details = it.get_input_details()
    # inputs of the cut model, in order, are the op's non-constant inputs
    feeds = []
    for pos, ti in enumerate(f_op.inputs):
        if ti < 0 or is_constant(fm, fg.tensors[ti]):
            continue
        qi = q_op.inputs[pos] if pos < len(q_op.inputs) else -1
        if qi >= 0 and qi in q_vals:
            feeds.append(deq(qi, _stack(q_vals[qi])))
        elif ti in f_vals:
            feeds.append(_stack(f_vals[ti]).astype(np.float32))
        else:
            return None
    if len(feeds) != len(details):
        return None
    outs = []
    out_index = it.get_output_details()[0]["index"]
    for k in range(n):
        for d, v in zip(details, feeds):
            it.set_tensor(d["index"], np.asarray(v[k], dtype=d["dtype"]).reshape(d["shape"]))
        it.invoke()
        outs.append(it.get_tensor(out_index).copy())
    return _stack(outs).astype(np.float32)
