"""Random models and unusual graph forms: generated C bit-exact with LiteRT BUILTIN_REF.

The random models come from tests/random_models.py (a seeded generator of small Keras
chains and DAGs over every op of the foundation); the seeds here were picked so that together
they cover all of those ops, int8 and float I/O, per-tensor and per-channel weights, two
inputs, Dense on 2-D to 4-D features, depth multipliers, groups, dilation, broadcasting and
calibration ranges from 1e-3 to 1e3. Each is checked on random inputs plus the extreme ones
(every input byte -128, 127 or 0; float inputs far outside their quantized range).
Any other seed is checked the same way (hundreds were, while hunting).

The graph-form tests are regressions for bugs that random models found: an output that is
a graph input, one tensor listed twice among the outputs, a constant as output, an input no
op reads, and a model without any op (each failed to compile, or left an output unwritten; the last also broke the
Cortex-M firmware build). The requantization tests are regressions for what calibration on
huge ranges and single-op graphs found: FULLY_CONNECTED rescales that leave int32, rescales of
2^30 and more, MUL's multiplier (computed in float by mul.cc), and fused-activation bounds
beyond int32 (see docs/internals.md, "Beyond int32").
"""

import contextlib
import io as _io

import numpy as np
import pytest

from helpers import assert_bit_exact, convert_keras_int8
from random_models import random_model
from tinyc.errors import TinycError, UnsupportedError
from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph
from tinyc.ir import Graph, Op, QuantParams, Tensor
from tinyc.reference import Reference

import keras  # noqa: E402  (a dev dependency: a missing one must fail, not skip)
L = keras.layers

FOUNDATION_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "AVERAGE_POOL_2D",
                  "MAX_POOL_2D", "MEAN", "PAD", "CONCATENATION", "RESHAPE", "SOFTMAX", "LOGISTIC",
                  "QUANTIZE", "DEQUANTIZE"}
SEEDS = [319, 526, 422, 588, 409, 628, 634, 561]


def extreme_inputs(tflite: bytes) -> list[list[np.ndarray]]:
    """Samples with every input byte at -128, 127 and 0 (float inputs: -1e6, 1e6, 0)."""
    g = tflite_to_graph(tflite)
    samples = []
    for k in range(3):
        sample = []
        for t in g.inputs:
            tensor = g.tensors[t]
            dtype = np.dtype(tensor.dtype)
            if np.issubdtype(dtype, np.integer):
                value = (np.iinfo(dtype).min, np.iinfo(dtype).max, 0)[k]
            else:
                value = (-1e6, 1e6, 0.0)[k]
            sample.append(np.full(tensor.shape, value, dtype=dtype))
        samples.append(sample)
    return samples


@pytest.fixture(scope="module")
def random_tflites():
    out = {}
    for seed in SEEDS:
        model, reps, opts = random_model(seed)
        out[seed] = (convert_keras_int8(model, reps, per_tensor=opts["per_tensor"], io_type=opts["io_type"]),
                     opts["desc"])
    return out


def test_seeds_cover_the_foundation(random_tflites):
    kinds = set()
    float_io = per_tensor = two_inputs = False
    for tfl, _ in random_tflites.values():
        g = tflite_to_graph(tfl)
        kinds |= {op.kind for op in g.ops}
        float_io |= g.tensors[g.inputs[0]].dtype == "float32"
        per_tensor |= any(op.kind == "CONV_2D" and g.tensors[op.inputs[1]].quant.scale.size == 1 for op in g.ops)
        two_inputs |= len(g.inputs) == 2
    assert FOUNDATION_OPS <= kinds, f"not covered: {sorted(FOUNDATION_OPS - kinds)}"
    assert float_io and per_tensor and two_inputs


@pytest.mark.parametrize("seed", SEEDS)
def test_random_model_bit_exact(seed, random_tflites, tmp_path):
    tfl, desc = random_tflites[seed]
    try:
        assert_bit_exact(tfl, tmp_path, n_random=30, inputs=extreme_inputs(tfl), seed=seed)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{desc}") from None


@pytest.mark.parametrize("seed", [628, 409, 588])
def test_random_model_on_cortex_m4_bit_exact(seed, random_tflites, tmp_path):
    """The Cortex-M4 build (DSP inner loops, hardware float for the float I/O) under QEMU."""
    tfl, desc = random_tflites[seed]
    try:
        assert_bit_exact(tfl, tmp_path, n_random=10, inputs=extreme_inputs(tfl), seed=seed, board="mps2-an386")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{desc}") from None


