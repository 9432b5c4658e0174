"""Finding a transformers-format Bark checkpoint's files: a local folder or a hub snapshot.

A ``BarkModel`` repo holds ``config.json`` plus ``model.safetensors`` and/or ``pytorch_model.bin``,
possibly sharded behind an index json. This module only locates those files (downloading them
when allowed); :mod:`bark_core.models.hf_format` reads the tensors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..hub import HubFileError, hub_cache, hub_endpoint, hub_unreachable
from ..limits import loads_json

CONFIG_NAME = "config.json"
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"

_HOW_TO_FIX = (
    "To use a local copy, download the repository's config.json and model.safetensors (or "
    "pytorch_model.bin) into a folder and pass that folder's path instead of the repo id."
)


def _safetensors_available() -> bool:
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return False
    return True


def _weight_candidates() -> tuple[str, ...]:
    """Weight file names in order of preference; safetensors first (no pickle, partial reads)."""
    bins = (BIN_WEIGHTS, BIN_INDEX)
    return (SAFE_WEIGHTS, SAFE_INDEX) + bins if _safetensors_available() else bins


def _looks_local(repo_or_dir: str | os.PathLike) -> bool:
    """Whether the argument names a folder rather than a Hub repo id like ``suno/bark``."""
    if isinstance(repo_or_dir, os.PathLike):
        return True
    s = str(repo_or_dir)
    if Path(s).expanduser().exists():
        return True
    return s.startswith((".", "~", "/")) or os.path.isabs(s) or "\\" in s or s.count("/") > 1


def _offline_from_env() -> bool:
    """HF_HUB_OFFLINE read now, not at import time as ``huggingface_hub.constants`` does."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def safe_file_name(name: Any, where: str, listed_in: str) -> str:
    """A file name from an index or manifest, if it stays inside its folder; CheckpointError otherwise."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise CheckpointError(f"{listed_in} of {where} names {name!r:.80} as a weight file; file names must be "
                              "non-empty text. The index is damaged; re-download it.")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in norm.split("/"):
        raise CheckpointError(f"{listed_in} of {where} names {name!r:.80}, which lies outside the checkpoint folder. "
                              "Only files inside the folder are loaded; the index is damaged or hostile.")
    return name


def inside(folder: Path, path: Path, what: str) -> Path:
    """``path`` if it resolves inside ``folder`` (or, for a hub snapshot, inside its repo's blob store).

    Symlinks are followed: a file of the folder that links elsewhere on the disk is refused too.
    """
    base = folder.resolve()
    real = path.resolve()
    roots = [base]
    if base.parent.name == "snapshots":  # hub cache: snapshots/<rev>/file -> ../../blobs/<sha>
        roots.append(base.parent.parent / "blobs")
    if not any(real == r or r in real.parents for r in roots):
        raise CheckpointError(f"{what} {path.name!r} resolves to {real}, outside the model folder {folder}. Only "
                              "files inside the model folder are loaded; copy the file into it instead of linking.")
    return path


def _read_index(index: Path, where: str) -> list[str]:
    """Shard file names of a sharded checkpoint, in first-use order, each checked to stay in its folder."""
    try:
        blob = index.read_bytes()
    except OSError as e:
        raise CheckpointError(f"Cannot read the shard index {index.name} of {where}: {e}. "
                              f"Delete it (and re-download) or point at another copy.") from e
    data = loads_json(blob, f"shard index {index.name} of {where}", error=CheckpointError)
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"The shard index {index.name} of {where} has no weight_map. "
                              f"Delete it (and re-download) or point at another copy.")
    if not all(isinstance(k, str) for k in weight_map):
        raise CheckpointError(f"The shard index {index.name} of {where} is damaged (non-text tensor names).")
    names = [safe_file_name(v, where, f"The shard index {index.name}") for v in weight_map.values()]
    return list(dict.fromkeys(names))


def _resolve_local(folder: Path) -> tuple[Path, list[Path]]:
    where = f"folder {str(folder)!r}"
    if not folder.is_dir():
        raise CheckpointError(
            f"Bark checkpoint folder {str(folder)!r} not found (looking for {CONFIG_NAME} and {SAFE_WEIGHTS} or "
            f"{BIN_WEIGHTS} in it). Pass the path of a folder holding a transformers Bark checkpoint "
            f"(a download of suno/bark or suno/bark-small), or a Hub repo id such as 'suno/bark'."
        )
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise CheckpointError(f"{CONFIG_NAME} is missing from the Bark checkpoint {where}. Copy the repository's "
                              f"{CONFIG_NAME} next to its weights, or pass the folder that has both.")
    inside(folder, config, "The config")
    for name in _weight_candidates():
        path = folder / name
        if not path.is_file():
            continue
        inside(folder, path, "The weight file")
        if not name.endswith(".index.json"):
            return config, [path]
        shards = [folder / s for s in _read_index(path, where)]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise CheckpointError(f"Shard {missing[0]} listed in {name} is missing from the Bark checkpoint {where} "
                                  f"({len(missing)} of {len(shards)} shards missing). Download all shards into it.")
        return config, [inside(folder, s, "The shard") for s in shards]
    extra = "" if _safetensors_available() else f" ({SAFE_WEIGHTS} needs `pip install safetensors`)"
    raise CheckpointError(f"No weights in the Bark checkpoint {where}: expected {SAFE_WEIGHTS}, {SAFE_INDEX}, "
                          f"{BIN_WEIGHTS} or {BIN_INDEX}{extra}. Put the repository's weight file(s) next to "
                          f"{CONFIG_NAME}.")


def _hub_errors() -> tuple[type[BaseException], ...]:
    """(local-not-found, entry-not-found, repo-or-revision-not-found, bad-repo-id) across hub versions."""
    try:
        from huggingface_hub import errors as E
    except ImportError:  # older huggingface_hub
        from huggingface_hub import utils as E
    return (E.LocalEntryNotFoundError, E.EntryNotFoundError,
            (E.RepositoryNotFoundError, E.RevisionNotFoundError), E.HFValidationError)


def _resolve_hub(repo: str, revision: str | None, cache_dir: str | os.PathLike | None,
                 local_files_only: bool) -> tuple[Path, list[Path]]:
    from huggingface_hub import hf_hub_download

    local_missing, entry_missing, repo_missing, bad_id = _hub_errors()
    rev = f" at revision {revision!r}" if revision else ""
    where = f"Hugging Face Hub repo {repo!r}{rev}"
    offline_note = " (offline: HF_HUB_OFFLINE or local_files_only is set, and it is not in the hub cache)"
    unreachable = None if local_files_only else hub_unreachable()  # one quick look, not retries per file
    state = {"local_only": local_files_only or unreachable is not None}
    failures: list[str] = []

    def not_cached(name: str) -> HubFileError:
        return HubFileError(f"The Bark checkpoint {repo}", repo, name,
                            f"the hub at {hub_endpoint()} is unreachable ({unreachable})", hub_cache(cache_dir),
                            local=f"{CONFIG_NAME} and {SAFE_WEIGHTS}")

    def fetch(name: str) -> Path | None:
        """Path of ``name`` or None when the repo (or the cache, offline) does not have it."""
        try:
            return Path(hf_hub_download(repo, name, revision=revision, cache_dir=cache_dir,
                                        local_files_only=state["local_only"]))
        except bad_id as e:
            raise CheckpointError(f"{repo!r} is neither an existing folder nor a valid Hub repo id ({e}). "
                                  f"Pass a folder path or a repo id such as 'suno/bark'.") from e
        except local_missing as e:
            why = offline_note if state["local_only"] else " (the Hub is unreachable and it is not in the cache)"
            failures.append(f"{name}{why}: {str(e).rstrip('.')}")
            state["local_only"] = True  # one network timeout is enough; later files come from the cache only
            return None
        except entry_missing:
            failures.append(f"{name}: not in the repo")
            return None
        except repo_missing as e:
            raise CheckpointError(f"Cannot get {name} from {where}: no such repo or revision (or it is private "
                                  f"or gated: log in with `hf auth login`). {_HOW_TO_FIX}") from e
        except (OSError, ValueError) as e:  # network and HTTP errors; later files come from the cache only
            failures.append(f"{name}: {type(e).__name__}: {str(e).rstrip('.')}")
            state["local_only"] = True
            return None

    config = fetch(CONFIG_NAME)
    if config is None and unreachable is not None:
        raise not_cached(CONFIG_NAME)
    if config is None:
        raise CheckpointError(f"Cannot get {CONFIG_NAME} of the Bark checkpoint from {where}: {failures[-1]}. "
                              f"{_HOW_TO_FIX}")
    for name in _weight_candidates():
        path = fetch(name)
        if path is None:
            continue
        if not name.endswith(".index.json"):
            return config, [path]
        shards = []
        for shard in _read_index(path, where):
            got = fetch(shard)
            if got is None and unreachable is not None:
                raise not_cached(shard)
            if got is None:
                raise CheckpointError(f"Cannot get shard {shard} (listed in {name}) from {where}: {failures[-1]}. "
                                      f"{_HOW_TO_FIX}")
            shards.append(inside(config.parent, got, "The shard"))
        return config, shards
    if unreachable is not None:
        raise not_cached(SAFE_WEIGHTS)
    raise CheckpointError(f"Cannot get the weights ({SAFE_WEIGHTS} or {BIN_WEIGHTS}) of the Bark checkpoint from "
                          f"{where}: " + "; ".join(failures) + f". {_HOW_TO_FIX}")


def resolve_hf_files(repo_or_dir: str | os.PathLike, *, revision: str | None = None,
                     cache_dir: str | os.PathLike | None = None,
                     local_files_only: bool | None = None) -> tuple[Path, list[Path]]:
    """Local paths of ``config.json`` and the weight files of a transformers Bark checkpoint.

    ``repo_or_dir`` is a folder (used as is, nothing is downloaded) or a Hub repo id fetched through
    the hub cache (``cache_dir``, ``revision``). ``local_files_only=None`` follows ``HF_HUB_OFFLINE``.
    Safetensors is preferred over ``pytorch_model.bin`` because it needs no unpickling and can be
    read one tensor at a time; sharded checkpoints return every shard. Anything missing or
    unreachable raises :class:`CheckpointError` naming the file, where it was looked for and how
    to point at a local copy instead.
    """
    if _looks_local(repo_or_dir):
        return _resolve_local(Path(repo_or_dir).expanduser())
    if local_files_only is None:
        local_files_only = _offline_from_env()
    return _resolve_hub(str(repo_or_dir), revision, cache_dir, local_files_only)


# --------------------------------------------------------------------------------------------------
# Config and tensors
# --------------------------------------------------------------------------------------------------


