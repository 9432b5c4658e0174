"""An offline transcript (pocketsphinx's bundled English model) and the word error rate against the text.

Approximate by design: it spots skipped or invented words, it does not grade takes.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

import numpy as np

from ..audio_io import resample
from .speech import CUE
from .thresholds import ASR_RATE

_SPHINX_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _sphinx_decoder() -> Any:
    from pocketsphinx import Config, Decoder

    return Decoder(Config(loglevel="FATAL", samprate=ASR_RATE))


def _words(text: str) -> list[str]:
    text = CUE.sub(" ", text).replace("♪", " ").lower()
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
    if text is not None and any(ord(ch) > 0x24F for ch in CUE.sub("", text) if ch.isalpha()):
        out["note"] += " The text is not in Latin script, so the English model's WER is meaningless here."
    return out