def _convert_batch(model, rep, batch: int) -> bytes:
    """convert_keras_int8 with a fixed batch other than 1 (int8 I/O, per-channel)."""
    import tensorflow as tf

    spec = tf.TensorSpec([batch, *model.inputs[0].shape[1:]], tf.float32)
    concrete = tf.function(lambda x: model(x)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rep[i:i + batch]] for i in range(0, len(rep) - batch + 1, batch))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(_io.StringIO()):
        return bytes(converter.convert())


def test_random_model_batch_of_three_bit_exact(tmp_path):
    model, reps, _ = random_model(588)  # strided and grouped convs, MEAN, Dense
    tfl = _convert_batch(model, reps[0], 3)
    g = tflite_to_graph(tfl)
    assert g.tensors[g.inputs[0]].shape[0] == 3
    assert_bit_exact(tfl, tmp_path, n_random=20, inputs=extreme_inputs(tfl))


# ------------------------------------------------------------------ graph-form regressions

def _rep(shape, seed=0, n=16):
    return np.random.default_rng(seed).uniform(-2, 2, (n, *shape)).astype(np.float32)


def _graph_io(tfl):
    g = tflite_to_graph(tfl)
    return g, g.inputs, g.outputs


def test_graph_input_that_is_also_an_output(tmp_path):
    a = keras.Input((6,), batch_size=1)
    tfl = convert_keras_int8(keras.Model(a, [a, L.Dense(3)(a)]), _rep((6,)))
    g, ins, outs = _graph_io(tfl)
    assert ins[0] in outs  # the converter keeps the input tensor itself as an output
    assert_bit_exact(tfl, tmp_path, n_random=20, inputs=extreme_inputs(tfl))


def test_one_tensor_listed_twice_among_outputs(tmp_path):
    a = keras.Input((6,), batch_size=1)
    d = L.Dense(4)(a)
    tfl = convert_keras_int8(keras.Model(a, [d, L.Dense(2)(d), d]), _rep((6,)))
    g, ins, outs = _graph_io(tfl)
    assert len(set(outs)) < len(outs)
    assert_bit_exact(tfl, tmp_path, n_random=20)


def test_constant_tensor_as_graph_output(tmp_path):
    """A graph output that is a constant (here the Dense weights, made an output by editing):
    the layer read its weights from the caller's output buffer instead of weights.c."""
    a = keras.Input((6,), batch_size=1)
    g = tflite_to_graph(convert_keras_int8(keras.Model(a, L.Dense(3)(a)), _rep((6,))))
    weights = g.ops[0].inputs[1]
    assert g.tensors[weights].is_const
    g.outputs = [g.outputs[0], weights]
    assert_bit_exact(graph_to_tflite(g), tmp_path, n_random=20)


def test_input_that_no_op_reads(tmp_path):
    a = keras.Input((5,), batch_size=1)
    b = keras.Input((3,), batch_size=1)
    tfl = convert_keras_int8(keras.Model([a, b], L.Dense(4)(a)), [_rep((5,)), _rep((3,), 1)])
    g, ins, outs = _graph_io(tfl)
    assert len(ins) == 2 and not any(ins[1] in op.inputs for op in g.ops)
    assert_bit_exact(tfl, tmp_path, n_random=20)


@pytest.mark.parametrize("io,board", [("int8", "host"), ("float", "host"), ("int8", "mps2-an386")])
def test_model_without_layers(io, board, tmp_path):
    """The converter drops an identity entirely: the output tensor is the input tensor. The
    firmware's per-layer loops must compile with zero layers too."""
    a = keras.Input((2, 5), batch_size=1)
    tfl = convert_keras_int8(keras.Model(a, L.Activation("linear")(a)), _rep((2, 5)), io=io)
    g, ins, outs = _graph_io(tfl)
    assert g.ops == [] and ins == outs
    assert_bit_exact(tfl, tmp_path, n_random=20, inputs=extreme_inputs(tfl), board=board)


