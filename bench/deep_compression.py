"""Deep Compression (Han, Mao, Dally, ICLR 2016) with tinyc: LeNet-300-100 and LeNet-5 pruned
with fine-tuning, quantized to int8, sparse/Huffman-coded, and run from the compressed form
by the generated C. Also: MLPerf Tiny int8 models pruned to 50% without fine-tuning.

    make bench-compression        (or: .venv/bin/python bench/deep_compression.py [--quick])

Data: scikit-learn's 8x8 digits upscaled to 28x28 (MNIST cannot be downloaded here), a fixed
80/20 stratified split. Bytes are the constant data of the generated C as emitted (weights,
indices, code tables, biases, multipliers); float32 bytes are 4 per parameter of the float
model. Instructions per inference are counted with valgrind's callgrind on the host build
(-O2), per layer, for the same pruned int8 model with raw and with compressed weights.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyc.boards import load_board  # noqa: E402
from tinyc.build import build  # noqa: E402
from tinyc.convert import ConvertOptions, convert, convert_graph  # noqa: E402
from tinyc.frontend.tflite import load_tflite  # noqa: E402
from tinyc.metrics.speed import layer_instructions  # noqa: E402
from tinyc.outdir import TensorInfo, load_manifest  # noqa: E402
from tinyc.passes.cluster import ClusterOptions  # noqa: E402
from tinyc.passes.compress import CompressOptions  # noqa: E402
from tinyc.passes.prune import PruneOptions, weight_layers  # noqa: E402
from tinyc.quantize.finetune import TrainOptions  # noqa: E402
from tinyc.quantize.lowrank import LowRankOptions, RankSpec  # noqa: E402
from tinyc.validate import validate_outdir  # noqa: E402
from tinyc.reference import Reference  # noqa: E402
from tinyc.runners import open_session  # noqa: E402
from tinyc.samples import random_inputs, to_record  # noqa: E402

PAPER = {  # Deep Compression, Table 1; stages from Tables 2 and 3 (pruned 8% -> +quantized -> +Huffman)
    "LeNet-300-100": {"float_kb": 1070, "compressed_kb": 27, "ratio": 40, "err_float": 1.64, "err_comp": 1.58,
                      "stages": {"prune": 12, "cluster": 33, "huffman": 40}},
    "LeNet-5": {"float_kb": 1720, "compressed_kb": 44, "ratio": 39, "err_float": 0.80, "err_comp": 0.74,
                "stages": {"prune": 12, "cluster": 33, "huffman": 39}},
}
MLPERF = REPO.parent / "shared" / "models" / "mlperf_tiny"


def digits_28(seed: int = 0):
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.stack([zoom(img / 16.0, 3.5, order=1) for img in d.images]).astype(np.float32)[..., None]
    x = np.clip(x, 0.0, 1.0)
    return train_test_split(x, d.target.astype(np.int64), test_size=0.2, random_state=seed, stratify=d.target)


def lenet_300_100(l2: float = 0.0):
    import keras
    reg = keras.regularizers.L2(l2) if l2 else None
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(300, activation="relu", name="fc1", kernel_regularizer=reg),
                             keras.layers.Dense(100, activation="relu", name="fc2", kernel_regularizer=reg),
                             keras.layers.Dense(10, name="fc3", kernel_regularizer=reg)], name="lenet_300_100")


def lenet_5():
    import keras   # the Caffe LeNet-5 of the paper: 20 and 50 5x5 filters, 500 hidden units
    return keras.Sequential([keras.Input((28, 28, 1)),
                             keras.layers.Conv2D(20, 5, name="conv1"), keras.layers.MaxPooling2D(2),
                             keras.layers.Conv2D(50, 5, name="conv2"), keras.layers.MaxPooling2D(2),
                             keras.layers.Flatten(),
                             keras.layers.Dense(500, activation="relu", name="fc1"),
                             keras.layers.Dense(10, name="fc2")], name="lenet_5")


def error_rate(pred, y) -> float:
    return 100.0 * float(np.mean(np.asarray(pred) != y))


def float_error(model, x, y) -> float:
    return error_rate(np.argmax(model.predict(x, verbose=0), axis=1), y)


def quantize_input(x, inp: TensorInfo) -> np.ndarray:
    """Float samples as the model's int8 input (`inp`: a tinyc.json input)."""
    return np.clip(np.round(x / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)


def c_error(outdir: Path, x, y) -> float:
    """Test error of the generated C on the host (inputs quantized as the model's input)."""
    q = quantize_input(x, load_manifest(outdir).inputs[0])
    board = load_board("host")
    build(outdir, board)
    with open_session(board, outdir, timeout=600) as s:
        res = s.infer_many([q[i:i + 1].tobytes() for i in range(len(q))])
    out = np.stack([np.frombuffer(r.output, np.int8) for r in res])
    return error_rate(np.argmax(out, axis=1), y)


STREAMS = (("value_code", "values (Huffman codes)"), ("gap_code", "gaps (Huffman codes)"),
           ("values", "values (int8)"), ("counts", "code tables"), ("symbols", "code tables"),
           ("bias16", "biases (int16)"), ("bias", "biases (int32)"), ("filter", "raw int8 weights"))


def byte_streams(outdir: Path) -> dict[str, dict[str, int]]:
    """Bytes of the C arrays in weights.c, per layer and per stream (what each array holds)."""
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4}
    out: dict[str, dict[str, int]] = {}
    for ctype, name, n in re.findall(r"^const (\w+) (\w+)\[(\d+)\]", (outdir / "weights.c").read_text(), re.M):
        m = re.match(r"tinyc_l(\d+)_\w+?_(filter_value_code|filter_gap_code|filter_values|filter_value_counts|"
                     r"filter_gap_counts|filter_value_symbols|filter_gap_symbols|bias16|bias|filter|\w+)$", name)
        layer, role = (f"l{m.group(1)}", m.group(2)) if m else ("model", name)
        stream = next((what for key, what in STREAMS if role.endswith(key)), "requantisation and other")
        row = out.setdefault(layer, {})
        row[stream] = row.get(stream, 0) + sizes[ctype] * int(n)
    return out


