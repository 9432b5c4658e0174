"""Quality report figures on signals with known answers, espeak speech vs noise, ASR, CLI, repeatability."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bark_core import Audio, BarkModels, CoarseCodes, Provenance, Take, generate
from bark_core.cli.quality import main as cli_main
from bark_core.label import save_wav
from bark_core.quality import (
    EXPECT,
    QualityError,
    QualityReport,
    check,
    repeatability,
    text_syllables,
    word_error_rate,
)

SR = 24_000
SPOKEN = "The quick brown fox jumps over the lazy dog. This is a test of the quality checker."
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _audio(x: np.ndarray, sr: int = SR) -> Audio:
    return Audio(provenance=Provenance(stage="test"), samples=np.asarray(x, np.float32), sample_rate=sr)


def _t(seconds: float, sr: int = SR) -> np.ndarray:
    return np.arange(int(round(seconds * sr))) / sr


@pytest.fixture(scope="module")
def models(tiny_dir: Path) -> BarkModels:
    """One tiny model set for this module, so the models load once."""
    return BarkModels(tiny_dir, device="cpu")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, int]:
    """An espeak-ng clip: real speech with pauses, consonants and pitch, made offline."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), SPOKEN], check=True, capture_output=True)
    from bark_core.audio_io import read_audio

    samples, rate = read_audio(path)
    return path, np.asarray(samples, np.float64), rate


# ---- noise -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
def test_snr_of_tone_bursts_in_white_noise(snr_db):
    """Tone bursts with noise-only gaps: SNR = tone power / noise power, as defined in the module."""
    rng = np.random.default_rng(int(snr_db))
    t = _t(6.0)
    sigma = 0.01
    amp = np.sqrt(2 * sigma**2 * 10 ** (snr_db / 10))
    gate = np.floor(t / 0.5) % 2 == 0
    x = amp * np.sin(2 * np.pi * 1000 * t) * gate + rng.normal(0, sigma, t.size)
    m = check(_audio(x), expect="any").metrics
    assert m.snr_db == pytest.approx(snr_db, abs=1.0)
    assert m.noise_floor_dbfs == pytest.approx(20 * np.log10(sigma), abs=0.5)


def test_low_snr_is_flagged_by_severity():
    rng = np.random.default_rng(0)
    t = _t(4.0)
    gate = np.floor(t / 0.5) % 2 == 0
    for snr_db, severity in ((25.0, None), (15.0, "warn"), (6.0, "fail")):
        amp = np.sqrt(2 * 0.01**2 * 10 ** (snr_db / 10))
        report = check(_audio(amp * np.sin(2 * np.pi * 500 * t) * gate + rng.normal(0, 0.01, t.size)), expect="any")
        flags = {f.code: f for f in report.flags}
        if severity is None:
            assert "low_snr" not in flags
        else:
            assert flags["low_snr"].severity == severity and flags["low_snr"].unit == "dB"


def test_clipping_is_flagged_and_measured():
    t = _t(2.0)
    x = np.clip(2.0 * np.sin(2 * np.pi * 220 * t), -1.0, 1.0)
    report = check(_audio(x), expect="any")
    expected = float(np.mean(np.abs(x.astype(np.float32)) >= 0.999) * 100)
    assert report.metrics.clipped_pct == pytest.approx(expected, rel=1e-6) and expected > 50
    flag = next(f for f in report.flags if f.code == "clipping")
    assert flag.severity == "fail" and not report.passed and "clipped" in flag.message
    clean = check(_audio(0.5 * np.sin(2 * np.pi * 220 * t)), expect="any")
    assert clean.metrics.clipped_pct == 0 and "clipping" not in clean.codes()


def test_dc_offset_is_flagged_without_disturbing_silence_measures():
    x = np.concatenate([0.3 * np.sin(2 * np.pi * 440 * _t(1.0)), np.zeros(SR)]) + 0.05
    report = check(_audio(x), expect="any")
    assert report.metrics.dc_offset == pytest.approx(0.05 + np.mean(x - 0.05), abs=1e-4)
    assert "dc_offset" in report.codes("warn")
    assert report.metrics.trailing_silence_s == pytest.approx(1.0, abs=0.02)
    assert "dc_offset" not in check(_audio(x - np.mean(x)), expect="any").codes()


