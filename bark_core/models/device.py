"""Where a stage runs and in what precision: device and dtype names resolved once, for every stage."""

from __future__ import annotations

import re

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


class DeviceError(ParameterError):
    """A device name is wrong, or names hardware this machine (or this torch build) does not have."""


def check_device(name: object, option: str = "device") -> str:
    """``name`` if this machine can run on it ("auto", "cpu", "cuda", "cuda:N", "mps"), else a DeviceError.

    Checked when a model set is made, so a missing GPU is reported before any weights load.
    """
    text = "auto" if name is None else str(name).strip().lower()
    match = re.fullmatch(r"(auto|cpu|mps|cuda)(?::(\d+))?", text)
    if match is None or (match.group(2) is not None and match.group(1) in ("auto", "cpu")):
        raise DeviceError(f"{option} {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps.")
    kind, index = match.group(1), match.group(2)
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise DeviceError(f"{option} {text}: no CUDA GPU is usable here (torch {torch.__version__}, {build}); "
                              "use cpu or auto.")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise DeviceError(f"{option} {text}: this machine has {count} CUDA GPU(s), numbered 0..{count - 1}.")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise DeviceError(f"{option} {text}: Apple's MPS is not available on this machine; use cpu or auto.")
    return text


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
