"""TensorFlow Lite Micro's own example and integration-test models (../shared/models/tflm_examples):
which of them tinyc is expected to compile, and one check of a model (convert for a board,
build, validate on random inputs against the reference `validate` picks)."""

from __future__ import annotations

from pathlib import Path

from tinyc.boards import load_board
from tinyc.build import build
from tinyc.convert import ConvertOptions, convert
from tinyc.frontend.tflite import load_tflite
from tinyc.outdir import MODEL_TFLITE
from tinyc.samples import input_ranges, random_inputs, shape_inputs
from tinyc.validate import validate

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "tflm_examples"

# Not tinyc's to compile: the micro_speech audio front ends (TFLM signal-library CUSTOM ops
# on uint32 tensors) and the Ethos-U NPU model (one CUSTOM op holding the NPU's command stream).
EXCLUDED = {
    "examples__micro_speech__models__audio_preprocessor_float",
    "examples__micro_speech__models__audio_preprocessor_int8",
    "models__person_detect_vela",
}

# For `make test`: every op x dtype of the corpus at least once (the full walk is `make test-corpus`).
SAMPLE = [
    "examples__hello_world__models__hello_world_int8",
    "examples__memory_footprint__models__simple_add_model",       # two inputs
    "examples__micro_speech__models__micro_speech_quantized",
    "integration_tests__seanet__add__add5",
    "integration_tests__seanet__conv__conv10",                     # stride 2
    "integration_tests__seanet__leaky_relu__leaky_relu3",
    "integration_tests__seanet__pad__pad4",
    "integration_tests__seanet__quantize__quantize0",             # int32 -> int16
    "integration_tests__seanet__quantize__quantize1",             # int16 -> int32
    "integration_tests__seanet__strided_slice__strided_slice7",
    "integration_tests__seanet__sub__sub2",
    "integration_tests__seanet__transpose_conv__transpose_conv3",  # TFLM reference
    "models__person_detect",                                       # metadata normalised
    "third_party__xtensa__examples__pytorch_to_tflite__mobilenet_v2_quantized_1x3x224x224",  # TRANSPOSE
]


def corpus_models() -> list[str]:
    return sorted(p.stem for p in CORPUS.glob("*.tflite") if p.stem not in EXCLUDED)


def check_model(stem: str, tmp_path: Path, board: str = "host", n_random: int = 5) -> dict:
    """Convert, build and validate one corpus model; returns the summary (as a dict) with the
    convert notes. Float models are quantized with random calibration (their scales do not
    matter for bit-exactness, only that the C equals the reference on the model it wrote)."""
    path = CORPUS / f"{stem}.tflite"
    outdir = Path(tmp_path) / stem
    graph = load_tflite(path)
    is_float = any(graph.tensors[t].dtype == "float32" for op in graph.ops for t in op.inputs if t >= 0
                   and not graph.tensors[t].is_const)
    result = convert(path, outdir, ConvertOptions(board=board, calib_random=32 if is_float else None))
    b = load_board(board)
    build(outdir, b)
    written = load_tflite(outdir / MODEL_TFLITE)
    samples = random_inputs(result.manifest.inputs, n_random, seed=1,
                            ranges=input_ranges(written), fixed=shape_inputs(written))
    summary = validate(outdir, b, samples)
    return {**summary.as_dict(), "notes": result.notes, "error": summary.error}
