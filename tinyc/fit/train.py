"""Fine-tuning a `tinyc fit` plan on the Keras model (`tinyc fit --train DATA.npz`).

A plan's per-layer settings are mapped onto the Keras layers and trained in with tinyc's
training code (tinyc.quantize.finetune, tinyc.quantize.cluster):
  channels  the output channels with the smallest L1 norm get zero kernel columns and bias,
            and the next weight layer zero rows for them, all kept zero while training
            (ZeroChannels): the channels' output is exactly 0, so the int8 pass that removes
            them afterwards (tinyc.passes.prune.prune_channels, smallest L1 first) removes these
            very channels and changes no output (where the activation keeps 0 at 0 and no
            BatchNormalization shifts it: such a channel's constant is dropped, as one-shot);
  sparsity  gradual magnitude pruning with fine-tuning (prune_keras), to the plan's sparsity of
            the weights that stay after channel removal (the zeroed ones are pruned first);
  clusters  weight sharing with centroid fine-tuning (cluster_keras).
The model is then quantized again with the calibration data (tinyc.quantize.prepare), with the
plan's 16x8 layers mixed in (tinyc.quantize.precision), and the plan applied to that int8
graph as for any candidate: channel removal, the sparsity topped up where removed inputs of a
layer left it short, shared values merged again in int8, the encodings.

Fine-tuned int8 models are cached on disk by plan and training arguments, so the chosen trial
is not trained twice and a rerun trains nothing it trained before.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tinyc.errors import TinycError
from tinyc.fit.space import MODEL, LayerSpace, Plan, layers_of
from tinyc.frontend import model_format
from tinyc.frontend.tflite import tflite_to_graph
from tinyc.passes.cluster import ClusterOptions
from tinyc.ir import Graph
from tinyc.passes.prune import PruneOptions, prune_channels, weight_layers
from tinyc.quantize import keras as kf
from tinyc.quantize.cluster import cluster_keras
from tinyc.quantize.finetune import KeepZeros, TrainOptions, fine_tune, keras_layers, load_training_data, prune_keras
from tinyc.quantize.precision import PrecisionOptions, apply_precision
from tinyc.quantize.prepare import quantize_float

_KERAS_KIND = {"FULLY_CONNECTED": "Dense", "CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D"}


def check_trainable(model: Path) -> None:
    """--train needs the float Keras model: refuse other inputs in one line."""
    fmt = model_format(model)
    if fmt == "keras":
        return
    if fmt == "saved_model":
        raise TinycError(f"--train fine-tunes a Keras model; {model} is a SavedModel folder: give the .keras or "
                         ".h5 file it was saved from")
    from tinyc.frontend.tflite import load_tflite
    from tinyc.ir import first_float_op
    if first_float_op(load_tflite(model)) is None:
        raise TinycError(f"--train needs the float/Keras model: {model} is an int8 .tflite (no float weights to "
                         "fine-tune); give the .keras or .h5 model it was converted from, or drop --train")
    raise TinycError(f"--train fine-tunes a Keras model; {model} is a float .tflite (TFLite cannot train it): "
                     "give the .keras or .h5 model it was converted from, or drop --train")


def removed_channels(layer, ratio: float) -> np.ndarray:
    """The output channels of a Keras layer that channel pruning at `ratio` removes: the
    round(ratio * C) of smallest L1 norm, as tinyc.passes.prune.prune_channels picks them."""
    import keras
    k = np.asarray(keras.ops.convert_to_numpy(layer.kernel))
    channels = int(k.shape[-1])
    l1 = np.abs(k).reshape(-1, channels).sum(axis=0)
    return np.sort(np.argsort(l1, kind="stable")[:int(round(ratio * channels))])


def input_rows(layer, channels: int, removed: np.ndarray) -> np.ndarray | None:
    """The inputs of a Dense / Conv2D layer fed by the removed channels of a layer with
    `channels` outputs: the channels themselves, or after a (channels-last) flatten, every
    position's; None when the sizes do not line up."""
    n_in = int(layer.kernel.shape[-2])
    if n_in % channels:
        return None
    return (np.arange(n_in // channels)[:, None] * channels + removed[None, :]).reshape(-1)


class ZeroChannels(KeepZeros):
    """Removed channels: zero kernel columns and bias of their layer, zero rows of the next
    (KeepZeros holds them: masked gradients, masks re-applied after each step)."""

    def __init__(self):
        super().__init__([])   # masks: id(variable) -> (variable, 0/1 mask that broadcasts over it)

    def zero(self, var, mask: np.ndarray) -> None:
        if id(var) in self.masks:
            mask = mask * self.masks[id(var)][1]
        self.masks[id(var)] = (var, mask.astype(np.float32))

    def columns(self, layer, removed: np.ndarray) -> None:
        keep = np.ones(int(layer.kernel.shape[-1]), np.float32)
        keep[removed] = 0.0
        self.zero(layer.kernel, keep)
        if getattr(layer, "bias", None) is not None:
            self.zero(layer.bias, keep)

    def rows(self, layer, rows: np.ndarray) -> None:
        keep = np.ones((int(layer.kernel.shape[-2]), 1), np.float32)
        keep[rows] = 0.0
        self.zero(layer.kernel, keep)

    def zero_fraction(self, layer) -> float:
        m = self.masks.get(id(layer.kernel))
        if m is None:
            return 0.0
        return 1.0 - float(np.broadcast_to(m[1], tuple(layer.kernel.shape)).mean())


def keras_layer_map(model, space: list[LayerSpace]) -> dict[str, object]:
    """Plan layer name (an op name of the int8 graph) -> the Keras layer it came from: by the
    Keras name inside the op name ('model/hidden_1/MatMul' holds 'hidden' as 'hidden_1'), else
    by position when the kinds line up."""
    klayers = keras_layers(model)
    layers = layers_of(space)
    out = {}
    for l in layers:
        parts = {p for part in l.name.split(";") for p in part.split("/")}
        hits = [k for k in klayers if k.name in parts
                or any(p.startswith(k.name + "_") and p[len(k.name) + 1:].isdigit() for p in parts)]
        if len(hits) == 1 and type(hits[0]).__name__ == _KERAS_KIND.get(l.op):
            out[l.name] = hits[0]
    if len(out) == len(layers) and len({id(k) for k in out.values()}) == len(layers):
        return out
    if [type(k).__name__ for k in klayers] == [_KERAS_KIND.get(l.op) for l in layers]:
        return {l.name: k for l, k in zip(layers, klayers)}
    raise TinycError("fit cannot match the int8 model's weight layers to the Keras layers "
                     f"({', '.join(k.name for k in klayers)}); --train needs a model whose Dense/Conv2D layers "
                     "convert one to one")


class FineTuner:
    """Fine-tunes plans on one Keras model with one training set; returns int8 models."""

    def __init__(self, keras_path: Path, base: Graph, train: Path, calib: Path, epochs: int, cache_dir: Path,
                 seed: int = 0):
        self.path, self.calib, self.base = Path(keras_path), Path(calib), base
        self.training = TrainOptions(epochs=epochs, seed=seed)
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        model = kf.load_keras(self.path)
        self.x, self.y = load_training_data(train, tuple(model.inputs[0].shape))
        self.trained = 0     # fine-tunings run (not read from the cache)

    def _key(self, plan: Plan) -> str:
        text = json.dumps({"plan": plan, "epochs": self.training.epochs, "seed": self.training.seed,
                           "calib": str(self.calib)}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def int8(self, plan: Plan, space: list[LayerSpace], progress=None) -> tuple[bytes, dict | None]:
        """The int8 flatbuffer of the model fine-tuned for `plan` (with its 16x8 layers), and
        its quantization report."""
        key = self._key(plan)
        tfl, rep = self.cache_dir / f"trained-{key}.tflite", self.cache_dir / f"trained-{key}.json"
        if tfl.is_file() and rep.is_file():
            return tfl.read_bytes(), json.loads(rep.read_text())
        model = kf.load_keras(self.path)
        layer_of = keras_layer_map(model, space)
        zero = ZeroChannels()
        for name, values in plan.items():
            r = float(values.get("channels") or 0.0) if name != MODEL else 0.0
            if r:
                layer = layer_of[name]
                removed = removed_channels(layer, r)
                zero.columns(layer, removed)
                nxt = self._next_layer(name)
                rows = input_rows(layer_of[nxt], int(layer.kernel.shape[-1]), removed) if nxt else None
                if rows is not None:
                    zero.rows(layer_of[nxt], rows)
        zero.after_step(0, 0)
        sparsity, clusters = {}, {}
        for name, values in plan.items():
            if name == MODEL:
                continue
            layer = layer_of[name]
            s = float(values.get("sparsity") or 0.0)
            if s:
                # the zeroed weights go with their channels; s of the weights that stay are zero
                dead = zero.zero_fraction(layer)
                sparsity[layer.name] = dead + s * (1.0 - dead)
            if values.get("clusters"):
                clusters[layer.name] = int(values["clusters"])
        channels = bool(zero.masks)
        if sparsity:
            prune_keras(model, self.x, self.y, PruneOptions(per_layer=sparsity, exclude_first_last=False),
                        self.training, progress, extra=[zero])
        elif channels:
            fine_tune(model, self.x, self.y, self.training, [zero], progress=progress, stage="channels")
        if clusters:
            cluster_keras(model, self.x, self.y, ClusterOptions(per_layer=clusters), self.training, progress,
                          extra=[zero])
        self.trained += 1
        tflite, report = self._quantize(model, plan, space)
        tmp = tfl.with_suffix(".tmp")
        tmp.write_bytes(tflite)
        tmp.replace(tfl)
        rep.write_text(json.dumps(report, default=str))
        return tflite, report

    def _next_layer(self, name: str) -> str | None:
        """The weight layer that loses inputs when `name` loses output channels (by the int8
        pass itself, on the base graph)."""
        before = {l.name: self.base.tensors[l.weight].shape for l in weight_layers(self.base)}
        pruned, _ = prune_channels(self.base, None, {name: 0.5})
        after = {l.name: pruned.tensors[l.weight].shape for l in weight_layers(pruned)}
        changed = [n for n in before if n != name and after.get(n) != before[n]]
        return changed[0] if len(changed) == 1 else None

    def _quantize(self, model, plan: Plan, space: list[LayerSpace]) -> tuple[bytes, dict | None]:
        tmp = Path(tempfile.mkdtemp(prefix="tinyc-fit-"))
        try:
            path = tmp / (self.path.stem + "_tuned.keras")
            with kf.captured_output():
                model.save(path)
            prepared = quantize_float(path, "keras", calib=self.calib)
            s16 = [k for k, l in enumerate(layers_of(space)) if plan.get(l.name, {}).get("precision") == "16x8"]
            if not s16:
                return prepared.tflite, prepared.report
            full16 = quantize_float(path, "keras", calib=self.calib, precision=PrecisionOptions("16x8"))
            names = [l.name for l in weight_layers(tflite_to_graph(prepared.tflite))]
            mixed, _ = apply_precision(prepared.tflite, full16.tflite,
                                       PrecisionOptions("int8", per_layer={names[k]: "16x8" for k in s16}),
                                       prepared.report)
            return mixed, prepared.report
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
