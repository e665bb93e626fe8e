"""`tinyc fit` and `tinyc report --html`, end to end through the real CLI: a small CNN trained
on scikit-learn's digits, real builds for netduinoplus2, QEMU, BUILTIN_REF, headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fit_model import fit_assets
from tinyc.codegen import OPTIMIZE_LEVELS
from tinyc.fit.search import heuristic_plans
from tinyc.fit.space import MODEL, build_space, compress_options, plan_settings
from tinyc.fit.study import pareto_front
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.outdir import load_manifest
from tinyc.passes.compress import compress
from tinyc.passes.prune import prune_channels, weight_layers
from tinyc.quantize.sqnr import as_input
from tinyc.reference import Reference

REPO = Path(__file__).resolve().parents[1]


def tinyc(*args, timeout=600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "tinyc.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def accuracy(tflite: Path, npz: Path) -> float:
    """Top-1 accuracy by BUILTIN_REF, computed here (not by tinyc.fit)."""
    ref = Reference(tflite)
    with np.load(npz) as z:
        x, y = z["x"], z["y"]
    hits = [np.argmax(ref.run(as_input(ref.inputs[0], s))[0]) == label for s, label in zip(x, y)]
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return fit_assets(tmp_path_factory)


@pytest.fixture(scope="module")
def int8_weight_bytes(assets, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "int8"
    r = tinyc("convert", assets.int8_tflite, "-o", out, "--board", "netduinoplus2")
    assert r.returncode == 0, r.stderr
    return load_manifest(out).weight_bytes


@pytest.fixture(scope="module")
def fitted(assets, int8_weight_bytes, tmp_path_factory):
    """tinyc fit with a flash budget of 40% of the int8 model's weight bytes."""
    out = tmp_path_factory.mktemp("fit") / "digits_fit"
    budget_kb = 0.4 * int8_weight_bytes / 1024
    r = tinyc("fit", assets.int8_tflite, "--board", "netduinoplus2", "--eval", assets.eval_npz, "--max-drop", "1.0",
              "--flash", f"{budget_kb:.4f}", "--trials", "8", "-o", out)
    return out, r, int(budget_kb * 1024)


def test_fit_meets_flash_budget_and_accuracy_bound_bit_exact_on_board(assets, fitted):
    out, r, budget = fitted
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "PASS: bit-exact on netduinoplus2" in r.stdout
    assert "Pareto front" in r.stdout and re.search(r"chosen: trial \d+", r.stdout)
    m = load_manifest(out)
    fit = m.section("fit")
    # The measured constant data of the build for the board is within the budget.
    assert m.section("build")["netduinoplus2"]["weight_bytes_linked"] <= budget
    chosen = next(p for p in fit["trials"] if p["trial"] == fit["chosen_trial"])
    assert chosen["weight_bytes"] <= budget and chosen["feasible"]
    # Accuracy bound, recomputed here by BUILTIN_REF on the whole eval set.
    base = accuracy(assets.int8_tflite, assets.eval_npz)
    got = accuracy(out / "model.tflite", assets.eval_npz)
    assert 100 * (base - got) <= 1.0, (base, got)
    # Bit-exact on the emulated board, checked again by `tinyc validate` on other inputs.
    v = tinyc("validate", out, "--board", "netduinoplus2", "--random", "5", "--seed", "7")
    assert v.returncode == 0 and "bit-exact      5/5" in v.stdout, v.stdout + v.stderr
    # The plan per layer is printed and pruned something.
    assert any(l.get("sparsity") or l.get("channels") for l in fit["plan"])


def test_fit_refuses_impossible_budget_with_numbers(assets, tmp_path):
    out = tmp_path / "never"
    r = tinyc("fit", assets.int8_tflite, "--board", "host", "--eval", assets.eval_npz, "--flash", "0.5",
              "--trials", "3", "-o", out)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()[-1]
    assert err.startswith("tinyc: error: no plan fits after 3 trials"), err
    assert "budget --flash 512 B" in err and re.search(r"smallest weights reached [\d,]+ B", err)
    assert re.search(r"best accuracy [\d.]+%", err)
    assert not out.exists()
    r = tinyc("fit", assets.int8_tflite, "--eval", assets.eval_npz, "--storage", "sqlite:///x.db", "-o", out)
    assert r.returncode == 2 and "--storage URL and --study NAME together" in r.stderr
    # --train needs float weights; 16x8 layers need the float model too
    r = tinyc("fit", assets.int8_tflite, "--eval", assets.eval_npz, "--train", assets.train_npz, "-o", out)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--train needs the float/Keras model" in r.stderr and "int8 .tflite" in r.stderr
    r = tinyc("fit", assets.int8_tflite, "--eval", assets.eval_npz, "--methods", "sparsity,precision", "-o", out)
    assert r.returncode == 2 and "--methods precision" in r.stderr and "give the float/Keras model" in r.stderr
    assert not out.exists()


