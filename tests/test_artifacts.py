"""Artifacts save, load and describe themselves; damaged files are refused, not half-read."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from bark_core import ArtifactError, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, load_artifact
from bark_core.label import save_wav


def _prov(**kw):
    return Provenance(stage="test", model="m", settings={"temp": 0.7}, seed=3, **kw)


@pytest.mark.parametrize("art", [
    SemanticTokens(tokens=np.arange(50), provenance=_prov()),
    CoarseCodes(codes=np.arange(20).reshape(2, 10), provenance=_prov(parent="abc", lineage=("abc",))),
    FineCodes(codes=np.arange(80).reshape(8, 10) % 1024, provenance=_prov()),
    Audio(samples=np.sin(np.arange(2400) / 10).astype(np.float32), sample_rate=24000, provenance=_prov()),
])
def test_round_trip_keeps_data_provenance_and_id(tmp_path, art):
    path = art.save(tmp_path / f"{art.KIND}.npz")
    back = load_artifact(path)
    assert type(back) is type(art)
    assert back.id == art.id
    assert back.provenance.to_dict() == art.provenance.to_dict()
    for name in art._ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(art, name))
    with np.load(path, allow_pickle=False) as data:  # readable without pickle
        assert set(data.files) >= set(art._ARRAYS)


def test_durations_use_each_stage_rate():
    assert SemanticTokens(tokens=np.zeros(499), provenance=_prov()).duration_s == pytest.approx(10.0)
    assert FineCodes(codes=np.zeros((8, 750)), provenance=_prov()).duration_s == pytest.approx(10.0)
    assert Audio(samples=np.zeros(48000), provenance=_prov()).duration_s == pytest.approx(2.0)


def test_id_changes_with_content_and_settings():
    a = SemanticTokens(tokens=np.arange(5), provenance=_prov())
    b = SemanticTokens(tokens=np.arange(5), provenance=_prov())
    c = SemanticTokens(tokens=np.arange(1, 6), provenance=_prov())
    d = SemanticTokens(tokens=np.arange(5), provenance=Provenance(stage="test", model="m", settings={"temp": 0.8}))
    assert a.id == b.id and len({a.id, c.id, d.id}) == 3


def test_truncated_or_foreign_files_are_refused(tmp_path):
    path = SemanticTokens(tokens=np.arange(500), provenance=_prov()).save(tmp_path / "s.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="damaged"):
        load_artifact(path)
    np.savez(tmp_path / "plain.npz", x=np.arange(3))
    with pytest.raises(ArtifactError, match="not a bark_core artifact"):
        load_artifact(tmp_path / "plain.npz")
    with pytest.raises(ArtifactError, match="No artifact file"):
        load_artifact(tmp_path / "nope.npz")


def test_audio_wav_is_16bit_mono_at_its_rate(tmp_path):
    audio = Audio(samples=np.linspace(-1.5, 1.5, 2400).astype(np.float32), sample_rate=24000, provenance=_prov())
    path = save_wav(audio, tmp_path / "a.wav")
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 24000, 2400)
        pcm = np.frombuffer(w.readframes(2400), "<i2")
    assert pcm.min() == -32768 and pcm.max() == 32767  # clipped, not wrapped


def test_save_wav_labels_by_default(tmp_path):
    from bark_core.label.metadata import read_label
    from bark_core.label.watermark import detect

    t = np.arange(24000 * 3) / 24000
    audio = Audio(samples=(0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), provenance=_prov())
    labelled = save_wav(audio, tmp_path / "l.wav", text="hi")
    assert read_label(labelled)["AI_GENERATED"] is True and detect(str(labelled)).detected
    bare = save_wav(audio, tmp_path / "b.wav", label=False)
    assert read_label(bare) is None and not detect(str(bare)).detected
