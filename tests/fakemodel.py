"""A stand-in for a generated model (4 int8 in, 4 int8 out) with hand-written C, for tests
that need the firmware to do something a real model never does (fault, reset, a stack
frame of known size)."""

from __future__ import annotations

from pathlib import Path

from tinyc.outdir import MODEL_HEADERS, LayerInfo, Manifest, TensorInfo, save_manifest

MODEL_H = """#ifndef TINYC_MODEL_H
#define TINYC_MODEL_H
#include <stdint.h>
#define TINYC_VERSION "test"
#define TINYC_MODEL_HASH "{model_hash}"
#define TINYC_NUM_LAYERS {num_layers}
#define TINYC_ARENA_BYTES 4
#define TINYC_NUM_INPUTS 1
#define TINYC_INPUT0_BYTES 4
#define TINYC_INPUT_BYTES_LIST 4
#define TINYC_INPUT_BYTES_TOTAL (4)
#define TINYC_NUM_OUTPUTS 1
#define TINYC_OUTPUT0_BYTES 4
#define TINYC_OUTPUT_BYTES_LIST 4
#define TINYC_OUTPUT_BYTES_TOTAL (4)
int tinyc_invoke_all(const void *const inputs[], void *const outputs[]);
void tinyc_layer_begin(int layer);
void tinyc_layer_end(int layer);
#endif
"""


def write_fake_model(out: Path, model_c: str, *, model_hash: str, num_layers: int) -> Path:
    """An OUTDIR holding model.h/.c, an empty weights.c and tinyc.json, ready to build."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.h").write_text(MODEL_H.format(model_hash=model_hash, num_layers=num_layers))
    (out / "model.c").write_text(model_c)
    (out / "weights.c").write_text("/* no constants */\ntypedef int tinyc_no_weights;\n")
    for header in MODEL_HEADERS[1:]:   # a build needs every source (model.h is written above)
        (out / header).write_text("/* not used by the stand-in model */\n")
    io = {"name": "x", "shape": [1, 4], "dtype": "int8", "bytes": 4, "scale": 1.0, "zero_point": 0}
    save_manifest(out, Manifest(
        tinyc_version="test", board="mps2-an386", model_hash=model_hash, source=None, ops=["FAKE"],
        inputs=[TensorInfo(**io)], outputs=[TensorInfo(**dict(io, name="y"))], arena_bytes=4, arena_order="",
        weight_bytes=0, code_bytes=None, macs=0,
        layers=[LayerInfo(i, f"layer{i}", "FAKE", 0) for i in range(num_layers)]))
    return out
