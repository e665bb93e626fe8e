"""`tinyc fit`: parse, call tinyc.fit.fit, print the chosen plan and the Pareto front."""

from __future__ import annotations

from pathlib import Path

import click

from tinyc.boards import DEFAULT_BOARD
from tinyc.cli.progress import bar
from tinyc.fit import OBJECTIVES, FitOptions, FitResult, fit
from tinyc.fit.search import FINE_TUNE_MODES
from tinyc.fit.space import DEFAULT_METHODS, METHODS


def short_name(op_name: str) -> str:
    """A layer's Keras-ish name from a converter op name ('model/dense_1/MatMul;...' -> 'dense_1')."""
    first = op_name.split(";")[0]
    parts = first.split("/")
    return parts[1] if len(parts) > 2 else first


def _num(v, fmt="{:,}") -> str:
    return "-" if v is None else fmt.format(v)


# The plan table's columns: (plan key, header, format spec of the cell, format of a value).
_PLAN_COLUMNS = (("channels", "channels", ">8", "{:.3g}"), ("sparsity", "sparsity", ">8", "{:.3g}"),
                 ("clusters", "clusters", ">8", "{:d}"), ("precision", "precision", "9", "{}"),
                 ("weights", "mode", "8", "{}"))


def _cell(layer: dict, key: str, value_fmt: str) -> str:
    v = layer.get(key)
    if v is None:
        return "-"
    return "none" if key == "clusters" and not v else value_fmt.format(v)


def plan_lines(plan: list[dict]) -> list[str]:
    """The chosen plan per layer; a method's column only when some layer has it."""
    cols = [c for c in _PLAN_COLUMNS if any(c[0] in l for l in plan)]
    lines = ["  " + " ".join([f"{'layer':24s}", f"{'op':16s}", f"{'params':>7s}",
                              *(format(h, spec) for _, h, spec, _ in cols), f"{'encoding':15s}", f"{'bytes':>7s}"])]
    for l in plan:
        lines.append("  " + " ".join([f"{short_name(l['name'])[:24]:24s}", f"{l['op']:16s}", f"{l['params']:>7,}",
                                      *(format(_cell(l, k, f), spec) for k, _, spec, f in cols),
                                      f"{str(l.get('encoding')):15s}", f"{_num(l.get('bytes')):>7s}"]))
    return lines


def fit_lines(model: Path, r: FitResult) -> list[str]:
    c = r.chosen
    b = c["budgets"]
    chosen = next(p for p in c["trials"] if p["trial"] == c["chosen_trial"])
    ft = c.get("fine_tune")
    lines = [f"fit {model} for {c['board']}: {r.trials_run + r.trials_reused} trials "
             f"({r.trials_reused} reused from study {c['study']}), {r.evaluations} accuracy evaluations, "
             f"objective {c['objective']}",
             f"  int8 model accuracy {100 * r.baseline:.2f}% on {c['eval_samples']} samples; "
             f"max drop {b['max_drop']:g} points",
             f"chosen: trial {c['chosen_trial']}: weights {chosen['weight_bytes']:,} B"
             + (f" (budget {b['flash_bytes']:,})" if b["flash_bytes"] else "")
             + f", RAM {chosen['ram_bytes']:,} B" + (f" (budget {b['ram_bytes']:,})" if b["ram_bytes"] else "")
             + f", code {chosen['code_bytes']:,} B, accuracy {100 * c['accuracy']:.2f}%"
             + (f", {chosen['instructions']:,} instructions" if chosen.get("instructions") else "")
             + (f" (budget {b['latency']:,})" if b["latency"] else "")
             + (f", --optimize {c['optimize']}" if "optimize" in c.get("methods", ()) else "")
             + (f", fine-tuned from trial {chosen['fine_tune_of']}" if chosen.get("fine_tune_of") is not None
                else ", fine-tuned" if chosen.get("fine_tuned") else "")]
    if ft:
        lines.append(f"  fine-tuned {ft['trials']} plans ({ft['epochs']} epochs each, --fine-tune {ft['mode']}) "
                     f"on {ft['train']}")
    lines += plan_lines(c["plan"])
    lines.append(f"Pareto front ({len(r.front)} points; weights, accuracy, instructions on {c['board']}):")
    for p in r.front:
        mark = "*" if p["trial"] == c["chosen_trial"] else " "
        lines.append(f" {mark}trial {p['trial']:3d}  {p['weight_bytes']:>9,} B  {100 * p['accuracy']:6.2f}%  "
                     f"{_num(p.get('instructions')):>12s}  {'fits' if p['feasible'] else '; '.join(p['violations'])}"
                     + (f"  ({p['optimize']})" if p.get("optimize") else "")
                     + ("  fine-tuned" if p.get("fine_tuned") else ""))
    lines.append(f"wrote {r.outdir}")
    v = r.validation
    if v is not None:
        lines.append(f"PASS: bit-exact on {c['board']} ({v['bit_exact']}/{v['samples']} samples)"
                     if v["passed"] else f"FAIL: {v['samples'] - v['bit_exact']} samples differ")
    return lines


