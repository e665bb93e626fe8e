"""The Optuna study behind `tinyc fit`: where it is stored, what identifies it, and reading
its trials back as rows (the explored points, the Pareto front, the feasible ones).

Default storage: a SQLite file in `.tinyc-fit/` beside OUTDIR, named by a hash of the
arguments that change the result, so a rerun with the same arguments opens the same study
and continues it. `--storage URL --study NAME` puts the study anywhere Optuna can (several
machines running the same `tinyc fit` then share one study).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tinyc.errors import TinycError

FIT_DIR = ".tinyc-fit"
FINISHED = ("COMPLETE", "PRUNED")


def file_digest(path: Path | None) -> str | None:
    """sha256 of a file, or of every file under a folder (SavedModel); None for no path."""
    if path is None:
        return None
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for q in files:
        h.update(str(q.relative_to(p) if p.is_dir() else q.name).encode())
        h.update(q.read_bytes())
    return h.hexdigest()


def arguments_key(fields: dict) -> str:
    """16 hex digits identifying the arguments that change a fit's result."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_location(outdir: Path, key: str) -> tuple[str, str, Path]:
    """(storage URL, study name, folder for cached builds) of the default SQLite storage."""
    folder = Path(outdir).resolve().parent / FIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{Path(outdir).name}-{key}"
    return f"sqlite:///{folder / (name + '.db')}", name, folder / (name + "-builds")


def open_study(storage: str, name: str, directions: list[str], sampler, arguments: dict):
    """Create or load the study; refuse one made with other arguments."""
    import optuna

    # Optuna's own log (a traceback for an interrupted trial) is not for our users: tinyc
    # reports progress and errors itself.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, sampler=sampler,
                                    load_if_exists=True)
    except ValueError as exc:   # an existing study with other directions
        raise TinycError(f"study {name} in {storage} cannot be continued: {exc}; use another --study") from None
    except Exception as exc:    # storage URL unusable (driver, path, server)
        raise TinycError(f"cannot open the fit storage {storage}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160]}") from None
    known = study.user_attrs.get("arguments")
    if known is None:
        study.set_user_attr("arguments", arguments)
    elif known != json.loads(json.dumps(arguments, default=str)):
        diff = sorted(k for k in set(known) | set(arguments) if known.get(k) != arguments.get(k))
        raise TinycError(f"study {name} was started with other arguments ({', '.join(diff)} differ); "
                         "rerun with the same arguments to continue it, or give another --study")
    return study


def finished_trials(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.name in FINISHED]


def trial_rows(study) -> list[dict]:
    """One row per finished trial: its number, plan, measurements and whether it is feasible."""
    rows = []
    for t in finished_trials(study):
        a = t.user_attrs
        if "plan" not in a:
            continue
        rows.append({"trial": t.number, "state": t.state.name.lower(), "plan": a["plan"],
                     "accuracy": a.get("accuracy"), "drop": a.get("drop"), "sizes": a.get("sizes"),
                     "instructions": a.get("instructions"), "violations": a.get("violations", ["not measured"]),
                     "feasible": t.state.name == "COMPLETE" and not a.get("violations"),
                     "encoded_bytes": a.get("encoded_bytes"), "fine_tuned": bool(a.get("fine_tuned")),
                     "fine_tune_of": a.get("fine_tune_of")})
    return rows


def pareto_front(rows: list[dict], keys: tuple) -> list[dict]:
    """Rows no other row beats in every key (each key: (function of a row, 'min' or 'max'));
    rows lacking a value are left out."""
    def vals(r):
        return [(-1 if d == "max" else 1) * f(r) for f, d in keys]

    pts = []
    for r in rows:
        try:
            v = vals(r)
        except (TypeError, KeyError):
            continue
        if any(x is None for x in v):
            continue
        pts.append((r, v))
    front = []
    for r, v in pts:
        dominated = any(all(a <= b for a, b in zip(w, v)) and any(a < b for a, b in zip(w, v)) for _, w in pts)
        if not dominated and all(v != w for _, w in ((f, vals(f)) for f in front)):
            front.append(r)
    return sorted(front, key=lambda r: vals(r))
