"""Where weight files come from: the Hugging Face hub (download or cache), and a file's identity.

Kept at the bottom of the house so voices, model loaders and caches share one download path with
one error message, and one notion of "the same file".
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import CheckpointError


def file_sha256(path: str | os.PathLike) -> str:
    """Checksum for provenance; hub blobs are already named by their sha256, so reuse that."""
    real = Path(os.path.realpath(path))
    if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name
    h = hashlib.sha256()
    with open(real, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def public_file_id(name: str | os.PathLike, checksum: str | None) -> str:
    """A model id fit for labels: the file (or folder) name and a short content hash, never the path.

    Labels travel with published audio; a local path would publish the user's name and disk layout,
    while the name plus hash still says exactly which weights made the file.
    """
    base = Path(os.fspath(name)).name or os.fspath(name)
    return f"{base} sha256:{checksum[:12]}" if checksum else base


def file_fingerprint(path: str | os.PathLike) -> str:
    """Cheap identity of a weights file: the hub blob's sha256, else path, size and modification time."""
    real = Path(os.path.realpath(path))
    if real.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name
    st = real.stat()
    return hashlib.sha256(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()


def _hub_error(repo: str, filename: str, exc: Exception) -> CheckpointError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    why = "offline mode is on and it is not in the cache" if offline else f"{type(exc).__name__}: {exc}"
    return CheckpointError(
        f"Could not get {filename} from the Hugging Face hub repo {repo} ({why}). "
        f"Download it once where the hub is reachable (it is then cached), or point at a local copy: "
        f"models='/folder/with/{filename}' in Python or --models /folder on the command line."
    )


def hub_file(repo: str, filename: str, *, cache_dir: str | os.PathLike | None = None,
             revision: str | None = None, local_files_only: bool | None = None) -> Path:
    """Download (or find in the cache) one file of a hub repo, with one clear error if impossible."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, cache_dir=cache_dir, revision=revision,
                                    local_files_only=bool(local_files_only)))
    except Exception as exc:  # the hub raises many types: offline, 404, gated, timeouts
        raise _hub_error(repo, filename, exc) from exc
