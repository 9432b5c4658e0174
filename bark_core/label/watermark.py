"""A keyed, zero-bit, weight-free watermark that marks every waveform bark_core publishes.

Metadata tags vanish as soon as a file is re-encoded or pasted into an editor; the waveform itself
has to say "synthetic" too. The mark is plain spread-spectrum noise, so it needs no learned
weights, runs in a few milliseconds on one CPU core, and its false-positive rate follows from
arithmetic rather than from a calibration set.

Design (``bark_core-ss-v1``):

* **Carrier.** A period of ``PERIOD`` samples at 24 kHz whose spectrum is i.i.d. complex Gaussian
  in ``BAND_HZ`` (250 Hz - 7 kHz; twice the amplitude in 250-600 Hz since 2026-11-30, which the
  detector's template follows: flat first-release marks lose 2 % of their score) and zero
  elsewhere, drawn from a numpy ``Generator`` seeded by SHA-256 of the key. The carrier repeats,
  so any excerpt contains whole periods at an unknown phase: crops and codec delay become a lag.
* **Embedding.** ``w(t) = g * env(t) ** 0.75 * carrier(t mod PERIOD)``, where ``env`` is the 20 ms
  RMS envelope of the host and ``g`` sets the mark-to-signal power ratio to exactly
  ``strength_db`` (default -40.5 dB: the 40 dB rule with half a dB to spare; -41 dB until
  2026-11-30). The mark thus follows the speech and is absent in digital silence; where adding
  it would push a sample past ``max(|x|, 0.99)`` it is clipped back, so it never creates
  clipping, and the rest is scaled up until the mark again has the full power budget.
* **Detection.** The received signal is resampled to 24 kHz and whitened in a short-time Fourier
  domain (each cell divided by its smoothed power plus a per-frame floor, then weighted by the
  frame level to the power 1.25: loud frames are what low-rate codecs keep), folded modulo
  ``PERIOD`` and circularly correlated with the carrier for every lag at once with one FFT.
* **Statistic and bound.** For any fixed received signal and a carrier independent of it (an
  unmarked clip, or a clip marked with another key), the correlation at each lag is exactly
  Gaussian with a variance computable from the folded spectrum, i.e. a standard normal z-value
  per lag. Two tests share the false-positive budget (Bonferroni): the lags within
  ``NEAR_LAGS`` samples of zero (whole files, resampled, filtered, noisy or re-encoded without
  delay: the common case, where searching only ``2 * NEAR_LAGS + 1`` lags buys a lower
  threshold), and all ``PERIOD`` lags (crops, codec delays). ``score`` is the combined evidence
  expressed as the z-value that a search over all lags would need for the same p-value, so
  ``P(false positive) <= PERIOD * Q(threshold)`` still holds for any threshold; the default makes
  that 1e-4 per file (z > 5.70; 4.44 at the near lags), ten times inside the 1e-3 the project
  accepts (exact for any received signal: no calibration set). Until 2026-11-30 the default was
  1e-6 (``threshold=6.44``). Marks written before (at -41 dB, flat, or before the two-test
  detector) are the same carrier and are detected the same way.
* **Clipped hosts.** Audio with clipped plateaus (5 % of samples within 3 % of the peak, judged
  from the audio alone) gets a third test with 5 % of the budget: the residual ``y - peak`` on
  the plateau samples, where the clip guard left the mark host-free, correlated over all lags.

Limits: in speech and music the mark survives MP3, AAC and Opus coding down to 32-64 kbit/s,
cropping, added noise, gain changes, resampling to 8 kHz and a 4 kHz low-pass in nearly all clips
(whispers are the misses; figures in docs/label.md), but it is not tamper-proof (someone with the
key can subtract it; heavier filtering, louder noise or pitch changes can remove it). Speed changes
(e.g. x1.25) are out of scope: the detector does not search over time scales. On a flat noise host
a -40.5 dB mark carries little information (the score grows like 0.009 * sqrt(samples)): white
noise shorter than about 15 s is not reliably detected. Hard-clipped noisy speech is found from its
plateaus as written, cropped or turned down, but codecs and filters reshape them.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp

from .. import constants as C
from .. import limits
from ..artifacts import Audio, Provenance
from ..audio_io import AudioTooLongError, audio_duration, read_audio, resample, stream_audio
from ..errors import ArtifactError, BarkError

SCHEME = "bark_core-ss-v1"
WATERMARK_RATE = C.SAMPLE_RATE  # the carrier is defined at 24 kHz; other rates are resampled
PERIOD = 16_384  # carrier period in samples (0.68 s); also the number of lags searched
BAND_HZ = (250.0, 7_000.0)
_LOW_BOOST_HZ = (250.0, 600.0)  # where noise-like speech (whispers) leaves room below 4 kHz ...
_LOW_BOOST = 2.0  # ... so the carrier's amplitude there is doubled (the total power stays the same)
DEFAULT_STRENGTH_DB = C.WATERMARK_STRENGTH_DB
TARGET_FALSE_POSITIVE = 1e-4  # analytic bound per file (the project accepts 1e-3 measured); no multiple-file correction
DEFAULT_KEY = b"bark_core default watermark key v1"
ENVELOPE_WINDOW = 480  # 20 ms at 24 kHz
ENVELOPE_EXPONENT = 0.75
CLIP_GUARD = 0.99

# Detector whitening: STFT geometry and regularisation.
_NFFT = 512
_HOP = 128
_SMOOTH = 3  # cells (time and frequency) averaged into the power estimate
_FLOOR = 0.003  # per-frame power floor relative to the frame's mean in-band power
_FRAME_WEIGHT = 1.25  # loud frames count more than the embedder's 0.75: they are what low-rate codecs keep
NEAR_LAGS = 8  # the near-zero-lag test: whole files, no codec delay (resampling and filters keep lag 0)
_NEAR_SHARE = 0.75  # of the false-positive budget; the rest goes to the search over all lags
_PLATEAU_SHARE = 0.05  # taken from both, only for audio with clipped plateaus (chosen from the audio alone)
_PLATEAU_DEPTH = 0.03  # samples within 3 % of the peak count as plateau ...
_PLATEAU_MIN = 0.05  # ... and a file needs 5 % of them to be treated as clipped
_BLOCK = 64 * PERIOD  # samples whitened at a time (~44 s at 24 kHz)
_SEED_DOMAIN = b"bark_core/watermark/" + SCHEME.encode() + b"\0"


class WatermarkError(BarkError, ValueError):
    """A watermark key, strength or input cannot be used."""


def default_threshold() -> float:
    """z-score above which the union bound over all lags stays below ``TARGET_FALSE_POSITIVE``."""
    return float(-ndtri(TARGET_FALSE_POSITIVE / PERIOD))


DEFAULT_THRESHOLD = default_threshold()


@dataclass(frozen=True)
class Detection:
    """Outcome of one detection.

    ``score`` is a z-value on the scale of a search over all ``PERIOD`` lags: under "no mark with
    this key" each lag's correlation is standard normal, and the tests are combined so that
    ``false_positive_bound`` (= PERIOD * Q(threshold)) bounds the chance that an unmarked or
    differently keyed file is reported as marked; ``p_value`` (PERIOD * Q(score), at most 1) is
    the same bound at this score. ``lag`` is
    the carrier phase (samples at 24 kHz) at the first received sample: for an excerpt of marked
    audio it is the excerpt's start offset modulo ``PERIOD``, plus any codec delay.
    """

    score: float
    detected: bool
    threshold: float
    false_positive_bound: float
    lag: int
    p_value: float
    duration_s: float
    scheme: str = SCHEME

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 3),
            "detected": self.detected,
            "threshold": round(self.threshold, 3),
            "false_positive_bound": self.false_positive_bound,
            "p_value": self.p_value,
            "lag": self.lag,
            "duration_s": round(self.duration_s, 3),
            "scheme": self.scheme,
        }


def key_bytes(key: str | bytes | bytearray | None = None) -> bytes:
    """Normalise a key so str and bytes spellings of the same key mark identically."""
    if key is None:
        env = os.environ.get("BARK_WATERMARK_KEY")
        return env.encode("utf-8", "surrogateescape") if env else DEFAULT_KEY  # the bytes the shell was given
    if isinstance(key, str):
        if not key:
            raise WatermarkError("The watermark key is an empty string; pass None for the default key or a real key.")
        return limits.text(key, "the watermark key", max_chars=4096, error=WatermarkError).encode("utf-8")
    if isinstance(key, (bytes, bytearray)):
        if not key:
            raise WatermarkError("The watermark key is empty; pass None for the default key or a non-empty key.")
        return bytes(key)
    raise WatermarkError(f"A watermark key must be str, bytes or None, got {type(key).__name__}.")


def key_kind(key: str | bytes | bytearray | None = None) -> str:
    """'default' or 'custom': what may be written into public metadata without revealing a key."""
    return "default" if key_bytes(key) == DEFAULT_KEY else "custom"


@functools.lru_cache(maxsize=32)
def _carrier_spectrum(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """rfft of one carrier period (complex Gaussian in band, shaped by ``_LOW_BOOST``) and its power profile."""
    digest = hashlib.sha256(_SEED_DOMAIN + key).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    freqs = np.fft.rfftfreq(PERIOD, 1.0 / WATERMARK_RATE)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    n = int(band.sum())
    spec = np.zeros(freqs.shape[0], np.complex128)
    spec[band] = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2.0)
    gain = np.where(band, 1.0, 0.0)
    gain[(freqs >= _LOW_BOOST_HZ[0]) & (freqs < _LOW_BOOST_HZ[1])] = _LOW_BOOST
    spec *= gain
    power = gain**2
    spec.flags.writeable = False
    power.flags.writeable = False
    return spec, power


@functools.lru_cache(maxsize=32)
def _carrier(key: bytes) -> np.ndarray:
    spec, _ = _carrier_spectrum(key)
    c = np.fft.irfft(spec, n=PERIOD)
    c /= math.sqrt(float(np.mean(c * c)))
    c.flags.writeable = False
    return c


def _as_samples(audio: Any) -> tuple[np.ndarray, int]:
    """Accept an Audio artifact, a (samples, rate) pair, or a path ffmpeg can read."""
    if isinstance(audio, Audio):
        return audio.samples, audio.sample_rate
    if isinstance(audio, (str, os.PathLike)):
        return read_audio(audio)
    if isinstance(audio, tuple) and len(audio) == 2:
        samples, rate = audio
        try:
            arr = np.asarray(samples, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"audio samples must be numbers, got {type(samples).__name__} ({exc}).") from None
        if arr.ndim == 2:  # (channels, n) or (n, channels): mix down
            arr = arr.mean(axis=0 if arr.shape[0] < arr.shape[1] else 1)
        if arr.ndim != 1:
            raise ArtifactError(f"audio samples must be 1-D (mono) or 2-D (multi-channel), got shape {arr.shape}.")
        if not np.all(np.isfinite(arr)):
            raise ArtifactError("audio samples contain NaN or infinite values; clean them before detection.")
        if isinstance(rate, (int, float, np.number)) and not isinstance(rate, bool) and rate <= 0:
            raise ArtifactError(f"sample rate must be positive, got {rate}.")
        return arr, limits.sample_rate(rate, "sample rate", error=ArtifactError)
    raise ArtifactError(
        f"Cannot read audio from a {type(audio).__name__}; pass an Audio artifact, a (samples, sample_rate) "
        "tuple or the path of an audio file."
    )


def _envelope(x: np.ndarray) -> np.ndarray:
    win = np.hanning(ENVELOPE_WINDOW + 2)[1:-1]
    win /= win.sum()
    power = fftconvolve(x * x, win, mode="same")
    return np.sqrt(np.maximum(power, 0.0))


def make_mark(
    samples: np.ndarray, key: str | bytes | None = None, strength_db: float = DEFAULT_STRENGTH_DB, offset: int = 0
) -> np.ndarray:
    """The mark for a 24 kHz host, scaled to exactly ``strength_db`` below the host's power.

    ``offset``: where the host starts in a longer signal (a streamed chunk), so the carrier keeps its
    phase across chunks and the joined signal carries one unbroken mark.
    """
    x = np.asarray(samples, dtype=np.float64)
    host_power = float(np.sum(x * x))
    if x.size == 0 or host_power == 0.0:
        return np.zeros_like(x)
    carrier = _carrier(key_bytes(key))
    start = int(offset) % PERIOD
    reps = -(-(x.size + start) // PERIOD)
    tiled = np.tile(carrier, reps)[start:start + x.size]
    mark = _envelope(x) ** ENVELOPE_EXPONENT * tiled
    mark_power = float(np.sum(mark * mark))
    if mark_power == 0.0:
        return mark
    return mark * math.sqrt(host_power * 10.0 ** (strength_db / 10.0) / mark_power)


def _check_strength(strength_db: float) -> float:
    try:
        value = float(strength_db)
    except (TypeError, ValueError):
        raise WatermarkError(f"strength_db must be a number of dB, got {strength_db!r}.") from None
    if not -80.0 <= value <= -20.0:
        raise WatermarkError(
            f"strength_db={value} is outside -80..-20 dB; below -80 dB nothing survives coding, above -20 dB "
            f"the mark is clearly audible. The default is {DEFAULT_STRENGTH_DB:g} dB."
        )
    return value


def embed_samples(
    samples: np.ndarray, sample_rate: int, key: str | bytes | None = None, strength_db: float = DEFAULT_STRENGTH_DB
) -> np.ndarray:
    """Watermark a bare waveform at any rate; returns float32 of the same length."""
    strength_db = _check_strength(strength_db)
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ArtifactError(f"embed takes mono samples of shape (n,), got shape {x.shape}; mix channels down first.")
    if not np.all(np.isfinite(x)):
        raise ArtifactError("audio samples contain NaN or infinite values; clean them before watermarking.")
    if int(sample_rate) <= 0:
        raise ArtifactError(f"sample rate must be positive, got {sample_rate}.")
    sample_rate = int(sample_rate)
    if sample_rate == WATERMARK_RATE:
        mark = make_mark(x, key, strength_db)
    else:
        host24 = resample(x, sample_rate, WATERMARK_RATE)
        mark = resample(make_mark(host24, key, strength_db), WATERMARK_RATE, sample_rate)
        mark = np.pad(mark[: x.size], (0, max(0, x.size - mark.size)))  # resampling may be off by a sample
        # keep the promised ratio at the host's own rate too
        host_power, mark_power = float(np.sum(x * x)), float(np.sum(mark * mark))
        if mark_power > 0:
            mark *= math.sqrt(host_power * 10.0 ** (strength_db / 10.0) / mark_power)
    bound = np.maximum(np.abs(x), CLIP_GUARD)
    y = np.clip(x + mark, -bound, bound)
    # The guard removes the outward half of the mark on full-scale samples; give that power back
    # to the rest (never more than the budget: the ratio stays exactly strength_db at most).
    budget = float(np.sum(mark * mark))
    for _ in range(4):
        kept = float(np.sum((y - x) ** 2))
        if kept <= 0.0 or kept >= 0.999 * budget:
            break
        mark *= math.sqrt(budget / kept)
        y = np.clip(x + mark, -bound, bound)
    return y.astype(np.float32)


def embed(audio: Audio, key: str | bytes | None = None, strength_db: float = DEFAULT_STRENGTH_DB) -> Audio:
    """Return a watermarked copy; provenance records the scheme, not the key.

    Prefer :func:`bark_core.label.label`, which also skips audio that already carries the mark.
    """
    if not isinstance(audio, Audio):
        raise ArtifactError(
            f"embed() takes an Audio artifact, got {type(audio).__name__}; wrap samples with "
            "Audio(provenance=Provenance(stage='decode'), samples=..., sample_rate=...)."
        )
    marked = embed_samples(audio.samples, audio.sample_rate, key, strength_db)
    prov = audio.provenance
    settings = dict(prov.settings)
    settings.update(
        {"watermarked": True, "watermark": SCHEME, "watermark_key": key_kind(key), "watermark_strength_db": strength_db}
    )
    new_prov = Provenance(
        stage="label",
        model=prov.model,
        model_checksum=prov.model_checksum,
        settings=settings,
        seed=prov.seed,
        voice=prov.voice,
        parent=audio.id,
        lineage=audio.lineage_ids(),
        extra=dict(prov.extra),
    )
    return Audio(provenance=new_prov, parent=audio, samples=marked, sample_rate=audio.sample_rate)


def _whiten(y: np.ndarray) -> np.ndarray:
    """Short-time spectral whitening computed from ``y`` alone (so the null statistic stays exact)."""
    from scipy.ndimage import uniform_filter

    ratio = _NFFT // _HOP
    window = np.sqrt(np.hanning(_NFFT + 1)[:-1])  # sqrt-Hann analysis and synthesis: unity overlap-add
    n_blocks = -(-y.size // _HOP) + ratio - 1
    yp = np.zeros((n_blocks + ratio - 1) * _HOP)
    yp[(ratio - 1) * _HOP : (ratio - 1) * _HOP + y.size] = y
    frames = np.lib.stride_tricks.sliding_window_view(yp, _NFFT)[::_HOP]
    spec = np.fft.rfft(frames * window, axis=1)
    power = spec.real**2 + spec.imag**2
    freqs = np.fft.rfftfreq(_NFFT, 1.0 / WATERMARK_RATE)
    band = (freqs >= BAND_HZ[0] - 100.0) & (freqs <= BAND_HZ[1] + 100.0)
    smooth = uniform_filter(power, size=_SMOOTH, mode="nearest")[:, band]
    level = np.sqrt(power.mean(axis=1))  # frame level over all frequencies
    floor = _FLOOR * smooth.mean(axis=1, keepdims=True)
    eps = 1e-12 * float(smooth.max(initial=0.0)) + 1e-30
    gain = np.zeros_like(power)
    gain[:, band] = (level[:, None] ** _FRAME_WEIGHT) / (smooth + floor + eps)
    out_frames = (np.fft.irfft(spec * gain, n=_NFFT, axis=1) * window).reshape(-1, ratio, _HOP)
    blocks = np.zeros((out_frames.shape[0] + ratio - 1, _HOP))
    for j in range(ratio):  # overlap-add: part j of frame i lands on block i + j
        blocks[j : j + out_frames.shape[0]] += out_frames[:, j, :]
    start = (ratio - 1) * _HOP
    return blocks.reshape(-1)[start : start + y.size]


def _fold(y: np.ndarray) -> np.ndarray:
    reps = -(-y.size // PERIOD)
    buf = np.zeros(reps * PERIOD)
    buf[: y.size] = y
    return buf.reshape(reps, PERIOD).sum(axis=0)


def _fold_block(folded: np.ndarray, block: np.ndarray) -> None:
    if block.size and np.any(block):  # whitened silence is silence: nothing to add
        folded += _fold(_whiten(block))


class Prepared(NamedTuple):
    """What detection needs from the received audio, for any number of keys."""

    folded: np.ndarray  # rfft of the whitened signal folded modulo PERIOD
    duration_s: float
    plateau: np.ndarray | None = None  # rfft of the folded plateau residual; None: not a clipped host


def _plateau(y: np.ndarray) -> np.ndarray | None:
    """Folded spectrum of ``y`` minus its clipping level on the samples at that level, for clipped hosts.

    On a full-scale sample the clip guard leaves the inward half of the mark and nothing of the
    host, so there the residual is mark alone: far more evidence than the whitened signal, where a
    dense clipped host drowns the mark. Edits that reshape the plateaus (codecs, filters,
    resampling) turn it into host noise, which costs only this test's share of the budget."""
    peak = float(np.max(np.abs(y), initial=0.0))
    near = np.abs(y) >= peak * (1.0 - _PLATEAU_DEPTH)
    if peak == 0.0 or np.mean(near) < _PLATEAU_MIN:
        return None
    return np.fft.rfft(_fold(np.where(near, y - np.sign(y) * peak, 0.0)))


