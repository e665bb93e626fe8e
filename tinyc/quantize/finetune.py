"""Keras fine-tuning: gradual magnitude pruning of a Keras 3 model while it trains, before
it is quantized (`tinyc convert --train`).

Sparsity is ramped along Zhu & Gupta's cubic schedule, masks re-applied after each step and
frozen at the end, with optional rewinding of the surviving weights to an early checkpoint
(lottery ticket). Plain Keras 3 (tensorflow-model-optimization would switch the process to
Keras 2). Nothing here prints: progress goes through a tinyc.progress callback.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyc.errors import TinycError
from tinyc.passes.prune import PruneOptions, check_fraction, zero_smallest
from tinyc.progress import Progress
from tinyc.quantize import keras as kf

KERAS_PRUNABLE = ("Dense", "Conv2D", "DepthwiseConv2D")


@dataclass
class TrainOptions:
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 5e-4
    ramp: float = 0.6          # share of the steps over which sparsity ramps up
    rewind: bool = False       # reset survivors to an early checkpoint once the masks are final
    validation_split: float = 0.1
    seed: int = 0


def keras_layers(model) -> list:
    out = []
    for layer in model.layers:
        if type(layer).__name__ in KERAS_PRUNABLE and getattr(layer, "kernel", None) is not None:
            out.append(layer)
        elif hasattr(layer, "layers"):
            out.extend(keras_layers(layer))
    return out


def load_training_data(path, input_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """x, y from a .npz (x: (N, *input shape), y: N labels or targets)."""
    p = Path(path)
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise TinycError(f"--train {p}: cannot read it as .npz ({type(exc).__name__}); "
                         "save it with np.savez(path, x=inputs, y=labels)") from None
    if not isinstance(data, np.lib.npyio.NpzFile) or "x" not in data.files or "y" not in data.files:
        raise TinycError(f"--train {p}: expected an .npz with arrays x and y (np.savez(path, x=inputs, y=labels))")
    x, y = np.asarray(data["x"], dtype=np.float32), np.asarray(data["y"])
    want = tuple(int(d) for d in input_shape[1:])
    if x.ndim < 1 or tuple(x.shape[1:]) != want:
        raise TinycError(f"--train {p}: x has shape {tuple(x.shape)}, the model takes (N, "
                         f"{', '.join(map(str, want))}); reshape the samples")
    if len(y) != len(x):
        raise TinycError(f"--train {p}: x has {len(x)} samples but y has {len(y)}; give one label per sample")
    return x, y


def _masks_for(weights: list[np.ndarray], groups: list[tuple[list[int], float]]) -> list[np.ndarray]:
    """Masks zeroing exactly round(s * n) smallest |w| in each group of layer indices."""
    masks = [np.ones(w.shape, dtype=bool) for w in weights]
    for idx, s in groups:
        mags = [np.abs(weights[i]) for i in idx]
        for i, keep in zip(idx, zero_smallest(mags, int(round(s * sum(m.size for m in mags))))):
            masks[i] = keep
    return masks


def prune_keras(model, x: np.ndarray, y: np.ndarray, options: PruneOptions, train: TrainOptions | None = None,
                progress: Progress | None = None) -> tuple[object, list[dict]]:
    """Gradual magnitude pruning with fine-tuning of a Keras 3 model, in place.

    Sparsity follows s(t) = s_f (1 - (1 - t / T)^3) over the first `ramp` share of the steps
    (Zhu & Gupta 2017), masks recomputed ten times along the ramp and re-applied after every
    step; then fixed for the remaining fine-tuning. Returns the model and one row per layer.
    """
    import keras

    train = train or TrainOptions()
    layers = keras_layers(model)
    if not layers:
        raise TinycError("the Keras model has no Dense or Conv2D layers to prune")
    names = [l.name for l in layers]
    own: dict[int, float] = {}
    for name, s in options.per_layer.items():
        if name not in names:
            raise TinycError(f"--prune-layer {name}: no such layer; layers with weights: {', '.join(names)}")
        own[names.index(name)] = check_fraction(s, f"--prune-layer {name}:")
    pool = [i for i in range(len(layers)) if i not in own]
    if options.exclude_first_last and len(layers) > 2:
        pool = [i for i in pool if i not in (0, len(layers) - 1)]
    final: list[tuple[list[int], float]] = [([i], s) for i, s in own.items()]
    if options.sparsity:
        final.append((pool, check_fraction(options.sparsity, "--prune")))

    out_units = int(model.outputs[0].shape[-1])
    labels = y.ndim == 1 and np.issubdtype(y.dtype, np.integer) and out_units > 1
    if labels:
        act = getattr(model.layers[-1], "activation", None)
        from_logits = getattr(act, "__name__", "") != "softmax"
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        metrics = ["accuracy"]
    else:
        loss, metrics = "mse", []
    model.compile(optimizer=keras.optimizers.Adam(train.learning_rate), loss=loss, metrics=metrics)

    n_val = int(len(x) * train.validation_split)
    rng = np.random.default_rng(train.seed)
    order = rng.permutation(len(x))
    xv, yv = x[order[:n_val]], y[order[:n_val]]
    xt, yt = x[order[n_val:]], y[order[n_val:]]
    steps_per_epoch = max(1, -(-len(xt) // train.batch_size))
    total = steps_per_epoch * train.epochs
    ramp_end = max(1, int(train.ramp * total))
    every = max(1, ramp_end // 10)
    state = {"step": 0, "masks": [np.ones(tuple(l.kernel.shape), dtype=bool) for l in layers],
             "checkpoint": None, "rewound": False}

    def kernels():
        return [np.asarray(keras.ops.convert_to_numpy(l.kernel)) for l in layers]

    def apply_masks():
        for l, m in zip(layers, state["masks"]):
            if not m.all():
                l.kernel.assign(keras.ops.convert_to_numpy(l.kernel) * m)

    def sparsity_at(t):
        f = min(1.0, t / ramp_end)
        return 1.0 - (1.0 - f) ** 3

    class Pruning(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            state["step"] += 1
            t = state["step"]
            if train.rewind and state["checkpoint"] is None and t >= max(1, steps_per_epoch // 2):
                state["checkpoint"] = [w.copy() for w in model.get_weights()]
            if t <= ramp_end and (t % every == 0 or t == ramp_end):
                frac = sparsity_at(t)
                state["masks"] = _masks_for(kernels(), [(idx, s * frac) for idx, s in final])
            apply_masks()
            if train.rewind and t == ramp_end and not state["rewound"] and state["checkpoint"] is not None:
                model.set_weights(state["checkpoint"])   # lottery ticket: survivors restart early
                apply_masks()
                state["rewound"] = True

        def on_epoch_end(self, epoch, logs=None):
            if progress:
                logs = logs or {}
                ks = kernels()
                sp = sum(int((k == 0).sum()) for k in ks) / max(1, sum(k.size for k in ks))
                acc = logs.get("val_accuracy", logs.get("val_loss"))
                progress("pruning", epoch + 1, train.epochs,
                         f"sparsity {sp * 100:5.1f}%  loss {logs.get('loss', float('nan')):.4f}"
                         + (f"  val {acc:.4f}" if acc is not None else ""))

    keras.utils.set_random_seed(train.seed)
    model.fit(xt, yt, batch_size=train.batch_size, epochs=train.epochs, verbose=0,
              validation_data=(xv, yv) if n_val else None, callbacks=[Pruning()], shuffle=True)
    # Final masks at exactly the requested sparsity.
    state["masks"] = _masks_for(kernels(), final)
    apply_masks()
    rows = []
    targets = {i: s for idx, s in final for i in idx}
    for i, (l, k) in enumerate(zip(layers, kernels())):
        zeros = int((k == 0).sum())
        if zeros == k.size:
            raise TinycError(f"pruning empties layer {l.name} (all {k.size} weights zero); lower its sparsity")
        rows.append({"name": l.name, "op": type(l).__name__, "params": int(k.size), "zeros": zeros,
                     "target": targets.get(i)})
    return model, rows


def prune_keras_file(model_path, train_path, options: PruneOptions, rewind: bool = False,
                     progress: Progress | None = None, train_options: TrainOptions | None = None):
    """Load a Keras model, prune it while fine-tuning on train_path, save it in a temp
    folder; returns (path of the pruned .keras model, per-layer rows, temp folder)."""
    model = kf.load_keras(model_path)
    x, y = load_training_data(train_path, tuple(model.inputs[0].shape))
    topts = train_options or TrainOptions()
    topts.rewind = rewind or topts.rewind
    model, rows = prune_keras(model, x, y, options, topts, progress=progress)
    tmp = Path(tempfile.mkdtemp(prefix="tinyc-pruned-"))
    path = tmp / (Path(model_path).stem + "_pruned.keras")
    with kf.captured_output():
        model.save(path)
    return path, rows, tmp
