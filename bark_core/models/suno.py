"""Finding and safely loading Bark weights: Suno's original ``.pt`` files and the hub's folders.

Suno's pickles hold numpy scalars (``best_val_loss``), which ``torch.load(weights_only=True)``
refuses since torch 2.6 (suno-ai/bark#626). Instead of falling back to full unpickling, which
would execute whatever code a file carries, we allow exactly the globals those files use.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import constants as C
from ..errors import CheckpointError
from ..fileio import atomic_write
from ..hub import file_sha256, public_file_id
from .device import return_freed_memory
from .gpt import GPTConfig, build_model, check_config
from .quant import quantize_

log = logging.getLogger(__name__)

_np_scalar = np.dtype("f8").type(0).__reduce__()[0]  # numpy's scalar reconstructor, wherever numpy keeps it
# Exactly what Suno's checkpoints reference, under the names numpy 1.x and 2.x pickle them with.
SAFE_GLOBALS: list[Any] = [
    (_np_scalar, "numpy.core.multiarray.scalar"),
    (_np_scalar, "numpy._core.multiarray.scalar"),
    np.dtype,
    (codecs.encode, "_codecs.encode"),
]
for _dt in ("Float64DType", "Float32DType", "Int64DType"):
    if hasattr(np, "dtypes") and hasattr(np.dtypes, _dt):
        SAFE_GLOBALS.append(getattr(np.dtypes, _dt))

STAGE_KEYS = ("text", "coarse", "fine")


@dataclass
class LoadedModel:
    """A model plus what provenance needs to say about it."""

    model: torch.nn.Module
    stage: str
    config: GPTConfig
    model_id: str
    checksum: str
    untrained: bool = False


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
                    allow: Sequence[Any] | None = None) -> Any:
    """``torch.load`` that never executes code from the file.

    ``allow``: the globals a file may reference besides tensors and plain containers (default: what
    Suno's checkpoints use, :data:`SAFE_GLOBALS`; ``()`` for plain state dicts)."""
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS if allow is None else allow)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it references {found.group(1)})" if found else ""
        raise CheckpointError(
            f"Refusing to load {path}: the file asks to run code or build objects that are not plain weights"
            f"{what}. Only load checkpoints from sources you trust, and re-save them as plain tensors."
        ) from exc
    except Exception as exc:  # zip and storage errors, truncation, type errors from a damaged pickle
        raise CheckpointError(
            f"Cannot read checkpoint {path} ({exc}). The file may be truncated; delete it and download it again."
        ) from exc


def suno_filename(stage: str, size: str) -> str:
    if size not in C.SUNO_CHECKPOINT_FILES:
        raise CheckpointError(f"Unknown model size {size!r}; use 'large' or 'small'.")
    if stage not in STAGE_KEYS:
        raise CheckpointError(f"Unknown model stage {stage!r}; use one of {STAGE_KEYS}.")
    return C.SUNO_CHECKPOINT_FILES[size][stage]


def _config_from_args(stage: str, args: Any, source: str = "the checkpoint") -> GPTConfig:
    """Our config from a checkpoint's ``model_args``, bounds-checked before any model is built."""
    if not isinstance(args, dict):
        raise CheckpointError(f"{source}: model_args must be a dict, got {type(args).__name__}. The file is damaged.")
    args = dict(args)
    if "vocab_size" in args:  # older checkpoints carry one vocabulary for both ends
        vocab = args.pop("vocab_size")
        args.setdefault("input_vocab_size", vocab)
        args.setdefault("output_vocab_size", vocab)
    known = set(GPTConfig.__dataclass_fields__)

    def plain(v: Any) -> Any:
        return v.item() if isinstance(v, (np.generic, torch.Tensor)) and getattr(v, "ndim", 0) == 0 else v

    cfg = GPTConfig(**{k: plain(v) for k, v in args.items() if isinstance(k, str) and k in known})
    return check_config(stage, cfg, source, error=CheckpointError)


def state_dict_from_suno(raw: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Strip torch.compile's ``_orig_mod.`` prefix and the causal-mask buffers."""
    out = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"The checkpoint's weights hold {type(value).__name__} under {key!r:.60}; a Bark "
                                  "checkpoint holds only tensors. The file is damaged.")
        if key.startswith("_orig_mod."):
            key = key[len("_orig_mod."):]
        if key.endswith(".attn.bias") and value.dim() == 4:
            continue
        out[key] = value
    return out


def all_finite(tensor: torch.Tensor, chunk: int = 1 << 22) -> bool:
    """``isfinite(t).all()`` a few million values at a time: on a whole 400 MB embedding, isfinite's
    temporaries (an absolute copy and two masks) raised a small model's load peak by 0.6 GB."""
    flat = tensor.detach().reshape(-1)
    return all(bool(torch.isfinite(part).all()) for part in flat.split(chunk))


