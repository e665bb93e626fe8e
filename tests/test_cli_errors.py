"""Bad input gets one clear line on stderr, a non-zero exit, no traceback, and leaves no
half-written OUTDIR behind."""

import subprocess
import sys

import numpy as np
import pytest

from tinyc.frontend.tflite import graph_to_tflite, load_tflite, parse_model

TINYC = [sys.executable, "-m", "tinyc.cli"]


def tinyc(*args, cwd=None):
    return subprocess.run([*TINYC, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.strip() and not l.lstrip().startswith("[")]
    assert len(lines) == 1, err
    assert lines[0].startswith("tinyc: error: "), err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


def test_not_a_flatbuffer(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"this is not a model at all" * 10)
    proc = tinyc("convert", bad, "-o", tmp_path / "out")
    assert_one_line_error(proc, "not a TFLite flatbuffer")
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_truncated_file(tmp_path, mlperf_dir):
    data = (mlperf_dir / "kws_ref_model.tflite").read_bytes()
    for cut in (len(data) // 2, 600, 40):
        bad = tmp_path / f"cut{cut}.tflite"
        bad.write_bytes(data[:cut])
        proc = tinyc("convert", bad, "-o", tmp_path / "out")
        assert_one_line_error(proc, "truncated")
        assert not (tmp_path / "out").exists()


def test_several_subgraphs(tmp_path, mlperf_dir):
    import flatbuffers

    model = parse_model((mlperf_dir / "ad01_int8.tflite").read_bytes())
    model.subgraphs = [model.subgraphs[0], model.subgraphs[0]]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "two.tflite"
    path.write_bytes(bytes(builder.Output()))
    proc = tinyc("convert", path, "-o", tmp_path / "out")
    assert_one_line_error(proc, "2 subgraphs")


def test_unsupported_op_is_named_with_index_and_supported_list(tmp_path, mlperf_dir):
    graph = load_tflite(mlperf_dir / "ad01_int8.tflite")
    graph.ops[3].kind = "GELU"
    graph.ops[3].attrs = {"_version": 1}
    path = tmp_path / "gelu.tflite"
    path.write_bytes(graph_to_tflite(graph))
    proc = tinyc("convert", path, "-o", tmp_path / "out")
    line = assert_one_line_error(proc, "GELU", "op 3", "supported ops", "FULLY_CONNECTED")
    assert "CONV_2D" in line
    proc = tinyc("inspect", path)
    assert "GELU" in proc.stdout and "NO" in proc.stdout


def test_float_model_needs_calibration(tmp_path, mlperf_dir):
    proc = tinyc("convert", mlperf_dir / "ad01_fp32.tflite", "-o", tmp_path / "out")
    assert_one_line_error(proc, "float", "calib")
    assert not (tmp_path / "out").exists()


def test_unknown_board(tmp_path, mlperf_dir):
    proc = tinyc("convert", mlperf_dir / "ad01_int8.tflite", "-o", tmp_path / "out", "--board", "nosuchboard")
    assert_one_line_error(proc, "unknown board", "host")


def test_failed_convert_keeps_previous_outdir(tmp_path, mlperf_dir):
    out = tmp_path / "out"
    assert tinyc("convert", mlperf_dir / "ad01_int8.tflite", "-o", out).returncode == 0
    before = sorted(p.name for p in out.iterdir())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"garbage")
    assert_one_line_error(tinyc("convert", bad, "-o", out))
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.fixture(scope="module")
def ad01_out(tmp_path_factory, mlperf_dir):
    out = tmp_path_factory.mktemp("ad01") / "out"
    assert tinyc("convert", mlperf_dir / "ad01_int8.tflite", "-o", out).returncode == 0
    return out


def test_input_wrong_shape(ad01_out, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 639), np.int8))
    proc = tinyc("run", ad01_out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert_one_line_error(proc, "[4, 639]", "640")
    assert not (tmp_path / "y.npy").exists()


def test_input_wrong_dtype(ad01_out, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((4, 640), np.float32))
    proc = tinyc("validate", ad01_out, "--input", tmp_path / "x.npy")
    assert_one_line_error(proc, "float32", "int8")


def test_run_writes_outputs_equal_to_reference(ad01_out, tmp_path):
    from tinyc.reference import Reference

    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(7, 640), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    proc = tinyc("run", ad01_out, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert proc.returncode == 0, proc.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (7, 1, 640) and y.dtype == np.int8  # [N, *output_shape]
    ref = Reference(ad01_out / "model.tflite")
    for xi, yi in zip(x, y):
        assert np.array_equal(ref.run(xi.reshape(1, 640))[0], yi)
    # [N, *input_shape] with the batch dimension is accepted too
    np.save(tmp_path / "x4.npy", x.reshape(7, 1, 640))
    proc = tinyc("run", ad01_out, "--input", tmp_path / "x4.npy", "--output", tmp_path / "y4.npy")
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(np.load(tmp_path / "y4.npy"), y)


def test_validate_writes_jsonl_and_passes(ad01_out, tmp_path):
    import json

    report = tmp_path / "r.jsonl"
    proc = tinyc("validate", ad01_out, "--random", "12", "--report", report)
    assert proc.returncode == 0, proc.stderr
    assert "bit-exact      12/12" in proc.stdout
    rows = [json.loads(l) for l in report.read_text().splitlines()]
    assert rows[0]["run"]["board"] == "host" and rows[0]["run"]["seed"] == 0 and rows[0]["run"]["samples"] == 12
    assert [r["index"] for r in rows[1:-1]] == list(range(12))
    assert all(r["bit_exact"] and r["stack_bytes"] is None for r in rows[1:-1])
    assert rows[-1] == {"link": None}   # a pipe: no serial link to count
    # a second run appends after a new marker
    assert tinyc("validate", ad01_out, "--random", "3", "--seed", "7", "--report", report).returncode == 0
    rows = [json.loads(l) for l in report.read_text().splitlines()]
    markers = [r["run"] for r in rows if "run" in r]
    assert len(markers) == 2 and markers[1]["seed"] == 7 and markers[1]["model_hash"] == markers[0]["model_hash"]


def test_help_is_fast_and_does_not_import_tensorflow():
    code = "import sys, tinyc.cli; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    assert out == "False"
    for cmd in ([], ["convert"], ["validate"], ["inspect"], ["run"]):
        proc = tinyc(*cmd, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout
