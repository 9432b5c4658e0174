"""The whole chain on the tiny untrained set: shapes, provenance, repeatability, hub-cache loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_core import BarkModels, decode, generate, generate_coarse, generate_fine, generate_semantic, load_artifact
from bark_core import constants as C


def test_generate_makes_audio_with_full_lineage(tiny_models):
    seen: dict[str, list[tuple[int, int]]] = {}
    take = generate(tiny_models, "Hello there [laughs].", "v2/en_speaker_6", seed=5,
                    progress=lambda stage, d, t: seen.setdefault(stage, []).append((d, t)))
    audio = take.audio
    assert audio.samples.dtype == np.float32 and audio.sample_rate == C.SAMPLE_RATE
    assert audio.n_samples == take.fine.n_frames * 320
    n_sem = len(take.semantic.tokens)
    assert take.fine.n_frames == take.coarse.n_frames == int(np.floor(n_sem * C.SEMANTIC_TO_COARSE_RATIO / 2))
    assert audio.provenance.lineage == (take.semantic.id, take.coarse.id, take.fine.id)
    assert audio.provenance.voice == "v2/en_speaker_6" and audio.provenance.extra["untrained"] is True
    assert take.semantic.provenance.settings["text"] == "Hello there [laughs]."
    assert set(seen) == {"semantic", "coarse", "fine", "decode"}
    for stage in ("coarse", "fine"):
        done = [d for d, _ in seen[stage]]
        assert done == sorted(done) and seen[stage][-1][0] == seen[stage][-1][1]


def test_same_seed_same_audio(tiny_models):
    a = generate(tiny_models, "Same seed, same audio.", seed=9)
    b = generate(tiny_models, "Same seed, same audio.", seed=9)
    np.testing.assert_array_equal(a.audio.samples, b.audio.samples)
    assert a.fine.id == b.fine.id


def test_recombination_saved_fine_codes_decode_later(tiny_models, tmp_path):
    sem = generate_semantic(tiny_models, "Save me.", seed=1, allow_early_stop=False, max_gen_duration_s=1)
    fine = generate_fine(tiny_models, generate_coarse(tiny_models, sem, seed=1), seed=1)
    path = fine.save(tmp_path / "fine.npz")
    audio = decode(tiny_models, load_artifact(path))
    np.testing.assert_array_equal(audio.samples, decode(tiny_models, fine).samples)
    assert audio.provenance.parent == fine.id


def test_take_as_voice_keeps_the_speaker_for_the_next_clip(tiny_models, tmp_path):
    first = generate(tiny_models, "First clip.", seed=2)
    voice_path = first.voice("narrator").save(tmp_path / "narrator.npz")
    second = generate(tiny_models, "Second clip.", str(voice_path), seed=3)
    assert second.semantic.provenance.voice.startswith("narrator#")


def test_offload_and_bf16_on_cpu(tiny_dir):
    models = BarkModels(tiny_dir, device="cpu", dtype={"text": "bf16", "coarse": "fp32", "fine": "fp32"},
                        offload=True)
    sem = generate_semantic(models, "Precision per stage.", seed=0, allow_early_stop=False, max_gen_duration_s=0.3)
    assert sem.provenance.settings["dtype"] == "bfloat16"
    assert next(models.get("text").model.parameters()).dtype == torch.bfloat16
    coarse = generate_coarse(models, sem, seed=0)
    assert coarse.provenance.settings["dtype"] == "float32"


def test_suno_files_load_through_the_hub_cache_offline(tiny_dir, tmp_path):
    """models='suno' goes through huggingface_hub; a cache holding the files works with no network."""
    commit = "89abcdef0123456789abcdef0123456789abcdef"
    snap = tmp_path / "models--suno--bark" / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("text.pt", "coarse.pt", "fine.pt"):
        shutil.copy(tiny_dir / name, snap / name)
    (tmp_path / "models--suno--bark" / "refs").mkdir()
    (tmp_path / "models--suno--bark" / "refs" / "main").write_text(commit)
    models = BarkModels("suno", size="small", device="cpu", cache_dir=tmp_path, tokenizer=tiny_dir / "tokenizer")
    sem = generate_semantic(models, "Cached.", seed=0, allow_early_stop=False, max_gen_duration_s=0.2)
    assert sem.provenance.model == "suno/bark/text.pt"
    with pytest.raises(Exception, match="text_2.pt"):  # large files are not in this cache
        BarkModels("suno", size="large", device="cpu", cache_dir=tmp_path).get("text")


def test_tiny_set_is_marked_untrained(tiny_dir: Path):
    manifest = (tiny_dir / "bark_models.json").read_text()
    assert '"untrained": true' in manifest and "noise" in manifest
    assert (tiny_dir / "README.txt").read_text().startswith("UNTRAINED")
