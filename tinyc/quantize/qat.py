"""Quantization-aware fine-tuning of a Keras 3 model (`--qat`), without tfmot (which needs
Keras 2): the forward pass sees weights and activations as the TFLite int8 scheme will store
them, gradients pass straight through (STE), and the float model that comes out is quantized
by the ordinary converter, so the int8 model is still TFLite's scheme.

Weights: symmetric int8 (-127..127), per channel or per tensor as the converter will do
(tf.quantization.fake_quant_with_min_max_vars[_per_channel], narrow range). A kernel followed
by BatchNormalization is fake-quantized as the converter will fold it, w * gamma/sqrt(var+eps)
per output channel; batch norms are frozen (their statistics are what gets folded).
Before fine-tuning, cross-layer equalisation (tinyc/quantize/equalize.py) evens out the channel
ranges that per-tensor scales serve badly; the float function is unchanged.
Activations: every layer output the converter keeps as a tensor (not one a following batch
norm or activation layer is fused into) passes through an 8-bit fake quantizer whose range
follows the batch min/max by exponential moving average.
"""

from __future__ import annotations

import numpy as np

from tinyc.progress import Progress
from tinyc.quantize.equalize import equalise
from tinyc.quantize.finetune import Constraint, DistillOptions, TrainOptions, fine_tune, keras_layers

FUSED_AFTER = ("BatchNormalization", "ReLU", "Activation")   # folded into the layer before them
NO_QUANT_POINT = ("InputLayer", "Flatten", "Reshape", "Dropout", "MaxPooling2D")   # range unchanged
EMA = 0.99


def _all_layers(model) -> list:
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            out.extend(_all_layers(layer))
        else:
            out.append(layer)
    return out


def _consumers(layers) -> dict[int, list]:
    """Layers reading each layer's output (by the identity of the output tensor)."""
    users: dict[int, list] = {}
    by_output = {id(l.output): l for l in layers if _has_output(l)}
    for l in layers:
        try:
            ins = l.input
        except (AttributeError, ValueError):
            continue
        for t in ins if isinstance(ins, (list, tuple)) else [ins]:
            src = by_output.get(id(t))
            if src is not None:
                users.setdefault(id(src), []).append(l)
    return users


def _has_output(layer) -> bool:
    try:
        layer.output
        return True
    except (AttributeError, ValueError):
        return False


class FakeQuantWeights(Constraint):
    """Swap fake-quantized kernels in for the forward pass; the float kernels get the update."""

    def __init__(self, model, per_tensor: bool):
        import keras
        import tensorflow as tf
        self.tf, self.keras, self.per_tensor = tf, keras, per_tensor
        layers = _all_layers(model)
        users = _consumers(layers)
        self.items = []
        for l in keras_layers(model):
            after = users.get(id(l), [])
            bn = after[0] if len(after) == 1 and type(after[0]).__name__ == "BatchNormalization" else None
            self.items.append((l, bn))
        self.saved = []

    def _fold(self, l, bn) -> np.ndarray:
        kernel_shape = tuple(l.kernel.shape)
        if bn is None:
            return np.ones(kernel_shape[-1] if type(l).__name__ != "DepthwiseConv2D"
                           else kernel_shape[-2] * kernel_shape[-1], np.float32)
        gamma = np.asarray(bn.gamma.numpy()) if bn.gamma is not None else 1.0
        var = np.asarray(bn.moving_variance.numpy())
        return (gamma / np.sqrt(var + bn.epsilon)).astype(np.float32)

    def before_forward(self):
        tf = self.tf
        self.saved = []
        for l, bn in self.items:
            w = tf.convert_to_tensor(l.kernel)
            self.saved.append(w)
            shape = w.shape
            depthwise = type(l).__name__ == "DepthwiseConv2D"
            flat = tf.reshape(w, [-1, shape[-2] * shape[-1]]) if depthwise else tf.reshape(w, [-1, shape[-1]])
            f = tf.constant(self._fold(l, bn))
            folded = flat * f
            if self.per_tensor:
                m = tf.maximum(tf.reduce_max(tf.abs(folded)), 1e-8)
                q = tf.quantization.fake_quant_with_min_max_vars(folded, -m, m, num_bits=8, narrow_range=True)
            else:
                m = tf.maximum(tf.reduce_max(tf.abs(folded), axis=0), 1e-8)
                q = tf.quantization.fake_quant_with_min_max_vars_per_channel(folded, -m, m, num_bits=8,
                                                                             narrow_range=True)
            l.kernel.assign(tf.reshape(q / f, shape))

    def after_gradient(self):
        for (l, _), w in zip(self.items, self.saved):
            l.kernel.assign(w)   # straight through: the float kernel takes the gradient


class FakeQuantActivations:
    """Wraps the `call` of the layers whose outputs are int8 tensors after conversion."""

    def __init__(self, model):
        import tensorflow as tf
        self.tf = tf
        layers = _all_layers(model)
        users = _consumers(layers)
        self.patched = []
        for l in layers:
            kind = type(l).__name__
            if kind in NO_QUANT_POINT:
                continue
            after = users.get(id(l), [])
            if len(after) == 1 and type(after[0]).__name__ in FUSED_AFTER and kind not in FUSED_AFTER[1:]:
                continue
            if len(after) == 1 and kind == "BatchNormalization" and type(after[0]).__name__ in FUSED_AFTER[1:]:
                continue
            self._patch(l)

    def _patch(self, layer):
        tf = self.tf
        lo = tf.Variable(0.0, trainable=False)
        hi = tf.Variable(0.0, trainable=False)
        seen = tf.Variable(False, trainable=False)
        original = layer.call

        def call(*args, **kwargs):
            y = original(*args, **kwargs)
            # The range follows every batch seen (training batches, and the few validation
            # batches, which come from the same data): not every layer's call takes `training`.
            blo, bhi = tf.minimum(tf.reduce_min(y), 0.0), tf.maximum(tf.reduce_max(y), 0.0)
            lo.assign(tf.where(seen, EMA * lo + (1 - EMA) * blo, blo))
            hi.assign(tf.where(seen, EMA * hi + (1 - EMA) * bhi, bhi))
            seen.assign(True)
            return tf.quantization.fake_quant_with_min_max_vars(y, lo, tf.maximum(hi, lo + 1e-6), num_bits=8)

        layer.call = call
        self.patched.append(layer)

    def remove(self):
        for l in self.patched:
            del l.call   # the class's own call again
        self.patched = []


def qat_keras(model, x: np.ndarray, y: np.ndarray, train: TrainOptions, per_tensor: bool,
              progress: Progress | None = None, teacher=None, distill: DistillOptions | None = None,
              extra: list[Constraint] = ()) -> dict:
    """Equalise the model's channel ranges (tinyc.quantize.equalize), then fine-tune it in place
    with fake-quantized weights and activations. Returns the last epoch's metrics and the
    equalised layer pairs."""
    layers = _all_layers(model)
    equalised = equalise(layers, _consumers(layers))
    for l in _all_layers(model):
        if type(l).__name__ == "BatchNormalization":
            l.trainable = False   # frozen: its statistics are what the converter folds
    acts = FakeQuantActivations(model)
    try:
        # the float kernel must be trained after the fake-quant swap is undone: put it last
        metrics = fine_tune(model, x, y, train, [FakeQuantWeights(model, per_tensor), *extra], teacher=teacher,
                            distill=distill, progress=progress, stage="qat")
        return {"fine_tune": metrics, "equalised": equalised}
    finally:
        acts.remove()
