"""tinyc's arena and measured RAM vs TensorFlow Lite Micro for every MLPerf Tiny int8 model.

Per model: tinyc's arena (default: inputs in the caller's buffers; and with --io-in-arena),
its lower bound, the whole-model RAM measured on mps2-an386 (arena + model .data/.bss + I/O
buffers + peak stack of tinyc_invoke, from one validated inference with stack painting), and
TFLM's arena (RecordingMicroAllocator: head = activations, total = head + tail) on this
64-bit host. TFLM's total on the Cortex-M4 is quoted from issue #10 (no Cortex-M build of
TFLM can be made here). Prints two Markdown tables (the README's).
"""

import sys
import tempfile
from pathlib import Path

from tflm import tflm_arena

from tinyc.convert import ConvertOptions, convert
from tinyc.validate import validate_outdir

MODELS = ["ad01_int8", "kws_ref_model", "str_ww_ref_model", "pretrainedResnet_quant",
          "pretrainedResnet_large_int8", "vww_96_int8"]
BOARD = "mps2-an386"
# TFLM's total arena on the Cortex-M4 (32-bit pointers), as issue #10 gives it.
TFLM_M4_TOTAL = {"kws_ref_model": 22_772, "vww_96_int8": 100_660, "pretrainedResnet_quant": 54_340,
                 "ad01_int8": 2_700, "str_ww_ref_model": 15_252}


def measure(path: Path, out: Path, io_in_arena: bool) -> dict:
    """Convert, validate one random input on the board (bit-exact or fail), return tinyc.json's
    memory and ram entries."""
    convert(path, out, ConvertOptions(board=BOARD, io_in_arena=io_in_arena))
    summary, _, manifest = validate_outdir(out, BOARD, None, None, 1, 0, None, None)
    if not summary.passed:
        raise SystemExit(f"{path.name}: not bit-exact on {BOARD}: {summary.error or summary.as_dict()}")
    return {**manifest.section("memory"), **manifest.section("ram")[BOARD]}


def main() -> int:
    mlperf = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf_tiny"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            path = mlperf / f"{name}.tflite"
            default = measure(path, Path(tmp) / name, False)
            inarena = measure(path, Path(tmp) / f"{name}_io", True)
            rows.append((name, default, inarena, tflm_arena(path)))
    print("Arena (bytes; default options unless said):\n")
    print("| model | tinyc arena | lower bound | layers in place | arena with --io-in-arena | TFLM head | TFLM total (64-bit host) | arena / TFLM head |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, d, io, t in rows:
        print(f"| {name} | {d['arena_bytes']:,} | {d['lower_bound_bytes']:,} | {len(d['in_place_layers'])} | "
              f"{io['arena_bytes']:,} | {t['head']:,} | {t['total']:,} | {d['arena_bytes'] / t['head']:.2f} |")
    print(f"\nWhole-model RAM measured on {BOARD} (bytes: arena + model .data/.bss + I/O buffers + peak stack "
          "of tinyc_invoke):\n")
    print("| model | RAM (default) | of which I/O buffers | stack | RAM (--io-in-arena) | TFLM total on the M4 (issue #10) | best / TFLM M4 total | flash (code + constants) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, d, io, t in rows:
        m4 = TFLM_M4_TOTAL.get(name)
        best = min(d["ram_bytes"], io["ram_bytes"])
        print(f"| {name} | {d['ram_bytes']:,} | {d['io_bytes']:,} | {d['stack_bytes']:,} | {io['ram_bytes']:,} | "
              f"{f'{m4:,}' if m4 else '-'} | {f'{best / m4:.2f}' if m4 else '-'} | {d['flash_bytes']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
