"""The generated C on the host reproduces golden_outputs.json (LiteRT BUILTIN_REF outputs
recorded in ../shared by ai-edge-litert 2.3.0) for the int8 MLPerf Tiny models."""

import json

import numpy as np
import pytest

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import convert
from tinyc.runners import open_session


@pytest.fixture(scope="module")
def golden(mlperf_dir):
    return json.loads((mlperf_dir / "test_data" / "golden_outputs.json").read_text())["cases"]


def quantize(x, scale, zp):
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zp, -128, 127).astype(np.int8)


def run_c(model_path, tmp_path, samples):
    outdir = tmp_path / "out"
    convert(model_path, outdir)
    board = load_board("host")
    build(outdir, board)
    with open_session(board, outdir) as s:
        return [np.frombuffer(r.output, np.int8) for r in s.infer_many([x.tobytes() for x in samples])]


def case_inputs(case, mlperf_dir):
    data = mlperf_dir / "test_data"
    if case == "kws_int8":
        return [np.fromfile(data / "kws_sample_input_int8.bin", np.int8).reshape(1, 49, 10, 1)]
    if case.startswith("ic_"):
        return [np.full((1, 32, 32, 3), -128, np.int8)]
    if case == "ad_ad01_int8_window0":
        x = np.fromfile(data / "ad01_normal_id_01_00000000_hist_librosa.bin", np.float32)[:640]
        return [quantize(x, 0.391015, 89).reshape(1, 640)]
    if case == "sww_int8_calibration_samples":
        specs = np.load(data / "sww_calibration_samples.npz")["specs"]
        return [quantize(s, 0.00370104, -128).reshape(1, 30, 1, 40) for s in specs]
    raise KeyError(case)


@pytest.mark.parametrize("case", ["kws_int8", "ic_pretrainedResnet_quant", "ic_pretrainedResnet_large_int8",
                                  "ad_ad01_int8_window0", "sww_int8_calibration_samples"])
def test_golden_outputs(case, golden, mlperf_dir, tmp_path):
    c = golden[case]
    samples = case_inputs(case, mlperf_dir)
    got = run_c(mlperf_dir / c["model"], tmp_path, samples)
    if "outputs" in c:
        expected = [np.asarray(o, np.int8) for o in c["outputs"]]
    else:
        expected = [np.asarray(c["output"], np.int8)]
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert np.array_equal(g, e.reshape(-1)), f"{case} sample {i}: C {g.tolist()[:12]} != golden {e.reshape(-1).tolist()[:12]}"
    if "true_labels" in c:
        acc = np.mean([int(np.argmax(g)) == t for g, t in zip(got, c["true_labels"])])
        assert abs(acc - float(c["accuracy_vs_true_labels"])) < 1e-9
