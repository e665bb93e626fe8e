"""Every MLPerf Tiny int8 model: generated C bit-exact with LiteRT BUILTIN_REF on the host."""

import pytest

from conftest import MLPERF_INT8_MODELS
from helpers import assert_bit_exact


@pytest.mark.parametrize("model", MLPERF_INT8_MODELS)
def test_mlperf_int8_bit_exact(model, mlperf_dir, tmp_path):
    manifest = assert_bit_exact(mlperf_dir / f"{model}.tflite", tmp_path, n_random=100)
    assert manifest["arena_bytes"] > 0
