"""TFLM's corpus (tests/tflm_corpus.py): each model converts, builds and validates bit-exact
with the reference validate chooses (LiteRT BUILTIN_REF, else TFLM, which must be said).
`make test` runs SAMPLE (every op x dtype of the corpus); TINYC_CORPUS=all walks all 141."""

import os

import pytest

from tflm_corpus import CORPUS, EXCLUDED, SAMPLE, check_model, corpus_models

MODELS = corpus_models() if os.environ.get("TINYC_CORPUS") == "all" else SAMPLE


def test_corpus_is_there_and_sample_is_in_it():
    if not CORPUS.is_dir():
        pytest.fail(f"{CORPUS} is missing: the tests need ../shared beside the repo")
    everything = corpus_models()
    assert len(everything) + len(EXCLUDED) == 144
    assert set(SAMPLE) <= set(everything)


@pytest.mark.parametrize("stem", MODELS)
def test_corpus_model_bit_exact(stem, tmp_path):
    result = check_model(stem, tmp_path)
    assert result["error"] is None, result["error"]
    assert result["passed"], f"{stem}: {result['samples'] - result['bit_exact']} of {result['samples']} differ"
    if result["reference"] != "LiteRT BUILTIN_REF":
        assert result["reference_note"], "a fallback reference must say why"
