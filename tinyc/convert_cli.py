"""What `tinyc convert` does, as one library call: any model file -> OUTDIR."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tinyc.errors import TinycError
from tinyc.pipeline import ConvertResult, first_float_op


def _is_tflite(path: Path) -> bool:
    if path.is_dir():
        return False
    with open(path, "rb") as f:
        head = f.read(8)
    return head[4:8] == b"TFL3" or path.suffix == ".tflite"


def convert_any(model: Path, outdir: Path, board: str, *, calib=None, calib_random=None, per_tensor=False,
                io="int8", eval_data=None, echo: Callable[[str], None] = lambda s: None,
                compress_options=None, train=None, rewind=False) -> ConvertResult:
    from tinyc.codegen import check_supported
    from tinyc.compress import convert_compressed
    from tinyc.frontend.tflite import load_tflite

    model = Path(model)
    if _is_tflite(model):
        graph = load_tflite(model)
        is_float = first_float_op(graph) is not None
    else:
        graph, is_float = None, True
    if not is_float:
        if calib is not None or calib_random is not None:
            echo(f"note: {model} is already int8; calibration data is not used\n")
        if train is not None:
            raise TinycError(f"--train needs a Keras model to fine-tune; {model} is an int8 .tflite: "
                             "drop --train to prune its int8 weights directly")
        check_supported(graph)
        return convert_compressed(graph, outdir, board, compress_options)
    from tinyc import quantize_model
    pruned_rows = None
    if train is not None:  # gradual pruning with fine-tuning, on the Keras model, before quantization
        import dataclasses
        import shutil

        from tinyc.compress import prune_keras_file
        from tinyc.frontend.keras import is_keras_path
        if not is_keras_path(model):
            raise TinycError(f"--train fine-tunes Keras models; {model} is not one (.keras, .h5 or SavedModel)")
        if compress_options is None or not (compress_options.prune.sparsity or compress_options.prune.per_layer):
            raise TinycError("--train is for pruning with fine-tuning: give --prune S or --prune-layer NAME=S too")
        pruned, pruned_rows, tmpdir = prune_keras_file(model, train, compress_options.prune, rewind=rewind,
                                                       progress=echo)
        if calib is None and calib_random is None:
            calib = train  # the training inputs calibrate the int8 ranges
        compress_options = dataclasses.replace(compress_options, prune=dataclasses.replace(
            compress_options.prune, sparsity=None, per_layer={}), report=True)
        try:
            return _convert_float(pruned, outdir, board, quantize_model, calib, calib_random, per_tensor, io,
                                  eval_data, echo, compress_options, source=model, pruned_rows=pruned_rows)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return _convert_float(model, outdir, board, quantize_model, calib, calib_random, per_tensor, io, eval_data,
                          echo, compress_options)


def _convert_float(model, outdir, board, quantize_model, calib, calib_random, per_tensor, io, eval_data, echo,
                   compress_options, source=None, pruned_rows=None) -> ConvertResult:
    from tinyc.codegen import check_supported
    from tinyc.compress import convert_compressed
    from tinyc.frontend.tflite import tflite_to_graph

    source = source or model
    if calib is None and calib_random is None:
        raise TinycError(f"{model} is a float model: quantizing it to int8 needs calibration data to fix each "
                         "tensor's range; give --calib DATA.npy|.npz (a few hundred typical inputs)")
    prepared = quantize_model.prepare_int8(model, calib=calib, calib_random=calib_random, per_tensor=per_tensor,
                                           io=io, progress=_progress_printer(echo))
    for w in prepared.warnings:
        echo(f"warning: {w}\n")
    qgraph = tflite_to_graph(prepared.tflite, source=str(source))
    qgraph.meta["source"] = str(source)
    check_supported(qgraph)
    extra = {"quantization_report": prepared.report} if prepared.report is not None else {}
    if pruned_rows is not None:
        extra["keras_pruning"] = pruned_rows
    result = convert_compressed(qgraph, outdir, board, compress_options, extra=extra)
    result.prepared = prepared
    if eval_data is not None:
        result.manifest["evaluation"] = quantize_model.evaluate(prepared, outdir, eval_data, board=board,
                                                                progress=_progress_printer(echo))
        from tinyc.pipeline import update_manifest
        update_manifest(outdir, evaluation=result.manifest["evaluation"])
    return result


def _progress_printer(echo: Callable[[str], None]):
    """progress(stage, done, total) -> a one-line bar per stage on stderr."""
    def progress(stage, done, total):
        if not total:
            echo(f"{stage}\n")
            return
        if done == total or done % max(1, total // 20) == 0:
            filled = 30 * done // total
            echo(f"\r  {stage}: [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}" + ("\n" if done == total else ""))
    return progress


def summary_lines(result: ConvertResult) -> list[str]:
    lines = []
    rep = result.manifest.get("quantization_report")
    if rep:
        from tinyc.qreport import format_worst
        lines.append("  worst layers by quantization error (SQNR in dB, float vs int8, on the calibration data):")
        lines.extend("    " + l for l in format_worst(rep))
    ev = result.manifest.get("evaluation")
    if ev:
        from tinyc.quantize_model import format_evaluation
        lines.extend("  " + l for l in format_evaluation(ev))
    return lines
