"""REDUCE_MAX, GATHER and BATCH_MATMUL: tinyc's C against LiteRT BUILTIN_REF.

One Keras model goes through TensorFlow's converter (GlobalMaxPooling1D and keras.ops.max ->
REDUCE_MAX, keras.ops.take with constant indices -> GATHER, a MultiHeadAttention block ->
BATCH_MATMUL twice), checked on the host and on mps2-an386. The parameter sweeps use one-op
.tflite files written here with the schema's object API (adj_x / adj_y, broadcast batch
dims, zero points and scales the converter would not pick, int16 and int64 tensors), so they
cost no conversion. Every case runs random inputs plus all -128 / all 127 (saturation),
compared byte for byte with the reference interpreter.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as S

from helpers import assert_bit_exact, convert_keras_int8
from tinyc.codegen import check_supported
from tinyc.errors import UnsupportedError
from tinyc.frontend.tflite import tflite_to_graph
from tinyc.ir import op_macs
from tinyc.reference import Reference
from tinyc.samples import index_bounds

N_RANDOM = 60
TYPES = {"int8": S.TensorType.INT8, "int16": S.TensorType.INT16, "int32": S.TensorType.INT32,
         "int64": S.TensorType.INT64, "bool": S.TensorType.BOOL}


def one_op_model(op_name, inputs, output, options=None, options_type=0) -> bytes:
    """One operator. inputs: (shape, dtype, (scale, zero_point) or None, constant data or None);
    the ones without data are the graph's inputs, in order. output: (shape, dtype, quant)."""
    m = S.ModelT()
    m.version, m.buffers, m.description = 3, [S.BufferT()], "tinyc test"
    g = S.SubGraphT()
    g.tensors, g.name = [], "main"

    def tensor(name, shape, dtype, q, data):
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape), TYPES[dtype]
        if q is not None:
            t.quantization = S.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [float(q[0])], [int(q[1])]
        b = S.BufferT()
        if data is not None:
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        m.buffers.append(b)
        t.buffer = len(m.buffers) - 1
        g.tensors.append(t)
        return len(g.tensors) - 1

    ins = [tensor(f"in{k}", *spec) for k, spec in enumerate(inputs)]
    out = tensor("output", *output, None)
    code = getattr(S.BuiltinOperator, op_name)
    oc = S.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    m.operatorCodes = [oc]
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, ins, [out]
    if options is not None:
        op.builtinOptionsType, op.builtinOptions = options_type, options
    g.operators, g.outputs = [op], [out]
    g.inputs = [i for i, spec in zip(ins, inputs) if spec[3] is None]
    m.subgraphs = [g]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def extremes(shapes, dtype=np.int8) -> list:
    """Every input all minimum, all maximum, and min/max in a checkerboard (saturation)."""
    info = np.iinfo(dtype)
    def board(s):
        return np.where(np.arange(int(np.prod(s))).reshape(s) % 2 == 1, info.max, info.min).astype(dtype)
    return [[np.full(s, info.min, dtype) for s in shapes], [np.full(s, info.max, dtype) for s in shapes],
            [board(s) for s in shapes], [np.full(s, info.min, dtype) if k else board(s) for k, s in enumerate(shapes)]]


# ---------------------------------------------------------------------------------------
# Keras: the layers that emit the three ops, one conversion for the module


@pytest.fixture(scope="module")
def keras_attention_max_take():
    import keras
    L = keras.layers
    inp = keras.Input((6, 8))
    x = L.Dense(8)(inp)
    att = L.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)          # BATCH_MATMUL x2, 4-D
    pooled = L.GlobalMaxPooling1D()(att)                              # REDUCE_MAX axis 1
    row_max = keras.ops.max(x, axis=-1)                               # REDUCE_MAX axis 2
    picked = L.Flatten()(keras.ops.take(inp, np.array([5, 0, 0, 3]), axis=1))  # GATHER
    head = L.Dense(5)(L.Concatenate()([pooled, row_max, picked]))
    model = keras.Model(inp, [head, att])
    rng = np.random.default_rng(0)
    return convert_keras_int8(model, rng.normal(size=(64, 6, 8)).astype(np.float32))


