"""Read the transformers-format Bark checkpoints (``suno/bark``, ``suno/bark-small``) into our models.

The Hub repos hold one ``BarkModel`` (``config.json`` plus ``model.safetensors`` and/or
``pytorch_model.bin``, possibly sharded behind an index json). Its sub-models carry the same weights
as Suno's ``text_2.pt``/``coarse_2.pt``/``fine_2.pt`` under transformers' names; this module picks one
stage out of it, renames the tensors back to Suno's names and derives our :class:`GPTConfig` from the
stage's sub-config, so ``build_model(stage, cfg).load_state_dict(sd)`` just works.

Name map (transformers -> ours), checked against ``transformers/models/bark/modeling_bark.py``::

    input_embeds_layer          transformer.wte           (causal models)
    input_embeds_layers.{k}     transformer.wtes.{k}      (fine model)
    position_embeds_layer       transformer.wpe
    layers.{i}.layernorm_1/2    transformer.h.{i}.ln_1/2
    layers.{i}.attn.att_proj    transformer.h.{i}.attn.c_attn
    layers.{i}.attn.out_proj    transformer.h.{i}.attn.c_proj
    layers.{i}.mlp.in_proj      transformer.h.{i}.mlp.c_fc
    layers.{i}.mlp.out_proj     transformer.h.{i}.mlp.c_proj
    layernorm_final             transformer.ln_f
    lm_head / lm_heads.{k}      unchanged
    layers.{i}.attn.bias        dropped: the causal mask buffer, not a weight

Safety: ``.bin`` files are read only with ``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..limits import loads_json
from .gpt import GPTConfig, build_model, check_config
from .hf_files import BIN_INDEX, BIN_WEIGHTS, SAFE_INDEX, SAFE_WEIGHTS, resolve_hf_files

#: stage -> (key prefix inside a full BarkModel, sub-config key in config.json, model_type of a lone sub-model)
STAGE_LAYOUT: dict[str, tuple[str, str, str]] = {
    "text": ("semantic", "semantic_config", "semantic"),
    "coarse": ("coarse_acoustics", "coarse_acoustics_config", "coarse_acoustics"),
    "fine": ("fine_acoustics", "fine_acoustics_config", "fine_acoustics"),
}
_STAGE_ALIASES = {"semantic": "text", "coarse_acoustics": "coarse", "fine_acoustics": "fine"}

# Defaults of transformers' BarkSubModelConfig, used when config.json leaves a field out (as
# transformers itself would); aliases are its ``attribute_map``.
_SUB_DEFAULTS: dict[str, tuple[tuple[str, ...], object]] = {
    "block_size": (("block_size", "window_size"), 1024),
    "input_vocab_size": (("input_vocab_size", "vocab_size"), 10_048),
    "output_vocab_size": (("output_vocab_size",), 10_048),
    "n_layer": (("num_layers", "num_hidden_layers"), 12),
    "n_head": (("num_heads", "num_attention_heads"), 12),
    "n_embd": (("hidden_size",), 768),
    "dropout": (("dropout",), 0.0),
    "bias": (("bias",), True),
    "n_codes_total": (("n_codes_total",), 8),
    "n_codes_given": (("n_codes_given",), 1),
}

_TOP_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^input_embeds_layer\.(weight)$"), r"transformer.wte.\1"),
    (re.compile(r"^input_embeds_layers\.(\d+)\.(weight)$"), r"transformer.wtes.\1.\2"),
    (re.compile(r"^position_embeds_layer\.(weight)$"), r"transformer.wpe.\1"),
    (re.compile(r"^layernorm_final\.(weight|bias)$"), r"transformer.ln_f.\1"),
    (re.compile(r"^lm_head\.(weight|bias)$"), r"lm_head.\1"),
    (re.compile(r"^lm_heads\.(\d+)\.(weight|bias)$"), r"lm_heads.\1.\2"),
)
_LAYER_RE = re.compile(r"^layers\.(\d+)\.(.+)$")
_LAYER_RENAMES = {
    "layernorm_1": "ln_1",
    "layernorm_2": "ln_2",
    "attn.att_proj": "attn.c_attn",
    "attn.out_proj": "attn.c_proj",
    "mlp.in_proj": "mlp.c_fc",
    "mlp.out_proj": "mlp.c_proj",
}
_DROPPED_LAYER_KEYS = {"attn.bias", "attn.masked_bias"}  # causal-mask buffers of the attention
_ORIG_MOD = "_orig_mod."  # torch.compile wrapper prefix, present in some of Suno's own saves

def _canonical_stage(stage: str) -> str:
    stage = _STAGE_ALIASES.get(stage, stage)
    if stage not in STAGE_LAYOUT:
        raise CheckpointError(f"Unknown model stage {stage!r}; use one of {sorted(STAGE_LAYOUT)}.")
    return stage


def _read_config(path: Path) -> dict:
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"Cannot read {path.name} at {path}: {e}. "
                              f"Re-download it or point at another copy.") from e
    config = loads_json(blob, f"{path.name} at {path}", error=CheckpointError)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path.name} at {path} is not a JSON object; is it a transformers Bark config?")
    return config


def _stage_sub_config(config: dict, stage: str, path: Path) -> tuple[dict, tuple[str, ...]]:
    """The stage's sub-config and the key prefixes its tensors may carry.

    A full ``BarkModel`` nests the sub-config and prefixes keys (``semantic.``); a lone sub-model saved
    with ``save_pretrained`` (e.g. ``BarkCoarseModel``) is its own config and its keys are bare.
    """
    prefix, sub_key, model_type = STAGE_LAYOUT[stage]
    sub = config.get(sub_key)
    if isinstance(sub, dict):
        return sub, (prefix + ".",)
    if config.get("model_type") == model_type:
        return config, ("", prefix + ".")
    kind = config.get("model_type", "unknown")
    raise CheckpointError(f"{path.name} at {path} has no {sub_key!r} (model_type {kind!r}): not a transformers "
                          f"Bark checkpoint with a {stage} model. Point at a copy of suno/bark or suno/bark-small.")


def gpt_config_from_hf(sub_config: dict) -> GPTConfig:
    """Our :class:`GPTConfig` from one transformers Bark sub-config (``semantic_config`` etc.).

    Missing fields take transformers' own defaults, so a config transformers accepts gives the
    model transformers would build.
    """
    values = {}
    for name, (keys, default) in _SUB_DEFAULTS.items():
        values[name] = next((sub_config[k] for k in keys if k in sub_config), default)
    known = {f.name for f in fields(GPTConfig)}
    return GPTConfig(**{k: v for k, v in values.items() if k in known})


def _strip(key: str) -> str:
    while key.startswith(_ORIG_MOD):
        key = key[len(_ORIG_MOD):]
    return key


def _wanted(key: str, prefixes: tuple[str, ...], others: tuple[str, ...]) -> str | None:
    """Key relative to the stage, or None if it belongs to another sub-model."""
    key = _strip(key)
    for p in sorted(prefixes, key=len, reverse=True):
        if key.startswith(p):
            rest = key[len(p):]
            if p == "" and rest.startswith(others):
                return None
            return rest
    return None


def _load_safetensors(path: Path, select) -> dict[str, torch.Tensor]:
    try:
        from safetensors import safe_open
    except ImportError as e:
        raise CheckpointError(f"{path.name} is a safetensors file but the safetensors package is missing: "
                              f"`pip install safetensors`, or point at a copy with {BIN_WEIGHTS}.") from e
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            wanted = [(key, name) for key in f.keys() if (name := select(key)) is not None]
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise _unreadable(path, e) from e
    return {name: _read_tensor(path, key) for key, name in wanted}


def _load_bin(path: Path, select) -> dict[str, torch.Tensor]:
    try:
        try:  # mmap: only the requested stage's tensors are paged in
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError for anything but plain tensors, zip errors, OSError
        raise CheckpointError(f"Cannot safely read {path.name} at {path}: {type(e).__name__}: {e}. Only plain "
                              f"tensor state dicts are loaded (weights_only); re-download it or use "
                              f"{SAFE_WEIGHTS}.") from e
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path.name} at {path} does not hold a state dict (got {type(sd).__name__}).")
    out = {}
    for key, value in sd.items():
        name = select(key)
        if name is not None and isinstance(value, torch.Tensor):
            out[name] = value
    return out


def _files_for_stage(files: list[Path], select) -> list[Path]:
    """Shards that hold the stage's tensors, from the index next to them (all files otherwise)."""
    if len(files) < 2:
        return files
    folder = files[0].parent
    for index_name in (SAFE_INDEX, BIN_INDEX):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = loads_json(index.read_bytes(), index.name, error=CheckpointError)["weight_map"]
                needed = {v for k, v in weight_map.items() if select(k) is not None}
            except (OSError, CheckpointError, KeyError, TypeError, AttributeError):
                return files
            chosen = [f for f in files if f.name in needed]
            if chosen:
                return chosen
    return files