def quiet():
    return contextlib.redirect_stdout(io.StringIO())


def run_lenet(name, make, prune: PruneOptions, clusters: int, xtr, ytr, xte, yte, work: Path, epochs: int,
              ft_epochs: int, per_tensor: bool, netduino: int, weights: str):
    """Train the float LeNet, then `tinyc convert --train --prune ... --cluster K` (what the CLI
    runs): prune with fine-tuning -> share K values with centroid fine-tuning -> int8 ->
    Huffman-coded weights the kernels decode in place."""
    import keras

    keras.utils.set_random_seed(0)
    model = make()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    t0 = time.time()
    model.fit(xtr, ytr, batch_size=32, epochs=epochs, verbose=0, validation_split=0.1)
    err_float = float_error(model, xte, yte)
    params = int(model.count_params())
    print(f"{name}: {params:,} parameters, float test error {err_float:.2f}% (trained in {time.time() - t0:.0f}s)")
    path = work / f"{name}.keras"
    model.save(path)
    np.savez(work / "train.npz", x=xtr, y=ytr)

    out = work / f"{name}_compressed"
    opts = ConvertOptions(train=work / "train.npz", per_tensor=per_tensor,
                          compress=CompressOptions(prune, weights, cluster=ClusterOptions(clusters=clusters)),
                          training=TrainOptions(epochs=ft_epochs, batch_size=32, learning_rate=5e-4))

    def show(stage, done, total, note=""):
        if stage in ("pruning", "clustering"):
            print(f"  {stage} {done}/{total} {note}", flush=True)
    with quiet():
        manifest = convert(path, out, opts, progress=show).manifest
    comp = manifest.section("compression")
    err_comp = c_error(out, xte, yte)
    # the same int8 model with raw weights: speed baseline
    raw = work / f"{name}_raw"
    convert_graph(load_tflite(out / "model.tflite"), raw, "host")
    sample = quantize_input(xte[:1], manifest.inputs[0]).tobytes()
    ins_c, ins_r = layer_instructions(out, sample), layer_instructions(raw, sample)
    exact_board = None
    if netduino:
        with quiet():
            summary, _, _ = validate_outdir(out, "netduinoplus2", None, None, netduino, 0, None, None)
        exact_board = f"{summary.bit_exact}/{summary.samples}"
    return {
        "name": name, "params": params, "float_bytes": 4 * params, "compressed_bytes": manifest.weight_bytes,
        "int8_bytes": comp["int8_bytes"], "ratio": 4 * params / manifest.weight_bytes, "clusters": clusters,
        "err_float": err_float, "err_comp": err_comp, "sparsity": comp["sparsity"], "stages": comp["stages"],
        "layers": comp["layers"], "manifest_layers": manifest.to_dict()["layers"],
        "ins_raw": ins_r, "ins_comp": ins_c, "netduinoplus2_bit_exact": exact_board,
        "streams": byte_streams(out), "weights": weights, "allocation": prune.allocation,
        "epochs": epochs, "ft_epochs": ft_epochs,
    }


