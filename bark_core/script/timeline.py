"""One timeline for a scene: takes placed one after another (scripts) or at their cue times (subtitles), exact
silences for pauses, gentle time compression for takes that overrun their cue, and the SRT of what was placed.

Placement rules:

* script lines follow each other with :data:`~bark_core.script.parse.LINE_GAP_S` between turns,
  :data:`~bark_core.script.parse.PARAGRAPH_PAUSE_S` after a blank line, and exactly the given seconds for a
  pause line;
* a subtitle cue's take starts at the cue's start time. If it is longer than the cue (after the retakes), it
  is compressed with ffmpeg's ``atempo`` (pitch kept) by at most :data:`MAX_COMPRESSION`; what still overruns
  is flagged "overflow", and a cue that cannot start on time because the one before overran starts right after
  it and is flagged "late". The SRT written out holds the times actually used.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..audio_io import parse_pipe_wav, require_tool, wav_bytes
from .parse import LINE_GAP_S, PARAGRAPH_PAUSE_S, Line

# Up to 15 % faster (tempo 1.176) speech still sounds natural (broadcast "time compression" stays within
# 10-20 %); beyond that syllables blur and listeners notice.
MAX_COMPRESSION = 0.15
TRIM_DB = 40.0  # edge audio more than 40 dB under the take's peak is silence, trimmed so pauses are exact
TRIM_KEEP_S = 0.02  # keep 20 ms at each edge: cutting right at the first sample clicks
PLACE_TOLERANCE_S = 0.010  # a cue counts as "on time" within 10 ms


@dataclass
class Placement:
    """Where one line's take went: its times on the timeline, the cue it was meant for and what was done."""

    number: int
    speaker: str | None
    text: str
    start_s: float
    end_s: float
    cue_start_s: float | None = None
    cue_end_s: float | None = None
    tempo: float = 1.0
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def trim_silence(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``samples`` without the near-silence at both ends (see :data:`TRIM_DB`)."""
    x = np.asarray(samples, dtype=np.float32)
    if not len(x):
        return x
    peak = float(np.max(np.abs(x)))
    if peak <= 0:
        return x[:0]
    loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (-TRIM_DB / 20))
    keep = int(TRIM_KEEP_S * sample_rate)
    return x[max(0, loud[0] - keep):min(len(x), loud[-1] + 1 + keep)]


def time_stretch(samples: np.ndarray, sample_rate: int, tempo: float) -> np.ndarray:
    """Play ``samples`` ``tempo`` times faster, pitch kept (ffmpeg ``atempo``, 0.5..2 in one pass)."""
    if abs(tempo - 1.0) < 1e-6:
        return np.asarray(samples, dtype=np.float32)
    if not 0.5 <= tempo <= 2.0:
        raise ValueError(f"tempo must be within 0.5..2, got {tempo}.")
    ffmpeg = require_tool("ffmpeg", "time-compress a take that overruns its cue")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "wav", "-i", "pipe:0",
           "-af", f"atempo={tempo:.6f}", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    proc = subprocess.run(cmd, input=wav_bytes(samples, sample_rate), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg atempo failed: {proc.stderr.decode(errors='replace').strip()[-200:]}")
    out, _ = parse_pipe_wav(proc.stdout)
    return out


def fit_to_cue(samples: np.ndarray, sample_rate: int, cue_s: float) -> tuple[np.ndarray, float]:
    """Compress a take that overruns its cue by at most :data:`MAX_COMPRESSION`; returns (samples, tempo)."""
    dur = len(samples) / sample_rate
    if cue_s <= 0 or dur <= cue_s:
        return samples, 1.0
    tempo = min(dur / cue_s, 1.0 / (1.0 - MAX_COMPRESSION))
    return time_stretch(samples, sample_rate, tempo), tempo


def place(lines: list[Line], takes: dict[int, np.ndarray], sample_rate: int, *, timed: bool,
          stretch: bool = True) -> tuple[np.ndarray, list[Placement]]:
    """Lay the takes (by line number) on one track; returns the samples and where each line went."""
    placements: list[Placement] = []
    pieces: list[tuple[int, np.ndarray]] = []
    t = 0.0
    prev_spoken = False
    for line in lines:
        if line.is_pause:  # a silence of its own (in subtitles the cue times already make it)
            if not timed:
                t += sum(s.pause_s for s in line.segments)
                prev_spoken = False
            continue
        x = takes[line.number]
        p = Placement(number=line.number, speaker=line.speaker, text=line.text, start_s=t, end_s=t,
                      cue_start_s=line.start_s, cue_end_s=line.end_s)
        if timed:
            cue = float(line.cue_s or 0.0)
            if stretch and len(x) / sample_rate > cue:
                x, p.tempo = fit_to_cue(x, sample_rate, cue)
                if p.tempo > 1.0:
                    p.flags.append(f"compressed x{p.tempo:.3f}")
            start = max(float(line.start_s or 0.0), t)
            if start > float(line.start_s or 0.0) + PLACE_TOLERANCE_S:
                p.flags.append(f"late by {start - float(line.start_s or 0.0):.2f} s")
            if len(x) / sample_rate > cue + PLACE_TOLERANCE_S:
                p.flags.append(f"overflow {len(x) / sample_rate - cue:.2f} s")
        else:
            if prev_spoken:
                t += PARAGRAPH_PAUSE_S if line.paragraph else LINE_GAP_S
            elif line.paragraph and placements:
                t += PARAGRAPH_PAUSE_S
            start = t
        i0 = int(round(start * sample_rate))
        pieces.append((i0, x))
        p.start_s = i0 / sample_rate
        p.end_s = (i0 + len(x)) / sample_rate
        t = p.end_s
        prev_spoken = True
        placements.append(p)
    total = max((i0 + len(x) for i0, x in pieces), default=0)
    if timed and lines and lines[-1].end_s is not None:
        total = max(total, int(round(float(lines[-1].end_s) * sample_rate)))
    track = np.zeros(total, dtype=np.float32)
    for i0, x in pieces:
        track[i0:i0 + len(x)] += x
    return np.clip(track, -1.0, 1.0), placements


def placed_cues(placements: list[Placement]) -> list[dict[str, Any]]:
    """Cues for :func:`~bark_core.script.subtitles.compose_srt`: what was placed, where it was placed."""
    return [{"start_s": p.start_s, "end_s": p.end_s, "text": p.text, "speaker": p.speaker} for p in placements]