def _finished(db: Path) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=None, storage=f"sqlite:///{db}")
    except Exception:   # not created yet, or being written
        return 0
    return sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.get_trials(deepcopy=False))


def test_fit_interrupted_then_rerun_reuses_finished_trials(assets, tmp_path):
    out = tmp_path / "resumed"
    args = ["fit", assets.int8_tflite, "--board", "host", "--eval", assets.eval_npz, "--flash", "12",
            "--trials", "10", "-o", out]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "tinyc.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    done = 0
    while time.time() < deadline and proc.poll() is None:
        dbs = list((tmp_path / ".tinyc-fit").glob("*.db"))
        done = _finished(dbs[0]) if dbs else 0
        if done >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"fit ended before it could be interrupted: {proc.communicate()}"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "tinyc: interrupted" in stderr and "Traceback" not in stderr
    db = next((tmp_path / ".tinyc-fit").glob("*.db"))
    kept = _finished(db)
    assert 3 <= kept < 10
    r = tinyc(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"10 trials \((\d+) reused from study .*?\), (\d+) accuracy evaluations", r.stdout)
    assert m, r.stdout
    reused, evaluations = int(m.group(1)), int(m.group(2))
    assert reused == kept
    # Only the missing trials were evaluated again (sensitivity and baseline come from the study).
    assert evaluations == 10 - kept
    assert _finished(db) == 10
    # A third run with the same arguments evaluates nothing.
    r = tinyc(*args)
    assert re.search(r"10 trials \(10 reused from study .*?\), 0 accuracy evaluations", r.stdout), r.stdout


def test_plan_becomes_per_layer_compress_options(assets):
    graph = load_tflite(assets.int8_tflite)
    space = build_space(graph)
    conv, hidden, logits = space
    assert "channels" in hidden.choices and "channels" not in logits.choices   # the last layer keeps its outputs
    plan = {hidden.name: {"channels": 0.25, "sparsity": 0.5, "weights": "smallest"},
            logits.name: {"sparsity": 0.25, "weights": "raw"}}
    g, _, rep = compress(graph, compress_options(plan))
    rows = {r["name"]: r for r in rep["layers"]}
    assert rows[hidden.name]["weights"] == 48 * 288           # 16 of 64 neurons removed
    assert rows[hidden.name]["nonzeros"] == 48 * 288 - round(0.5 * 48 * 288)
    assert rows[logits.name]["weights"] == 10 * 48            # the next layer lost their inputs
    assert rows[hidden.name]["encoding"]["kind"] != "raw" and rows[logits.name]["encoding"]["kind"] == "raw"
    original = {r["name"]: r for r in rep["original"]}
    assert rows[conv.name]["nonzeros"] == original[conv.name]["nonzeros"]   # not in the plan: untouched


def test_plan_settings_of_clusters_precision_and_optimize(assets):
    graph = load_tflite(assets.int8_tflite)
    space = build_space(graph, ("sparsity", "clusters", "weights", "optimize"))
    *layers, model = space
    assert model.name == MODEL and model.choices == {"optimize": OPTIMIZE_LEVELS}
    assert all(l.choices["clusters"][0] == 0 and list(l.choices["clusters"][1:]) == sorted(l.choices["clusters"][1:],
               reverse=True) for l in layers)       # neutral first, then ever fewer shared values
    assert all("precision" not in l.choices for l in layers)   # an int8 model has no 16x8 conversion
    hidden = layers[1]
    s = plan_settings({hidden.name: {"sparsity": 0.5, "clusters": 8, "weights": "auto", "precision": "16x8"},
                       MODEL: {"optimize": "size"}})
    assert s.optimize == "size" and s.precision == {hidden.name: "16x8"}
    assert s.compress.cluster.per_layer == {hidden.name: 8}
    assert hidden.name not in s.compress.per_layer_weights   # 16x8 kernels read raw weights
    # the starting plans: lossy methods at their most aggressive level, --optimize by the objective
    first = heuristic_plans(space, "size")[0]
    assert first[MODEL]["optimize"] == "size" and first[hidden.name]["clusters"] == hidden.choices["clusters"][-1]
    assert heuristic_plans(space, "speed")[0][MODEL]["optimize"] == "speed"