def test_keras_layers_emit_the_ops(keras_attention_max_take):
    g = tflite_to_graph(keras_attention_max_take)
    kinds = [op.kind for op in g.ops]
    assert kinds.count("BATCH_MATMUL") == 2 and kinds.count("REDUCE_MAX") == 2 and "GATHER" in kinds
    mm = [op for op in g.ops if op.kind == "BATCH_MATMUL"]
    assert all(not g.tensors[t].is_const for op in mm for t in op.inputs)   # both operands activations
    assert [op_macs(g, op) for op in mm] == [2 * 6 * 6 * 4, 2 * 6 * 4 * 6]   # [2 heads, 6 x 4] . [4 x 6], then . [6 x 4]


def test_keras_attention_max_take_bit_exact(keras_attention_max_take, tmp_path):
    r = assert_bit_exact(keras_attention_max_take, tmp_path, n_random=N_RANDOM, inputs=extremes([(1, 6, 8)]))
    assert r["samples"] == N_RANDOM + 4


def test_keras_attention_max_take_on_mps2_an386(keras_attention_max_take, tmp_path):
    assert_bit_exact(keras_attention_max_take, tmp_path, n_random=10, board="mps2-an386",
                     inputs=extremes([(1, 6, 8)])[:2])


# ---------------------------------------------------------------------------------------
# BATCH_MATMUL sweep


def matmul_model(x_shape, y_shape, adj_x, adj_y, qx, qy, qo) -> bytes:
    o = S.BatchMatMulOptionsT()
    o.adjX, o.adjY = adj_x, adj_y
    rows = x_shape[-1] if adj_x else x_shape[-2]
    cols = y_shape[-2] if adj_y else y_shape[-1]
    rank = max(len(x_shape), len(y_shape))
    xb = [1] * (rank - len(x_shape)) + list(x_shape[:-2])
    yb = [1] * (rank - len(y_shape)) + list(y_shape[:-2])
    out = [max(a, b) for a, b in zip(xb, yb)] + [rows, cols]
    return one_op_model("BATCH_MATMUL", [(x_shape, "int8", qx, None), (y_shape, "int8", qy, None)],
                        (out, "int8", qo), o, S.BuiltinOptions.BatchMatMulOptions)


MATMUL_CASES = [
    # x shape, y shape, adj_x, adj_y, (scale, zp) of x, y, output
    ((3, 5), (5, 4), False, False, (0.05, 3), (0.02, -7), (0.04, 10)),
    ((2, 4, 6), (2, 5, 6), False, True, (0.1, -128), (0.03, 127), (0.3, -5)),           # Q.K^T form
    ((2, 6, 4), (2, 6, 3), True, False, (0.02, 0), (0.02, 0), (0.001, 0)),              # adj_x; rescale > 1
    ((2, 1, 3, 7), (3, 7, 2), False, False, (0.07, 20), (0.05, -30), (0.5, 1)),        # broadcast batch dims
    ((1, 2, 1, 5, 3), (2, 2, 4, 5), True, True, (0.04, -1), (0.06, 4), (0.02, -100)),  # rank 5, both adjoint
    ((4, 40), (40, 3), False, False, (0.5, 100), (0.5, -100), (3.0, 0)),                # wide sums, saturation
    ((2, 3, 4, 6), (2, 1, 6, 5), False, False, (0.03, 5), (0.04, -2), (0.05, 0)),      # the reference folds R into rows
    ((1, 4, 6), (3, 5, 6), False, True, (0.03, -60), (0.04, 60), (0.08, 9)),            # LHS repeated per batch
]