def test_reshape_only_model_and_reshape_to_output(tmp_path):
    a = keras.Input((3, 4), batch_size=1)
    d = L.Dense(5)(a)
    tfl = convert_keras_int8(keras.Model(a, [L.Flatten()(a), L.Flatten()(d), L.Dense(2)(L.Flatten()(d))]),
                             _rep((3, 4)))
    assert "RESHAPE" in {op.kind for op in tflite_to_graph(tfl).ops}
    assert_bit_exact(tfl, tmp_path, n_random=20, inputs=extreme_inputs(tfl))


# ------------------------------------------------------- requantization overflow regressions

def _q(scale, zp=0, axis=0):
    return QuantParams(np.array(scale, np.float32).reshape(-1), np.array(zp).reshape(-1), axis)


def _fc_graph(real: float, per_channel: bool, zp_in: int, zp_out: int) -> Graph:
    """One FULLY_CONNECTED whose rescale input_scale * filter_scale / output_scale is `real`;
    the accumulators are +-127 * (x - zp_in) (+-1000 bias), so real > ~1e5 leaves int32."""
    n = 2 if per_channel else 1
    w = np.zeros((2, 4), np.int8)
    w[0, 0], w[1, 0] = 127, -127
    tensors = [Tensor("x", (1, 4), "int8", _q(1.0, zp_in)),
               Tensor("w", (2, 4), "int8", _q([1.0] * n, [0] * n), w),
               Tensor("y", (1, 2), "int8", _q(1.0 / real, zp_out)),
               Tensor("b", (2,), "int32", _q([1.0] * n, [0] * n), np.array([1000, -1000], np.int32))]
    op = Op("FULLY_CONNECTED", [0, 1, 3], [2], {"_options": "FullyConnectedOptionsT", "activation": "NONE",
                                                "keep_num_dims": False, "weights_format": 0, "_version": 5}, "fc")
    return Graph(tensors, [op], [0], [2])


def _every_byte(shape):
    """256 samples: input byte 0 takes every int8 value, the rest stay at 0."""
    out = []
    for v in range(-128, 128):
        x = np.zeros(shape, np.int8)
        x.flat[0] = v
        out.append([x])
    return out


@pytest.mark.parametrize("real,per_channel,zp_in,zp_out,board", [
    (3.6e6, True, 0, 0, "host"), (3.6e6, False, 5, -128, "host"), (2.0 ** 20 + 7, True, -9, 50, "host"),
    (9e8, False, 0, -1, "host"), (3.6e6, True, 3, 0, "mps2-an386")])
def test_fully_connected_rescale_leaving_int32_bit_exact(real, per_channel, zp_in, zp_out, board, tmp_path):
    """A rescale > 1 that takes accumulators beyond int32: LiteRT's FULLY_CONNECTED gives
    INT32_MIN there (then adds the zero point with wraparound); tinyc wrapped the 64-bit
    value instead (up to 255 off)."""
    tfl = graph_to_tflite(_fc_graph(real, per_channel, zp_in, zp_out))
    assert_bit_exact(tfl, tmp_path, n_random=0, inputs=_every_byte((1, 4)), board=board)


def test_random_model_with_huge_calibration_ranges_bit_exact(tmp_path):
    """The random model that found it: seed 2132 calibrated on values around 1e9."""
    model, reps, opts = random_model(2132)
    tfl = convert_keras_int8(model, [r * 1e6 for r in reps], per_tensor=opts["per_tensor"], io_type=opts["io_type"])
    assert "FULLY_CONNECTED" in {op.kind for op in tflite_to_graph(tfl).ops}
    assert_bit_exact(tfl, tmp_path, n_random=50, inputs=extreme_inputs(tfl))


