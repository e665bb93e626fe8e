"""16x8 SOFTMAX (int16 -> int16, TFLite's SoftmaxInt16 with its exp and 1/(1+x) tables),
bit-exact with LiteRT BUILTIN_REF: a Keras classifier converted in 16x8 mode (a per-pixel
softmax and a dense head), on host and on the emulated Cortex-M4; one-op models at several
input scales and betas (a converted graph edited and written back, so that LiteRT runs the
edited model), one of them driven over inputs that reach every entry of both tables; the
tables in the template against LiteRT's generator in double; refusals of what Prepare refuses."""

import re
from pathlib import Path

import numpy as np
import pytest

from helpers import assert_bit_exact, convert_keras_int8
from tinyc.codegen.ops import check_op
from tinyc.codegen.ops.softmax_lut_s16 import MAX_DEPTH, input_rescale_s16, softmax_luts_s16
from tinyc.errors import UnsupportedError
from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph
from tinyc.ir import Graph, Op, QuantParams, Tensor

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
EVERY_INT16 = np.arange(-32768, 32768, dtype=np.int64)

# One-op layers: (input scale, beta, input shape without batch). The probe's scale makes a
# difference of one input step one exp-table step (10/65535), so that its rows reach every
# table entry; the rest: a converter-made scale (logits in +-20), other betas, a rank-4 input,
# long rows (sums up to 300 ones), rescales of 2^15 and 2^31 or more (the reference's int32
# left shift wraps: shift 16 and 33), one rounding to multiplier 0 (uniform output), a
# negative beta, one row of depth 1.
PROBE = (10 / 65535, 1.0, (65536, 4))
CASES = [PROBE, (20 / 32767, 1.0, (8, 10)), (1e-3, 0.5, (4, 37)), (2 / 32767, 3.0, (3, 4, 5)),
         (1.0, 1.0, (2, 300)), (8.0, 1.0, (4, 16)), (1.0, 1e6, (4, 16)), (1e-7, 1e-7, (1, 16)),
         (1e-3, -1.0, (4, 16)), (5e-4, 1.0, (3, 1))]


def _edited_model(rep_std: float = 3.0) -> bytes:
    """One input -> SOFTMAX per case, converted in 16x8, then each input's scale and each
    beta set to the case's."""
    import keras
    inputs = [keras.Input(shape, name=f"x{i}") for i, (_, _, shape) in enumerate(CASES)]
    rng = np.random.default_rng(0)
    reps = [rng.normal(0, rep_std, (2, *shape)).astype(np.float32) for _, _, shape in CASES]
    tfl = convert_keras_int8(keras.Model(inputs, [keras.layers.Softmax()(x) for x in inputs]), reps,
                             int16_activations=True)
    g = tflite_to_graph(tfl)
    ops = [op for op in g.ops if op.kind == "SOFTMAX"]
    assert len(ops) == len(CASES) == len(g.ops)
    for op, (scale, beta, shape) in zip(ops, CASES):
        x = g.tensors[op.inputs[0]]
        assert x.dtype == "int16" and tuple(x.shape[1:]) == shape and op.inputs[0] in g.inputs
        x.quant.scale = np.array([scale], np.float32)
        op.attrs["beta"] = beta
    return graph_to_tflite(g)


def _lookup(lut, v):
    """TFLite's LUTLookup (int16), for the probe's coverage only."""
    v = np.asarray(v, np.int64)
    index = 256 + (v >> 7)
    return lut[index] + (((lut[index + 1] - lut[index]) * (v & 0x7F) + 64) >> 7), index


def _probe_rows():
    """Three samples of 65536 rows [32767 x k, x, -32768 ...] (k = 1, 2, 3; x every int16):
    the differences x - 32767 reach every exp-table entry at every offset, and the sums
    E(0) k + E(x) + 2 (4 - k - 1) sweep [1, 4) E(0), every 1/(1+x) entry."""
    samples = []
    for k in (1, 2, 3):
        rows = np.full((65536, 4), -32768, np.int64)
        rows[:, :k] = 32767
        rows[:, k] = EVERY_INT16
        samples.append(rows.astype(np.int16))
    return samples


