"""`make demo`: the bundled keyword-spotting model, converted by tinyc, built for the default
board and validated against LiteRT's reference kernels (50 samples: the benchmark's sample
input plus random ones)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = REPO / "out" / "demo"
BOARD = os.environ.get("TINYC_DEMO_BOARD", "mps2-an386")


def tinyc(*args: str) -> None:
    cmd = [str(Path(sys.executable).with_name("tinyc")), *args]
    print("$ tinyc " + " ".join(args), flush=True)
    rc = subprocess.call(cmd)
    if rc != 0:
        sys.exit(rc)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sample = np.fromfile(HERE / "kws_sample_input_int8.bin", np.int8).reshape(1, 49, 10, 1)
    rng = np.random.default_rng(1)
    inputs = np.concatenate([sample, rng.integers(-128, 128, size=(49, 49, 10, 1), dtype=np.int8)])
    np.save(OUT.parent / "demo_inputs.npy", inputs)
    tinyc("convert", str(HERE / "kws_ref_model.tflite"), "-o", str(OUT), "--board", BOARD)
    tinyc("validate", str(OUT), "--board", BOARD, "--input", str(OUT.parent / "demo_inputs.npy"),
          "--report", str(OUT.parent / "demo_report.jsonl"))


if __name__ == "__main__":
    main()