def _single_op(kind: str, real: float, zp_out: int) -> tuple[Graph, list]:
    """CONV_2D / DEPTHWISE_CONV_2D / MUL / QUANTIZE (int8 -> int8) with rescale `real`, and
    samples covering every int8 input."""
    y = Tensor("y", (1, 1, 1, 2), "int8", _q(1.0 / real, zp_out))
    b = Tensor("b", (2,), "int32", _q([1.0, 1.0], [0, 0]), np.zeros(2, np.int32))
    attrs = {"activation": "NONE", "padding": "VALID", "stride_h": 1, "stride_w": 1, "dilation_h": 1,
             "dilation_w": 1}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        dw = kind == "DEPTHWISE_CONV_2D"
        w = Tensor("w", (1, 1, 1, 2) if dw else (2, 1, 1, 1), "int8", _q([1.0, 1.0], [0, 0], 3 if dw else 0),
                   np.array([127, -127], np.int8).reshape((1, 1, 1, 2) if dw else (2, 1, 1, 1)))
        attrs.update({"_options": "DepthwiseConv2DOptionsT", "depth_multiplier": 2} if dw else
                     {"_options": "Conv2DOptionsT"})
        g = Graph([Tensor("x", (1, 1, 1, 1), "int8", _q(1.0, 7)), w, y, b], [Op(kind, [0, 1, 3], [2], attrs, "op")],
                  [0], [2])
        return g, _every_byte((1, 1, 1, 1))
    x = Tensor("x", (1, 256), "int8", _q(1.0, 3))
    if kind == "MUL":
        c = Tensor("c", (1,), "int8", _q(1.0), np.array([127], np.int8))
        g = Graph([x, c, Tensor("y", (1, 256), "int8", _q(1.0 / real, zp_out))],
                  [Op("MUL", [0, 1], [2], {"_options": "MulOptionsT", "activation": "NONE"}, "mul")], [0], [2])
    else:
        g = Graph([x, Tensor("y", (1, 256), "int8", _q(1.0 / real, zp_out))], [Op("QUANTIZE", [0], [1], {}, "q")],
                  [0], [1])
    return g, [[np.arange(-128, 128, dtype=np.int8).reshape(1, 256)]]


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D", "MUL", "QUANTIZE", "FULLY_CONNECTED"])
@pytest.mark.parametrize("real", [0.9 * 2.0 ** 31, 1.5 * 2.0 ** 31, 1.3 * 2.0 ** 40])
def test_rescale_of_2_to_30_or_more_bit_exact(kind, real, tmp_path):
    """Multipliers of 2^30 and more keep their shift of 31+ (tinyc clamped it to 30, which
    only single-rounding builds do); the double-rounding ops' `x * (1 << shift)` then shifts by
    shift mod 32 on the reference's x86 host, and FULLY_CONNECTED gives INT32_MIN."""
    if kind == "FULLY_CONNECTED":
        g, samples = _fc_graph(real, True, 0, -7), _every_byte((1, 4))
    else:
        g, samples = _single_op(kind, real, -100)
    assert_bit_exact(graph_to_tflite(g), tmp_path, n_random=0, inputs=samples)


@pytest.mark.parametrize("s1,s2,s_out", [(0.009122797, 0.06219076, 0.007569259),
                                         (0.3178835, 0.41798306, 0.98246336),
                                         (0.1818341, 0.097992964, 0.8130423)])
def test_mul_multiplier_from_float_scales_bit_exact(s1, s2, s_out, tmp_path):
    """mul.cc evaluates s1 * s2 / s_out in float: in double, these ordinary scales give
    another multiplier and 8-32 of the 65536 products were 1 LSB off."""
    g = Graph([Tensor("a", (1, 65536), "int8", _q(s1)), Tensor("b", (1, 65536), "int8", _q(s2)),
               Tensor("y", (1, 65536), "int8", _q(s_out))],
              [Op("MUL", [0, 1], [2], {"_options": "MulOptionsT", "activation": "NONE"}, "mul")], [0, 1], [2])
    i = np.arange(65536)
    every_pair = [(i // 256 - 128).astype(np.int8).reshape(1, -1), (i % 256 - 128).astype(np.int8).reshape(1, -1)]
    assert_bit_exact(graph_to_tflite(g), tmp_path, n_random=0, inputs=[every_pair])


def test_fused_activation_bound_beyond_int32_refused_in_one_line(tmp_path):
    """RELU6 on an output scale of 1e-10: 6 / scale leaves int32, which TFLite's Prepare
    refuses; tinyc generated code for it (and crashed on an infinite bound)."""
    g = _fc_graph(1.0, True, 0, -128)
    g.ops[0].attrs["activation"] = "RELU6"
    g.tensors[2].quant = _q(1e-10, -128)
    tfl = graph_to_tflite(g)
    with pytest.raises(TinycError, match="rejects"):
        Reference(tfl)
    with pytest.raises(UnsupportedError, match="FULLY_CONNECTED 'y': the fused RELU6 bound") as exc:
        assert_bit_exact(tfl, tmp_path, n_random=1)
    assert "\n" not in str(exc.value)
