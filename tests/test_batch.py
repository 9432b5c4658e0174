"""Batch of N equals N singles under greedy decoding, with different voices and lengths."""

from __future__ import annotations

import numpy as np
import pytest

from bark_core import ArtifactError, generate
from bark_core.stages.batch import generate_batch


@pytest.fixture(params=["eager", "fast"])
def tiny_models(tiny_dir, request):
    """Each batch property holds for both decode loops (each against its own singles)."""
    from bark_core import BarkModels

    return BarkModels(tiny_dir, device="cpu", decoder=request.param)


TEXTS = ["Short one.", "A somewhat longer second sentence, with a comma.", "Third [laughs] text!"]
VOICES = [None, "v2/en_speaker_6", None]


def test_batch_items_equal_single_runs_under_greedy(tiny_models):
    kw = dict(top_k=1, fine_temp=None, allow_early_stop=False, max_gen_duration_s=None)
    # different semantic lengths per row come from different max lengths: use the voice and text to vary
    batch = generate_batch(tiny_models, TEXTS, VOICES, seeds=[1, 2, 3], max_gen_duration_s=1.2,
                           **{k: v for k, v in kw.items() if k != "max_gen_duration_s"})
    for i, text in enumerate(TEXTS):
        single = generate(tiny_models, text, VOICES[i], seed=i + 1, max_gen_duration_s=1.2,
                          **{k: v for k, v in kw.items() if k != "max_gen_duration_s"})
        np.testing.assert_array_equal(batch[i].semantic.tokens, single.semantic.tokens)
        np.testing.assert_array_equal(batch[i].coarse.codes, single.coarse.codes)
        np.testing.assert_array_equal(batch[i].fine.codes, single.fine.codes)
        assert batch[i].semantic.id == single.semantic.id and batch[i].fine.id == single.fine.id
        np.testing.assert_allclose(batch[i].audio.samples, single.audio.samples, atol=1e-6)


def test_batch_rows_of_different_lengths_and_early_stops(tiny_models):
    """Rows stop at different steps (EOS) and have different coarse prompt lengths (voice vs none)."""
    texts = ["Hi.", "Hello there, a longer one.", "Okay."]
    voices = [None, "v2/en_speaker_6", "v2/en_speaker_6"]
    kw = dict(semantic_temp=1.0, min_eos_p=0.001, max_gen_duration_s=2.0, fine_temp=None)
    batch = generate_batch(tiny_models, texts, voices, seeds=[1, 2, 3], **kw)
    lengths = [b.semantic.n_frames for b in batch]
    assert len(set(lengths)) == 3 and min(lengths) < 99  # rows stop at their own steps (EOS), one at the cap
    for i, text in enumerate(texts):
        single = generate(tiny_models, text, voices[i], seed=[1, 2, 3][i], **kw)
        np.testing.assert_array_equal(batch[i].semantic.tokens, single.semantic.tokens)
        np.testing.assert_array_equal(batch[i].coarse.codes, single.coarse.codes)
        np.testing.assert_array_equal(batch[i].fine.codes, single.fine.codes)


def test_sampled_batch_is_repeatable_per_seed(tiny_models):
    a = generate_batch(tiny_models, TEXTS[:2], seeds=[3, 4], max_gen_duration_s=0.6, allow_early_stop=False)
    b = generate_batch(tiny_models, TEXTS[:2], seeds=[3, 4], max_gen_duration_s=0.6, allow_early_stop=False)
    single = generate(tiny_models, TEXTS[1], seed=4, max_gen_duration_s=0.6, allow_early_stop=False)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.fine.codes, y.fine.codes)
    np.testing.assert_array_equal(a[1].fine.codes, single.fine.codes)


def test_batch_argument_errors(tiny_models):
    with pytest.raises(ArtifactError, match="non-empty list"):
        generate_batch(tiny_models, "just a string")
    with pytest.raises(ArtifactError, match="2 entries for 3 texts"):
        generate_batch(tiny_models, TEXTS, seeds=[1, 2])