def prepare(audio: Any) -> Prepared:
    """Whitened, folded spectrum of the received audio, reusable across keys; and its duration.

    Files too long to hold in memory (see :data:`bark_core.limits.MAX_FILE_AUDIO_S`) are read in
    blocks, up to :data:`bark_core.limits.MAX_DETECT_S`, so memory stays flat for any length.
    """
    folded = np.zeros(PERIOD)
    # Long inputs are whitened in blocks of whole periods to bound memory; any function of the
    # received audio alone keeps the null statistic exact, so block edges only cost a little signal.
    if isinstance(audio, (str, os.PathLike)):
        try:
            known = audio_duration(audio)
            if known is not None and known > limits.MAX_FILE_AUDIO_S:
                raise AudioTooLongError(f"{audio} is long: read it in blocks")
            samples, rate = read_audio(audio)
        except AudioTooLongError:
            n = 0
            pending = np.zeros(0)
            for block in stream_audio(audio, WATERMARK_RATE, _BLOCK):
                pending = np.concatenate([pending, block.astype(np.float64)])
                n += block.size
                while pending.size >= _BLOCK:  # whole periods per block: the carrier phase stays aligned
                    _fold_block(folded, pending[:_BLOCK])
                    pending = pending[_BLOCK:]
            _fold_block(folded, pending)
            return Prepared(np.fft.rfft(folded), n / WATERMARK_RATE)
    else:
        samples, rate = _as_samples(audio)
    duration = samples.size / rate if rate else 0.0
    y = resample(samples, rate, WATERMARK_RATE)
    for start in range(0, y.size, _BLOCK):
        _fold_block(folded, y[start : start + _BLOCK])
    return Prepared(np.fft.rfft(folded), duration, _plateau(y) if y.size else None)


