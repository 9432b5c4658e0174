"""Loudness: integrated loudness after BS.1770 (pyloudnorm), against broadcast and streaming targets."""

from __future__ import annotations

import math

import numpy as np

from .report import Flag, Metrics
from .thresholds import LOUDNESS_BLOCK_S, LOUDNESS_LOUD_LUFS, LOUDNESS_QUIET_LUFS


def loudness(x: np.ndarray, sr: int) -> tuple[float | None, str | None]:
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


def measure_loudness(x: np.ndarray, sr: int, m: Metrics, flags: list[Flag]) -> None:
    """Integrated loudness, flagged when listeners would have to turn the take far up or down."""
    m.loudness_lufs, why = loudness(x, sr)
    if m.loudness_lufs is None:
        flags.append(Flag("loudness_unmeasured", "info", f"No integrated loudness: {why}"))
    elif m.loudness_lufs < LOUDNESS_QUIET_LUFS:
        flags.append(Flag("too_quiet", "warn", f"Integrated loudness {m.loudness_lufs:.1f} LUFS is very low; "
                          "normalise on export (broadcast uses -23, streaming -14 LUFS).",
                          m.loudness_lufs, LOUDNESS_QUIET_LUFS, "LUFS"))
    elif m.loudness_lufs > LOUDNESS_LOUD_LUFS:
        flags.append(Flag("too_loud", "warn", f"Integrated loudness {m.loudness_lufs:.1f} LUFS is very high; "
                          "lower it (streaming uses -14 LUFS).", m.loudness_lufs, LOUDNESS_LOUD_LUFS, "LUFS"))
