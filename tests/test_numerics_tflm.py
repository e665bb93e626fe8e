"""`tinyc convert --numerics tflm`: C bit-exact with TensorFlow Lite Micro's interpreter (the
tflite-micro package), while the default stays bit-exact with LiteRT BUILTIN_REF.

The two references differ in FULLY_CONNECTED only (TFLM requantizes with two roundings, the
reference with one). That is checked op by op: each MLPerf Tiny model is rewritten with
every op's output as a graph output, so both the C and the interpreters expose every
intermediate tensor, and each C build must equal its own reference on all of them.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import MLPERF_INT8_MODELS
from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert, tensor_infos
from tinyc.frontend.tflite import graph_to_tflite, load_tflite
from tinyc.outdir import load_manifest
from tinyc.reference import Reference, TflmReference
from tinyc.samples import random_inputs
from tinyc.validate import validate

# samples per model on mps2-an386 (large inputs take ~1.5 s each over the emulated UART)
AN386_SAMPLES = {"ad01_int8": 4, "kws_ref_model": 3, "str_ww_ref_model": 3, "pretrainedResnet_quant": 2,
                 "pretrainedResnet_large_int8": 1, "vww_96_int8": 1}


def _every_op_output(model_path, dest):
    """model with each op's output a graph output (in op order): intermediates made visible."""
    g = load_tflite(model_path)
    outs = []
    for op in g.ops:
        outs += [t for t in op.outputs if t >= 0 and t not in outs and t not in g.inputs]
    g.outputs = outs
    dest.write_bytes(graph_to_tflite(g))
    return dest


@pytest.mark.parametrize("name", MLPERF_INT8_MODELS)
def test_tflm_numerics_equal_tflm_op_by_op_on_host(name, mlperf_dir, tmp_path):
    model = _every_op_output(mlperf_dir / f"{name}.tflite", tmp_path / "all_outputs.tflite")
    host = load_board("host")
    outs = {}
    for numerics in ("tflm", "litert"):
        outs[numerics] = tmp_path / numerics
        convert(model, outs[numerics], ConvertOptions(numerics=numerics))
        build(outs[numerics], host)
    samples = random_inputs(load_manifest(outs["tflm"]).inputs, 20, seed=4)
    tflm = validate(outs["tflm"], host, samples, reference="tflm")
    assert tflm.error is None and tflm.bit_exact == 20, tflm.as_dict()
    litert = validate(outs["litert"], host, samples)          # the default: LiteRT BUILTIN_REF
    assert litert.error is None and litert.bit_exact == 20, litert.as_dict()
    if name == "ad01_int8":   # all FULLY_CONNECTED: the two numerics really differ here
        assert validate(outs["tflm"], host, samples).bit_exact == 0
        assert validate(outs["litert"], host, samples, reference="tflm").bit_exact == 0


def test_the_references_differ_in_fully_connected_rounding(mlperf_dir, tmp_path):
    """ad01 (ten FULLY_CONNECTED layers): TFLM and BUILTIN_REF differ at every layer; the
    first, which both feed the same input, by exactly one rounding step (1 LSB)."""
    model = _every_op_output(mlperf_dir / "ad01_int8.tflite", tmp_path / "ad01_all.tflite")
    lite, micro = Reference(model), TflmReference(model)
    g = load_tflite(model)
    worst = np.zeros(len(g.outputs), dtype=int)
    for sample in random_inputs(tensor_infos(g, g.inputs), 10, seed=3):
        a, b = lite.run(*sample), micro.run(*sample)
        worst = np.maximum(worst, [int(np.abs(x.astype(int) - y.astype(int)).max()) for x, y in zip(a, b)])
    assert worst[0] == 1 and (worst > 0).all(), worst


@pytest.mark.parametrize("name", MLPERF_INT8_MODELS)
def test_tflm_numerics_equal_tflm_on_mps2_an386(name, mlperf_dir, tmp_path):
    out = tmp_path / name
    convert(mlperf_dir / f"{name}.tflite", out, ConvertOptions(board="mps2-an386", numerics="tflm"))
    board = load_board("mps2-an386")
    build(out, board)
    n = AN386_SAMPLES[name]
    s = validate(out, board, random_inputs(load_manifest(out).inputs, n, seed=6), reference="tflm")
    assert s.error is None and s.bit_exact == n, s.as_dict()
    assert load_manifest(out).section("numerics") == "tflm"


def test_cli_numerics_and_reference(mlperf_dir, tmp_path):
    out = tmp_path / "ad01"

    def tinyc(*args):
        return subprocess.run([sys.executable, "-m", "tinyc.cli", *args], capture_output=True, text=True,
                              timeout=600)
    proc = tinyc("convert", str(mlperf_dir / "ad01_int8.tflite"), "-o", str(out), "--numerics", "tflm")
    assert proc.returncode == 0, proc.stderr
    assert "rounding twice, as TensorFlow Lite Micro" in (out / "tinyc_kernels.h").read_text()
    proc = tinyc("validate", str(out), "--random", "5", "--reference", "tflm")
    assert proc.returncode == 0 and "PASS: bit-exact with TensorFlow Lite Micro" in proc.stdout, proc.stderr
    proc = tinyc("validate", str(out), "--random", "5")          # against LiteRT: FULLY_CONNECTED differs
    assert proc.returncode == 1 and "samples differ from the reference" in proc.stderr