def test_batch_matmul_constant_rhs_bit_exact(tmp_path):
    """A constant operand (a weight the converter left as BATCH_MATMUL) is emitted into weights.c."""
    o = S.BatchMatMulOptionsT()
    w = np.random.default_rng(3).integers(-128, 128, size=(2, 6, 5)).astype(np.int8)
    model = one_op_model("BATCH_MATMUL", [((2, 3, 6), "int8", (0.05, -4), None), (w.shape, "int8", (0.01, 2), w)],
                         ((2, 3, 5), "int8", (0.03, 6)), o, S.BuiltinOptions.BatchMatMulOptions)
    r = assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=extremes([(2, 3, 6)]))
    assert "tinyc_l0_batch_matmul_input1" in (r["outdir"] / "weights.c").read_text()


def test_batch_matmul_multiplier_takes_the_scale_product_in_float32(tmp_path):
    """GetQuantizedConvolutionMultipler forms s_x * s_y in float32 before dividing in double:
    for these scales (an attention block's) the all-double multiplier is 1320075952, the
    reference's 1320075974, and the accumulator 9838 rounds to 66 with one, 67 with the other."""
    qx, qy, qo = (0.036231186240911484, -2), (0.024738064035773277, -6), (0.09331665933132172, -28)
    model = matmul_model((1, 2, 6, 4), (1, 2, 4, 6), False, False, qx, qy, qo)
    x, y = np.full((1, 2, 6, 4), -2, np.int8), np.full((1, 2, 4, 6), -6, np.int8)
    x[0, 0, 0, :2], y[0, 0, :2, 0] = (127, 32), (70, -5)      # (129 * 76) + (34 * 1) = 9838
    r = assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=[[x, y]])
    assert "1320075974" in (r["outdir"] / "model.c").read_text()


@pytest.mark.parametrize("case", MATMUL_CASES, ids=lambda c: f"{c[0]}x{c[1]}-adj{int(c[2])}{int(c[3])}")
def test_batch_matmul_bit_exact(case, tmp_path):
    x_shape, y_shape, adj_x, adj_y, qx, qy, qo = case
    model = matmul_model(x_shape, y_shape, adj_x, adj_y, qx, qy, qo)
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=extremes([x_shape, y_shape]))


# ---------------------------------------------------------------------------------------
# REDUCE_MAX sweep


def reduce_max_model(in_shape, axes, keep, q, out_q=None) -> bytes:
    o = S.ReducerOptionsT()
    o.keepDims = keep
    ax = {a % len(in_shape) for a in axes}
    out = [1 if i in ax else d for i, d in enumerate(in_shape)] if keep else \
        [d for i, d in enumerate(in_shape) if i not in ax]
    return one_op_model("REDUCE_MAX", [(in_shape, "int8", q, None), ((len(axes),), "int32", None,
                                                                     np.array(axes, np.int32))],
                        (out, "int8", out_q or q), o, S.BuiltinOptions.ReducerOptions)


@pytest.mark.parametrize("shape, axes, keep", [
    ((1, 5, 6, 4), [1, 2], False),        # GlobalMaxPooling2D
    ((2, 5, 6, 3), [-1, 1, -3], True),    # negative and duplicate axes, two runs
    ((3, 4, 5), [0, 1, 2], False),        # everything
])
def test_reduce_max_bit_exact(shape, axes, keep, tmp_path):
    assert_bit_exact(reduce_max_model(shape, axes, keep, (0.05, -9)), tmp_path, n_random=N_RANDOM,
                     inputs=extremes([shape]))


# ---------------------------------------------------------------------------------------
# GATHER sweep


def gather_model(params_shape, indices, axis, batch_dims=0, dtype="int8", index_dtype="int32") -> bytes:
    o = S.GatherOptionsT()
    o.axis, o.batchDims = axis, batch_dims
    indices = np.asarray(indices, dtype=np.dtype(index_dtype))
    ax = axis % len(params_shape)
    out = list(params_shape[:ax]) + list(indices.shape[batch_dims:]) + list(params_shape[ax + 1:])
    q = (0.1, 0) if dtype == "int16" else (0.1, 3)
    return one_op_model("GATHER", [(params_shape, dtype, q, None), (indices.shape, index_dtype, None, indices)],
                        (out, dtype, q), o, S.BuiltinOptions.GatherOptions)


