"""The label stage: metadata that a second tool (ffprobe) reads back, labelling once, the CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pytest

from bark_core.artifacts import Audio, Provenance
from bark_core.audio_io import AudioFileError, read_audio, resample
from bark_core.cli.label import add_label_commands, main
from bark_core.errors import ArtifactError
from bark_core.label import save_wav
from bark_core.label import watermark as W
from bark_core.label.export import export_audio
from bark_core.label.metadata import IPTC_DIGITAL_SOURCE_TYPE, LabelError, label, read_label

SR = 24_000
FORMATS = ("wav", "mp3", "flac", "ogg")
TEXT = "Hello from the label tests, this sentence is long enough to give a few seconds of speech."


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is required for the label tests (apt-get install {tool}).")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Audio:
    for tool in ("espeak-ng", "ffmpeg", "ffprobe"):
        _require(tool)
    wav = tmp_path_factory.mktemp("label_speech") / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), TEXT], check=True, capture_output=True)
    samples, rate = read_audio(wav)
    prov = Provenance(stage="decode", model="suno/bark:coarse_2.pt", seed=1234, voice="v2/en_speaker_6")
    return Audio(provenance=prov, samples=resample(samples, rate, SR), sample_rate=SR)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


def ffprobe_tags(path: Path) -> dict[str, str]:
    info = ffprobe(path)
    tags: dict[str, str] = {}
    for s in info["streams"]:
        tags.update(s.get("tags") or {})
    tags.update(info["format"].get("tags") or {})
    return tags


# --- label() -----------------------------------------------------------------------------------


def test_label_watermarks_and_records_it_in_provenance(speech: Audio) -> None:
    out = label(speech)
    assert out.provenance.stage == "label"
    assert out.provenance.parent == speech.id
    assert out.provenance.settings["watermarked"] is True
    assert out.provenance.settings["watermark_added"] is True
    assert out.provenance.voice == "v2/en_speaker_6" and out.provenance.seed == 1234
    assert W.detect(out).detected and not W.detect(speech).detected
    assert W.mark_to_signal_db(speech.samples, out.samples) <= -40.0


def test_labelling_twice_does_not_add_a_second_mark(speech: Audio) -> None:
    once = label(speech)
    twice = label(once)
    assert np.array_equal(once.samples, twice.samples)
    assert twice.provenance.settings["watermark_added"] is False
    # audio that lost its provenance but kept the mark is not marked again either
    bare = Audio(provenance=Provenance(stage="import"), samples=once.samples, sample_rate=SR)
    assert np.array_equal(label(bare).samples, once.samples)
    # a different key is a different mark and is added
    other = label(once, key="another key")
    assert other.provenance.settings["watermark_added"] is True
    assert W.detect(other, key="another key").detected and W.detect(other).detected


def test_label_stores_a_hash_of_the_text_not_the_text(speech: Audio) -> None:
    out = label(speech, text=TEXT)
    info = out.provenance.settings["label"]
    assert info["text_sha256"] == hashlib.sha256(TEXT.encode()).hexdigest()
    assert TEXT not in json.dumps(out.provenance.to_dict())
    shown = label(speech, text=TEXT, include_text=True)
    assert shown.provenance.settings["label"]["text"] == TEXT


def test_label_meta_overrides_provenance_and_keeps_extra_fields(speech: Audio) -> None:
    out = label(speech, model="suno/bark-small", voice="announcer", seed=9, project="demo", take=3)
    info = out.provenance.settings["label"]
    assert (info["model"], info["voice"], info["seed"]) == ("suno/bark-small", "announcer", 9)
    assert info["extra"] == {"project": "demo", "take": 3}
    with pytest.raises(LabelError, match="extra.when"):
        label(speech, when=object())
    with pytest.raises(ArtifactError, match="label stage takes audio"):
        label(np.zeros(10))  # type: ignore[arg-type]


# --- metadata in files, read by ffprobe ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_metadata_is_readable_by_ffprobe_and_read_label(tmp_path: Path, speech: Audio, fmt: str) -> None:
    path = export_audio(speech, tmp_path / f"take.{fmt}", text=TEXT)
    tags = ffprobe_tags(path)
    version = importlib_metadata.version("bark-stages")
    comment = tags.get("comment", tags.get("COMMENT", ""))  # Vorbis keys keep their case (COMMENT)
    assert "AI_GENERATED=true" in comment and IPTC_DIGITAL_SOURCE_TYPE in comment
    if fmt == "wav":  # RIFF INFO: ICMT -> comment, ISFT -> encoder
        assert tags["encoder"] == f"bark_core {version}"
        assert b"_PMX" in path.read_bytes()[:8192]  # the XMP chunk, before the samples
    else:
        assert tags["AI_GENERATED"] == "true"
        assert tags["DIGITAL_SOURCE_TYPE"] == IPTC_DIGITAL_SOURCE_TYPE
        assert (tags["GENERATOR"], tags["GENERATOR_VERSION"]) == ("bark_core", version)
        assert (tags["MODEL"], tags["VOICE"], tags["SEED"]) == ("suno/bark:coarse_2.pt", "v2/en_speaker_6", "1234")
        assert tags["TEXT_SHA256"] == hashlib.sha256(TEXT.encode()).hexdigest()
        assert tags["WATERMARK"] == W.SCHEME
        assert json.loads(tags["BARK_LABEL"]) == read_label(path)
    assert TEXT not in path.read_bytes().decode("latin-1")
    data = read_label(path)
    assert data is not None
    assert data["AI_GENERATED"] is True
    assert data["digital_source_type"] == IPTC_DIGITAL_SOURCE_TYPE
    assert (data["generator"], data["generator_version"]) == ("bark_core", version)
    assert (data["model"], data["voice"], data["seed"]) == ("suno/bark:coarse_2.pt", "v2/en_speaker_6", 1234)
    assert data["watermark"]["scheme"] == W.SCHEME
    when = datetime.fromisoformat(data["labelled_at"].replace("Z", "+00:00"))
    assert when.tzinfo is not None and abs((datetime.now(timezone.utc) - when).total_seconds()) < 120
    assert W.detect(path).detected


def test_mp3_uses_id3v2_txxx_and_comm_frames(tmp_path: Path, speech: Audio) -> None:
    blob = export_audio(speech, tmp_path / "take.mp3").read_bytes()
    assert blob[:4] == b"ID3\x04"  # v2.4: what c2pa rewrites a tag as when it signs
    size = (blob[6] << 21) | (blob[7] << 14) | (blob[8] << 7) | blob[9]
    header = blob[: 10 + size]
    assert b"COMM" in header and header.count(b"TXXX") >= 5 and b"PRIV" in header
    assert blob.count(b"ID3\x04") == 1


def test_wav_stays_a_plain_wav_for_other_readers(tmp_path: Path, speech: Audio) -> None:
    import wave

    path = export_audio(speech, tmp_path / "take.wav")
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, SR, speech.n_samples)
    info = ffprobe(path)["streams"][0]
    assert (info["codec_name"], int(info["sample_rate"])) == ("pcm_s16le", SR)


@pytest.mark.parametrize("fmt", FORMATS)
def test_relabelling_a_file_leaves_exactly_one_tag_set(tmp_path: Path, speech: Audio, fmt: str) -> None:
    first = export_audio(speech, tmp_path / f"first.{fmt}")
    second = tmp_path / f"second.{fmt}"
    assert main(["label", str(first), str(second)]) == 0
    tags = ffprobe_tags(second)
    if fmt == "wav":
        assert tags["comment"].count("AI_GENERATED=true") == 1
        assert second.read_bytes().count(b"LIST") == 1
    else:
        assert tags["AI_GENERATED"] == "true"  # duplicates would read "true;true"
        json.loads(tags["BARK_LABEL"])
    assert second.read_bytes().count(b"AI_GENERATED") == first.read_bytes().count(b"AI_GENERATED")
    assert read_label(second)["voice"] == "v2/en_speaker_6"  # carried over from the first label
    if fmt == "wav":  # lossless: the second pass must not have added a second mark
        a, _ = read_audio(first)
        b, _ = read_audio(second)
        assert np.array_equal(a, b)


def test_unlabelled_files_read_as_none_and_missing_files_raise(tmp_path: Path, speech: Audio) -> None:
    plain = save_wav(speech, tmp_path / "plain.wav", label=False)
    assert read_label(plain) is None
    mp3 = tmp_path / "plain.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), str(mp3)], check=True)
    assert read_label(mp3) is None
    with pytest.raises(AudioFileError, match="No audio file"):
        read_label(tmp_path / "nothing.mp3")


def test_reencoding_strips_tags_but_not_the_watermark(tmp_path: Path, speech: Audio) -> None:
    src = export_audio(speech, tmp_path / "take.mp3")
    stripped = tmp_path / "stripped.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(src), "-map_metadata", "-1", "-c:a", "aac", "-b:a", "64k", str(stripped)],
        check=True,
    )
    assert read_label(stripped) is None
    assert W.detect(stripped).detected
    # a plain ffmpeg conversion to WAV keeps only the comment (as RIFF ICMT); read_label still finds it
    as_wav = tmp_path / "converted.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(src), str(as_wav)], check=True)
    data = read_label(as_wav)
    assert data is not None and data["AI_GENERATED"] is True and data["source"] == "summary"


def test_switching_the_label_off_is_explicit_and_logged(
    tmp_path: Path, speech: Audio, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bark_core"):
        path = export_audio(speech, tmp_path / "raw.flac", label=False)
    assert any("WITHOUT watermark" in r.getMessage() for r in caplog.records)
    assert read_label(path) is None
    assert not W.detect(path).detected
    with pytest.raises(LabelError, match="label=False"):
        export_audio(speech, tmp_path / "raw2.flac", label=False, text="hi")


# --- CLI -----------------------------------------------------------------------------------------------


def test_cli_label_then_detect(tmp_path: Path, speech: Audio, capsys: pytest.CaptureFixture[str]) -> None:
    src = save_wav(speech, tmp_path / "in.wav", label=False)
    out = tmp_path / "out.mp3"
    assert main(["label", str(src), str(out), "--text", TEXT, "--voice", "announcer", "--seed", "5"]) == 0
    assert read_label(out)["voice"] == "announcer"
    assert read_label(out)["seed"] == 5
    assert main(["label", str(src), str(out)]) == 2  # exists, no --overwrite
    assert "already exists" in capsys.readouterr().err
    capsys.readouterr()

    assert main(["detect", str(out)]) == 0
    assert "watermark DETECTED" in capsys.readouterr().out
    assert main(["detect", str(out), str(src)]) == 1
    assert main(["detect", str(out), str(tmp_path / "missing.wav")]) == 2
    capsys.readouterr()
    assert main(["detect", "--json", str(out), str(src)]) == 1
    records = json.loads(capsys.readouterr().out)
    assert [r["detected"] for r in records] == [True, False]
    assert records[0]["label"]["AI_GENERATED"] is True and records[1]["label"] is None
    assert records[0]["false_positive_bound"] <= 1.01e-4


def test_cli_custom_keys(tmp_path: Path, speech: Audio) -> None:
    src = save_wav(speech, tmp_path / "in.wav", label=False)
    keyfile = tmp_path / "key.txt"
    keyfile.write_text("team secret\n")
    out = tmp_path / "out.ogg"
    assert main(["label", str(src), str(out), "--key-file", str(keyfile)]) == 0
    assert main(["detect", str(out), "--key", "team secret"]) == 0
    assert main(["detect", str(out), "--key-file", str(keyfile)]) == 0
    assert main(["detect", str(out)]) == 1  # default key
    assert main(["detect", str(out), "--key", "wrong"]) == 1
    assert read_label(out)["watermark"]["key"] == "custom"
    assert b"team secret" not in out.read_bytes()


def test_cli_mounts_on_another_parser_and_runs_as_module(tmp_path: Path, speech: Audio) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="bark-core")
    add_label_commands(parser.add_subparsers(dest="command", required=True))
    src = export_audio(speech, tmp_path / "l.flac")
    args = parser.parse_args(["detect", str(src)])
    assert args.func(args) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "bark_core.cli.label", "detect", "--json", str(src)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["detected"] is True


def test_generator_version_of_a_git_clone_comes_from_pyproject(monkeypatch, tmp_path: Path, speech: Audio) -> None:
    """A checkout used without pip install (a ComfyUI custom node) has no package metadata: read pyproject.toml."""
    import tomllib

    from bark_core.label import metadata as M

    want = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["version"]

    def not_installed(name: str) -> str:
        raise importlib_metadata.PackageNotFoundError(name)

    monkeypatch.setattr(M.importlib_metadata, "version", not_installed)
    M.generator_version.cache_clear()
    try:
        assert M.generator_version() == want != "0.0.0"
        data = read_label(export_audio(speech, tmp_path / "clone.wav"))
        assert data["generator_version"] == want
        monkeypatch.setitem(sys.modules, "tomllib", None)  # Python 3.10: the plain reading gives the same
        assert M.project_version() == want
        other = tmp_path / "pyproject.toml"
        other.write_text('[project]\nname = "someone-else"\nversion = "9.9.9"\n')
        assert M.project_version(other) is None and M.project_version(tmp_path / "missing.toml") is None
    finally:
        M.generator_version.cache_clear()
