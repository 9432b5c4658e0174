"""Content-addressed stage cache: ask twice, compute once.

A stage result is keyed by a hash of everything that determines it (input artifact id, normalised
text, voice content, model fingerprint, every sampling setting, seed, precision and device class).
Changing one downstream setting therefore recomputes only that stage and what follows it, and a
repeated request returns the stored artifact without touching a model.

Two tiers: a bounded in-memory LRU, and ``.npz`` files on disk that are written atomically and
verified on read (a damaged entry is dropped and recomputed, never served).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import constants as C
from .artifacts import Artifact, load_artifact, read_meta

log = logging.getLogger(__name__)

DEFAULT_MEMORY_ITEMS = 256
DEFAULT_MEMORY_BYTES = 512 * 1024**2
DEFAULT_DISK_BYTES = 2 * 1024**3


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
    """

    def __init__(self, folder: str | os.PathLike | None | bool = None, *, max_items: int = DEFAULT_MEMORY_ITEMS,
                 max_bytes: int = DEFAULT_MEMORY_BYTES, disk_limit_bytes: int = DEFAULT_DISK_BYTES,
                 cache_unseeded: bool = False):
        if folder is None or folder is True:
            folder = Path(C.default_cache_dir()) / "stages"
        self.folder = Path(folder) if folder is not False else None
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.disk_limit_bytes = disk_limit_bytes
        self.cache_unseeded = cache_unseeded
        self.stats = CacheStats()
        self._mem: OrderedDict[str, Artifact] = OrderedDict()
        self._mem_bytes = 0
        self._lock = threading.RLock()

    # ---- lookups ------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str, stage: str = "?") -> Artifact | None:
        """The stored artifact for ``key`` (marked ``cache_hit``), or None; counts the hit or miss."""
        with self._lock:
            art = self._mem.get(key)
            if art is not None:
                self._mem.move_to_end(key)
            elif self.folder is not None:
                art = self._read_disk(key)
                if art is not None:
                    self._remember(key, art)
            self.stats.count(stage, art is not None)
            if art is None:
                return None
            # a copy: callers set .parent and flags on what they get; the stored entry must not change
            hit = copy.copy(art)
            hit.cache_hit = True
            return hit

    def _read_disk(self, key: str) -> Artifact | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            art = load_artifact(path)
            meta = read_meta(path)
            ok = meta.get("id") == art.id and meta.get("cache_key") == key
            why = "its content does not match its recorded id and key"
        except Exception as exc:  # damaged entry: drop it, the caller recomputes
            ok, art, why = False, None, str(exc)
        if not ok:
            log.warning("dropping cache entry %s: %s", path, why)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # recency for the disk LRU
        return art

    # ---- stores -------------------------------------------------------------------------------
    def put(self, key: str, art: Artifact) -> None:
        with self._lock:
            stored = copy.copy(art)  # the caller keeps its own object; the cache keeps one without a parent
            stored.parent = None
            self._remember(key, stored)
            if self.folder is not None:
                try:
                    art.save(self._path(key), meta={"cache_key": key})
                    self._trim_disk()
                except OSError as exc:  # a full or read-only disk must not break generation
                    log.warning("could not write cache entry for %s: %s", art.KIND, exc)

    def _remember(self, key: str, art: Artifact) -> None:
        if key in self._mem:
            self._mem_bytes -= _nbytes(self._mem.pop(key))
        self._mem[key] = art
        self._mem_bytes += _nbytes(art)
        while self._mem and (len(self._mem) > self.max_items or self._mem_bytes > self.max_bytes):
            _, old = self._mem.popitem(last=False)
            self._mem_bytes -= _nbytes(old)

    def _disk_entries(self) -> list[Path]:
        if self.folder is None or not self.folder.is_dir():
            return []
        return [p for p in self.folder.glob("??/*.npz") if p.is_file()]

    def _trim_disk(self) -> None:
        entries = self._disk_entries()
        sizes = {p: p.stat() for p in entries}
        total = sum(s.st_size for s in sizes.values())
        for path in sorted(entries, key=lambda p: sizes[p].st_mtime):
            if total <= self.disk_limit_bytes:
                break
            total -= sizes[path].st_size
            path.unlink(missing_ok=True)

    # ---- admin --------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        entries = self._disk_entries()
        return {
            "folder": str(self.folder) if self.folder else None,
            "memory_items": len(self._mem),
            "memory_bytes": self._mem_bytes,
            "disk_items": len(entries),
            "disk_bytes": sum(p.stat().st_size for p in entries),
            "disk_limit_bytes": self.disk_limit_bytes,
            **self.stats.to_dict(),
        }

    def clear(self, *, memory: bool = True, disk: bool = True) -> int:
        """Forget entries; returns how many disk files were removed."""
        removed = 0
        with self._lock:
            if memory:
                self._mem.clear()
                self._mem_bytes = 0
            if disk:
                for path in self._disk_entries():
                    path.unlink(missing_ok=True)
                    removed += 1
                for sub in (self.folder.glob("??") if self.folder and self.folder.is_dir() else []):
                    if sub.is_dir() and not any(sub.iterdir()):
                        sub.rmdir()
        return removed


def seed_part(cache: StageCache, seed: Any) -> tuple[bool, Any]:
    """(cacheable, value for the key) for a stage's seed argument."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return True, seed
    return cache.cache_unseeded, "unseeded"

