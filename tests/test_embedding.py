"""A Keras Embedding on an int32 model input, through `tinyc convert` from .keras.

Input(shape=(T,), dtype="int32") -> Embedding -> GlobalAveragePooling1D -> Dense converts to
LESS, ADD, SELECT (negative indices wrap) and a GATHER with run-time indices, then MEAN and
FULLY_CONNECTED. One conversion for the module (calibrated on integer samples); outputs are
compared byte for byte with LiteRT BUILTIN_REF on the host and once on mps2-an386. Random
inputs are drawn in [0, vocabulary) from the graph (tinyc.samples.input_ranges); the wrap is
exercised by negative indices given explicitly.
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as S
from click.testing import CliRunner
from helpers import assert_bit_exact
from test_ops_gather_matmul import one_op_model, refusal

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.outdir import load_manifest
from tinyc.quantize.calibration import check_samples
from tinyc.reference import Reference
from tinyc.runners import open_session
from tinyc.samples import from_record, index_bounds, input_ranges, random_inputs, to_record
from tinyc.validate import validate

VOCAB, STEPS, DIM, CLASSES = 40, 12, 8, 5


@pytest.fixture(scope="module")
def embedding_outdir(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(1)
    inp = keras.Input((STEPS,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, DIM)(inp)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(inp, keras.layers.Dense(CLASSES)(x))
    d = tmp_path_factory.mktemp("embedding")
    model.save(d / "kws_tokens.keras")
    np.save(d / "calib.npy", np.random.default_rng(0).integers(0, VOCAB, (48, STEPS)))   # int64, as numpy makes them
    res = CliRunner().invoke(main, ["convert", str(d / "kws_tokens.keras"), "-o", str(d / "out"),
                                    "--calib", str(d / "calib.npy")])
    assert res.exit_code == 0, res.output
    return d / "out"


def test_embedding_converts_to_index_ops_on_an_int32_input(embedding_outdir):
    graph = load_tflite(embedding_outdir / "model.tflite")
    assert [op.kind for op in graph.ops] == ["LESS", "ADD", "SELECT", "GATHER", "MEAN", "FULLY_CONNECTED"]
    gather = graph.ops[3]
    assert not graph.tensors[gather.inputs[1]].is_const and graph.tensors[gather.inputs[0]].dtype == "int8"
    (info,) = load_manifest(embedding_outdir).inputs
    assert (info.dtype, info.shape, info.bytes, info.scale, info.zero_point) == ("int32", [1, STEPS], 4 * STEPS,
                                                                                None, None)
    assert "int tinyc_invoke(const int32_t *input0" in (embedding_outdir / "model.h").read_text()
    assert input_ranges(graph) == [(0, VOCAB - 1)]
    assert index_bounds(graph) == {graph.inputs[0]: (-VOCAB, VOCAB)}   # negative indices wrap


def _samples(manifest, graph, n, seed):
    samples = random_inputs(manifest.inputs, n, seed=seed, ranges=input_ranges(graph))
    ids = np.stack([s[0] for s in samples])
    assert ids.min() >= 0 and ids.max() < VOCAB and len(np.unique(ids)) > VOCAB // 2
    edges = [np.full((1, STEPS), 0, np.int32), np.full((1, STEPS), VOCAB - 1, np.int32),
             -np.arange(1, STEPS + 1, dtype=np.int32).reshape(1, STEPS),              # wrapped: -1 .. -12
             np.linspace(-VOCAB, VOCAB - 1, STEPS).astype(np.int32).reshape(1, STEPS)]
    return [[e] for e in edges] + samples


def _validate(outdir, board_name: str, n_random: int, seed: int):
    manifest = load_manifest(outdir)
    board = load_board(board_name)
    build(outdir, board)
    return validate(outdir, board, _samples(manifest, load_tflite(outdir / "model.tflite"), n_random, seed),
                    manifest=manifest)


def test_embedding_bit_exact_on_host(embedding_outdir):
    s = _validate(embedding_outdir, "host", 60, seed=3)
    assert s.passed and s.samples == 64 and s.distinct_outputs > 1, (s.error, s.bit_exact, s.samples)


def test_embedding_bit_exact_on_mps2_an386(embedding_outdir):
    s = _validate(embedding_outdir, "mps2-an386", 6, seed=4)
    assert s.passed and s.samples == 10, (s.error, s.bit_exact, s.samples)


def test_out_of_range_index_reads_the_nearest_row(embedding_outdir):
    """The reference fails the inference on an index outside [-VOCAB, VOCAB); the C clamps it
    (after the wrap) into the table: the reference's output for the clamped indices."""
    manifest = load_manifest(embedding_outdir)
    ids = np.array([[VOCAB, VOCAB + 7, -VOCAB - 1, 2 ** 31 - 1, -2 ** 31, 3] + [5] * (STEPS - 6)], np.int32)
    wrapped = np.where(ids < 0, ids.astype(np.int64) + VOCAB, ids)
    ref = Reference(embedding_outdir / "model.tflite")
    with pytest.raises(Exception):
        ref.run(ids)
    expected = Reference(embedding_outdir / "model.tflite").run(np.clip(wrapped, 0, VOCAB - 1).astype(np.int32))[0]
    board = load_board("host")
    build(embedding_outdir, board)
    with open_session(board, embedding_outdir) as session:
        got = from_record(session.infer(to_record([ids])).output, manifest.outputs)[0]
    assert got.tobytes() == expected.tobytes()


