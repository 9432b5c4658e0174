"""Noise: the background between words, hiss, mains hum; how far the speech stands above them."""

from __future__ import annotations

import math

import numpy as np

from .report import Flag, Metrics
from .signal import Activity, db, flatness, frames, pick, psd, spectra
from .thresholds import (
    FRAME_S,
    HISS_BAND_HZ,
    HISS_FLATNESS,
    HISS_FLOOR_DBFS,
    HOP_S,
    HUM_BASES_HZ,
    HUM_HARMONICS,
    HUM_PEAK_DB,
    HUM_WARN_DB,
    NOISE_FLOOR_WARN_DBFS,
    SNR_FAIL_DB,
    SNR_WARN_DB,
)


def hum(x: np.ndarray, sr: int) -> tuple[float | None, float | None]:
    """Mains hum power over total power (dB) and its base frequency, or (None, None) when absent."""
    if len(x) < sr // 4:
        return None, None
    freqs, power = psd(x, sr, min(len(x), sr))  # 1 Hz bins for takes of a second or more
    total = float(np.sum(power))
    if total <= 0:
        return None, None
    df = float(freqs[1] - freqs[0])
    best: tuple[float, float] | None = None
    for base in HUM_BASES_HZ:
        hum_power, fundamental_ok = 0.0, False
        for k in range(1, HUM_HARMONICS + 1):
            f = k * base
            if f >= sr / 2:
                break
            near = np.abs(freqs - f)
            peak = near <= max(2.0, df)
            ring = (near > max(4.0, 2 * df)) & (near <= max(20.0, 6 * df))
            if not peak.any() or not ring.any():
                continue
            background = float(np.median(power[ring]))
            excess = float(np.sum(power[peak]) - background * peak.sum())
            if k == 1:
                fundamental_ok = float(np.max(power[peak])) >= background * 10 ** (HUM_PEAK_DB / 10)
            hum_power += max(excess, 0.0)
        if fundamental_ok and hum_power > 0:
            ratio_db = 10 * math.log10(hum_power / total)
            if best is None or ratio_db > best[0]:
                best = (ratio_db, base)
    return best if best is not None else (None, None)


def measure_noise(x: np.ndarray, sr: int, act: Activity, m: Metrics, active_power: np.ndarray,
                  flags: list[Flag]) -> None:
    """Hum, the spectrum of the pauses, and the flags for noise a listener will hear."""
    hop = max(1, round(HOP_S * sr))
    flen = max(1, round(FRAME_S * sr))
    m.hum_db, m.hum_hz = hum(x, sr)
    noise_idx = np.flatnonzero(act.noise & ~act.active)
    if len(noise_idx) >= 5 and m.noise_floor_dbfs > -100 + 1:
        pause_spec = np.mean(spectra(frames(x, flen, hop)[pick(noise_idx, 400)], sr, HISS_BAND_HZ[0],
                                      HISS_BAND_HZ[1]), axis=0)
        m.pause_flatness = float(flatness(pause_spec))
        m.hiss_dbfs = db(float(np.sum(pause_spec)))
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
