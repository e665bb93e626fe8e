"""CONV_2D and DEPTHWISE_CONV_2D: generated C bit-exact with LiteRT BUILTIN_REF.

Each module fixture is one small Keras model with several parallel branches (one model
output per variant), converted once by TensorFlow's converter. A mismatch names the
variant: the failure message lists every output with its op's attributes.
Variants without a Keras spelling (no bias, batch 2, a dilated depthwise the converter
leaves unfused) are made by editing the converted graph and writing it back as .tflite; the
reference runs the edited model. The kernels' fallback loop is forced by patching the lowering.
"""

import keras
import numpy as np
import pytest

from helpers import assert_bit_exact, convert_keras_int8
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.errors import TinycError, UnsupportedError
from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph
from tinyc.codegen.ops import check_op
from tinyc.convert import convert_graph
from tinyc.reference import Reference
from tinyc.runners import open_session
from tinyc.samples import from_record, random_inputs, to_record

L = keras.layers


def describe_outputs(tflite: bytes) -> str:
    """'output k: CONV_2D 3x3 stride .. ' for every model output, to locate a failing variant."""
    g = tflite_to_graph(tflite)
    producers = g.producers()
    lines = []
    for k, t in enumerate(g.outputs):
        op = g.ops[producers[t]]
        w = g.tensors[op.inputs[1]] if len(op.inputs) > 1 else None
        a = op.attrs
        lines.append(
            f"output {k}: {op.kind} filter {list(w.shape) if w is not None else '?'} "
            f"stride {a.get('stride_h')}x{a.get('stride_w')} dilation {a.get('dilation_h')}x{a.get('dilation_w')} "
            f"{a.get('padding')} {a.get('activation')} bias={len(op.inputs) > 2 and op.inputs[2] >= 0} "
            f"in {list(g.tensors[op.inputs[0]].shape)} out {list(g.tensors[t].shape)}")
    return "\n".join(lines)


def bit_exact(tflite: bytes, tmp_path, n_random: int = 100, board: str = "host", optimize: str = "balanced") -> dict:
    try:
        return assert_bit_exact(tflite, tmp_path, n_random=n_random, board=board, optimize=optimize)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nthe outputs are:\n{describe_outputs(tflite)}") from None


def _rep(shape, lo, hi, seed, n=32):
    return np.random.default_rng(seed).uniform(lo, hi, (n, *shape)).astype(np.float32)


def _build(inputs_shape, branches, seed):
    keras.utils.set_random_seed(seed)
    inp = keras.Input(inputs_shape, batch_size=1)
    return keras.Model(inp, [f(inp) for f in branches])


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def conv_tflite():
    """CONV_2D variants on a 7x6x3 input (odd sizes: SAME pads unevenly), per-channel weights."""
    branches = [
        lambda x: L.Conv2D(4, 3, padding="same", activation="relu", name="same3_relu")(x),
        lambda x: L.Conv2D(5, (3, 2), strides=2, padding="same", name="s2_k32")(x),
        lambda x: L.Conv2D(4, 3, strides=(2, 1), padding="valid", activation="relu6", name="valid_s21_relu6")(x),
        lambda x: L.Conv2D(3, 2, dilation_rate=2, padding="same", name="dil2_k2")(x),
        lambda x: L.Conv2D(3, 2, dilation_rate=(3, 2), padding="valid", name="dil32_valid")(x),
        lambda x: L.Conv2D(6, 1, name="pointwise")(x),
        lambda x: L.Conv2D(6, 3, groups=3, padding="same", name="groups3")(x),
        lambda x: L.Conv2D(4, 4, strides=3, padding="same", name="k4_s3")(x),
        lambda x: keras.ops.clip(L.Conv2D(4, 3, padding="same", name="relu_n1_to_1")(x), -1.0, 1.0),
    ]
    model = _build((7, 6, 3), branches, seed=1)
    return convert_keras_int8(model, _rep((7, 6, 3), -1.0, 3.0, seed=1))


@pytest.fixture(scope="module")
def depthwise_tflite():
    """DEPTHWISE_CONV_2D variants on a 6x7x4 input, per-channel weights."""
    branches = [
        lambda x: L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw_same_relu")(x),
        lambda x: L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid", name="dw_dm2_valid")(x),
        lambda x: L.DepthwiseConv2D((2, 3), dilation_rate=2, padding="same", activation="relu6", name="dw_dil")(x),
        lambda x: L.DepthwiseConv2D(5, strides=2, padding="same", name="dw_k5_s2")(x),
        lambda x: L.DepthwiseConv2D(3, strides=3, depth_multiplier=3, padding="same", name="dw_dm3_s3")(x),
        lambda x: L.DepthwiseConv2D((3, 1), strides=(1, 2), padding="valid", name="dw_k31_s12")(x),
        lambda x: keras.ops.clip(L.DepthwiseConv2D(3, padding="same", name="dw_n1to1")(x), -1.0, 1.0),
    ]
    model = _build((6, 7, 4), branches, seed=2)
    return convert_keras_int8(model, _rep((6, 7, 4), -2.0, 1.0, seed=2))


