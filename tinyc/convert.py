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
from tinyc.codegen import NUMERICS, OPTIMIZE_LEVELS, check_supported, generate, target_from_board
from tinyc.codegen.planner import buffer_rows
from tinyc.errors import TinycError
from tinyc.frontend import model_format
from tinyc.frontend.tflite import graph_to_tflite, load_tflite, tflite_to_graph
from tinyc.ir import Graph, first_float_op
from tinyc.metrics.accuracy import evaluate
from tinyc.metrics.compression import compression_summary
from tinyc.outdir import (MODEL_TFLITE, LayerInfo, Manifest, TensorInfo, check_outdir, save_manifest, staging,
                          update_manifest)
from tinyc.passes.compress import CompressOptions, compress
from tinyc.passes.normalise import normalise_for_reference
from tinyc.progress import Progress
from tinyc.quantize.precision import PrecisionOptions
from tinyc.quantize.finetune import DistillOptions, TrainOptions
from tinyc.quantize.lowrank import LowRankOptions
from tinyc.quantize.pipeline import KerasCompression, compress_keras
from tinyc.quantize.pipeline import check as check_keras_compression
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
    train: Path | None = None         # .npz with x, y: fine-tune a Keras model while compressing it
    rewind: bool = False              # with train: rewind survivors to an early checkpoint
    io_in_arena: bool = False         # the inputs live in the arena (their bytes reused once read)
    precision: PrecisionOptions = field(default_factory=PrecisionOptions)  # int8 | 16x8 | auto, per layer
    numerics: str = "litert"          # "litert": LiteRT BUILTIN_REF; "tflm": TensorFlow Lite Micro's rounding
    low_rank: LowRankOptions = field(default_factory=LowRankOptions)   # factorise Dense/Conv2D layers
    qat: bool = False                 # with train: quantization-aware fine-tuning
    distill: DistillOptions | None = None   # with train: learn from the original model as teacher
    training: TrainOptions | None = None    # epochs, batch size, learning rate of each fine-tuning

    def keras_compression(self) -> KerasCompression:
        """The Keras-side settings (tinyc.quantize.pipeline) of these options."""
        training = dataclasses.replace(self.training or TrainOptions(), rewind=self.rewind or
                                       (self.training.rewind if self.training else False))
        return KerasCompression(train=self.train, prune=self.compress.prune, cluster=self.compress.cluster,
                                low_rank=self.low_rank, qat=self.qat, per_tensor=self.per_tensor,
                                distill=self.distill, training=training)


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
    if o.numerics not in NUMERICS:
        raise TinycError(f"--numerics {o.numerics} is unknown; choose one of {', '.join(NUMERICS)}")
    target_from_board(load_board(o.board).raw, o.optimize)  # an unknown board or level fails before any work
    model, outdir = Path(model), Path(outdir)
    check_outdir(outdir)
    if o.rewind and o.train is None:
        raise TinycError("--rewind rewinds weights during pruning with fine-tuning: give --train DATA.npz too, "
                         "or drop --rewind")
    fmt = model_format(model)
    graph = load_tflite(model) if fmt == "tflite" else None
    kc = o.keras_compression()
    check_keras_compression(kc)
    if graph is not None and first_float_op(graph) is None:
        return _convert_int8(graph, model, outdir, o)
    if not kc.needs_keras:
        return _convert_float(model, fmt, model, outdir, o, progress)
    # Low-rank, pruning, clustering and QAT with fine-tuning, on the Keras model, before quantization.
    if fmt == "tflite":
        raise TinycError(f"--train and --low-rank work on Keras models; {model} is not one (.keras, .h5 or SavedModel)")
    compressed, sections, tmpdir = compress_keras(model, kc, progress=progress)
    trained = o.train is not None
    o = dataclasses.replace(
        o, calib=o.train if o.calib is None and o.calib_random is None else o.calib,  # train data calibrates
        compress=dataclasses.replace(
            o.compress, report=True,
            # pruned in float already (its zeros stay zero in int8); shared values are merged
            # again in int8 (per-channel scales split a float centroid into several values)
            prune=dataclasses.replace(o.compress.prune, sparsity=None, per_layer={}) if trained else o.compress.prune))
    try:
        return _convert_float(compressed, "keras", model, outdir, o, progress, sections)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _convert_int8(graph: Graph, model: Path, outdir: Path, o: ConvertOptions) -> ConvertResult:
    notes = []
    if o.calib is not None or o.calib_random is not None:
        notes.append(f"{model} is already int8; calibration data is not used")
    if o.precision.precision != "int8" or o.precision.per_layer:
        raise TinycError(f"--precision chooses how a float model is quantized; {model} is quantized already")
    if o.io != "int8":
        notes.append(f"{model} is already int8 with {first_io_dtype(graph)} I/O; --io {o.io} applies to float "
                     "models only (quantize the float model with --io float to get float I/O)")
    if o.per_tensor:
        notes.append(f"{model} is already int8; --per-tensor applies to float models only")
    if o.train is not None:
        raise TinycError(f"--train needs a Keras model to fine-tune; {model} is an int8 .tflite: "
                         "drop --train to prune its int8 weights directly")
    if o.low_rank.active:
        raise TinycError(f"--low-rank rewrites the float model before quantization; {model} is an int8 .tflite: "
                         "give the Keras model")
    check_supported(graph)
    graph, normalised = normalise_for_reference(graph)
    result = _compress_and_write(graph, outdir, o, {})
    result.notes = notes + normalised + result.notes
    return result