@pytest.mark.parametrize("params_shape, indices, axis, batch_dims, dtype, index_dtype", [
    ((10, 4), [[3, 3], [9, 0], [1, 2]], 0, 0, "int8", "int32"),     # an embedding table lookup
    ((2, 7, 3), [6, 0, 0, 2], -2, 0, "int8", "int64"),              # keras.ops.take(x, [...], axis=1)
    ((3, 5, 2), [[4, 0], [1, 1], [2, 3]], 1, 1, "int16", "int16"),   # batch_dims 1, int16 values
])
def test_gather_bit_exact(params_shape, indices, axis, batch_dims, dtype, index_dtype, tmp_path):
    model = gather_model(params_shape, indices, axis, batch_dims, dtype, index_dtype)
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=extremes([params_shape], np.dtype(dtype)))


@pytest.mark.parametrize("table_shape, indices_shape, axis", [
    ((10, 4), (1, 7), 0),          # an Embedding's lookup: a constant table, indices from the model input
    ((3, 6, 2), (2, 2), 1),        # along a middle axis
])
def test_gather_with_model_input_indices_bit_exact(table_shape, indices_shape, axis, tmp_path):
    """Indices computed at run time (here the model's int32 input): random ones are drawn on
    the axis (tinyc.samples.input_ranges), plus both ends of it."""
    o = S.GatherOptionsT()
    o.axis = axis
    table = np.random.default_rng(5).integers(-128, 128, size=table_shape).astype(np.int8)
    out = list(table_shape[:axis]) + list(indices_shape) + list(table_shape[axis + 1:])
    model = one_op_model("GATHER", [(table_shape, "int8", (0.1, 3), table), (indices_shape, "int32", None, None)],
                         (out, "int8", (0.1, 3)), o, S.BuiltinOptions.GatherOptions)
    graph = tflite_to_graph(model)
    assert index_bounds(graph) == {graph.inputs[0]: (0, table_shape[axis])}   # no wrap: negatives fail too
    ends = [[np.zeros(indices_shape, np.int32)], [np.full(indices_shape, table_shape[axis] - 1, np.int32)]]
    assert_bit_exact(model, tmp_path, n_random=N_RANDOM, inputs=ends)


# ---------------------------------------------------------------------------------------
# Refusals: one line each, where the reference refuses too or tinyc cannot follow


def refusal(model: bytes) -> str:
    with pytest.raises(UnsupportedError) as e:
        check_supported(tflite_to_graph(model))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_reduce_max_with_requantization_is_refused_as_the_reference_refuses_it():
    model = reduce_max_model((1, 4, 3), [1], False, (0.05, -9), out_q=(0.1, 2))
    assert "needs them equal" in refusal(model)
    with pytest.raises(Exception):  # LiteRT's Eval: input and output quantization must match
        Reference(model).run(np.zeros((1, 4, 3), np.int8))


def test_gather_with_int16_model_input_indices_is_refused():
    """Run-time indices are int32 (a Keras Embedding's; its path: tests/test_embedding.py)."""
    o = S.GatherOptionsT()
    model = one_op_model("GATHER", [((10, 4), "int8", (0.1, 0), np.zeros((10, 4), np.int8)),
                                    ((1, 7), "int16", None, None)],
                         ((1, 7, 4), "int8", (0.1, 0)), o, S.BuiltinOptions.GatherOptions)
    assert "takes int32 ones" in refusal(model)


def test_gather_out_of_range_index_is_refused():
    assert "index 4 outside [0, 4)" in refusal(gather_model((2, 4), [1, 4], axis=1))


def test_batch_matmul_int16_is_refused():
    o = S.BatchMatMulOptionsT()
    model = one_op_model("BATCH_MATMUL", [((2, 3), "int16", (0.1, 0), None), ((3, 2), "int16", (0.1, 0), None)],
                         ((2, 2), "int16", (0.1, 0)), o, S.BuiltinOptions.BatchMatMulOptions)
    assert "int8 x int8 -> int8" in refusal(model)