def detect_prepared(prepared: Prepared, key: str | bytes | None = None, threshold: float | None = None) -> Detection:
    """Correlate a :func:`prepare` result with one key's carrier."""
    thr = DEFAULT_THRESHOLD if threshold is None else limits.number("threshold", threshold, lo=0.0, hi=100.0,
                                                                       error=WatermarkError)
    spec, power = _carrier_spectrum(key_bytes(key))
    bound = min(1.0, PERIOD * float(ndtr(-thr)))
    z = _z_values(prepared.folded, spec, power)
    zp = None if prepared.plateau is None else _z_values(prepared.plateau, spec, power)
    if z is None and zp is None:
        return Detection(0.0, False, thr, bound, 0, 1.0, prepared.duration_s)
    score, peak = _combined_score(z, zp, clipped=prepared.plateau is not None)
    lag = (-peak) % PERIOD  # carrier phase at the first received sample: the crop offset mod PERIOD
    p_value = min(1.0, PERIOD * float(ndtr(-score)))
    return Detection(score, score > thr, thr, bound, lag, p_value, prepared.duration_s)


def _z_values(folded: np.ndarray, spec: np.ndarray, power: np.ndarray) -> np.ndarray | None:
    # for a fixed F and independent carrier bins CN(0, power_k), each lag is N(0, 2/P^2 sum |F_k|^2 power_k)
    variance = 2.0 / PERIOD**2 * float(np.sum(np.abs(folded) ** 2 * power))
    if variance <= 0.0 or not math.isfinite(variance):
        return None
    return np.fft.irfft(folded * np.conj(spec), n=PERIOD) / math.sqrt(variance)


