"""convert: model file -> OUTDIR with C sources, model.tflite and tinyc.json.

Nothing half-written is left behind: everything is generated in a temporary folder beside
OUTDIR and moved into place only when complete.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyc import __version__
from tinyc.codegen import generate
from tinyc.errors import TinycError
from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph
from tinyc.ir import Graph

MANIFEST = "tinyc.json"


@dataclass
class ConvertResult:
    outdir: Path
    manifest: dict
    warnings: list[str] = field(default_factory=list)


def io_description(graph: Graph, indices: list[int]) -> list[dict]:
    out = []
    for t in indices:
        tensor = graph.tensors[t]
        q = tensor.quant
        out.append({
            "name": tensor.name,
            "shape": list(tensor.shape),
            "dtype": tensor.dtype,
            "bytes": tensor.nbytes,
            "scale": float(q.scale[0]) if q is not None else None,
            "zero_point": int(q.zero_point[0]) if q is not None else None,
        })
    return out


# Ops that only move float bytes (after a DEQUANTIZE at a float-I/O model's edge).
_FLOAT_OK = {"DEQUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


def first_float_op(graph: Graph) -> int | None:
    """Index of the first op that computes in float32, or None for an int8 graph."""
    for i, op in enumerate(graph.ops):
        if op.kind not in _FLOAT_OK and op.outputs and graph.tensors[op.outputs[0]].dtype == "float32":
            return i
    return None


def require_quantized(graph: Graph, source: str) -> None:
    """Refuse float graphs: their compute ops have float activations."""
    i = first_float_op(graph)
    if i is not None:
        raise TinycError(
            f"{source} is a float model (op {i}, {graph.ops[i].kind}, computes in float32); tinyc compiles int8: "
            "give an int8 .tflite, or a float/Keras model with calibration data (--calib DATA)")


def convert_graph(graph: Graph, outdir: Path, board: str = "host", extra: dict | None = None) -> ConvertResult:
    """Generate OUTDIR for an int8 graph (the graph is written back as model.tflite)."""
    tflite_bytes = graph_to_tflite(graph)
    # The reference runs the bytes we write: re-read them so the C is made from exactly that.
    meta = dict(graph.meta)
    graph = tflite_to_graph(tflite_bytes, source=str(outdir / "model.tflite"))
    graph.meta = meta
    outdir = Path(outdir)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.tmp-", dir=outdir.parent))
    try:
        gen = generate(graph, tmp, tflite_bytes, board)
        (tmp / "model.tflite").write_bytes(tflite_bytes)
        manifest = {
            "tinyc_version": __version__,
            "board": board,
            "model_hash": gen.model_hash,
            "source": graph.meta.get("source"),
            "ops": graph.op_kinds(),
            "inputs": io_description(graph, graph.inputs),
            "outputs": io_description(graph, graph.outputs),
            "arena_bytes": gen.plan.arena_bytes,
            "arena_order": gen.plan.order,
            "weight_bytes": gen.weight_bytes,
            "code_bytes": None,
            "macs": int(sum(l.macs for l in gen.layers)),
            "layers": [{"index": l.index, "name": l.name, "op": l.kind, "macs": int(l.macs)} for l in gen.layers],
        }
        if extra:
            manifest.update(extra)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
        _replace_dir(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ConvertResult(outdir, manifest)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _replace_dir(new: Path, target: Path) -> None:
    if target.exists():
        if not target.is_dir():
            raise TinycError(f"{target} exists and is not a folder; choose another -o")
        if any(target.iterdir()) and not (target / MANIFEST).exists():
            raise TinycError(f"{target} is a non-empty folder that tinyc did not make; choose another -o or empty it")
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


def load_manifest(outdir: Path) -> dict:
    path = Path(outdir) / MANIFEST
    if not path.is_file():
        raise TinycError(f"{outdir} has no {MANIFEST}: run `tinyc convert MODEL -o {outdir}` first")
    return json.loads(path.read_text())


def update_manifest(outdir: Path, **fields) -> dict:
    manifest = load_manifest(outdir)
    manifest.update(fields)
    path = Path(outdir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    tmp.replace(path)
    return manifest


def convert_model(model_path: Path, outdir: Path, board: str = "host") -> ConvertResult:
    """An int8 .tflite file -> OUTDIR (float and Keras models go through tinyc.quantize_model first)."""
    from tinyc.frontend.tflite import load_tflite

    graph = load_tflite(model_path)
    require_quantized(graph, str(model_path))
    from tinyc.codegen import check_supported
    check_supported(graph)
    return convert_graph(graph, outdir, board)
