"""Standalone activations and SUB: RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, SUB, TANH,
HARD_SWISH against LiteRT BUILTIN_REF.

The quantization sweeps are one .tflite per op kind written directly with the schema (no
conversion cost): K independent one-op branches side by side, each with its own input and
output quantization, each input fed every int8 value (and random data). One small Keras
model goes through TensorFlow's converter for the forms it really emits, one .keras file
through tinyc's own Keras frontend.
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

N_RANDOM = 20
EVERY = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


def branches_model(kind, branches, options=None, options_type=0) -> bytes:
    """One model of independent `kind` ops. branches: list of (input_qs, output_q, shapes)
    where input_qs is a list of (scale, zp) per op input, shapes a list of input shapes plus
    the output shape last. Every op input is a graph input; every op output a graph output.
    options: one options object for all ops, or a list (one per branch)."""
    m = S.ModelT()
    m.version = 3
    m.buffers = [S.BufferT()]
    g = S.SubGraphT()
    g.tensors, g.operators, g.inputs, g.outputs = [], [], [], []

    def tensor(name, shape, q):
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), S.TensorType.INT8
        qp = S.QuantizationParametersT()
        qp.scale, qp.zeroPoint = [float(q[0])], [int(q[1])]
        t.quantization = qp
        m.buffers.append(S.BufferT())
        t.buffer = len(m.buffers) - 1
        g.tensors.append(t)
        return len(g.tensors) - 1

    oc = S.OperatorCodeT()
    code = getattr(S.BuiltinOperator, kind)
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    m.operatorCodes = [oc]
    for k, (in_qs, out_q, shapes) in enumerate(branches):
        ins = [tensor(f"in{k}_{j}", shapes[j], q) for j, q in enumerate(in_qs)]
        out = tensor(f"out{k}", shapes[-1], out_q)
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, ins, [out]
        opt = options[k] if isinstance(options, list) else options
        if opt is not None:
            op.builtinOptionsType, op.builtinOptions = options_type, opt
        g.operators.append(op)
        g.inputs += ins
        g.outputs.append(out)
    g.name = "main"
    m.subgraphs = [g]
    m.description = "tinyc test"
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def unary_model(kind, qpairs, options=None, options_type=0) -> bytes:
    """One branch per (input_q, output_q), each (1, 256)."""
    return branches_model(kind, [([iq], oq, [(1, 256), (1, 256)]) for iq, oq in qpairs], options, options_type)


def every_value_inputs(n_inputs: int) -> list:
    """Every int8 value in each input, then the reversed and a rolled order."""
    return [[EVERY] * n_inputs, [EVERY[:, ::-1].copy()] * n_inputs,
            [np.roll(EVERY, 37 * (k + 1), axis=1) for k in range(n_inputs)]]


# (input (scale, zp), output (scale, zp)): equal, slightly different, small and large ratios,
# extreme zero points, a rescale > 1 and a tiny one.
QPAIRS = [
    ((0.05, 3), (0.05, 3)),
    ((0.05, 3), (0.05, -128)),
    ((0.0392, -128), (0.0392, -128)),
    ((0.1, 0), (0.0235, -128)),
    ((0.013, 17), (0.027, -100)),
    ((0.0117, -5), (0.0118, -6)),
    ((0.5, 127), (0.03, -128)),       # ratio ~17: left shift
    ((0.02, -40), (0.9, 60)),         # ratio ~1/45
    ((0.007, 100), (0.00031, 0)),     # ratio ~23, saturates
    ((1.7, -128), (0.004, 127)),      # ratio ~425
    ((0.3, 0), (0.3 * 3.0000001, 0)),
    ((0.001, 0), (0.25, -128)),       # ratio 1/250: everything near the zero point
]
# Power-of-two scale ratios, so that the rescales hit exact ties.
QPAIRS_POT = [((0.05, 3), (0.1, -5)), ((0.05, 3), (0.025, 0)), ((0.0625, -7), (0.5, 0)), ((0.5, 0), (0.0625, -128))]


# ---------------------------------------------------------------------------------------
# RELU, RELU6, RELU_N1_TO_1


@pytest.mark.parametrize("kind", ["RELU", "RELU6", "RELU_N1_TO_1"])
def test_relu_family_every_input_value(kind, tmp_path):
    model = unary_model(kind, QPAIRS + QPAIRS_POT)
    r = assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=every_value_inputs(len(QPAIRS) + len(QPAIRS_POT)))
    assert r["samples"] == N_RANDOM + 3


# ---------------------------------------------------------------------------------------
# LEAKY_RELU

ALPHAS = [0.2, 0.3, 0.01, 0.0, 1.0, 1.7, 0.1234567, -0.3, -1.7,
          0.5, 0.25, -0.5, -0.25, -1.0, -2.0, -0.375]   # powers of two: exact rounding ties


def _leaky_options(alpha):
    o = S.LeakyReluOptionsT()
    o.alpha = alpha
    return o


@pytest.mark.parametrize("alpha", ALPHAS)
def test_leaky_relu_every_input_value(alpha, tmp_path):
    model = unary_model("LEAKY_RELU", QPAIRS + QPAIRS_POT, _leaky_options(alpha), S.BuiltinOptions.LeakyReluOptions)
    assert tflite_to_graph(model).ops[0].attrs["alpha"] == pytest.approx(alpha)
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=every_value_inputs(len(QPAIRS) + len(QPAIRS_POT)))


# ---------------------------------------------------------------------------------------
# SUB


def _sub_options(act="NONE"):
    o = S.SubOptionsT()
    o.fusedActivationFunction = getattr(S.ActivationFunctionType, act)
    return o


# (input 1 q, input 2 q, output q, fused activation): equal, different and power-of-two
# scales (exact rounding ties), the ADD tie cases of test_ops_elementwise, each activation.
SUB_CASES = [
    ((0.05, 3), (0.05, 3), (0.1, 0), "NONE"),
    ((0.05, 0), (0.05, 0), (0.05, 0), "NONE"),
    ((0.0625, -7), (0.125, 5), (0.25, 1), "NONE"),
    ((0.5, 0), (0.0625, -128), (0.03125, 127), "RELU"),
    ((0.30081868171691895, 48), (0.17662322521209717, -43), (0.0643237829208374, 36), "NONE"),
    ((0.05981576815247536, -35), (0.0017369772540405393, -32), (0.09143722802400589, -70), "NONE"),
    ((0.010772370733320713, 24), (0.008481272496283054, -120), (0.018773775547742844, 22), "NONE"),
    ((0.02, -128), (0.7, 127), (0.9, -3), "RELU6"),
    ((0.013, 17), (0.027, -100), (0.0041, 9), "RELU_N1_TO_1"),
    ((0.1, 0), (0.1, 0), (0.0001, 0), "NONE"),        # saturates
    # Input 2's multiplier is 3 * 2^29 + 2^10: its high multiply ties for odd inputs, where
    # rescaling by the negated multiplier and negating the rescaled value differ (for 128
    # and 24 of the 65536 pairs, per an independent Python model of the two).
    ((1.0, 0), (0.75 + 2 ** -21, 0), (0.5, 0), "NONE"),
    ((1.0, 0), (0.75 + 2 ** -21, 0), (0.3, 0), "NONE"),
]


def sub_model(cases, shapes=((1, 256), (1, 256), (1, 256))) -> bytes:
    return branches_model("SUB", [([q1, q2], qo, list(shapes)) for q1, q2, qo, _ in cases],
                          [_sub_options(act) for *_, act in cases], S.BuiltinOptions.SubOptions)


def test_sub_all_input_pairs(tmp_path):
    """Input 1 is every int8 value, input 2 the same rolled by r, for every r: all 65536 pairs."""
    model = sub_model(SUB_CASES)
    n = len(SUB_CASES)
    samples = []
    for r in range(256):
        samples.append([x for _ in range(n) for x in (EVERY, np.roll(EVERY, r, axis=1))])
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=samples)


@pytest.mark.parametrize("shapes", [
    ((1, 4, 5, 8), (1, 1, 5, 1), (1, 4, 5, 8)),
    ((1, 1, 1, 8), (1, 4, 5, 8), (1, 4, 5, 8)),
    ((3, 1, 6), (1, 4, 1), (3, 4, 6)),
    ((2, 7), (7,), (2, 7)),
    ((1, 3, 4, 1), (), (1, 3, 4, 1)),                 # scalar
    ((2, 1, 3, 1, 2), (1, 4, 1, 5, 2), (2, 4, 3, 5, 2)),  # rank 5, both inputs broadcast
], ids=lambda s: "_".join("x".join(map(str, d)) or "scalar" for d in s))
def test_sub_broadcast(shapes, tmp_path):
    model = sub_model(SUB_CASES[2:5], shapes)
    assert_bit_exact(model, tmp_path, n_random=50)


# ---------------------------------------------------------------------------------------
# TANH

# The converter's output quantization (1/128, 0) for several input ranges, plus others
# (Prepare allows any): coarse, fine (saturating), offset zero points.
TANH_QPAIRS = [
    ((0.0067, 121), (1 / 128, 0)), ((0.0815, 0), (1 / 128, 0)), ((0.02, -128), (1 / 128, 0)),
    ((0.68, 73), (1 / 128, 0)), ((1.15, -9), (1 / 128, 0)), ((0.5, 127), (1 / 128, 0)),
    ((0.03, 5), (1 / 256, -128)), ((0.03, 5), (0.1, 40)), ((0.01, -3), (0.002, 0)),
    ((0.05, 3), (0.05, 3)), ((1e-4, 0), (1e-5, 7)),
]


def test_tanh_every_input_value(tmp_path):
    model = unary_model("TANH", TANH_QPAIRS)
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=every_value_inputs(len(TANH_QPAIRS)))


# ---------------------------------------------------------------------------------------
# A Keras model through TensorFlow's converter (one conversion for the module)


@pytest.fixture(scope="module")
def keras_standalone_acts():
    """ReLU on the input and after a Concatenate (the converter cannot fuse either), ReLU6
    after a GlobalAveragePooling2D (a MEAN), LeakyReLU after a pool, hard swish, Subtract,
    tanh."""
    import keras
    L = keras.layers
    inp = keras.Input((6, 7, 3))
    r = L.ReLU()(inp)
    a = L.Conv2D(4, 3, padding="same")(r)
    b = L.DepthwiseConv2D(3, padding="same")(inp)
    c = L.ReLU()(L.Concatenate()([a, b]))
    p = L.LeakyReLU(negative_slope=0.2)(L.MaxPooling2D(2)(c))
    p = L.Activation("hard_swish")(p)
    g = L.ReLU(max_value=6.0)(L.GlobalAveragePooling2D()(p))
    d1, d2 = L.Dense(6)(g), L.Dense(6)(L.Flatten()(p))
    s = L.Subtract()([d1, d2])
    t = L.Activation("tanh")(L.Dense(5)(s))
    model = keras.Model(inp, [s, t])
    rng = np.random.default_rng(7)
    return convert_keras_int8(model, rng.normal(size=(64, 6, 7, 3)).astype(np.float32))


def test_keras_standalone_activations_bit_exact(keras_standalone_acts, tmp_path):
    kinds = [op.kind for op in tflite_to_graph(keras_standalone_acts).ops]
    for kind in ("RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "SUB", "TANH", "CONCATENATION"):
        assert kind in kinds, kinds
    shape = (1, 6, 7, 3)
    extremes = [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)]]
    assert_bit_exact(keras_standalone_acts, tmp_path, n_random=100, inputs=extremes)


# ---------------------------------------------------------------------------------------
# Variants tinyc refuses, each with one clear line


def _refused(graph, pattern):
    with pytest.raises(UnsupportedError, match=pattern) as exc:
        check_op(graph, 0)
    assert "\n" not in str(exc.value)


def test_relu6_bound_beyond_int32_is_refused():
    """6 / 1e-10 leaves int32: TFLite's Prepare refuses it too."""
    _refused(tflite_to_graph(unary_model("RELU6", [((0.05, 0), (1e-10, 0))])), r"RELU6 bound 6 .*beyond int32")


