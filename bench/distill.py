"""Does --distill help? A small CNN on scikit-learn's 8x8 digits, trained on few samples,
pruned to 95% with fine-tuning (tinyc's prune_keras: what `tinyc convert --prune 0.95 --train`
runs), with and without knowledge distillation from the unpruned float model, over several
seeds (same seed, same data and same initial model for both runs).

    make bench-distill        (or: .venv/bin/python bench/distill.py [--seeds 0 1 2 3 4])

Prints the test error of each run and the mean over the seeds; --json writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyc.passes.prune import PruneOptions  # noqa: E402
from tinyc.quantize.finetune import DistillOptions, TrainOptions, prune_keras  # noqa: E402


def digits(seed: int, n_train: int):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    x, y = x[idx], y[idx]
    return x[:n_train], y[:n_train], x[1400:], y[1400:]


def small_cnn():
    import keras
    L = keras.layers
    return keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", activation="relu"),
                             L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                             L.Dense(32, activation="relu"), L.Dense(10)], name="small_cnn")


def error(model, x, y) -> float:
    return 100.0 * float(np.mean(np.argmax(model.predict(x, verbose=0), 1) != y))


def run(seed: int, n_train: int, sparsity: float, epochs: int, distill: DistillOptions | None, float_epochs: int):
    import keras
    xtr, ytr, xte, yte = digits(seed, n_train)
    keras.utils.set_random_seed(seed)
    teacher = small_cnn()
    teacher.compile(optimizer=keras.optimizers.Adam(1e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(xtr, ytr, batch_size=32, epochs=float_epochs, verbose=0)
    student = keras.models.clone_model(teacher)
    student.set_weights(teacher.get_weights())
    prune_keras(student, xtr, ytr, PruneOptions(sparsity=sparsity, exclude_first_last=False),
                TrainOptions(epochs=epochs, batch_size=32, learning_rate=1e-3, seed=seed),
                teacher=teacher if distill else None, distill=distill)
    return error(teacher, xte, yte), error(student, xte, yte)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--train-samples", type=int, default=1400, help="of the 1,797 digits (the rest from 1,400 is the test split)")
    ap.add_argument("--sparsity", type=float, default=0.95)
    ap.add_argument("--epochs", type=int, default=30, help="pruning + fine-tuning epochs")
    ap.add_argument("--float-epochs", type=int, default=40)
    ap.add_argument("--temperature", type=float, default=DistillOptions.temperature)
    ap.add_argument("--alpha", type=float, default=DistillOptions.alpha)
    ap.add_argument("--no-mixup", action="store_true", help="soft targets on the training samples only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    d = DistillOptions(temperature=args.temperature, alpha=args.alpha, mixup=not args.no_mixup)
    rows = []
    t0 = time.time()
    print(f"small CNN, {args.train_samples} training samples, pruned to {args.sparsity:.0%} over "
          f"{args.epochs} epochs; --distill T {d.temperature:g} alpha {d.alpha:g} mixup {d.mixup}")
    print("| seed | float teacher | pruned, no distill | pruned, --distill |")
    print("|---:|---:|---:|---:|")
    for s in args.seeds:
        e_t, e_plain = run(s, args.train_samples, args.sparsity, args.epochs, None, args.float_epochs)
        _, e_dist = run(s, args.train_samples, args.sparsity, args.epochs, d, args.float_epochs)
        rows.append({"seed": s, "teacher": e_t, "plain": e_plain, "distill": e_dist})
        print(f"| {s} | {e_t:.2f}% | {e_plain:.2f}% | {e_dist:.2f}% |", flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("teacher", "plain", "distill")}
    print(f"| mean | {mean['teacher']:.2f}% | {mean['plain']:.2f}% | {mean['distill']:.2f}% |")
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": None}, "runs": rows, "mean": mean},
                                        indent=2, default=str))


if __name__ == "__main__":
    main()