def convert_hf_state_dict(hf_sd: dict[str, torch.Tensor], stage: str, config: GPTConfig, *,
                          tied: bool = True, source: str = "the checkpoint") -> dict[str, torch.Tensor]:
    """Rename one transformers Bark sub-model's tensors (keys without the ``semantic.`` prefix) to ours.

    Drops the causal-mask buffers, restores the fine model's tied head/embedding pairs that
    transformers saves only once, and checks every key and shape against our model so a mismatch
    fails here with a message instead of inside ``load_state_dict``.
    """
    stage = _canonical_stage(stage)
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, tensor in hf_sd.items():
        key = _strip(key)
        m = _LAYER_RE.match(key)
        if m:
            layer, rest = m.groups()
            if rest in _DROPPED_LAYER_KEYS:
                continue
            module, _, param = rest.rpartition(".")
            if module in _LAYER_RENAMES and param in ("weight", "bias"):
                out[f"transformer.h.{layer}.{_LAYER_RENAMES[module]}.{param}"] = tensor
            else:
                unknown.append(key)
            continue
        for pattern, repl in _TOP_RENAMES:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = tensor
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"Unexpected tensors for the {stage} model in {source}: {unknown[:5]}"
                              f"{' ...' if len(unknown) > 5 else ''}. Is it a transformers Bark checkpoint?")

    if stage == "fine":
        _tie_fine(out, config, tied, source)

    with torch.device("meta"):
        expected = {k: v.shape for k, v in build_model(stage, config).state_dict().items()}
    missing = sorted(set(expected) - set(out))
    extra = sorted(set(out) - set(expected))
    bad = [f"{k} {tuple(out[k].shape)} != {tuple(s)}" for k, s in expected.items() if k in out and out[k].shape != s]
    if missing or extra or bad:
        parts = [f"missing {missing[:5]}" if missing else "", f"unexpected {extra[:5]}" if extra else "",
                 f"wrong shapes {bad[:3]}" if bad else ""]
        raise CheckpointError(f"The {stage} model in {source} does not fit its config.json: "
                              + "; ".join(p for p in parts if p) + ". The config and weights may be from "
                              "different checkpoints; re-download both.")
    return out