@pytest.mark.parametrize("base", [50.0, 60.0])
def test_mains_hum_is_detected(speech, base):
    _, x, sr = speech
    x = 0.5 * x / np.max(np.abs(x))
    t = np.arange(x.size) / sr
    hum = 0.02 * np.sin(2 * np.pi * base * t) + 0.01 * np.sin(2 * np.pi * 2 * base * t + 1.0)
    report = check(_audio(x + hum, sr))
    assert report.metrics.hum_hz == base and report.metrics.hum_db > -20
    assert "hum" in report.codes("warn")
    clean = check(_audio(x, sr))
    assert "hum" not in clean.codes() and (clean.metrics.hum_db is None or clean.metrics.hum_db < -35)


def test_hiss_in_pauses_is_flagged(speech):
    _, x, sr = speech
    rng = np.random.default_rng(3)
    x = 0.5 * x / np.max(np.abs(x))
    report = check(_audio(x + rng.normal(0, 10 ** (-45 / 20), x.size), sr))
    assert "hiss" in report.codes("warn") and report.metrics.pause_flatness > 0.5
    assert report.metrics.noise_floor_dbfs == pytest.approx(-45, abs=1.5)
    assert "hiss" not in check(_audio(x, sr)).codes()


# ---- clarity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.0, 1e-4])
def test_leading_and_trailing_silence_are_measured(noise):
    rng = np.random.default_rng(1)
    lead, tail = 0.537, 1.234
    x = np.concatenate([np.zeros(int(lead * SR)), 0.3 * np.sin(2 * np.pi * 440 * _t(1.5)), np.zeros(int(tail * SR))])
    report = check(_audio(x + rng.normal(0, noise, x.size)), expect="music")
    assert report.metrics.leading_silence_s == pytest.approx(lead, abs=0.02)
    assert report.metrics.trailing_silence_s == pytest.approx(tail, abs=0.02)
    assert "trailing_silence" in report.codes("warn") and "leading_silence" not in report.codes()


def test_long_internal_pause_is_flagged(speech):
    _, x, sr = speech
    gap = 2.0
    joined = np.concatenate([x, np.zeros(int(gap * sr)), x])
    one = check(_audio(x, sr)).metrics
    report = check(_audio(joined, sr), text=SPOKEN + " " + SPOKEN)
    expected = one.trailing_silence_s + gap + one.leading_silence_s
    assert report.metrics.longest_pause_s == pytest.approx(expected, abs=0.02)
    assert [round(d, 2) for _, d in report.metrics.long_pauses] == [pytest.approx(expected, abs=0.02)]
    assert "long_pause" in report.codes("warn")


def test_abrupt_end_is_flagged():
    tone = 0.3 * np.sin(2 * np.pi * 440 * _t(1.5))
    assert "abrupt_end" in check(_audio(tone), expect="any").codes("warn")
    faded = np.concatenate([tone * np.minimum(1, (tone.size - np.arange(tone.size)) / 2400), np.zeros(2400)])
    report = check(_audio(faded), expect="any")
    assert "abrupt_end" not in report.codes() and report.metrics.end_level_db < -60


def test_silent_and_too_short_takes_fail():
    report = check(_audio(np.zeros(SR)))
    assert report.codes("fail") == ["silent"] and not report.passed
    assert check(_audio(np.full(100, 0.1))).codes("fail") == ["too_short"]
    blip = check(_audio(0.3 * np.sin(2 * np.pi * 200 * _t(0.1))))
    assert "short_take" in blip.codes("warn") and blip.metrics.syllabic_modulation is None
    assert "not_speech" not in blip.codes()  # a cue too short to measure counts neither way


# ---- speech or noise ------------------------------------------------------------------------------------


def test_espeak_speech_is_plausible_and_passes(speech):
    path, _, _ = speech
    report = check(path, text=SPOKEN)
    m = report.metrics
    assert report.passed, report.to_text()
    assert not {"not_speech", "maybe_not_speech", "maybe_music"} & set(report.codes())
    assert 3.0 <= m.syllables_per_s <= 7.0 and 8.0 <= m.chars_per_s <= 22.0
    assert 0.5 <= m.speech_activity <= 0.95 and 0.2 <= m.voiced_ratio <= 0.8
    assert m.syllabic_modulation > 0.3 and m.spectral_flatness < 0.1
    assert m.sample_rate == 22_050 and report.text_source == "argument"


def test_speaking_rate_flags_a_take_too_long_or_too_short_for_its_text(speech):
    path, _, _ = speech
    assert "slow_rate" in check(path, text="Hi.").codes("warn")
    assert "fast_rate" in check(path, text=SPOKEN * 3).codes("warn")


def test_white_noise_is_not_speech():
    rng = np.random.default_rng(0)
    report = check(_audio(rng.normal(0, 0.1, 4 * SR)))
    flag = next(f for f in report.flags if f.code == "not_speech")
    assert flag.severity == "fail" and "noise" in flag.message and not report.passed
    assert report.metrics.spectral_flatness > 0.4 and report.metrics.voiced_ratio < 0.1
    assert "not_speech" not in check(_audio(rng.normal(0, 0.1, 4 * SR)), expect="any").codes()


