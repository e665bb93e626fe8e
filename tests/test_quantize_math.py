"""tinyc/quant_math.py against numbers the TFLite converter and LiteRT produce.

Expected values come from TensorFlow's calibrator + MLIR quantizer (scales, zero points,
int8 weights, int32 biases of real converted models), from LiteRT BUILTIN_REF running
QUANTIZE / DEQUANTIZE ops, or from exact rational arithmetic; never from tinyc itself.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from digits_cnn import digits_assets
from tinyc.frontend import tflite as tfl
from tinyc.quantize import float_tflite as ft
from tinyc import quant_math as Q

RANGE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MEAN")


def _rep(samples):
    def gen():
        for k in range(len(samples)):
            yield [samples[k:k + 1]]
    return gen


def _buf(model, t, dtype):
    return np.frombuffer(bytes(model.buffers[t.buffer].data), dtype=dtype).reshape(list(t.shape))


def _ad01_windows(mlperf_dir, count=64):
    raw = np.fromfile(mlperf_dir / "test_data" / "ad01_normal_id_01_00000000_hist_librosa.bin", dtype="<f4")
    frames = raw.reshape(200, 128)
    return np.stack([frames[i:i + 5].reshape(640) for i in range(0, 196)])[:count].astype(np.float32)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, mlperf_dir):
    """(float bytes, calibration ranges, int8 bytes) for several models and settings."""
    a = digits_assets(tmp_path_factory)
    calib = np.load(a.calib_npy)[:100]
    digits_f = a.float_tflite.read_bytes()
    ad01_f = (mlperf_dir / "ad01_fp32.tflite").read_bytes()
    windows = _ad01_windows(mlperf_dir)
    cases = {}
    for name, fbytes, data in (("digits", digits_f, calib), ("ad01", ad01_f, windows)):
        ranges = ft.calibration_ranges(fbytes, _rep(data))
        for per_tensor in (False, True):
            q = ft.quantize_float_tflite(fbytes, _rep(data), per_tensor=per_tensor)
            cases[(name, per_tensor)] = (fbytes, ranges, q)
    return cases


def _pairs(fbytes, qbytes):
    """(float op, int8 op) pairs of the compute ops, and the two models."""
    fm, qm = tfl.parse_model(fbytes), tfl.parse_model(qbytes)
    fops = [o for o in fm.subgraphs[0].operators]
    qops = [o for o in qm.subgraphs[0].operators if tfl.op_name(qm, o) not in ("QUANTIZE", "DEQUANTIZE")]
    assert [tfl.op_name(fm, o) for o in fops] == [tfl.op_name(qm, o) for o in qops]
    return fm, qm, list(zip(fops, qops))


@pytest.mark.parametrize("name", ["digits", "ad01"])
def test_activation_scale_and_zero_point_match_converter(converted, name):
    fbytes, ranges, qbytes = converted[(name, False)]
    fm, qm, pairs = _pairs(fbytes, qbytes)
    g = qm.subgraphs[0]
    checked = 0
    for _, qop in pairs:
        kind = tfl.op_name(qm, qop)
        if kind not in RANGE_OPS:
            continue
        t = g.tensors[qop.outputs[0]]
        rmin, rmax = ranges[tfl.tensor_name(t)]
        scale, zp = Q.choose_qparams(rmin, rmax)
        assert np.float32(scale) == np.float32(t.quantization.scale[0]), (kind, tfl.tensor_name(t))
        assert zp == int(t.quantization.zeroPoint[0]), (kind, tfl.tensor_name(t))
        checked += 1
    # the model input too
    tin = g.tensors[g.inputs[0]]
    fin = fm.subgraphs[0].tensors[fm.subgraphs[0].inputs[0]]
    scale, zp = Q.choose_qparams(*ranges[tfl.tensor_name(fin)])
    assert (np.float32(scale), zp) == (np.float32(tin.quantization.scale[0]), int(tin.quantization.zeroPoint[0]))
    assert checked >= 5


@pytest.mark.parametrize("name,per_tensor", [("digits", False), ("digits", True), ("ad01", False), ("ad01", True)])
def test_weights_and_bias_match_converter(converted, name, per_tensor):
    fbytes, _, qbytes = converted[(name, per_tensor)]
    fm, qm, pairs = _pairs(fbytes, qbytes)
    fg, qg = fm.subgraphs[0], qm.subgraphs[0]
    checked = 0
    for fop, qop in pairs:
        kind = tfl.op_name(qm, qop)
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        wt = qg.tensors[qop.inputs[1]]
        wf = _buf(fm, fg.tensors[fop.inputs[1]], np.float32)
        wq = _buf(qm, wt, np.int8)
        qa = wt.quantization
        axis = int(qa.quantizedDimension) if len(qa.scale) > 1 else None
        assert (axis is None) == per_tensor
        scales = Q.symmetric_weight_scales(wf, axis)
        np.testing.assert_array_equal(scales, np.asarray(qa.scale, dtype=np.float32))
        np.testing.assert_array_equal(Q.quantize_weights_symmetric(wf, scales, axis), wq)
        assert not np.any(np.asarray(qa.zeroPoint))
        if len(fop.inputs) > 2 and fop.inputs[2] >= 0:
            bt = qg.tensors[qop.inputs[2]]
            in_scale = float(qg.tensors[qop.inputs[0]].quantization.scale[0])
            np.testing.assert_array_equal(Q.bias_scales(in_scale, qa.scale), np.asarray(bt.quantization.scale, np.float32))
            np.testing.assert_array_equal(
                Q.quantize_bias(_buf(fm, fg.tensors[fop.inputs[2]], np.float32), in_scale, qa.scale),
                _buf(qm, bt, np.int32))
        checked += 1
    assert checked >= (5 if name == "digits" else 10)


def test_choose_qparams_properties():
    # [0, 1] is the classic 1/255, -128; a range that holds 0 represents 0 exactly
    assert Q.choose_qparams(0.0, 1.0) == (float(np.float32(1 / 255)), -128)
    for lo, hi in [(-1.3, 2.7), (-5.0, 0.5), (-0.01, 100.0)]:
        s, zp = Q.choose_qparams(lo, hi)
        assert -128 <= zp <= 127
        assert abs(s * (-128 - zp) - lo) <= s and abs(s * (127 - zp) - hi) <= s
    # a degenerate range is widened to 1e-6 instead of dividing by zero
    s, zp = Q.choose_qparams(0.0, 0.0)
    assert s == pytest.approx(1e-6 / 255, rel=1e-6) and zp in (-1, 0)


def test_quantize_multiplier_exact():
    """q * 2^(shift-31) is the real multiplier rounded to 31 bits, checked in exact rationals."""
    rng = np.random.default_rng(1)
    for real in list(rng.uniform(1e-6, 4.0, 300)) + [0.5, 0.25, 1.0, 2.0 ** -20, 0.999999999]:
        q, shift = Q.quantize_multiplier(float(real))
        assert (1 << 30) <= q < (1 << 31)
        exact = Fraction(float(real)) * Fraction(2) ** (31 - shift)
        assert abs(Fraction(q) - exact) <= Fraction(1, 2)


def _edge_model(io_float_bytes):
    it = Interpreter(model_content=io_float_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def test_quantize_and_dequantize_arrays_match_litert_ops(converted):
    """QUANTIZE and DEQUANTIZE ops of a float-I/O model, run by BUILTIN_REF, on inputs that
    include exact halfway points."""
    fbytes, _, _ = converted[("digits", False)]
    a_calib = np.linspace(0, 1, 64 * 8 * 8, dtype=np.float32).reshape(64, 8, 8, 1)
    qbytes = ft.quantize_float_tflite(fbytes, _rep(a_calib), io="float")
    qm = tfl.parse_model(qbytes)
    g = qm.subgraphs[0]
    names = [tfl.op_name(qm, o) for o in g.operators]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    qop, dqop = g.operators[0], g.operators[-1]
    qt = g.tensors[qop.outputs[0]]
    scale, zp = float(qt.quantization.scale[0]), int(qt.quantization.zeroPoint[0])
    it = _edge_model(qbytes)
    rng = np.random.default_rng(0)
    for k in range(20):
        x = rng.uniform(-0.2, 1.2, (1, 8, 8, 1)).astype(np.float32)
        x.flat[:8] = (np.arange(8) - 3.5).astype(np.float32) * np.float32(scale)  # halfway cases
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        np.testing.assert_array_equal(Q.quantize_array(x, scale, zp), it.get_tensor(qop.outputs[0]))
        dq_in = it.get_tensor(dqop.inputs[0])
        dqt = g.tensors[dqop.inputs[0]]
        np.testing.assert_array_equal(
            Q.dequantize_array(dq_in, dqt.quantization.scale, dqt.quantization.zeroPoint),
            it.get_tensor(it.get_output_details()[0]["index"]))
