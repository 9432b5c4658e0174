"""The command line writes audio from tiny local weights and reports errors in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave

from bark_core import load_artifact, load_voice
from bark_core.cli import main, say_main


def test_bark_say_writes_a_wav_from_tiny_local_weights(tiny_dir, tmp_path, capsys):
    out = tmp_path / "hello.wav"
    code = say_main(["Hello there", "--models", str(tiny_dir), "--device", "cpu", "--seed", "1", "-o", str(out),
                     "--max-duration", "1",
                     "--voice", "v2/en_speaker_6", "--save-artifacts", str(tmp_path / "arts"),
                     "--save-voice", str(tmp_path / "me.npz")])
    assert code == 0
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 24000) and w.getnframes() > 0
    err = capsys.readouterr().err
    # not a terminal: plain progress lines, one per stage (no redraw frames in a log)
    assert "UNTRAINED" in err and err.count("semantic: done in") == 1 and "\r" not in err
    assert load_artifact(tmp_path / "arts" / "hello.coarse.npz").KIND == "coarse"
    assert load_voice(str(tmp_path / "me.npz")).source["kind"] == "generated"
    # refuses to overwrite unless asked
    assert say_main(["Again", "--models", str(tiny_dir), "--device", "cpu", "-q", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_cli_errors_are_one_line_with_exit_code_2(tiny_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bark_core.cli", "say", "   ", "--models", str(tiny_dir),
                           "-o", str(tmp_path / "x.wav"), "-q"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: Text is empty")
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "bark_core.cli", "say", "hi", "--voice", "v2/en_speakr_6",
                           "--models", str(tiny_dir), "-o", str(tmp_path / "x.wav"), "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Did you mean v2/en_speaker_6" in proc.stderr


def test_tiny_models_and_voices_commands(tmp_path, capsys):
    assert main(["tiny-models", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "bark_models.json").is_file() and (tmp_path / "t" / "text.pt").is_file()
    assert main(["voices"]) == 0
    listing = capsys.readouterr().out
    assert "English: v2/en_speaker_0" in listing and "announcer" in listing


def test_cli_output_is_labelled_and_watermarked(tiny_dir, tmp_path):
    from bark_core.label.metadata import read_label
    from bark_core.label.watermark import detect

    out = tmp_path / "take.flac"
    assert say_main(["Label me", "--models", str(tiny_dir), "--device", "cpu", "--seed", "4", "-q",
                     "--max-duration", "1", "-o", str(out)]) == 0
    tags = read_label(out)
    assert tags["AI_GENERATED"] is True and tags["seed"] == 4 and "coarse=" in tags["model"]
    assert detect(str(out)).detected
    assert str(tiny_dir) not in json.dumps(tags) and "sha256:" in tags["model"]  # no local path in the label
    if shutil.which("exiftool"):  # the IPTC field outside tools read (tests/test_label_standards.py)
        found = subprocess.run(["exiftool", "-s3", "-XMP-iptcExt:DigitalSourceType", str(out)], capture_output=True,
                               text=True, check=True).stdout.strip()
        assert found.endswith("/algorithmicMedia"), found  # the tiny set is untrained: algorithmic, not trained
    raw = tmp_path / "raw.wav"
    assert say_main(["No label", "--models", str(tiny_dir), "--device", "cpu", "-q", "--no-label",
                     "--max-duration", "1", "-o", str(raw)]) == 0
    assert read_label(raw) is None and not detect(str(raw)).detected


def test_bark_say_decoder_flag_picks_the_decode_loop(tiny_dir, tmp_path):
    arts = tmp_path / "arts"
    assert say_main(["Fast please", "--models", str(tiny_dir), "--device", "cpu", "--seed", "2", "-q",
                     "--max-duration", "1", "--decoder", "fast", "--dtype", "bf16", "-o", str(tmp_path / "f.wav"),
                     "--save-artifacts", str(arts)]) == 0
    sem = load_artifact(arts / "f.semantic.npz")
    assert sem.provenance.settings["decoder"] == "fast" and sem.provenance.settings["dtype"] == "bfloat16"
    assert load_artifact(arts / "f.coarse.npz").provenance.settings["decoder"] == "fast"
    assert say_main(["Eager", "--models", str(tiny_dir), "--device", "cpu", "--seed", "2", "-q", "--max-duration", "1",
                     "-o", str(tmp_path / "e.wav"), "--save-artifacts", str(arts)]) == 0
    assert load_artifact(arts / "e.semantic.npz").provenance.settings["decoder"] == "eager"  # auto on a CPU
