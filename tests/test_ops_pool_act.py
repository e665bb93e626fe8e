"""AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, SOFTMAX, LOGISTIC: tinyc's C against LiteRT BUILTIN_REF.

Two small Keras models go through TensorFlow's converter (what users feed tinyc); the
parameter sweeps use one-op .tflite files written here with the schema's object API, so they
cost no conversion. Every case runs >= 100 random inputs plus all -128 / all 127 (and, for
logistic, every int8 value), compared byte for byte with the reference interpreter.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as S

from helpers import assert_bit_exact, convert_keras_int8
from tinyc.errors import UnsupportedError
from tinyc.frontend.tflite import tflite_to_graph
from tinyc.codegen.ops import check_op
from tinyc.codegen.ops.mean import mean_multiplier, reduce_loops, resolve_axes
from tinyc.codegen.ops.softmax import softmax_params

N_RANDOM = 100


# ---------------------------------------------------------------------------------------
# One-op models written directly as flatbuffers


def _tflite_type(dtype: str) -> int:
    return {"int8": S.TensorType.INT8, "int16": S.TensorType.INT16, "int32": S.TensorType.INT32}[dtype]


def single_op_model(op_name, in_shape, in_q, out_shape, out_q, options=None, options_type=0,
                    consts=(), out_dtype="int8") -> bytes:
    """input -> OP(input, *consts) -> output, int8 input; consts are int32 arrays."""
    m = S.ModelT()
    m.version = 3
    m.buffers = [S.BufferT()]
    g = S.SubGraphT()
    g.tensors = []

    def tensor(name, shape, dtype, q=None, data=None):
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), _tflite_type(dtype)
        if q is not None:
            qp = S.QuantizationParametersT()
            qp.scale, qp.zeroPoint = [float(q[0])], [int(q[1])]
            t.quantization = qp
        b = S.BufferT()
        if data is not None:
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        m.buffers.append(b)
        t.buffer = len(m.buffers) - 1
        g.tensors.append(t)
        return len(g.tensors) - 1

    ti = tensor("input", in_shape, "int8", in_q)
    cis = [tensor(f"const{k}", np.shape(c), "int32", None, np.asarray(c, np.int32)) for k, c in enumerate(consts)]
    to = tensor("output", out_shape, out_dtype, out_q)
    oc = S.OperatorCodeT()
    code = getattr(S.BuiltinOperator, op_name)
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    m.operatorCodes = [oc]
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [ti] + cis, [to]
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options_type, options
    g.operators, g.inputs, g.outputs, g.name = [op], [ti], [to], "main"
    m.subgraphs = [g]
    m.description = "tinyc test"
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def pool_model(kind, in_shape, filt, stride, padding, act="NONE", q=(0.05, 3), out_q=None) -> bytes:
    o = S.Pool2DOptionsT()
    o.filterHeight, o.filterWidth = filt
    o.strideH, o.strideW = stride
    o.padding = getattr(S.Padding, padding)
    o.fusedActivationFunction = getattr(S.ActivationFunctionType, act)
    n, h, w, c = in_shape

    def osz(i, f, s):  # TensorFlow's windowed output size, computed independently of tinyc
        return -(-i // s) if padding == "SAME" else -(-(i - f + 1) // s)

    out = (n, osz(h, filt[0], stride[0]), osz(w, filt[1], stride[1]), c)
    return single_op_model(kind, in_shape, q, out, out_q or q, o, S.BuiltinOptions.Pool2DOptions)


def mean_model(in_shape, axes, keep, in_q, out_q) -> bytes:
    o = S.ReducerOptionsT()
    o.keepDims = keep
    ax = {a % len(in_shape) for a in axes}
    out_shape = [1 if i in ax else d for i, d in enumerate(in_shape)] if keep else \
        [d for i, d in enumerate(in_shape) if i not in ax]
    return single_op_model("MEAN", in_shape, in_q, out_shape, out_q, o, S.BuiltinOptions.ReducerOptions,
                           consts=[np.array(axes, np.int32)])


def softmax_model(shape, in_q, beta=1.0, out_q=(1 / 256, -128), out_dtype="int8") -> bytes:
    o = S.SoftmaxOptionsT()
    o.beta = beta
    return single_op_model("SOFTMAX", shape, in_q, shape, out_q, o, S.BuiltinOptions.SoftmaxOptions,
                           out_dtype=out_dtype)


def logistic_model(shape, in_q, out_q=(1 / 256, -128)) -> bytes:
    return single_op_model("LOGISTIC", shape, in_q, shape, out_q)


def extremes(shape) -> list:
    """All -128, all 127, and a -128/127 checkerboard."""
    alt = np.where(np.arange(int(np.prod(shape))).reshape(shape) % 2 == 1, 127, -128).astype(np.int8)
    return [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)], [alt]]


def _check(tflite: bytes):
    check_op(tflite_to_graph(tflite), 0)


# ---------------------------------------------------------------------------------------
# Keras models through TensorFlow's converter (two conversions for the whole module)


@pytest.fixture(scope="module")
def keras_pool_mean_act():
    """Conv -> pools (SAME/VALID, odd sizes, non-square windows, fused RELU and RELU6) ->
    GlobalAveragePooling2D with and without keepdims, a mean over other axes -> FC -> softmax
    and sigmoid heads."""
    import keras
    L = keras.layers
    inp = keras.Input((9, 11, 3))
    x = L.Conv2D(4, 3, padding="same")(inp)
    a = L.AveragePooling2D(3, strides=2, padding="same")(x)
    a = L.ReLU()(a)
    a = L.MaxPooling2D((2, 3), strides=(1, 2), padding="valid")(a)
    a = L.ReLU(max_value=6.0)(a)
    b = L.AveragePooling2D((2, 2), strides=1, padding="valid")(x)
    b = L.MaxPooling2D(3, strides=2, padding="same")(b)
    g1 = L.GlobalAveragePooling2D()(a)
    g2 = L.Flatten()(L.GlobalAveragePooling2D(keepdims=True)(b))
    m3 = keras.ops.mean(x, axis=-1)
    m3 = L.Flatten()(keras.ops.mean(m3, axis=1, keepdims=True))
    c = L.Concatenate()([g1, g2, m3])
    soft = L.Softmax()(L.Dense(10)(c))
    sig = L.Activation("sigmoid")(L.Dense(5)(c))
    model = keras.Model(inp, [soft, sig])
    rng = np.random.default_rng(0)
    return convert_keras_int8(model, rng.normal(size=(64, 9, 11, 3)).astype(np.float32))


@pytest.fixture(scope="module")
def keras_softmax_ranges():
    """Two softmax heads on one FC output: logits scaled x25 (wide range, near one-hot) and
    x0.02 (narrow range, near uniform)."""
    import keras
    L = keras.layers
    inp = keras.Input((16,))
    d = L.Dense(12)(inp)
    wide = L.Softmax()(L.Rescaling(25.0)(d))
    narrow = L.Softmax()(L.Rescaling(0.02)(d))
    model = keras.Model(inp, [wide, narrow])
    rng = np.random.default_rng(1)
    return convert_keras_int8(model, rng.normal(size=(64, 16)).astype(np.float32))


def test_keras_pools_mean_and_activations(keras_pool_mean_act, tmp_path):
    g = tflite_to_graph(keras_pool_mean_act)
    kinds = {op.kind for op in g.ops}
    assert {"AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SOFTMAX", "LOGISTIC"} <= kinds
    acts = {op.attrs.get("activation") for op in g.ops if op.kind.endswith("POOL_2D")}
    assert {"RELU", "RELU6"} <= acts  # the converter fused the ReLUs into the pools
    assert {bool(op.attrs.get("keep_dims")) for op in g.ops if op.kind == "MEAN"} == {True, False}
    r = assert_bit_exact(keras_pool_mean_act, tmp_path, n_random=N_RANDOM, inputs=extremes((1, 9, 11, 3)))
    assert r["samples"] == N_RANDOM + 3


def test_keras_softmax_wide_and_narrow_ranges(keras_softmax_ranges, tmp_path):
    g = tflite_to_graph(keras_softmax_ranges)
    scales = sorted(g.tensors[op.inputs[0]].quant.s for op in g.ops if op.kind == "SOFTMAX")
    assert len(scales) == 2 and scales[1] > 100 * scales[0]
    assert_bit_exact(keras_softmax_ranges, tmp_path, n_random=N_RANDOM, inputs=extremes((1, 16)))


# ---------------------------------------------------------------------------------------
# Parameter sweeps on one-op models

POOL_CASES = [
    # in_shape, filter, stride, padding, activation
    ((1, 7, 9, 3), (3, 3), (2, 2), "SAME", "NONE"),
    ((1, 7, 9, 3), (2, 3), (2, 1), "VALID", "RELU6"),
    ((2, 5, 5, 4), (5, 5), (1, 1), "SAME", "RELU"),
    ((1, 5, 5, 2), (7, 7), (1, 1), "SAME", "NONE"),         # window larger than the input
    ((1, 8, 8, 2), (2, 2), (3, 3), "VALID", "NONE"),        # stride larger than the window
    ((1, 6, 7, 3), (1, 1), (2, 2), "SAME", "RELU_N1_TO_1"),
    ((1, 11, 4, 5), (4, 2), (3, 2), "SAME", "RELU6"),       # odd total padding
    ((1, 3, 3, 8), (3, 3), (1, 1), "VALID", "RELU"),        # global window
    ((1, 10, 1, 3), (3, 1), (1, 1), "SAME", "NONE"),        # 1-D along H
]


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("case", POOL_CASES,
                         ids=lambda c: f"{c[0][1]}x{c[0][2]}-f{c[1][0]}x{c[1][1]}-s{c[2][0]}x{c[2][1]}-{c[3]}-{c[4]}")
def test_pool_geometry(kind, case, tmp_path):
    shape, filt, stride, padding, act = case
    model = pool_model(kind, shape, filt, stride, padding, act)
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=extremes(shape))


MEAN_CASES = [
    # in_shape, axes, keep_dims, input (scale, zp), output (scale, zp)
    ((1, 5, 7, 3), [1, 2], True, (0.05, 3), (0.02, -7)),       # GlobalAveragePooling2D(keepdims)
    ((1, 5, 7, 3), [1, 2], False, (0.05, 3), (0.05, 3)),       # equal quantization
    ((1, 5, 7, 3), [2, 1], False, (0.05, 3), (0.7, -7)),
    ((1, 5, 7, 3), [-1], True, (0.05, 3), (0.05, 3)),
    ((2, 4, 6, 5), [0, 2], False, (0.05, -3), (0.07, 1)),      # two separate runs
    ((2, 4, 6, 5), [1, 3], True, (0.05, -3), (0.0007, 1)),     # output saturates
    ((2, 4, 6, 5), [0, 1, 3], False, (0.5, -3), (0.07, 100)),
    ((1, 12, 6), [1, 1], False, (0.05, -3), (0.07, 1)),        # duplicate axis
    ((3, 12), [0, 1], False, (0.05, -3), (0.0001, 1)),         # everything, to a scalar
    ((1, 4, 6, 5), [0, 1, 2, 3], True, (0.05, 127), (0.01, -128)),
    ((1, 9, 9, 16), [1, 2], False, (0.02, -128), (0.01, -128)),
    ((1, 2, 3, 4, 5), [1, 3], False, (0.1, 0), (0.03, 5)),     # rank 5
]


@pytest.mark.parametrize("case", MEAN_CASES,
                         ids=lambda c: f"{'x'.join(map(str, c[0]))}-ax{'_'.join(map(str, c[1]))}-k{int(c[2])}")
def test_mean_axes_and_quantization(case, tmp_path):
    shape, axes, keep, iq, oq = case
    assert_bit_exact(mean_model(shape, axes, keep, iq, oq), tmp_path, n_random=N_RANDOM, inputs=extremes(shape))


SOFTMAX_CASES = [
    # shape, input (scale, zp), beta
    ((1, 10), (0.08, 25), 1.0),
    ((2, 37), (0.0042, 114), 0.5),
    ((1, 3, 4, 5), (0.0039, 20), 2.0),
    ((1, 1), (0.0058, -39), 7.3),
    ((1, 10), (0.16, 42), 0.01),
    ((2, 37), (0.91, -99), 100.0),      # multiplier at its cap: near one-hot
    ((4, 300), (0.05, 0), 1.0),         # long rows (sum of exps up to 300)
    ((1, 16), (1.0e-5, 0), 1.0),        # tiny input scale: near uniform
]


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=lambda c: f"{'x'.join(map(str, c[0]))}-s{c[1][0]:g}-b{c[2]:g}")
def test_softmax_beta_and_scales(case, tmp_path):
    shape, iq, beta = case
    assert_bit_exact(softmax_model(shape, iq, beta), tmp_path, n_random=N_RANDOM, inputs=extremes(shape))


@pytest.mark.parametrize("in_q", [(0.0067, 121), (0.0815, 0), (0.02, -128), (0.68, 73), (1.15, -9), (0.5, 127)])
def test_logistic_every_input_value(in_q, tmp_path):
    shape = (1, 256)
    every = [[np.arange(-128, 128, dtype=np.int8).reshape(shape)]]
    assert_bit_exact(logistic_model(shape, in_q), tmp_path, n_random=N_RANDOM, inputs=every + extremes(shape))


def test_logistic_non_default_output_zero_point(tmp_path):
    shape = (2, 3, 4)
    assert_bit_exact(logistic_model(shape, (0.03, 5), (1 / 256, 0)), tmp_path, n_random=N_RANDOM,
                     inputs=extremes(shape))


# ---------------------------------------------------------------------------------------
# Variants tinyc refuses, each with one clear line


def test_pool_with_requantizing_output_is_refused():
    with pytest.raises(UnsupportedError, match=r"AVERAGE_POOL_2D.*quantization.*equal"):
        _check(pool_model("AVERAGE_POOL_2D", (1, 4, 4, 2), (2, 2), (2, 2), "VALID", q=(0.05, 3), out_q=(0.1, 3)))


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
def test_pool_with_zero_stride_is_refused(kind):
    from tinyc.frontend.tflite import tflite_to_graph
    from tinyc.codegen.ops import check_op

    graph = tflite_to_graph(pool_model(kind, (1, 4, 4, 2), (2, 2), (1, 2), "VALID"))
    graph.ops[0].attrs["stride_h"] = 0
    with pytest.raises(UnsupportedError, match=r"stride 0x2"):
        check_op(graph, 0)


def test_softmax_with_wrong_output_quantization_is_refused():
    with pytest.raises(UnsupportedError, match=r"SOFTMAX.*1/256"):
        _check(softmax_model((1, 8), (0.1, 0), out_q=(1 / 128, 0)))


def test_softmax_with_int16_output_is_refused():
    with pytest.raises(UnsupportedError, match=r"SOFTMAX.*int16 output"):
        _check(softmax_model((1, 8), (0.1, 0), out_q=(1 / 32768, 0), out_dtype="int16"))


def test_logistic_with_wrong_output_scale_is_refused():
    with pytest.raises(UnsupportedError, match=r"LOGISTIC.*1/256"):
        _check(logistic_model((1, 8), (0.1, 0), out_q=(1 / 128, -128)))


def test_mean_over_three_separate_runs_is_refused():
    with pytest.raises(UnsupportedError, match=r"MEAN.*\[0, 2, 4\].*separate runs"):
        _check(mean_model((2, 3, 4, 5, 6), [0, 2, 4], False, (0.1, 0), (0.1, 0)))


# ---------------------------------------------------------------------------------------
# Python-side constants against independent math


def test_reduce_loops_match_numpy_mean_layout():
    """The kernel's [outer][r0][mid][r1][inner] view sums the same elements as numpy."""
    rng = np.random.default_rng(3)
    for shape, axes in [((2, 3, 4, 5), [1, 2]), ((2, 3, 4, 5), [0, 2]), ((2, 3, 4, 5), [1, 3]),
                        ((2, 3, 4, 5), [0, 1, 3]), ((6,), [0]), ((2, 3, 4, 5, 6), [1, 2, 4])]:
        x = rng.integers(-128, 128, size=shape)
        ax = resolve_axes(axes, len(shape))
        o, r0, m, r1, i = reduce_loops(shape, ax)
        sums = x.reshape(o, r0, m, r1, i).sum(axis=(1, 3)).reshape(-1)
        assert np.array_equal(sums, x.sum(axis=tuple(ax)).reshape(-1)), (shape, axes)
    assert resolve_axes([-1, 3, 1, -3], 4) == [3, 1]


def test_mean_multiplier_folds_one_over_n():
    for in_s, out_s, n in [(0.05, 0.02, 35), (0.5, 0.0007, 24), (0.01, 0.9, 1), (0.3, 0.3, 4096)]:
        m, s = mean_multiplier(in_s, out_s, n)
        real = float(np.float32(in_s)) / float(np.float32(out_s)) / n
        assert abs(m * 2.0 ** (s - 31) / real - 1) < 1e-6


def test_softmax_params_match_their_definition():
    for beta, scale in [(1.0, 0.08), (0.5, 0.0042), (100.0, 0.91), (1.0, 1e-5)]:
        mult, shift, diff_min = softmax_params(beta, scale)
        real = min(float(np.float32(beta)) * float(np.float32(scale)) * 2 ** 26, 2 ** 31 - 1)
        assert abs(mult * 2.0 ** (shift - 31) / real - 1) < 1e-9
        # diff_min is the most negative difference whose rescaled value (diff * 2^shift) fits
        # in 31 bits with 5 integer bits: |diff_min| * 2^shift <= 31 * 2^26.
        assert -diff_min * 2 ** shift <= 31 * 2 ** 26 < (-diff_min + 1) * 2 ** shift
