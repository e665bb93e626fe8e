"""Every MLPerf Tiny int8 model: generated C bit-exact with LiteRT BUILTIN_REF on the host."""

import json

import numpy as np
import pytest

from helpers import assert_bit_exact

INT8_MODELS = ["ad01_int8", "kws_ref_model", "str_ww_ref_model", "pretrainedResnet_quant",
               "pretrainedResnet_large_int8", "vww_96_int8"]


def golden_cases(mlperf_dir, model):
    data = json.loads((mlperf_dir / "test_data" / "golden_outputs.json").read_text())
    return data, model


@pytest.mark.parametrize("model", INT8_MODELS)
def test_mlperf_int8_bit_exact(model, mlperf_dir, tmp_path):
    manifest = assert_bit_exact(mlperf_dir / f"{model}.tflite", tmp_path, n_random=100)
    assert manifest["arena_bytes"] > 0