def test_probe_reaches_every_table_entry():
    exp_lut, recip_lut = softmax_luts_s16()
    assert input_rescale_s16(PROBE[1], PROBE[0]) == (1 << 30, 1)  # one input step is one table step
    exp_hit, recip_hit = set(), set()
    for rows in _probe_rows():
        e, index = _lookup(exp_lut, rows.astype(np.int64))  # d = x - 32767 recentred by + 32767: x
        exp_hit |= set(index.ravel().tolist())
        sums = e.sum(axis=1)
        headroom = 32 - np.floor(np.log2(sums)).astype(np.int64) - 1
        normalised = ((sums << (headroom - 1)) + (1 << 13)) >> 14
        recip_hit |= set(_lookup(recip_lut, np.minimum(normalised - 3 * 32768, 32767))[1].tolist())
    assert exp_hit == recip_hit == set(range(512))


def test_tables_in_template_are_litert_lut_populate_in_double():
    text = (TEMPLATES / "ops" / "softmax_luts_s16.c.j2").read_text()
    exp_lut, recip_lut = softmax_luts_s16()
    for name, lut in (("exp", exp_lut), ("one_over_one_plus_x", recip_lut)):
        body = re.search(rf"tinyc_softmax_{name}_lut_s16\[513\] = \{{([^}}]*)\}}", text).group(1)
        assert [int(v) for v in body.replace(",", " ").split()] == lut.tolist()
    assert exp_lut[0] == 2 and exp_lut[512] == 32767 and recip_lut[0] == 32767 and recip_lut[512] == 16384
    # Prepare builds them in double: in float the 1/(1+x) table differs at two entries, which
    # the probe reaches (the bit-exact run below tells the two apart)
    exp_f, recip_f = softmax_luts_s16(np.float32)
    assert np.array_equal(exp_f, exp_lut) and np.flatnonzero(recip_f != recip_lut).tolist() == [160, 294]


@pytest.fixture(scope="module")
def one_op_model():
    return _edited_model()


@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")  # the depth-1 case, on purpose
def test_softmax_16x8_scales_and_betas_bit_exact(one_op_model, tmp_path):
    g = tflite_to_graph(one_op_model)
    rescales = [input_rescale_s16(op.attrs["beta"], g.tensors[op.inputs[0]].quant.s) for op in g.ops]
    assert {shift for _, shift in rescales} >= {16, 33} and (0, 0) in rescales and min(m for m, _ in rescales) < 0
    shapes = [(1, *shape) for _, _, shape in CASES]
    rng = np.random.default_rng(1)

    def others(make):
        return [make(s) for s in shapes[1:]]

    probe = [[rows.reshape(shapes[0])] + others(lambda s: rng.integers(-32768, 32768, s).astype(np.int16))
             for rows in _probe_rows()]
    # rows near one value (small differences: the tables' fine steps), constant rows at both
    # ends (uniform output), one 32767 among -32768s (one-hot, the widest difference)
    near = [[np.clip(rng.integers(-32768, 32768) + rng.integers(-spread, spread + 1, s), -32768, 32767)
             .astype(np.int16) for s in shapes] for spread in (3, 40, 600)]
    flat = [[np.full(s, v, np.int16) for s in shapes] for v in (-32768, 32767)]

    def one_hot(s):
        a = np.full(s, -32768, np.int16)
        a[..., 0] = 32767
        return a
    assert_bit_exact(one_op_model, tmp_path, n_random=5, inputs=probe + near + flat + [[one_hot(s) for s in shapes]])


