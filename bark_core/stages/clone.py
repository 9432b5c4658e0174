"""The model work of a voice from a recording: semantic tokens (HuBERT + quantizer) and EnCodec codes.

Both run on one stretch of audio chosen beforehand (see :func:`bark_core.cloning.voice_from_audio`, which
also asks for the rights record, picks the stretch and checks the recording). HuBERT frames run at
exactly 50 Hz (320 samples at 16 kHz) and EnCodec frames at 75 Hz, so over the same audio the codes are
cut to 1.5 frames per semantic token, the ratio Bark's voices keep; both start where the audio starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..artifacts import Audio, Provenance, SemanticTokens
from ..errors import ArtifactError, VoiceError
from ..models import codec
from ..models.codec import _mono_float

SEMANTIC_CHOICES = ("hubert", "none")


def _samples(audio: Audio | np.ndarray, sample_rate: int | None) -> tuple[np.ndarray, int, Audio | None]:
    if isinstance(audio, Audio):
        if sample_rate is not None and int(sample_rate) != audio.sample_rate:
            raise ArtifactError(f"sample_rate={sample_rate} contradicts the Audio's own rate {audio.sample_rate}.")
        return audio.samples, audio.sample_rate, audio
    if isinstance(audio, np.ndarray):
        if sample_rate is None or int(sample_rate) <= 0:
            raise ArtifactError("A bare array of samples needs sample_rate=<Hz>; an Audio carries its own.")
        return _mono_float(audio), int(sample_rate), None
    raise ArtifactError(f"Expected an Audio or a numpy array of samples, got {type(audio).__name__}.")


def semantic_from_audio(models: Any, audio: Audio | np.ndarray, *, sample_rate: int | None = None,
                        quantizer: str | os.PathLike | None = None,
                        hubert: str | os.PathLike | None = None) -> SemanticTokens:
    """Bark semantic tokens of a recording, one per 20 ms: HuBERT-base features through the quantizer
    (``models.semantic_encoder``). The provenance names both, the quantizer with its sha256 and language."""
    samples, sr, parent = _samples(audio, sample_rate)
    encoder = models.semantic_encoder(quantizer, hubert)
    tokens = encoder.tokens(samples, sr)
    prov = Provenance(stage="encode", model=encoder.model_id, model_checksum=encoder.quantizer.sha256,
                      settings={**encoder.describe(), "source_sample_rate": sr},
                      parent=parent.id if parent is not None else None,
                      lineage=parent.lineage_ids() if parent is not None else ())
    return SemanticTokens(tokens=tokens, provenance=prov, parent=parent)


@dataclass
class AudioPrompts:
    """The three prompt arrays of one stretch of audio, and how the semantic one was made."""

    semantic: np.ndarray
    codes: np.ndarray  # (8, frames) EnCodec codes at 75 Hz; the coarse prompt is the first two rows
    semantic_info: dict[str, Any] = field(default_factory=dict)
    encoded_from: str | None = None


def aligned_lengths(n_semantic: int, n_codes: int) -> tuple[int, int]:
    """Longest (semantic, code) frame counts at 1.5 code frames per token that both arrays can give."""
    n_semantic = min(n_semantic, (2 * n_codes) // 3)
    return n_semantic, (3 * n_semantic) // 2


def prompts_from_audio(models: Any, audio: Audio | np.ndarray, *, sample_rate: int | None = None,
                       semantic: Any = "hubert", quantizer: str | os.PathLike | None = None,
                       hubert: str | os.PathLike | None = None) -> AudioPrompts:
    """Semantic tokens and EnCodec codes of the same audio, cut to Bark's coarse/semantic ratio.

    ``semantic``: "hubert" (HuBERT + quantizer), "none" (empty: a partial voice that steers timbre and
    recording conditions but not speaking style), or tokens made elsewhere (a :class:`SemanticTokens` or an
    array) for the same audio; those and the codes are aligned at their ends, as Bark reads a prompt.
    """
    samples, sr, parent = _samples(audio, sample_rate)
    if isinstance(semantic, str) and semantic not in SEMANTIC_CHOICES:
        raise VoiceError(f"semantic={semantic!r}: use 'hubert' (tokens from the recording), 'none' (a partial "
                         "voice without semantic prompt) or semantic tokens of the same recording.")
    if semantic is None:
        raise VoiceError("semantic=None is ambiguous: pass 'hubert', 'none' or semantic tokens.")
    # HuBERT and the quantizer first: a missing extra or a refused file fails before the codec is loaded
    sem_art = (semantic_from_audio(models, samples, sample_rate=sr, quantizer=quantizer, hubert=hubert)
               if semantic == "hubert" else None)
    with models.use("codec") as codec_model:
        fine = codec.encode(samples, codec_model, sample_rate=sr)
    codes = fine.codes
    if isinstance(semantic, str):
        if sem_art is None:
            return AudioPrompts(np.zeros(0, np.int64), codes, {"method": "none"}, fine.id)
        n_sem, n_codes = aligned_lengths(sem_art.n_frames, codes.shape[1])
        info = {k: v for k, v in sem_art.provenance.settings.items() if k != "source_sample_rate"}
        return AudioPrompts(sem_art.tokens[:n_sem], codes[:, :n_codes], info, fine.id)
    tokens = semantic.tokens if isinstance(semantic, SemanticTokens) else np.asarray(semantic)
    info = {"method": "supplied"}
    if isinstance(semantic, SemanticTokens):
        info["id"] = semantic.id
    tokens = SemanticTokens(tokens=tokens, provenance=Provenance(stage="semantic")).tokens  # validated ids
    n_sem, n_codes = aligned_lengths(len(tokens), codes.shape[1])
    if n_sem == 0:
        raise VoiceError("The supplied semantic tokens are empty or the audio too short for one token.")
    return AudioPrompts(tokens[len(tokens) - n_sem:], codes[:, codes.shape[1] - n_codes:], info, fine.id)

