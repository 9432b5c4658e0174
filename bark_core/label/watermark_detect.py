"""Detection of the ``bark_core-ss-v1`` watermark: the key's carrier, the detector and its false-positive bound.

:mod:`bark_core.label.watermark` writes the mark; this module reads it. Both share the carrier
defined here, so that any change to what a key means happens in one place.

* **Carrier.** A period of ``PERIOD`` samples at 24 kHz whose spectrum is i.i.d. complex Gaussian
  in ``BAND_HZ`` (250 Hz - 7 kHz; twice the amplitude in 250-600 Hz since 2026-11-30, which the
  detector's template follows: flat first-release marks lose 2 % of their score) and zero
  elsewhere, drawn from a numpy ``Generator`` seeded by SHA-256 of the key. The carrier repeats,
  so any excerpt contains whole periods at an unknown phase: crops and codec delay become a lag.
* **Detection.** The received signal is resampled to 24 kHz and whitened in a short-time Fourier
  domain (each cell divided by its smoothed power plus a per-frame floor, then weighted by the
  frame level to the power 1.25: loud frames are what low-rate codecs keep), folded modulo
  ``PERIOD`` and circularly correlated with the carrier for every lag at once with one FFT.
* **Telephone band.** A second whitening keeps only 250 Hz - 4 kHz, in 5 ms frames (128 samples)
  weighted by the frame level to the power 0.5 only, and correlates there. Band-limiting edits
  (8 kHz resampling, a 4 kHz low-pass) keep the quiet frames, where the mark, which follows the
  envelope to the power 0.75, stands highest above the host; the short frames follow the fast
  envelope of noise-like speech (whispers) that 21 ms frames smear; and 8 kHz resampling leaves
  mirror images of the band below 4 kHz above it, which the full-band test whitens into pure
  noise. On whispered development clips resampled to 8 kHz this took the near-lag score from a
  median of 5.8 (half of them missed) to 27.
* **Statistic and bound.** For any fixed received signal and a carrier independent of it (an
  unmarked clip, or a clip marked with another key), the correlation at each lag is exactly
  Gaussian with a variance computable from the folded spectrum, i.e. a standard normal z-value
  per lag; this holds for any whitening computed from the received audio alone. Three tests share
  the false-positive budget (Bonferroni): the full-band lags within ``NEAR_LAGS`` samples of zero
  (whole files, resampled, filtered, noisy or re-encoded without delay: the common case, where
  searching only ``2 * NEAR_LAGS + 1`` lags buys a lower threshold), the telephone-band test at
  the same lags, and all ``PERIOD`` lags of the full band (crops, codec delays). ``score`` is the
  combined evidence expressed as the z-value that a search over all lags would need for the same
  p-value, so ``P(false positive) <= PERIOD * Q(threshold)`` still holds for any threshold; the
  default makes that 1e-4 per file (z > 5.70; 4.47 at the near lags, 4.86 in the telephone band),
  ten times inside the 1e-3 the project accepts (exact for any received signal: no calibration
  set). Until 2026-11-30 the default was 1e-6 (``threshold=6.44``). Marks written before (at -41 dB,
  flat, or before these tests) are the same carrier and are detected the same way.
* **Clipped hosts.** Audio with clipped plateaus (5 % of samples within 3 % of the peak, judged
  from the audio alone) gets a fourth test with 5 % of the budget: the residual ``y - peak`` on
  the plateau samples, where the clip guard left the mark host-free, correlated over all lags.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.special import log_ndtr, ndtr, ndtri, ndtri_exp

from .. import constants as C
from .. import limits
from ..artifacts import Audio
from ..audio_io import AudioTooLongError, audio_duration, read_audio, resample, stream_audio
from ..errors import ArtifactError, BarkError

SCHEME = "bark_core-ss-v1"
WATERMARK_RATE = C.SAMPLE_RATE  # the carrier is defined at 24 kHz; other rates are resampled
PERIOD = 16_384  # carrier period in samples (0.68 s); also the number of lags searched
BAND_HZ = (250.0, 7_000.0)
_LOW_BOOST_HZ = (250.0, 600.0)  # where noise-like speech (whispers) leaves room below 4 kHz ...
_LOW_BOOST = 2.0  # ... so the carrier's amplitude there is doubled (the total power stays the same)
TARGET_FALSE_POSITIVE = 1e-4  # analytic bound per file (the project accepts 1e-3 measured); no multiple-file correction
DEFAULT_KEY = b"bark_core default watermark key v1"


class _Whitening(NamedTuple):
    """STFT geometry and regularisation of one whitened view of the received audio."""

    nfft: int
    hop: int
    top_hz: float  # highest carrier frequency the view keeps
    frame_weight: float  # each frame is weighted by its level to this power


_SMOOTH = 3  # cells (time and frequency) averaged into the power estimate
_FLOOR = 0.003  # per-frame power floor relative to the frame's mean in-band power
# loud frames count more than the embedder's 0.75: they are what low-rate codecs keep
_FULL = _Whitening(512, 128, BAND_HZ[1], 1.25)
# telephone band: short frames, quiet frames kept (band-limiting edits keep them); see the docstring
_TELEPHONE = _Whitening(128, 32, 4_000.0, 0.5)
NEAR_LAGS = 8  # the near-zero-lag tests: whole files, no codec delay (resampling and filters keep lag 0)
_NEAR_SHARE = 0.65  # of the false-positive budget, full band near lag 0; ...
_TELEPHONE_SHARE = 0.10  # ... telephone band near lag 0; the rest (0.25) goes to the search over all lags
_PLATEAU_SHARE = 0.05  # taken from all, only for audio with clipped plateaus (chosen from the audio alone)
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


def _whiten(y: np.ndarray, view: _Whitening = _FULL) -> np.ndarray:
    """Short-time spectral whitening computed from ``y`` alone (so the null statistic stays exact)."""
    from scipy.ndimage import uniform_filter

    nfft, hop = view.nfft, view.hop
    ratio = nfft // hop
    window = np.sqrt(np.hanning(nfft + 1)[:-1])  # sqrt-Hann analysis and synthesis: unity overlap-add
    n_blocks = -(-y.size // hop) + ratio - 1
    yp = np.zeros((n_blocks + ratio - 1) * hop)
    yp[(ratio - 1) * hop : (ratio - 1) * hop + y.size] = y
    frames = np.lib.stride_tricks.sliding_window_view(yp, nfft)[::hop]
    spec = np.fft.rfft(frames * window, axis=1)
    power = spec.real**2 + spec.imag**2
    freqs = np.fft.rfftfreq(nfft, 1.0 / WATERMARK_RATE)
    band = (freqs >= BAND_HZ[0] - 100.0) & (freqs <= view.top_hz + 100.0)
    smooth = uniform_filter(power, size=_SMOOTH, mode="nearest")[:, band]
    level = np.sqrt(power.mean(axis=1))  # frame level over all frequencies
    floor = _FLOOR * smooth.mean(axis=1, keepdims=True)
    eps = 1e-12 * float(smooth.max(initial=0.0)) + 1e-30
    gain = np.zeros_like(power)
    gain[:, band] = (level[:, None] ** view.frame_weight) / (smooth + floor + eps)
    out_frames = (np.fft.irfft(spec * gain, n=nfft, axis=1) * window).reshape(-1, ratio, hop)
    blocks = np.zeros((out_frames.shape[0] + ratio - 1, hop))
    for j in range(ratio):  # overlap-add: part j of frame i lands on block i + j
        blocks[j : j + out_frames.shape[0]] += out_frames[:, j, :]
    start = (ratio - 1) * hop
    return blocks.reshape(-1)[start : start + y.size]


def _fold(y: np.ndarray) -> np.ndarray:
    reps = -(-y.size // PERIOD)
    buf = np.zeros(reps * PERIOD)
    buf[: y.size] = y
    return buf.reshape(reps, PERIOD).sum(axis=0)


def _fold_block(folded: np.ndarray, telephone: np.ndarray, block: np.ndarray) -> None:
    if block.size and np.any(block):  # whitened silence is silence: nothing to add
        folded += _fold(_whiten(block, _FULL))
        telephone += _fold(_whiten(block, _TELEPHONE))


class Prepared(NamedTuple):
    """What detection needs from the received audio, for any number of keys."""

    folded: np.ndarray  # rfft of the whitened signal folded modulo PERIOD
    duration_s: float
    plateau: np.ndarray | None = None  # rfft of the folded plateau residual; None: not a clipped host
    telephone: np.ndarray | None = None  # rfft of the folded telephone-band whitening; None: not computed


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
    """Whitened, folded spectra of the received audio, reusable across keys; and its duration.

    Files too long to hold in memory (see :data:`bark_core.limits.MAX_FILE_AUDIO_S`) are read in
    blocks, up to :data:`bark_core.limits.MAX_DETECT_S`, so memory stays flat for any length.
    """
    folded, telephone = np.zeros(PERIOD), np.zeros(PERIOD)
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
                    _fold_block(folded, telephone, pending[:_BLOCK])
                    pending = pending[_BLOCK:]
            _fold_block(folded, telephone, pending)
            return Prepared(np.fft.rfft(folded), n / WATERMARK_RATE, None, np.fft.rfft(telephone))
    else:
        samples, rate = _as_samples(audio)
    duration = samples.size / rate if rate else 0.0
    y = resample(samples, rate, WATERMARK_RATE)
    for start in range(0, y.size, _BLOCK):
        _fold_block(folded, telephone, y[start : start + _BLOCK])
    return Prepared(np.fft.rfft(folded), duration, _plateau(y) if y.size else None, np.fft.rfft(telephone))


@functools.lru_cache(maxsize=32)
def _telephone_spectrum(key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The carrier's template restricted to the telephone band."""
    spec, power = _carrier_spectrum(key)
    keep = np.fft.rfftfreq(PERIOD, 1.0 / WATERMARK_RATE) <= _TELEPHONE.top_hz
    spec, power = np.where(keep, spec, 0.0), np.where(keep, power, 0.0)
    spec.flags.writeable = False
    power.flags.writeable = False
    return spec, power