def _classifier():
    """A per-pixel softmax over 5 channels, another one over 6 feeding a 1x1 conv (the planner
    lays its output over its input), and a dense 10-way head on one small image."""
    import keras
    keras.utils.set_random_seed(5)
    L = keras.layers
    inp = keras.Input((6, 6, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu")(inp)
    pixels = L.Softmax()(L.Conv2D(5, 1)(h))
    mixed = L.Conv2D(3, 1)(L.Softmax()(L.Conv2D(6, 1)(h)))
    head = L.Softmax()(L.Dense(10)(L.Flatten()(L.MaxPooling2D(2)(h))))
    rep = np.random.default_rng(6).normal(0, 1.0, (32, 6, 6, 3)).astype(np.float32)
    return convert_keras_int8(keras.Model(inp, [pixels, mixed, head]), rep, int16_activations=True)


@pytest.fixture(scope="module")
def classifier():
    return _classifier()


def _saturating_inputs():
    """Inputs at both int16 ends and a checkerboard of them: logits far beyond the calibrated
    range, so exps clamp at the table's -10 and outputs at 0 and 32767."""
    alt = np.where(np.arange(108).reshape(1, 6, 6, 3) % 2 == 0, 32767, -32768).astype(np.int16)
    return [[np.full((1, 6, 6, 3), v, np.int16)] for v in (-32768, 32767)] + [[alt], [-alt - 1]]


def test_keras_classifier_16x8_bit_exact(classifier, tmp_path):
    g = tflite_to_graph(classifier)
    soft = [op for op in g.ops if op.kind == "SOFTMAX"]
    assert len(soft) == 3 and {g.tensors[t].dtype for op in soft for t in op.inputs + op.outputs} == {"int16"}
    result = assert_bit_exact(classifier, tmp_path, n_random=30, inputs=_saturating_inputs())
    over = [b["over"] for b in result["memory_plan"] if b["over"] and b["what"].endswith("Softmax")]
    assert over and over[0]["min_gap"] == 0  # the inner softmax ran with its output over its input


def test_keras_classifier_16x8_on_mps2(classifier, tmp_path):
    assert_bit_exact(classifier, tmp_path, n_random=5, inputs=_saturating_inputs(), board="mps2-an386")


def _q(scale, zp=0):
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64), 0)


def _softmax(in_q, out_q, shape=(1, 8), out_dtype="int16"):
    t = [Tensor("x", shape, "int16", in_q), Tensor("y", shape, out_dtype, out_q)]
    return Graph(t, [Op("SOFTMAX", [0], [1], {"beta": 1.0}, "softmax")], [0], [1], name="g")


@pytest.mark.parametrize("graph, needle", [
    (_softmax(_q(1e-3, 4), _q(2 ** -15)), "zero points 4 (input)"),          # Prepare: input zero point 0
    (_softmax(_q(1e-3), _q(2 ** -15, -32768)), "requires 0 for both"),        # ... and output zero point 0
    (_softmax(_q(1e-3), _q(2 ** -16)), "requires 1/32768"),                   # output scale 1/32768 (0.1%)
    (_softmax(_q(1e-3), _q(2 ** -15 * 1.002)), "requires 1/32768"),
    (_softmax(_q(1e-3), _q(1 / 256, -128), out_dtype="int8"), "writes int16"),
    (_softmax(_q(1e-3), _q(2 ** -15), shape=(1, MAX_DEPTH + 1)), "int32 sum"),
    (_softmax(_q(1e-3), _q(2 ** -15), shape=()), "rank >= 1"),
])
def test_16x8_softmax_refusals_name_the_reason(graph, needle):
    with pytest.raises(UnsupportedError, match=re.escape(needle)) as e:
        check_op(graph, 0)
    assert "\n" not in str(e.value)


def test_16x8_softmax_takes_an_output_scale_within_a_thousandth():
    check_op(_softmax(_q(1e-3), _q(2 ** -15 * 1.0009)), 0)
    check_op(_softmax(_q(1e-3), _q(2 ** -15), shape=(1, MAX_DEPTH)), 0)
