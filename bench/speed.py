"""`make bench-speed`: instructions per inference of the generated C on the emulated Cortex-M
boards, beside TFLM + CMSIS-NN, and host latency against LiteRT.

For each MLPerf Tiny int8 model (../shared/models/mlperf_tiny) and the bundled example, on
mps2-an386 (Cortex-M4), mps2-an500 (M7) and mps3-an547 (M55), at --optimize balanced and speed:
instructions per inference (QEMU -icount shift=0, SysTick) for the fixed input
in[i] = (int8)((i * 7) & 0xFF) - checked bit-exact with LiteRT BUILTIN_REF on the way - per MAC,
per layer class, and the model's code (.text without weights) and constant bytes.

TFLM + CMSIS-NN: the figures recorded in issue #9 (TFLM 90b983c2 + CMSIS-NN 4ab83cc3,
arm-none-eabi-gcc 12.2, mps2-an386, the same fixed input). A workplace rule forbids committing
any script that builds fetched code, so this benchmark does not build them (no PEER= build).

Host: wall time of the generated C (tinyc's host build, -O2) against LiteRT's interpreter
(default kernels and BUILTIN_REF), all single-threaded, as ratios from one run.

Writes bench/results/speed.md and bench/results/speed.json. Usage:
    python bench/speed.py [--models a,b] [--boards b1,b2] [--levels balanced,speed] [--host-runs N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build_and_record
from tinyc.convert import ConvertOptions, convert
from tinyc.validate import validate

ROOT = Path(__file__).resolve().parents[1]
MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
RESULTS = ROOT / "bench" / "results"
MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model",
          "pretrainedResnet_large_int8", "example:kws_ref_model"]
BOARDS = ["mps2-an386", "mps2-an500", "mps3-an547"]
LEVELS = ["balanced", "speed"]

# Issue #9, mps2-an386, the fixed input: TFLM 90b983c2 reference kernels and with CMSIS-NN 4ab83cc3.
TFLM = {"kws_ref_model": (43_040_520, 7_697_920), "vww_96_int8": (100_238_280, 24_101_960),
        "pretrainedResnet_quant": (107_399_320, 29_860_960), "ad01_int8": (1_952_280, 582_920),
        "str_ww_ref_model": (8_285_520, 2_227_040)}

# Rows another helper adds (NEON / x86 kernels, the a72-virt board): same columns, their boards.
OTHER_BOARD_ROWS: list[dict] = []


def model_path(name: str) -> Path:
    if name.startswith("example:"):
        return ROOT / "examples" / f"{name.split(':', 1)[1]}.tflite"
    return MLPERF / f"{name}.tflite"


def fixed_input(manifest) -> list[np.ndarray]:
    out = []
    for t in manifest.inputs:
        n = int(np.prod(t.shape))
        out.append(((np.arange(n) * 7) & 0xFF).astype(np.uint8).view(np.int8).reshape(t.shape))
    return out


def run_board(name: str, board_name: str, level: str, work: Path) -> dict:
    board = load_board(board_name)
    out = work / f"{name.replace(':', '_')}_{board_name}_{level}"
    m = convert(model_path(name), out, ConvertOptions(board=board_name, optimize=level)).manifest
    row = {"model": name, "board": board_name, "optimize": level, "macs": m.macs, "constant_bytes": m.weight_bytes,
           "arena_bytes": m.arena_bytes}
    try:
        result, m = build_and_record(out, board, m)
    except Exception as exc:  # a model that does not fit the board: say so in the table
        row["error"] = str(exc).splitlines()[0]
        return row
    s = validate(out, board, [fixed_input(m)], manifest=m)
    if s.error or s.bit_exact != 1:
        row["error"] = s.error or "NOT BIT-EXACT"
        return row
    per_class: dict[str, int] = defaultdict(int)
    for layer, c in zip(m.layers, s.layer_cycles_sum or []):
        per_class[layer.op] += int(c)
    row.update(instructions=int(s.cycles[0]), per_mac=s.cycles[0] / max(m.macs, 1), code_bytes=result.code_bytes,
               per_class=dict(per_class))
    return row


def run_host(name: str, work: Path, runs: int) -> dict:
    """Mean wall time per inference of tinyc's host build and of LiteRT (default, BUILTIN_REF)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    board = load_board("host")
    out = work / f"{name.replace(':', '_')}_host"
    m = convert(model_path(name), out, ConvertOptions(board="host")).manifest
    build_and_record(out, board, m)
    x = fixed_input(m)
    s = validate(out, board, [x] * runs, manifest=m)
    tinyc_ns = float(np.mean(s.cycles)) if s.cycle_unit == "ns" else float("nan")
    row = {"model": name, "tinyc_ns": tinyc_ns, "bit_exact": s.bit_exact == runs}
    for label, kind in (("litert_default_ns", OpResolverType.AUTO), ("litert_ref_ns", OpResolverType.BUILTIN_REF)):
        it = Interpreter(model_path=str(out / "model.tflite"), experimental_op_resolver_type=kind, num_threads=1)
        it.allocate_tensors()
        for d, v in zip(it.get_input_details(), x):
            it.set_tensor(d["index"], v.reshape(d["shape"]))
        it.invoke()
        t0 = time.perf_counter()
        for _ in range(runs):
            it.invoke()
        row[label] = (time.perf_counter() - t0) / runs * 1e9
    return row


