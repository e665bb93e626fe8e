"""The bad-input matrix: every flag with wrong types and ranges, every file argument
missing / empty / a folder / unreadable / corrupt, a corrupted tinyc.json per key, and the
cases a new user hit. For each: a non-zero exit, exactly one line on stderr that names what
is wrong (the case's words), no "internal error", no traceback, and nothing written or left
half-written in the workspace.

The CLI runs in-process (click's CliRunner): almost every case fails in argument parsing,
in manifest loading or in the checks made before any work, so 100+ cases take seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tinyc.cli import main
from tinyc.outdir import MANIFEST, Manifest

UNREADABLE = "/proc/self/mem"   # exists and is a file, yet reading it fails: even for root


@pytest.fixture(scope="module")
def ws(tmp_path_factory, mlperf_dir):
    """The workspace: a converted int8 OUTDIR and files of every kind of wrong."""
    root = tmp_path_factory.mktemp("bad")
    ok = CliRunner().invoke(main, ["convert", str(mlperf_dir / "ad01_int8.tflite"), "-o", str(root / "out")])
    assert ok.exit_code == 0, ok.output
    rng = np.random.default_rng(0)
    files = {
        "x": np.zeros((2, 640), np.int8), "x_f32": np.zeros((2, 640), np.float32),
        "x_shape": np.zeros((2, 639), np.int8), "x_empty": np.zeros((0, 640), np.int8),
        "x_flat_empty": np.zeros((0,), np.int8), "labels3": np.arange(3), "labels_f": np.zeros(2, np.float32),
        "calib_shape": rng.normal(size=(4, 7)).astype(np.float32), "calib_empty": np.zeros((0, 640), np.float32),
        "x_str": np.array(["a", "b"]),
    }
    for name, arr in files.items():
        np.save(root / f"{name}.npy", arr)
    np.savez(root / "x.npz", x=files["x"])
    np.savez(root / "no_x.npz", y=np.arange(2))
    (root / "empty.npy").write_bytes(b"")
    (root / "garbage.npy").write_bytes(b"\x93NUMPY garbage that is not an array" * 3)
    (root / "text.txt").write_text("hello\n")
    (root / "empty.tflite").write_bytes(b"")
    (root / "cut.tflite").write_bytes((mlperf_dir / "ad01_int8.tflite").read_bytes()[:100])
    (root / "garbage.keras").write_bytes(b"PK not really a zip")
    (root / "garbage.h5").write_bytes(b"not hdf5")
    (root / "a_file").write_text("x")
    (root / "folder").mkdir()
    (root / "empty_out").mkdir()
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("mine")
    (root / "no_manifest").mkdir()
    (root / "no_manifest" / "model.c").write_text("")
    return root


FLOAT = "<mlperf>/ad01_fp32.tflite"
INT8 = "<mlperf>/ad01_int8.tflite"

# (id, argv with <ws>/<mlperf> placeholders, words the error line must contain)
CASES = [
    # ---- convert: the model argument
    ("model-missing", ["convert", "<ws>/nope.tflite", "-o", "<ws>/o"], ["nope.tflite", "does not exist"]),
    ("model-empty", ["convert", "<ws>/empty.tflite", "-o", "<ws>/o"], ["empty.tflite", "not a TFLite"]),
    ("model-truncated", ["convert", "<ws>/cut.tflite", "-o", "<ws>/o"], ["cut.tflite"]),
    ("model-text", ["convert", "<ws>/text.txt", "-o", "<ws>/o"], ["text.txt", "unknown model format"]),
    ("model-folder", ["convert", "<ws>/folder", "-o", "<ws>/o"], ["folder", "not a SavedModel"]),
    ("model-npy", ["convert", "<ws>/x.npy", "-o", "<ws>/o"], ["x.npy", "unknown model format"]),
    ("model-garbage-keras", ["convert", "<ws>/garbage.keras", "-o", "<ws>/o", "--calib-random", "2"],
     ["garbage.keras", "cannot load"]),
    ("model-garbage-h5", ["convert", "<ws>/garbage.h5", "-o", "<ws>/o", "--calib-random", "2"],
     ["garbage.h5", "cannot load"]),
    ("model-unreadable", ["convert", UNREADABLE, "-o", "<ws>/o"], ["mem"]),
    ("float-needs-calib", ["convert", FLOAT, "-o", "<ws>/o"], ["float model", "--calib"]),
    # ---- convert: -o
    ("o-missing", ["convert", INT8], ["-o"]),
    ("o-is-file", ["convert", INT8, "-o", "<ws>/a_file"], ["a_file", "is a file"]),
    ("o-under-file", ["convert", INT8, "-o", "<ws>/a_file/out"], ["a_file", "is a file"]),
    ("o-unwritable", ["convert", INT8, "-o", "/proc/tinyc-out"], ["/proc/tinyc-out"]),
    ("o-foreign-folder", ["convert", INT8, "-o", "<ws>/foreign"], ["foreign", "did not make"]),
    # ---- convert: flags
    ("board-unknown", ["convert", INT8, "-o", "<ws>/o", "--board", "nosuch"], ["nosuch"]),
    ("board-empty", ["convert", INT8, "-o", "<ws>/o", "--board", ""], ["board"]),
    ("calib-random-zero", ["convert", FLOAT, "-o", "<ws>/o", "--calib-random", "0"], ["--calib-random"]),
    ("calib-random-neg", ["convert", FLOAT, "-o", "<ws>/o", "--calib-random", "-4"], ["--calib-random"]),
    ("calib-random-text", ["convert", FLOAT, "-o", "<ws>/o", "--calib-random", "many"], ["--calib-random"]),
    ("calib-random-float", ["convert", FLOAT, "-o", "<ws>/o", "--calib-random", "2.5"], ["--calib-random"]),
    ("calib-missing", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/nope.npy"], ["--calib", "does not exist"]),
    ("calib-folder", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/folder"], ["--calib", "directory"]),
    ("calib-empty-file", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/empty.npy"], ["empty.npy"]),
    ("calib-garbage", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/garbage.npy"], ["garbage.npy"]),
    ("calib-text", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/text.txt"], ["text.txt"]),
    ("calib-npz-without-x", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/no_x.npz"], ["no array 'x'"]),
    ("calib-wrong-shape", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/calib_shape.npy"], ["calib_shape"]),
    ("calib-no-samples", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/calib_empty.npy"], ["no samples"]),
    ("calib-strings", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/x_str.npy"], ["x_str", "numeric"]),
    ("calib-unreadable", ["convert", FLOAT, "-o", "<ws>/o", "--calib", UNREADABLE], ["mem"]),
    ("calib-and-random", ["convert", FLOAT, "-o", "<ws>/o", "--calib", "<ws>/calib_shape.npy", "--calib-random", "3"],
     ["either --calib or --calib-random"]),
    ("io-unknown", ["convert", INT8, "-o", "<ws>/o", "--io", "int4"], ["--io", "int4"]),
    ("weights-unknown", ["convert", INT8, "-o", "<ws>/o", "--weights", "zip"], ["--weights", "zip"]),
    ("prune-text", ["convert", INT8, "-o", "<ws>/o", "--prune", "half"], ["--prune", "half"]),
    ("prune-one", ["convert", INT8, "-o", "<ws>/o", "--prune", "1"], ["--prune", "[0, 1)"]),
    ("prune-over", ["convert", INT8, "-o", "<ws>/o", "--prune", "1.5"], ["--prune", "[0, 1)"]),
    ("prune-neg", ["convert", INT8, "-o", "<ws>/o", "--prune", "-0.1"], ["--prune", "[0, 1)"]),
    ("prune-nan", ["convert", INT8, "-o", "<ws>/o", "--prune", "nan"], ["--prune", "[0, 1)"]),
    ("prune-channels-over", ["convert", INT8, "-o", "<ws>/o", "--prune-channels", "2"], ["--prune-channels"]),
    ("prune-channels-text", ["convert", INT8, "-o", "<ws>/o", "--prune-channels", "x"], ["--prune-channels"]),
    ("prune-layer-no-eq", ["convert", INT8, "-o", "<ws>/o", "--prune-layer", "dense"], ["NAME=VALUE"]),
    ("prune-layer-bad-value", ["convert", INT8, "-o", "<ws>/o", "--prune-layer", "dense=lots"], ["dense", "number"]),
    ("prune-layer-over", ["convert", INT8, "-o", "<ws>/o", "--prune-layer", "dense=3"], ["dense", "[0, 1)"]),
    ("rewind-without-train", ["convert", INT8, "-o", "<ws>/o", "--rewind"], ["--rewind", "--train"]),
    ("train-on-int8", ["convert", INT8, "-o", "<ws>/o", "--train", "<ws>/x.npz", "--prune", "0.5"], ["--train"]),
    ("train-missing", ["convert", INT8, "-o", "<ws>/o", "--train", "<ws>/nope.npz"], ["--train", "does not exist"]),
    ("train-folder", ["convert", INT8, "-o", "<ws>/o", "--train", "<ws>/folder"], ["--train", "directory"]),
    ("eval-missing", ["convert", INT8, "-o", "<ws>/o", "--eval", "<ws>/nope.npz"], ["--eval", "does not exist"]),
    ("eval-folder", ["convert", INT8, "-o", "<ws>/o", "--eval", "<ws>/folder"], ["--eval", "directory"]),
    ("unknown-option", ["convert", INT8, "-o", "<ws>/o", "--bogus"], ["--bogus"]),
    # ---- run
    ("run-outdir-missing", ["run", "<ws>/nope", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy"], ["nope"]),
    ("run-outdir-file", ["run", "<ws>/a_file", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy"], ["a_file"]),
    ("run-outdir-empty", ["run", "<ws>/empty_out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy"],
     ["empty_out", "tinyc convert"]),
    ("run-input-missing-flag", ["run", "<ws>/out", "--output", "<ws>/y.npy"], ["--input"]),
    ("run-output-missing-flag", ["run", "<ws>/out", "--input", "<ws>/x.npy"], ["--output"]),
    ("run-input-missing", ["run", "<ws>/out", "--input", "<ws>/nope.npy", "--output", "<ws>/y.npy"], ["does not exist"]),
    ("run-input-folder", ["run", "<ws>/out", "--input", "<ws>/folder", "--output", "<ws>/y.npy"], ["directory"]),
    ("run-input-empty-file", ["run", "<ws>/out", "--input", "<ws>/empty.npy", "--output", "<ws>/y.npy"], ["empty.npy"]),
    ("run-input-garbage", ["run", "<ws>/out", "--input", "<ws>/garbage.npy", "--output", "<ws>/y.npy"], ["garbage.npy"]),
    ("run-input-text", ["run", "<ws>/out", "--input", "<ws>/text.txt", "--output", "<ws>/y.npy"], ["text.txt"]),
    ("run-input-npz", ["run", "<ws>/out", "--input", "<ws>/x.npz", "--output", "<ws>/y.npy"], [".npz", "no array for input"]),
    ("run-input-no-samples", ["run", "<ws>/out", "--input", "<ws>/x_empty.npy", "--output", "<ws>/y.npy"],
     ["no samples"]),
    ("run-input-flat-empty", ["run", "<ws>/out", "--input", "<ws>/x_flat_empty.npy", "--output", "<ws>/y.npy"],
     ["no samples"]),
    ("run-input-shape", ["run", "<ws>/out", "--input", "<ws>/x_shape.npy", "--output", "<ws>/y.npy"], ["[2, 639]"]),
    ("run-input-dtype", ["run", "<ws>/out", "--input", "<ws>/x_f32.npy", "--output", "<ws>/y.npy"], ["float32", "int8"]),
    ("run-input-strings", ["run", "<ws>/out", "--input", "<ws>/x_str.npy", "--output", "<ws>/y.npy"], ["x_str"]),
    ("run-input-unreadable", ["run", "<ws>/out", "--input", UNREADABLE, "--output", "<ws>/y.npy"], ["mem"]),
    ("run-output-folder", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/folder"], ["folder", "file name"]),
    ("run-output-missing-folder", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/nodir/y.npy"],
     ["nodir", "does not exist"]),
    ("run-output-under-file", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/a_file/y.npy"],
     ["a_file"]),
    ("run-board-unknown", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--board", "zz"],
     ["zz"]),
    ("run-port-on-host", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--port", "/dev/null"],
     ["--port", "local process"]),
    ("run-port-on-qemu", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--board",
                          "mps2-an386", "--port", "/dev/ttyACM0"], ["--port", "emulator"]),
    ("run-baud-on-host", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--baud", "9600"],
     ["--baud"]),
    ("run-baud-zero", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--baud", "0"], ["--baud"]),
    ("run-timeout-zero", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--timeout", "0"],
     ["--timeout"]),
    ("run-timeout-text", ["run", "<ws>/out", "--input", "<ws>/x.npy", "--output", "<ws>/y.npy", "--timeout", "soon"],
     ["--timeout"]),
    # ---- validate
    ("val-outdir-missing", ["validate", "<ws>/nope"], ["nope"]),
    ("val-outdir-file", ["validate", "<ws>/a_file"], ["a_file"]),
    ("val-outdir-empty", ["validate", "<ws>/empty_out"], ["empty_out", "tinyc convert"]),
    ("val-random-zero", ["validate", "<ws>/out", "--random", "0"], ["--random"]),
    ("val-random-neg", ["validate", "<ws>/out", "--random", "-3"], ["--random"]),
    ("val-random-text", ["validate", "<ws>/out", "--random", "lots"], ["--random"]),
    ("val-seed-neg", ["validate", "<ws>/out", "--seed", "-1"], ["--seed"]),
    ("val-seed-text", ["validate", "<ws>/out", "--seed", "abc"], ["--seed"]),
    ("val-input-and-random", ["validate", "<ws>/out", "--input", "<ws>/x.npy", "--random", "3"],
     ["either --input", "--random"]),
    ("val-input-no-samples", ["validate", "<ws>/out", "--input", "<ws>/x_empty.npy"], ["no samples"]),
    ("val-input-npz", ["validate", "<ws>/out", "--input", "<ws>/x.npz"], [".npz", "no array for input"]),
    ("val-input-folder", ["validate", "<ws>/out", "--input", "<ws>/folder"], ["directory"]),
    ("val-input-empty-file", ["validate", "<ws>/out", "--input", "<ws>/empty.npy"], ["empty.npy"]),
    ("val-input-unreadable", ["validate", "<ws>/out", "--input", UNREADABLE], ["mem"]),
    ("val-labels-without-input", ["validate", "<ws>/out", "--labels", "<ws>/labels3.npy"], ["--labels", "--input"]),
    ("val-labels-count", ["validate", "<ws>/out", "--input", "<ws>/x.npy", "--labels", "<ws>/labels3.npy"],
     ["--labels", "3"]),
    ("val-labels-float", ["validate", "<ws>/out", "--input", "<ws>/x.npy", "--labels", "<ws>/labels_f.npy"],
     ["--labels", "integer"]),
    ("val-labels-npz", ["validate", "<ws>/out", "--input", "<ws>/x.npy", "--labels", "<ws>/x.npz"], ["--labels"]),
    ("val-labels-garbage", ["validate", "<ws>/out", "--input", "<ws>/x.npy", "--labels", "<ws>/garbage.npy"],
     ["--labels"]),
    ("val-labels-folder", ["validate", "<ws>/out", "--input", "<ws>/x.npy", "--labels", "<ws>/folder"], ["directory"]),
    ("val-report-folder", ["validate", "<ws>/out", "--report", "<ws>/folder"], ["--report", "folder"]),
    ("val-report-under-file", ["validate", "<ws>/out", "--report", "<ws>/a_file/r.jsonl"], ["--report", "a_file"]),
    ("val-port-on-qemu", ["validate", "<ws>/out", "--board", "mps2-an386", "--port", "/dev/ttyACM0"], ["--port"]),
    ("val-baud-on-qemu", ["validate", "<ws>/out", "--board", "mps2-an386", "--baud", "9600"], ["--baud"]),
    ("val-baud-text", ["validate", "<ws>/out", "--baud", "fast"], ["--baud"]),
    ("val-timeout-neg", ["validate", "<ws>/out", "--timeout", "-1"], ["--timeout"]),
    ("val-board-unknown", ["validate", "<ws>/out", "--board", "nosuch"], ["nosuch"]),
    # ---- inspect, build, report, flash
    ("inspect-missing", ["inspect", "<ws>/nope.tflite"], ["does not exist"]),
    ("inspect-folder", ["inspect", "<ws>/folder"], ["folder"]),
    ("inspect-text", ["inspect", "<ws>/text.txt"], ["text.txt"]),
    ("inspect-empty", ["inspect", "<ws>/empty.tflite"], ["empty.tflite"]),
    ("inspect-keras", ["inspect", "<ws>/garbage.keras"], ["convert"]),
    ("build-board-unknown", ["build", "<ws>/out", "--board", "nosuch"], ["nosuch"]),
    ("build-no-manifest", ["build", "<ws>/no_manifest"], ["tinyc.json"]),
    ("build-outdir-file", ["build", "<ws>/a_file"], ["a_file"]),
    ("report-no-manifest", ["report", "<ws>/empty_out"], ["tinyc.json"]),
    ("flash-board-unknown", ["flash", "<ws>/out", "--board", "nosuch"], ["nosuch"]),
    ("flash-tool-unknown", ["flash", "<ws>/out", "--tool", "dd"], ["--tool"]),
    ("command-unknown", ["frobnicate"], ["frobnicate"]),
]


def _manifest_cases() -> list:
    """tinyc.json damaged per key: each fixed key missing and each of the wrong type; and
    the file not JSON, empty, a list, binary."""
    cases = [("json-not-json", "{ this is not json"), ("json-empty", ""), ("json-list", "[]"),
             ("json-number", "42"), ("json-binary", b"\xff\xfe\x00garbage")]
    wrong = {int: "many", str: 7, list: {"a": 1}, dict: [1]}
    import typing
    for key, hint in typing.get_type_hints(Manifest).items():
        if key == "sections":
            continue
        cases.append((f"key-{key}-missing", ("del", key)))
        base = typing.get_origin(hint) or hint
        if base in (typing.Union, __import__("types").UnionType):
            base = typing.get_origin(typing.get_args(hint)[0]) or typing.get_args(hint)[0]
        cases.append((f"key-{key}-wrong-type", ("set", key, wrong.get(base, "x"))))
    cases += [("io-shape-strings", ("io", "shape", ["a"])), ("io-bytes-mismatch", ("io", "bytes", 3)),
              ("io-dtype-unknown", ("io", "dtype", "complex64")), ("io-negative-dim", ("io", "shape", [-1, 640])),
              ("io-not-object", ("set", "inputs", [5])), ("layer-missing-op", ("layer", "op", None))]
    return cases


MANIFEST_CASES = _manifest_cases()


def _argv(args: list[str], ws: Path, mlperf: Path) -> list[str]:
    return [a.replace("<ws>", str(ws)).replace("<mlperf>", str(mlperf)) for a in args]


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() or p.is_dir()}


def assert_one_line_error(res, needles) -> str:
    err = res.stderr
    assert res.exit_code not in (0, None), (res.exit_code, res.output)
    assert "Traceback" not in err and "internal error" not in err, err
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("tinyc: error: "), err
    for n in needles:
        assert n.lower() in lines[0].lower(), (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_flag_or_file(case, ws, mlperf_dir):
    _, args, needles = case
    before = _tree(ws)
    res = CliRunner().invoke(main, _argv(args, ws, mlperf_dir))
    assert_one_line_error(res, needles)
    assert _tree(ws) == before, "the workspace changed"


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_damaged_manifest(case, ws, tmp_path):
    name, how = case
    good = json.loads((ws / "out" / MANIFEST).read_text())
    out = tmp_path / "out"
    out.mkdir()
    for p in (ws / "out").iterdir():
        if p.is_file():
            os.symlink(p, out / p.name)
    (out / MANIFEST).unlink()
    if isinstance(how, (str, bytes)):
        data = how.encode() if isinstance(how, str) else how
    else:
        d = json.loads(json.dumps(good))
        if how[0] == "del":
            del d[how[1]]
        elif how[0] == "set":
            d[how[1]] = how[2]
        elif how[0] == "io":
            d["inputs"][0][how[1]] = how[2]
        elif how[0] == "layer":
            del d["layers"][0][how[1]]
        data = json.dumps(d).encode()
    (out / MANIFEST).write_bytes(data)
    before = _tree(tmp_path)
    for argv in (["validate", str(out), "--random", "1"], ["build", str(out)], ["report", str(out)]):
        line = assert_one_line_error(CliRunner().invoke(main, argv), ["tinyc.json"])
        assert "convert" in line, line
    assert _tree(tmp_path) == before


def test_the_matrix_is_large_enough():
    assert len(CASES) + len(MANIFEST_CASES) >= 100
