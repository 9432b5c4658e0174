"""Where weight files come from: the Hugging Face hub (download or cache), and a file's identity.

Kept at the bottom of the house so voices, model loaders and caches share one download path with
one error message, and one notion of "the same file".

An unreachable hub is found out once, quickly (:func:`hub_unreachable`), instead of through the hub
client's retries for every file (25 s and a screen of warnings before the first error). From then on
only the hub cache is read, and a file missing there raises a :class:`HubFileError` that says what
was needed, where it is cached, and how to do without the hub.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

from .errors import CheckpointError

log = logging.getLogger(__name__)

REACH_TIMEOUT_S = 3.0  # one quick look; a hub that needs longer to answer a HEAD would not serve 5 GB either
REACH_MEMORY_S = 60.0  # how long an answer holds before the next file asks again (networks come back)
_reach: dict[str, tuple[float, str | None]] = {}


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


def offline_from_env() -> bool:
    """HF_HUB_OFFLINE read now, not at import time as ``huggingface_hub.constants`` does."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return False


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")


def hub_cache(cache_dir: str | os.PathLike | None = None) -> str:
    """The folder hub downloads are cached in (``cache_dir`` or the hub's own default)."""
    if cache_dir is not None:
        return os.fspath(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hub_unreachable(timeout: float = REACH_TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached (one HEAD request, remembered for a minute), or None when it answers.

    Any HTTP answer counts as reachable; only a network failure (refused, no route, name not
    resolved, timeout) does not. Proxies from the environment are used, as the hub client uses them.
    """
    endpoint = hub_endpoint()
    now = time.monotonic()
    known = _reach.get(endpoint)
    if known is not None and now - known[0] < REACH_MEMORY_S:
        return known[1]
    from huggingface_hub.utils import get_session

    reason: str | None = None
    try:
        get_session().head(endpoint, timeout=timeout, follow_redirects=False)
    except Exception as exc:  # the client's transport errors differ between versions; any of them means "no"
        text = " ".join(str(exc).split()) or type(exc).__name__
        reason = text if len(text) < 120 else text[:117] + "..."
    _reach[endpoint] = (now, reason)
    if reason is not None:
        log.info("the Hugging Face hub at %s is unreachable (%s); using the hub cache only", endpoint, reason)
    return reason


class HubFileError(CheckpointError):
    """A file needed from the hub is neither downloadable nor cached.

    ``str()`` speaks Python; :meth:`cli_message` says the same with the command-line options.
    """

    def __init__(self, what: str, repo: str, filename: str, why: str, cache: str, local: str | None = None,
                 message: str | None = None):
        self.what, self.repo, self.filename, self.why, self.cache = what, repo, filename, why, cache
        self.local = local or filename
        super().__init__(message or
            f"{what} ({filename} of the hub repo {repo}) is not available: {why}, and it is not in the hub cache "
            f"{cache}. Download it once while online, pass local_files_only=True only with a filled cache, give "
            f"a local model folder holding {self.local} (BarkModels('/folder')), or use the tiny offline set "
            f"(BarkModels(tiny_model_dir()))."
        )

    def cli_message(self) -> str:
        return (f"{self.what} is needed from the Hugging Face hub repo {self.repo} ({self.filename}), but {self.why} "
                f"and it is not in the hub cache {self.cache}. Run once while online to cache it, then use --offline; "
                f"or --models FOLDER with {self.local} in FOLDER; or --tiny for an offline smoke run.")


def _why(local_only: bool, reason: str | None, exc: Exception) -> str:
    if reason is not None:
        return f"the hub at {hub_endpoint()} is unreachable ({reason})"
    if local_only:
        return "offline mode is on (--offline, HF_HUB_OFFLINE=1 or local_files_only=True)"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"the hub answered {type(exc).__name__}: {first}"


def hub_file(repo: str, filename: str, *, cache_dir: str | os.PathLike | None = None,
             revision: str | None = None, local_files_only: bool | None = None, what: str | None = None,
             local: str | None = None) -> Path:
    """Download (or find in the cache) one file of a hub repo, with one clear error if impossible.

    ``what`` names the file for people ("voice preset 'announcer'"); ``local`` is where a local model
    folder holds the same file, for the error's advice.
    """
    from huggingface_hub import hf_hub_download

    local_only = bool(local_files_only) or offline_from_env()
    reason = None if local_only else hub_unreachable()
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, cache_dir=cache_dir, revision=revision,
                                    local_files_only=local_only or reason is not None))
    except Exception as exc:  # the hub raises many types: offline, 404, gated, timeouts
        raise HubFileError(what or filename, repo, filename, _why(local_only, reason, exc), hub_cache(cache_dir),
                           local) from exc