def test_steady_chord_is_not_speech():
    t = _t(3.0)
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    assert "not_speech" in check(_audio(chord)).codes("fail")
    assert check(_audio(chord), expect="music").passed


def test_tiny_take_reads_text_from_provenance_and_is_flagged_as_noise(models):
    take = generate(models, "Hello there.", seed=1, max_gen_duration_s=0.5)
    report = check(take)
    assert report.text_source == "provenance" and report.artifact_id == take.audio.id
    assert "untrained_models" in report.codes("info") and "not_speech" in report.codes("fail")


# ---- loudness -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [24_000, 48_000])
def test_loudness_of_minus_20_dbfs_sine_is_minus_23_lufs(rate):
    x = 0.1 * np.sin(2 * np.pi * 1000 * _t(5.0, rate))
    assert check(_audio(x, rate), expect="any").metrics.loudness_lufs == pytest.approx(-23.0, abs=0.5)


def test_missing_pyloudnorm_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyloudnorm", None)
    report = check(_audio(0.1 * np.sin(2 * np.pi * 1000 * _t(2.0))), expect="any")
    assert report.metrics.loudness_lufs is None
    flag = next(f for f in report.flags if f.code == "loudness_unmeasured")
    assert flag.severity == "info" and "pyloudnorm" in flag.message


# ---- files, formats, serialisation -------------------------------------------------------------------------


@needs_ffmpeg
def test_any_format_and_rate_reads_through_ffmpeg(speech, tmp_path):
    path, _, _ = speech
    flac = tmp_path / "speech.flac"
    mp3 = tmp_path / "speech.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ar", "44100", str(flac)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ar", "44100", "-b:a", "128k", str(mp3)], check=True)
    ref = check(path, text=SPOKEN).metrics
    for p in (flac, mp3):
        m = check(p, text=SPOKEN).metrics
        assert m.sample_rate == 44_100
        assert m.speech_activity == pytest.approx(ref.speech_activity, abs=0.05)
        assert m.loudness_lufs == pytest.approx(ref.loudness_lufs, abs=0.5)


def test_audio_artifact_npz_and_take_are_accepted(tmp_path):
    art = _audio(0.3 * np.sin(2 * np.pi * 440 * _t(1.0)))
    saved = art.save(tmp_path / "a.npz")
    assert check(saved, expect="any").artifact_id == art.id
    assert check(Take(None, None, None, art), expect="any").artifact_id == art.id  # type: ignore[arg-type]
    with pytest.raises(QualityError, match="No audio file"):
        check(tmp_path / "missing.wav")
    with pytest.raises(QualityError, match="expect must be one of"):
        check(art, expect="podcast")
    assert EXPECT == ("speech", "music", "any")


def test_report_serialises_and_summarises(speech):
    path, _, _ = speech
    report = check(path, text=SPOKEN)
    data = json.loads(report.to_json())
    assert data["schema"] == "bark_core.quality/1" and data["passed"] is True
    assert set(data["metrics"]) >= {"noise_floor_dbfs", "snr_db", "clipped_pct", "dc_offset", "hum_db",
                                    "pause_flatness", "speech_activity", "leading_silence_s", "trailing_silence_s",
                                    "syllables_per_s", "end_level_db", "loudness_lufs"}
    assert data["thresholds"]["SNR_WARN_DB"] == 20.0
    summary = report.summary()
    assert json.loads(json.dumps(summary)) == summary and "text" not in json.dumps(summary)
    assert summary["passed"] is True and summary["fail"] == [] and isinstance(summary["loudness_lufs"], float)
    assert report.to_text().startswith(f"{path}: PASSED")
    assert isinstance(report, QualityReport)


def test_text_syllable_estimate():
    assert text_syllables("Hello there")[0] == 3
    assert text_syllables("[laughs] The cat. ♪")[0] == 2
    assert text_syllables("こんにちは")[0] == 5
    assert text_syllables("Guten Tag, wie geht es?")[0] == 6
    assert text_syllables("Hello there") == (3, 10)


def test_word_error_rate():
    assert word_error_rate("The cat sat.", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "the bat") == pytest.approx(2 / 3)
    assert word_error_rate("[laughs] hi", "hi") == 0.0
    assert word_error_rate("", "anything") is None


# ---- ASR (optional) ---------------------------------------------------------------------------------------