def _convert_float(path: Path, fmt: str, source: Path, outdir: Path, o: ConvertOptions,
                   progress: Progress | None, sections: dict | None = None) -> ConvertResult:
    if o.calib is None and o.calib_random is None:
        raise TinycError(f"{path} is a float model: quantizing it to int8 needs calibration data to fix each "
                         "tensor's range; give --calib DATA.npy|.npz (a few hundred typical inputs)")
    prepared = quantize_float(path, fmt, calib=o.calib, calib_random=o.calib_random, per_tensor=o.per_tensor,
                              precision=o.precision, io=o.io, progress=progress,
                              check=lambda int8: check_supported(tflite_to_graph(int8, source=str(source))))
    graph = tflite_to_graph(prepared.tflite, source=str(source))
    graph.meta["source"] = str(source)
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
        return convert_graph(graph, outdir, o.board, sections, io_in_arena=o.io_in_arena,
                             optimize=o.optimize, numerics=o.numerics)
    compressed, _, report = compress(graph, o.compress)
    result = convert_graph(compressed, outdir, o.board, sections, compression=(graph, report),
                           io_in_arena=o.io_in_arena, optimize=o.optimize, numerics=o.numerics)
    result.notes += compression_notes(o.compress, report)
    return result


def compression_notes(options: CompressOptions, report: dict) -> list[str]:
    """Why pruning or encoding did not shrink the model, when it did not."""
    layers = report.get("layers", [])
    pruned = "pruning" in report or "channel_pruning" in report
    if options.weights_mode == "raw" and "pruning" in report:
        return ["--prune zeroed weights, but --weights raw stores the zeros too: add --weights auto "
                "(or sparse / huffman) to make the model smaller"]
    if options.weights_mode == "raw" or not layers or any(l["encoding"]["kind"] != "raw" for l in layers):
        return []
    reasons = []
    for l in layers:
        e, where = l["encoding"], f"op {l['op_index']} {l['op']}"
        if e.get("why_raw"):
            reasons.append(f"{where}: {e['why_raw']}")
            continue
        smaller = {k: v for k, v in e["candidates"].items() if k != "raw" and v < e["candidates"]["raw"]}
        if not smaller:
            reasons.append(f"{where}: no encoding is smaller than raw")
        else:
            k = min(smaller, key=smaller.get)
            reasons.append(f"{where}: {k} would take {smaller[k]:,} of {e['candidates']['raw']:,} B but is "
                           f"estimated {e['estimated_slowdown'][k]:.1f}x slower (auto allows 2x)")
    more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
    hint = "force one with --weights sparse|huffman" + ("" if pruned else ", or prune first (--prune S)")
    return [f"--weights {options.weights_mode} kept all {len(layers)} weight layers raw: "
            f"{'; '.join(reasons[:3])}{more} ({hint})"]


def first_io_dtype(graph: Graph) -> str:
    return graph.tensors[graph.inputs[0]].dtype if graph.inputs else "no"


def convert_graph(graph: Graph, outdir: Path, board: str = "host", sections: dict | None = None,
                  compression: tuple[Graph, dict] | None = None, io_in_arena: bool = False,
                  optimize: str = "balanced", numerics: str = "litert") -> ConvertResult:
    """Write OUTDIR for an int8 graph (checked already): C sources, model.tflite, tinyc.json.
    The C is laid out for the board's [target] at the `optimize` level (recorded in the
    manifest's `target` section).

    compression: (the graph before compression, the compress report), measured against the
    generated C into the manifest's `compression` section. io_in_arena: the inputs live in
    the arena."""
    tflite_bytes = graph_to_tflite(graph)
    # The reference runs the bytes we write: re-read them so the C is made from exactly that.
    meta = dict(graph.meta)
    graph = tflite_to_graph(tflite_bytes, source=str(Path(outdir) / MODEL_TFLITE))
    graph.meta = meta
    with staging(outdir) as tmp:
        target = dataclasses.replace(target_from_board(load_board(board).raw, optimize), numerics=numerics)
        gen = generate(graph, tmp, tflite_bytes, board, io_in_arena=io_in_arena, target=target)
        if numerics != "litert":
            sections = {**(sections or {}), "numerics": numerics}
        (tmp / MODEL_TFLITE).write_bytes(tflite_bytes)
        manifest = Manifest(
            tinyc_version=__version__, board=board, model_hash=gen.model_hash, source=graph.meta.get("source"),
            ops=graph.op_kinds(), inputs=tensor_infos(graph, graph.inputs),
            outputs=tensor_infos(graph, graph.outputs), arena_bytes=gen.plan.arena_bytes,
            arena_order=gen.plan.order, weight_bytes=gen.weight_bytes, code_bytes=None,
            macs=int(sum(l.macs for l in gen.layers)),
            layers=[LayerInfo(l.index, l.name, l.kind, int(l.macs)) for l in gen.layers],
            sections={"target": target.to_dict(), **(sections or {})})
        manifest.sections["memory_plan"] = buffer_rows(graph, gen.plan)
        manifest.sections["memory"] = memory_summary(graph, gen.plan)
        if compression is not None:
            original, report = compression
            manifest.sections["compression"] = compression_summary(original, report, gen.weight_bytes,
                                                                   manifest.sections.get("keras_compression"))
        save_manifest(tmp, manifest)
    return ConvertResult(Path(outdir), manifest)


def memory_summary(graph: Graph, plan) -> dict:
    """tinyc.json's `memory` section: the arena, its lower bound, where the inputs live and
    which layers run in place."""
    return {"arena_bytes": plan.arena_bytes, "lower_bound_bytes": plan.lower_bound,
            "io_in_arena": plan.io_in_arena,
            "in_place_layers": [u.op for u in plan.inplace if plan.overlaps_in_place(u)]}


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
