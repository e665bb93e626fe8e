"""Keras fine-tuning, before quantization (`tinyc convert --train`): one training loop that
every compression method shares, and gradual magnitude pruning on top of it.

`fine_tune(model, x, y, train, constraints, teacher)` runs a plain GradientTape loop. Each
method is a `Constraint` with hooks around the step: pruning masks gradients and weights,
weight sharing sums the gradients of the weights that share a centroid
(tinyc/quantize/cluster.py), quantization-aware training swaps fake-quantized weights in for
the forward pass (tinyc/quantize/qat.py). Constraints stack, so a later stage keeps what an
earlier one fixed. With a teacher, the loss is Hinton's distillation loss
alpha * CE(y, student) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T)).

Pruning ramps sparsity along Zhu & Gupta's cubic schedule, masks re-applied after each step
and frozen at the end, with optional rewinding of the surviving weights to an early
checkpoint (lottery ticket). Plain Keras 3 (tensorflow-model-optimization would switch the
process to Keras 2). Nothing here prints: progress goes through a tinyc.progress callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyc.errors import TinycError
from tinyc.passes.prune import PruneOptions, allocate_zeros, check_fraction, excluded_by_default
from tinyc.progress import Progress

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


def _masks_for(weights: list[np.ndarray], groups: list[tuple[list[int], float]],
               options: PruneOptions | None = None) -> list[np.ndarray]:
    """Masks zeroing exactly round(s * n) smallest |w| in each group of layer indices (per
    stored bit with the "bits" allocation)."""
    masks = [np.ones(w.shape, dtype=bool) for w in weights]
    for idx, s in groups:
        mags = [np.abs(weights[i]) for i in idx]
        k = int(round(s * sum(m.size for m in mags)))
        for i, keep in zip(idx, allocate_zeros(mags, k, options or PruneOptions())):
            masks[i] = keep
    return masks


@dataclass
class DistillOptions:
    """Knowledge distillation (Hinton et al. 2015) from the original float model.

    mixup: the soft-target term is taken on mixed inputs, lam * x_i + (1 - lam) * x_j of two
    training samples, which the teacher labels in the same step ("function matching", Beyer et
    al. 2022): on the training samples alone a teacher that fits them says little more than
    their labels, between them it shows the student its whole function."""
    temperature: float = 1.0   # function matching wants the teacher's probabilities as they are
    alpha: float = 0.5         # weight of the hard-label cross-entropy; 1 - alpha on the soft targets
    mixup: bool = True


class Constraint:
    """Hooks of one compression method around a training step (all optional)."""

    def before_forward(self) -> None:
        """Change weights for the forward pass (QAT: fake-quantized weights)."""

    def after_gradient(self) -> None:
        """Undo before_forward, before the optimizer step."""

    def gradient(self, var, grad):
        """The gradient to apply to `var` (None: unchanged)."""
        return None

    def after_step(self, step: int, total: int) -> None:
        """After the optimizer step: project the weights back (masks, shared values)."""


def output_kind(model) -> str:
    """"probs" when the model ends in a softmax, "logits" when its last layer is linear, else the
    activation's name (a model without class scores to distil)."""
    last = model.layers[-1]
    while hasattr(last, "layers") and last.layers:
        last = last.layers[-1]
    if type(last).__name__ == "Softmax":
        return "probs"
    act = getattr(getattr(last, "activation", None), "__name__", "linear")
    return {"softmax": "probs", "linear": "logits"}.get(act, act)


def is_classification(model, y: np.ndarray) -> bool:
    out_units = int(model.outputs[0].shape[-1])
    return y.ndim == 1 and np.issubdtype(y.dtype, np.integer) and out_units > 1


def check_distillable(model, y: np.ndarray) -> None:
    kind = output_kind(model)
    if not is_classification(model, y) or kind not in ("probs", "logits"):
        why = (f"its output ends in '{kind}'" if kind not in ("probs", "logits")
               else "the training labels are not integer classes of a multi-class output")
        raise TinycError(f"--distill needs a classifier with softmax or logit outputs and integer labels; {why}, "
                         "so there are no logits to distil: drop --distill")


def _logits(out, kind: str):
    import tensorflow as tf
    return tf.math.log(tf.clip_by_value(out, 1e-12, 1.0)) if kind == "probs" else out   # log p = z + const


