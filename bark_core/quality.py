"""Automatic quality checks for a take: noise, clarity, loudness and (optionally) an ASR transcript.

Bark's scenarios end with "Check: clarity, noise, repeatability" and public use needs human
quality checks. A person still has to listen (see :mod:`bark_core.review`); this module tells them
where to listen and what to look for, with the figure behind every remark, so that a take with a
hallucinated tail, a hiss, a clipped peak or no speech at all is caught before anyone publishes it.

Every figure is defined precisely below, so it can be checked on constructed signals:

* Frames are 20 ms long every 10 ms; a frame's power is the mean of its squared samples and its
  level is ``10*log10(power)`` dBFS (so a full-scale sine reads -3 dBFS).
* **Noise level** ``P_noise``: the mean power of the "noise frames", those within
  :data:`NOISE_BAND_DB` of the 10th-percentile frame level (the quietest frames and their peers).
* **Active frames**: frames above ``max(noise level + ACTIVITY_MARGIN_DB, loud level - ACTIVITY_RANGE_DB)``,
  the loud level being the 95th-percentile frame level. Edges of active regions are refined on 5 ms
  blocks, so silences are measured to within a few milliseconds.
* **Speech-to-noise ratio** ``10*log10((P_active - P_noise) / P_noise)``, ``P_active`` being the mean
  power of the active frames: the power the speech adds over the background, relative to that
  background. For tone bursts in white noise it equals the tone-to-noise power ratio.

Thresholds are module constants with the reason for each; a report records the ones it used.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import Audio, load_artifact
from .audio_io import read_audio, resample
from .errors import BarkError

SCHEMA = "bark_core.quality/1"
EXPECT = ("speech", "music", "any")

# ---- analysis grid -----------------------------------------------------------------------------
FRAME_S = 0.020  # 20 ms: short enough to resolve syllables and pauses, long enough for a stable power
HOP_S = 0.010  # 10 ms: the usual speech-analysis hop; 100 frames a second
BLOCK_S = 0.005  # 5 ms blocks to place the edges of sounds and silences precisely
POWER_FLOOR = 1e-10  # -100 dBFS: below 16-bit resolution, so "digital silence" has a finite level

# ---- noise --------------------------------------------------------------------------------------
NOISE_PERCENTILE = 10  # speech leaves at least ~10 % of a take between words and phrases
NOISE_BAND_DB = 3.0  # frames within 3 dB of that level are background; steady noise varies < 1 dB per frame
LOUD_PERCENTILE = 95  # the "loud level": robust to a few clicks, unlike the maximum
ACTIVITY_MARGIN_DB = 6.0  # 6 dB above the background (4x its power) is clearly a sound of its own
ACTIVITY_RANGE_DB = 40.0  # more than 40 dB under the loud level is inaudible next to it: not speech
SNR_WARN_DB = 20.0  # below 20 dB the background is plainly audible under the speech
SNR_FAIL_DB = 10.0  # below 10 dB the background competes with the speech and words get lost
NOISE_FLOOR_WARN_DBFS = -50.0  # a background above -50 dBFS is heard in every pause at normal volume
HISS_FLOOR_DBFS = -60.0  # hiss under -60 dBFS meets the audiobook noise-floor limit (ACX), whatever its colour
HISS_BAND_HZ = (200.0, 8000.0)  # where hiss is heard; excludes hum and rumble below, codec cut-offs above
HISS_FLATNESS = 0.5  # pause spectra this flat are broadband hiss (white noise: ~1, hum or room tone: < 0.2)
CLIP_LEVEL = 0.999  # |x| >= 0.999 (-0.01 dBFS) counts as at full scale
CLIP_WARN_PCT = 0.01  # 0.01 %: more than a few isolated peaks at full scale, i.e. real clipping
CLIP_FAIL_PCT = 0.1  # 0.1 %: clipping this often is heard as crackle and distortion
DC_WARN = 0.01  # a mean of 1 % of full scale (-40 dBFS) wastes headroom and clicks at every cut
HUM_BASES_HZ = (50.0, 60.0)  # mains frequencies
HUM_HARMONICS = 4  # hum and its buzz: 50/100/150/200 Hz (60/120/180/240 Hz)
HUM_PEAK_DB = 10.0  # the mains fundamental must stand 10 dB over its neighbours: speech has no line there
HUM_WARN_DB = -35.0  # hum 35 dB under the whole take is still heard in pauses; stricter gives false alarms

# ---- speech or not ------------------------------------------------------------------------------
VOICING_THRESHOLD = 0.5  # normalised autocorrelation of a voiced frame (Praat uses 0.45); noise stays < 0.35
VOICED_MIN = 0.2  # speech is voiced in 30-70 % of its active frames; noise in ~0 %
MODULATION_MIN = 0.15  # speech's level swings at the syllable rate (2-8 Hz) by 30-60 %; steady noise by ~1 %
MUSIC_VOICED = 0.9  # pitched in 90 % of active frames: music or singing; speech has unvoiced consonants
FLATNESS_MAX = 0.3  # speech spectra are peaky (flatness 0.01-0.15); white noise ~0.55, pink noise ~0.3
SILENT_PEAK_DBFS = -60.0  # a take whose loudest sample is under -60 dBFS is heard as silence

# ---- clarity ------------------------------------------------------------------------------------
ACTIVITY_WARN = 0.3  # speech active in under 30 % of the take: mostly silence
EDGE_SILENCE_WARN_S = 1.0  # more than 1 s of silence before or after the speech is dead air
LONG_PAUSE_S = 1.5  # sentence pauses last 0.3-1 s; longer gaps are Bark's dropouts or hallucinated waits
PAUSE_MIN_S = 0.25  # gaps under 0.25 s are stop closures and breaths, part of speaking (articulation rate)
MIN_REGION_S = 0.03  # isolated sounds under 30 ms are clicks, not speech
RATE_SLOW = 2.0  # syllables per second of speech: even slow reading is ~3; under 2 means extra sound
RATE_FAST = 8.0  # fast speech peaks near 7; over 8 means words were skipped or the text was cut
END_WINDOW_S = 0.020  # the last 20 ms decide whether the take ends in silence
ABRUPT_END_DB = -20.0  # ending within 20 dB of the speech level means it stops mid-sound
SHORT_TAKE_S = 0.5  # shorter than one word: most likely a failed generation

# ---- loudness (ITU-R BS.1770 / EBU R128) --------------------------------------------------------
LOUDNESS_QUIET_LUFS = -35.0  # 12 dB under broadcast's -23 LUFS: listeners must turn it far up
LOUDNESS_LOUD_LUFS = -9.0  # 5 dB over streaming's -14 LUFS: squashed, fatiguing, likely clipped
LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating blocks are 400 ms; shorter audio has no integrated loudness

# ---- ASR ------------------------------------------------------------------------------------------
ASR_RATE = 16_000  # pocketsphinx's bundled en-us model is trained at 16 kHz
ASR_WER_INFO = 0.5  # above this the transcript differs a lot; pocketsphinx alone often gets 0.3-0.9

THRESHOLDS: dict[str, float] = {
    name: value
    for name, value in globals().items()
    if name.isupper() and isinstance(value, (int, float)) and not isinstance(value, bool)
}

SEVERITIES = ("info", "warn", "fail")


class QualityError(BarkError, ValueError):
    """A quality check cannot run on the input as given."""


# --------------------------------------------------------------------------------------------------
# Report types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One finding: a code for programs, a sentence for people, and the figure that triggered it."""

    code: str
    severity: str
    message: str
    value: float | None = None
    threshold: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Flag severity must be one of {SEVERITIES}, got {self.severity!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Metrics:
    """Every measured figure; ``None`` where it does not apply (e.g. no text given)."""

    duration_s: float
    sample_rate: int
    peak_dbfs: float
    rms_dbfs: float
    dc_offset: float
    clipped_pct: float
    noise_floor_dbfs: float
    speech_level_dbfs: float | None = None
    snr_db: float | None = None
    hum_db: float | None = None
    hum_hz: float | None = None
    pause_flatness: float | None = None
    hiss_dbfs: float | None = None
    speech_activity: float = 0.0
    leading_silence_s: float | None = None
    trailing_silence_s: float | None = None
    longest_pause_s: float = 0.0
    long_pauses: list[list[float]] = field(default_factory=list)
    speech_time_s: float = 0.0
    text_syllables: int | None = None
    text_chars: int | None = None
    syllables_per_s: float | None = None
    chars_per_s: float | None = None
    end_level_db: float | None = None
    loudness_lufs: float | None = None
    voiced_ratio: float | None = None
    spectral_flatness: float | None = None
    syllabic_modulation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _round(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class QualityReport:
    """What :func:`check` found. ``passed`` is False when any flag has severity "fail"."""

    source: str
    metrics: Metrics
    flags: list[Flag] = field(default_factory=list)
    expect: str = "speech"
    artifact_id: str | None = None
    text_source: str | None = None
    asr: dict[str, Any] | None = None
    checked_at: str = field(default_factory=lambda: _utc_now())
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))

    @property
    def passed(self) -> bool:
        return not any(f.severity == "fail" for f in self.flags)

    def codes(self, severity: str | None = None) -> list[str]:
        return [f.code for f in self.flags if severity is None or f.severity == severity]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "source": self.source,
            "artifact_id": self.artifact_id,
            "expect": self.expect,
            "text_source": self.text_source,
            "passed": self.passed,
            "flags": [f.to_dict() for f in self.flags],
            "metrics": self.metrics.to_dict(),
            "asr": self.asr,
            "checked_at": self.checked_at,
            "thresholds": self.thresholds,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def summary(self) -> dict[str, Any]:
        """The few figures that belong in a file's label metadata (small, no text, no transcript)."""
        m = self.metrics
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "passed": self.passed,
            "fail": self.codes("fail"),
            "warn": self.codes("warn"),
            "duration_s": _round(m.duration_s),
            "snr_db": _round(m.snr_db),
            "loudness_lufs": _round(m.loudness_lufs),
            "speech_activity": _round(m.speech_activity),
            "clipped_pct": _round(m.clipped_pct),
            "checked_at": self.checked_at,
        }
        if self.asr and self.asr.get("wer") is not None:
            out["asr_wer_approx"] = _round(self.asr["wer"])
        return out

    def to_text(self) -> str:
        """A report for people: verdict, flags with their figures, then the measurements."""
        m = self.metrics
        verdict = "PASSED" if self.passed else "FAILED"
        n_warn = len(self.codes("warn"))
        lines = [f"{self.source}: {verdict} ({len(self.codes('fail'))} fail, {n_warn} warn) - expect {self.expect}"]
        for f in sorted(self.flags, key=lambda f: SEVERITIES.index(f.severity), reverse=True):
            lines.append(f"  [{f.severity}] {f.code}: {f.message}")

        def fmt(v: Any, unit: str = "", nd: int = 1) -> str:
            return "n/a" if v is None else f"{v:.{nd}f}{unit}"

        digital_silence = m.noise_floor_dbfs <= _db(0.0) + 0.05
        floor = "digital silence" if digital_silence else fmt(m.noise_floor_dbfs, " dBFS")
        snr = fmt(m.snr_db, " dB") if not digital_silence or m.snr_db is None else f">= {m.snr_db:.0f} dB"
        hum = "none" if m.hum_db is None else f"{m.hum_db:.1f} dB @{m.hum_hz:.0f} Hz"
        lines += [
            f"  noise:   floor {floor}, speech-to-noise {snr}, hum {hum}, "
            f"pause flatness {fmt(m.pause_flatness, '', 2)}, clipped {m.clipped_pct:.3f} %, DC {m.dc_offset:+.4f}",
            "  clarity: "
            f"duration {m.duration_s:.2f} s, speech {m.speech_time_s:.2f} s (activity {m.speech_activity:.0%}), "
            f"silence lead {fmt(m.leading_silence_s, ' s', 2)} / tail {fmt(m.trailing_silence_s, ' s', 2)}, "
            f"longest pause {m.longest_pause_s:.2f} s, end level {fmt(m.end_level_db, ' dB')}",
            "  speech:  "
            f"rate {fmt(m.syllables_per_s, ' syll/s')} ({fmt(m.chars_per_s, ' chars/s')}), "
            f"voiced {fmt(m.voiced_ratio, '', 2)}, syllabic modulation {fmt(m.syllabic_modulation, '', 2)}, "
            f"spectral flatness {fmt(m.spectral_flatness, '', 2)}",
            f"  level:   loudness {fmt(m.loudness_lufs, ' LUFS')}, peak {fmt(m.peak_dbfs, ' dBFS')}, "
            f"RMS {fmt(m.rms_dbfs, ' dBFS')}",
        ]
        if self.asr is not None:
            if self.asr.get("available"):
                wer = self.asr.get("wer")
                lines.append(
                    f"  asr (approximate, {self.asr.get('engine')}): \"{self.asr.get('transcript', '')}\""
                    + ("" if wer is None else f", WER {wer:.2f}")
                )
            else:
                lines.append(f"  asr: not run ({self.asr.get('note')})")
        return "\n".join(lines)


