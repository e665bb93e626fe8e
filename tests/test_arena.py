"""tinyc's arena is at most TensorFlow Lite Micro's for every MLPerf Tiny int8 model."""

import sys

import pytest

from tinyc.convert import ConvertOptions, convert
from tinyc.codegen.planner import plan_memory
from tinyc.frontend.tflite import load_tflite

from conftest import MLPERF_INT8_MODELS as MODELS, REPO

sys.path.insert(0, str(REPO / "bench"))
from tflm import tflm_arena  # noqa: E402  (the TFLM probe belongs to the benches)


@pytest.mark.parametrize("model", MODELS)
def test_arena_not_larger_than_tflm(model, mlperf_dir, tmp_path):
    path = mlperf_dir / f"{model}.tflite"
    # laid out for a microcontroller, where the arena is the RAM that counts (the vector
    # cores' depthwise kernel adds a padded input plane to the scratch)
    ours = convert(path, tmp_path / "out", ConvertOptions(board="mps2-an386")).manifest.arena_bytes
    theirs = tflm_arena(path)["total"]
    assert 0 < ours <= theirs, f"{model}: tinyc arena {ours} B > TFLM {theirs} B"


@pytest.mark.parametrize("model", MODELS)
def test_plan_has_no_overlap_between_live_tensors(model, mlperf_dir):
    graph = load_tflite(mlperf_dir / f"{model}.tflite")
    plan = plan_memory(graph)
    bufs = plan.buffers
    for i, a in enumerate(bufs):
        assert a.offset + a.size <= plan.arena_bytes
        for b in bufs[i + 1:]:
            live_together = not (a.last < b.first or b.last < a.first)
            overlap = a.offset < b.offset + b.size and b.offset < a.offset + a.size
            assert not (live_together and overlap), f"{a.key} and {b.key} overlap while both live"
    # A lower bound every plan must respect: the largest set of tensors live at one op.
    for i in range(len(graph.ops)):
        live = sum(b.size for b in bufs if b.first <= i <= b.last)
        assert plan.arena_bytes >= live
