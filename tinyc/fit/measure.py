"""What `tinyc fit` measures of a candidate: accuracy (LiteRT BUILTIN_REF on the candidate's
int8 graph: the generated C is bit-exact with it, so this is the board's accuracy), sizes from
a real build for the board, and instructions from the board's runner.

Builds and board runs are cached on disk by the candidate's key (model bytes + encodings +
board), so a plan the sampler proposes twice, or a rerun, costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyc.boards import Board, runner_status
from tinyc.build import build
from tinyc.build.firmware import image_sizes
from tinyc.convert import convert_graph
from tinyc.errors import TinycError
from tinyc.frontend.tflite import graph_to_tflite, tflite_to_graph
from tinyc.ir import Graph
from tinyc.outdir import load_manifest
from tinyc.passes.compress import compress
from tinyc.passes.prune import weight_layers
from tinyc.quantize.precision import PrecisionOptions, apply_precision
from tinyc.quantize.sqnr import as_input
from tinyc.reference import Reference
from tinyc.runners import open_session
from tinyc.samples import to_record
from tinyc.fit.space import Plan, plan_settings


@dataclass
class Candidate:
    """A plan applied to an int8 graph (the base model's, or the model fine-tuned for it)."""

    plan: Plan
    graph: Graph          # pruned, with meta["weight_encoding"]
    report: dict          # tinyc.passes.compress report
    tflite: bytes
    key: str              # cache key: model bytes, encodings, board, --optimize level
    source: Graph         # the graph before compression (mixed precision applied)
    optimize: str = "balanced"


class Measurer:
    """Accuracy, sizes and instructions of candidates for one base model, eval set and board."""

    def __init__(self, base: Graph, board: Board, x: np.ndarray, y: np.ndarray, cache_dir: Path,
                 base_16x8: bytes | None = None):
        self.base, self.board = base, board
        self.base_16x8 = base_16x8        # the 16x8 conversion of the same float model (--methods precision)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.base_tflite = graph_to_tflite(base)
        ref = Reference(self.base_tflite)
        detail = ref.inputs[0]
        self.inputs = [as_input(detail, s) for s in x]
        self.labels = np.asarray(y)
        self.evaluations = 0          # accuracy evaluations run (the tests count them)

    # ------------------------------------------------------------------ candidates

    def candidate(self, plan: Plan, base: Graph | None = None) -> Candidate:
        """`plan` applied to the base graph, or to `base` (a fine-tuned model's graph, its
        16x8 layers mixed in already)."""
        settings = plan_settings(plan)
        source = self.base if base is None else base
        if base is None and settings.precision:
            mixed, _ = apply_precision(self.base_tflite, self.base_16x8,
                                       PrecisionOptions("int8", per_layer=settings.precision), None)
            source = tflite_to_graph(mixed, source=self.base.meta.get("source", "model"))
            source.meta = dict(self.base.meta)
            # a 16x8 op is named after its int16 output now: same layers, same order
            names = dict(zip((l.name for l in weight_layers(self.base)), (l.name for l in weight_layers(source))))
            settings = plan_settings({names.get(k, k): v for k, v in plan.items()})
        graph, _, report = compress(source, settings.compress)
        tfl = graph_to_tflite(graph)
        enc = json.dumps({str(k): v.get("kind") for k, v in sorted(graph.meta.get("weight_encoding", {}).items())})
        key = hashlib.sha256(tfl + enc.encode() + self.board.name.encode()
                             + settings.optimize.encode()).hexdigest()[:16]
        return Candidate(plan, graph, report, tfl, key, source, settings.optimize)

    def accuracy(self, tflite: bytes, n: int | None = None) -> float:
        """Top-1 accuracy of an int8 model on the first n eval samples (all when None)."""
        self.evaluations += 1
        ref = Reference(tflite)
        k = len(self.inputs) if n is None else min(n, len(self.inputs))
        hits = 0
        for i in range(k):
            out = ref.run(self.inputs[i])[0].reshape(-1)
            hits += int(np.argmax(out) == self.labels[i])
        return hits / k if k else 0.0

    # ------------------------------------------------------------------ builds

    def _cached(self, c: Candidate, what: str) -> dict | None:
        p = self.cache_dir / f"{c.key}.{what}.json"
        return json.loads(p.read_text()) if p.is_file() else None

    def _store(self, c: Candidate, what: str, value: dict) -> dict:
        p = self.cache_dir / f"{c.key}.{what}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(p)
        return value

    def _outdir(self, c: Candidate) -> Path:
        d = self.cache_dir / c.key
        if not (d / "tinyc.json").is_file():
            convert_graph(c.graph, d, self.board.name, compression=(c.source, c.report), optimize=c.optimize)
        return d

    def sizes(self, c: Candidate) -> dict:
        """Measured bytes of a real build for the board: the model's constant data (weights,
        biases, multipliers, encoded streams) and code, its static RAM (arena), I/O buffers,
        and for firmware the whole image's flash and RAM. {"error": ...} when it does not fit."""
        hit = self._cached(c, "sizes")
        if hit is not None:
            return hit
        d = self._outdir(c)
        try:
            r = build(d, self.board)
        except TinycError as exc:
            return self._store(c, "sizes", {"error": str(exc)})
        m = load_manifest(d)
        io = sum(int(t.bytes) for t in m.inputs + m.outputs)
        out = {"weight_bytes": int(r.weight_bytes), "code_bytes": int(r.code_bytes),
               "ram_bytes": int(r.ram_bytes or 0) + io, "arena_bytes": int(m.arena_bytes)}
        if self.board.kind == "mcu":
            img = image_sizes(r.binary, self.board)
            out.update(image_flash=img["flash"], image_ram=img["ram"])
        return self._store(c, "sizes", out)

    def instructions(self, c: Candidate) -> dict | None:
        """Instructions (or cycles) of one inference on the board, in total and per layer;
        None when the board cannot run here."""
        hit = self._cached(c, "speed")
        if hit is not None:
            return hit
        if not runner_status(self.board)[0]:
            return None
        d = self._outdir(c)
        build(d, self.board)
        with open_session(self.board, d) as s:
            r = s.infer(to_record([self.inputs[0]]))
        return self._store(c, "speed", {"total": int(r.cycles) if r.cycles is not None else None,
                                        "unit": r.cycle_unit, "layers": list(r.layer_cycles or [])})

    def discard_build(self, c: Candidate) -> None:
        """Drop a candidate's sources and build (its measurements stay cached)."""
        shutil.rmtree(self.cache_dir / c.key, ignore_errors=True)