def _tie_fine(sd: dict[str, torch.Tensor], config: GPTConfig, tied: bool, source: str) -> None:
    """Fill in whichever half of each (``wtes[i+1]``, ``lm_heads[i]``) pair the file left out.

    transformers 5 saves only the embedding (``input_embeds_layers.{i+1}``); transformers 4 and Suno
    saved both. When both are there transformers keeps the embedding, and so do we.
    """
    for i in range(config.n_codes_total - config.n_codes_given):
        emb, head = f"transformer.wtes.{i + 1}.weight", f"lm_heads.{i}.weight"
        if emb in sd and head in sd:
            if sd[emb] is not sd[head] and not tied and not torch.equal(sd[emb], sd[head]):
                raise CheckpointError(f"The fine model in {source} has untied lm_heads.{i} and "
                                      f"input_embeds_layers.{i + 1} (tie_word_embeddings is false); our fine "
                                      f"model ties them as Suno trained it and cannot load this checkpoint.")
            sd[head] = sd[emb]
        elif emb in sd:
            sd[head] = sd[emb]
        elif head in sd:
            sd[emb] = sd[head]


def state_dict_checksum(sd: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes, in key order.

    It identifies the weights themselves, so the same stage gives the same checksum whether it came
    from safetensors or a ``.bin``, sharded or not, and it costs one pass over the stage only.
    """
    h = hashlib.sha256()
    for key in sorted(sd):
        _hash_tensor(h, key, sd[key])
    return h.hexdigest()


def _hash_header(h: Any, key: str, dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    h.update(f"{key}|{str(dtype).removeprefix('torch.')}|{tuple(shape)}\n".encode())


def _hash_bytes(h: Any, tensor: torch.Tensor) -> None:
    h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())


def _hash_tensor(h: Any, key: str, tensor: torch.Tensor) -> None:
    _hash_header(h, key, tensor.dtype, tuple(tensor.shape))
    _hash_bytes(h, tensor)


def _unreadable(path: Path, e: Exception, key: str | None = None) -> CheckpointError:
    what = f"{key} from {path.name}" if key else path.name
    return CheckpointError(f"Cannot read {what} at {path}: {type(e).__name__}: {e}. "
                           f"Re-download it or point at another copy.")


READ_BLOCK = 32 * 2**20  # bytes of a safetensors file read under one mapping


def _read_tensor(path: Path, key: str, cast: torch.dtype | None = None, h: Any = None,
                 name: str | None = None) -> torch.Tensor:
    """One tensor of a safetensors file, in ``cast`` if given, hashed as stored into ``h`` (under ``name``).

    The file is memory-mapped while open, and every page read stays resident with the mapping: one
    opening per tensor, and per ``READ_BLOCK`` bytes of rows for a large one, keeps that small (a whole
    stage under one mapping was held twice, mapped and copied; the semantic token table alone is 0.4 GB).
    """
    from safetensors import safe_open

    def target(dtype: torch.dtype) -> torch.dtype:
        return cast if cast is not None and dtype.is_floating_point else dtype

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            part = f.get_slice(key)
            shape = tuple(part.get_shape())
            first = part[0:1] if len(shape) and shape[0] > 1 else None
            if first is None or first.element_size() * math.prod(shape) <= READ_BLOCK:
                t = f.get_tensor(key)
                if h is not None:
                    _hash_tensor(h, name or key, t)
                return t.to(target(t.dtype))
        if h is not None:
            _hash_header(h, name or key, first.dtype, shape)
        out = torch.empty(shape, dtype=target(first.dtype))
        step = max(1, shape[0] * READ_BLOCK // (first.element_size() * math.prod(shape)))
        for start in range(0, shape[0], step):
            with safe_open(str(path), framework="pt", device="cpu") as f:
                block = f.get_slice(key)[start:start + step]
            if h is not None:
                _hash_bytes(h, block)
            out[start:start + step] = block
        return out
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise _unreadable(path, e, key) from e


def _list_safetensors(path: Path, select) -> dict[str, tuple[torch.Tensor, Callable[..., torch.Tensor]]]:
    """Each wanted tensor's name, a shape-only (meta) stand-in and a reader, so a stage can be read and
    cast one tensor at a time instead of holding all of it in its stored precision first."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as f:
            return {name: (torch.empty(f.get_slice(key).get_shape(), device="meta"),
                           functools.partial(_read_tensor, path, key))
                    for key in f.keys() if (name := select(key)) is not None}
    except Exception as e:
        raise _unreadable(path, e) from e


def _read_cast(entries: dict[str, tuple[torch.Tensor, Callable[..., torch.Tensor]]], stage: str, cfg: GPTConfig,
               tied: bool, source: str, cast: torch.dtype) -> tuple[dict[str, torch.Tensor], str]:
    """The renamed state dict in ``cast`` and the checksum of the tensors as stored, reading one at a time.

    Names and shapes are checked on the stand-ins first; then, in checksum order, each tensor is read,
    hashed as stored and cast (:func:`_read_tensor`), so at most ``READ_BLOCK`` bytes are in memory
    in the stored precision (the small semantic model was 0.8 GB in fp32 before it became 0.4 GB
    in bf16, and its token table alone 0.4 GB). Halves of a tied pair are read twice.
    """
    metas = {name: meta for name, (meta, _) in entries.items()}
    readers = {id(meta): read for meta, read in entries.values()}
    renamed = convert_hf_state_dict(metas, stage, cfg, tied=tied, source=source)
    h, sd = hashlib.sha256(), {}
    for name in sorted(renamed):
        sd[name] = readers[id(renamed[name])](cast, h, name)
    return sd, h.hexdigest()


def load_hf_stage(repo_or_dir: str | os.PathLike, stage: str, *, revision: str | None = None,
                  cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                  cast: torch.dtype | None = None) -> tuple[GPTConfig, dict[str, torch.Tensor], str]:
    """Config, renamed state dict and checksum of one stage (text/coarse/fine) of a transformers Bark checkpoint.

    Only the requested stage's tensors are read (safetensors reads per tensor, ``.bin`` is memory
    mapped, shards without the stage are skipped), so loading the text model does not page in the
    codec or the other GPTs. Tensors keep their stored dtype unless ``cast`` names another: then
    safetensors files are read and cast one tensor at a time. The checksum is always that of the
    tensors as stored (:func:`state_dict_checksum`), so it names the weights whatever the precision.
    """
    stage = _canonical_stage(stage)
    config_path, files = resolve_hf_files(repo_or_dir, revision=revision, cache_dir=cache_dir,
                                          local_files_only=local_files_only)
    config = _read_config(config_path)
    sub, prefixes = _stage_sub_config(config, stage, config_path)
    cfg = check_config(stage, gpt_config_from_hf(sub), f"{config_path.name} at {config_path}", error=CheckpointError)
    others = tuple(p + "." for s, (p, _, _) in STAGE_LAYOUT.items() if s != stage) + ("codec_model.",)

    def select(key: str) -> str | None:
        return _wanted(key, prefixes, others)

    source = f"{', '.join(p.name for p in files)} ({config_path.parent})"
    tied = bool(sub.get("tie_word_embeddings", True))
    chosen = _files_for_stage(files, select)
    # untied fine heads are compared by value against their embeddings, which stand-ins cannot do
    if cast is not None and (tied or stage != "fine") and all(p.name.endswith(".safetensors") for p in chosen):
        entries: dict[str, tuple[torch.Tensor, Callable[..., torch.Tensor]]] = {}
        for path in chosen:
            entries.update(_list_safetensors(path, select))
        if entries:
            sd, checksum = _read_cast(entries, stage, cfg, tied, source, cast)
            return cfg, sd, checksum
    raw: dict[str, torch.Tensor] = {}
    for path in chosen:
        loader = _load_safetensors if path.name.endswith(".safetensors") else _load_bin
        raw.update(loader(path, select))
    if not raw:
        raise CheckpointError(f"No {stage} model tensors (prefix {prefixes[-1]!r}) in {source}. "
                              f"Point at a complete copy of suno/bark or suno/bark-small.")
    sd = convert_hf_state_dict(raw, stage, cfg, tied=tied, source=source)
    checksum = state_dict_checksum(sd)
    if cast is not None:
        for name, t in sd.items():
            sd[name] = t.to(cast) if t.is_floating_point() else t
    return cfg, sd, checksum