def _combined_score(z: np.ndarray | None, zp: np.ndarray | None = None, clipped: bool = False) -> tuple[float, int]:
    """Bonferroni combination of the near-zero-lag, the all-lag and the plateau maxima, as an all-lag z-value.

    The best test's p-value over its share of the budget is mapped back through ``PERIOD * Q(score)``,
    in log space (strong marks, z in the hundreds, stay exact). The plateau test takes its share only
    from audio with plateaus, judged from the audio alone: the bound holds for every file.
    """
    scale = 1.0 - _PLATEAU_SHARE if clipped else 1.0
    tests: list[tuple[float, int]] = []
    if z is not None:
        near_idx = np.r_[0 : NEAR_LAGS + 1, PERIOD - NEAR_LAGS : PERIOD]
        k_near, k_all = int(near_idx[np.argmax(z[near_idx])]), int(np.argmax(z))
        tests.append((math.log(near_idx.size / (_NEAR_SHARE * scale)) + float(log_ndtr(-z[k_near])), k_near))
        tests.append((math.log(PERIOD / ((1.0 - _NEAR_SHARE) * scale)) + float(log_ndtr(-z[k_all])), k_all))
    if zp is not None:
        k_plateau = int(np.argmax(zp))
        tests.append((math.log(PERIOD / _PLATEAU_SHARE) + float(log_ndtr(-zp[k_plateau])), k_plateau))
    log_p, peak = min(tests)
    log_q = min(log_p - math.log(PERIOD), math.log(0.5))  # scores below 0 carry no evidence: report 0
    return float(-ndtri_exp(log_q)), peak


