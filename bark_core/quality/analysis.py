"""Automatic quality checks for a take: noise, clarity, loudness, speech and (optionally) an ASR transcript.

Bark's scenarios end with "Check: clarity, noise, repeatability" and public use needs human
quality checks. A person still has to listen (see :mod:`bark_core.label.review`); this module tells
them where to listen and what to look for, with the figure behind every remark, so that a take with
a hallucinated tail, a hiss, a clipped peak or no speech at all is caught before anyone publishes it.
The figures are defined in :mod:`bark_core.quality.thresholds`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from ..artifacts import Audio, load_artifact
from ..audio_io import read_audio
from .asr import transcribe
from .clarity import edge_silence, measure_end
from .loudness import measure_loudness
from .noise import measure_noise
from .report import EXPECT, Flag, Metrics, QualityError, QualityReport
from .signal import activity, db
from .speech import speech_checks
from .thresholds import (
    ASR_WER_INFO,
    CLIP_FAIL_PCT,
    CLIP_LEVEL,
    CLIP_WARN_PCT,
    DC_WARN,
    FRAME_S,
    LONG_PAUSE_S,
    PAUSE_MIN_S,
    POWER_FLOOR,
    SHORT_TAKE_S,
    SILENT_PEAK_DBFS,
)


def _text_from_chain(audio: Audio) -> str | None:
    """The prompt text recorded by the semantic stage, found by walking the in-memory parents."""
    node: Any = audio
    seen = 0
    while node is not None and seen < 16:
        text = node.provenance.settings.get("text")
        if isinstance(text, str) and text.strip():
            return text
        node, seen = node.parent, seen + 1
    return None


def _load(audio: Any) -> tuple[np.ndarray, int, str, str | None, Audio | None]:
    if hasattr(audio, "audio") and isinstance(audio.audio, Audio):  # a Take
        audio = audio.audio
    if isinstance(audio, Audio):
        return audio.samples, audio.sample_rate, f"audio artifact {audio.id}", audio.id, audio
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        if not path.is_file():
            raise QualityError(f"No audio file at {path}. Check the path.")
        if path.suffix.lower() == ".npz":
            art = load_artifact(path)
            if not isinstance(art, Audio):
                raise QualityError(f"{path} holds a {art.KIND} artifact; quality checks need audio (decode it first).")
            return art.samples, art.sample_rate, str(path), art.id, art
        samples, rate = read_audio(path)
        return samples, rate, str(path), None, None
    raise QualityError(
        f"check() takes an Audio artifact, a Take or an audio file path, got {type(audio).__name__}."
    )


def check(audio: Audio | str | os.PathLike, *, text: str | None = None, expect: str = "speech",
          asr: bool = False) -> QualityReport:
    """Measure a take and flag what a listener should attend to before it is used.

    ``audio``: an Audio artifact, a Take, an Audio ``.npz`` or any audio file ffmpeg reads.
    ``text``: the prompt, for the speaking-rate check (and ASR word error rate); for artifacts with
    their chain in memory it is taken from the semantic stage when not given.
    ``expect``: "speech" (default), "music" (Bark's ♪ songs and sound effects: no speech checks)
    or "any" (technical checks only).
    ``asr``: also transcribe with pocketsphinx, if installed (approximate; English only).
    """
    if not isinstance(expect, str) or expect not in EXPECT:
        raise QualityError(f"expect must be one of {', '.join(EXPECT)}, got {expect!r:.40}.")
    limits.text(text, "text", max_chars=limits.MAX_LONG_TEXT_CHARS, error=QualityError, allow_none=True)
    samples, sr, source, art_id, art = _load(audio)
    if samples.size > limits.MAX_AUDIO_SAMPLES:
        raise QualityError(f"{source} has {samples.size:,} samples ({samples.size / sr / 60:.1f} min); the quality "
                           f"check analyses at most {limits.MAX_AUDIO_SAMPLES:,} ({limits.MAX_FILE_AUDIO_S / 60:g} min "
                           "at 24 kHz) at once. Check it in parts: bark_core.slice_artifact(audio, start_s, end_s).")
    text_source = None
    if text is not None:
        text_source = "argument"
    elif art is not None:
        text = _text_from_chain(art)
        text_source = "provenance" if text is not None else None
    x = np.asarray(samples, dtype=np.float64)
    flags: list[Flag] = []
    m = _measure(x, sr, text, expect, flags)
    if art is not None and art.provenance.extra.get("untrained"):
        flags.append(Flag("untrained_models", "info",
                          "Made with untrained models (the tiny test set): noise is the expected output."))
    report = QualityReport(source=source, metrics=m, flags=flags, expect=expect, artifact_id=art_id,
                           text_source=text_source)
    if asr:
        report.asr = transcribe(x, sr, text)
        if not report.asr["available"]:
            flags.append(Flag("asr_unavailable", "info", report.asr["note"]))
        elif report.asr.get("wer") is not None and report.asr["wer"] > ASR_WER_INFO:
            flags.append(Flag("asr_mismatch", "info",
                              f"The approximate transcript differs from the text (WER {report.asr['wer']:.2f}); "
                              "listen for skipped or invented words.", report.asr["wer"], ASR_WER_INFO))
    return report


def _measure(x: np.ndarray, sr: int, text: str | None, expect: str, flags: list[Flag]) -> Metrics:
    n = len(x)
    duration = n / sr
    peak = float(np.max(np.abs(x))) if n else 0.0
    rms_power = float(np.mean(x * x)) if n else 0.0
    dc = float(np.mean(x)) if n else 0.0
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL) * 100) if n else 0.0
    m = Metrics(duration_s=duration, sample_rate=sr, peak_dbfs=20 * math.log10(max(peak, 1e-5)),
                rms_dbfs=db(rms_power), dc_offset=dc, clipped_pct=clipped, noise_floor_dbfs=-100.0)

    if clipped > CLIP_FAIL_PCT or clipped > CLIP_WARN_PCT:
        sev = "fail" if clipped > CLIP_FAIL_PCT else "warn"
        flags.append(Flag("clipping", sev, f"{clipped:.3f} % of samples sit at full scale: the take is clipped "
                          "and will sound distorted. Lower the gain before export, or regenerate.",
                          clipped, CLIP_FAIL_PCT if sev == "fail" else CLIP_WARN_PCT, "%"))
    if abs(dc) > DC_WARN:
        flags.append(Flag("dc_offset", "warn", f"The waveform is offset by {dc:+.3f} of full scale (DC); "
                          "remove it with a high-pass filter to avoid clicks and lost headroom.", dc, DC_WARN))
    if n < round(FRAME_S * sr):
        flags.append(Flag("too_short", "fail", f"The take lasts {duration * 1000:.0f} ms, less than one 20 ms "
                          "analysis frame: there is nothing to check. Regenerate it.", duration, FRAME_S, "s"))
        return m
    if peak < 10 ** (SILENT_PEAK_DBFS / 20):
        flags.append(Flag("silent", "fail", f"The take is silent (peak {m.peak_dbfs:.1f} dBFS, "
                          f"{duration:.2f} s): there is nothing to hear. Regenerate it.",
                          m.peak_dbfs, SILENT_PEAK_DBFS, "dBFS"))
        return m
    if duration < SHORT_TAKE_S:
        flags.append(Flag("short_take", "warn", f"The take lasts only {duration:.2f} s, shorter than a word.",
                          duration, SHORT_TAKE_S, "s"))

    # DC is reported above; left in, it would pose as a noise floor. The median estimates it without
    # moving digital silence (a filter would smear each onset over tens of milliseconds).
    x = x - float(np.median(x))
    act = activity(x, sr)
    m.noise_floor_dbfs = db(act.noise_power)
    regions = act.regions
    active_power = act.frame_power[act.active]
    if len(active_power):
        p_active = float(np.mean(active_power))
        m.speech_level_dbfs = db(p_active)
        m.snr_db = db(max(p_active - act.noise_power, POWER_FLOOR)) - m.noise_floor_dbfs
    if regions:
        first, last = regions[0][0], regions[-1][1]
        m.leading_silence_s, m.trailing_silence_s = first, duration - last
        m.speech_activity = sum(b - a for a, b in regions) / duration
        gaps = [(regions[i][1], regions[i + 1][0] - regions[i][1]) for i in range(len(regions) - 1)]
        pauses = [g for g in gaps if g[1] >= PAUSE_MIN_S]
        m.longest_pause_s = max((g[1] for g in gaps), default=0.0)
        m.long_pauses = [[round(s, 3), round(d, 3)] for s, d in pauses if d >= LONG_PAUSE_S]
        m.speech_time_s = (last - first) - sum(d for _, d in pauses)

    measure_noise(x, sr, act, m, active_power, flags)
    measure_end(x, sr, act, m, flags)
    measure_loudness(x, sr, m, flags)
    if expect != "any":
        edge_silence(m, flags)
    if expect == "speech":
        speech_checks(x, sr, act, m, text, flags)
    return m
