"""Recording -> Bark semantic tokens: a HuBERT feature extractor and a quantizer that fit each other.

The pair is what a voice's provenance names: which HuBERT (and which of its layers), which quantizer
file (its name, where it came from, its sha256 and the language it was trained on).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from .hubert import HUBERT_REPO, HubertFeatures, load_hubert
from .quantizer import LoadedQuantizer, load_quantizer, resolve_quantizer

METHOD = "hubert-quantizer"


@dataclass
class AudioSemanticEncoder:
    """HuBERT features through the quantizer: one Bark semantic token per 20 ms frame of the recording."""

    hubert: HubertFeatures
    quantizer: LoadedQuantizer

    def __post_init__(self) -> None:
        if self.quantizer.input_size != self.hubert.hidden_size:
            raise CheckpointError(
                f"The quantizer {self.quantizer.name} reads {self.quantizer.input_size}-wide features but the HuBERT "
                f"{self.hubert.source} gives {self.hubert.hidden_size}-wide ones: they were not trained together. "
                f"Use {HUBERT_REPO} with the official quantizers."
            )

    @property
    def model_id(self) -> str:
        return f"{self.hubert.source}@layer{self.hubert.layer}+{self.quantizer.name}"

    def features(self, samples: np.ndarray, sample_rate: int) -> torch.Tensor:
        return self.hubert(samples, sample_rate)

    def tokens(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono float samples at ``sample_rate`` -> int64 semantic tokens (0..9999), one per HuBERT frame."""
        return self.quantizer.tokens(self.hubert(samples, sample_rate))

    def describe(self) -> dict[str, Any]:
        """For a voice's source and every label made with it: no local paths, only names and checksums."""
        return {"method": METHOD, "hubert": {"source": self.hubert.source, "layer": self.hubert.layer,
                                             "checksum": self.hubert.checksum},
                "quantizer": self.quantizer.describe()}


def load_audio_semantic(hubert: str | os.PathLike = HUBERT_REPO, quantizer: str | os.PathLike | None = None, *,
                        default_quantizer: str | os.PathLike | None = None, folder: str | os.PathLike | None = None,
                        device: str | torch.device = "cpu", cache_dir: str | os.PathLike | None = None,
                        local_files_only: bool | None = None) -> AudioSemanticEncoder:
    """Load both halves (see :func:`~bark_core.models.hubert.load_hubert` and
    :func:`~bark_core.models.quantizer.resolve_quantizer` for what ``hubert`` and ``quantizer`` accept)."""
    path, name, source = resolve_quantizer(quantizer, default=default_quantizer, folder=folder, cache_dir=cache_dir,
                                           local_files_only=local_files_only)
    quant = load_quantizer(path, name=name, source=source, device=device)
    feats = load_hubert(hubert, device=device, cache_dir=cache_dir, local_files_only=local_files_only)
    return AudioSemanticEncoder(hubert=feats, quantizer=quant)
