"""Mixed precision (--precision, --precision-layer): a digits CNN whose logits layer is
deliberately hard to quantize in int8 (an 11th, never-winning logit with bias -3000 stretches
the int8 output scale to ~12 per step, so the real logits collapse into a few steps). `auto`
must put that layer in 16x8 (int16 output), recover at least half of the accuracy int8 loses,
and stay bit-exact with LiteRT BUILTIN_REF on the mixed int8/int16 graph."""

import numpy as np
import pytest

from digits_cnn import digits_split
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.frontend.tflite import load_tflite
from tinyc.outdir import load_manifest
from tinyc.quantize.precision import PrecisionOptions
from tinyc.samples import random_inputs
from tinyc.validate import validate


@pytest.fixture(scope="module")
def hard_digits(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(1)
    xtr, ytr, xte, yte = digits_split(1)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    h = keras.layers.Dense(16, activation="relu", name="hidden")(h)
    logits = keras.layers.Dense(10, name="logits10")(h)
    model = keras.Model(inp, logits)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(xtr, ytr, epochs=25, batch_size=32, verbose=0)
    w, b = model.get_layer("logits10").get_weights()
    hard = keras.layers.Dense(11, name="logits")
    out = hard(h)
    hard.set_weights([np.concatenate([w, np.zeros((w.shape[0], 1), np.float32)], axis=1),
                      np.concatenate([b, [-3000.0]]).astype(np.float32)])
    final = keras.Model(inp, out)
    d = tmp_path_factory.mktemp("hard_digits")
    final.save(d / "hard.keras")
    np.save(d / "calib.npy", xtr[:200])
    np.savez(d / "test.npz", x=xte, y=yte)
    return d


def _convert(d, out, precision: PrecisionOptions):
    result = convert(d / "hard.keras", out, ConvertOptions(calib=d / "calib.npy", eval_data=d / "test.npz",
                                                          precision=precision))
    return result, result.manifest.sections["evaluation"]


def _accuracy(ev, key):
    return ev[key]["accuracy"]


def test_auto_puts_the_hard_layer_in_16x8_and_recovers_accuracy(hard_digits, tmp_path):
    _, ev8 = _convert(hard_digits, tmp_path / "int8", PrecisionOptions("int8"))
    result, evm = _convert(hard_digits, tmp_path / "auto", PrecisionOptions("auto"))
    chosen = result.manifest.sections["quantization_report"]["precision"]["layers_16x8"]
    g = load_tflite(tmp_path / "auto" / "model.tflite")
    fcs = [op for op in g.ops if op.kind == "FULLY_CONNECTED"]
    assert fcs[-1].name.removesuffix("_int16") in chosen and g.tensors[fcs[-1].outputs[0]].dtype == "int16", chosen  # the logits
    dtypes = {g.tensors[t].dtype for op in g.ops for t in op.outputs}
    assert {"int8", "int16"} <= dtypes and "QUANTIZE" in [op.kind for op in g.ops]
    float_acc, acc8, accm = _accuracy(ev8, "float"), _accuracy(ev8, "c"), _accuracy(evm, "c")
    assert float_acc - acc8 > 0.05, (float_acc, acc8)          # the int8 model does lose accuracy
    assert accm - acc8 >= 0.5 * (float_acc - acc8), (float_acc, acc8, accm)
    board = load_board("host")
    build(tmp_path / "auto", board)
    summary = validate(tmp_path / "auto", board, random_inputs(result.manifest.inputs, 30, seed=4))
    assert summary.passed and summary.reference == "LiteRT BUILTIN_REF", summary.as_dict()


def test_precision_layer_by_name_and_whole_16x8(hard_digits, tmp_path):
    result, _ = _convert(hard_digits, tmp_path / "named", PrecisionOptions("int8", {"hidden": "16x8"}))
    g = load_tflite(tmp_path / "named" / "model.tflite")
    assert [g.tensors[op.outputs[0]].dtype for op in g.ops if "hidden" in op.name and op.kind == "FULLY_CONNECTED"] \
        == ["int16"]
    result, _ = _convert(hard_digits, tmp_path / "all16", PrecisionOptions("16x8"))
    g = load_tflite(tmp_path / "all16" / "model.tflite")
    assert g.tensors[g.inputs[0]].dtype == "int16" and "QUANTIZE" not in [op.kind for op in g.ops]
    board = load_board("host")
    for out in ("named", "all16"):
        build(tmp_path / out, board)
        summary = validate(tmp_path / out, board, random_inputs(load_manifest(tmp_path / out).inputs, 20, seed=5))
        assert summary.passed, (out, summary.as_dict())
