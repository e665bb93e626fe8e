"""What `tinyc convert` does, as one library call: any model file -> OUTDIR."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tinyc.errors import TinycError
from tinyc.pipeline import ConvertResult, convert_graph, require_quantized


def _is_tflite(path: Path) -> bool:
    if path.is_dir():
        return False
    with open(path, "rb") as f:
        head = f.read(8)
    return head[4:8] == b"TFL3" or path.suffix == ".tflite"


def convert_any(model: Path, outdir: Path, board: str, *, calib=None, calib_random=None, per_tensor=False,
                io="int8", eval_data=None, echo: Callable[[str], None] = lambda s: None) -> ConvertResult:
    from tinyc.codegen import check_supported
    from tinyc.frontend.tflite import load_tflite, tflite_to_graph

    model = Path(model)
    float_options = calib is not None or calib_random is not None or per_tensor or io != "int8" or eval_data
    if _is_tflite(model):
        graph = load_tflite(model)
        is_float = _graph_is_float(graph)
    else:
        graph, is_float = None, True
    if not is_float:
        if calib is not None or calib_random is not None:
            echo(f"note: {model} is already int8; calibration data is not used\n")
        check_supported(graph)
        return convert_graph(graph, outdir, board)
    try:
        from tinyc import quantize_model
    except ModuleNotFoundError as exc:
        if exc.name != "tinyc.quantize_model":
            raise
        if graph is not None:
            require_quantized(graph, str(model))
        raise TinycError(f"{model} is not an int8 .tflite; this tinyc build compiles int8 TFLite models only") from None
    if calib is None and calib_random is None:
        raise TinycError(f"{model} is a float model: quantizing it to int8 needs calibration data to fix each "
                         "tensor's range; give --calib DATA.npy|.npz (a few hundred typical inputs)")
    prepared = quantize_model.prepare_int8(model, calib=calib, calib_random=calib_random, per_tensor=per_tensor,
                                           io=io, progress=echo)
    for w in prepared.warnings:
        echo(f"warning: {w}\n")
    qgraph = tflite_to_graph(prepared.tflite, source=str(model))
    qgraph.meta["source"] = str(model)
    check_supported(qgraph)
    extra = {"quantization_report": prepared.report} if prepared.report is not None else {}
    result = convert_graph(qgraph, outdir, board, extra=extra)
    result.prepared = prepared
    if eval_data is not None:
        result.manifest["evaluation"] = quantize_model.evaluate(prepared, outdir, eval_data, board=board)
        from tinyc.pipeline import update_manifest
        update_manifest(outdir, evaluation=result.manifest["evaluation"])
    return result


def _graph_is_float(graph) -> bool:
    try:
        require_quantized(graph, "model")
    except TinycError:
        return True
    return False


def summary_lines(result: ConvertResult) -> list[str]:
    lines = []
    rep = result.manifest.get("quantization_report")
    if rep:
        worst = rep.get("worst") or []
        if worst:
            lines.append("  worst layers by SQNR (float vs int8, on the calibration data):")
            for w in worst[:5]:
                lines.append(f"    {w.get('name', '?')[:48]:48s} {w.get('op', ''):18s} SQNR {w.get('sqnr_db', float('nan')):6.1f} dB"
                             f"  max err {w.get('max_abs_error', float('nan')):.4g}")
    ev = result.manifest.get("evaluation")
    if ev:
        lines.append("  accuracy: " + ", ".join(f"{k} {v * 100:.2f}%" for k, v in ev.items() if isinstance(v, float)))
    return lines