def detect_prepared(prepared: Prepared, key: str | bytes | None = None, threshold: float | None = None) -> Detection:
    """Correlate a :func:`prepare` result with one key's carrier."""
    thr = DEFAULT_THRESHOLD if threshold is None else limits.number("threshold", threshold, lo=0.0, hi=100.0,
                                                                       error=WatermarkError)
    kb = key_bytes(key)
    spec, power = _carrier_spectrum(kb)
    bound = min(1.0, PERIOD * float(ndtr(-thr)))
    z = _z_values(prepared.folded, spec, power)
    zp = None if prepared.plateau is None else _z_values(prepared.plateau, spec, power)
    zt = None if prepared.telephone is None else _z_values(prepared.telephone, *_telephone_spectrum(kb))
    if z is None and zp is None and zt is None:
        return Detection(0.0, False, thr, bound, 0, 1.0, prepared.duration_s)
    score, peak = _combined_score(z, zp, clipped=prepared.plateau is not None, zt=zt)
    lag = (-peak) % PERIOD  # carrier phase at the first received sample: the crop offset mod PERIOD
    p_value = min(1.0, PERIOD * float(ndtr(-score)))
    return Detection(score, score > thr, thr, bound, lag, p_value, prepared.duration_s)


def _z_values(folded: np.ndarray, spec: np.ndarray, power: np.ndarray) -> np.ndarray | None:
    # for a fixed F and independent carrier bins CN(0, power_k), each lag is N(0, 2/P^2 sum |F_k|^2 power_k)
    variance = 2.0 / PERIOD**2 * float(np.sum(np.abs(folded) ** 2 * power))
    if variance <= 0.0 or not math.isfinite(variance):
        return None
    return np.fft.irfft(folded * np.conj(spec), n=PERIOD) / math.sqrt(variance)


