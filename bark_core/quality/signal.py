"""The analysis grid shared by every check: frames, their power, where sound is active, and spectra."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .thresholds import (
    ACTIVITY_MARGIN_DB,
    ACTIVITY_RANGE_DB,
    BLOCK_S,
    FRAME_S,
    HOP_S,
    LOUD_PERCENTILE,
    MIN_REGION_S,
    NOISE_BAND_DB,
    NOISE_PERCENTILE,
    POWER_FLOOR,
)


def db(power: float) -> float:
    return 10.0 * math.log10(max(float(power), POWER_FLOOR))


def frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    n = 1 + (len(x) - length) // hop
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop][:n]


def frame_power(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Mean square per frame from a running sum: no frames x samples matrix for long takes."""
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    n = 1 + (len(x) - length) // hop
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n) * hop
    return np.maximum(cs[starts + length] - cs[starts], 0.0) / length


@dataclass
class Activity:
    frame_power: np.ndarray
    frame_level: np.ndarray
    noise_power: float
    threshold_db: float
    active: np.ndarray
    noise: np.ndarray
    regions: list[tuple[float, float]]  # seconds, refined edges


def activity(x: np.ndarray, sr: int) -> Activity:
    flen, hop, blen = max(1, round(FRAME_S * sr)), max(1, round(HOP_S * sr)), max(1, round(BLOCK_S * sr))
    power = frame_power(x, flen, hop)
    level = 10.0 * np.log10(np.maximum(power, POWER_FLOOR))
    floor = float(np.percentile(level, NOISE_PERCENTILE))
    noise = level <= floor + NOISE_BAND_DB
    noise_power = float(np.mean(power[noise]))
    loud = float(np.percentile(level, LOUD_PERCENTILE))
    thr = max(db(noise_power) + ACTIVITY_MARGIN_DB, loud - ACTIVITY_RANGE_DB)
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
    return Activity(power, level, noise_power, thr, active, noise, regions)


def psd(x: np.ndarray, sr: int, nper: int) -> tuple[np.ndarray, np.ndarray]:
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


def spectra(frames: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Hann power spectra in a band, scaled so a row sums to the frame's mean power in that band."""
    win = np.hanning(frames.shape[1])
    n_fft = 1 << max(1, int(math.ceil(math.log2(frames.shape[1]))))
    spec = np.abs(np.fft.rfft(frames * win, n=n_fft, axis=1)) ** 2 * (2.0 / (n_fft * float(np.sum(win * win))))
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    band = (freqs >= lo) & (freqs <= min(hi, 0.45 * sr))
    return spec[:, band]


def flatness(spec: np.ndarray) -> np.ndarray:
    spec = spec + 1e-20
    return np.exp(np.mean(np.log(spec), axis=-1)) / np.mean(spec, axis=-1)


def pick(idx: np.ndarray, limit: int) -> np.ndarray:
    return idx if len(idx) <= limit else idx[np.linspace(0, len(idx) - 1, limit).astype(int)]
