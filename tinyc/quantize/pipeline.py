"""The Keras side of compression, in Deep Compression's order, before quantization:

    low-rank factorisation (--low-rank, fine-tuned with --train)
 -> gradual magnitude pruning with fine-tuning (--prune with --train)
 -> weight sharing with centroid fine-tuning (--cluster with --train)
 -> quantization-aware fine-tuning (--qat)

Each stage keeps what the earlier ones fixed (zeros stay zero, shared weights stay shared).
With --distill every fine-tuning learns from the original float model as teacher. The
result is a float .keras model in a temporary folder, which the ordinary converter quantizes,
and one report row list per stage for tinyc.json (`keras_compression`).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from tinyc.errors import TinycError
from tinyc.passes.cluster import ClusterOptions
from tinyc.passes.prune import PruneOptions
from tinyc.progress import Progress
from tinyc.quantize import keras as kf
from tinyc.quantize.cluster import cluster_keras
from tinyc.quantize.finetune import (DistillOptions, KeepZeros, TrainOptions, check_distillable, fine_tune,
                                     keras_layers, load_training_data, prune_keras)
from tinyc.quantize.lowrank import LowRankOptions, factorize_keras
from tinyc.quantize.qat import qat_keras


@dataclass
class KerasCompression:
    """What to do to the float Keras model (the per-layer settings are the search space)."""
    train: Path | None = None                     # .npz with x, y
    prune: PruneOptions = field(default_factory=PruneOptions)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    low_rank: LowRankOptions = field(default_factory=LowRankOptions)
    qat: bool = False
    per_tensor: bool = False                      # as the converter will quantize (for --qat)
    distill: DistillOptions | None = None
    training: TrainOptions = field(default_factory=TrainOptions)

    @property
    def needs_keras(self) -> bool:
        trains = self.train is not None and (self.prune.sparsity or self.prune.per_layer or self.cluster.active
                                             or self.qat)
        return bool(trains) or self.low_rank.active


def check(c: KerasCompression) -> None:
    """Refuse combinations that cannot work, before any training."""
    if c.qat and c.train is None:
        raise TinycError("--qat fine-tunes the model with fake quantization: give --train DATA.npz too")
    if c.distill is not None and c.train is None:
        raise TinycError("--distill teaches a fine-tuned model: give --train DATA.npz too")
    if c.train is not None and not c.needs_keras:
        raise TinycError("--train fine-tunes a compressed model: give --prune, --cluster, --low-rank or --qat too")
    if c.distill is not None:
        if c.distill.temperature <= 0:
            raise TinycError(f"--temperature {c.distill.temperature:g}: must be > 0 (e.g. 4)")
        if not 0.0 <= c.distill.alpha <= 1.0:
            raise TinycError(f"--alpha {c.distill.alpha:g}: must be in [0, 1] (the weight of the hard labels)")


def compress_keras(path, c: KerasCompression, progress: Progress | None = None) -> tuple[Path, dict, Path]:
    """Run the stages on the Keras model at `path`; returns (path of the compressed float
    .keras model, the tinyc.json sections, the temporary folder to remove)."""
    check(c)
    model = kf.load_keras(path)
    kf.check_keras_model(model)
    float_params = int(model.count_params())
    x = y = None
    if c.train is not None:
        x, y = load_training_data(c.train, tuple(model.inputs[0].shape))
    teacher = None
    if c.distill is not None:
        check_distillable(model, y)
        teacher = kf.load_keras(path)
    stages: list[dict] = []
    sections: dict = {}
    if c.low_rank.active:
        model, rows = factorize_keras(model, c.low_rank)
        entry = {"stage": "low_rank", "layers": rows}
        if x is not None and any(r.get("method") for r in rows):
            entry["fine_tune"] = fine_tune(model, x, y, c.training, [], teacher, c.distill, progress, "low-rank")
        stages.append(entry)
    if x is not None and (c.prune.sparsity or c.prune.per_layer):
        prune = replace(c.prune, value_bits=c.cluster.value_bits(c.prune.value_bits))
        model, rows = prune_keras(model, x, y, prune, c.training, progress, teacher, c.distill)
        stages.append({"stage": "prune", "layers": rows})
        sections["keras_pruning"] = rows
    kept = []
    if x is not None and c.cluster.active:
        rows, shared = cluster_keras(model, x, y, c.cluster, c.training, progress, teacher, c.distill)
        stages.append({"stage": "cluster", "layers": rows})
        kept = [shared]
    if c.qat:
        result = qat_keras(model, x, y, c.training, c.per_tensor, progress, teacher, c.distill,
                           extra=[KeepZeros(keras_layers(model)), *kept])
        stages.append({"stage": "qat", "per_tensor": c.per_tensor, **result})
    sections["keras_compression"] = {
        "float_params": float_params, "params_after": int(model.count_params()), "stages": stages,
        "distill": None if c.distill is None else {"temperature": c.distill.temperature, "alpha": c.distill.alpha,
                                                    "mixup": c.distill.mixup}}
    tmp = Path(tempfile.mkdtemp(prefix="tinyc-keras-"))
    try:
        out = tmp / (Path(path).stem + "_compressed.keras")
        with kf.captured_output():
            model.save(out)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, sections, tmp