_NEAR_IDX = np.r_[0 : NEAR_LAGS + 1, PERIOD - NEAR_LAGS : PERIOD]


def _combined_score(
    z: np.ndarray | None, zp: np.ndarray | None = None, clipped: bool = False, zt: np.ndarray | None = None
) -> tuple[float, int]:
    """Bonferroni combination of the near-lag (full and telephone band), all-lag and plateau maxima, as an
    all-lag z-value.

    The best test's p-value over its share of the budget is mapped back through ``PERIOD * Q(score)``,
    in log space (strong marks, z in the hundreds, stay exact). The plateau test takes its share only
    from audio with plateaus, judged from the audio alone: the bound holds for every file.
    """
    scale = 1.0 - _PLATEAU_SHARE if clipped else 1.0
    tests: list[tuple[float, int]] = []

    def near(values: np.ndarray, share: float) -> None:
        k = int(_NEAR_IDX[np.argmax(values[_NEAR_IDX])])
        tests.append((math.log(_NEAR_IDX.size / (share * scale)) + float(log_ndtr(-values[k])), k))

    if z is not None:
        near(z, _NEAR_SHARE)
        k_all = int(np.argmax(z))
        all_share = 1.0 - _NEAR_SHARE - _TELEPHONE_SHARE
        tests.append((math.log(PERIOD / (all_share * scale)) + float(log_ndtr(-z[k_all])), k_all))
    if zt is not None:
        near(zt, _TELEPHONE_SHARE)
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


