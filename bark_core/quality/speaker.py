"""Who is speaking: a speaker embedding per take, and the cosine similarity of two of them.

The embedding comes from Resemblyzer's voice encoder (a 3-layer LSTM trained for speaker verification; its
weights ship inside the PyPI package, so it works offline) when ``resemblyzer`` is installed
(``pip install 'bark-stages[script]'``). Without it, a DSP fallback describes the voice by the mean and
spread of its mel-cepstrum (MFCC statistics): cruder, good enough to tell two clearly different voices
apart, and the result always says which engine made it. Similarities of the two engines live on different
scales, so their thresholds differ (see :data:`SIMILARITY_MIN`).
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio_io import resample

log = logging.getLogger(__name__)

SPEAKER_RATE = 16_000  # both engines work on 16 kHz speech (Resemblyzer was trained at 16 kHz)
ENGINES = ("auto", "resemblyzer", "mfcc")
# Cosine similarity at or above which two takes count as the same speaker, per engine.
# Resemblyzer: on our espeak-ng test voices one voice's sentences score 0.75-0.85 and a male against a female
# voice 0.47-0.58 (measured 2026-11-30, tests/test_script_scoring.py); 0.70 sits between with room on both
# sides. MFCC statistics: every voice is a vowel-heavy spectrum, so different voices still score 0.80-0.85 and
# one voice 0.96-0.98; 0.92 sits between.
SIMILARITY_MIN = {"resemblyzer": 0.70, "mfcc": 0.92}
MIN_SPEECH_S = 0.5  # Resemblyzer's VAD may trim a noisy take to nothing: below this, embed the untrimmed take

_LOCK = threading.Lock()


@dataclass(frozen=True)
class SpeakerEmbedding:
    vector: np.ndarray
    engine: str

    def similarity(self, other: SpeakerEmbedding) -> float:
        return speaker_similarity(self, other)


@functools.lru_cache(maxsize=1)
def _encoder() -> Any:
    with warnings.catch_warnings():  # resemblyzer imports scipy.ndimage.morphology (deprecated namespace)
        warnings.simplefilter("ignore", DeprecationWarning)
        from resemblyzer import VoiceEncoder
    # torch.load in VoiceEncoder runs with torch's default weights_only=True (torch >= 2.6): tensors only
    return VoiceEncoder("cpu", verbose=False)


def resemblyzer_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("resemblyzer") is not None and importlib.util.find_spec("librosa") is not None
    except (ImportError, ValueError):
        return False


def pick_engine(engine: str = "auto") -> str:
    if engine not in ENGINES:
        raise ValueError(f"speaker engine must be one of {ENGINES}, got {engine!r}.")
    if engine == "auto":
        return "resemblyzer" if resemblyzer_available() else "mfcc"
    return engine


def engine_note(engine: str) -> str:
    if engine == "resemblyzer":
        return "resemblyzer voice encoder (weights shipped in the package, offline)"
    return ("MFCC statistics (DSP fallback; install resemblyzer for a real speaker model: "
            "pip install 'bark-stages[script]')")


def speaker_embedding(samples: np.ndarray, sample_rate: int, engine: str = "auto") -> SpeakerEmbedding:
    """A unit-length vector describing the voice of ``samples``; ``engine`` "auto" prefers Resemblyzer."""
    engine = pick_engine(engine)
    x = resample(np.asarray(samples, dtype=np.float64), sample_rate, SPEAKER_RATE).astype(np.float32)
    if engine == "resemblyzer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from resemblyzer import preprocess_wav

            wav = preprocess_wav(x, source_sr=SPEAKER_RATE) if len(x) else x
            if len(wav) < MIN_SPEECH_S * SPEAKER_RATE:
                wav = x
            with _LOCK:
                vec = _encoder().embed_utterance(np.pad(wav, (0, max(0, SPEAKER_RATE // 4 - len(wav)))))
    else:
        vec = mfcc_statistics(x, SPEAKER_RATE)
    vec = np.asarray(vec, dtype=np.float64)
    norm = float(np.linalg.norm(vec))
    return SpeakerEmbedding(vec / norm if norm > 0 else vec, engine)


def speaker_similarity(a: SpeakerEmbedding, b: SpeakerEmbedding) -> float:
    """Cosine similarity of two embeddings of the same engine (1.0 = identical direction)."""
    if a.engine != b.engine:
        raise ValueError(f"cannot compare a {a.engine} embedding with a {b.engine} one; embed both with one engine.")
    return float(np.dot(a.vector, b.vector))


def mean_embedding(embeddings: list[SpeakerEmbedding]) -> SpeakerEmbedding | None:
    """The speaker's centre over several takes (unit length), or None for an empty list."""
    if not embeddings:
        return None
    v = np.mean([e.vector for e in embeddings], axis=0)
    n = float(np.linalg.norm(v))
    return SpeakerEmbedding(v / n if n > 0 else v, embeddings[0].engine)


def _mel_filterbank(n_fft: int, rate: int, n_mels: int) -> np.ndarray:
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    mels = np.linspace(hz_to_mel(np.array(60.0)), hz_to_mel(np.array(rate / 2 - 200.0)), n_mels + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    fb = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        fb[i] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0.0, None)
    return fb


def mfcc_statistics(x: np.ndarray, rate: int, n_mfcc: int = 20) -> np.ndarray:
    """Mean and standard deviation of MFCC 1..n-1 over the loud frames (c0, the level, left out)."""
    from scipy.fft import dct

    win, hop = int(0.025 * rate), int(0.010 * rate)
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    frames = np.lib.stride_tricks.as_strided(x, (n, win), (x.strides[0] * hop, x.strides[0])) * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, 512)) ** 2
    energy = 10 * np.log10(power.sum(axis=1) + 1e-12)
    loud = energy > energy.max() - 30.0  # the voice, not the pauses between words
    logmel = np.log(power[loud] @ _mel_filterbank(512, rate, 40).T + 1e-10)
    cep = dct(logmel, type=2, norm="ortho", axis=1)[:, 1:n_mfcc]
    return np.concatenate([cep.mean(axis=0), cep.std(axis=0)])
