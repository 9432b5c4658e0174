"""Between bark_core's ``Audio`` artifact and ComfyUI's AUDIO dict.

ComfyUI's AUDIO is ``{"waveform": float32 tensor [B, C, T] in -1..1, "sample_rate": int}``. We add
one extra key, ``bark_artifact``, holding the artifact the waveform came from, so later Bark nodes
(inspect now, label/export later) still see its provenance. Core nodes ignore extra keys; a node
that changes the waveform makes a new dict, and the key is then checked against the samples
before it is trusted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bark_core import Audio, Provenance
from bark_core.errors import ArtifactError

ARTIFACT_KEY = "bark_artifact"


def to_comfy(audio: Audio) -> dict[str, Any]:
    """Mono artifact -> AUDIO dict with batch 1 and one channel."""
    wave = torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32)).reshape(1, 1, -1)
    return {"waveform": wave, "sample_rate": int(audio.sample_rate), ARTIFACT_KEY: audio}


def check_comfy(value: Any) -> tuple[torch.Tensor, int]:
    """The waveform as [B, C, T] float and its rate, or a clear error for anything else on the link."""
    if not isinstance(value, dict) or "waveform" not in value or "sample_rate" not in value:
        raise ArtifactError(f"Expected ComfyUI AUDIO ({{'waveform', 'sample_rate'}}), got {type(value).__name__}.")
    wave = value["waveform"]
    if not isinstance(wave, torch.Tensor):
        wave = torch.as_tensor(np.asarray(wave))
    if wave.ndim == 1:
        wave = wave[None, None]
    elif wave.ndim == 2:
        wave = wave[None]
    if wave.ndim != 3:
        raise ArtifactError(f"AUDIO waveform must be [batch, channels, samples], got shape {tuple(wave.shape)}.")
    return wave.float(), int(value["sample_rate"])


def from_comfy(value: Any, index: int = 0) -> Audio:
    """AUDIO dict -> mono ``Audio`` artifact (channels averaged), keeping our provenance when it still fits."""
    wave, rate = check_comfy(value)
    if not 0 <= index < wave.shape[0]:
        raise ArtifactError(f"AUDIO batch has {wave.shape[0]} item(s); index {index} does not exist.")
    mono = wave[index].mean(dim=0).cpu().numpy().astype(np.float32)
    art = value.get(ARTIFACT_KEY) if isinstance(value, dict) else None
    if (isinstance(art, Audio) and art.sample_rate == rate and art.n_samples == mono.shape[0]
            and np.array_equal(art.samples, mono)):
        return art
    return Audio(samples=mono, sample_rate=rate,
                 provenance=Provenance(stage="external", settings={"channels": int(wave.shape[1])},
                                       extra={"source": "ComfyUI AUDIO"}))


def audio_stats(value: Any) -> tuple[float, int, int, int]:
    """(seconds, samples, sample rate, channels) of an AUDIO dict."""
    wave, rate = check_comfy(value)
    if rate <= 0:
        raise ArtifactError(f"AUDIO sample_rate must be positive, got {rate}.")
    n = int(wave.shape[-1])
    return n / rate, n, rate, int(wave.shape[1])
