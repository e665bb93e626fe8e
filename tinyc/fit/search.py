"""`tinyc fit`: the per-layer compression plan that fits a board's budgets.

    result = fit(model, outdir, FitOptions(board=..., eval_data=..., max_drop=1.0, flash_kb=...))

1. quantize the model once (float/Keras models; an int8 .tflite is taken as it is);
2. sensitivity: each layer alone at rising sparsity (and channel removal) on a subset of the
   eval data; levels that alone cost more than --max-drop are left out of the search;
3. search (Optuna, multi-objective TPE with constraints): per layer channels, sparsity and
   weight encoding (tinyc.fit.space); each trial's accuracy comes from BUILTIN_REF (bit-exact
   with the C), its sizes from a real build for the board, its instructions from the board's
   runner when a latency matters; a trial over --max-drop is pruned before its build;
4. the best feasible trial by --objective is written to OUTDIR as `convert` would, with a
   `fit` section in tinyc.json (plan, front, explored points, budgets), and validated
   bit-exact on the board when it has a runner here.

Each finished trial is in the study's storage as soon as it ends, so an interrupted fit
loses at most the running trial and a rerun with the same arguments continues.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyc.boards import load_board, runner_status
from tinyc.build import build_and_record
from tinyc.codegen import check_supported
from tinyc.convert import convert_graph
from tinyc.errors import TinycError
from tinyc.fit import study as S
from tinyc.fit.measure import Measurer
from tinyc.fit.space import (METHOD_BY_NAME, LayerSpace, Plan, build_space, neutral_plan, suggest_plan,
                             trial_params)
from tinyc.frontend.tflite import tflite_to_graph
from tinyc.metrics.accuracy import labelled_samples
from tinyc.outdir import update_manifest
from tinyc.progress import Progress, report
from tinyc.quantize.prepare import prepare_int8
from tinyc.validate import validate

OBJECTIVES = ("size", "speed", "accuracy")


@dataclass
class FitOptions:
    board: str
    eval_data: Path
    calib: Path | None = None
    max_drop: float = 1.0                 # accuracy points (percent) below the int8 model allowed
    flash_kb: float | None = None         # budget for the model's constant data (weights etc.)
    ram_kb: float | None = None           # budget for the model's RAM (arena + I/O buffers)
    latency: int | None = None            # budget in instructions (cycles) per inference
    objective: str = "size"
    trials: int = 30
    eval_samples: int | None = None       # eval samples during the search (None: all)
    sensitivity_samples: int = 500
    validate_samples: int = 20
    storage: str | None = None
    study: str | None = None
    seed: int = 0


@dataclass
class FitResult:
    outdir: Path
    manifest: object
    chosen: dict
    front: list[dict]
    baseline: float
    trials_run: int
    trials_reused: int
    evaluations: int
    validation: dict | None
    notes: list[str] = field(default_factory=list)


def _budgets(o: FitOptions) -> dict:
    return {"max_drop": o.max_drop, "flash_bytes": int(o.flash_kb * 1024) if o.flash_kb is not None else None,
            "ram_bytes": int(o.ram_kb * 1024) if o.ram_kb is not None else None, "latency": o.latency}


def _check_options(o: FitOptions) -> None:
    if o.objective not in OBJECTIVES:
        raise TinycError(f"--objective {o.objective}: choose one of {', '.join(OBJECTIVES)}")
    if o.trials < 1:
        raise TinycError(f"--trials {o.trials}: give at least 1")
    if o.max_drop < 0:
        raise TinycError(f"--max-drop {o.max_drop:g} is negative; give the accuracy points you can lose, e.g. 1.0")
    for name, v in (("--flash", o.flash_kb), ("--ram", o.ram_kb), ("--latency", o.latency)):
        if v is not None and v <= 0:
            raise TinycError(f"{name} {v:g} must be positive")
    if (o.storage is None) != (o.study is None):
        raise TinycError("give --storage URL and --study NAME together (or neither: a SQLite file beside OUTDIR)")


def fit(model, outdir, options: FitOptions, progress: Progress | None = None) -> FitResult:
    o = options
    _check_options(o)
    board = load_board(o.board)
    model, outdir = Path(model), Path(outdir)
    per_trial_speed = o.latency is not None or o.objective == "speed"
    if per_trial_speed and not runner_status(board)[0]:
        raise TinycError(f"--latency and --objective speed need instructions from board {board.name}, "
                         "which cannot run here (see `tinyc boards`)")

    report(progress, "quantize", 0, 0)
    prepared = prepare_int8(model, calib=o.calib)
    base = tflite_to_graph(prepared.tflite, source=str(model))
    base.meta["source"] = str(model)
    check_supported(base)
    in_shape = tuple(int(d) for d in base.tensors[base.inputs[0]].shape)
    x, y, _ = labelled_samples(o.eval_data, in_shape)
    if y is None:
        raise TinycError(f"{o.eval_data} has no labels 'y': fit needs them to measure accuracy")

    arguments = {"model": S.file_digest(model), "eval": S.file_digest(o.eval_data), "calib": S.file_digest(o.calib),
                 "board": board.name, **_budgets(o), "objective": o.objective, "eval_samples": o.eval_samples,
                 "sensitivity_samples": o.sensitivity_samples, "seed": o.seed}
    key = S.arguments_key(arguments)
    if o.storage is None:
        storage, name, cache = S.default_location(outdir, key)
    else:
        storage, name = o.storage, o.study
        cache = outdir.resolve().parent / S.FIT_DIR / f"{name}-builds"
    directions = ["minimize", "maximize"] + (["minimize"] if per_trial_speed else [])
    import optuna

    sampler = optuna.samplers.TPESampler(seed=o.seed, n_startup_trials=max(2, min(10, o.trials // 3)),
                                         multivariate=True)
    study = S.open_study(storage, name, directions, sampler, arguments)
    m = Measurer(base, board, x, y, cache)
    n_search = o.eval_samples

    baseline = study.user_attrs.get("baseline")
    if baseline is None:
        baseline = m.accuracy(prepared.tflite, n_search)
        study.set_user_attr("baseline", baseline)

    space = build_space(base)
    sens = study.user_attrs.get("sensitivity")
    if sens is None:
        sens = sensitivity(m, space, prepared.tflite, o, progress)
        study.set_user_attr("sensitivity", sens)
    space = restrict(space, sens, o.max_drop)
    reused = len(S.finished_trials(study))
    if not study.get_trials(deepcopy=False):
        for plan in heuristic_plans(space):
            study.enqueue_trial(trial_params(plan, space), skip_if_exists=True)

    budgets = _budgets(o)
    run_count = [0]

    def objective(trial):
        plan = suggest_plan(trial, space)
        trial.set_user_attr("plan", plan)
        c = m.candidate(plan)
        acc = m.accuracy(c.tflite, n_search)
        drop = 100.0 * (baseline - acc)
        trial.set_user_attr("accuracy", acc)
        trial.set_user_attr("drop", drop)
        if drop > o.max_drop:   # a bad trial: pruned before its build
            trial.set_user_attr("violations", [f"accuracy drop {drop:.2f} > {o.max_drop:g}"])
            trial.set_constraint("drop", drop - o.max_drop)
            raise optuna.TrialPruned()
        sizes = m.sizes(c)
        trial.set_user_attr("sizes", sizes)
        if "error" in sizes:
            trial.set_user_attr("violations", [sizes["error"]])
            trial.set_constraint("build", 1.0)
            raise optuna.TrialPruned()
        instr = m.instructions(c) if per_trial_speed else None
        trial.set_user_attr("instructions", instr)
        m.discard_build(c)
        v, cons = violations(drop, sizes, instr, budgets)
        trial.set_user_attr("violations", v)
        for k, value in cons.items():
            trial.set_constraint(k, value)
        values = [sizes["weight_bytes"], acc]
        if per_trial_speed:
            values.append((instr or {}).get("total") or 0)
        return values

    def on_trial(study_, trial):
        run_count[0] += 1
        done = len(S.finished_trials(study_))
        best = choose(S.trial_rows(study_), o.objective)
        note = "no plan within the budgets yet" if best is None else \
            f"best {best['sizes']['weight_bytes']:,} B weights, accuracy {100 * best['accuracy']:.1f}%"
        report(progress, "fit trials", min(done, o.trials), o.trials, note)

    remaining = o.trials - reused
    if remaining > 0:
        report(progress, "fit trials", reused, o.trials, f"{reused} finished trials reused" if reused else "")
        study.optimize(objective, n_trials=remaining, callbacks=[
            optuna.study.MaxTrialsCallback(o.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                              optuna.trial.TrialState.PRUNED)), on_trial],
            catch=())
    rows = S.trial_rows(study)
    chosen = choose(rows, o.objective)
    if chosen is None:
        raise TinycError(refusal(rows, budgets, baseline, len(rows)))

    # Final: the chosen plan on the whole eval set, the front with instructions when the board runs here.
    cand = m.candidate(chosen["plan"])
    full_acc = m.accuracy(cand.tflite) if n_search is not None and n_search < len(x) else chosen["accuracy"]
    full_base = m.accuracy(prepared.tflite) if n_search is not None and n_search < len(x) else baseline
    front = S.pareto_front([r for r in rows if r["sizes"] and "error" not in r["sizes"]],
                           ((lambda r: r["sizes"]["weight_bytes"], "min"), (lambda r: r["accuracy"], "max")))
    if runner_status(board)[0]:
        for r in front[:8]:
            if r.get("instructions") is None:
                c = m.candidate(r["plan"])
                r["instructions"] = m.instructions(c)
                m.discard_build(c)
    section = {
        "board": board.name, "objective": o.objective, "budgets": budgets, "study": name, "storage": storage,
        "baseline_accuracy": full_base, "accuracy": full_acc, "search_accuracy": chosen["accuracy"],
        "search_baseline_accuracy": baseline, "eval_samples": len(x), "search_samples": n_search or len(x),
        "chosen_trial": chosen["trial"], "plan": layer_table(space, chosen["plan"], cand.report),
        "sensitivity": sens, "front": [_point(r) for r in front], "trials": [_point(r) for r in rows],
    }
    sections = {"quantization_report": prepared.report} if prepared.report is not None else {}
    result = convert_graph(cand.graph, outdir, board.name, {**sections, "fit": section},
                           compression=(base, cand.report))
    manifest = result.manifest
    validation = None
    if runner_status(board)[0]:
        _, manifest = build_and_record(outdir, board, manifest)
        k = min(o.validate_samples, len(m.inputs))
        summary = validate(outdir, board, [[m.inputs[i]] for i in range(k)], labels=y[:k], manifest=manifest,
                           progress=progress)
        validation = summary.as_dict()
        section["validation"] = validation
        manifest = update_manifest(outdir, manifest, fit=section)
        if not summary.passed:
            raise TinycError(f"the chosen model is NOT bit-exact on {board.name}: "
                             f"{summary.samples - summary.bit_exact} of {summary.samples} samples differ "
                             f"{'(' + summary.error + ')' if summary.error else ''}; please report it")
    return FitResult(outdir, manifest, section, section["front"], full_base, run_count[0], reused, m.evaluations,
                     validation)


# ---------------------------------------------------------------------------- pieces

def violations(drop: float, sizes: dict, instr: dict | None, budgets: dict) -> tuple[list[str], dict]:
    """The budgets a measured candidate misses (text) and Optuna's constraint values (<= 0: met)."""
    v, c = [], {"drop": drop - budgets["max_drop"]}
    if drop > budgets["max_drop"]:
        v.append(f"accuracy drop {drop:.2f} > {budgets['max_drop']:g}")
    for what, have, limit in (("weights", sizes["weight_bytes"], budgets["flash_bytes"]),
                              ("RAM", sizes["ram_bytes"], budgets["ram_bytes"]),
                              ("instructions", (instr or {}).get("total"), budgets["latency"])):
        if limit is None or have is None:
            continue
        c[what] = float(have - limit) / float(limit)
        if have > limit:
            v.append(f"{what} {have:,} > {limit:,}")
    return v, c


