"""Content-addressed stage cache: ask twice, compute once.

A stage result is keyed by a hash of everything that determines it (input artifact id, normalised
text, voice content, model fingerprint, every sampling setting, seed, precision and device class).
Changing one downstream setting therefore recomputes only that stage and what follows it, and a
repeated request returns the stored artifact without touching a model.

Two tiers: a bounded in-memory LRU, and ``.npz`` files on disk that are written atomically and
verified on read (a damaged entry is dropped and recomputed, never served).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import constants as C
from .artifacts import Artifact, load_artifact_and_meta, read_meta
from .errors import CacheError
from .fileio import PART_NAME

log = logging.getLogger(__name__)

DEFAULT_MEMORY_ITEMS = 256
DEFAULT_MEMORY_BYTES = 512 * 1024**2
DEFAULT_DISK_BYTES = 2 * 1024**3
MARKER = ".bark_core_stage_cache"
MARKER_TEXT = "This folder is a bark_core stage cache; `bark-core cache clear` deletes the entries in it.\n"
_SUB = re.compile(r"^[0-9a-f]{2}$")
_ENTRY = re.compile(r"^[0-9a-f]{64}\.npz$")
STAGE_KINDS = {"semantic": "semantic", "coarse": "coarse", "fine": "fine", "decode": "audio", "coarse_preview": "audio"}


def cache_key(stage: str, **parts: Any) -> str:
    """Stable hash of a stage name and its determining inputs (JSON, keys sorted)."""
    blob = json.dumps({"stage": stage, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _nbytes(art: Artifact) -> int:
    return sum(int(a.nbytes) for a in art._arrays().values())


@dataclass
class CacheStats:
    """Hit and miss counters per stage, for the front ends to show."""

    hits: int = 0
    misses: int = 0
    by_stage: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, stage: str, hit: bool) -> None:
        what = "hits" if hit else "misses"
        setattr(self, what, getattr(self, what) + 1)
        self.by_stage.setdefault(stage, {"hits": 0, "misses": 0})[what] += 1

    def to_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.misses, "by_stage": {k: dict(v) for k, v in self.by_stage.items()}}


class StageCache:
    """Memory LRU in front of an optional disk folder.

    ``folder``: None for the default (``~/.cache/bark_core/stages``), a path, or False for memory only.
    ``cache_unseeded``: also cache runs without a seed; their key then ignores the seed, so asking
    again returns the first random take instead of a new one.

    The disk folder is the cache's own: it carries a marker file, and only entries in the cache's
    format (``ab/<64 hex digits>.npz``, no symlinks) are ever read, trimmed or cleared. A folder that
    holds other files (a voices folder, a home directory) is never written to and cannot be cleared.
    An entry that cannot be read or deleted (damaged, permissions, another process) is a miss: it is
    logged once and the stage is recomputed.
    """

    def __init__(self, folder: str | os.PathLike | None | bool = None, *, max_items: int = DEFAULT_MEMORY_ITEMS,
                 max_bytes: int = DEFAULT_MEMORY_BYTES, disk_limit_bytes: int = DEFAULT_DISK_BYTES,
                 cache_unseeded: bool = False):
        if folder is None or folder is True:
            folder = Path(C.default_cache_dir()) / "stages"
        self.folder = Path(folder).expanduser() if folder is not False else None
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.disk_limit_bytes = disk_limit_bytes
        self.cache_unseeded = cache_unseeded
        self.stats = CacheStats()
        self._mem: OrderedDict[str, Artifact] = OrderedDict()
        self._mem_bytes = 0
        self._lock = threading.RLock()
        self._logged: set[str] = set()
        self._disk_ok: bool | None = None

    def _log_once(self, what: str, msg: str, *args: Any) -> None:
        if what not in self._logged:
            self._logged.add(what)
            log.warning(msg, *args)

    # ---- the folder is ours, or left alone ----------------------------------------------------
    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.npz"

    def _marked(self) -> bool:
        if self.folder is None:
            return False
        marker = self.folder / MARKER
        return marker.is_file() and not marker.is_symlink()

    def _foreign(self) -> Path | None:
        """The first file under the folder that is not provably a cache entry (None: all are ours)."""
        assert self.folder is not None
        for dirpath, dirnames, filenames in os.walk(self.folder):  # does not follow symlinked folders
            rel = Path(dirpath).relative_to(self.folder)
            depth = len(rel.parts)
            for name in filenames:
                path = Path(dirpath) / name
                if depth == 0 and name == MARKER or PART_NAME.match(name):
                    continue
                if depth != 1 or not _ENTRY.match(name) or name[:2] != rel.name or path.is_symlink():
                    return path
                try:  # proof: the entry's own header names the key it is stored under
                    if read_meta(path).get("cache_key") != name[:-4]:
                        return path
                except Exception:
                    return path
            for name in dirnames:
                sub = Path(dirpath) / name
                if depth > 0 or not _SUB.match(name) or sub.is_symlink():
                    return sub
        return None

    def _claim(self) -> bool:
        """Make sure the disk folder is ours before writing: new, empty or cache-only folders get the marker."""
        if self._disk_ok is False or (self._disk_ok and self._marked()):
            return self._disk_ok
        assert self.folder is not None
        ok = False
        try:
            if self._marked():
                ok = True
            elif not self.folder.exists() or (self.folder.is_dir() and self._foreign() is None):
                self.folder.mkdir(parents=True, exist_ok=True)
                (self.folder / MARKER).write_text(MARKER_TEXT)
                ok = True
            else:
                self._log_once("foreign", "not using %s as a disk cache: it holds files the stage cache did not write "
                               "(pass an empty or new folder); results stay in memory only", self.folder)
        except OSError as exc:
            self._log_once("claim", "cannot use %s as a disk cache (%s); results stay in memory only",
                           self.folder, exc)
        self._disk_ok = ok
        return ok

    # ---- lookups ------------------------------------------------------------------------------
    def get(self, key: str, stage: str = "?") -> Artifact | None:
        """The stored artifact for ``key`` (marked ``cache_hit``), or None; counts the hit or miss.

        A stored artifact of another kind than ``stage`` produces is never served.
        """
        with self._lock:
            art = self._mem.get(key)
            kind = STAGE_KINDS.get(stage)
            if art is not None and kind is not None and art.KIND != kind:
                self._forget(key)
                art = None
            if art is not None:
                self._mem.move_to_end(key)
            elif self.folder is not None and self.folder.is_dir() and self._claim():
                art = self._read_disk(key, kind)
                if art is not None:
                    self._remember(key, art)
            self.stats.count(stage, art is not None)
            if art is None:
                return None
            # a copy: callers set .parent and flags on what they get; the stored entry must not change
            hit = copy.copy(art)
            hit.cache_hit = True
            return hit

    def _read_disk(self, key: str, kind: str | None = None) -> Artifact | None:
        path = self._path(key)
        try:
            if path.is_symlink() or not path.is_file():
                return None
            art, meta = load_artifact_and_meta(path)
            ok = meta.get("cache_key") == key and (kind is None or art.KIND == kind)
            why = f"it is not the {kind} entry stored under this key"
        except Exception as exc:  # damaged or unreadable entry: a miss, the caller recomputes
            ok, art, why = False, None, str(exc)
        if not ok:
            self._log_once(str(path), "dropping cache entry %s: %s", path, why)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recency for the disk LRU
        return art

    # ---- stores -------------------------------------------------------------------------------
    def put(self, key: str, art: Artifact) -> None:
        with self._lock:
            stored = copy.copy(art)  # the caller keeps its own object; the cache keeps one without a parent
            stored.parent = None
            self._remember(key, stored)
            if self.folder is not None and self._claim():
                try:
                    art.save(self._path(key), meta={"cache_key": key})
                    self._trim_disk()
                except OSError as exc:  # a full or read-only disk must not break generation
                    self._log_once("write", "could not write cache entry for %s: %s", art.KIND, exc)

    def _forget(self, key: str) -> None:
        if key in self._mem:
            self._mem_bytes -= _nbytes(self._mem.pop(key))

    def _remember(self, key: str, art: Artifact) -> None:
        self._forget(key)
        self._mem[key] = art
        self._mem_bytes += _nbytes(art)
        while self._mem and (len(self._mem) > self.max_items or self._mem_bytes > self.max_bytes):
            _, old = self._mem.popitem(last=False)
            self._mem_bytes -= _nbytes(old)

    def _disk_entries(self, proven: bool = False) -> list[Path]:
        """Entries in the cache's own format, in a folder carrying the marker (or ``proven`` by
        :meth:`_foreign` to hold nothing else); never through symlinks."""
        if self.folder is None or not (proven or self._marked()):
            return []
        out = []
        try:
            subs = [e for e in os.scandir(self.folder) if _SUB.match(e.name) and e.is_dir(follow_symlinks=False)]
            for sub in subs:
                for entry in os.scandir(sub.path):
                    if _ENTRY.match(entry.name) and entry.name[:2] == sub.name and entry.is_file(follow_symlinks=False):
                        out.append(Path(entry.path))
        except OSError as exc:
            self._log_once("scan", "cannot list the cache folder %s: %s", self.folder, exc)
        return out

    @staticmethod
    def _stat(path: Path) -> os.stat_result | None:
        try:
            return path.stat(follow_symlinks=False)
        except OSError:
            return None

    def _trim_disk(self) -> None:
        sizes = {p: s for p in self._disk_entries() if (s := self._stat(p)) is not None}
        total = sum(s.st_size for s in sizes.values())
        for path in sorted(sizes, key=lambda p: sizes[p].st_mtime):
            if total <= self.disk_limit_bytes:
                break
            total -= sizes[path].st_size
            with contextlib.suppress(OSError):
                path.unlink()

    # ---- admin --------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        stats = [s for p in self._disk_entries() if (s := self._stat(p)) is not None]
        return {
            "folder": str(self.folder) if self.folder else None,
            "memory_items": len(self._mem),
            "memory_bytes": self._mem_bytes,
            "disk_items": len(stats),
            "disk_bytes": sum(s.st_size for s in stats),
            "disk_limit_bytes": self.disk_limit_bytes,
            **self.stats.to_dict(),
        }

    def clear(self, *, memory: bool = True, disk: bool = True) -> int:
        """Forget entries; returns how many disk files were removed.

        Only a folder the cache marked as its own is cleared, and only its entries; any other folder
        raises :class:`CacheError` without touching a file. An old cache folder (from before the marker)
        is recognised when every file in it is an entry whose header names its own key.
        """
        removed = 0
        with self._lock:
            if memory:
                self._mem.clear()
                self._mem_bytes = 0
            if not disk or self.folder is None or not self.folder.exists():
                return removed
            if not self._marked():
                if not self.folder.is_dir():
                    raise CacheError(f"{self.folder} is not a folder, so it is not a stage cache; nothing was deleted.")
                foreign = self._foreign()
                if foreign is not None:
                    raise CacheError(
                        f"{self.folder} is not a bark_core stage cache (it has no {MARKER} marker and holds files "
                        f"the cache did not write, e.g. {foreign}); nothing was deleted. Pass the cache folder "
                        "itself (default ~/.cache/bark_core/stages), or delete other folders yourself.")
            for path in self._disk_entries(proven=True):
                try:
                    path.unlink()
                    removed += 1
                except FileNotFoundError:
                    continue  # another process removed it first
                except OSError as exc:
                    self._log_once(str(path), "cannot delete cache entry %s: %s", path, exc)
            for sub in self._subfolders():
                with contextlib.suppress(OSError):  # not empty: another process is writing; fine
                    sub.rmdir()
        return removed

    def _subfolders(self) -> set[Path]:
        try:
            return {Path(e.path) for e in os.scandir(self.folder) if _SUB.match(e.name)
                    and e.is_dir(follow_symlinks=False)}
        except OSError:
            return set()


def seed_part(cache: StageCache, seed: Any) -> tuple[bool, Any]:
    """(cacheable, value for the key) for a stage's seed argument."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return True, seed
    return cache.cache_unseeded, "unseeded"

