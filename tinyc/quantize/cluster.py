"""Weight sharing with centroid fine-tuning on a Keras model (Deep Compression's trained
quantization, Han et al. 2016, section 3.1-3.2), before the model is quantized.

Each chosen layer's nonzero float weights are clustered by 1-D k-means with linear
initialisation (tinyc.passes.cluster.kmeans_1d); every weight is replaced by its centroid.
While fine-tuning, the gradients of the weights that share a centroid are summed and that
sum applied to each of them, so they move together: the centroid is what trains, the
assignments stay. Pruned weights (zeros) stay zero and are not clustered.

After quantization with per-tensor scales, K float centroids are K int8 values; with
per-channel scales a centroid maps to a different int8 value in each channel, and the int8
pass (tinyc.passes.cluster) merges them back to K, which the report shows as the distinct
count really stored.
"""

from __future__ import annotations

import numpy as np

from tinyc.errors import TinycError
from tinyc.passes.cluster import ClusterOptions, kmeans_1d
from tinyc.progress import Progress
from tinyc.quantize.finetune import (Constraint, DistillOptions, KeepZeros, TrainOptions, fine_tune,
                                     keras_layers)


class SharedWeights(Constraint):
    """Weights tied to centroids: summed gradients per centroid, projected after each step."""

    def __init__(self, layers, ks: dict[str, int]):
        import keras
        import tensorflow as tf
        self.keras, self.tf = keras, tf
        self.by_var = {}
        for l in layers:
            k = ks.get(l.name)
            if not k:
                continue
            w = np.asarray(keras.ops.convert_to_numpy(l.kernel))
            nz = w != 0
            if nz.sum() == 0:
                continue
            centroids, assign = kmeans_1d(w[nz], k)
            # index 0 is "pruned" (always 0); clusters are 1..K
            idx = np.zeros(w.shape, dtype=np.int32)
            idx[nz] = assign + 1
            values = np.concatenate([[0.0], centroids]).astype(np.float32)
            l.kernel.assign(values[idx])
            self.by_var[id(l.kernel)] = (l, l.kernel, tf.constant(idx.reshape(-1)), len(values))

    def gradient(self, var, grad):
        entry = self.by_var.get(id(var))
        if entry is None:
            return None
        _, _, idx, n = entry
        tf = self.tf
        sums = tf.math.unsorted_segment_sum(tf.reshape(grad, [-1]), idx, n)
        sums = tf.tensor_scatter_nd_update(sums, [[0]], [0.0])    # pruned weights do not move
        return tf.reshape(tf.gather(sums, idx), tf.shape(grad))

    def after_step(self, step, total):
        tf = self.tf
        for _, var, idx, n in self.by_var.values():
            flat = tf.reshape(tf.convert_to_tensor(var), [-1])
            means = tf.math.unsorted_segment_mean(flat, idx, n)
            means = tf.tensor_scatter_nd_update(means, [[0]], [0.0])
            var.assign(tf.reshape(tf.gather(means, idx), var.shape))

    def rows(self) -> list[dict]:
        out = []
        for l, var, _, _ in self.by_var.values():
            w = np.asarray(self.keras.ops.convert_to_numpy(var))
            out.append({"name": l.name, "op": type(l).__name__, "params": int(w.size),
                        "distinct": int(np.unique(w[w != 0]).size)})
        return out


def layer_clusters(layers, options: ClusterOptions) -> dict[str, int]:
    names = [l.name for l in layers]
    for name in options.per_layer:
        if name not in names:
            raise TinycError(f"--cluster-layer {name}: no such layer; layers with weights: {', '.join(names)}")
    return {n: options.per_layer.get(n, options.clusters) for n in names if options.per_layer.get(n, options.clusters)}


def cluster_keras(model, x: np.ndarray, y: np.ndarray, options: ClusterOptions, train: TrainOptions | None,
                  progress: Progress | None = None, teacher=None, distill: DistillOptions | None = None,
                  extra: list[Constraint] = ()) -> tuple[list[dict], SharedWeights]:
    """Cluster the model's weights in place and, with training data (train not None),
    fine-tune the centroids. Returns one row per clustered layer, and the constraint that
    keeps the weights shared in later fine-tuning."""
    layers = keras_layers(model)
    shared = SharedWeights(layers, layer_clusters(layers, options))
    if train is not None:
        fine_tune(model, x, y, train, [KeepZeros(layers), shared, *extra], teacher=teacher, distill=distill,
                  progress=progress, stage="clustering")
    return shared.rows(), shared