def choose(rows: list[dict], objective: str) -> dict | None:
    ok = [r for r in rows if r["feasible"]]
    if not ok:
        return None
    if objective == "accuracy":
        return min(ok, key=lambda r: (-r["accuracy"], r["sizes"]["weight_bytes"]))
    if objective == "speed":
        return min(ok, key=lambda r: ((r["instructions"] or {}).get("total") or 0, r["sizes"]["weight_bytes"]))
    return min(ok, key=lambda r: (r["sizes"]["weight_bytes"], -r["accuracy"]))


def refusal(rows: list[dict], budgets: dict, baseline: float, n: int) -> str:
    """Why no plan fits: the smallest size and the best accuracy reached, and the budgets missed."""
    parts = [f"no plan fits after {n} trials"]
    sized = [r for r in rows if r["sizes"] and "error" not in r["sizes"]]
    if sized:
        s = min(sized, key=lambda r: r["sizes"]["weight_bytes"])
        lim = budgets["flash_bytes"]
        parts.append(f"smallest weights reached {s['sizes']['weight_bytes']:,} B"
                     + (f" (budget --flash {lim:,} B)" if lim else "") + f" at accuracy drop {s['drop']:.2f} points")
        r = min(sized, key=lambda r: r["sizes"]["ram_bytes"])
        if budgets["ram_bytes"]:
            parts.append(f"least RAM {r['sizes']['ram_bytes']:,} B (budget --ram {budgets['ram_bytes']:,} B)")
        timed = [r for r in sized if (r.get("instructions") or {}).get("total")]
        if budgets["latency"] and timed:
            t = min(timed, key=lambda r: r["instructions"]["total"])
            parts.append(f"fewest instructions {t['instructions']['total']:,} (budget --latency {budgets['latency']:,})")
    acc = [r for r in rows if r["accuracy"] is not None]
    if acc:
        b = max(acc, key=lambda r: r["accuracy"])
        parts.append(f"best accuracy {100 * b['accuracy']:.2f}% (int8 model {100 * baseline:.2f}%, "
                     f"--max-drop {budgets['max_drop']:g} points)")
    return "; ".join(parts) + "; raise the budgets, --max-drop or --trials"


