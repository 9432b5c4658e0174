"""Where a stage runs and in what precision: device and precision names resolved once, for every stage.

Two kinds of precision: the weights stored in one dtype (fp32, fp16, bf16), or Suno's own CUDA mode,
"autocast": fp32 weights with matmuls and attention run in bf16 by ``torch.autocast`` and TF32 on for
what stays fp32. bf16 weights halve the memory and the bytes each decode step reads; autocast keeps
Suno's numerics (what ``bark==0.1.5`` does on a GPU) at fp32's memory and more traffic per step.
"int8" stores the linear layers' weights as int8 with a scale per output channel and runs the rest in
bf16 (:mod:`bark_core.models.quant`): a quarter of fp32's bytes per step.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .. import constants as C
from ..errors import ParameterError

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
          "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
AUTOCAST_NAMES = ("autocast", "fp32-autocast", "amp")
PRECISION_NAMES = C.PRECISION_NAMES
INT8_NAMES = ("int8", "int8-weight-only")


@dataclass(frozen=True)
class Precision:
    """The dtype weights are stored in, and the dtype ``torch.autocast`` runs them in (None: no autocast)."""

    weights: torch.dtype
    autocast: torch.dtype | None = None
    quant: str | None = None  # "int8": the linear layers hold int8 weights, the rest ``weights`` (bf16)

    @property
    def name(self) -> str:
        """Identity for cache keys: a plain dtype keeps the name it always had."""
        if self.quant is not None:
            return self.quant
        if self.autocast is None:
            return str(self.weights)
        return f"{self.weights}+autocast:{self.autocast}"

    @property
    def choice(self) -> str:
        """The name a user picks this precision by (one of PRECISION_NAMES), as the CLI and front ends show it."""
        if self.quant is not None:
            return self.quant
        if self.autocast is not None:
            return "autocast"
        return {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.weights, "auto")

    @contextlib.contextmanager
    def context(self, device: str | torch.device) -> Iterator[None]:
        """Run a stage in this precision on ``device``: autocast, and TF32 on CUDA (restored afterwards)."""
        if self.autocast is None:
            yield
            return
        kind = torch.device(device).type
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        if kind == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            with torch.autocast(kind, dtype=self.autocast):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


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


def resolve_precision(value: str | torch.dtype | Precision | None, device: str) -> Precision:
    """A precision name (fp32, fp16, bf16, int8, autocast, auto) or dtype for a stage on ``device``.

    "auto" means bf16 weights on CUDA when supported (fast and half the memory), else fp32.
    """
    if isinstance(value, Precision):
        return value
    if isinstance(value, torch.dtype):
        return Precision(value)
    if value in (None, "auto"):
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16)
        return Precision(torch.float32)
    name = str(value).lower()
    if name in AUTOCAST_NAMES:
        return Precision(torch.float32, torch.bfloat16)
    if name in INT8_NAMES:
        return Precision(torch.bfloat16, quant="int8")
    try:
        return Precision(DTYPES[name])
    except KeyError:
        raise ParameterError(f"Unknown precision {value!r:.40}; use fp32, fp16, bf16, int8 (int8 linear "
                             "weights, bf16 elsewhere) or autocast (fp32 weights under bf16 autocast, Suno's CUDA "
                             "mode).") from None


def resolve_dtype(value: str | torch.dtype | Precision | None, device: str) -> torch.dtype:
    """The dtype the weights are stored in (fp32 for autocast)."""
    return resolve_precision(value, device).weights


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """The dtype autocast runs in on ``device`` right now, or None when it is off there."""
    kind = torch.device(device).type
    try:
        return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None
    except (RuntimeError, TypeError):  # a device type without autocast support
        return None


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> object | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim  # glibc only; musl, macOS and Windows have none
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def return_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc), after a load or a stage on the CPU.

    Freed tensors of a few MB (int8 layers, prefill temporaries, a quantised model's float originals)
    stay in glibc's heap, resident, until trimmed: an int8 small take kept 200 MB of them, enough to
    put its peak above 60 % of bf16's. Elsewhere this does nothing.
    """
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