@click.command("fit")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--outdir", required=True, type=click.Path(path_type=Path), help="Folder for the chosen model.")
@click.option("--board", default=DEFAULT_BOARD, show_default=True, help="Target board (see `tinyc boards`).")
@click.option("--eval", "eval_data", required=True, type=click.Path(exists=True, path_type=Path),
              help=".npz with x and labels y: accuracy of every candidate.")
@click.option("--calib", type=click.Path(exists=True, path_type=Path), help="Calibration data for float/Keras models.")
@click.option("--max-drop", type=float, default=1.0, show_default=True,
              help="Accuracy points (percent) the model may lose against the int8 model.")
@click.option("--flash", "flash_kb", type=float, help="Budget in KB for the model's constant data (weights, biases, tables).")
@click.option("--ram", "ram_kb", type=float, help="Budget in KB for the model's RAM (arena + I/O buffers).")
@click.option("--latency", type=int, help="Budget in instructions per inference on the board.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="size", show_default=True,
              help="What the chosen plan minimises among those that fit.")
@click.option("--trials", type=int, default=30, show_default=True, help="Trials in the study (reused ones count).")
@click.option("--eval-samples", type=int, help="Eval samples per trial (default: all); the chosen plan is rechecked on all.")
@click.option("--storage", help="Optuna storage URL shared by several machines (default: SQLite beside OUTDIR).")
@click.option("--study", "study_name", help="Study name in --storage.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--methods", default=",".join(DEFAULT_METHODS), show_default=True,
              help="Comma-separated dimensions of the search: "
                   + "; ".join(f"{m.name}: {m.help}" for m in METHODS) + ".")
@click.option("--train", type=click.Path(exists=True, path_type=Path),
              help=".npz with x, y: fine-tune plans on the Keras model (needs a .keras/.h5 model).")
@click.option("--fine-tune", "fine_tune", type=click.Choice(FINE_TUNE_MODES), default="front", show_default=True,
              help="With --train: fine-tune the promising plans after the search (front) or every trial (all).")
@click.option("--fine-tune-trials", type=int, default=3, show_default=True,
              help="With --fine-tune front: how many plans along the front to fine-tune.")
@click.option("--train-epochs", type=int, default=4, show_default=True,
              help="With --train: epochs of each fine-tuning (pruning, clustering).")
def fit_cmd(model, outdir, board, eval_data, calib, max_drop, flash_kb, ram_kb, latency, objective, trials,
            eval_samples, storage, study_name, seed, methods, train, fine_tune, fine_tune_trials, train_epochs):
    """Search per-layer sparsity, channels, clusters, encoding, precision and the --optimize level for the
    best model that fits the board."""
    options = FitOptions(board=board, eval_data=eval_data, calib=calib, max_drop=max_drop, flash_kb=flash_kb,
                         ram_kb=ram_kb, latency=latency, objective=objective, trials=trials,
                         eval_samples=eval_samples, storage=storage, study=study_name, seed=seed, methods=methods,
                         train=train, fine_tune=fine_tune, fine_tune_trials=fine_tune_trials,
                         train_epochs=train_epochs)
    result = fit(model, outdir, options, progress=bar)
    for line in fit_lines(model, result):
        click.echo(line)


COMMANDS = [fit_cmd]