@pytest.mark.parametrize("kind", ["RELU", "RELU_N1_TO_1", "LEAKY_RELU", "TANH"])
def test_float_activation_is_refused(kind):
    g = tflite_to_graph(unary_model(kind, [((0.05, 0), (0.05, 0))]))
    for t in g.tensors:
        t.dtype, t.quant = "float32", None
    _refused(g, rf"{kind}.*float32 input.*quantize the model to full int8")


def test_per_axis_relu_is_refused():
    from tinyc.ir import QuantParams
    g = tflite_to_graph(unary_model("RELU", [((0.05, 0), (0.05, 0))]))
    g.tensors[0].quant = QuantParams(np.array([0.05, 0.1], np.float32), np.array([0, 0]), axis=1)
    _refused(g, r"RELU.*per-tensor")


def test_leaky_relu_with_infinite_alpha_is_refused():
    g = tflite_to_graph(unary_model("LEAKY_RELU", [((0.05, 0), (0.05, 0))], _leaky_options(0.3),
                                    S.BuiltinOptions.LeakyReluOptions))
    g.ops[0].attrs["alpha"] = float("inf")
    _refused(g, r"LEAKY_RELU.*alpha inf")


def test_sub_with_shapes_that_do_not_broadcast_is_refused():
    _refused(tflite_to_graph(sub_model(SUB_CASES[:1], ((1, 3, 4), (1, 5, 4), (1, 3, 4)))), r"SUB .*do not broadcast")


