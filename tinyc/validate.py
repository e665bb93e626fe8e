"""`tinyc validate`: run a board and the reference on the same inputs and compare every
output byte.

Each sample's result is appended to the JSON Lines report as soon as it arrives, so a run
that breaks keeps everything it measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyc import __version__
from tinyc.boards import Board, load_board
from tinyc.build import build_and_record, record_stack
from tinyc.build.firmware import memory_layout
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.outdir import MODEL_TFLITE, Manifest, TensorInfo, load_manifest
from tinyc.progress import Progress, report as report_progress
from tinyc.paths import check_writable_file
from tinyc.probes import resolve_port
from tinyc.reference import REFERENCE_NAMES, ReferenceProcess, litert_mishandles
from tinyc.runners import open_session, session_options
from tinyc.runners.pool import PoolEvents, infer_sharded
from tinyc.samples import (check_index_inputs, from_record, input_ranges, load_inputs, random_inputs, shape_inputs,
                           to_record)


@dataclass
class Summary:
    samples: int = 0
    bit_exact: int = 0
    max_abs_diff: list[float] = field(default_factory=list)   # per output
    top1_agree: int = 0
    top1_total: int = 0
    correct: int = 0
    labelled: int = 0
    cycles: list[int] = field(default_factory=list)
    cycle_unit: str = ""
    layer_cycles_sum: list[int] | None = None
    error: str | None = None
    report_path: str | None = None
    stack_max: int | None = None         # largest stack high-water mark of an inference, bytes
    stack_reserved: int | None = None    # the stack the board's firmware reserves (board TOML), bytes
    link: dict | None = None             # the serial link's counts (LinkStats); None: no serial link
    distinct_outputs: int = 0            # 1 when every sample gave the same output bytes
    reference: str = REFERENCE_NAMES["litert"]   # which interpreter gave the expected outputs
    reference_note: str | None = None            # why it is not LiteRT BUILTIN_REF
    lost_sessions: list[str] = field(default_factory=list)   # sessions that died (their samples ran elsewhere)
    notes: list[str] = field(default_factory=list)           # e.g. which serial port --port auto chose

    @property
    def passed(self) -> bool:
        return self.error is None and self.samples > 0 and self.bit_exact == self.samples

    def as_dict(self) -> dict:
        d = {
            "samples": self.samples, "bit_exact": self.bit_exact,
            "max_abs_diff": self.max_abs_diff, "passed": self.passed,
            "top1_agreement": (self.top1_agree / self.top1_total) if self.top1_total else None,
            "accuracy": (self.correct / self.labelled) if self.labelled else None,
            "cycle_unit": self.cycle_unit or None,
            "reference": self.reference,
        }
        if self.reference_note:
            d["reference_note"] = self.reference_note
        if self.cycles:
            d.update(cycles_mean=float(np.mean(self.cycles)), cycles_min=int(min(self.cycles)),
                     cycles_max=int(max(self.cycles)))
        if self.layer_cycles_sum is not None and self.samples:
            d["layer_cycles_mean"] = [c / self.samples for c in self.layer_cycles_sum]
        if self.stack_max is not None:
            d.update(stack_bytes_max=self.stack_max, stack_bytes_reserved=self.stack_reserved)
        if self.link is not None:
            d["link"] = self.link
        if self.constant_output:
            d["constant_output"] = True
        if self.error:
            d["error"] = self.error
        if self.lost_sessions:
            d["lost_sessions"] = self.lost_sessions
        return d

    @property
    def constant_output(self) -> bool:
        """Every one of several samples gave the same output: a PASS that proves little."""
        return self.samples > 1 and self.distinct_outputs == 1


def _is_classifier(outputs: list[TensorInfo]) -> bool:
    t = outputs[0]
    return len(outputs) == 1 and 1 < int(np.prod(t.shape)) <= 100 and int(np.prod(t.shape[:-1])) == 1


def validate(outdir: Path, board: Board, samples: list[list[np.ndarray]], *,
             labels: np.ndarray | None = None, report: Path | None = None,
             progress: Progress | None = None, session_options: dict | None = None,
             manifest: Manifest | None = None, run_info: dict | None = None, jobs: int = 1,
             ports: list[str] | None = None, reference: str = "litert") -> Summary:
    """Run `samples` on `jobs` sessions of `board` (one per port of `ports` when given) and
    compare every byte with the reference (`reference`: "litert" BUILTIN_REF, falling back to
    TFLM where LiteRT cannot run the model, or "tflm").

    With `report`, the JSON Lines file gets a run-marker row first ({"run": {board, model
    hash, time, tinyc version, samples, **run_info (seed, input)}}), one row per sample in
    sample order (with `stack_bytes` when the board measures it), an `error` row if the run
    breaks, and a final {"link": {...}} row (the serial links' counts; null on host)."""
    outdir = Path(outdir)
    manifest = manifest if manifest is not None else load_manifest(outdir)
    outputs = manifest.outputs
    # In a child process: LiteRT can abort on a model; TFLM answers where LiteRT cannot.
    avoid = ("--reference tflm asks for TFLM's interpreter" if reference == "tflm"
             else litert_mishandles(load_tflite(outdir / MODEL_TFLITE)))
    ref = ReferenceProcess(outdir / MODEL_TFLITE, probe=samples[0] if samples else None, avoid_litert=avoid)
    summary = Summary(max_abs_diff=[0.0] * len(outputs), reference=ref.name,
                      reference_note=None if reference == "tflm" else ref.fallback_reason)
    if board.kind == "mcu":
        summary.stack_reserved = memory_layout(board)["stack_bytes"]
    classifier = _is_classifier(outputs)
    seen_outputs: set[bytes] = set()
    report_file = None
    if report is not None:
        report = Path(report)
        report.parent.mkdir(parents=True, exist_ok=True)
        report_file = report.open("a", buffering=1)
        summary.report_path = str(report)
        report_file.write(json.dumps({"run": {
            "board": board.name, "model_hash": manifest.model_hash, "time": time.time(),
            "tinyc": __version__, "samples": len(samples), **(run_info or {})}}) + "\n")
    opened: list = []
    open_one = _session_opener(board, outdir, manifest, session_options or {}, ports, opened)
    pool_events = PoolEvents()
    try:
        records = [to_record(s) for s in samples]
        for i, result in infer_sharded(open_one, records, jobs, pool_events):
            sample = samples[i]
            expected = ref.run(*sample)
            got = from_record(result.output, outputs)
            diffs = [float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64)))) if g.size else 0.0
                     for g, e in zip(got, expected)]
            exact = all(g.tobytes() == e.astype(g.dtype).tobytes() for g, e in zip(got, expected))
            summary.samples += 1
            summary.bit_exact += int(exact)
            summary.max_abs_diff = [max(a, b) for a, b in zip(summary.max_abs_diff, diffs)]
            row = {"index": i, "bit_exact": exact, "max_abs_diff": max(diffs) if diffs else 0.0}
            if classifier:
                pred, want = int(np.argmax(got[0])), int(np.argmax(expected[0]))
                summary.top1_total += 1
                summary.top1_agree += int(pred == want)
                row["top1"] = pred
                row["top1_reference"] = want
                if labels is not None and i < len(labels):
                    summary.labelled += 1
                    summary.correct += int(pred == int(labels[i]))
                    row["label"] = int(labels[i])
            if result.cycles is not None:
                summary.cycles.append(int(result.cycles))
                summary.cycle_unit = result.cycle_unit
                row["instructions" if result.cycle_unit == "instructions" else
                    ("ns" if result.cycle_unit == "ns" else "cycles")] = int(result.cycles)
            if result.layer_cycles:
                row["layer_" + ("instructions" if result.cycle_unit == "instructions" else "cycles")] = \
                    list(result.layer_cycles)
                if summary.layer_cycles_sum is None:
                    summary.layer_cycles_sum = [0] * len(result.layer_cycles)
                summary.layer_cycles_sum = [a + b for a, b in zip(summary.layer_cycles_sum, result.layer_cycles)]
            if len(seen_outputs) < 2:
                seen_outputs.add(result.output)
                summary.distinct_outputs = len(seen_outputs)
            row["stack_bytes"] = result.stack_bytes
            if result.stack_bytes is not None:
                summary.stack_max = max(summary.stack_max or 0, int(result.stack_bytes))
            if report_file:
                report_file.write(json.dumps(row) + "\n")
            report_progress(progress, "validate", summary.samples, len(samples))
    except TinycError as exc:
        summary.error = str(exc)
        if report_file:
            report_file.write(json.dumps({"error": str(exc), "after_samples": summary.samples,
                                          "time": time.time()}) + "\n")
    finally:
        summary.lost_sessions = pool_events.lost
        summary.link = _link_totals(opened)
        ref.close()
        if report_file:
            report_file.write(json.dumps({"link": summary.link}) + "\n")
            report_file.close()
    return summary


