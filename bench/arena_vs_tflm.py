"""tinyc's planned arena vs TensorFlow Lite Micro's (RecordingMicroAllocator total) for every
MLPerf Tiny int8 model. Prints a Markdown table (the README's benchmark table)."""

import sys
import tempfile
from pathlib import Path

from tflm import tflm_arena

from tinyc.convert import ConvertOptions, convert

MODELS = ["ad01_int8", "kws_ref_model", "str_ww_ref_model", "pretrainedResnet_quant",
          "pretrainedResnet_large_int8", "vww_96_int8"]


def main() -> int:
    mlperf = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"
    print("| model | tinyc arena (B) | tinyc arena + I/O buffers (B) | TFLM arena total (B) | TFLM head / tail (B) | tinyc / TFLM |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            path = mlperf / f"{name}.tflite"
            m = convert(path, Path(tmp) / name, ConvertOptions(board="mps2-an386")).manifest
            ours = m.arena_bytes
            with_io = ours + sum(t.bytes for t in m.inputs + m.outputs)
            tflm = tflm_arena(path)
            print(f"| {name} | {ours:,} | {with_io:,} | {tflm['total']:,} | {tflm.get('head', 0):,} / {tflm.get('tail', 0):,} "
                  f"| {ours / tflm['total']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