def detect(audio: Any, key: str | bytes | None = None, threshold: float | None = None) -> Detection:
    """Say whether ``audio`` carries the mark of ``key`` (default project key when None).

    ``audio`` may be an Audio artifact, a ``(samples, sample_rate)`` tuple at any rate (multi-channel
    arrays are mixed down), or a file path that ffmpeg can decode. Raising ``threshold`` above the
    default trades sensitivity for an even smaller false-positive bound; lowering it voids the bound
    that ``Detection.false_positive_bound`` reports.
    """
    key_bytes(key)  # a bad key or threshold fails before the audio is read
    if threshold is not None:
        limits.number("threshold", threshold, lo=0.0, hi=100.0, error=WatermarkError,
                      hint=f"It is a z-score; the default {DEFAULT_THRESHOLD:.2f} bounds false alarms at "
                           f"{TARGET_FALSE_POSITIVE:g}.")
    return detect_prepared(prepare(audio), key, threshold)


def mark_to_signal_db(original: np.ndarray, marked: np.ndarray) -> float:
    """Power of the added mark relative to the original, in dB (more negative = quieter)."""
    x = np.asarray(original, dtype=np.float64)
    w = np.asarray(marked, dtype=np.float64) - x
    px, pw = float(np.sum(x * x)), float(np.sum(w * w))
    if pw == 0.0:
        return -math.inf
    if px == 0.0:
        return math.inf
    return 10.0 * math.log10(pw / px)
