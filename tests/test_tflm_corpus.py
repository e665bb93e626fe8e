"""TFLM's corpus (tests/tflm_corpus.py): each model converts, builds and validates bit-exact
with the reference validate chooses (LiteRT BUILTIN_REF, else TFLM, which must be said).
`make test` runs SAMPLE (every op x dtype of the corpus) on the host; TINYC_CORPUS=all walks all
141 (`make test-corpus`), TINYC_CORPUS_BOARD=mps2-an386 runs them on that emulated board
(`make test-corpus-mps2`), where a model the board cannot hold is skipped with the numbers."""

import os

import pytest

from tflm_corpus import CORPUS, EXCLUDED, SAMPLE, check_model, corpus_models
from tinyc.errors import TinycError

MODELS = corpus_models() if os.environ.get("TINYC_CORPUS") == "all" else SAMPLE
BOARD = os.environ.get("TINYC_CORPUS_BOARD", "host")


def test_corpus_is_there_and_sample_is_in_it():
    if not CORPUS.is_dir():
        pytest.fail(f"{CORPUS} is missing: the tests need ../shared beside the repo")
    everything = corpus_models()
    assert len(everything) + len(EXCLUDED) == 144
    assert set(SAMPLE) <= set(everything)


@pytest.mark.parametrize("stem", MODELS)
def test_corpus_model_bit_exact(stem, tmp_path):
    try:
        result = check_model(stem, tmp_path, board=BOARD)
    except TinycError as exc:
        if BOARD != "host" and "does not fit" in str(exc):
            pytest.skip(str(exc))
        raise
    assert result["error"] is None, result["error"]
    assert result["passed"], f"{stem}: {result['samples'] - result['bit_exact']} of {result['samples']} differ"
    if result["reference"] != "LiteRT BUILTIN_REF":
        assert result["reference_note"], "a fallback reference must say why"
