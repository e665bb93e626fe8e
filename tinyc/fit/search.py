"""`tinyc fit`: the per-layer compression plan that fits a board's budgets.

    result = fit(model, outdir, FitOptions(board=..., eval_data=..., max_drop=1.0, flash_kb=...))

1. quantize the model once (float/Keras models; an int8 .tflite is taken as it is), and in
   16x8 too when per-layer precision is searched;
2. sensitivity: each layer alone at rising sparsity (channel removal, clustering) on a subset
   of the eval data; levels that alone cost more than --max-drop (with --train: TRAIN_SLACK
   times that, fine-tuning recovers accuracy) are left out of the search;
3. search (Optuna, multi-objective TPE with constraints) over the methods of --methods
   (tinyc.fit.space: per layer channels, sparsity, clusters, encoding, precision; the
   --optimize level); each trial's accuracy comes from BUILTIN_REF (bit-exact with the C),
   its sizes from a real build for the board, its instructions from the board's runner when a
   latency matters; a trial over --max-drop is pruned before its build;
4. with --train, fine-tuning (tinyc.fit.train): every trial (--fine-tune all), or after the
   search, as trials of their own, the plans along the one-shot front that could beat the
   best one-shot plan (--fine-tune front, --fine-tune-trials of them);
5. the best feasible trial by --objective is written to OUTDIR as `convert` would, with a
   `fit` section in tinyc.json (plan, front, explored points, budgets), and validated
   bit-exact on the board when it has a runner here.

Each finished trial, fine-tuned ones included, is in the study's storage as soon as it ends,
so an interrupted fit loses at most the running trial and a rerun with the same arguments
continues.
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
from tinyc.fit.space import (DEFAULT_METHODS, METHOD_BY_NAME, MODEL, LayerSpace, Plan, build_space, layers_of,
                             neutral_plan, parse_methods, rename_plan, suggest_plan, trial_params)
from tinyc.fit.train import FineTuner, check_trainable
from tinyc.frontend import model_format
from tinyc.frontend.tflite import tflite_to_graph
from tinyc.metrics.accuracy import labelled_samples
from tinyc.outdir import update_manifest
from tinyc.progress import Progress, report
from tinyc.quantize.precision import PrecisionOptions
from tinyc.quantize.prepare import is_float_model, prepare_int8, quantize_float
from tinyc.validate import validate

OBJECTIVES = ("size", "speed", "accuracy")
FINE_TUNE_MODES = ("front", "all")
# With --train, the search keeps levels that alone cost up to this many times --max-drop
# before fine-tuning (pruned digits CNNs regain 5-20 points in two epochs).
TRAIN_SLACK = 4.0
LOSSY_BY_TRAINING = ("channels", "sparsity", "clusters")   # what fine-tuning trains in


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
    methods: tuple = DEFAULT_METHODS      # tinyc.fit.space method names searched
    train: Path | None = None             # .npz with x, y: fine-tune plans on the Keras model
    fine_tune: str = "front"              # front: the promising plans after the search; all: every trial
    fine_tune_trials: int = 3             # front: how many plans to fine-tune
    train_epochs: int = 4                 # epochs of each fine-tuning (pruning, clustering)


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
    if o.fine_tune not in FINE_TUNE_MODES:
        raise TinycError(f"--fine-tune {o.fine_tune}: choose one of {', '.join(FINE_TUNE_MODES)}")
    if o.fine_tune_trials < 1 or o.train_epochs < 1:
        raise TinycError("--fine-tune-trials and --train-epochs must be at least 1")
    if (o.storage is None) != (o.study is None):
        raise TinycError("give --storage URL and --study NAME together (or neither: a SQLite file beside OUTDIR)")


def fit(model, outdir, options: FitOptions, progress: Progress | None = None) -> FitResult:
    o = options
    _check_options(o)
    methods = parse_methods(o.methods)
    board = load_board(o.board)
    model, outdir = Path(model), Path(outdir)
    per_trial_speed = o.latency is not None or o.objective == "speed"
    if per_trial_speed and not runner_status(board)[0]:
        raise TinycError(f"--latency and --objective speed need instructions from board {board.name}, "
                         "which cannot run here (see `tinyc boards`)")
    if o.train is not None:
        check_trainable(model)
    if "precision" in methods and not is_float_model(model):
        raise TinycError(f"--methods precision chooses int8 or 16x8 per layer while quantizing a float model; "
                         f"{model} is int8 already: give the float/Keras model, or drop precision")
    calib = o.calib if o.calib is not None else o.train   # training data calibrates, as in convert

    report(progress, "quantize", 0, 0)
    prepared = prepare_int8(model, calib=calib)
    base = tflite_to_graph(prepared.tflite, source=str(model))
    base.meta["source"] = str(model)
    check_supported(base)
    base_16x8 = None
    if "precision" in methods:
        report(progress, "quantize 16x8", 0, 0)
        base_16x8 = quantize_float(model, model_format(model), calib=calib, precision=PrecisionOptions("16x8")).tflite
    in_shape = tuple(int(d) for d in base.tensors[base.inputs[0]].shape)
    x, y, _ = labelled_samples(o.eval_data, in_shape)
    if y is None:
        raise TinycError(f"{o.eval_data} has no labels 'y': fit needs them to measure accuracy")

    training = o.train is not None
    arguments = {"model": S.file_digest(model), "eval": S.file_digest(o.eval_data), "calib": S.file_digest(o.calib),
                 "board": board.name, **_budgets(o), "objective": o.objective, "eval_samples": o.eval_samples,
                 "sensitivity_samples": o.sensitivity_samples, "seed": o.seed, "methods": list(methods),
                 "train": S.file_digest(o.train), "train_epochs": o.train_epochs if training else None,
                 "fine_tune": o.fine_tune if training else None}
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
    m = Measurer(base, board, x, y, cache, base_16x8)
    tuner = FineTuner(model, base, o.train, calib, o.train_epochs, cache / "trained", o.seed) if training else None
    n_search = o.eval_samples

    baseline = study.user_attrs.get("baseline")
    if baseline is None:
        baseline = m.accuracy(prepared.tflite, n_search)
        study.set_user_attr("baseline", baseline)

    space = build_space(base, methods, tflite_to_graph(base_16x8) if base_16x8 is not None else None)
    bound = o.max_drop * (TRAIN_SLACK if training else 1.0)   # what a level alone may cost
    sens = study.user_attrs.get("sensitivity")
    if sens is None:
        sens = sensitivity(m, space, prepared.tflite, bound, o.sensitivity_samples, progress)
        study.set_user_attr("sensitivity", sens)
    full_space, space = space, restrict(space, sens, bound)
    reused = len(S.finished_trials(study))
    if not study.get_trials(deepcopy=False):
        # starting points within --max-drop level by level, also with --train (the wider
        # levels are for the sampler to try)
        for plan in heuristic_plans(restrict(full_space, sens, o.max_drop), o.objective):
            study.enqueue_trial(trial_params(plan, space), skip_if_exists=True)

    budgets = _budgets(o)
    run_count = [0]

    def fine_tuned(plan: Plan):
        """The candidate of `plan` on the model fine-tuned for it, and its quantization report."""
        tflite, qreport = tuner.int8(plan, space, progress)
        graph = tflite_to_graph(tflite, source=str(model))
        graph.meta["source"] = str(model)
        return m.candidate(rename_plan(plan, space, graph), base=graph), qreport

    def objective(trial):
        plan = suggest_plan(trial, space)
        trial.set_user_attr("plan", plan)
        tune = training and trains(plan) and (o.fine_tune == "all" or "fine_tune_of" in trial.user_attrs)
        c = fine_tuned(plan)[0] if tune else m.candidate(plan)
        trial.set_user_attr("fine_tuned", tune)
        trial.set_user_attr("encoded_bytes", encoded_bytes(c.report))
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

    def searched(study_) -> int:
        return sum("fine_tune_of" not in t.user_attrs for t in S.finished_trials(study_))

    def on_trial(study_, trial):
        run_count[0] += 1
        done = searched(study_)
        best = choose(S.trial_rows(study_), o.objective)
        note = "no plan within the budgets yet" if best is None else \
            f"best {best['sizes']['weight_bytes']:,} B weights, accuracy {100 * best['accuracy']:.1f}%"
        report(progress, "fit trials", min(done, o.trials), o.trials, note)
        if done >= o.trials and "fine_tune_of" not in trial.user_attrs:   # several machines: stop at --trials
            study_.stop()

    remaining = o.trials - searched(study)
    if remaining > 0:
        report(progress, "fit trials", o.trials - remaining, o.trials,
               f"{reused} finished trials reused" if reused else "")
        study.optimize(objective, n_trials=remaining, callbacks=[on_trial], catch=())
    if training and o.fine_tune == "front":
        picks = fine_tune_picks(S.trial_rows(study), o.fine_tune_trials, o.objective)
        trials = study.get_trials(deepcopy=False)
        done = {t.user_attrs.get("fine_tune_of") for t in trials if t.state.name in S.FINISHED}
        waiting = {t.user_attrs.get("fine_tune_of") for t in trials if t.state.name == "WAITING"}
        todo = [r for r in picks if r["trial"] not in done]
        for k, r in enumerate(todo):
            report(progress, "fine-tune", k, len(todo), f"plan of trial {r['trial']}")
            if r["trial"] not in waiting:
                study.enqueue_trial(trial_params(r["plan"], space), user_attrs={"fine_tune_of": r["trial"]})
            study.optimize(objective, n_trials=1, callbacks=[on_trial], catch=())
        if todo:
            report(progress, "fine-tune", len(todo), len(todo))
    rows = S.trial_rows(study)
    chosen = choose(rows, o.objective)
    if chosen is None:
        raise TinycError(refusal(rows, budgets, baseline, len(rows)))

    def candidate_of(row):
        return fine_tuned(row["plan"]) if row["fine_tuned"] else (m.candidate(row["plan"]), prepared.report)

    # Final: the chosen plan on the whole eval set, the front with instructions when the board runs here.
    trained_before = tuner.trained if tuner else 0
    cand, qreport = candidate_of(chosen)
    retrained = tuner is not None and tuner.trained > trained_before   # not cached here: trained again
    partial = n_search is not None and n_search < len(x)
    full_acc = m.accuracy(cand.tflite) if partial or retrained else chosen["accuracy"]
    full_base = m.accuracy(prepared.tflite) if partial else baseline
    front = S.pareto_front([r for r in rows if r["sizes"] and "error" not in r["sizes"]],
                           ((lambda r: r["sizes"]["weight_bytes"], "min"), (lambda r: r["accuracy"], "max")))
    if runner_status(board)[0]:
        for r in front[:8]:
            if r.get("instructions") is None:
                c = candidate_of(r)[0]
                r["instructions"] = m.instructions(c)
                m.discard_build(c)
    section = {
        "board": board.name, "objective": o.objective, "budgets": budgets, "study": name, "storage": storage,
        "baseline_accuracy": full_base, "accuracy": full_acc, "search_accuracy": chosen["accuracy"],
        "search_baseline_accuracy": baseline, "eval_samples": len(x), "search_samples": n_search or len(x),
        "chosen_trial": chosen["trial"], "methods": list(methods), "optimize": cand.optimize,
        "plan": layer_table(space, chosen["plan"], cand.report),
        "fine_tune": None if not training else {
            "mode": o.fine_tune, "epochs": o.train_epochs, "train": str(o.train),
            "trials": sum(r["fine_tuned"] for r in rows), "chosen": chosen["fine_tuned"]},
        "sensitivity": sens, "front": [_point(r) for r in front], "trials": [_point(r) for r in rows],
    }
    sections = {"quantization_report": qreport} if qreport is not None else {}
    result = convert_graph(cand.graph, outdir, board.name, {**sections, "fit": section},
                           compression=(cand.source, cand.report), optimize=cand.optimize)
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


def sensitivity(m: Measurer, space: list[LayerSpace], base_tflite: bytes, bound: float, samples: int,
                progress: Progress | None) -> dict:
    """Accuracy with one layer compressed by one lossy method at rising levels (the others
    untouched), on the first `samples` eval samples; a layer's scan of a method stops at the
    first level that costs clearly more than `bound` points."""
    ref = m.accuracy(base_tflite, samples)
    out: dict = {"samples": min(samples, len(m.inputs)), "baseline": ref, "layers": {}}
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
            acc = m.accuracy(c.tflite, samples)
            levels[str(v)] = acc
            if 100.0 * (ref - acc) > 2 * bound:   # clearly past it (one level over may be noise)
                break
        out["layers"].setdefault(l.name, {})[mname] = levels
        report(progress, "sensitivity", k + 1, len(jobs), l.name[:40])
    return out


def restrict(space: list[LayerSpace], sens: dict, bound: float) -> list[LayerSpace]:
    """Each lossy method's choices (ordered mildest first) cut after the most aggressive level
    that alone stays within `bound` points."""
    out = []
    ref = sens["baseline"]
    for l in space:
        for mname, levels in sens["layers"].get(l.name, {}).items():
            choices = l.choices.get(mname)
            if choices is None:
                continue
            ok = [0] + [i for i, v in enumerate(choices) if str(v) in levels and 100.0 * (ref - levels[str(v)]) <= bound]
            l = l.restricted(mname, choices[:max(ok) + 1])
        out.append(l)
    return out


def heuristic_plans(space: list[LayerSpace], objective: str = "size") -> list[Plan]:
    """Starting points from the sensitivity scan: every layer at its most aggressive safe level
    (all layers together may cost more), and one level below; the other methods at their
    starting value for the objective (smallest encodings within 2x time, the matching
    --optimize level)."""
    plans = []
    for step in (1, 2):
        plan = neutral_plan(space)
        for l in space:
            for mname, choices in l.choices.items():
                method = METHOD_BY_NAME[mname]
                if method.lossy:
                    plan[l.name][mname] = choices[max(0, len(choices) - step)]
                elif method.start is not None and method.start(objective) in choices:
                    plan[l.name][mname] = method.start(objective)
        if plan not in plans:
            plans.append(plan)
    return plans


def trains(plan: Plan) -> bool:
    """Whether fine-tuning has anything to train in for `plan` (a lossy setting somewhere)."""
    return any(values.get(mname) for values in plan.values() for mname in LOSSY_BY_TRAINING)


def encoded_bytes(comp_report: dict) -> int:
    """The weight bytes a candidate's encodings take, by tinyc.passes.compress (a measure to
    rank trials that were not built; budgets are checked on builds)."""
    return int(sum(r["encoding"]["bytes"] for r in comp_report.get("layers", [])))


def fine_tune_picks(rows: list[dict], k: int, objective: str) -> list[dict]:
    """The one-shot trials worth fine-tuning: the front of encoded bytes against accuracy, over
    --max-drop included (fine-tuning may bring them back), where it could beat the best
    one-shot plan (no larger, for size and speed); k of them spread along it, smallest first."""
    one_shot = [r for r in rows if r["fine_tune_of"] is None and not r["fine_tuned"]
                and r["encoded_bytes"] is not None and r["accuracy"] is not None
                and not (r["sizes"] and "error" in r["sizes"])]
    front = S.pareto_front(one_shot, ((lambda r: r["encoded_bytes"], "min"), (lambda r: r["accuracy"], "max")))
    front = [r for r in front if trains(r["plan"])]
    best = choose(one_shot, objective)
    if best is not None and objective != "accuracy":
        front = [r for r in front if r["encoded_bytes"] <= best["encoded_bytes"]]
    if len(front) <= k:
        return front
    if k == 1:
        return front[:1]
    return [front[i] for i in sorted({round(j * (len(front) - 1) / (k - 1)) for j in range(k)})]


def layer_table(space: list[LayerSpace], plan: Plan, comp_report: dict) -> list[dict]:
    """The chosen plan per layer, with the encoding compress picked and its bytes."""
    enc = {r["name"]: r["encoding"] for r in comp_report.get("layers", [])}
    by_position = [r["encoding"] for r in comp_report.get("layers", [])]
    rows = []
    for k, l in enumerate(layers_of(space)):
        # a fine-tuned model's ops may be named differently: same layers, same order
        e = enc.get(l.name) or (by_position[k] if k < len(by_position) else {})
        rows.append({"name": l.name, "op": l.op, "params": l.params, **plan.get(l.name, {}),
                     "encoding": e.get("kind"), "bytes": e.get("bytes")})
    return rows


def _point(r: dict) -> dict:
    s = r["sizes"] or {}
    return {"trial": r["trial"], "state": r["state"], "feasible": r["feasible"], "accuracy": r["accuracy"],
            "drop": r["drop"], "weight_bytes": s.get("weight_bytes"), "ram_bytes": s.get("ram_bytes"),
            "code_bytes": s.get("code_bytes"), "optimize": (r["plan"].get(MODEL) or {}).get("optimize"),
            "fine_tuned": r["fine_tuned"], "fine_tune_of": r["fine_tune_of"],
            "instructions": (r.get("instructions") or {}).get("total"), "violations": r["violations"]}


__all__ = ["FitOptions", "FitResult", "fit", "OBJECTIVES"]