def test_sub_with_unsupported_fused_activation_is_refused():
    g = tflite_to_graph(sub_model(SUB_CASES[:1]))
    g.ops[0].attrs["activation"] = "TANH"
    _refused(g, r"SUB .*fused activation TANH")


# ---------------------------------------------------------------------------------------
# HARD_SWISH

# Output scale at least input scale / 128 (Prepare's condition); ratios from ~1 (the
# converter's usual) to 1/100, reluish exponents negative and positive.
HARD_SWISH_QPAIRS = [
    ((0.05, 3), (0.05, 3)), ((0.0235, -128), (0.0201, -110)), ((0.1, 0), (0.06, -90)),
    ((0.013, 17), (0.027, -100)), ((0.5, 127), (0.3, -128)), ((0.02, -40), (0.9, 60)),
    ((0.007, 100), (0.0005, 0)), ((1.7, -128), (0.04, 127)), ((0.0004, 0), (0.0001, -128)),
    ((0.05, 0), (0.05 / 128 * 1.01, 0)), ((3.0, 5), (2.0, -7)), ((0.001, 0), (0.25, -128)),
    ((0.0001, 0), (1.0, 0)), ((0.00002, 10), (0.5, -3)),   # output exponent <= -16: int16 mask wraps
]


def test_hard_swish_every_input_value(tmp_path):
    model = unary_model("HARD_SWISH", HARD_SWISH_QPAIRS)
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=every_value_inputs(len(HARD_SWISH_QPAIRS)))