def test_pareto_front_keeps_non_dominated_points():
    rows = [{"id": i, "b": b, "a": a} for i, (b, a) in enumerate([(100, 0.9), (80, 0.9), (80, 0.95), (50, 0.5),
                                                                   (120, 0.99), (60, 0.4)])]
    front = pareto_front(rows, ((lambda r: r["b"], "min"), (lambda r: r["a"], "max")))
    assert [r["id"] for r in front] == [3, 2, 4]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: `make setup` installs it (apt package chromium)")
    return exe


# Runs first in the page: records script errors and failed resources; after load, checks every
# image decoded and is not blank (distinct colours drawn into a canvas), and writes the verdict
# into the DOM that --dump-dom prints.
_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(e.message || ('failed to load ' + ((e.target && (e.target.src || e.target.href)) || '?')));
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images), rows = [];
  imgs.forEach(function (im) {
    var c = document.createElement('canvas'); c.width = im.naturalWidth; c.height = im.naturalHeight;
    var colours = 0;
    if (c.width && c.height) {
      var ctx = c.getContext('2d'); ctx.drawImage(im, 0, 0);
      var d = ctx.getImageData(0, 0, c.width, c.height).data, seen = {};
      for (var i = 0; i < d.length; i += 4 * 7) { seen[d[i] + ',' + d[i + 1] + ',' + d[i + 2]] = 1; }
      colours = Object.keys(seen).length;
    }
    rows.push({w: im.naturalWidth, h: im.naturalHeight, complete: im.complete, colours: colours});
  });
  var pre = document.createElement('pre'); pre.id = 'tinyc-probe';
  pre.textContent = JSON.stringify({errors: window.__errors, images: rows});
  document.body.appendChild(pre);
});
</script>"""


def test_html_report_loads_in_headless_chromium(fitted, tmp_path):
    out, r, _ = fitted
    assert r.returncode == 0, r.stderr[-2000:]
    page = tmp_path / "report.html"
    rep = tinyc("report", out, "--html", page, "--png", tmp_path / "png")
    assert rep.returncode == 0, rep.stderr
    text = page.read_text()
    assert "http://" not in text and "https://" not in text     # self-contained
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + _PROBE, 1))
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r'<pre id="tinyc-probe">(.*?)</pre>', dom.stdout, re.S)
    assert m, dom.stdout[-1000:] + dom.stderr[-1000:]
    verdict = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert verdict["errors"] == []
    names = {"bytes_per_layer", "weight_histograms", "layer_instructions", "arena", "memory", "fit_front"}
    assert names <= {p.stem for p in (tmp_path / "png").glob("*.png")}
    assert len(verdict["images"]) >= len(names)
    for im in verdict["images"]:
        assert im["complete"] and im["w"] > 100 and im["h"] > 100 and im["colours"] > 5, im


def test_fit_searches_clusters_and_optimize_level_bit_exact_on_host(assets, tmp_path):
    out = tmp_path / "clustered"
    r = tinyc("fit", assets.int8_tflite, "--board", "host", "--eval", assets.eval_npz, "--max-drop", "1.0",
              "--methods", "sparsity,clusters,weights,optimize", "--trials", "3", "-o", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "PASS: bit-exact on host" in r.stdout and "clusters" in r.stdout and "--optimize" in r.stdout
    m = load_manifest(out)
    fit = m.section("fit")
    assert fit["methods"] == ["sparsity", "clusters", "weights", "optimize"]
    # values from the new dimensions: shared weights in some layer, an --optimize level other than the default
    clustered = [l for l in fit["plan"] if l["clusters"]]
    assert clustered, fit["plan"]
    assert {p["optimize"] for p in fit["trials"]} - {"balanced"}
    assert m.section("target")["optimize"] == fit["optimize"] in OPTIMIZE_LEVELS
    # the written model holds at most K distinct nonzero values in each clustered layer (read here)
    graph = load_tflite(out / "model.tflite")
    weights = {l.name: graph.tensors[l.weight].data for l in weight_layers(graph)}
    for l in clustered:
        w = weights[l["name"]]
        assert np.unique(w[w != 0]).size <= l["clusters"] + 1, l   # +1: a centroid at 0 splits into +-1
    v = tinyc("validate", out, "--board", "host", "--random", "5", "--seed", "3")
    assert v.returncode == 0 and "bit-exact      5/5" in v.stdout, v.stdout + v.stderr


def _study_trials(folder: Path) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = next(folder.glob("*.db"))
    return optuna.load_study(study_name=None, storage=f"sqlite:///{db}").get_trials(deepcopy=False)


def _zero_channels(graph, layer) -> list[int]:
    """Output channels of a weight layer whose weights and bias are all zero."""
    op = graph.ops[layer.op_index]
    w, b = graph.tensors[op.inputs[1]].data, graph.tensors[op.inputs[2]].data
    return [c for c in range(w.shape[0]) if not w[c].any() and not b[c]]


def test_fit_train_fine_tunes_pruned_plans_better_than_one_shot(assets, tmp_path):
    out = tmp_path / "tuned"
    with np.load(assets.train_npz) as z:
        np.save(tmp_path / "calib.npy", z["x"][:200])
    r = tinyc("fit", assets.keras_path, "--board", "host", "--eval", assets.eval_npz, "--train", assets.train_npz,
              "--calib", tmp_path / "calib.npy", "--max-drop", "3", "--trials", "2", "--fine-tune-trials", "2",
              "--train-epochs", "2", "-o", out)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "PASS: bit-exact on host" in r.stdout and "fine-tuned 2 plans" in r.stdout
    # The fine-tuned trials are in the study's storage next to the one-shot trials of the same plans.
    trials = {t.number: t for t in _study_trials(tmp_path / ".tinyc-fit") if t.state.name in ("COMPLETE", "PRUNED")}
    tuned = [t for t in trials.values() if "fine_tune_of" in t.user_attrs]
    assert len(tuned) == 2
    for t in tuned:
        source = trials[t.user_attrs["fine_tune_of"]]
        assert t.user_attrs["plan"] == source.user_attrs["plan"] and t.user_attrs["fine_tuned"]
        assert not source.user_attrs["fine_tuned"]
    # The most heavily pruned plan (the first starting point: every layer at its most aggressive
    # safe level) gains accuracy from fine-tuning, by BUILTIN_REF on the eval set.
    heavy = next(t for t in tuned if t.user_attrs["fine_tune_of"] == 0)
    assert heavy.user_attrs["accuracy"] > trials[0].user_attrs["accuracy"], \
        (heavy.user_attrs["accuracy"], trials[0].user_attrs["accuracy"])
    # The written model is the chosen trial's, its accuracy recomputed here.
    fit = load_manifest(out).section("fit")
    assert fit["fine_tune"]["trials"] == 2
    assert accuracy(out / "model.tflite", assets.eval_npz) == pytest.approx(fit["accuracy"])
    assert 100 * (fit["baseline_accuracy"] - fit["accuracy"]) <= 3.0
    # Channels removed while fine-tuning are exactly zero (weights and bias), so removing them
    # from the int8 model changes no output.
    checked = 0
    for path in (tmp_path / ".tinyc-fit").glob("*-builds/trained/trained-*.tflite"):
        graph = load_tflite(path)
        for layer in weight_layers(graph):
            dead = _zero_channels(graph, layer)
            if not dead or layer.kind != "CONV_2D":
                continue
            channels = graph.tensors[layer.weight].shape[0]
            pruned, _ = prune_channels(graph, None, {layer.name: len(dead) / channels})
            assert graph_to_tflite(pruned) != path.read_bytes()
            a, b = Reference(path.read_bytes()), Reference(graph_to_tflite(pruned))
            with np.load(assets.eval_npz) as z:
                for sample in z["x"][:20]:
                    x = as_input(a.inputs[0], sample)
                    assert np.array_equal(a.run(x)[0], b.run(x)[0])
            checked += 1
    assert checked >= 1
