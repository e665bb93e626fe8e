"""Emitting the specialised kernels' constants (conv_2d_gemm, fully_connected_gemm,
depthwise_conv_2d_planar): the layouts themselves are computed by codegen/gemm_layout.py."""

from __future__ import annotations

import numpy as np

from tinyc.codegen import gemm_layout

RQ_MODES = {gemm_layout.RQ_DOUBLE_SIGNED: "TINYC_RQ_DOUBLE_SIGNED", gemm_layout.RQ_DOUBLE_RELU: "TINYC_RQ_DOUBLE_RELU",
            gemm_layout.RQ_SINGLE: "TINYC_RQ_SINGLE"}


def wide_weights(ctx) -> bool:
    """int16 weights: under --optimize speed, when the board's flash holds the model's weights
    widened (all of them: the decision is the model's, not the layer's)."""
    int8_bytes = sum(t.nbytes for t in ctx.graph.tensors if t.is_const and t.dtype == "int8")
    return ctx.target.optimize == "speed" and ctx.target.int16_weights_fit(int8_bytes)


def gemm_filter(ctx, w2: np.ndarray, depth4: int) -> tuple[str | None, str | None, str]:
    """The [O][K] filter pair-interleaved into weights.c: (int8 name, int16 name, note); int16
    (pre-widened, --optimize speed) costs one more byte per padded weight."""
    if wide_weights(ctx):
        v = gemm_layout.pair_interleave_int16(w2, depth4)
        name = ctx.const("filter", v, "int16_t", "weights widened to int16, channel pairs interleaved by 4 "
                                                 "(order w0 w2 w1 w3)", align=8)
        return None, name, f"int16 weights (+{v.size} B flash against int8)"
    v = gemm_layout.pair_interleave(w2, depth4)
    return ctx.const("filter", v, "int8_t", "weights, channel pairs interleaved by 4", align=4), None, "int8 weights"


def folded_quant(ctx, rq: gemm_layout.Requant) -> dict:
    """The .quant group (tinyc_folded_quant_params) of a layer's records."""
    return {"records": ctx.const("requant", rq.records, "int32_t",
                                 "per output channel: acc_init, multiplier, khi, e (folded requantization)"),
            "mode": RQ_MODES[rq.mode]}