def test_hard_swish_with_too_fine_output_scale_is_refused():
    _refused(tflite_to_graph(unary_model("HARD_SWISH", [((0.05, 0), (0.0001, 0))])), r"HARD_SWISH.*output scale")


def test_keras_file_with_new_activations_through_tinyc_frontend(tmp_path):
    """A .keras file goes through tinyc's own Keras frontend (which pre-checks layers and
    activations) and quantizer: LeakyReLU, hard_swish, Dense(activation="tanh" and
    "leaky_relu"), Subtract all reach the new kernels."""
    import keras
    from tinyc.quantize.prepare import prepare_int8
    L = keras.layers
    inp = keras.Input((5, 6, 2))
    x = L.Activation("hard_swish")(L.LeakyReLU(negative_slope=0.1)(L.Conv2D(4, 3, padding="same")(inp)))
    x = L.Flatten()(x)
    y = L.Subtract()([L.Dense(6, activation="tanh")(x), L.Dense(6, activation="leaky_relu")(x)])
    path = tmp_path / "acts.keras"
    keras.Model(inp, y).save(path)
    tfl = prepare_int8(path, calib_random=32).tflite
    kinds = {op.kind for op in tflite_to_graph(tfl).ops}
    assert {"LEAKY_RELU", "HARD_SWISH", "TANH", "SUB"} <= kinds, kinds
    assert_bit_exact(tfl, tmp_path, n_random=50)
