"""Where a stage runs and in what precision: device and dtype names resolved once, for every stage."""

from __future__ import annotations

import torch

from ..errors import ParameterError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(value: str | torch.dtype | None, device: str) -> torch.dtype:
    """``None``/"auto" means bf16 on CUDA when supported (as Suno's autocast), else fp32."""
    if isinstance(value, torch.dtype):
        return value
    if value in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return DTYPES[str(value).lower()]
    except KeyError:
        raise ParameterError(f"Unknown precision {value!r:.40}; use fp32, fp16 or bf16.") from None