@pytest.fixture(scope="module")
def edge_tflite():
    """Windows that are all border or even empty: a 2x2x3 input, filters as large as it or larger."""
    branches = [
        lambda x: L.Conv2D(4, 2, dilation_rate=3, padding="same", name="empty_windows")(x),
        lambda x: L.Conv2D(3, 2, padding="valid", name="whole_input")(x),
        lambda x: L.Conv2D(2, 5, strides=2, padding="same", name="k5_on_2x2")(x),
        lambda x: L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw_k3_on_2x2")(x),
    ]
    model = _build((2, 2, 3), branches, seed=3)
    return convert_keras_int8(model, _rep((2, 2, 3), 0.0, 1.0, seed=3))


@pytest.fixture(scope="module")
def deep_tflite():
    """More channels (10 in: unrolled dot products with a remainder) and a chain of layers."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((5, 4, 10), batch_size=1)
    a = L.Conv2D(8, 3, padding="same", activation="relu", name="c3x3_10to8")(inp)
    b = L.Conv2D(6, 3, strides=2, groups=2, padding="same", name="groups2_s2")(inp)
    c = L.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw_chain")(a)
    d = L.Conv2D(5, 1, name="pw_chain")(c)
    model = keras.Model(inp, [a, b, d])
    return convert_keras_int8(model, _rep((5, 4, 10), -3.0, 3.0, seed=4))


@pytest.fixture(scope="module")
def valid_only_tflite():
    """No window ever leaves the image (VALID, 1x1): the kernels get no border scratch; the
    compiler then sees the border code with a NULL window and must still compile it cleanly."""
    keras.utils.set_random_seed(6)
    inp = keras.Input((6, 6, 5), batch_size=1)
    a = L.Conv2D(6, 3, padding="valid", activation="relu", name="v_conv")(inp)
    b = L.DepthwiseConv2D(3, padding="valid", name="v_dw")(a)
    c = L.Conv2D(3, 1, name="v_pw")(b)
    model = keras.Model(inp, c)
    return convert_keras_int8(model, _rep((6, 6, 5), -1.0, 2.0, seed=6))


@pytest.fixture(scope="module")
def per_tensor_tflite():
    """Per-tensor weights (converter's _experimental_disable_per_channel): conv -> dw -> conv."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((6, 5, 3), batch_size=1)
    a = L.Conv2D(6, 3, padding="same", activation="relu", name="pt_conv")(inp)
    b = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same", name="pt_dw")(a)
    c = L.Conv2D(4, 2, dilation_rate=2, padding="valid", activation="relu6", name="pt_conv_dil")(b)
    d = L.Conv2D(6, 3, groups=3, padding="valid", name="pt_groups")(inp)
    model = keras.Model(inp, [c, d])
    return convert_keras_int8(model, _rep((6, 5, 3), -1.0, 1.0, seed=5), per_tensor=True)


def _conv_ops(g):
    return [op for op in g.ops if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]


# ------------------------------------------------------------------------------ bit-exact

def test_conv_2d_variants_bit_exact(conv_tflite, tmp_path):
    g = tflite_to_graph(conv_tflite)
    ops = _conv_ops(g)
    # The model holds what it claims: 9 convolutions, one of them grouped, every activation.
    assert len(ops) == 9 and all(op.kind == "CONV_2D" for op in ops)
    assert {op.attrs["activation"] for op in ops} == {"NONE", "RELU", "RELU6", "RELU_N1_TO_1"}
    assert any(g.tensors[op.inputs[1]].shape[3] < g.tensors[op.inputs[0]].shape[3] for op in ops)
    assert all(g.tensors[op.inputs[1]].quant.scale.size == g.tensors[op.inputs[1]].shape[0] for op in ops)
    bit_exact(conv_tflite, tmp_path)


def test_depthwise_conv_2d_variants_bit_exact(depthwise_tflite, tmp_path):
    g = tflite_to_graph(depthwise_tflite)
    ops = _conv_ops(g)
    assert len(ops) == 7 and all(op.kind == "DEPTHWISE_CONV_2D" for op in ops)
    multipliers = {g.tensors[op.inputs[1]].shape[3] // g.tensors[op.inputs[0]].shape[3] for op in ops}
    assert multipliers == {1, 2, 3}
    bit_exact(depthwise_tflite, tmp_path)


def test_border_and_empty_windows_bit_exact(edge_tflite, tmp_path):
    bit_exact(edge_tflite, tmp_path)


def test_depthwise_empty_windows_bit_exact(edge_tflite, tmp_path):
    """The converter leaves a dilated depthwise on a 2x2 input as SPACE_TO_BATCH_ND etc.;
    set dilation 3 on the 3x3 one instead (SAME: the output size does not change), so that
    some windows hold no tap inside the image at all."""
    g = tflite_to_graph(edge_tflite)
    dw = [op for op in g.ops if op.kind == "DEPTHWISE_CONV_2D"]
    assert len(dw) == 1 and dw[0].attrs["padding"] == "SAME"
    dw[0].attrs["dilation_h"] = dw[0].attrs["dilation_w"] = 3
    bit_exact(graph_to_tflite(g), tmp_path)


def test_deep_and_chained_bit_exact(deep_tflite, tmp_path):
    bit_exact(deep_tflite, tmp_path)


def test_valid_only_bit_exact(valid_only_tflite, tmp_path):
    manifest = bit_exact(valid_only_tflite, tmp_path / "host")
    # balanced on the host (avx2): the vector-core kernels (im2col scratch)
    assert "tinyc_conv_2d_simd_s8" in (manifest["outdir"] / "model.c").read_text()
    # balanced laid out for a Cortex-M (dsp), run here: the specialised kernels' im2col / row-plane scratch
    manifest = assert_bit_exact(valid_only_tflite, tmp_path / "m4", n_random=20, generate_for="mps2-an386")
    assert "tinyc_conv_2d_gemm_s8" in (manifest["outdir"] / "model.c").read_text()
    manifest = bit_exact(valid_only_tflite, tmp_path / "size", optimize="size")
    # size, shared kernels: no scratch, every intermediate byte of the arena is a tensor (4x4x6 and 2x2x6)
    assert manifest["arena_bytes"] <= 4 * 4 * 6 + 2 * 2 * 6 + 16


def test_per_tensor_weights_bit_exact(per_tensor_tflite, tmp_path):
    g = tflite_to_graph(per_tensor_tflite)
    ops = _conv_ops(g)
    assert len(ops) == 4
    assert all(g.tensors[op.inputs[1]].quant.scale.size == 1 for op in ops), "weights are not per-tensor"
    bit_exact(per_tensor_tflite, tmp_path)


def test_cortex_m4_dsp_kernels_bit_exact(conv_tflite, deep_tflite, per_tensor_tflite, tmp_path):
    """On mps2-an386 (Cortex-M4, QEMU) the CONV_2D dot products take the SXTB16/SMLAD path."""
    for name, tfl in (("conv", conv_tflite), ("deep", deep_tflite), ("per_tensor", per_tensor_tflite)):
        manifest = bit_exact(tfl, tmp_path / name, n_random=20, board="mps2-an386")
        assert manifest["board"] == "mps2-an386"


def test_depthwise_without_bias_bit_exact(depthwise_tflite, tmp_path):
    """The converter always adds a bias; TFLite's bias input is optional: drop it."""
    g = tflite_to_graph(depthwise_tflite)
    for op in _conv_ops(g):
        op.inputs = op.inputs[:2]
    edited = graph_to_tflite(g)
    assert all(len(op.inputs) == 2 for op in _conv_ops(tflite_to_graph(edited)))
    bit_exact(edited, tmp_path)


def test_conv_2d_without_bias_equals_zero_bias(conv_tflite, tmp_path):
    """LiteRT 2.3's CONV_2D refuses a missing bias (conv.cc: has_bias), TFLM accepts it; tinyc
    compiles it as a zero bias: compare with BUILTIN_REF on the model with explicit zero biases."""
    g = tflite_to_graph(conv_tflite)
    for op in _conv_ops(g):
        g.tensors[op.inputs[2]].data = np.zeros_like(g.tensors[op.inputs[2]].data)
    reference = Reference(graph_to_tflite(g))
    for op in _conv_ops(g):
        op.inputs = op.inputs[:2]
    outdir = tmp_path / "out"
    manifest = convert_graph(g, outdir).manifest
    board = load_board("host")
    build(outdir, board)
    samples = random_inputs(manifest.inputs, 100, seed=1)
    with open_session(board, outdir) as session:
        for i, sample in enumerate(samples):
            got = from_record(session.infer(to_record(sample)).output, manifest.outputs)
            for k, (a, e) in enumerate(zip(got, reference.run(*sample))):
                assert np.array_equal(a, e), f"sample {i} output {k} differs\n{describe_outputs(conv_tflite)}"


def test_batch_of_two_bit_exact(deep_tflite, edge_tflite, tmp_path):
    """Batch > 1 (the converter fixes batch 1): every activation tensor gets batch 2."""
    for name, tfl in (("deep", deep_tflite), ("edge", edge_tflite)):
        g = tflite_to_graph(tfl)
        for t in g.tensors:
            if not t.is_const and len(t.shape) == 4:
                t.shape = (2, *t.shape[1:])
        edited = graph_to_tflite(g)
        assert Reference(edited).inputs[0]["shape"][0] == 2
        bit_exact(edited, tmp_path / name)


def test_reference_formula_path_bit_exact(conv_tflite, depthwise_tflite, tmp_path, monkeypatch):
    """The shared kernels' fallback (no folded input offset, as when it would overflow int32);
    the shared kernels run under --optimize size and where the specialised ones do not apply."""
    import tinyc.codegen.ops.conv as conv

    monkeypatch.setattr(conv, "_acc_init", lambda *args, **kwargs: None)
    for name, tfl in (("conv", conv_tflite), ("dw", depthwise_tflite)):
        manifest = bit_exact(tfl, tmp_path / name, optimize="size")
        assert "acc_init" not in (manifest["outdir"] / "weights.c").read_text()


# ------------------------------------------------------------------------------ independent math

@pytest.mark.parametrize("padding,image,filt,stride,dilation,out,pad", [
    ("SAME", 7, 3, 1, 1, 7, 1),
    ("SAME", 6, 2, 2, 1, 3, 0),    # total 0
    ("SAME", 7, 4, 3, 1, 3, 1),    # total 3: 1 before, 2 after (the odd offset)
    ("SAME", 6, 2, 1, 3, 6, 1),    # effective filter 4, total 3
    ("VALID", 7, 3, 2, 1, 3, 0),
    ("VALID", 7, 2, 1, 3, 4, 0),
])
def test_padding_matches_tensorflow_definition(padding, image, filt, stride, dilation, out, pad):
    """Output size and padding by TensorFlow's documented formulas (worked by hand)."""
    from tinyc.codegen.ops.conv import compute_out_size, compute_padding

    assert compute_out_size(padding, image, filt, stride, dilation) == out
    assert compute_padding(stride, dilation, image, filt, out)[0] == pad


# ------------------------------------------------------------------------------ unsupported

def _graph_with_first_conv(tfl):
    g = tflite_to_graph(tfl)
    return g, next(i for i, op in enumerate(g.ops) if op.kind == "CONV_2D")


def test_unsupported_fused_activation(conv_tflite):
    g, i = _graph_with_first_conv(conv_tflite)
    g.ops[i].attrs["activation"] = "TANH"
    with pytest.raises(UnsupportedError, match=r"CONV_2D '.+' has fused activation TANH"):
        check_op(g, i)


def test_unsupported_int16_activations(depthwise_tflite):
    g = tflite_to_graph(depthwise_tflite)
    i = next(i for i, op in enumerate(g.ops) if op.kind == "DEPTHWISE_CONV_2D")
    g.tensors[g.ops[i].inputs[0]].dtype = "int16"
    with pytest.raises(UnsupportedError, match=r"DEPTHWISE_CONV_2D '.+' has int16 input.*full int8"):
        check_op(g, i)


def test_unsupported_asymmetric_filter(conv_tflite):
    g, i = _graph_with_first_conv(conv_tflite)
    w = g.tensors[g.ops[i].inputs[1]]
    w.quant.zero_point = np.ones_like(w.quant.zero_point)
    with pytest.raises(UnsupportedError, match="filter zero points other than 0"):
        check_op(g, i)


def test_unsupported_group_split(conv_tflite):
    """Input channels must be a multiple of the filter's (TFLite's grouped convolution)."""
    g, i = _graph_with_first_conv(conv_tflite)
    w = g.tensors[g.ops[i].inputs[1]]
    w.shape = (*w.shape[:3], 2)  # 3 input channels, filter over 2
    w.data = np.zeros(w.shape, dtype=np.int8)
    with pytest.raises(UnsupportedError, match="grouped convolution needs input channels divisible"):
        check_op(g, i)


def test_inconsistent_output_shape(conv_tflite):
    g, i = _graph_with_first_conv(conv_tflite)
    y = g.tensors[g.ops[i].outputs[0]]
    y.shape = (1, y.shape[1] + 1, *y.shape[2:])
    with pytest.raises(TinycError, match="disagrees with"):
        check_op(g, i)