def low_rank_row(xtr, ytr, xte, yte, work: Path, epochs: int, ft_epochs: int, rank: float,
                 factor_sparsity: float = 0.0) -> dict:
    """LeNet-300-100 with its first layer factorised by truncated SVD (`--low-rank-layer
    fc1=R --train`), optionally its two factors pruned too (`--prune-layer fc1_lr_u=S
    --prune-layer fc1_lr_v=S`, sparse weights), fine-tuned, quantized; C checked bit-exact on
    the host."""
    import keras

    keras.utils.set_random_seed(0)
    model = lenet_300_100()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(xtr, ytr, batch_size=32, epochs=epochs, verbose=0, validation_split=0.1)
    err_float = float_error(model, xte, yte)
    path = work / "lenet300_lr.keras"
    model.save(path)
    np.savez(work / "train.npz", x=xtr, y=ytr)
    out = work / "lenet300_lowrank"
    prune = PruneOptions(per_layer={"fc1_lr_u": factor_sparsity, "fc1_lr_v": factor_sparsity}
                         if factor_sparsity else {})
    opts = ConvertOptions(train=work / "train.npz", low_rank=LowRankOptions(per_layer={"fc1": RankSpec("rank", rank)}),
                          compress=CompressOptions(prune, "sparse" if factor_sparsity else None),
                          training=TrainOptions(epochs=ft_epochs, batch_size=32, learning_rate=5e-4))
    with quiet():
        manifest = convert(path, out, opts).manifest
        summary, _, _ = validate_outdir(out, "host", None, None, 50, 0, None, None)
    row = manifest.section("keras_compression")["stages"][0]["layers"][0]
    factors = [l for l in (manifest.section("compression") or {}).get("layers", []) if "fc1_lr" in l["name"]]
    return {"rank": rank, "layer": row, "err_float": err_float, "err_c": c_error(out, xte, yte),
            "bit_exact": f"{summary.bit_exact}/{summary.samples}", "factor_sparsity": factor_sparsity,
            "factor_nonzeros": sum(l["nonzeros"] for l in factors) or None,
            "factor_bytes": sum(l["bytes"] for l in factors) or None}


