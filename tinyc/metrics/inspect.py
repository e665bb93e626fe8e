"""`tinyc inspect`: what is in a .tflite model and what tinyc can compile."""

from __future__ import annotations

from pathlib import Path

from tinyc.errors import TinycError
from tinyc.frontend.tflite import load_tflite
from tinyc.ir import first_float_op, op_macs
from tinyc.boards import load_board
from tinyc.codegen.generator import lower_graph
from tinyc.codegen.target import target_from_board
from tinyc.codegen.ops import check_op, supported_ops
from tinyc.codegen.planner import buffer_rows
from tinyc.outdir import MODEL_TFLITE, load_manifest


def inspect_model(path: Path) -> dict:
    """ops, shapes, MACs and support per op. For a float model (`"float": True`) support is
    judged on the op kinds: it is compiled after int8 quantization (convert --calib), whose
    constants are checked then."""
    path = Path(path)
    if path.is_dir() or path.suffix in (".keras", ".h5"):
        raise TinycError(f"inspect reads .tflite files; convert {path} first (tinyc convert {path} --calib ... -o OUT)")
    graph = load_tflite(path)
    # A float model is judged by its int8 form (what `convert --calib` compiles): its op kinds.
    is_float = first_float_op(graph) is not None
    kinds = set(supported_ops())
    ops = []
    params_total = 0
    for i, op in enumerate(graph.ops):
        if is_float:
            ok = op.kind in kinds
            why = "" if ok else f"{op.kind} is not an op tinyc compiles; supported: {', '.join(sorted(kinds))}"
        else:
            try:
                check_op(graph, i)
                ok, why = True, ""
            except TinycError as exc:
                ok, why = False, str(exc)
        params = sum(graph.tensors[t].size for t in op.inputs if t >= 0 and graph.tensors[t].is_const
                     and op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL"))
        params_total += params
        out = graph.tensors[op.outputs[0]] if op.outputs else None
        ops.append({
            "index": i, "op": op.kind, "name": op.name,
            "output_shape": list(out.shape) if out else [], "dtype": out.dtype if out else "",
            "params": int(params), "macs": int(op_macs(graph, op)), "supported": ok, "why": why,
            "attrs": {k: v for k, v in op.attrs.items() if not k.startswith("_")},
        })

    def io(ts):
        return [{"name": graph.tensors[t].name, "shape": list(graph.tensors[t].shape),
                 "dtype": graph.tensors[t].dtype} for t in ts]

    return {"model": str(path), "float": is_float, "inputs": io(graph.inputs), "outputs": io(graph.outputs), "ops": ops,
            "params": int(params_total), "macs": int(sum(o["macs"] for o in ops)),
            "supported": all(o["supported"] for o in ops)}


def arena_plan(outdir: Path) -> dict:
    """`tinyc inspect OUTDIR --plan`: every arena buffer (offset, bytes, first and last layer
    that use it), which layers write their output over their input, and the lower bound.
    Re-plans OUTDIR/model.tflite as convert did and checks that it gets the same arena."""
    outdir = Path(outdir)
    if not outdir.is_dir():
        raise TinycError(f"--plan and --plot read a converted OUTDIR; {outdir} is a file: "
                         f"run tinyc convert {outdir} -o OUT first")
    manifest = load_manifest(outdir)
    io_in_arena = bool((manifest.section("memory") or {}).get("io_in_arena"))
    graph = load_tflite(outdir / MODEL_TFLITE)
    # laid out for the board and level convert used: the kernels' scratch depends on them
    target = target_from_board(load_board(manifest.board).raw,
                               (manifest.section("target") or {}).get("optimize", "balanced"))
    _, ctx = lower_graph(graph, io_in_arena=io_in_arena, target=target)
    plan = ctx.plan
    if plan.arena_bytes != manifest.arena_bytes:
        raise TinycError(f"{outdir}: re-planning model.tflite gives a {plan.arena_bytes}-byte arena, tinyc.json "
                         f"says {manifest.arena_bytes}; convert it again with this tinyc")
    rows = buffer_rows(graph, plan)
    return {"outdir": str(outdir), "arena_bytes": plan.arena_bytes, "lower_bound_bytes": plan.lower_bound,
            "io_in_arena": io_in_arena, "order": plan.order, "layers": [op.kind for op in graph.ops],
            "buffers": rows}


def plot_plan(info: dict, path: Path) -> None:
    """Draw the arena over time into a PNG: one box per buffer, layers across, offsets up;
    an output written in place over its input is drawn hatched."""
    try:
        import matplotlib
    except ImportError:
        raise TinycError("--plot draws with matplotlib, which is not installed: pip install 'tinyc[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = max(len(info["layers"]), 1)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.35 * n), 6))
    colors = plt.get_cmap("tab20").colors
    for i, r in enumerate(info["buffers"]):
        color = "lightgrey" if r["buffer"].startswith("s") else colors[i % len(colors)]
        ax.add_patch(Rectangle((r["first"] - 0.45, r["offset"]), r["last"] - r["first"] + 0.9, r["bytes"],
                               facecolor=color, edgecolor="black", linewidth=0.5, alpha=0.75,
                               hatch="//" if r["over"] else None))
        if r["bytes"] > info["arena_bytes"] / 40:
            ax.text(r["first"] - 0.4, r["offset"] + r["bytes"] / 2, r["buffer"], fontsize=6, va="center")
    ax.axhline(info["arena_bytes"], color="red", linewidth=1)
    ax.axhline(info["lower_bound_bytes"], color="green", linewidth=1, linestyle="--")
    ax.set_xlim(-1, n)
    ax.set_ylim(0, info["arena_bytes"] * 1.05 + 1)
    ax.set_xlabel("layer")
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"arena {info['arena_bytes']:,} B (red), lower bound {info['lower_bound_bytes']:,} B (green); "
                 "hatched: written in place over its input", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