def sensitivity(m: Measurer, space: list[LayerSpace], base_tflite: bytes, o: FitOptions,
                progress: Progress | None) -> dict:
    """Accuracy with one layer compressed by one lossy method at rising levels (the others
    untouched), on the first `sensitivity_samples` eval samples; a layer's scan of a method
    stops at the first level that costs more than --max-drop."""
    n = o.sensitivity_samples
    ref = m.accuracy(base_tflite, n)
    out: dict = {"samples": min(n, len(m.inputs)), "baseline": ref, "layers": {}}
    jobs = [(l, mname) for l in space for mname in l.choices if METHOD_BY_NAME[mname].lossy]
    for k, (l, mname) in enumerate(jobs):
        levels = {}
        for v in l.choices[mname]:
            if v == METHOD_BY_NAME[mname].neutral:
                continue
            try:
                c = m.candidate({l.name: {mname: v}})
            except TinycError:
                break
            acc = m.accuracy(c.tflite, n)
            levels[str(v)] = acc
            if 100.0 * (ref - acc) > 2 * o.max_drop:   # clearly past it (one level over may be noise)
                break
        out["layers"].setdefault(l.name, {})[mname] = levels
        report(progress, "sensitivity", k + 1, len(jobs), l.name[:40])
    return out


def restrict(space: list[LayerSpace], sens: dict, max_drop: float) -> list[LayerSpace]:
    """Each lossy method's choices cut at the highest level that alone stays within max_drop."""
    out = []
    ref = sens["baseline"]
    for l in space:
        for mname, levels in sens["layers"].get(l.name, {}).items():
            ok = [METHOD_BY_NAME[mname].neutral] + [v for v in l.choices[mname]
                                                   if str(v) in levels and 100.0 * (ref - levels[str(v)]) <= max_drop]
            top = max(ok)
            l = l.restricted(mname, tuple(v for v in l.choices[mname] if v <= top))
        out.append(l)
    return out


