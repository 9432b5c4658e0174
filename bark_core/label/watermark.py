"""A keyed, zero-bit, weight-free watermark that marks every waveform bark_core publishes.

Metadata tags vanish as soon as a file is re-encoded or pasted into an editor; the waveform itself
has to say "synthetic" too. The mark is plain spread-spectrum noise, so it needs no learned
weights, runs in a few milliseconds on one CPU core, and its false-positive rate follows from
arithmetic rather than from a calibration set.

This module writes the mark (``bark_core-ss-v1``); :mod:`bark_core.label.watermark_detect` defines
the key's carrier and reads the mark (its docstring has the detector and the bound). The reading
side is re-exported here, so ``watermark.detect`` and friends keep working.

* **Embedding.** ``w(t) = g * env(t) ** 0.75 * carrier(t mod PERIOD)``, where ``env`` is the 20 ms
  RMS envelope of the host and ``g`` sets the mark-to-signal power ratio to exactly
  ``strength_db`` (default -40.5 dB: the 40 dB rule with half a dB to spare; -41 dB until
  2026-11-30). The mark thus follows the speech and is absent in digital silence; where adding
  it would push a sample past ``max(|x|, 0.99)`` it is clipped back, so it never creates
  clipping, and the rest is scaled up until the mark again has the full power budget.

Limits: in speech and music the mark survives MP3, AAC and Opus coding down to 32-64 kbit/s,
cropping, added noise, gain changes, resampling to 8 kHz and a 4 kHz low-pass in nearly all clips
(figures in docs/label.md), but it is not tamper-proof (someone with the key can subtract it;
heavier filtering, louder noise or pitch changes can remove it). Speed changes (e.g. x1.25) are out
of scope: the detector does not search over time scales. On a flat noise host a -40.5 dB mark
carries little information (the score grows like 0.009 * sqrt(samples)): white noise shorter than
about 15 s is not reliably detected. Hard-clipped noisy speech is found from its plateaus as
written, cropped or turned down, but codecs and filters reshape them.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.signal import fftconvolve

from .. import constants as C
from ..artifacts import Audio, Provenance
from ..audio_io import resample
from ..errors import ArtifactError
from .watermark_detect import (  # the reading side and the carrier, re-exported for callers of this module
    BAND_HZ,
    DEFAULT_KEY,
    DEFAULT_THRESHOLD,
    NEAR_LAGS,
    PERIOD,
    SCHEME,
    TARGET_FALSE_POSITIVE,
    WATERMARK_RATE,
    Detection,
    Prepared,
    WatermarkError,
    _carrier_spectrum,
    default_threshold,
    detect,
    detect_prepared,
    key_bytes,
    key_kind,
    prepare,
)

__all__ = [
    "BAND_HZ", "CLIP_GUARD", "DEFAULT_KEY", "DEFAULT_STRENGTH_DB", "DEFAULT_THRESHOLD", "Detection",
    "ENVELOPE_EXPONENT", "ENVELOPE_WINDOW", "NEAR_LAGS", "PERIOD", "Prepared", "SCHEME", "TARGET_FALSE_POSITIVE",
    "WATERMARK_RATE", "WatermarkError", "default_threshold", "detect", "detect_prepared", "embed", "embed_samples",
    "key_bytes", "key_kind", "make_mark", "mark_to_signal_db", "prepare",
]

DEFAULT_STRENGTH_DB = C.WATERMARK_STRENGTH_DB
ENVELOPE_WINDOW = 480  # 20 ms at 24 kHz
ENVELOPE_EXPONENT = 0.75
CLIP_GUARD = 0.99


@functools.lru_cache(maxsize=32)
def _carrier(key: bytes) -> np.ndarray:
    spec, _ = _carrier_spectrum(key)
    c = np.fft.irfft(spec, n=PERIOD)
    c /= math.sqrt(float(np.mean(c * c)))
    c.flags.writeable = False
    return c


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