def _round(v: Any, nd: int = 4) -> Any:
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, nd)
    if isinstance(v, list):
        return [_round(x, nd) for x in v]
    return v


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------------


def _db(power: float) -> float:
    return 10.0 * math.log10(max(float(power), POWER_FLOOR))


def _frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    n = 1 + (len(x) - length) // hop
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop][:n]


def _frame_power(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Mean square per frame from a running sum: no frames x samples matrix for long takes."""
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    n = 1 + (len(x) - length) // hop
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n) * hop
    return np.maximum(cs[starts + length] - cs[starts], 0.0) / length


@dataclass
class _Activity:
    frame_power: np.ndarray
    frame_level: np.ndarray
    noise_power: float
    threshold_db: float
    active: np.ndarray
    noise: np.ndarray
    regions: list[tuple[float, float]]  # seconds, refined edges


def _activity(x: np.ndarray, sr: int) -> _Activity:
    flen, hop, blen = max(1, round(FRAME_S * sr)), max(1, round(HOP_S * sr)), max(1, round(BLOCK_S * sr))
    power = _frame_power(x, flen, hop)
    level = 10.0 * np.log10(np.maximum(power, POWER_FLOOR))
    floor = float(np.percentile(level, NOISE_PERCENTILE))
    noise = level <= floor + NOISE_BAND_DB
    noise_power = float(np.mean(power[noise]))
    loud = float(np.percentile(level, LOUD_PERCENTILE))
    thr = max(_db(noise_power) + ACTIVITY_MARGIN_DB, loud - ACTIVITY_RANGE_DB)
    active = level > thr
    nb = len(x) // blen
    block_power = np.mean(x[: nb * blen].reshape(nb, blen) ** 2, axis=1) if nb else np.zeros(0)
    thr_power = 10.0 ** (thr / 10.0)
    regions: list[tuple[float, float]] = []
    idx = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    for a, b in zip(idx[::2], idx[1::2], strict=True):  # frames a..b-1 are active
        s0, s1 = a * hop, min(len(x), (b - 1) * hop + flen)
        blocks = np.arange(s0 // blen, min(nb, -(-s1 // blen)))
        loud_blocks = blocks[block_power[blocks] >= thr_power] if len(blocks) else blocks
        if len(loud_blocks):
            start = max(s0, loud_blocks[0] * blen)
            end = min(s1, (loud_blocks[-1] + 1) * blen)
        else:
            start, end = s0, s1
        if (end - start) / sr >= MIN_REGION_S:
            regions.append((start / sr, end / sr))
    return _Activity(power, level, noise_power, thr, active, noise, regions)


def _psd(x: np.ndarray, sr: int, nper: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch's averaged Hann periodogram (50 % overlap), in batches so long files stay small in memory."""
    win = np.hanning(nper)
    hop = max(1, nper // 2)
    segments = np.lib.stride_tricks.sliding_window_view(x, nper)[::hop]
    total = np.zeros(nper // 2 + 1)
    for i in range(0, len(segments), 32):
        seg = segments[i:i + 32]
        seg = (seg - seg.mean(axis=1, keepdims=True)) * win
        total += np.sum(np.abs(np.fft.rfft(seg, axis=1)) ** 2, axis=0)
    return np.fft.rfftfreq(nper, 1 / sr), total / (max(1, len(segments)) * sr * float(np.sum(win * win)))


def _hum(x: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """Mains hum power over total power (dB) and its base frequency, or (None, None) when absent."""
    if len(x) < sr // 4:
        return None, None
    freqs, psd = _psd(x, sr, min(len(x), sr))  # 1 Hz bins for takes of a second or more
    total = float(np.sum(psd))
    if total <= 0:
        return None, None
    df = float(freqs[1] - freqs[0])
    best: tuple[float, float] | None = None
    for base in HUM_BASES_HZ:
        hum, fundamental_ok = 0.0, False
        for k in range(1, HUM_HARMONICS + 1):
            f = k * base
            if f >= sr / 2:
                break
            near = np.abs(freqs - f)
            peak = near <= max(2.0, df)
            ring = (near > max(4.0, 2 * df)) & (near <= max(20.0, 6 * df))
            if not peak.any() or not ring.any():
                continue
            background = float(np.median(psd[ring]))
            excess = float(np.sum(psd[peak]) - background * peak.sum())
            if k == 1:
                fundamental_ok = float(np.max(psd[peak])) >= background * 10 ** (HUM_PEAK_DB / 10)
            hum += max(excess, 0.0)
        if fundamental_ok and hum > 0:
            ratio_db = 10 * math.log10(hum / total)
            if best is None or ratio_db > best[0]:
                best = (ratio_db, base)
    return best if best is not None else (None, None)


def _spectra(frames: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Hann power spectra in a band, scaled so a row sums to the frame's mean power in that band."""
    win = np.hanning(frames.shape[1])
    n_fft = 1 << max(1, int(math.ceil(math.log2(frames.shape[1]))))
    spec = np.abs(np.fft.rfft(frames * win, n=n_fft, axis=1)) ** 2 * (2.0 / (n_fft * float(np.sum(win * win))))
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    band = (freqs >= lo) & (freqs <= min(hi, 0.45 * sr))
    return spec[:, band]


def _flatness(spec: np.ndarray) -> np.ndarray:
    spec = spec + 1e-20
    return np.exp(np.mean(np.log(spec), axis=-1)) / np.mean(spec, axis=-1)


def _pick(idx: np.ndarray, limit: int) -> np.ndarray:
    return idx if len(idx) <= limit else idx[np.linspace(0, len(idx) - 1, limit).astype(int)]


def _voiced_ratio(x: np.ndarray, sr: int, centres_s: np.ndarray) -> float | None:
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


def _syllabic_modulation(frame_power: np.ndarray) -> float | None:
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


_CUE = re.compile(r"\[[^\]]*\]")
_VOWELS = re.compile(r"[aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœаеёиоуыэюяіїєαεηιουω]+", re.IGNORECASE)


def text_syllables(text: str) -> tuple[int, int]:
    """Estimated syllables and letter count of the spoken text (cues like [laughs] removed).

    Latin, Cyrillic and Greek words count vowel groups (a silent final "e" dropped); CJK ideographs,
    kana and Hangul count one syllable each; digits count one each. An estimate, good to ~15 %.
    """
    spoken = _CUE.sub(" ", text).replace("♪", " ")
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


def _loudness(x: np.ndarray, sr: int) -> tuple[float | None, str | None]:
    """Integrated loudness (LUFS) through pyloudnorm, or the reason there is none."""
    try:
        import pyloudnorm
    except ImportError:
        return None, "pyloudnorm is not installed (pip install pyloudnorm); loudness was not measured."
    if len(x) < LOUDNESS_BLOCK_S * sr:
        return None, f"the take is shorter than the {LOUDNESS_BLOCK_S:g} s BS.1770 block; loudness is undefined."
    value = float(pyloudnorm.Meter(sr).integrated_loudness(np.asarray(x, dtype=np.float64)))
    if not math.isfinite(value):
        return None, "the take is below the BS.1770 absolute gate (-70 LUFS); loudness is undefined."
    return value, None


# --------------------------------------------------------------------------------------------------
# ASR
# --------------------------------------------------------------------------------------------------


_SPHINX_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _sphinx_decoder() -> Any:
    from pocketsphinx import Config, Decoder

    return Decoder(Config(loglevel="FATAL", samprate=ASR_RATE))


def _words(text: str) -> list[str]:
    text = _CUE.sub(" ", text).replace("♪", " ").lower()
    return re.findall(r"[\w']+", text)


def word_error_rate(reference: str, hypothesis: str) -> float | None:
    """(substitutions + deletions + insertions) / reference words, after lower-casing and dropping cues."""
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return None
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


def transcribe(samples: np.ndarray, sample_rate: int, text: str | None = None) -> dict[str, Any]:
    """Offline transcript with pocketsphinx's bundled English model; approximate by design.

    Never raises for a missing recogniser: the result says it was not available, so a report can
    still be made on machines without it.
    """
    try:
        from importlib.metadata import version

        import pocketsphinx  # noqa: F401

        engine = f"pocketsphinx {version('pocketsphinx')} (bundled en-us model)"
    except ImportError:
        return {"available": False, "engine": "pocketsphinx", "approximate": True,
                "note": "pocketsphinx is not installed (pip install pocketsphinx); no transcript was made."}
    y = resample(samples, sample_rate, ASR_RATE)
    pcm = (np.clip(y, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    with _SPHINX_LOCK:  # one shared decoder: loading the model costs more than decoding a take
        decoder = _sphinx_decoder()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        transcript = hyp.hypstr if hyp is not None else ""
    out: dict[str, Any] = {
        "available": True,
        "engine": engine,
        "approximate": True,
        "transcript": transcript,
        "wer": None if text is None else word_error_rate(text, transcript),
        "note": "Approximate: a small offline English recogniser; use it to spot gross errors, not to grade takes.",
    }
    if text is not None and any(ord(ch) > 0x24F for ch in _CUE.sub("", text) if ch.isalpha()):
        out["note"] += " The text is not in Latin script, so the English model's WER is meaningless here."
    return out


# --------------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------------


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
    if expect not in EXPECT:
        raise QualityError(f"expect must be one of {', '.join(EXPECT)}, got {expect!r}.")
    samples, sr, source, art_id, art = _load(audio)
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
                rms_dbfs=_db(rms_power), dc_offset=dc, clipped_pct=clipped, noise_floor_dbfs=-100.0)

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
    act = _activity(x, sr)
    m.noise_floor_dbfs = _db(act.noise_power)
    regions = act.regions
    active_power = act.frame_power[act.active]
    if len(active_power):
        p_active = float(np.mean(active_power))
        m.speech_level_dbfs = _db(p_active)
        m.snr_db = _db(max(p_active - act.noise_power, POWER_FLOOR)) - m.noise_floor_dbfs
    if regions:
        first, last = regions[0][0], regions[-1][1]
        m.leading_silence_s, m.trailing_silence_s = first, duration - last
        m.speech_activity = sum(b - a for a, b in regions) / duration
        gaps = [(regions[i][1], regions[i + 1][0] - regions[i][1]) for i in range(len(regions) - 1)]
        pauses = [g for g in gaps if g[1] >= PAUSE_MIN_S]
        m.longest_pause_s = max((g[1] for g in gaps), default=0.0)
        m.long_pauses = [[round(s, 3), round(d, 3)] for s, d in pauses if d >= LONG_PAUSE_S]
        m.speech_time_s = (last - first) - sum(d for _, d in pauses)
    hop = max(1, round(HOP_S * sr))
    flen = max(1, round(FRAME_S * sr))

    # noise
    m.hum_db, m.hum_hz = _hum(x, sr)
    noise_idx = np.flatnonzero(act.noise & ~act.active)
    if len(noise_idx) >= 5 and m.noise_floor_dbfs > -100 + 1:
        pause_spec = np.mean(_spectra(_frames(x, flen, hop)[_pick(noise_idx, 400)], sr, HISS_BAND_HZ[0],
                                      HISS_BAND_HZ[1]), axis=0)
        m.pause_flatness = float(_flatness(pause_spec))
        m.hiss_dbfs = _db(float(np.sum(pause_spec)))
    if m.snr_db is not None and m.snr_db < SNR_WARN_DB:
        sev = "fail" if m.snr_db < SNR_FAIL_DB else "warn"
        flags.append(Flag("low_snr", sev, f"The speech stands only {m.snr_db:.1f} dB above the background noise; "
                          "the noise will be heard under the voice.", m.snr_db,
                          SNR_FAIL_DB if sev == "fail" else SNR_WARN_DB, "dB"))
    if m.noise_floor_dbfs > NOISE_FLOOR_WARN_DBFS and len(active_power):
        flags.append(Flag("noise_floor", "warn", f"The background between words is at {m.noise_floor_dbfs:.1f} dBFS, "
                          "loud enough to hear in every pause.", m.noise_floor_dbfs, NOISE_FLOOR_WARN_DBFS, "dBFS"))
    if (m.pause_flatness is not None and m.hiss_dbfs is not None and m.pause_flatness >= HISS_FLATNESS
            and m.hiss_dbfs > HISS_FLOOR_DBFS):
        flags.append(Flag("hiss", "warn", f"The pauses hold broadband hiss at {m.hiss_dbfs:.1f} dBFS (spectral "
                          f"flatness {m.pause_flatness:.2f}); a denoiser or another seed may help.",
                          m.hiss_dbfs, HISS_FLOOR_DBFS, "dBFS"))
    if m.hum_db is not None and m.hum_db > HUM_WARN_DB:
        flags.append(Flag("hum", "warn", f"Mains hum at {m.hum_hz:.0f} Hz and harmonics, {m.hum_db:.1f} dB relative "
                          "to the whole take; remove it with a notch filter.", m.hum_db, HUM_WARN_DB, "dB"))

    # end of the take: measured against the speech level, or for a steady sound against its own level
    tail_db = _db(float(np.mean(x[-max(1, round(END_WINDOW_S * sr)):] ** 2)))
    steady = m.speech_level_dbfs is None
    reference = float(np.percentile(act.frame_level, LOUD_PERCENTILE)) if steady else m.speech_level_dbfs
    m.end_level_db = tail_db - reference
    if m.end_level_db > ABRUPT_END_DB and (steady or tail_db > act.threshold_db):
        flags.append(Flag("abrupt_end", "warn", f"The take ends mid-sound: its last 20 ms are only "
                          f"{max(0.0, -m.end_level_db):.1f} dB under the {'sound' if steady else 'speech'} level. "
                          "Words may be cut off; regenerate or add a fade-out.", m.end_level_db, ABRUPT_END_DB, "dB"))

    # loudness
    m.loudness_lufs, why = _loudness(x, sr)
    if m.loudness_lufs is None:
        flags.append(Flag("loudness_unmeasured", "info", f"No integrated loudness: {why}"))
    elif m.loudness_lufs < LOUDNESS_QUIET_LUFS:
        flags.append(Flag("too_quiet", "warn", f"Integrated loudness {m.loudness_lufs:.1f} LUFS is very low; "
                          "normalise on export (broadcast uses -23, streaming -14 LUFS).",
                          m.loudness_lufs, LOUDNESS_QUIET_LUFS, "LUFS"))
    elif m.loudness_lufs > LOUDNESS_LOUD_LUFS:
        flags.append(Flag("too_loud", "warn", f"Integrated loudness {m.loudness_lufs:.1f} LUFS is very high; "
                          "lower it (streaming uses -14 LUFS).", m.loudness_lufs, LOUDNESS_LOUD_LUFS, "LUFS"))

    if expect != "any":
        if m.leading_silence_s is not None and m.leading_silence_s > EDGE_SILENCE_WARN_S:
            flags.append(Flag("leading_silence", "warn", f"{m.leading_silence_s:.2f} s of silence before the first "
                              "sound; trim it.", m.leading_silence_s, EDGE_SILENCE_WARN_S, "s"))
        if m.trailing_silence_s is not None and m.trailing_silence_s > EDGE_SILENCE_WARN_S:
            flags.append(Flag("trailing_silence", "warn", f"{m.trailing_silence_s:.2f} s of silence after the last "
                              "sound; trim it.", m.trailing_silence_s, EDGE_SILENCE_WARN_S, "s"))
    if expect == "speech":
        _speech_checks(x, sr, act, m, text, flags)
    return m


def _speech_checks(x: np.ndarray, sr: int, act: _Activity, m: Metrics, text: str | None, flags: list[Flag]) -> None:
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
    frames = _frames(x, flen, hop)
    m.spectral_flatness = float(np.median(_flatness(_spectra(frames[_pick(use, 600)], sr, 100.0, 7000.0))))
    centres = (_pick(use, 600) * hop + flen / 2) / sr
    m.voiced_ratio = _voiced_ratio(x, sr, centres)
    m.syllabic_modulation = _syllabic_modulation(act.frame_power[span])

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
    figures = (f"voiced {_fmt(m.voiced_ratio, 2)} (speech >= {VOICED_MIN}), syllable-rate modulation "
               f"{_fmt(m.syllabic_modulation, 2)} (>= {MODULATION_MIN}), spectral flatness "
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


def _fmt(v: float | None, nd: int) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


# --------------------------------------------------------------------------------------------------
# Repeatability
# --------------------------------------------------------------------------------------------------

REPEAT_SCHEMA = "bark_core.repeatability/1"
VARIATION_METRICS = ("duration_s", "loudness_lufs", "snr_db", "speech_activity", "syllables_per_s")


@dataclass
class StageComparison:
    """Whether one stage gave the same output twice from the same seed, and where it first differed."""

    stage: str
    identical: bool
    first_id: str
    second_id: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RepeatabilityReport:
    """Same seed twice (must be identical) plus the spread of results across other seeds."""

    text: str
    seed: int
    identical: bool
    stages: list[StageComparison]
    differing_stage: str | None = None
    cache_bypassed: bool = False
    voice: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    takes: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    flag_counts: dict[str, int] = field(default_factory=dict)
    pass_rate: float | None = None
    checked_at: str = field(default_factory=lambda: _utc_now())

    @property
    def n_other_seeds(self) -> int:
        return max(0, len(self.seeds) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPEAT_SCHEMA,
            "text": self.text,
            "seed": self.seed,
            "identical": self.identical,
            "differing_stage": self.differing_stage,
            "stages": [s.to_dict() for s in self.stages],
            "cache_bypassed": self.cache_bypassed,
            "voice": self.voice,
            "settings": _plain(self.settings),
            "variation": {
                "n_other_seeds": self.n_other_seeds,
                "seeds": list(self.seeds),
                "takes": _plain(self.takes),
                "stats": _plain(self.stats),
                "flag_counts": dict(self.flag_counts),
                "pass_rate": _round(self.pass_rate),
            },
            "checked_at": self.checked_at,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """A plain verdict first, then the spread across seeds."""
        if self.identical:
            head = (f"Repeatable: seed {self.seed} gave identical semantic, coarse and fine tokens and identical "
                    "audio twice.")
        else:
            bad = next(s for s in self.stages if not s.identical)
            head = f"NOT repeatable: with seed {self.seed} the {bad.stage} stage differed ({bad.detail})."
        lines = [head]
        if len(self.seeds) > 1:
            lines.append(f"Across {len(self.seeds)} seeds ({', '.join(map(str, self.seeds))}), "
                         f"{_fmt(None if self.pass_rate is None else self.pass_rate * 100, 0)} % passed the check:")
            for name, st in self.stats.items():
                if st.get("n"):
                    lines.append(f"  {name}: mean {st['mean']:.2f}, std {st['std']:.2f}, "
                                 f"min {st['min']:.2f}, max {st['max']:.2f} (n={st['n']})")
            if self.flag_counts:
                lines.append("  flags: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.flag_counts.items())))
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _round(value.item())
    if isinstance(value, float):
        return _round(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)  # callables such as progress=, devices, generators


def _compare(stage: str, a: Any, b: Any) -> StageComparison:
    """Exact comparison; the detail says where the outputs part, as a clue to the cause."""
    if stage == "audio":
        x, y = a.samples, b.samples
        same = a.sample_rate == b.sample_rate and x.shape == y.shape and bool(np.array_equal(x, y))
        if same:
            detail = f"{len(x)} samples equal"
        elif x.shape != y.shape:
            detail = f"lengths differ: {len(x)} vs {len(y)} samples"
        else:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            detail = f"max |difference| {float(diff.max()):.3g}, first at sample {int(np.argmax(diff > 0))}"
        return StageComparison(stage, same, a.id, b.id, detail)
    x, y = (a.tokens, b.tokens) if stage == "semantic" else (a.codes, b.codes)
    same = x.shape == y.shape and bool(np.array_equal(x, y))
    if same:
        detail = f"shape {list(x.shape)} equal"
    elif x.shape != y.shape:
        detail = f"shapes differ: {list(x.shape)} vs {list(y.shape)}"
    else:
        frames = np.flatnonzero(np.any((x != y).reshape(-1, x.shape[-1]), axis=0))
        detail = f"first difference at frame {int(frames[0])} of {x.shape[-1]}"
    return StageComparison(stage, same, a.id, b.id, detail)


class _NoStageCache:
    """Take ``models.cache`` away for the duration, so the second run really recomputes."""

    def __init__(self, models: Any):
        self.models = models
        self.saved: Any = None
        self.had = hasattr(models, "cache")

    def __enter__(self) -> bool:
        if not self.had:
            return False
        self.saved = self.models.cache
        self.models.cache = None
        return self.saved is not None

    def __exit__(self, *exc: Any) -> None:
        if self.had:
            self.models.cache = self.saved


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"n": int(arr.size), "mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()),
            "max": float(arr.max())}


def repeatability(models: Any, text: str, voice: Any = None, *, seed: int, n_seeds: int = 0,
                  seeds: list[int] | None = None, expect: str = "speech", **generate_kwargs: Any
                  ) -> RepeatabilityReport:
    """Prove a take can be redone exactly, and show how much takes differ from seed to seed.

    The chain is generated twice with ``seed`` through :func:`bark_core.pipeline.generate`, with the
    stage cache switched off so both runs compute (the cache is restored afterwards; do not share
    ``models`` with another thread meanwhile). Tokens of every stage and the audio must be equal.
    Then the chain runs for ``seeds`` (or ``n_seeds`` seeds after ``seed``: seed+1, seed+2, ...), and
    the report gives mean/std/min/max of duration, loudness, speech-to-noise ratio, speech activity
    and speaking rate over all these takes (the first one included), and how often each flag came up.
    """
    from .pipeline import generate

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise QualityError(f"repeatability needs a non-negative integer seed (the one to redo), got {seed!r}.")
    if seeds is None:
        if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 0:
            raise QualityError(f"n_seeds must be a whole number >= 0, got {n_seeds!r}.")
        others = [int(seed) + 1 + i for i in range(n_seeds)]
    else:
        bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0]
        if bad:
            raise QualityError(f"seeds must be non-negative integers; {bad} are not.")
        others = [int(s) for s in dict.fromkeys(seeds) if int(s) != int(seed)]
    if expect not in EXPECT:
        raise QualityError(f"expect must be one of {', '.join(EXPECT)}, got {expect!r}.")

    with _NoStageCache(models) as bypassed:
        first = generate(models, text, voice, seed=int(seed), **generate_kwargs)
        second = generate(models, text, voice, seed=int(seed), **generate_kwargs)
    stages = [_compare(name, getattr(first, name), getattr(second, name))
              for name in ("semantic", "coarse", "fine", "audio")]
    differing = next((s.stage for s in stages if not s.identical), None)

    rows: list[dict[str, Any]] = []
    reports: list[QualityReport] = []
    for s in [int(seed), *others]:
        try:
            take = first if s == int(seed) else generate(models, text, voice, seed=s, **generate_kwargs)
        except BarkError as exc:  # one bad seed (e.g. an empty semantic take) must not hide the others
            rows.append({"seed": s, "error": str(exc)})
            continue
        rep = check(take.audio, text=text, expect=expect)
        reports.append(rep)
        row: dict[str, Any] = {"seed": s, "audio_id": take.audio.id, "passed": rep.passed, "flags": rep.codes()}
        row.update({k: getattr(rep.metrics, k) for k in VARIATION_METRICS})
        rows.append(row)

    counts: dict[str, int] = {}
    for rep in reports:
        for code in dict.fromkeys(rep.codes()):
            counts[code] = counts.get(code, 0) + 1
    stats = {k: _stats([r[k] for r in rows if r.get(k) is not None]) for k in VARIATION_METRICS}
    voice_label = first.audio.provenance.voice
    settings = {k: v for k, v in generate_kwargs.items() if k != "progress"}
    return RepeatabilityReport(
        text=text, seed=int(seed), identical=differing is None, stages=stages, differing_stage=differing,
        cache_bypassed=bool(bypassed), voice=voice_label, settings=settings, seeds=[int(seed), *others],
        takes=rows, stats=stats, flag_counts=counts,
        pass_rate=(sum(r.passed for r in reports) / len(reports)) if reports else None,
    )
