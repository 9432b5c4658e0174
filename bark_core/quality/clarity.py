"""Clarity: how a take starts and ends — dead air at the edges, and endings cut off mid-sound."""

from __future__ import annotations

import numpy as np

from .report import Flag, Metrics
from .signal import Activity, db
from .thresholds import ABRUPT_END_DB, EDGE_SILENCE_WARN_S, END_WINDOW_S, LOUD_PERCENTILE


def measure_end(x: np.ndarray, sr: int, act: Activity, m: Metrics, flags: list[Flag]) -> None:
    """The end of the take, measured against the speech level, or for a steady sound against its own level."""
    tail_db = db(float(np.mean(x[-max(1, round(END_WINDOW_S * sr)):] ** 2)))
    steady = m.speech_level_dbfs is None
    reference = float(np.percentile(act.frame_level, LOUD_PERCENTILE)) if steady else m.speech_level_dbfs
    m.end_level_db = tail_db - reference
    if m.end_level_db > ABRUPT_END_DB and (steady or tail_db > act.threshold_db):
        flags.append(Flag("abrupt_end", "warn", f"The take ends mid-sound: its last 20 ms are only "
                          f"{max(0.0, -m.end_level_db):.1f} dB under the {'sound' if steady else 'speech'} level. "
                          "Words may be cut off; regenerate or add a fade-out.", m.end_level_db, ABRUPT_END_DB, "dB"))


def edge_silence(m: Metrics, flags: list[Flag]) -> None:
    """Silence before the first and after the last sound, which an editor would trim."""
    if m.leading_silence_s is not None and m.leading_silence_s > EDGE_SILENCE_WARN_S:
        flags.append(Flag("leading_silence", "warn", f"{m.leading_silence_s:.2f} s of silence before the first "
                          "sound; trim it.", m.leading_silence_s, EDGE_SILENCE_WARN_S, "s"))
    if m.trailing_silence_s is not None and m.trailing_silence_s > EDGE_SILENCE_WARN_S:
        flags.append(Flag("trailing_silence", "warn", f"{m.trailing_silence_s:.2f} s of silence after the last "
                          "sound; trim it.", m.trailing_silence_s, EDGE_SILENCE_WARN_S, "s"))