def _load_labels(path: Path, n: int) -> np.ndarray:
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TinycError(f"cannot read --labels {path} as a .npy file: {exc}") from None
    if not isinstance(labels, np.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        raise TinycError(f"--labels {path} must be a .npy of integer class labels, "
                         f"not {getattr(labels, 'dtype', 'a .npz archive')}")
    labels = labels.reshape(-1)
    if len(labels) != n:
        raise TinycError(f"--labels has {len(labels)} entries and --input {n} samples; give one label per sample")
    return labels


def _link_totals(sessions: list) -> dict | None:
    """The serial links' counts summed over the sessions (None: no session has a link)."""
    stats = [s for s in (getattr(x, "link_stats", None) for x in sessions) if s is not None]
    if not stats:
        return None
    return {k: sum(int(s.get(k, 0)) for s in stats) for k in stats[0]}


def _session_opener(board: Board, outdir: Path, manifest: Manifest, options: dict, ports: list[str] | None,
                    opened: list):
    """open_one(k) for the pool: session k of board, on ports[k] when ports are given; every
    session opened is appended to `opened` (for the link counts)."""
    def open_one(k: int):
        extra = {"port": ports[k]} if ports else {}
        session = open_session(board, outdir, manifest=manifest, **{**options, **extra})
        opened.append(session)
        return session
    return open_one


def validate_outdir(outdir: Path, board_name: str | None, input_path: Path | None, labels_path: Path | None,
                    n_random: int | None, seed: int, report: Path | None, port: str | None,
                    progress: Progress | None = None, *, timeout: float | None = None,
                    baud: int | None = None, jobs: int | None = None, labgrid: Path | None = None,
                    place: str | None = None, reference: str = "litert") -> tuple[Summary, Board, Manifest]:
    """`tinyc validate` as one call: samples from --input or random ones, a build when
    missing or stale, then `validate` over `jobs` sessions (one per port of a comma-separated
    `port`), or on the labgrid target of ENV.yaml `labgrid` (at `place`). Reads tinyc.json
    once; every argument is checked before anything is built or run."""
    outdir = Path(outdir)
    if input_path is not None and n_random is not None:
        raise TinycError("give either --input FILE or --random N, not both")
    if n_random is not None and n_random < 1:
        raise TinycError(f"--random must be at least 1, not {n_random}")
    if seed < 0:
        raise TinycError(f"--seed must be 0 or more, not {seed}")
    if labels_path is not None and input_path is None:
        raise TinycError("--labels gives the class of each --input sample: give --input too")
    if report is not None:
        check_writable_file(report, "--report", make_parents=True)
    manifest = load_manifest(outdir)
    board = load_board(board_name or manifest.board or "host")
    options = session_options(board, port=port, baud=baud, timeout=timeout)
    if input_path is not None:
        samples = load_inputs(input_path, manifest.inputs)
        check_index_inputs(samples, load_tflite(outdir / MODEL_TFLITE), manifest.inputs)
        run_info = {"input": str(input_path)}
    else:
        graph = load_tflite(outdir / MODEL_TFLITE)
        samples = random_inputs(manifest.inputs, n_random if n_random is not None else 100, seed=seed,
                                ranges=input_ranges(graph), fixed=shape_inputs(graph))
        run_info = {"seed": seed, "random": len(samples)}
    labels = _load_labels(labels_path, len(samples)) if labels_path is not None else None
    ports, note = None, None
    if labgrid is not None:
        if (jobs or 1) > 1 or port:
            raise TinycError("--labgrid runs on the one place the environment names: drop --jobs and --port")
        options, jobs = {**options, "labgrid": labgrid, "place": place}, 1
    else:
        ports, jobs, note = _ports_and_jobs(board, port, jobs)
        if ports:
            options.pop("port", None)
    _, manifest = build_and_record(outdir, board, manifest)
    summary = validate(outdir, board, samples, labels=labels, report=report, progress=progress,
                       manifest=manifest, run_info=run_info, jobs=jobs, ports=ports, session_options=options,
                       reference=reference)
    if note:
        summary.notes.append(note)
    if summary.stack_max is not None:
        manifest = record_stack(outdir, board, manifest, summary.stack_max)
    return summary, board, manifest


def _ports_and_jobs(board: Board, port: str | None, jobs: int | None) -> tuple[list[str] | None, int, str | None]:
    """--port P1,P2 and --jobs N: one session per port; N defaults to the number of ports.
    A real board's `auto` port is found by its probe's USB ids (the third item says which)."""
    note = None
    if port is None or port == "auto":
        port, note = resolve_port(board, port)
    ports = [p.strip() for p in port.split(",") if p.strip()] if port else None
    if jobs is None:
        jobs = len(ports) if ports else 1
    if jobs < 1:
        raise TinycError(f"--jobs must be at least 1, not {jobs}")
    if ports and jobs > len(ports):
        raise TinycError(f"--jobs {jobs} needs {jobs} serial ports, --port gives {len(ports)}: "
                         "name one port per board, comma-separated")
    return ports, jobs, note
