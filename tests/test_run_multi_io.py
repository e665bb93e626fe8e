"""`tinyc run` and `tinyc validate` on a model with two inputs and two outputs: inputs from one
.npz (an array per input name) or one --input per input, outputs to an .npz per output name."""

import subprocess
import sys

import numpy as np
import pytest

from helpers import convert_keras_int8

TINYC = [sys.executable, "-m", "tinyc.cli"]


def tinyc(*args):
    return subprocess.run([*TINYC, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_io(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(0)
    a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    h = keras.layers.Dense(5)(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], [keras.layers.Dense(3)(h), keras.layers.Dense(2, activation="relu")(h)])
    rng = np.random.default_rng(0)
    tfl = convert_keras_int8(model, [rng.normal(size=(32, 6)), rng.normal(size=(32, 4))])
    root = tmp_path_factory.mktemp("two_io")
    (root / "m.tflite").write_bytes(tfl)
    proc = tinyc("convert", root / "m.tflite", "-o", root / "out")
    assert proc.returncode == 0, proc.stderr
    return root


def _manifest(out):
    from tinyc.outdir import load_manifest
    return load_manifest(out)


def test_run_npz_in_npz_out_equals_reference(two_io, tmp_path):
    from tinyc.reference import Reference
    m = _manifest(two_io / "out")
    assert len(m.inputs) == 2 and len(m.outputs) == 2
    rng = np.random.default_rng(1)
    xs = {t.name: rng.integers(-128, 128, size=(5, *t.shape[1:]), dtype=np.int8) for t in m.inputs}
    np.savez(tmp_path / "x.npz", **xs)
    proc = tinyc("run", two_io / "out", "--input", tmp_path / "x.npz", "--output", tmp_path / "y.npz")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "y.npz") as y:
        got = {k: y[k] for k in y.files}
    assert list(got) == [t.name for t in m.outputs]
    ref = Reference(two_io / "out" / "model.tflite")
    for i in range(5):
        expected = ref.run(*[xs[t.name][i][None] for t in m.inputs])
        for t, e in zip(m.outputs, expected):
            assert np.array_equal(got[t.name][i], e)  # [N, *output_shape]
    # the same samples as one .npy per input, in input order
    for k, t in enumerate(m.inputs):
        np.save(tmp_path / f"x{k}.npy", xs[t.name])
    proc = tinyc("run", two_io / "out", "--input", tmp_path / "x0.npy", "--input", tmp_path / "x1.npy",
                 "--output", tmp_path / "y2.npz")
    assert proc.returncode == 0, proc.stderr
    with np.load(tmp_path / "y2.npz") as y2:
        assert all(np.array_equal(y2[k], got[k]) for k in got)


def test_validate_takes_npz(two_io, tmp_path):
    m = _manifest(two_io / "out")
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "x.npz", **{f"input{k}": rng.integers(-128, 128, size=(4, *t.shape[1:]), dtype=np.int8)
                                    for k, t in enumerate(m.inputs)})
    proc = tinyc("validate", two_io / "out", "--input", tmp_path / "x.npz")
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact      4/4" in proc.stdout


def test_several_outputs_need_npz_and_inputs_must_match(two_io, tmp_path):
    m = _manifest(two_io / "out")
    np.save(tmp_path / "x0.npy", np.zeros((3, *m.inputs[0].shape[1:]), np.int8))
    proc = tinyc("run", two_io / "out", "--input", tmp_path / "x0.npy", "--output", tmp_path / "y.npz")
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
    assert "2 inputs" in proc.stderr and "Traceback" not in proc.stderr
    np.save(tmp_path / "x1.npy", np.zeros((3, *m.inputs[1].shape[1:]), np.int8))
    proc = tinyc("run", two_io / "out", "--input", tmp_path / "x0.npy", "--input", tmp_path / "x1.npy",
                 "--output", tmp_path / "y.npy")
    assert proc.returncode != 0 and ".npz" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "y.npy").exists()
