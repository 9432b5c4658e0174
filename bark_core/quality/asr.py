"""An offline transcript and the word error rate (``jiwer``) against the text.

The recogniser is picked automatically (:func:`pick_engine`): faster-whisper or openai-whisper when the
package is installed AND its weights are already in the local cache (nothing is downloaded here), else
pocketsphinx's bundled English model. pocketsphinx is approximate by design: it spots skipped or invented
words, it does not grade takes; the engine's name goes into every result so a reader knows which it was.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from pathlib import Path
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
    """(substitutions + deletions + insertions) / reference words, after lower-casing and dropping cues.

    Computed by ``jiwer`` when installed (the ``script`` extra), else by the same edit distance here.
    """
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return None
    try:
        import jiwer
    except ImportError:
        jiwer = None
    if jiwer is not None:
        if not hyp:
            return 1.0  # every reference word deleted (jiwer refuses an empty hypothesis)
        return float(jiwer.wer(" ".join(ref), " ".join(hyp)))
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / len(ref)


WHISPER_MODELS = ("base.en", "small.en", "tiny.en", "base", "small", "tiny", "medium.en", "medium", "large-v3")
ENGINES = ("auto", "faster-whisper", "whisper", "pocketsphinx")


def _installed(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _cached_faster_whisper() -> str | None:
    """The first faster-whisper model whose weights are in the hub cache (BARK_ASR_MODEL first), or None."""
    if not _installed("faster_whisper"):
        return None
    from huggingface_hub import try_to_load_from_cache

    for name in filter(None, (os.environ.get("BARK_ASR_MODEL"), *WHISPER_MODELS)):
        hit = try_to_load_from_cache(f"Systran/faster-whisper-{name}", "model.bin")
        if isinstance(hit, str) and os.path.isfile(hit):
            return name
    return None


def _cached_openai_whisper() -> Path | None:
    if not _installed("whisper"):
        return None
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    for name in filter(None, (os.environ.get("BARK_ASR_MODEL"), *WHISPER_MODELS)):
        if (root / f"{name}.pt").is_file():
            return root / f"{name}.pt"
    return None


def pick_engine(engine: str = "auto") -> tuple[str, Any]:
    """(engine, model) to transcribe with: a cached Whisper first, then pocketsphinx; ("none", None) if neither."""
    if engine not in ENGINES:
        raise ValueError(f"ASR engine must be one of {ENGINES}, got {engine!r}.")
    if engine in ("auto", "faster-whisper"):
        name = _cached_faster_whisper()
        if name:
            return "faster-whisper", name
    if engine in ("auto", "whisper"):
        path = _cached_openai_whisper()
        if path:
            return "whisper", path
    if engine in ("auto", "pocketsphinx") and _installed("pocketsphinx"):
        return "pocketsphinx", None
    return "none", None


@functools.lru_cache(maxsize=2)
def _whisper_model(engine: str, model: Any) -> Any:
    if engine == "faster-whisper":
        from faster_whisper import WhisperModel

        return WhisperModel(model, device="cpu", compute_type="int8", local_files_only=True)
    import whisper

    return whisper.load_model(str(model), device="cpu")


def _run_engine(engine: str, model: Any, y: np.ndarray) -> str:
    if engine == "faster-whisper":
        segments, _ = _whisper_model(engine, model).transcribe(y.astype(np.float32), language="en", beam_size=1)
        return " ".join(s.text.strip() for s in segments)
    if engine == "whisper":
        return str(_whisper_model(engine, model).transcribe(y.astype(np.float32), language="en", fp16=False)["text"])
    pcm = (np.clip(y, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    with _SPHINX_LOCK:  # one shared decoder: loading the model costs more than decoding a take
        decoder = _sphinx_decoder()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


def transcribe(samples: np.ndarray, sample_rate: int, text: str | None = None, *,
               engine: str = "auto") -> dict[str, Any]:
    """Offline transcript with the best recogniser at hand (see :func:`pick_engine`) and its WER against ``text``.

    Never raises for a missing recogniser: the result says it was not available, so a report can
    still be made on machines without it.
    """
    from importlib.metadata import PackageNotFoundError, version

    name, model = pick_engine(engine)
    if name == "none":
        return {"available": False, "engine": "pocketsphinx", "approximate": True,
                "note": "pocketsphinx is not installed (pip install pocketsphinx) and no Whisper model is cached; "
                        "no transcript was made."}
    dist = {"faster-whisper": "faster-whisper", "whisper": "openai-whisper"}.get(name, "pocketsphinx")
    try:
        ver = version(dist)
    except PackageNotFoundError:
        ver = "?"
    label = {"faster-whisper": f"faster-whisper {ver} ({model}, cached)",
             "whisper": f"openai-whisper {ver} ({Path(str(model)).stem}, cached)"}.get(
        name, f"pocketsphinx {ver} (bundled en-us model)")
    transcript = _run_engine(name, model, resample(samples, sample_rate, ASR_RATE))
    approximate = name == "pocketsphinx"
    out: dict[str, Any] = {
        "available": True,
        "engine": label,
        "approximate": approximate,
        "transcript": transcript,
        "wer": None if text is None else word_error_rate(text, transcript),
        "note": "Approximate: a small offline English recogniser; use it to spot gross errors, not to grade takes."
        if approximate else "Whisper transcript from a locally cached model.",
    }
    if text is not None and any(ord(ch) > 0x24F for ch in CUE.sub("", text) if ch.isalpha()):
        out["note"] += " The text is not in Latin script, so the English model's WER is meaningless here."
    return out