def test_index_calibration_data_must_be_whole_numbers():
    x, warnings = check_samples(np.arange(24).reshape(2, 12), (1, 12), "calib.npy", integer=True)
    assert x.dtype == np.float32 and not warnings
    with pytest.raises(TinycError, match="not whole numbers below 2\\^24; the model input is int32"):
        check_samples(np.full((2, 12), 1.5), (1, 12), "calib.npy", integer=True)


# ---------------------------------------------------------------------------------------
# The index ops one by one: one-op .tflite files (no conversion), random int32 inputs over the
# whole range (sums wrap, as in the reference) plus the extremes


def _int32_extremes(shapes):
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    return [[np.full(s, v, np.int32) for s in shapes] for v in (lo, hi, -1, 0)]


@pytest.mark.parametrize("kind", ["LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL"])
def test_int32_comparison_bit_exact(kind, tmp_path):
    shapes = [(2, 1, 5), (3, 1)]                     # broadcast both ways -> (2, 3, 5)
    model = one_op_model(kind, [(shapes[0], "int32", None, None), (shapes[1], "int32", None, None)],
                         ((2, 3, 5), "bool", None))
    assert_bit_exact(model, tmp_path, n_random=20, inputs=_int32_extremes(shapes) + [
        [np.arange(10, dtype=np.int32).reshape(shapes[0]), np.full(shapes[1], 4, np.int32)]])   # equal ones too