def heuristic_plans(space: list[LayerSpace]) -> list[Plan]:
    """Starting points from the sensitivity scan: every layer at its highest safe level (all
    layers together may cost more), and one level below; smallest encodings within 2x time."""
    plans = []
    for step in (1, 2):
        plan = neutral_plan(space)
        for l in space:
            for mname, choices in l.choices.items():
                if METHOD_BY_NAME[mname].lossy:
                    plan[l.name][mname] = choices[max(0, len(choices) - step)]
                else:
                    plan[l.name][mname] = "auto" if "auto" in choices else choices[-1]
        if plan not in plans:
            plans.append(plan)
    return plans


def layer_table(space: list[LayerSpace], plan: Plan, comp_report: dict) -> list[dict]:
    """The chosen plan per layer, with the encoding compress picked and its bytes."""
    enc = {r["name"]: r["encoding"] for r in comp_report.get("layers", [])}
    rows = []
    for l in space:
        e = enc.get(l.name, {})
        rows.append({"name": l.name, "op": l.op, "params": l.params, **plan.get(l.name, {}),
                     "encoding": e.get("kind"), "bytes": e.get("bytes")})
    return rows


def _point(r: dict) -> dict:
    s = r["sizes"] or {}
    return {"trial": r["trial"], "state": r["state"], "feasible": r["feasible"], "accuracy": r["accuracy"],
            "drop": r["drop"], "weight_bytes": s.get("weight_bytes"), "ram_bytes": s.get("ram_bytes"),
            "code_bytes": s.get("code_bytes"),
            "instructions": (r.get("instructions") or {}).get("total"), "violations": r["violations"]}


__all__ = ["FitOptions", "FitResult", "fit", "OBJECTIVES"]
