"""`convert(model, outdir, options)`: THE entry that turns a model file into OUTDIR. The CLI,
the tests' helpers and the benches all call it.

One linear flow:
    load (one look at the file: tinyc.frontend.model_format)
 -> quantize, if the model is float (tinyc.quantize, TensorFlow)
 -> check support (once) -> compress (tinyc.passes.compress, IR -> IR)
 -> generate the C (tinyc.codegen.generate, the one lowering) -> write OUTDIR (tinyc.outdir)
 -> evaluate (--eval: float / int8 reference / generated C accuracy)

Nothing here prints; warnings and notes come back in the result, progress goes to a
`progress(stage, done, total, note)` callback (tinyc.progress).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tinyc import __version__
from tinyc.boards import load_board
from tinyc.codegen import OPTIMIZE_LEVELS, check_supported, generate, target_from_board
from tinyc.errors import TinycError
from tinyc.frontend import model_format
from tinyc.frontend.tflite import graph_to_tflite, load_tflite, tflite_to_graph
from tinyc.ir import Graph, first_float_op
from tinyc.metrics.accuracy import evaluate
from tinyc.metrics.compression import compression_summary
from tinyc.outdir import MODEL_TFLITE, LayerInfo, Manifest, TensorInfo, save_manifest, staging, update_manifest
from tinyc.passes.compress import CompressOptions, compress
from tinyc.progress import Progress
from tinyc.quantize.finetune import prune_keras_file
from tinyc.quantize.prepare import PreparedModel, quantize_float


@dataclass
class ConvertOptions:
    board: str = "host"
    optimize: str = "balanced"        # "balanced" | "speed" | "size": layouts the kernels get (codegen.target)
    calib: object = None              # .npy / .npz path, or an array of float samples
    calib_random: int | None = None   # N random calibration samples (smoke tests only)
    per_tensor: bool = False          # per-tensor weight scales instead of per-channel
    io: str = "int8"                  # I/O type of a quantized float model: "int8" or "float"
    eval_data: Path | None = None     # .npz with x (and y): accuracy after conversion
    compress: CompressOptions = field(default_factory=CompressOptions)
    train: Path | None = None         # .npz with x, y: prune a Keras model while fine-tuning it
    rewind: bool = False              # with train: rewind survivors to an early checkpoint


@dataclass
class ConvertResult:
    outdir: Path
    manifest: Manifest
    warnings: list[str] = field(default_factory=list)   # things the user should fix or know
    notes: list[str] = field(default_factory=list)      # harmless remarks (options not used)
    prepared: PreparedModel | None = None                # the quantized model, for float input


def convert(model, outdir, options: ConvertOptions | None = None,
            progress: Progress | None = None) -> ConvertResult:
    """Compile a model file (.tflite, .keras, .h5 or SavedModel folder) into OUTDIR."""
    o = options or ConvertOptions()
    target_from_board(load_board(o.board).raw, o.optimize)  # an unknown board or level fails before any work
    model, outdir = Path(model), Path(outdir)
    fmt = model_format(model)
    graph = load_tflite(model) if fmt == "tflite" else None
    if graph is not None and first_float_op(graph) is None:
        return _convert_int8(graph, model, outdir, o)
    if o.train is None:
        return _convert_float(model, fmt, model, outdir, o, progress)
    # Gradual pruning with fine-tuning, on the Keras model, before quantization.
    if fmt == "tflite":
        raise TinycError(f"--train fine-tunes Keras models; {model} is not one (.keras, .h5 or SavedModel)")
    if not (o.compress.prune.sparsity or o.compress.prune.per_layer):
        raise TinycError("--train is for pruning with fine-tuning: give --prune S or --prune-layer NAME=S too")
    pruned, rows, tmpdir = prune_keras_file(model, o.train, o.compress.prune, rewind=o.rewind, progress=progress)
    o = dataclasses.replace(
        o, calib=o.train if o.calib is None and o.calib_random is None else o.calib,  # train data calibrates
        compress=dataclasses.replace(o.compress, report=True,
                                     prune=dataclasses.replace(o.compress.prune, sparsity=None, per_layer={})))
    try:
        return _convert_float(pruned, "keras", model, outdir, o, progress, {"keras_pruning": rows})
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _convert_int8(graph: Graph, model: Path, outdir: Path, o: ConvertOptions) -> ConvertResult:
    notes = []
    if o.calib is not None or o.calib_random is not None:
        notes.append(f"{model} is already int8; calibration data is not used")
    if o.train is not None:
        raise TinycError(f"--train needs a Keras model to fine-tune; {model} is an int8 .tflite: "
                         "drop --train to prune its int8 weights directly")
    check_supported(graph)
    result = _compress_and_write(graph, outdir, o, {})
    result.notes = notes
    return result


def _convert_float(path: Path, fmt: str, source: Path, outdir: Path, o: ConvertOptions,
                   progress: Progress | None, sections: dict | None = None) -> ConvertResult:
    if o.calib is None and o.calib_random is None:
        raise TinycError(f"{path} is a float model: quantizing it to int8 needs calibration data to fix each "
                         "tensor's range; give --calib DATA.npy|.npz (a few hundred typical inputs)")
    prepared = quantize_float(path, fmt, calib=o.calib, calib_random=o.calib_random, per_tensor=o.per_tensor,
                              io=o.io, progress=progress)
    graph = tflite_to_graph(prepared.tflite, source=str(source))
    graph.meta["source"] = str(source)
    check_supported(graph)
    first = {"quantization_report": prepared.report} if prepared.report is not None else {}
    result = _compress_and_write(graph, outdir, o, {**first, **(sections or {})})
    result.prepared = prepared
    result.warnings = list(prepared.warnings)
    if o.eval_data is not None:
        evaluation = evaluate(prepared, outdir, o.eval_data, board=o.board, progress=progress)
        result.manifest = update_manifest(outdir, result.manifest, evaluation=evaluation)
    return result


def _compress_and_write(graph: Graph, outdir: Path, o: ConvertOptions, sections: dict) -> ConvertResult:
    if not o.compress.active:
        return convert_graph(graph, outdir, o.board, sections, optimize=o.optimize)
    compressed, _, report = compress(graph, o.compress)
    return convert_graph(compressed, outdir, o.board, sections, compression=(graph, report), optimize=o.optimize)


def convert_graph(graph: Graph, outdir: Path, board: str = "host", sections: dict | None = None,
                  compression: tuple[Graph, dict] | None = None, optimize: str = "balanced") -> ConvertResult:
    """Write OUTDIR for an int8 graph (checked already): C sources, model.tflite, tinyc.json.
    The C is laid out for the board's [target] at the `optimize` level (recorded in the
    manifest's `target` section).

    compression: (the graph before compression, the compress report), measured against the
    generated C into the manifest's `compression` section."""
    tflite_bytes = graph_to_tflite(graph)
    # The reference runs the bytes we write: re-read them so the C is made from exactly that.
    meta = dict(graph.meta)
    graph = tflite_to_graph(tflite_bytes, source=str(Path(outdir) / MODEL_TFLITE))
    graph.meta = meta
    with staging(outdir) as tmp:
        target = target_from_board(load_board(board).raw, optimize)
        gen = generate(graph, tmp, tflite_bytes, board, target=target)
        (tmp / MODEL_TFLITE).write_bytes(tflite_bytes)
        manifest = Manifest(
            tinyc_version=__version__, board=board, model_hash=gen.model_hash, source=graph.meta.get("source"),
            ops=graph.op_kinds(), inputs=tensor_infos(graph, graph.inputs),
            outputs=tensor_infos(graph, graph.outputs), arena_bytes=gen.plan.arena_bytes,
            arena_order=gen.plan.order, weight_bytes=gen.weight_bytes, code_bytes=None,
            macs=int(sum(l.macs for l in gen.layers)),
            layers=[LayerInfo(l.index, l.name, l.kind, int(l.macs)) for l in gen.layers],
            sections={"target": target.to_dict(), **(sections or {})})
        if compression is not None:
            original, report = compression
            manifest.sections["compression"] = compression_summary(original, report, gen.weight_bytes)
        save_manifest(tmp, manifest)
    return ConvertResult(Path(outdir), manifest)


def tensor_infos(graph: Graph, indices: list[int]) -> list[TensorInfo]:
    out = []
    for t in indices:
        tensor = graph.tensors[t]
        q = tensor.quant
        out.append(TensorInfo(
            name=tensor.name, shape=list(tensor.shape), dtype=tensor.dtype, bytes=tensor.nbytes,
            scale=float(q.scale[0]) if q is not None else None,
            zero_point=int(q.zero_point[0]) if q is not None else None))
    return out