def test_asr_without_pocketsphinx_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    report = check(_audio(0.1 * np.sin(2 * np.pi * 300 * _t(1.0))), text="hello", expect="any", asr=True)
    assert report.asr["available"] is False and "pocketsphinx" in report.asr["note"]
    assert "asr_unavailable" in report.codes("info") and report.passed


def test_asr_with_pocketsphinx_on_espeak(speech):
    pytest.importorskip("pocketsphinx", reason="pocketsphinx (optional, ships its own English model) not installed")
    path, _, _ = speech
    report = check(path, text=SPOKEN, asr=True)
    asr = report.asr
    assert asr["available"] is True and asr["approximate"] is True and "pocketsphinx" in asr["engine"]
    assert isinstance(asr["transcript"], str) and asr["transcript"].strip()
    assert 0.0 <= asr["wer"] <= 2.0 and "approximate" in report.to_text()
    assert all(f.severity == "info" for f in report.flags if f.code.startswith("asr"))


# ---- CLI ----------------------------------------------------------------------------------------------------


def test_cli_check_exit_codes_and_json(speech, tmp_path, capsys):
    path, _, _ = speech
    assert cli_main(["check", str(path), "--text", SPOKEN]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "loudness" in out
    noise = tmp_path / "noise.wav"
    save_wav(_audio(np.random.default_rng(0).normal(0, 0.1, 2 * SR)), noise, label=False)
    assert cli_main(["check", str(path), str(noise), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [d["passed"] for d in data] == [True, False]
    assert cli_main(["check", str(tmp_path / "nope.wav")]) == 2
    assert "error:" in capsys.readouterr().err
    text_file = tmp_path / "prompt.txt"
    text_file.write_text(SPOKEN)
    assert cli_main(["check", str(path), "--text-file", str(text_file), "--expect", "speech"]) == 0


# ---- repeatability -------------------------------------------------------------------------------------------


def test_repeatability_on_tiny_models(models, monkeypatch):
    cache = None
    if "cache" in inspect.signature(BarkModels).parameters:  # with a stage cache, both runs must still compute
        from bark_core.cache import StageCache

        cache = StageCache(folder=False)
        monkeypatch.setattr(models, "cache", cache)
    report = repeatability(models, "Hi there.", seed=3, n_seeds=2, max_gen_duration_s=0.3)
    assert report.identical and report.differing_stage is None
    assert [s.stage for s in report.stages] == ["semantic", "coarse", "fine", "audio"]
    assert all(s.identical and s.first_id == s.second_id for s in report.stages)
    assert report.seeds == [3, 4, 5] and report.n_other_seeds == 2
    assert report.stats["duration_s"]["n"] == 3 and report.stats["duration_s"]["min"] > 0
    assert set(report.stats["loudness_lufs"]) == {"n", "mean", "std", "min", "max"}
    assert report.flag_counts["untrained_models"] == 3 and 0.0 <= report.pass_rate <= 1.0
    assert [t["seed"] for t in report.takes] == [3, 4, 5] and all("flags" in t for t in report.takes)
    data = json.loads(report.to_json())
    assert data["identical"] is True and data["variation"]["seeds"] == [3, 4, 5]
    assert data["settings"] == {"max_gen_duration_s": 0.3}
    assert report.to_text().startswith("Repeatable: seed 3")
    if cache is not None:
        assert report.cache_bypassed is True and models.cache is cache
        assert "semantic" not in cache.stats.by_stage or cache.stats.by_stage["semantic"]["hits"] == 0


def test_repeatability_names_the_stage_that_differed(models, monkeypatch):
    import bark_core.quality.repeat as pipeline

    real = pipeline.generate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        take = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # the repeat run: perturb the coarse codes as a nondeterministic kernel might
            codes = take.coarse.codes.copy()
            codes[1, -1] = (codes[1, -1] + 1) % 1024
            take = Take(take.semantic, CoarseCodes(codes=codes, provenance=take.coarse.provenance), take.fine,
                        take.audio)
        return take

    monkeypatch.setattr(pipeline, "generate", flaky)
    report = repeatability(models, "Hi there.", seed=1, max_gen_duration_s=0.2)
    assert not report.identical and report.differing_stage == "coarse"
    assert "first difference at frame" in report.stages[1].detail and report.stages[0].identical
    assert report.to_text().startswith("NOT repeatable") and report.seeds == [1]


def test_repeatability_validates_seeds(models):
    with pytest.raises(QualityError, match="integer seed"):
        repeatability(models, "Hi.", seed=None)  # type: ignore[arg-type]
    with pytest.raises(QualityError, match="non-negative integers"):
        repeatability(models, "Hi.", seed=1, seeds=[2, -1])
