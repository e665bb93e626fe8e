"""Knowledge distillation (--distill): Hinton's loss in the shared fine-tuning loop; with
alpha = 1 it is exactly the hard-label fine-tuning; models without class scores are refused
with one line. Whether it helps a pruned model is measured over seeds by bench/distill.py
(make bench-distill): training long enough to tell is not a unit test."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from tinyc.cli import main
from tinyc.errors import TinycError
from tinyc.passes.prune import PruneOptions
from tinyc.quantize.finetune import (DistillOptions, TrainOptions, check_distillable, distillation_loss, output_kind,
                                     prune_keras)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 10)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return x, y


def _model(last_activation=None):
    import keras
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((10,)), keras.layers.Dense(24, activation="relu"),
                             keras.layers.Dense(3, activation=last_activation)])


def _prune(model, x, y, teacher=None, alpha=0.3):
    prune_keras(model, x, y, PruneOptions(sparsity=0.8, exclude_first_last=False),
                TrainOptions(epochs=2, batch_size=32, validation_split=0.0),
                teacher=teacher, distill=DistillOptions(temperature=4.0, alpha=alpha))
    return [w.copy() for w in model.get_weights()]


def test_alpha_one_is_plain_fine_tuning_and_soft_targets_change_it():
    x, y = _data()
    teacher = _model()
    teacher.compile(optimizer="adam", loss="mse")
    plain = _prune(_model(), x, y)
    hard_only = _prune(_model(), x, y, teacher, alpha=1.0)
    soft = _prune(_model(), x, y, teacher, alpha=0.0)
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(plain, hard_only))
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(plain, soft))


def test_loss_is_hintons():
    """alpha * CE + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T)), computed by hand."""
    rng = np.random.default_rng(1)
    t, s = rng.normal(0, 3, (6, 5)), rng.normal(0, 3, (6, 5))
    for temp, alpha in ((1.0, 0.5), (4.0, 0.3), (2.0, 0.0)):
        def softmax(z):
            e = np.exp(z - z.max(-1, keepdims=True))
            return e / e.sum(-1, keepdims=True)
        p, q = softmax(t / temp), softmax(s / temp)
        kl = np.mean(np.sum(p * np.log(p / q), -1))
        got = float(distillation_loss(np.float32(0.7), t.astype(np.float32), s.astype(np.float32),
                                      DistillOptions(temp, alpha)))
        assert got == pytest.approx(alpha * 0.7 + (1 - alpha) * temp ** 2 * kl, rel=1e-4)
    # a student that matches the teacher pays only the hard-label term
    assert float(distillation_loss(np.float32(0.7), t.astype(np.float32), t.astype(np.float32),
                                   DistillOptions(4.0, 0.3))) == pytest.approx(0.3 * 0.7, abs=1e-5)


def test_softmax_and_logit_outputs_are_distillable_others_refused():
    x, y = _data()
    assert output_kind(_model("softmax")) == "probs" and output_kind(_model()) == "logits"
    check_distillable(_model("softmax"), y)
    with pytest.raises(TinycError, match="ends in 'sigmoid'.*no logits to distil"):
        check_distillable(_model("sigmoid"), y)
    with pytest.raises(TinycError, match="not integer classes"):
        check_distillable(_model(), x[:, 0])


def test_distill_cli(tmp_path):
    x, y = _data()
    _model("sigmoid").save(tmp_path / "m.keras")
    np.savez(tmp_path / "train.npz", x=x, y=y)
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(tmp_path / "o"), "--prune", "0.5",
                                  "--train", str(tmp_path / "train.npz"), "--distill"])
    assert r.exit_code != 0 and "no logits to distil" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()
    r = CliRunner().invoke(main, ["convert", str(tmp_path / "m.keras"), "-o", str(tmp_path / "o"),
                                  "--calib", str(tmp_path / "train.npz"), "--distill"])
    assert r.exit_code != 0 and "--distill teaches a fine-tuned model: give --train" in r.output
