"""`tinyc report OUTDIR --html FILE [--png DIR]`: the plots of one OUTDIR on one
self-contained page (PNG images inlined as data: URIs), drawn with matplotlib.

Plots, each from what OUTDIR records (a plot whose data is missing says so instead):
  bytes per layer before/after compression   (tinyc.json `compression`, or model.tflite)
  weight histograms before/after              (the source model's weights vs model.tflite's)
  per-layer SQNR                              (`quantization_report`, float models)
  per-layer instructions on the board         (`fit` validation, `speed`, or one run now)
  the arena over time                         (`memory_plan`: offset x layers of every buffer)
  RAM and flash against the board's limits    (a build for the board)
  the explored front of a fit                 (`fit`: every trial, the front, the chosen one)
and for a `fit` result, the chosen plan per layer as a table.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyc.boards import load_board, runner_status
from tinyc.build import build_and_record
from tinyc.build.firmware import image_sizes, memory_layout
from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite, tflite_to_graph
from tinyc.ir import Graph
from tinyc.outdir import MODEL_TFLITE, Manifest, load_manifest
from tinyc.passes.prune import WEIGHT_OPS
from tinyc.progress import Progress, report
from tinyc.quant_math import dequantize_array
from tinyc.samples import input_ranges, random_inputs
from tinyc.validate import validate


@dataclass
class Figure:
    key: str            # file stem of its PNG
    title: str
    png: bytes | None   # None: not drawn
    note: str = ""      # what the plot shows, or why it is missing


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    _plt().close(fig)
    return buf.getvalue()


def _short(name: str) -> str:
    first = name.split(";")[0]
    parts = first.split("/")
    return (parts[1] if len(parts) > 2 else first)[:22]


# ----------------------------------------------------------------------------- data

def _weights(graph: Graph) -> list[tuple[str, np.ndarray]]:
    """(layer name, real-valued weights) of every weight layer, dequantized when int8."""
    out = []
    for i, op in enumerate(graph.ops):
        if op.kind not in WEIGHT_OPS or len(op.inputs) < 2:
            continue
        w = graph.tensors[op.inputs[1]]
        if not w.is_const:
            continue
        if w.dtype == "int8" and w.quant is not None:
            q = w.quant
            if q.per_axis:
                shape = [1] * w.data.ndim
                shape[q.axis] = q.scale.size
                vals = (w.data.astype(np.float64) - q.zero_point.reshape(shape)) * q.scale.reshape(shape)
            else:
                vals = dequantize_array(w.data, q.scale, q.zero_point)
        else:
            vals = w.data
        out.append((op.name or f"op{i}", np.asarray(vals, dtype=np.float64).reshape(-1)))
    return out


def _source_graph(manifest: Manifest) -> tuple[Graph | None, str]:
    """The model OUTDIR was made from (float or int8), to compare weights with; (None, why)."""
    src = manifest.source
    if not src or not Path(src).exists():
        return None, "the source model is not at the path tinyc.json records"
    p = Path(src)
    try:
        if p.suffix.lower() == ".tflite":
            return load_tflite(p), ""
        from tinyc.quantize.prepare import float_flatbuffer   # Keras: its float weights via TFLite

        return tflite_to_graph(float_flatbuffer(p), source=str(p)), ""
    except TinycError as exc:
        return None, f"the source model cannot be read ({exc})"


def _layer_instructions(outdir: Path, manifest: Manifest) -> tuple[list[float] | None, str]:
    fit = manifest.section("fit") or {}
    v = fit.get("validation") or {}
    if v.get("layer_cycles_mean"):
        return v["layer_cycles_mean"], f"{v.get('cycle_unit') or 'cycles'} on {fit.get('board')}, mean of {v['samples']} samples"
    speed = manifest.section("speed") or {}
    if speed.get("layers_compressed"):
        return speed["layers_compressed"], f"{speed.get('unit')}"
    board = load_board(manifest.board or "host")
    if not runner_status(board)[0]:
        return None, f"board {board.name} cannot run here"
    samples = random_inputs(manifest.inputs, 1, seed=0, ranges=input_ranges(load_tflite(outdir / MODEL_TFLITE)))
    s = validate(outdir, board, samples, manifest=manifest)
    if not s.passed or s.layer_cycles_sum is None:
        return None, f"one run on {board.name} gave no per-layer counts ({s.error or 'no layer hooks'})"
    return [float(c) for c in s.layer_cycles_sum], f"{s.cycle_unit} on {board.name}, one random input"


# ----------------------------------------------------------------------------- plots

def _bytes_per_layer(manifest: Manifest, graph: Graph) -> Figure:
    comp = manifest.section("compression")
    if comp and comp.get("layers"):
        names = [_short(l["name"]) for l in comp["layers"]]
        before = [l["params"] for l in comp["layers"]]
        after = [l["bytes"] for l in comp["layers"]]
        note = "int8 weight bytes of the original model against the encoded bytes in the generated C"
    else:
        ws = _weights(graph)
        names, before, after = [_short(n) for n, _ in ws], [w.size for _, w in ws], None
        note = "int8 weight bytes (the model is not compressed)"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.arange(len(names))
    ax.bar(x - 0.2 if after else x, before, 0.4 if after else 0.6, label="int8 (before)")
    if after:
        ax.bar(x + 0.2, after, 0.4, label="compressed (after)")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("bytes")
    ax.set_title("Weight bytes per layer")
    ax.legend()
    return Figure("bytes_per_layer", "Bytes per layer before and after compression", _png(fig), note)


def _histograms(manifest: Manifest, graph: Graph) -> Figure:
    after = _weights(graph)
    src, why = _source_graph(manifest)
    before = _weights(src) if src is not None else []
    if before and len(before) != len(after):
        before, why = [], "the source model has other weight layers"
    kind = "float" if src is not None and any(t.dtype == "float32" for t in src.tensors if t.is_const) else "int8"
    plt = _plt()
    n = min(len(after), 6)
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3), squeeze=False)
    for k in range(n):
        ax = axes[0][k]
        name, w = after[k]
        lo, hi = float(np.min(w)), float(np.max(w))
        if before:
            lo, hi = min(lo, float(np.min(before[k][1]))), max(hi, float(np.max(before[k][1])))
        bins = np.linspace(lo, hi, 60) if hi > lo else 10
        if before:
            ax.hist(before[k][1], bins=bins, alpha=0.5, label=f"before ({kind})")
        ax.hist(w, bins=bins, alpha=0.6, label="after (model.tflite)")
        ax.set_yscale("log")
        ax.set_title(_short(name), fontsize=9)
        if k == 0:
            ax.legend(fontsize=7)
    note = ("real weight values of the source model (before quantization and pruning) and of model.tflite "
            "(after): pruned weights pile up at 0") if before else f"after only: {why}"
    return Figure("weight_histograms", "Weight histograms before and after pruning and quantization", _png(fig), note)


def _sqnr(manifest: Manifest) -> Figure:
    q = manifest.section("quantization_report")
    rows = [l for l in (q or {}).get("layers", []) if l.get("sqnr_db") is not None]
    if not rows:
        return Figure("sqnr", "Per-layer SQNR", None,
                      "not measured: the model was int8 already (the report compares with the float model)")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    x = np.arange(len(rows))
    ax.plot(x, [l["sqnr_db"] for l in rows], "o-", label="accumulated (vs float model)")
    ax.plot(x, [l.get("local_sqnr_db") if l.get("local_sqnr_db") is not None else np.nan for l in rows], "s--",
            label="own error of the layer")
    ax.set_xticks(x, [f"{l['index']} {l['op'][:10]}" for l in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title("Quantization SQNR per layer")
    ax.legend()
    return Figure("sqnr", "Per-layer SQNR", _png(fig), "signal to quantization noise of each layer's output")


def _instructions(outdir: Path, manifest: Manifest) -> Figure:
    counts, note = _layer_instructions(outdir, manifest)
    if not counts:
        return Figure("layer_instructions", "Per-layer instructions on the board", None, f"not measured: {note}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = [f"{l.index} {l.op[:12]}" for l in manifest.layers][:len(counts)]
    ax.bar(np.arange(len(counts)), counts)
    ax.set_xticks(np.arange(len(counts)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(note.split(" ")[0])
    ax.set_title(f"Per layer: {note}")
    return Figure("layer_instructions", "Per-layer instructions on the board", _png(fig), note)


def _arena(manifest: Manifest) -> Figure:
    plan = manifest.section("memory_plan")
    if plan is None:
        return Figure("arena", "The arena over time", None, "tinyc.json has no memory_plan: convert the model again")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for b in plan:
        color = "tab:orange" if b["kind"] == "scratch" else "tab:blue"
        ax.broken_barh([(b["first"] - 0.4, b["last"] - b["first"] + 0.8)], (b["offset"], b["bytes"]),
                       facecolors=color, edgecolors="black", linewidth=0.5, alpha=0.8)
    ax.axhline(manifest.arena_bytes, color="red", linestyle="--", label=f"arena {manifest.arena_bytes:,} B")
    ax.set_xlim(-0.5, max(len(manifest.layers) - 0.5, 0.5))
    ax.set_ylim(0, max(manifest.arena_bytes, 1) * 1.1)
    ax.set_xlabel("layer (blue: tensors, orange: scratch)")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title("The arena over time: every buffer from its first writer to its last reader")
    ax.legend(loc="upper right")
    return Figure("arena", "The arena over time", _png(fig),
                  f"{len(plan)} buffers in {manifest.arena_bytes:,} bytes; I/O tensors live in the caller's buffers")


def memory_use(outdir: Path, manifest: Manifest) -> tuple[dict, Manifest]:
    """Flash and RAM of the model on its board: from a build (built when missing or stale)."""
    board = load_board(manifest.board or "host")
    result, manifest = build_and_record(outdir, board, manifest)
    io_bytes = sum(int(t.bytes) for t in manifest.inputs + manifest.outputs)
    use = {"board": board.name, "flash_limit": board.flash_bytes or None, "ram_limit": board.ram_bytes or None,
           "weights": int(result.weight_bytes), "code": int(result.code_bytes),
           "arena": int(result.ram_bytes or 0), "io": io_bytes}
    if board.kind == "mcu":
        img = image_sizes(result.binary, board)
        use.update(image_flash=img["flash"], image_ram=img["ram"], stack=memory_layout(board)["stack_bytes"])
    return use, manifest


def _memory(use: dict, manifest: Manifest) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 2.8))
    fit = (manifest.section("fit") or {}).get("budgets") or {}
    rows = [("flash", [("weights", use["weights"]), ("model code", use["code"]),
                       ("firmware", max(0, use.get("image_flash", 0) - use["weights"] - use["code"]))],
             use["flash_limit"], fit.get("flash_bytes")),
            ("RAM", [("arena", use["arena"]), ("I/O buffers", use["io"]),
                     ("firmware + stack", max(0, use.get("image_ram", 0) - use["arena"]))],
             use["ram_limit"], fit.get("ram_bytes"))]
    colors = {"weights": "tab:blue", "model code": "tab:cyan", "firmware": "tab:gray", "arena": "tab:green",
              "I/O buffers": "tab:olive", "firmware + stack": "tab:gray"}
    for y, (what, parts, limit, budget) in enumerate(rows):
        left = 0
        for label, v in parts:
            if v:
                ax.barh(y, v, left=left, color=colors[label], label=label)
                left += v
        if limit:
            ax.plot([limit, limit], [y - 0.4, y + 0.4], color="red", linewidth=2)
            ax.text(limit, y + 0.25, f"board {limit / 1024:g} KB ", color="red", fontsize=8, ha="right")
        if budget:
            ax.plot([budget, budget], [y - 0.4, y + 0.4], color="purple", linestyle="--")
            ax.text(budget, y - 0.55, f"budget {budget:,} B", color="purple", fontsize=8)
    ax.set_xscale("symlog", linthresh=1024)
    ax.set_yticks([0, 1], ["flash", "RAM"])
    ax.set_xlabel("bytes")
    ax.set_title(f"Flash and RAM on {use['board']} against its limits")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    note = (f"flash: weights {use['weights']:,} + model code {use['code']:,}"
            + (f" (firmware image {use['image_flash']:,})" if "image_flash" in use else "")
            + f"; RAM: arena {use['arena']:,} + I/O {use['io']:,}"
            + (f" (firmware image with stack {use['image_ram']:,})" if "image_ram" in use else ""))
    return Figure("memory", "RAM and flash against the board's limits", _png(fig), note)


def _front(manifest: Manifest) -> Figure | None:
    fit = manifest.section("fit")
    if not fit:
        return None
    pts = [p for p in fit["trials"] if p.get("weight_bytes") is not None]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    ok = [p for p in pts if p["feasible"]]
    bad = [p for p in pts if not p["feasible"]]
    ax.scatter([p["weight_bytes"] for p in bad], [100 * p["accuracy"] for p in bad], c="lightgray",
               edgecolors="gray", label="over a budget")
    ax.scatter([p["weight_bytes"] for p in ok], [100 * p["accuracy"] for p in ok], c="tab:blue", label="fits")
    tuned = [p for p in pts if p.get("fine_tuned")]
    if tuned:
        ax.scatter([p["weight_bytes"] for p in tuned], [100 * p["accuracy"] for p in tuned], marker="^", s=80,
                   facecolors="none", edgecolors="tab:green", label="fine-tuned (--train)")
    front = sorted(fit["front"], key=lambda p: p["weight_bytes"])
    ax.plot([p["weight_bytes"] for p in front], [100 * p["accuracy"] for p in front], "o-", color="tab:blue",
            markerfacecolor="none", markersize=12, label="Pareto front")
    chosen = next((p for p in pts if p["trial"] == fit["chosen_trial"]), None)
    if chosen:
        ax.scatter([chosen["weight_bytes"]], [100 * chosen["accuracy"]], marker="*", s=300, c="red", zorder=5,
                   label=f"chosen (trial {chosen['trial']})")
    b = fit["budgets"]
    if b.get("flash_bytes"):
        ax.axvline(b["flash_bytes"], color="purple", linestyle="--", label="--flash budget")
    ax.axhline(100 * (fit["search_baseline_accuracy"] - b["max_drop"] / 100), color="orange", linestyle="--",
               label="accuracy floor (--max-drop)")
    ax.set_xlabel("weight bytes (measured build)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"tinyc fit: {len(fit['trials'])} trials on {fit['board']}")
    ax.legend(fontsize=7, loc="lower right")
    rejected = len(fit["trials"]) - len(pts)
    return Figure("fit_front", "The explored front of tinyc fit", _png(fig),
                  f"every measured trial; {rejected} more were pruned before their build (accuracy drop over "
                  "--max-drop) and are not drawn")


# ----------------------------------------------------------------------------- page

def figures(outdir, progress: Progress | None = None) -> tuple[list[Figure], Manifest, dict]:
    outdir = Path(outdir)
    manifest = load_manifest(outdir)
    graph = load_tflite(outdir / MODEL_TFLITE)
    steps = [lambda: _bytes_per_layer(manifest, graph), lambda: _histograms(manifest, graph),
             lambda: _sqnr(manifest), lambda: _instructions(outdir, manifest), lambda: _arena(manifest)]
    figs = []
    for k, step in enumerate(steps):
        figs.append(step())
        report(progress, "report plots", k + 1, len(steps) + 2)
    use, manifest = memory_use(outdir, manifest)
    figs.append(_memory(use, manifest))
    front = _front(manifest)
    if front is not None:
        figs.append(front)
    report(progress, "report plots", len(steps) + 2, len(steps) + 2)
    return figs, manifest, use


def _summary_rows(manifest: Manifest, use: dict) -> list[tuple[str, str]]:
    rows = [("board", manifest.board), ("layers", str(len(manifest.layers))), ("MACs", f"{manifest.macs:,}"),
            ("weight bytes", f"{manifest.weight_bytes:,}"), ("arena bytes", f"{manifest.arena_bytes:,}"),
            ("model code bytes", f"{use['code']:,}")]
    comp = manifest.section("compression")
    if comp:
        rows.append(("compression vs int8", f"{comp['int8_bytes']:,} B -> {comp['compressed_bytes']:,} B "
                                            f"({comp['compression_rate_vs_int8']:.2f}x)"))
    fit = manifest.section("fit")
    if fit:
        rows.append(("fit", f"trial {fit['chosen_trial']} of {len(fit['trials'])}, accuracy "
                            f"{100 * fit['accuracy']:.2f}% (int8 {100 * fit['baseline_accuracy']:.2f}%)"))
    return rows


# The plan table's per-layer settings, in the order tinyc.fit.space declares its methods.
_PLAN_KEYS = ("channels", "sparsity", "clusters", "precision", "weights")


def plan_table(manifest: Manifest) -> tuple[list[str], list[list[str]], str] | None:
    """The chosen plan of a `fit` result: (header, rows, a line on the model-wide settings)."""
    fit = manifest.section("fit")
    if not fit or not fit.get("plan"):
        return None
    keys = [k for k in _PLAN_KEYS if any(k in l for l in fit["plan"])]
    head = ["layer", "op", "params", *("encoding mode" if k == "weights" else k for k in keys), "encoding", "bytes"]
    rows = [[l["name"].split(";")[0], l["op"], f"{l['params']:,}",
             *("-" if l.get(k) is None else f"{l[k]:g}" if isinstance(l[k], float) else str(l[k]) for k in keys),
             str(l.get("encoding")), "-" if l.get("bytes") is None else f"{l['bytes']:,}"] for l in fit["plan"]]
    ft = fit.get("fine_tune")
    note = (f"methods searched: {', '.join(fit.get('methods', []))}; --optimize {fit.get('optimize', 'balanced')}"
            + (f"; fine-tuned ({ft['epochs']} epochs on {ft['train']})" if ft and ft.get("chosen") else ""))
    return head, rows, note


def write_html(outdir, path, png_dir=None, progress: Progress | None = None) -> list[Figure]:
    """The report page (and each plot as PNG in png_dir); returns the figures."""
    figs, manifest, use = figures(outdir, progress)
    if png_dir is not None:
        png_dir = Path(png_dir)
        png_dir.mkdir(parents=True, exist_ok=True)
        for f in figs:
            if f.png:
                (png_dir / f"{f.key}.png").write_bytes(f.png)
    if path is None:
        return figs
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>tinyc report: {e(str(outdir))}</title>",
             "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
             "img{max-width:100%;border:1px solid #ddd}td,th{padding:2px 10px;text-align:left}"
             ".note{color:#555;font-size:90%}.missing{color:#a33}</style></head><body>",
             f"<h1>tinyc report: {e(Path(outdir).name)}</h1>", "<table>"]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _summary_rows(manifest, use)]
    parts.append("</table>")
    plan = plan_table(manifest)
    if plan is not None:
        head, rows, note = plan
        parts.append("<section id=\"fit_plan\"><h2>The chosen plan per layer</h2><table>")
        parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append(f"</table><p class=\"note\">{e(note)}</p></section>")
    for f in figs:
        parts.append(f"<section id=\"{f.key}\"><h2>{e(f.title)}</h2>")
        if f.png:
            data = base64.b64encode(f.png).decode()
            parts.append(f"<img alt=\"{e(f.title)}\" src=\"data:image/png;base64,{data}\">")
            parts.append(f"<p class=\"note\">{e(f.note)}</p>")
        else:
            parts.append(f"<p class=\"missing\">{e(f.note)}</p>")
        parts.append("</section>")
    parts.append("</body></html>")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts) + "\n")
    tmp.replace(path)
    return figs
