"""UNIDIRECTIONAL_SEQUENCE_LSTM, int8 (TFLite's integer LSTM, lstm.cc / lstm_eval.cc
EvalInteger8x8_16): int8 input, weights, output and output state, int16 cell state, int32
biases; gates in Q3.12, their activations (gemmlowp's 16-bit logistic and tanh, not the
LUT of the int16 LOGISTIC/TANH ops: they differ by 1 LSB on some values) in Q0.15. Supported: the plain LSTM (no CIFG,
peephole, layer norm or projection): mnist_lstm, micro_speech_lstm, dtln.

Constants as PopulateQuantizedLstmParams8x8_16 and PopulatePrecomputedZPTimesWeightsWithBias:
  gate rescale  = weight_scale * input_scale / 2^-12 (float32), recurrent likewise with the
                  output state's scale; hidden rescale = float(2^-15 / hidden_scale * 2^-15)
                  (the hidden intermediate's scale and zero point: the op's 5th intermediate)
  cell_scale    = log2 of the cell state's scale (a power of two, 2^-15 to 2^-11: wider ones
                  need gemmlowp's clamp of exp below -32, which tinyc does not implement)
  cell_clip     = (int16)(cell_clip / cell_scale) in float32, 0 for none
  biases        = bias - input_zp * row sums (input side), -output_state_zp * row sums
The two states are variable tensors: static arrays of the layer kept between calls, reset to
the output state's zero point and 0 as TFLite resets them.
"""

from __future__ import annotations

import math

import numpy as np

from tinyc.errors import UnsupportedError
from tinyc.codegen.ops import Lowered, checker, register
from tinyc.codegen.ops._common import label
from tinyc.quant_math import quantize_multiplier

f32 = np.float32
GATES = ("input", "forget", "cell", "output")


def _t(graph, op, k):
    return graph.tensors[op.inputs[k]] if len(op.inputs) > k and op.inputs[k] >= 0 else None


@checker("UNIDIRECTIONAL_SEQUENCE_LSTM")
def check_lstm(graph, op):
    lab = label(op, "UNIDIRECTIONAL_SEQUENCE_LSTM")
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    if x.dtype != "int8" or y.dtype != "int8":
        raise UnsupportedError(f"{lab} has {x.dtype} input and {y.dtype} output; tinyc compiles the integer LSTM "
                               "(int8 with int16 cell): quantize the model to int8")
    missing = [k for k in range(1, 9) if _t(graph, op, k) is None] + [k for k in range(12, 16) if _t(graph, op, k) is None]
    extra = [k for k in (9, 10, 11, 16, 17, 20, 21, 22, 23) if _t(graph, op, k) is not None]
    if missing or extra:
        raise UnsupportedError(f"{lab} uses CIFG, peephole, projection or layer norm (inputs "
                               f"{missing or extra}); tinyc compiles the plain LSTM")
    out_state, cell = _t(graph, op, 18), _t(graph, op, 19)
    if out_state is None or cell is None or out_state.dtype != "int8" or cell.dtype != "int16":
        raise UnsupportedError(f"{lab} needs an int8 output state and an int16 cell state")
    inter = op.attrs.get("_intermediates", [])
    if len(inter) < 5 or graph.tensors[inter[4]].quant is None:
        raise UnsupportedError(f"{lab} lacks the hidden-state intermediate (its 5th) that TFLite's integer LSTM reads")
    log2 = math.log2(float(cell.quant.s))
    if log2 != int(log2) or not -15 <= log2 <= -11:
        raise UnsupportedError(f"{lab} has cell state scale {cell.quant.s:g}; tinyc compiles the powers "
                               "of two 2^-15 to 2^-11 (a wider cell state's tanh needs gemmlowp's exp clamp, not "
                               "implemented)")
    if op.attrs.get("activation", "TANH") != "TANH":
        raise UnsupportedError(f"{lab} has cell activation {op.attrs.get('activation')}; the integer LSTM uses TANH")
    for k in range(1, 9):
        w = _t(graph, op, k)
        if w.dtype != "int8" or not w.is_const or w.quant is None or w.quant.per_axis or w.quant.zp:
            raise UnsupportedError(f"{lab}: weights {k} must be constant symmetric per-tensor int8")
    if x.shape[-1] != _t(graph, op, 1).shape[1] or len(x.shape) != 3:
        raise UnsupportedError(f"{lab}: input {list(x.shape)} does not fit its weights")


