"""Test helpers: build int8 models with TensorFlow's converter, and check tinyc's C against
LiteRT's reference kernels byte for byte."""

from __future__ import annotations

import contextlib
import io as _io
import os
from pathlib import Path

import numpy as np

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.frontend.tflite import load_tflite
from tinyc.reference import Reference
from tinyc.runners import open_session
from tinyc.samples import input_ranges, random_inputs, to_record, from_record


def convert_keras_int8(model, rep_data, per_tensor: bool = False, io_type: str = "int8", io: str | None = None,
                       int16_activations: bool = False) -> bytes:
    """A Keras model -> full-int8 .tflite bytes (batch fixed to 1), as TFLite users make them;
    int16_activations: TensorFlow's 16x8 mode instead (int16 activations and I/O, int8 weights).

    rep_data: array [N, *input_shape without batch] (or a list of such arrays, one per input).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    io_type = io if io is not None else io_type

    inputs = model.inputs
    specs = [tf.TensorSpec([1, *x.shape[1:]], tf.float32) for x in inputs]
    fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0]))
    concrete = fn.get_concrete_function(*specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])  # no trackable: TF freezes the Keras 3 variables itself
    reps = rep_data if isinstance(rep_data, (list, tuple)) else [rep_data]

    def gen():
        for i in range(len(reps[0])):
            yield [np.asarray(r[i:i + 1], dtype=np.float32) for r in reps]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int16_activations:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if io_type == "int8":
        converter.inference_input_type = tf.int16 if int16_activations else tf.int8
        converter.inference_output_type = tf.int16 if int16_activations else tf.int8
    if per_tensor:
        converter._experimental_disable_per_channel = True
    with contextlib.redirect_stdout(_io.StringIO()):  # the converter prints to stdout
        data = converter.convert()
    return bytes(data)


def assert_bit_exact(model, tmp_path: Path, n_random: int = 100, inputs=None, board: str = "host",
                     seed: int = 0, io_in_arena: bool = False, optimize: str = "balanced",
                     generate_for: str | None = None) -> dict:
    """Convert `model` (path or .tflite bytes) with tinyc, build and run it on `board`, and
    assert that every output byte equals LiteRT BUILTIN_REF run on OUTDIR/model.tflite.
    The C is generated for `generate_for` (default: `board`) at the `optimize` level: an
    OUTDIR laid out for one board must run bit-exact on any other.

    inputs: optional list of samples (each a list of arrays, one per model input), run in
    addition to n_random random samples. Returns the manifest's fields plus the counts.
    """
    tmp_path = Path(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    if isinstance(model, (bytes, bytearray)):
        path = tmp_path / "input_model.tflite"
        path.write_bytes(bytes(model))
    else:
        path = Path(model)
    outdir = tmp_path / f"out_{path.stem}"
    result = convert(path, outdir, ConvertOptions(board=generate_for or board, optimize=optimize,
                                                  io_in_arena=io_in_arena))
    manifest = result.manifest
    b = load_board(board)
    build(outdir, b)
    graph = load_tflite(outdir / "model.tflite")
    samples = list(inputs or []) + random_inputs(manifest.inputs, n_random, seed=seed,
                                                 ranges=input_ranges(graph))
    ref = Reference(outdir / "model.tflite")
    with open_session(b, outdir) as session:
        results = session.infer_many([to_record(s) for s in samples])
    bad = []
    for i, (sample, res) in enumerate(zip(samples, results)):
        expected = ref.run(*sample)
        got = from_record(res.output, manifest.outputs)
        for k, (g, e) in enumerate(zip(got, expected)):
            if g.tobytes() != e.astype(g.dtype).tobytes():
                diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
                bad.append(f"sample {i} output {k}: {int(np.sum(g != e))} of {g.size} differ, max {diff.max()}")
    assert not bad, f"{path.name}: {len(bad)} mismatching outputs vs BUILTIN_REF; first: {bad[:3]}"
    return {**manifest.to_dict(), "samples": len(samples), "outdir": outdir}
