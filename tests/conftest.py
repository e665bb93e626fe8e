import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MLPERF = SHARED / "models" / "mlperf_tiny"
# The MLPerf Tiny int8 models (file stems in MLPERF).
MLPERF_INT8_MODELS = ["ad01_int8", "kws_ref_model", "str_ww_ref_model", "pretrainedResnet_quant",
                      "pretrainedResnet_large_int8", "vww_96_int8"]


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    if not MLPERF.is_dir():
        pytest.fail(f"{MLPERF} is missing: the tests need ../shared beside the repo")
    return MLPERF


@pytest.fixture
def started_emulators(monkeypatch):
    """Every QemuProcess started during the test, in start order."""
    from tinyc.runners import qemu

    started = []
    orig_init = qemu.QemuProcess.__init__

    def init(self, *a, **k):
        orig_init(self, *a, **k)
        started.append(self)

    monkeypatch.setattr(qemu.QemuProcess, "__init__", init)
    return started


@pytest.fixture(scope="session")
def kws_an386(tmp_path_factory, mlperf_dir):
    """kws_ref_model converted and built for mps2-an386 (once per run)."""
    from tinyc.boards import load_board
    from tinyc.build import build
    from tinyc.convert import convert

    out = tmp_path_factory.mktemp("kws_an386") / "kws"
    convert(mlperf_dir / "kws_ref_model.tflite", out)
    build(out, load_board("mps2-an386"))
    return out