@register("UNIDIRECTIONAL_SEQUENCE_LSTM", kernels=["common/gemmlowp_s16", "lstm"])
def lower_lstm(graph, op, ctx) -> Lowered:
    x, y = _t(graph, op, 0), graph.tensors[op.outputs[0]]
    out_state, cell = _t(graph, op, 18), _t(graph, op, 19)
    hidden = graph.tensors[op.attrs["_intermediates"][4]]
    time_major = bool(op.attrs.get("time_major", False))
    steps, batches = (int(x.shape[0]), int(x.shape[1])) if time_major else (int(x.shape[1]), int(x.shape[0]))
    n_in = int(x.shape[2])
    n_cell = int(_t(graph, op, 1).shape[0])
    gate_scale = f32(2.0 ** -12)
    q_in, q_rec, w_in, w_rec, b_in, b_rec = [], [], [], [], [], []
    for g in range(4):
        wi, wr, bias = _t(graph, op, 1 + g), _t(graph, op, 5 + g), _t(graph, op, 12 + g)
        q_in.append(quantize_multiplier(float(f32(f32(wi.quant.s) * f32(x.quant.s)) / gate_scale)))
        q_rec.append(quantize_multiplier(float(f32(f32(wr.quant.s) * f32(out_state.quant.s)) / gate_scale)))
        w_in.append(ctx.ptr(op.inputs[1 + g], f"input_to_{GATES[g]}_weights"))
        w_rec.append(ctx.ptr(op.inputs[5 + g], f"recurrent_to_{GATES[g]}_weights"))
        eff_in = bias.data.astype(np.int64) - x.quant.zp * wi.data.astype(np.int64).sum(axis=1)
        eff_rec = -out_state.quant.zp * wr.data.astype(np.int64).sum(axis=1)
        b_in.append(ctx.const(f"input_to_{GATES[g]}_bias", eff_in, "int32_t",
                              f"{GATES[g]} gate bias - input zero point x row sums"))
        b_rec.append(ctx.const(f"recurrent_to_{GATES[g]}_bias", eff_rec, "int32_t",
                               f"{GATES[g]} gate: - output state zero point x row sums"))
    hidden_scale = float(f32(2.0 ** -15 / float(f32(hidden.quant.s)) * 2.0 ** -15))
    mh, sh = quantize_multiplier(hidden_scale)
    cell_log2 = int(math.log2(float(cell.quant.s)))
    clip = float(op.attrs.get("cell_clip", 0.0) or 0.0)
    cell_clip = int(max(min(f32(clip) / f32(cell.quant.s), f32(32767.0)), f32(-32768.0))) if clip > 0 else 0
    h_name = ctx.state("output_state", "int8_t", out_state.size, f"LSTM output state [{batches}][{n_cell}] int8",
                       fill=out_state.quant.zp)
    c_name = ctx.state("cell_state", "int16_t", cell.size, f"LSTM cell state [{batches}][{n_cell}] int16")
    params = ctx.params("tinyc_lstm_params_s8", {
        "dims": {"batches": batches, "steps": steps, "input_size": n_in, "cells": n_cell, "time_major": int(time_major)},
        "op": {"cell_shift": 30 + cell_log2, "cell_clip": cell_clip, "cell_integer_bits": 15 + cell_log2,
               "hidden_offset": hidden.quant.zp},
        "quant": {"input_to": [{"multiplier": m, "shift": s} for m, s in q_in],
                  "recurrent_to": [{"multiplier": m, "shift": s} for m, s in q_rec],
                  "hidden": {"multiplier": mh, "shift": sh}},
        "input_weights": w_in, "recurrent_weights": w_rec, "input_bias": b_in, "recurrent_bias": b_rec,
        "output_state": h_name, "cell_state": c_name,
    })
    call = (f"tinyc_lstm_s8({params}, {ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])}, "
            f"{ctx.scratch(4 * n_cell * 2)});")
    macs = batches * steps * 4 * n_cell * (n_in + n_cell)
    return Lowered(call=call, macs=macs, notes=[f"{steps} steps x {batches} batches, {n_cell} cells; "
                                                f"cell state 2^{cell_log2}, clip {cell_clip}"])