def distillation_loss(ce, teacher_logits, student_logits, d: DistillOptions):
    """Hinton's loss: alpha * CE(y, student) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T)).
    The T^2 keeps the soft targets' gradients as large as the hard ones' whatever T is."""
    import tensorflow as tf
    T = float(d.temperature)
    t = tf.nn.log_softmax(teacher_logits / T)
    kl = tf.reduce_mean(tf.reduce_sum(tf.exp(t) * (t - tf.nn.log_softmax(student_logits / T)), axis=-1))
    return d.alpha * ce + (1.0 - d.alpha) * T * T * kl


def fine_tune(model, x: np.ndarray, y: np.ndarray, train: "TrainOptions", constraints: list[Constraint] = (),
              teacher=None, distill: DistillOptions | None = None, progress: Progress | None = None,
              stage: str = "fine-tune") -> dict:
    """Train `model` in place on (x, y) under the constraints; returns the last epoch's metrics."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(train.seed)
    kind = output_kind(model)
    classes = is_classification(model, y)
    d = distill or DistillOptions()
    if teacher is not None:
        check_distillable(model, y)
        t_kind = output_kind(teacher)

    def hard_loss(yb, out):
        if not classes:
            return tf.reduce_mean(tf.square(tf.cast(yb, out.dtype) - out))
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(yb, tf.int32), logits=_logits(out, kind)))

    variables = list(model.trainable_variables)

    @tf.function
    def grads_of(xb, yb, lam, pair):
        with tf.GradientTape() as tape:
            out = model(xb, training=True)
            loss = hard_loss(yb, out)
            if teacher is not None:
                xs, z = xb, _logits(out, kind)
                if d.mixup:   # the teacher labels the mixed inputs the student sees
                    shape = tf.concat([tf.shape(lam), tf.ones(tf.rank(xb) - 1, tf.int32)], 0)
                    mix = tf.reshape(lam, shape)
                    xs = mix * xb + (1.0 - mix) * tf.gather(xb, pair)
                    z = _logits(model(xs, training=True), kind)
                loss = distillation_loss(loss, _logits(teacher(xs, training=False), t_kind), z, d)
            if model.losses:   # the model's own regularisers keep training as they did
                loss = loss + tf.add_n(model.losses)
        return loss, tape.gradient(loss, variables)

    optimizer = keras.optimizers.Adam(train.learning_rate)
    rng = np.random.default_rng(train.seed)
    mix_rng = np.random.default_rng(train.seed + 1)   # its own stream: the batches stay those of plain training
    order = rng.permutation(len(x))
    n_val = int(len(x) * train.validation_split)
    val, tr = order[:n_val], order[n_val:]
    steps_per_epoch = max(1, -(-len(tr) // train.batch_size))
    total, step, metrics = steps_per_epoch * train.epochs, 0, {}
    for epoch in range(train.epochs):
        perm = rng.permutation(tr)
        losses = []
        for b in range(steps_per_epoch):
            idx = perm[b * train.batch_size:(b + 1) * train.batch_size]
            for c in constraints:
                c.before_forward()
            lam = mix_rng.uniform(0.0, 1.0, len(idx)).astype(np.float32)   # mixup weights (distillation)
            loss, grads = grads_of(tf.constant(x[idx]), tf.constant(y[idx]), tf.constant(lam),
                                   tf.constant(mix_rng.permutation(len(idx))))
            for c in constraints:
                c.after_gradient()
            pairs = []
            for v, g in zip(variables, grads):
                if g is None:
                    continue
                for c in constraints:
                    h = c.gradient(v, g)
                    g = g if h is None else h
                pairs.append((g, v))
            optimizer.apply_gradients(pairs)
            step += 1
            for c in constraints:
                c.after_step(step, total)
            losses.append(float(loss))
        metrics = {"loss": float(np.mean(losses))}
        if n_val:
            pred = model.predict(x[val], batch_size=256, verbose=0)
            metrics["val"] = (float(np.mean(np.argmax(pred, -1) == y[val])) if classes
                              else float(np.mean((pred - y[val]) ** 2)))
        if progress:
            note = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            extra = [c.describe() for c in constraints if hasattr(c, "describe")]
            progress(stage, epoch + 1, train.epochs, "  ".join([*extra, note]))
    return metrics


class GradualPruning(Constraint):
    """Masks recomputed along the cubic ramp s(t) = s_f (1 - (1 - t / T)^3) over the first
    `ramp` share of the steps, re-applied after every step, then fixed."""

    def __init__(self, layers, final: list[tuple[list[int], float]], train: "TrainOptions", model,
                 steps_per_epoch: int, options: PruneOptions | None = None):
        import keras
        self.keras, self.layers, self.final, self.model = keras, layers, final, model
        self.options = options or PruneOptions()
        self.masks = [np.ones(tuple(l.kernel.shape), dtype=bool) for l in layers]
        self.by_var = {}
        self.rewind, self.checkpoint, self.rewound = train.rewind, None, False
        self.checkpoint_at = max(1, steps_per_epoch // 2)
        self.ramp = train.ramp

    def kernels(self):
        return [np.asarray(self.keras.ops.convert_to_numpy(l.kernel)) for l in self.layers]

    def apply(self):
        self.by_var = {id(l.kernel): m for l, m in zip(self.layers, self.masks) if not m.all()}
        for l, m in zip(self.layers, self.masks):
            if not m.all():
                l.kernel.assign(self.keras.ops.convert_to_numpy(l.kernel) * m)

    def gradient(self, var, grad):
        m = self.by_var.get(id(var))
        return None if m is None else grad * m.astype(np.float32)

    def after_step(self, step, total):
        ramp_end = max(1, int(self.ramp * total))
        every = max(1, ramp_end // 10)
        if self.rewind and self.checkpoint is None and step >= self.checkpoint_at:
            self.checkpoint = [w.copy() for w in self.model.get_weights()]
        if step <= ramp_end and (step % every == 0 or step == ramp_end):
            frac = 1.0 - (1.0 - min(1.0, step / ramp_end)) ** 3
            self.masks = _masks_for(self.kernels(), [(idx, s * frac) for idx, s in self.final], self.options)
        self.apply()
        if self.rewind and step == ramp_end and not self.rewound and self.checkpoint is not None:
            self.model.set_weights(self.checkpoint)   # lottery ticket: survivors restart early
            self.apply()
            self.rewound = True

    def finish(self):
        self.masks = _masks_for(self.kernels(), self.final, self.options)   # exactly the requested sparsity
        self.apply()

    def describe(self):
        ks = self.kernels()
        return f"sparsity {100 * sum(int((k == 0).sum()) for k in ks) / max(1, sum(k.size for k in ks)):5.1f}%"


class KeepZeros(Constraint):
    """Pruned weights stay zero while a later stage trains (the masks of an earlier pruning)."""

    def __init__(self, layers):
        import keras
        self.keras = keras
        self.masks = {}
        for l in layers:
            k = np.asarray(keras.ops.convert_to_numpy(l.kernel))
            if (k == 0).any():
                self.masks[id(l.kernel)] = (l.kernel, (k != 0).astype(np.float32))

    def gradient(self, var, grad):
        m = self.masks.get(id(var))
        return None if m is None else grad * m[1]

    def after_step(self, step, total):
        for var, m in self.masks.values():
            var.assign(self.keras.ops.convert_to_numpy(var) * m)


def prune_keras(model, x: np.ndarray, y: np.ndarray, options: PruneOptions, train: TrainOptions | None = None,
                progress: Progress | None = None, teacher=None, distill: DistillOptions | None = None,
                extra: list[Constraint] = ()) -> tuple[object, list[dict]]:
    """Gradual magnitude pruning with fine-tuning of a Keras 3 model, in place (see
    GradualPruning), under further constraints `extra`. Returns the model and one row per layer."""
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
    left_out = excluded_by_default([int(np.prod(l.kernel.shape)) for l in layers], options)
    pool = [i for i in range(len(layers)) if i not in own and i not in left_out]
    final: list[tuple[list[int], float]] = [([i], s) for i, s in own.items()]
    if options.sparsity:
        final.append((pool, check_fraction(options.sparsity, "--prune")))
    n_train = len(x) - int(len(x) * train.validation_split)
    pruning = GradualPruning(layers, final, train, model, max(1, -(-n_train // train.batch_size)), options)
    fine_tune(model, x, y, train, [pruning, *extra], teacher=teacher, distill=distill, progress=progress, stage="pruning")
    pruning.finish()
    rows = []
    targets = {i: s for idx, s in final for i in idx}
    for i, (l, k) in enumerate(zip(layers, pruning.kernels())):
        zeros = int((k == 0).sum())
        if zeros == k.size:
            raise TinycError(f"pruning empties layer {l.name} (all {k.size} weights zero); lower its sparsity")
        rows.append({"name": l.name, "op": type(l).__name__, "params": int(k.size), "zeros": zeros,
                     "target": targets.get(i)})
    return model, rows