def mlperf_rows(n_samples: int) -> list[dict]:
    rows = []
    models = [("ad01_int8.tflite", False), ("kws_ref_model.tflite", True), ("pretrainedResnet_quant.tflite", True),
              ("vww_96_int8.tflite", True)]
    for fname, classifier in models:
        path = MLPERF / fname
        if not path.exists():
            continue
        work = Path(tempfile.mkdtemp(prefix="mlperf-"))
        try:
            g = load_tflite(path)
            raw = convert_graph(g, work / "raw", "host")
            layers = weight_layers(g)[1:-1]   # each layer but the first and last to 50%
            opts = PruneOptions(per_layer={l.name: 0.5 for l in layers})
            comp = convert(path, work / "comp", ConvertOptions(compress=CompressOptions(opts, "auto")))
            smallest = convert(path, work / "small", ConvertOptions(compress=CompressOptions(opts, "smallest")))
            before = sum(int((g.tensors[l.weight].data == 0).sum()) for l in weight_layers(g))
            total = sum(g.tensors[l.weight].size for l in weight_layers(g))
            ref0, ref1 = Reference(path), Reference(work / "comp" / "model.tflite")
            samples = random_inputs(raw.manifest.inputs, n_samples, seed=0)
            agree, err = 0, []
            for s in samples:
                a, b = ref0.run(*s)[0], ref1.run(*s)[0]
                agree += int(np.argmax(a) == np.argmax(b))
                err.append(float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
            # the compressed C equals its reference
            board = load_board("host")
            build(work / "comp", board)
            with open_session(board, work / "comp", timeout=600) as sess:
                res = sess.infer_many([to_record(s) for s in samples[:10]])
            exact = sum(r.output == ref1.run(*s)[0].tobytes() for r, s in zip(res, samples[:10]))
            c = comp.manifest.section("compression")
            kinds = {}
            for l in c["layers"]:
                kinds[l["encoding"]] = kinds.get(l["encoding"], 0) + 1
            rows.append({"model": fname, "int8_bytes": raw.manifest.weight_bytes,
                         "compressed_bytes": comp.manifest.weight_bytes, "sparsity": c["sparsity"],
                         "smallest_bytes": smallest.manifest.weight_bytes,
                         "sparsity_before": before / total,
                         "top1_agreement": agree / n_samples if classifier else None,
                         "mean_abs_diff_lsb": float(np.mean(err)), "bit_exact": f"{exact}/10", "encodings": kinds})
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--no-mlperf", action="store_true")
    ap.add_argument("--per-channel", action="store_true", help="per-channel weight scales (default per-tensor)")
    ap.add_argument("--models", default="LeNet-300-100,LeNet-5", help="comma-separated subset of the LeNets")
    ap.add_argument("--prune-300", type=float, default=0.92, help="global sparsity (--prune), LeNet-300-100")
    ap.add_argument("--clusters", type=int, default=16, help="shared values per layer (--cluster K)")
    ap.add_argument("--allocation", default="bits", choices=["magnitude", "bits"],
                    help="--prune-allocation of LeNet-300-100's global target")
    ap.add_argument("--weights", default="huffman", help="--weights (huffman: every layer Huffman-coded)")
    ap.add_argument("--low-rank", type=float, nargs="*", default=[0.25, 0.24],
                    help="rank fractions of LeNet-300-100's fc1 to measure (none: skip)")
    ap.add_argument("--low-rank-prune", type=float, default=0.5,
                    help="also run the first --low-rank rank with both factors pruned to this sparsity (0: skip)")
    ap.add_argument("--netduino", type=int, default=10, help="random inputs validated on netduinoplus2 (0: skip)")
    ap.add_argument("--targets-5", default="conv1=0.40,conv2=0.90,fc1=0.975,fc2=0.80", help="per-layer sparsity, LeNet-5")
    ap.add_argument("--epochs", type=int, default=None, help="float training epochs")
    ap.add_argument("--ft-epochs", type=int, default=None, help="pruning + fine-tuning epochs")
    ap.add_argument("--markdown", type=Path, help="also write the result tables here (for the README)")
    args = ap.parse_args()
    md: list[str] = []

    def out(line: str = "") -> None:
        print(line, flush=True)
        md.append(line)
    import keras  # noqa: F401

    out("Data: scikit-learn digits (8x8) upscaled to 28x28 -- MNIST cannot be downloaded here, so the error "
          "rates are not comparable with the paper's MNIST numbers; the sizes are.")
    xtr, xte, ytr, yte = digits_28()
    print(f"  {len(xtr)} training and {len(xte)} test images")
    epochs, ft = (8, 6) if args.quick else (40, 40)
    epochs, ft = args.epochs or epochs, args.ft_epochs or ft

    def targets(text):
        return {k: float(v) for k, v in (t.split("=") for t in text.split(","))}
    work = Path(tempfile.mkdtemp(prefix="deepcomp-"))
    results = []
    try:
        wanted = args.models.split(",")
        if "LeNet-300-100" in wanted:
            prune = PruneOptions(sparsity=args.prune_300, exclude_first_last=False, allocation=args.allocation)
            results.append(run_lenet("LeNet-300-100", lenet_300_100, prune,
                                     args.clusters, xtr, ytr, xte, yte, work, epochs, ft, not args.per_channel,
                                     args.netduino, args.weights))
        if "LeNet-5" in wanted:
            results.append(run_lenet("LeNet-5", lenet_5, PruneOptions(per_layer=targets(args.targets_5)),
                                     args.clusters, xtr, ytr, xte, yte, work, epochs, ft, not args.per_channel,
                                     args.netduino, args.weights))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out()
    out("| model | float32 | compressed | ratio | error float | error compressed (C) | paper: size, ratio, error |")
    out("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        p = PAPER[r["name"]]
        out(f"| {r['name']} | {r['float_bytes'] / 1000:,.0f} KB | {r['compressed_bytes'] / 1000:,.1f} KB | "
              f"{r['ratio']:.1f}x | {r['err_float']:.2f}% | {r['err_comp']:.2f}% | "
              f"{p['float_kb']} KB -> {p['compressed_kb']} KB, {p['ratio']}x, {p['err_float']}% -> {p['err_comp']}% |")
    out()
    for r in results:
        p = PAPER[r["name"]]["stages"]
        out(f"{r['name']} stage by stage (K = {r['clusters']}; float32 {r['float_bytes']:,} B; C bit-exact on "
            f"netduinoplus2: {r['netduinoplus2_bit_exact'] or 'not run'}):")
        out("| stage | bytes | a/a* vs float32 | (a-a*)/a* | vs previous stage | paper a/a* | how |")
        out("|---|---:|---:|---:|---:|---:|---|")
        for st in r["stages"]:
            prev = f"{st['rate_vs_previous']:.2f}x" if st.get("rate_vs_previous") else "-"
            out(f"| {st['stage']} | {st['bytes']:,} | {st['compression_rate']:.1f}x | {st['space_saving_rate']:.1f} | "
                f"{prev} | {str(p.get(st['stage'], '')) + ('x' if st['stage'] in p else '')} | {st['how']} |")
        out()
        out(f"{r['name']}: sparsity {r['sparsity'] * 100:.1f}%, plain int8 {r['int8_bytes']:,} B, compressed "
            f"{r['compressed_bytes']:,} B; error float {r['err_float']:.2f}%, compressed C {r['err_comp']:.2f}%")
        out(f"  {'layer':10s} {'params':>8s} {'nonzero':>8s} {'values':>6s} {'encoding':15s} {'bytes':>7s} {'val b':>6s} "
            f"{'idx b':>6s} {'instr raw':>10s} {'instr comp':>10s} {'comp/raw':>8s}")
        by_name = {l["name"]: l for l in r["layers"]}
        for i, ml in enumerate(r["manifest_layers"]):
            l = by_name.get(ml["name"])
            ir = r["ins_raw"][i] if i < len(r["ins_raw"]) else 0
            ic = r["ins_comp"][i] if i < len(r["ins_comp"]) else 0
            if l is None:
                out(f"  {ml['op'][:10]:10s} {'':8s} {'':8s} {'':6s} {'':15s} {'':7s} {'':6s} {'':6s} {ir:>10,} {ic:>10,}")
                continue
            short = ml["name"].split(";")[0].split("/")[-2] if "/" in ml["name"] else ml["name"][:10]
            out(f"  {short[:10]:10s} {l['params']:>8,} {l['nonzeros']:>8,} {l['distinct_values']:>6} {l['encoding']:15s} {l['bytes']:>7,} "
                  f"{l['value_bits_per_nonzero']:>6.2f} {l['index_bits_per_nonzero']:>6.2f} {ir:>10,} {ic:>10,} "
                  f"{(ic / ir if ir else 0):>8.2f}")
        kinds = sorted({k for row in r["streams"].values() for k in row})
        out(f"  where the {r['compressed_bytes']:,} bytes go (arrays of weights.c):")
        out("| layer | " + " | ".join(kinds) + " | total |")
        out("|---|" + "---:|" * (len(kinds) + 1))
        for layer, row in r["streams"].items():
            out(f"| {layer} | " + " | ".join(f"{row.get(k, 0):,}" for k in kinds) + f" | {sum(row.values()):,} |")
        out("| all | " + " | ".join(f"{sum(row.get(k, 0) for row in r['streams'].values()):,}" for k in kinds)
            + f" | {sum(sum(row.values()) for row in r['streams'].values()):,} |")
        tr, tc = sum(r["ins_raw"]), sum(r["ins_comp"])
        out(f"  instructions per inference: raw {tr:,}, compressed {tc:,} (speedup rate s/s* {tr / tc:.2f}x)")
    if args.low_rank:
        work = Path(tempfile.mkdtemp(prefix="deepcomp-lr-"))
        try:
            out()
            out("Low-rank: LeNet-300-100's fc1 (784 x 300) by truncated SVD, fine-tuned "
                f"{ft} epochs (`--low-rank-layer fc1=R --train`), C on the host:")
            out("| rank kept | fc1 params (nonzero) | fc1 MACs | reduction | error float | error C | C bit-exact |")
            out("|---|---:|---:|---:|---:|---:|---:|")
            runs = [(r, 0.0) for r in args.low_rank] + [(r, args.low_rank_prune) for r in args.low_rank[:1]
                                                         if args.low_rank_prune]
            for rank, fs in runs:
                lr = low_rank_row(xtr, ytr, xte, yte, work, epochs, ft, rank, fs)
                la = lr["layer"]
                kept = lr["factor_nonzeros"] if fs else la["params_after"]   # pruned: nonzeros stored
                what = f" + factors pruned {fs:.0%}" if fs else ""
                out(f"| {rank:g} (rank {la['ranks'][0]} of {la['full_rank']}){what} | {la['params_before']:,} -> "
                    f"{kept:,} | {la['macs_before']:,} -> {kept:,} | "
                    f"{la['params_before'] / kept:.2f}x | {lr['err_float']:.2f}% | {lr['err_c']:.2f}% | "
                    f"{lr['bit_exact']} |")
            out("A rank-r factorisation of the 784 x 300 layer keeps r (784 + 300) weights: 3x needs "
                "r <= 235,200 / (3 x 1,084) = 72.3, so rank 75 (25%) gives 2.89x and rank 72 (24%) 3.01x; "
                "pruning the factors (sparse kernel: pruned weights are neither stored nor multiplied) goes further.")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    mlp = []
    if not args.no_mlperf:
        out()
        out("MLPerf Tiny int8 models, every weight layer but the first and last pruned to 50% (magnitude, "
              "no fine-tuning), --weights auto; agreement with the unpruned model on 100 random inputs "
              "(no datasets here), both run by BUILTIN_REF; the C checked bit-exact on 10 of them. auto keeps each "
              "layer's estimated time within 2x of raw; smallest ignores time:")
        mlp = mlperf_rows(100)
        out("| model | int8 bytes | auto (<= 2x time) | ratio | smallest | ratio | zeros before | sparsity "
              "| top-1 agreement | mean abs diff (LSB) | C bit-exact | auto encodings |")
        out("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for m in mlp:
            agree = f"{m['top1_agreement'] * 100:.0f}%" if m["top1_agreement"] is not None else "n/a (autoencoder)"
            out(f"| {m['model']} | {m['int8_bytes']:,} | {m['compressed_bytes']:,} | "
                  f"{m['int8_bytes'] / m['compressed_bytes']:.2f}x | {m['smallest_bytes']:,} | "
                  f"{m['int8_bytes'] / m['smallest_bytes']:.2f}x | {m['sparsity_before'] * 100:.1f}% | "
                  f"{m['sparsity'] * 100:.1f}% | {agree} | "
                  f"{m['mean_abs_diff_lsb']:.2f} | {m['bit_exact']} | "
                  f"{', '.join(f'{k} {v}' for k, v in m['encodings'].items())} |")
    if args.markdown:
        args.markdown.write_text("\n".join(md) + "\n")
    if args.json:
        args.json.write_text(json.dumps({"lenet": results, "mlperf": mlp}, indent=2, default=float))


if __name__ == "__main__":
    main()
