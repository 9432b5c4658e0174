"""Recombination: artifacts cross stages, models and days; slices and joins use each stage's rate."""

from __future__ import annotations

import numpy as np
import pytest

from bark_core import (
    ArtifactError,
    Audio,
    BarkModels,
    Provenance,
    decode,
    generate,
    generate_coarse,
    generate_fine,
    generate_semantic,
    load_artifact,
    load_voice,
    voice_from_artifacts,
    voice_from_audio,
)
from bark_core.edit import concat, slice_artifact
from bark_core.models.tiny import write_tiny_model_set
from bark_core.rights import RightsError

SEM = dict(allow_early_stop=False, max_gen_duration_s=2.0)


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory):
    """A second, different model set, standing in for 'the small model'."""
    return write_tiny_model_set(tmp_path_factory.mktemp("other"), seed=9, n_embd=48, with_codec=False)


def test_semantic_from_one_run_into_coarse_with_another_voice_and_model(tiny_models, other_dir, tmp_path):
    sem = generate_semantic(tiny_models, "Cross the streams.", "v2/en_speaker_6", seed=1, **SEM)
    coarse = generate_coarse(tiny_models, sem, None, seed=1)  # another voice (none) at coarse
    other = BarkModels(other_dir, device="cpu", tokenizer=tiny_models.tokenizer_source,
                       codec_checkpoint=tiny_models.codec_checkpoint)
    fine = generate_fine(other, coarse, seed=1)  # fine from another model set
    assert fine.provenance.model != coarse.provenance.model
    path = fine.save(tmp_path / "fine.npz")
    audio = decode(tiny_models, load_artifact(path))  # saved yesterday, decoded today
    assert audio.n_samples == fine.n_frames * 320
    assert audio.provenance.lineage == (sem.id, coarse.id, fine.id)
    assert coarse.provenance.voice is None and sem.provenance.voice == "v2/en_speaker_6"


def test_slice_uses_each_kind_of_frame_rate(tiny_models):
    take = generate(tiny_models, "Slice me.", seed=2, **SEM)
    s = slice_artifact(take.semantic, 0.5, 1.5)
    c = slice_artifact(take.coarse, 0.5, 1.5)
    a = slice_artifact(take.audio, 0.5, 1.5)
    assert (s.n_frames, c.n_frames, a.n_samples) == (75 - 25, 75, 24000)
    np.testing.assert_array_equal(c.codes, take.coarse.codes[:, 38:113])
    np.testing.assert_array_equal(s.tokens, take.semantic.tokens[25:75])
    np.testing.assert_array_equal(a.samples, take.audio.samples[12000:36000])
    assert a.provenance.parent == take.audio.id and a.provenance.settings["op"] == "slice"
    with pytest.raises(ArtifactError, match="empty"):
        slice_artifact(take.coarse, 1.0, 0.5)


def test_concat_joins_same_kind_and_gaps_only_audio():
    p = Provenance(stage="t")
    a = Audio(samples=np.ones(240, np.float32), provenance=p)
    b = Audio(samples=np.full(480, 0.5, np.float32), provenance=p)
    joined = concat([a, b], gap_s=0.01)
    assert joined.n_samples == 240 + 240 + 480 and not joined.samples[240:480].any()
    from bark_core import SemanticTokens

    s = SemanticTokens(tokens=np.arange(5), provenance=p)
    assert concat([s, s]).n_frames == 10
    with pytest.raises(ArtifactError, match="only possible between audio"):
        concat([s, s], gap_s=0.1)
    with pytest.raises(ArtifactError, match="one kind"):
        concat([s, a])


def test_voice_from_a_time_range_of_a_take_is_reusable(tiny_models, tmp_path):
    take = generate(tiny_models, "A voice worth keeping.", seed=3, **SEM)
    voice = voice_from_artifacts(take.semantic, take.coarse, take.fine, name="keeper", start_s=0.2, end_s=1.8)
    assert voice.source["range_s"] == [0.2, 1.8] and voice.coarse.shape[1] == 120
    path = voice.save(tmp_path / "keeper.npz")
    again = generate(tiny_models, "Same speaker, new line.", str(path), seed=4, **SEM)
    assert again.semantic.provenance.voice == f"keeper#{load_voice(str(path)).id}"


def test_voice_from_reference_audio_needs_rights_and_records_them(tiny_models, tmp_path):
    t = np.arange(24000 * 2) / 24000
    audio = Audio(samples=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), provenance=Provenance(stage="user"))
    with pytest.raises(RightsError, match="rights record"):
        voice_from_audio(tiny_models, audio, rights=None)
    rights = {"who": "Ada Example", "right": "written consent", "when": "2026-11-01"}
    voice = voice_from_audio(tiny_models, audio, rights=rights, name="ada", semantic="none")
    assert voice.partial and voice.fine.shape == (8, 150) and voice.source["rights"]["who"] == "Ada Example"
    back = load_voice(str(voice.save(tmp_path / "ada.npz")))
    assert back.partial and back.source["rights"]["right"] == "written consent"
    take = generate(tiny_models, "Partial clone.", back, seed=5, **SEM)  # runs with an empty semantic prompt
    assert take.audio.n_samples > 0
