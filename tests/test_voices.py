"""Voices: presets from the hub cache, files, generated takes; files Suno's loader reads too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bark_core import CheckpointError, Voice, load_voice, preset_names, presets_by_language, voice_from_artifacts
from bark_core import constants as C


def _fake_hub_cache(cache: Path, presets_dir: Path, names: list[str], listed_only: tuple[str, ...] = ()) -> None:
    """The hub cache layout huggingface_hub itself reads (refs/main -> snapshot), no mock involved."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--suno--bark"
    snap = repo / "snapshots" / commit
    index = {"repo_or_path": "suno/bark"}
    for name in names:
        with np.load(presets_dir / f"{name}.npz") as data:
            entry = {}
            for key in ("semantic_prompt", "coarse_prompt", "fine_prompt"):
                rel = f"speaker_embeddings/{name}_{key}.npy"
                (snap / rel).parent.mkdir(parents=True, exist_ok=True)
                np.save(snap / rel, data[key])
                entry[key] = rel
        index[name] = entry
    for name in listed_only:  # in the index, but its files were never downloaded
        index[name] = {k: f"speaker_embeddings/{name}_{k}.npy" for k in ("semantic_prompt", "coarse_prompt",
                                                                          "fine_prompt")}
    (snap / "speaker_embeddings_path.json").write_text(json.dumps(index))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_preset_names_cover_13_languages_v1_v2_and_announcer():
    names = preset_names()
    assert len(names) == 261 and "announcer" in names and "v2/zh_speaker_9" in names and "en_speaker_0" in names
    groups = presets_by_language()
    assert len(groups) == 14 and groups["German"][0] == "v2/de_speaker_0"
    assert preset_names("ja", "v2") == [f"v2/ja_speaker_{i}" for i in range(10)]


def test_preset_loads_through_the_hub_cache_offline(tmp_path, presets_dir):
    _fake_hub_cache(tmp_path, presets_dir, ["v2/en_speaker_6", "announcer"], listed_only=("v2/de_speaker_1",))
    voice = load_voice("v2/en_speaker_6", cache_dir=tmp_path)
    with np.load(presets_dir / "v2/en_speaker_6.npz") as ref:
        np.testing.assert_array_equal(voice.semantic, ref["semantic_prompt"])
        np.testing.assert_array_equal(voice.fine, ref["fine_prompt"])
    assert voice.source["kind"] == "preset" and voice.label == "v2/en_speaker_6"
    assert load_voice("announcer", cache_dir=tmp_path).semantic.dtype == np.int64  # stored as uint16
    with pytest.raises(CheckpointError, match=r"speaker_embeddings/v2/de_speaker_1_semantic_prompt\.npy.*suno/bark"):
        load_voice("v2/de_speaker_1", cache_dir=tmp_path)


def test_every_shipped_preset_validates(presets_dir):
    for name in C.PRESET_NAMES:
        voice = load_voice(name, presets_dir=presets_dir)
        assert voice.coarse.shape[1] == voice.fine.shape[1]


def test_saved_voice_round_trips_and_loads_in_suno(tmp_path, tiny_models, suno):
    from bark_core import generate_coarse, generate_fine, generate_semantic

    sem = generate_semantic(tiny_models, "A voice to keep.", seed=1, allow_early_stop=False, max_gen_duration_s=2)
    coarse = generate_coarse(tiny_models, sem, seed=1)
    fine = generate_fine(tiny_models, coarse, seed=1)
    voice = voice_from_artifacts(sem, coarse, fine, name="narrator")
    path = voice.save(tmp_path / "narrator")
    assert path.name == "narrator.npz"
    back = load_voice(str(path))
    assert back.name == "narrator" and back.source["kind"] == "generated" and back.source["fine"] == fine.id
    assert back.id == voice.id
    # Suno's own loader and validators accept the file
    prompt = suno._load_history_prompt(str(path))
    np.testing.assert_array_equal(prompt["coarse_prompt"], coarse.codes)
    out = suno.generate_fine(coarse.codes[:, :50], history_prompt=str(path), temp=None, silent=True) \
        if "fine" in suno.models else None
    assert out is None or out.shape == (8, 50)


def test_voice_from_memory_dict_and_voice_object():
    fine = np.random.default_rng(0).integers(0, 1024, (8, 30))
    data = {"semantic_prompt": np.arange(20), "coarse_prompt": fine[:2], "fine_prompt": fine}
    voice = load_voice(data)
    assert isinstance(voice, Voice) and voice.source == {"kind": "memory"}
    assert load_voice(voice) is voice and load_voice(None) is None
