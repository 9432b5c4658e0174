"""export_audio: formats, rates, normalisation, atomic and non-overwriting writes, always labelled."""

from __future__ import annotations

import json
import logging
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bark_core.artifacts import Audio, Provenance
from bark_core.audio_io import read_audio, resample
from bark_core.errors import ArtifactError, OutputPathError
from bark_core.label import watermark as W
from bark_core.label.export import export_audio
from bark_core.label.metadata import read_label

SR = 24_000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    for tool in ("espeak-ng", "ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for the export tests (apt-get install {tool}).")
    wav = tmp_path_factory.mktemp("export_speech") / "s.wav"
    text = "Exports are always labelled. This take is written in four formats at several rates."
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
    samples, rate = read_audio(wav)
    return Audio(provenance=Provenance(stage="decode", seed=1), samples=resample(samples, rate, SR) * 0.5)


def stream_info(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    info = json.loads(out)
    return {**info["streams"][0], "duration": float(info["format"]["duration"])}


@pytest.mark.parametrize(
    ("fmt", "rate", "codec"),
    [
        ("wav", None, "pcm_s16le"),
        ("wav", 44_100, "pcm_s16le"),
        ("flac", None, "flac"),
        ("flac", 16_000, "flac"),
        ("mp3", None, "mp3"),
        ("mp3", 22_050, "mp3"),
        ("ogg", None, "vorbis"),
        ("ogg", 48_000, "vorbis"),
    ],
)
def test_formats_and_rates(tmp_path: Path, speech: Audio, fmt: str, rate: int | None, codec: str) -> None:
    path = export_audio(speech, tmp_path / "nested" / f"take.{fmt}", sample_rate=rate)
    assert path.is_file()
    info = stream_info(path)
    assert info["codec_name"] == codec
    assert int(info["sample_rate"]) == (rate or SR)
    assert info["channels"] == 1
    assert abs(info["duration"] - speech.duration_s) < 0.1
    assert read_label(path)["AI_GENERATED"] is True
    assert W.detect(path).detected
    assert not list(path.parent.glob(".*.part"))


def test_wav_export_is_the_labelled_audio_within_the_promised_level(tmp_path: Path, speech: Audio) -> None:
    path = export_audio(speech, tmp_path / "take.wav")
    samples, rate = read_audio(path)
    assert rate == SR and samples.size == speech.n_samples
    assert W.mark_to_signal_db(speech.samples, samples) <= -40.0


def test_never_overwrites_unless_asked(tmp_path: Path, speech: Audio) -> None:
    path = tmp_path / "take.flac"
    path.write_bytes(b"precious")
    with pytest.raises(OutputPathError, match="already exists"):
        export_audio(speech, path)
    assert path.read_bytes() == b"precious"
    export_audio(speech, path, overwrite=True)
    assert path.read_bytes()[:4] == b"fLaC"


def test_failed_encode_leaves_the_old_file_and_no_temporary(tmp_path: Path, speech: Audio) -> None:
    path = tmp_path / "take.mp3"
    path.write_bytes(b"precious")
    with pytest.raises(OutputPathError, match="could not encode"):
        export_audio(speech, path, bitrate="not-a-bitrate", overwrite=True)
    assert path.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp3"]


def _dbfs(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, np.float64)
    return 20 * math.log10(np.max(np.abs(x))), 10 * math.log10(np.mean(x * x))


def test_peak_and_rms_normalisation(tmp_path: Path, speech: Audio, caplog: pytest.LogCaptureFixture) -> None:
    peak, _ = _dbfs(read_audio(export_audio(speech, tmp_path / "p.wav", normalize="peak"))[0])
    assert peak == pytest.approx(-1.0, abs=0.15)
    peak, _ = _dbfs(read_audio(export_audio(speech, tmp_path / "p6.wav", normalize="peak", target_db=-6))[0])
    assert peak == pytest.approx(-6.0, abs=0.15)
    _, rms = _dbfs(read_audio(export_audio(speech, tmp_path / "r.wav", normalize="rms", target_db=-24))[0])
    assert rms == pytest.approx(-24.0, abs=0.2)
    with caplog.at_level(logging.WARNING, logger="bark_core"):
        loud = read_audio(export_audio(speech, tmp_path / "loud.wav", normalize="rms", target_db=-3))[0]
    assert _dbfs(loud)[0] <= -0.05
    assert any("would clip" in r.getMessage() for r in caplog.records)


def test_format_errors_name_the_fix(tmp_path: Path, speech: Audio) -> None:
    with pytest.raises(OutputPathError, match=r"\.wav, \.flac, \.mp3 or \.ogg"):
        export_audio(speech, tmp_path / "take.xyz")
    with pytest.raises(OutputPathError, match="Unknown export format"):
        export_audio(speech, tmp_path / "take.wav", format="aiff")
    with pytest.raises(OutputPathError, match="MP3 cannot store 20000 Hz"):
        export_audio(speech, tmp_path / "take.mp3", sample_rate=20_000)
    with pytest.raises(OutputPathError, match="above 0 dBFS"):
        export_audio(speech, tmp_path / "take.wav", normalize="peak", target_db=3)
    with pytest.raises(OutputPathError, match="normalize must be"):
        export_audio(speech, tmp_path / "take.wav", normalize="loud")
    with pytest.raises(ArtifactError, match="export stage takes audio"):
        export_audio(np.zeros(10), tmp_path / "take.wav")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_explicit_format_wins_over_the_extension(tmp_path: Path, speech: Audio) -> None:
    path = export_audio(speech, tmp_path / "take.audio", format="flac")
    assert path.read_bytes()[:4] == b"fLaC"
    assert W.detect(path).detected


def test_custom_key_and_strength(tmp_path: Path, speech: Audio) -> None:
    path = export_audio(speech, tmp_path / "k.wav", key=b"\x01\x02 house key", strength_db=-45)
    samples, _ = read_audio(path)
    assert W.mark_to_signal_db(speech.samples, samples) <= -44.9
    assert W.detect(path, key=b"\x01\x02 house key").detected
    assert not W.detect(path).detected
    assert read_label(path)["watermark"] == {"scheme": W.SCHEME, "key": "custom", "strength_db": -45.0}


def test_loudness_normalisation_hits_the_lufs_target(tmp_path):
    import pyloudnorm

    rng = np.random.default_rng(0)
    t = np.arange(24000 * 4) / 24000
    quiet = (0.02 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    quiet += (0.001 * rng.standard_normal(quiet.size)).astype(np.float32)
    audio = Audio(samples=quiet, provenance=Provenance(stage="t"))
    out = export_audio(audio, tmp_path / "loud.flac", normalize="lufs")
    samples, rate = read_audio(out)
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)) - (-16.0)) < 0.5
    out = export_audio(audio, tmp_path / "l23.wav", normalize="lufs", target_db=-23)
    samples, rate = read_audio(out)
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)) - (-23.0)) < 0.5
