"""The recording a voice is made from: read within limits, mono, with what identifies it.

A recording can be anything a user has: a 3-second clip or a 2-hour interview. Only the part that is
used is decoded (``start_s``/``end_s``), and nothing longer than :data:`MAX_RECORDING_S` is taken in at
once, so memory stays bounded; a file is identified by its name and sha256, never its folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..artifacts import Audio
from ..audio_io import AudioFileError, read_audio_range
from ..errors import BarkError
from ..hub import file_sha256
from ..models.codec import _mono_float

MAX_RECORDING_S = 300.0  # analysed at once; a longer file needs start_s/end_s (only that range is read)
MIN_RECORDING_S = 1.0  # under a second there is not one phrase to learn a voice from


class RecordingError(BarkError, ValueError):
    """A recording cannot become a voice: empty, too short, silent, or a bad range."""


@dataclass
class Recording:
    """Mono float32 samples of the part of a recording in use, and where they sit in the whole."""

    samples: np.ndarray
    sample_rate: int
    offset_s: float = 0.0
    duration_s: float | None = None  # the whole recording, where known
    file: str | None = None
    sha256: str | None = None
    parent: Audio | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def _check_range(start_s: float | None, end_s: float | None) -> None:
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0):
            raise RecordingError(f"{name}={value!r}: give a time in seconds from the start of the recording (>= 0).")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise RecordingError(f"end_s={end_s} is not after start_s={start_s}; give 0 <= start_s < end_s in seconds.")


def load_recording(audio: Audio | np.ndarray | str | os.PathLike, *, sample_rate: int | None = None,
                   start_s: float | None = None, end_s: float | None = None,
                   max_s: float = MAX_RECORDING_S) -> Recording:
    """An Audio artifact, an array of samples (with ``sample_rate``) or an audio file, cut to
    ``[start_s, end_s)``. Refuses empty input, under :data:`MIN_RECORDING_S`, and over ``max_s`` seconds
    (a file is then not read at all: pass a range)."""
    _check_range(start_s, end_s)
    if isinstance(audio, (str, os.PathLike)):
        path = Path(audio)
        if path.is_dir():
            raise AudioFileError(f"{path} is a folder; give the path of an audio file (WAV, FLAC, MP3, OGG...).")
        samples, rate, total = read_audio_range(path, start_s, end_s, max_s=max_s)
        rec = Recording(samples.astype(np.float32, copy=False), rate, float(start_s or 0.0), total, path.name,
                        file_sha256(path))
    else:
        parent = audio if isinstance(audio, Audio) else None
        if parent is not None:
            if sample_rate is not None and int(sample_rate) != parent.sample_rate:
                raise RecordingError(f"sample_rate={sample_rate} contradicts the Audio's own rate "
                                     f"{parent.sample_rate}; leave it out.")
            samples, rate = parent.samples, parent.sample_rate
        elif isinstance(audio, np.ndarray):
            if sample_rate is None or int(sample_rate) <= 0:
                raise RecordingError("A bare array of samples needs sample_rate=<Hz>; an Audio carries its own.")
            samples, rate = _mono_float(audio), int(sample_rate)
        else:
            raise RecordingError(f"A recording is an Audio, an array of samples or an audio file path, got "
                                 f"{type(audio).__name__}.")
        total = len(samples) / rate
        lo = 0 if start_s is None else int(round(start_s * rate))
        hi = len(samples) if end_s is None else min(len(samples), int(round(end_s * rate)))
        if start_s is not None and lo >= len(samples):
            raise RecordingError(f"start_s={start_s} is past the end of the recording ({total:.2f} s).")
        if (hi - lo) / rate > max_s + 1.0 / rate:
            what = "The recording" if start_s is None and end_s is None else "The chosen range"
            raise RecordingError(f"{what} lasts {(hi - lo) / rate:.0f} s, more than the {max_s:g} s analysed at "
                                 "once. Pass start_s/end_s around the part to use (a voice needs 5-10 s).")
        rec = Recording(np.ascontiguousarray(samples[lo:hi], dtype=np.float32), rate, lo / rate, total,
                        parent=parent)
    if rec.samples.size == 0:
        raise RecordingError("The recording is empty (no samples in the chosen range); a voice needs 5-10 s of "
                             "clear speech by one speaker.")
    if rec.seconds < MIN_RECORDING_S:
        raise RecordingError(f"The recording lasts {rec.seconds:.2f} s, too short for a voice: give at least "
                             f"{MIN_RECORDING_S:g} s, ideally 5-10 s of clear speech by one speaker.")
    if not np.all(np.isfinite(rec.samples)):
        raise RecordingError("The recording holds NaN or infinite samples; the file or array is damaged.")
    return rec
