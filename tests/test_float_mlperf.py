"""The float MLPerf Tiny models quantized by tinyc, compiled, and checked bit for bit.

Calibration data is built here: the bundled ToyCar log-mel windows for ad01; synthetic
smooth images for the image models (the repo ships no CIFAR or COCO images).
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_bit_exact
from tinyc.boards import load_board
from tinyc.frontend import tflite as tfl
from tinyc.quantize import float_tflite as ft
from tinyc.quant_math import dequantize_array, quantize_array
from tinyc.quantize.sqnr import interpreter
from tinyc.quantize.prepare import prepare_int8
from tinyc.runners import open_session


def ad01_windows(mlperf_dir) -> np.ndarray:
    """The 196 windows (5 frames x 128 mel bins, stride 1 frame) of the bundled normal clip."""
    raw = np.fromfile(mlperf_dir / "test_data" / "ad01_normal_id_01_00000000_hist_librosa.bin", dtype="<f4")
    frames = raw.reshape(200, 128)
    return np.stack([frames[i:i + 5].reshape(640) for i in range(196)]).astype(np.float32)


def smooth_images(n: int, size: int, scale: float, seed: int = 0) -> np.ndarray:
    """Images with structure (a coarse random field upsampled, plus a little noise) in [0, scale]."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, size // 8, size // 8, 3))
    img = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    img = 0.85 * img + 0.15 * rng.random((n, size, size, 3))
    return (img * scale).astype(np.float32)


def test_ad01_anomaly_score_within_2_percent(mlperf_dir, tmp_path):
    x = ad01_windows(mlperf_dir)
    prepared = prepare_int8(mlperf_dir / "ad01_fp32.tflite", calib=x)
    m = tfl.parse_model(prepared.tflite)
    q_in, q_out = (t.quantization for t in (tfl.io_tensors(m)[0][0], tfl.io_tensors(m)[1][0]))
    records = [[quantize_array(w[None], float(q_in.scale[0]), int(q_in.zeroPoint[0]))] for w in x]
    info = assert_bit_exact(prepared.tflite, tmp_path, n_random=10, inputs=records[:20])

    # float model's anomaly score: mean over windows of the reconstruction MSE
    it = interpreter(prepared.float_model.tflite, reference=False, preserve=False)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    float_mse = []
    for w in x:
        it.set_tensor(i["index"], w[None])
        it.invoke()
        float_mse.append(np.mean((it.get_tensor(o["index"]).reshape(-1) - w) ** 2))
    float_score = float(np.mean(float_mse))

    # the generated C on the host, all 196 windows
    with open_session(load_board("host"), info["outdir"]) as s:
        results = s.infer_many([r[0].tobytes() for r in records])
    c_mse = []
    for w, res in zip(x, results):
        out = dequantize_array(np.frombuffer(res.output, np.int8), q_out.scale, q_out.zeroPoint)
        c_mse.append(np.mean((out - w) ** 2))
    c_score = float(np.mean(c_mse))
    print(f"ad01 anomaly score: float {float_score:.4f}, int8 C {c_score:.4f}")
    assert abs(c_score - float_score) / float_score < 0.02, (float_score, c_score)


@pytest.mark.parametrize("name,size,scale", [("pretrainedResnet", 32, 255.0), ("vww_96_float", 96, 1.0)])
def test_float_image_models_bit_exact(mlperf_dir, tmp_path, name, size, scale):
    calib = smooth_images(48, size, scale)
    prepared = prepare_int8(mlperf_dir / f"{name}.tflite", calib=calib)
    assert ft.classify(tfl.parse_model(prepared.tflite)) == "int8"
    report = prepared.report
    assert len(report["layers"]) == len(tfl.parse_model(prepared.tflite).subgraphs[0].operators)
    assert len(report["worst"]) == 5
    test = smooth_images(12, size, scale, seed=1)
    m = tfl.parse_model(prepared.tflite)
    q = tfl.io_tensors(m)[0][0].quantization
    real = [[quantize_array(s[None], float(q.scale[0]), int(q.zeroPoint[0]))] for s in test]
    assert_bit_exact(prepared.tflite, tmp_path, n_random=8, inputs=real)