def markdown(rows: list[dict], host: list[dict]) -> str:
    lines = ["# Speed: tinyc against TFLM + CMSIS-NN (instructions per inference)", "",
             "Instructions under QEMU `-icount shift=0` (SysTick), fixed input in[i] = (int8)((i*7) & 0xFF), "
             "bit-exact with LiteRT BUILTIN_REF. Instruction counts are not cycles: the emulator models no "
             "pipeline, caches or wait states. TFLM + CMSIS-NN: figures recorded in issue #9 (TFLM 90b983c2 + "
             "CMSIS-NN 4ab83cc3, arm-none-eabi-gcc 12.2, mps2-an386); they are not rebuilt here (a workplace rule "
             "forbids committing a script that builds fetched code).", "",
             "| model | board | optimize | MACs | instructions | per MAC | TFLM+CMSIS-NN | tinyc / TFLM+CMSIS-NN "
             "| code (B) | constants (B) | arena (B) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows + OTHER_BOARD_ROWS:
        peer = TFLM.get(r["model"], (None, None))[1] if r["board"] == "mps2-an386" else None
        if "error" in r:
            lines.append(f"| {r['model']} | {r['board']} | {r['optimize']} | {r['macs']:,} | {r['error']} "
                         "| | | | | | |")
            continue
        ratio = f"{r['instructions'] / peer:.2f}x" if peer else "-"
        lines.append(f"| {r['model']} | {r['board']} | {r['optimize']} | {r['macs']:,} | {r['instructions']:,} | "
                     f"{r['per_mac']:.2f} | {f'{peer:,}' if peer else '-'} | {ratio} | {r['code_bytes']:,} | "
                     f"{r['constant_bytes']:,} | {r['arena_bytes']:,} |")
    lines += ["", "## Per layer class (instructions)", "", "| model | board | optimize | per class |", "|---|---|---|---|"]
    for r in rows:
        if "per_class" in r:
            cls = ", ".join(f"{k} {v:,}" for k, v in sorted(r["per_class"].items(), key=lambda kv: -kv[1]))
            lines.append(f"| {r['model']} | {r['board']} | {r['optimize']} | {cls} |")
    if host:
        lines += ["", f"## Host latency ({platform.machine()}, single thread, one run)", "",
                  "| model | tinyc (us) | LiteRT default (us) | LiteRT BUILTIN_REF (us) | LiteRT default / tinyc "
                  "| BUILTIN_REF / tinyc |", "|---|---:|---:|---:|---:|---:|"]
        for h in host:
            lines.append(f"| {h['model']} | {h['tinyc_ns'] / 1e3:,.1f} | {h['litert_default_ns'] / 1e3:,.1f} | "
                         f"{h['litert_ref_ns'] / 1e3:,.1f} | {h['litert_default_ns'] / h['tinyc_ns']:.2f} | "
                         f"{h['litert_ref_ns'] / h['tinyc_ns']:.2f} |")
        lines += ["", "(Rows for NEON / x86 kernels and the a72-virt board: to be added by that work, "
                  "same columns.)"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--boards", default=",".join(BOARDS))
    ap.add_argument("--levels", default=",".join(LEVELS))
    ap.add_argument("--host-runs", type=int, default=20, help="inferences timed per model on the host (0: skip)")
    a = ap.parse_args()
    rows, host = [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in a.models.split(","):
            for board_name in a.boards.split(","):
                for level in a.levels.split(","):
                    r = run_board(name, board_name, level, work)
                    rows.append(r)
                    print(f"{name} {board_name} {level}: {r.get('instructions', r.get('error'))}", file=sys.stderr)
            if a.host_runs and not name.startswith("example:"):
                host.append(run_host(name, work, a.host_runs))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "speed.json").write_text(json.dumps({"boards": rows, "host": host, "tflm_cmsis_nn_mps2_an386": TFLM},
                                                   indent=2) + "\n")
    (RESULTS / "speed.md").write_text(markdown(rows, host))
    print(f"wrote {RESULTS / 'speed.md'} and speed.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
