"""Speech: is it speech at all (voicing, syllable-rate swings, a peaky spectrum), and does its pace fit the text?"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np

from ..audio_io import resample
from .report import Flag, Metrics
from .signal import Activity, flatness, frames, pick, spectra
from .thresholds import (
    ACTIVITY_WARN,
    FLATNESS_MAX,
    FRAME_S,
    HOP_S,
    LONG_PAUSE_S,
    MODULATION_MIN,
    MUSIC_VOICED,
    RATE_FAST,
    RATE_SLOW,
    VOICED_MIN,
    VOICING_THRESHOLD,
)

CUE = re.compile(r"\[[^\]]*\]")
_VOWELS = re.compile(r"[aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœаеёиоуыэюяіїєαεηιουω]+", re.IGNORECASE)


def voiced_ratio(x: np.ndarray, sr: int, centres_s: np.ndarray) -> float | None:
    """Share of frames with a periodic (pitched) waveform at 60-400 Hz: speech is, noise is not."""
    if not len(centres_s):
        return None
    rate = 8000
    y = resample(x, sr, rate)
    y = np.append(y[0], y[1:] - 0.97 * y[:-1])  # pre-emphasis: keeps rumble and pink noise from looking periodic
    n = int(0.060 * rate)
    lag_lo, lag_hi = rate // 400, rate // 60
    win = np.hanning(n)
    wr = np.fft.irfft(np.abs(np.fft.rfft(win, 2 * n)) ** 2)[: lag_hi + 1]
    wr = wr / wr[0]
    starts = np.clip((centres_s * rate).astype(int) - n // 2, 0, max(0, len(y) - n))
    if len(y) < n:
        return None
    frames = np.stack([y[s:s + n] for s in starts])
    frames = (frames - frames.mean(axis=1, keepdims=True)) * win
    r = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * n, axis=1)) ** 2, axis=1)[:, : lag_hi + 1]
    energy = r[:, 0]
    ok = energy > 1e-12
    if not ok.any():
        return 0.0
    norm = r[ok, lag_lo:] / energy[ok, None] / wr[None, lag_lo:]
    return float(np.mean(np.max(norm, axis=1) >= VOICING_THRESHOLD) * ok.mean())


def syllabic_modulation(frame_power: np.ndarray) -> float | None:
    """RMS depth of the 2-8 Hz swing of the amplitude envelope, relative to its mean."""
    env = np.sqrt(frame_power)
    n = len(env)
    if n < 25 or env.mean() <= 0:  # < 0.25 s: not even the 4 and 8 Hz bins
        return None
    e = env / env.mean() - 1.0
    spec = np.fft.rfft(e)
    freqs = np.fft.rfftfreq(n, HOP_S)
    band = (freqs >= 2.0) & (freqs <= 8.0)
    return float(math.sqrt(2.0 * np.sum(np.abs(spec[band]) ** 2)) / n)


def text_syllables(text: str) -> tuple[int, int]:
    """Estimated syllables and letter count of the spoken text (cues like [laughs] removed).

    Latin, Cyrillic and Greek words count vowel groups (a silent final "e" dropped); CJK ideographs,
    kana and Hangul count one syllable each; digits count one each. An estimate, good to ~15 %.
    """
    spoken = CUE.sub(" ", text).replace("♪", " ")
    chars = sum(1 for ch in spoken if ch.isalnum())
    total = 0
    for word in re.findall(r"\w+", spoken):
        cjk = sum(1 for ch in word if _is_syllabic_script(ch))
        digits = sum(ch.isdigit() for ch in word)
        rest = "".join(ch for ch in word if not _is_syllabic_script(ch) and not ch.isdigit())
        n = cjk + digits
        if rest:
            groups = len(_VOWELS.findall(rest))
            if groups > 1 and rest.lower().endswith("e") and not rest.lower().endswith(("le", "ee")):
                groups -= 1
            if groups == 0 and any(ch.isalpha() for ch in rest):
                groups = max(1, round(len(rest) / 3))  # scripts without listed vowels: ~3 letters a syllable
            n += groups
        total += n
    return total, chars


def _is_syllabic_script(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("CJK UNIFIED", "HIRAGANA", "KATAKANA", "HANGUL SYLLABLE"))


def speech_checks(x: np.ndarray, sr: int, act: Activity, m: Metrics, text: str | None, flags: list[Flag]) -> None:
    hop = max(1, round(HOP_S * sr))
    flen = max(1, round(FRAME_S * sr))
    regions = act.regions
    if regions:
        a, b = int(regions[0][0] / HOP_S), int(math.ceil(regions[-1][1] / HOP_S))
        span = np.arange(max(0, a), min(len(act.frame_power), max(a + 1, b)))
    else:
        span = np.arange(len(act.frame_power))
    active_idx = np.flatnonzero(act.active)
    use = active_idx if len(active_idx) >= 10 else span
    framed = frames(x, flen, hop)
    m.spectral_flatness = float(np.median(flatness(spectra(framed[pick(use, 600)], sr, 100.0, 7000.0))))
    centres = (pick(use, 600) * hop + flen / 2) / sr
    m.voiced_ratio = voiced_ratio(x, sr, centres)
    m.syllabic_modulation = syllabic_modulation(act.frame_power[span])

    if m.voiced_ratio is None and m.syllabic_modulation is None:
        flags.append(Flag("speech_unchecked", "info", "Too short to tell speech from noise (needs 0.25 s of sound)."))
    else:
        _speech_cues(m, flags)
    if m.speech_activity < ACTIVITY_WARN and regions:
        flags.append(Flag("low_activity", "warn", f"Sound is present in only {m.speech_activity:.0%} of the take.",
                          m.speech_activity, ACTIVITY_WARN))
    for start, dur in m.long_pauses:
        flags.append(Flag("long_pause", "warn", f"A {dur:.2f} s silence at {start:.2f} s: a dropout or a "
                          "hallucinated pause.", dur, LONG_PAUSE_S, "s"))
    if text is None:
        return
    syl, chars = text_syllables(text)
    m.text_syllables, m.text_chars = syl, chars
    if "♪" in text:
        flags.append(Flag("sung_text", "info", "The text is sung (♪), so the speaking-rate check was skipped."))
        return
    if m.speech_time_s <= 0 or syl == 0:
        return
    m.syllables_per_s = syl / m.speech_time_s
    m.chars_per_s = chars / m.speech_time_s
    if m.syllables_per_s < RATE_SLOW:
        flags.append(Flag("slow_rate", "warn", f"{syl} syllables of text take {m.speech_time_s:.2f} s of speech "
                          f"({m.syllables_per_s:.1f}/s): the take holds more sound than the text needs "
                          "(hallucinated speech, babble or stretched words).", m.syllables_per_s, RATE_SLOW,
                          "syll/s"))
    elif m.syllables_per_s > RATE_FAST:
        flags.append(Flag("fast_rate", "warn", f"{syl} syllables of text in {m.speech_time_s:.2f} s of speech "
                          f"({m.syllables_per_s:.1f}/s): words were probably skipped or the text was cut.",
                          m.syllables_per_s, RATE_FAST, "syll/s"))


def _speech_cues(m: Metrics, flags: list[Flag]) -> None:
    """Speech, or noise and music? Syllable-rate swings and voicing are necessary; flat spectra and
    all-voiced takes are suspicious."""
    # a cue that cannot be measured (syllable rate needs 0.25 s) counts neither for nor against speech
    voiced = m.voiced_ratio is None or m.voiced_ratio >= VOICED_MIN
    syllabic = m.syllabic_modulation is None or m.syllabic_modulation >= MODULATION_MIN
    peaky = m.spectral_flatness <= FLATNESS_MAX
    figures = (f"voiced {fmt(m.voiced_ratio, 2)} (speech >= {VOICED_MIN}), syllable-rate modulation "
               f"{fmt(m.syllabic_modulation, 2)} (>= {MODULATION_MIN}), spectral flatness "
               f"{m.spectral_flatness:.2f} (<= {FLATNESS_MAX})")
    if not syllabic or not voiced:
        if not syllabic:
            kind = "a steady sound (noise, hum, a drone or held notes)"
        else:
            kind = "noise" if not peaky else "unvoiced noise or whispering"
        flags.append(Flag("not_speech", "fail", f"This sounds like {kind}, not speech: {figures}. Regenerate with "
                          "another seed, or pass expect='music' if music or effects were intended.",
                          m.syllabic_modulation if not syllabic else m.voiced_ratio,
                          MODULATION_MIN if not syllabic else VOICED_MIN))
    elif not peaky:
        flags.append(Flag("maybe_not_speech", "warn", f"The spectrum is as flat as noise's: {figures}. Listen for "
                          "noise under or instead of the voice.", m.spectral_flatness, FLATNESS_MAX))
    elif m.voiced_ratio is not None and m.voiced_ratio >= MUSIC_VOICED:
        flags.append(Flag("maybe_music", "warn", f"Pitched {m.voiced_ratio:.0%} of the time, as music or singing is "
                          "(speech has unvoiced consonants and is voiced 30-70 % of the time). Listen for music.",
                          m.voiced_ratio, MUSIC_VOICED))


def fmt(v: float | None, nd: int) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"