@pytest.mark.parametrize("activation", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
def test_int32_add_bit_exact(activation, tmp_path):
    o = S.AddOptionsT()
    o.fusedActivationFunction = getattr(S.ActivationFunctionType, activation)
    model = one_op_model("ADD", [((1, 4, 3), "int32", None, None), ((3,), "int32", None, np.array([40, -7, 2 ** 30],
                                                                                               np.int32))],
                         ((1, 4, 3), "int32", None), o, S.BuiltinOptions.AddOptions)
    small = [[np.arange(-6, 6, dtype=np.int32).reshape(1, 4, 3)]]
    assert_bit_exact(model, tmp_path, n_random=20, inputs=_int32_extremes([(1, 4, 3)]) + small)


@pytest.mark.parametrize("kind, cond, x, y, dtype", [
    ("SELECT", (2, 3), (2, 3), (2, 3), "int32"),          # the Embedding's wrap: all one shape
    ("SELECT", (2,), (2, 3, 2), (2, 3, 2), "int8"),       # one choice per first-dim row (RankOneSelect)
    ("SELECT", (), (4, 2), (4, 2), "int16"),              # a scalar condition
    ("SELECT_V2", (3, 1), (1, 4), (3, 4), "int8"),        # all three broadcast
])
def test_select_bit_exact(kind, cond, x, y, dtype, tmp_path):
    out = np.broadcast_shapes(cond, x, y)
    q = None if dtype == "int32" else (0.1, 0)
    model = one_op_model(kind, [(cond, "bool", None, None), (x, dtype, q, None), (y, dtype, q, None)],
                         (out, dtype, q))
    assert_bit_exact(model, tmp_path, n_random=20)


def test_index_ops_refuse_what_they_do_not_compute():
    quantized = one_op_model("LESS", [((4,), "int8", (0.1, 0), None), ((4,), "int8", (0.1, 0), None)],
                             ((4,), "bool", None))
    assert "plain int32 inputs" in refusal(quantized)
    mixed = one_op_model("SELECT_V2", [((4,), "bool", None, None), ((4,), "int32", None, None),
                                       ((4,), "int8", (0.1, 0), None)], ((4,), "int32", None))
    assert "it takes one element type" in refusal(mixed)
    rows = one_op_model("SELECT", [((3,), "bool", None, None), ((2, 3), "int32", None, None),
                                   ((2, 3), "int32", None, None)], ((2, 3), "int32", None))
    assert "one per first-dim row" in refusal(rows)


def test_embedding_on_a_float_input_is_refused_in_one_line(tmp_path):
    """keras.Input's default dtype is float32: the converter casts it to indices after int8
    quantization rounded them. tinyc refuses that and names the fix."""
    import keras
    inp = keras.Input((STEPS,))
    model = keras.Model(inp, keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, DIM)(inp)))
    model.save(tmp_path / "float_ids.keras")
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "float_ids.keras"), "-o", str(tmp_path / "out"),
                                    "--calib-random", "8"])
    assert res.exit_code != 0 and not (tmp_path / "out").exists()
    (line,) = [l for l in res.stderr.splitlines() if l.startswith("tinyc: error")]
    assert "(CAST) turns a float tensor into int32 indices" in line and 'dtype="int32"' in line


def test_calibration_indices_off_the_table_are_refused(embedding_outdir, tmp_path):
    np.save(tmp_path / "ids.npy", np.full((4, STEPS), VOCAB))
    res = CliRunner().invoke(main, ["convert", str(embedding_outdir.parent / "kws_tokens.keras"), "-o",
                                    str(tmp_path / "out"), "--calib", str(tmp_path / "ids.npy")])
    assert res.exit_code != 0 and not (tmp_path / "out").exists()
    assert f"outside the [-{VOCAB}, {VOCAB}) that the model's {VOCAB}-row table takes" in res.stderr


def test_16x8_on_an_int32_input_is_refused_in_one_line(embedding_outdir, tmp_path):
    res = CliRunner().invoke(main, ["convert", str(embedding_outdir.parent / "kws_tokens.keras"), "-o",
                                    str(tmp_path / "out"), "--calib-random", "4", "--precision", "16x8"])
    assert res.exit_code != 0 and not (tmp_path / "out").exists()
    assert "fails on an int32 model input" in res.stderr and "use int8" in res.stderr


def test_cli_takes_integer_npy_and_refuses_indices_off_the_table(embedding_outdir, tmp_path):
    ids = np.random.default_rng(6).integers(-VOCAB, VOCAB, (3, STEPS))          # int64, numpy's default
    np.save(tmp_path / "ids.npy", ids)
    res = CliRunner().invoke(main, ["run", str(embedding_outdir), "--input", str(tmp_path / "ids.npy"),
                                    "--output", str(tmp_path / "out.npy")])
    assert res.exit_code == 0, res.output
    expected = [Reference(embedding_outdir / "model.tflite").run(row.reshape(1, STEPS).astype(np.int32))[0]
                for row in ids]
    assert np.load(tmp_path / "out.npy").tobytes() == np.stack(expected).tobytes()
    np.save(tmp_path / "far.npy", np.full((2, STEPS), VOCAB))
    res = CliRunner().invoke(main, ["validate", str(embedding_outdir), "--input", str(tmp_path / "far.npy")])
    assert res.exit_code != 0
    assert f"holds index {VOCAB}, outside [-{VOCAB}, {VOCAB}) of the {VOCAB}-row table" in res.stderr