def load_model_weights(stage: str, config: GPTConfig, state_dict: dict[str, torch.Tensor], *, source: str,
                       device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                       quant: str | None = None) -> torch.nn.Module:
    """Build the model and load weights, naming any key mismatch in the error.

    ``quant="int8"``: the linear layers are quantised once here, from the weights as read, and only
    their int8 form is kept (:mod:`bark_core.models.quant`). ``state_dict`` is emptied: its tensors
    move into the model, and the stored precision of each is dropped once it is converted.
    """
    with torch.device("meta"):
        model = build_model(stage, config)
    expected = set(model.state_dict())
    got = set(state_dict)
    missing, extra = sorted(expected - got), sorted(got - expected)
    if missing or extra:
        raise CheckpointError(
            f"{source} does not fit Bark's {stage} model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}. Is it the {stage} checkpoint?"
        )
    expected_shapes = {k: v.shape for k, v in model.state_dict().items()}
    bad = [f"{k} {tuple(state_dict[k].shape)} != {tuple(s)}" for k, s in expected_shapes.items()
           if state_dict[k].shape != s]
    if bad:
        raise CheckpointError(f"{source} has tensors of the wrong shape for its config: {bad[:3]}. The config and "
                              "weights may be from different checkpoints; re-download it.")
    for key, tensor in state_dict.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            raise CheckpointError(f"{source}: weight {key} has dtype {tensor.dtype}; weights are floating point. "
                                  "The file is damaged.")
        if not all_finite(tensor):
            raise CheckpointError(f"{source}: weight {key} holds NaN or infinite values; the file is damaged. "
                                  "Delete it and download it again.")
    try:
        model.load_state_dict(state_dict, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source} has tensors of the wrong shape for its config: {exc}") from exc
    # the model now holds the only references the loaders keep, so each stored (fp32) tensor is freed as soon as
    # its quantised or cast copy exists, instead of the whole stage staying in memory until this returns
    state_dict.clear()
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    # cast first (one tensor at a time), then quantise: int8 is made from the weights in ``dtype`` whichever
    # file format they came from (the transformers loader reads them cast already)
    model = model.to(dtype=dtype)
    if quant == "int8":
        quantize_(model, dtype)
    elif quant is not None:
        raise ValueError(f"Unknown quantisation {quant!r}; use 'int8' or None.")
    model = model.to(device=device).eval()
    return_freed_memory()  # the stored (fp32) tensors just freed
    return model


def load_suno_checkpoint(path: str | os.PathLike, stage: str, *, device: str | torch.device = "cpu",
                         dtype: torch.dtype = torch.float32, model_id: str | None = None,
                         quant: str | None = None) -> LoadedModel:
    """Load one of Suno's original ``.pt`` files (or a file in the same layout)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint file at {path}. Check the path or let bark_core download it.")
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_args" not in ckpt:
        raise CheckpointError(f"{path} is not a Bark checkpoint (expected a dict with 'model' and 'model_args').")
    config = _config_from_args(stage, ckpt["model_args"], str(path))
    if not isinstance(ckpt["model"], dict):
        raise CheckpointError(f"{path}: 'model' must be a dict of tensors, got {type(ckpt['model']).__name__}.")
    model = load_model_weights(stage, config, state_dict_from_suno(ckpt.pop("model")), source=str(path),
                               device=device, dtype=dtype, quant=quant)
    checksum = file_sha256(path)
    return LoadedModel(model=model, stage=stage, config=config, model_id=model_id or public_file_id(path, checksum),
                       checksum=checksum, untrained=bool(ckpt.get("untrained", False)))


class _SunoPickler(pickle._Pickler):  # pure-Python pickler so save_global can be overridden
    """Writes numpy scalars under numpy 1.x's name, exactly as Suno's published files do."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _np_scalar:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\nscalar\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


class _SunoPickleModule:
    Pickler = _SunoPickler
    Unpickler = pickle.Unpickler
    __name__ = "pickle"


def save_suno_checkpoint(path: str | os.PathLike, model: torch.nn.Module, config: GPTConfig, *,
                         best_val_loss: float = float("nan"), untrained: bool = False) -> Path:
    """Write weights in Suno's ``.pt`` layout (dict of model_args, model, best_val_loss as a numpy scalar)."""
    args = {k: v for k, v in config.to_dict().items() if k not in ("n_codes_total", "n_codes_given")}
    if isinstance(model, torch.nn.Module) and hasattr(model, "lm_heads"):
        args.update(n_codes_total=config.n_codes_total, n_codes_given=config.n_codes_given)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {"model_args": args, "model": state, "best_val_loss": np.float64(best_val_loss),
               "iter_num": 0}
    if untrained:
        payload["untrained"] = True
    buf = io.BytesIO()
    torch.save(payload, buf, pickle_module=_SunoPickleModule, pickle_protocol=2)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return Path(path)
