"""Bad input gets one clear error that names the input and the fix, and nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bark_core import (
    ArtifactError,
    Audio,
    BadTextError,
    BarkModels,
    CheckpointError,
    CoarseCodes,
    OutputPathError,
    Provenance,
    SemanticTokens,
    VoiceError,
    generate_coarse,
    generate_fine,
    generate_semantic,
    load_voice,
)
from bark_core.label import save_wav


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(tiny_models, text):
    with pytest.raises(BadTextError, match="empty"):
        generate_semantic(tiny_models, text)


@pytest.mark.parametrize("text", [None, 42, b"bytes", ["a list"]])
def test_non_string_text_is_refused(tiny_models, text):
    with pytest.raises(BadTextError, match="must be a string"):
        generate_semantic(tiny_models, text)


def test_text_over_the_window_warns_how_much_was_cut(tiny_models):
    text = "word " * 400
    with pytest.warns(UserWarning, match=r"\d+(\.\d)?% of its tokens .* long-form"):
        sem = generate_semantic(tiny_models, text, seed=0, max_gen_duration_s=0.1)
    assert 0 < sem.provenance.settings["text_truncated_pct"] < 100
    assert sem.provenance.settings["text_tokens"] == 256


def test_unknown_voice_name_suggests_close_names():
    with pytest.raises(VoiceError, match=r"Unknown voice 'v2/en_speker_6'.*Did you mean v2/en_speaker_6"):
        load_voice("v2/en_speker_6")
    with pytest.raises(VoiceError, match="Unknown voice 'zz'"):
        load_voice("zz")


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _good():
    fine = np.random.default_rng(0).integers(0, 1024, (8, 150))
    return dict(semantic_prompt=np.random.default_rng(1).integers(0, 10000, 100), coarse_prompt=fine[:2],
                fine_prompt=fine)


@pytest.mark.parametrize("change, pattern", [
    (lambda d: d.pop("fine_prompt"), "lacks fine_prompt"),
    (lambda d: d.update(coarse_prompt=d["coarse_prompt"][0]), r"coarse_prompt must have shape \(2, frames\)"),
    (lambda d: d.update(fine_prompt=d["fine_prompt"][:5]), r"fine_prompt must have shape \(8, frames\)"),
    (lambda d: d.update(semantic_prompt=d["semantic_prompt"] + 10000), r"valid ids are 0..9999"),
    (lambda d: d.update(coarse_prompt=d["coarse_prompt"] - 5000), r"valid ids are 0..1023"),
    (lambda d: d.update(semantic_prompt=np.where(np.arange(100) == 3, np.nan, 1.0)), "NaN"),
    (lambda d: d.update(semantic_prompt=d["semantic_prompt"][:20]), r"ratio .*1\.5"),
    (lambda d: d.update(semantic_prompt=np.array([], dtype=np.int64)), "empty"),
])
def test_bad_voice_files_name_the_problem(tmp_path, change, pattern):
    data = _good()
    change(data)
    path = _npz(tmp_path / "bad.npz", **data)
    with pytest.raises(VoiceError, match=pattern):
        load_voice(str(path))


def test_voice_file_that_is_not_a_zip_is_reported(tmp_path):
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(VoiceError, match="cannot be read as a voice"):
        load_voice(bad)
    with pytest.raises(VoiceError, match="No voice file"):
        load_voice(tmp_path / "missing.npz")


def test_uint16_voice_is_cast(tmp_path):
    data = {k: v.astype(np.uint16) for k, v in _good().items()}
    voice = load_voice(_npz(tmp_path / "u16.npz", **data))
    assert voice.semantic.dtype == np.int64 and voice.coarse.dtype == np.int64


def test_wrong_artifact_for_a_stage_names_both_kinds(tiny_models):
    coarse = CoarseCodes(codes=np.zeros((2, 10), np.int64), provenance=Provenance(stage="test"))
    with pytest.raises(ArtifactError, match="coarse stage takes semantic artifacts, but got coarse"):
        generate_coarse(tiny_models, coarse)
    sem = SemanticTokens(tokens=np.arange(10), provenance=Provenance(stage="test"))
    with pytest.raises(ArtifactError, match="fine stage takes coarse artifacts, but got semantic"):
        generate_fine(tiny_models, sem)
    with pytest.raises(ArtifactError, match="takes coarse artifacts, but got ndarray"):
        generate_fine(tiny_models, np.zeros((2, 10)))


def test_artifacts_reject_bad_arrays():
    with pytest.raises(ArtifactError, match=r"valid ids are 0..1023"):
        CoarseCodes(codes=np.full((2, 4), 1024), provenance=Provenance(stage="t"))
    with pytest.raises(ArtifactError, match="8 codebooks"):
        from bark_core import FineCodes

        FineCodes(codes=np.zeros((2, 4)), provenance=Provenance(stage="t"))
    with pytest.raises(ArtifactError, match="NaN"):
        Audio(samples=np.array([0.0, np.nan]), provenance=Provenance(stage="t"))


def test_unwritable_output_path_is_reported_and_nothing_is_left(tmp_path):
    audio = Audio(samples=np.zeros(240, np.float32), provenance=Provenance(stage="t"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="Cannot write to"):
        save_wav(audio, blocker / "out.wav")
    if os.geteuid() != 0:  # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(OutputPathError):
            save_wav(audio, ro / "out.wav")
    out = tmp_path / "a.wav"
    save_wav(audio, out)
    with pytest.raises(OutputPathError, match="already exists"):
        save_wav(audio, out, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "file"] + (["ro"] if os.geteuid() else [])


def test_missing_weights_in_a_folder_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"text_2\.pt.*(missing|no text checkpoint)"):
        BarkModels(tmp_path, device="cpu").get("text")


def test_unreachable_hub_says_which_file_where_and_how_to_point_locally():
    models = BarkModels("suno", device="cpu", size="small")
    with pytest.raises(CheckpointError) as err:
        models.get("coarse")
    msg = str(err.value)  # Python advice for Python callers, command-line advice for the CLI
    assert "coarse.pt" in msg and "suno/bark" in msg and "BarkModels('/folder')" in msg and "offline" in msg
    assert "--models" in err.value.cli_message() and "--models" not in msg


def test_nonexistent_model_folder_is_reported():
    for missing in ("./no/such/folder", "/models", "~/bark", "a/b/c"):
        with pytest.raises(CheckpointError, match="does not exist"):
            BarkModels(missing)
    assert BarkModels("suno/bark-small").source == "suno/bark-small"  # a hub repo id, resolved on use
