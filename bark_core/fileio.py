"""Atomic writes and bounded reads of the files bark_core exchanges with users.

Writes: a crash, a kill or a full disk never leaves a half-written file under the final name. The
temporary file sits in the target folder (so the rename never crosses filesystems) under a short
name of our own (``.bark-XXXXXXXX.part``), so any legal file name can be the target; the finished
file gets the permissions the umask asks for, like any file the user creates. Temporary files left
behind by a killed process are removed on the next write to that folder: a live writer holds a lock
on its temporary file, so only orphans are removed.

Reads: ``.npz`` files come from anywhere. :func:`read_npz` reads each member's shape and dtype from
its header before reading any data, so a small file that unpacks to gigabytes is refused up front.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import BarkError, OutputPathError

log = logging.getLogger(__name__)

try:  # POSIX: a writer locks its temporary file, so a cleaner can tell live writers from orphans
    import fcntl
except ImportError:  # pragma: no cover - Windows: orphans are recognised by age instead
    fcntl = None  # type: ignore[assignment]

PART_PREFIX = ".bark-"
PART_SUFFIX = ".part"
# ours now (".bark-k3j2h1x9.part") and the names earlier versions used (".take.wav.k3j2h1x9.part")
PART_NAME = re.compile(r"^\.(bark-[a-z0-9_]{8}|.+\.[a-z0-9_]{8})\.part$")
STALE_PART_AGE_S = 3600.0  # without file locks, a temporary file this old is an orphan
FRESH_PART_S = 1.0  # with locks, an unlocked temporary file older than this is an orphan
NAME_MAX = 255  # bytes in one file name on the usual filesystems (ext4, xfs, btrfs, APFS, NTFS in UTF-16 units)
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting and restoring it
    os.umask(mask)
    return mask


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _write_error(target: Path, exc: OSError) -> OutputPathError:
    if exc.errno in _DISK_FULL:
        return OutputPathError(f"Cannot write {target}: the disk is full (or over quota). Free some space or "
                               "choose a folder on another disk; nothing was written under that name.")
    if exc.errno == errno.ENAMETOOLONG:
        return OutputPathError(f"Cannot write {target}: the path is too long for this filesystem. "
                               "Choose a shorter file or folder name.")
    return OutputPathError(f"Cannot write to {target}: {exc.strerror or exc}. Choose a folder you can write to.")


def clean_stale_parts(folder: str | os.PathLike) -> int:
    """Remove our temporary files that no live writer holds (left by a killed process); returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        if not PART_NAME.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if fcntl is None:
                if age < STALE_PART_AGE_S:
                    continue
                os.unlink(entry.path)
            elif age < FRESH_PART_S:  # a writer may be between creating its file and locking it
                continue
            else:
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails while a writer is alive
                except OSError:
                    continue
                else:
                    os.unlink(entry.path)
                finally:
                    os.close(fd)
            removed += 1
        except OSError:
            continue
    if removed:
        log.info("removed %d stale temporary file(s) left by an interrupted write in %s", removed, folder)
    return removed


def check_output_path(path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """The target as a Path, or an :class:`OutputPathError` saying why nothing can be written there."""
    target = as_path(path, OutputPathError)
    if not target.name or target.name in (".", ".."):
        raise OutputPathError(f"{str(path)!r} names a folder, not a file. Add a file name.")
    parent = target.parent if str(target.parent) else Path(".")
    limit = _name_max(parent) if parent.is_dir() else NAME_MAX
    size = len(os.fsencode(target.name))
    if size > limit:
        raise OutputPathError(f"The file name {target.name[:40]!r}... is {size} bytes long; this filesystem allows "
                              f"{limit}. Choose a shorter name.")
    try:
        is_dir = target.is_dir()
        exists = is_dir or target.exists() or target.is_symlink()
    except OSError as exc:
        raise _write_error(target, exc) from exc
    if is_dir:
        raise OutputPathError(f"{target} is an existing folder; give the name of a file to write inside it "
                              f"(e.g. {target / 'take.wav'}).")
    if exists and not overwrite:
        raise OutputPathError(f"{target} already exists; pass overwrite=True or choose another name.")
    return target


def as_path(path: Any, error: type[BarkError]) -> Path:
    """``path`` as a Path, or ``error`` for what cannot name a file (not text, a NUL byte, unencodable text)."""
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"A file path must be text or a path, got {type(path).__name__}.")
    text = os.fspath(path)
    if not isinstance(text, str) or "\0" in text:
        raise error(f"{text!r:.80} is not a usable file path (bytes or a NUL character); pass it as text.")
    try:
        os.fsencode(text)
    except UnicodeError:
        raise error(f"{text!r:.80} holds characters this system cannot put in a file name.") from None
    return Path(text)


def npz_path(path: str | os.PathLike) -> Path:
    """Where ``save(path)`` writes: ``path`` with ``.npz`` added if missing; a folder or empty name is an error."""
    target = as_path(path, OutputPathError)
    try:
        is_dir = target.is_dir()
    except OSError:  # e.g. a name too long: atomic_write says so
        is_dir = False
    if not str(path) or not target.name or target.name in (".", "..") or is_dir:
        raise OutputPathError(f"{str(path)!r} is a folder (or no name at all); give a file name such as "
                              f"{target / 'take.npz'}.")
    return target if target.suffix == ".npz" else target.with_name(target.name + ".npz")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` only once it is complete.

    Errors say what to do: an existing folder, a name too long, a full disk or a read-only folder
    each raise :class:`OutputPathError`, and nothing appears under the final name.
    """
    target = check_output_path(path, overwrite=overwrite)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale_parts(parent)
        fd, tmp = tempfile.mkstemp(prefix=PART_PREFIX, suffix=PART_SUFFIX, dir=parent)
    except OSError as exc:
        raise _write_error(target, exc) from exc
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours alone: tells a cleaner in another process we are alive
        try:
            mode = target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~_umask()
            os.chmod(tmp, mode)  # mkstemp makes 0600; the result should look like any file the user makes
        except OSError:
            pass
        with os.fdopen(fd, "wb") as handle:
            try:
                yield handle
            except OSError as exc:
                if isinstance(exc, BarkError) or exc.errno not in _DISK_FULL:
                    raise
                raise _write_error(target, exc) from exc
            try:
                handle.flush()
                os.fsync(handle.fileno())
                if fcntl is not None:  # rename while still locked, so no cleaner can take the file first
                    os.replace(tmp, target)
            except OSError as exc:
                raise _write_error(target, exc) from exc
        if fcntl is None:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise _write_error(target, exc) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------------
# Bounded .npz reads
# --------------------------------------------------------------------------------------------------

MAX_NPZ_MEMBERS = 64
MAX_NPZ_EXPANSION = 16  # uncompressed : compressed, beyond ...
NPZ_EXPANSION_FREE_BYTES = 16 * 1024**2  # ... this size; bark_core writes uncompressed npz (ratio 1)


def _read_member(fh: IO[bytes], name: str, limit: int, stored: int, path: Path, what: str,
                 error: type[BarkError]) -> np.ndarray:
    """One ``.npy`` stream: header first (shape, dtype, size against ``limit``), then the data."""
    try:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"unknown .npy format version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read_header(fh, max_header_size=10_000)
        if dtype.hasobject:
            raise error(f"{path}: array {name!r} holds Python objects; {what} holds only numbers and text, and "
                        "pickled objects are never loaded.")
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if nbytes > limit:
            raise error(f"{path}: array {name!r} has shape {shape} ({nbytes:,} bytes), over the {limit:,}-byte limit "
                        f"for {what}. It is not a file bark_core wrote, or it is far too long; see the README's "
                        "Limits.")
        if nbytes > NPZ_EXPANSION_FREE_BYTES and nbytes > MAX_NPZ_EXPANSION * max(stored, 1):
            raise error(f"{path}: array {name!r} unpacks from {stored:,} to {nbytes:,} bytes; compressed arrays this "
                        "large are refused. Save it uncompressed (np.savez).")
        fh.seek(0)
        arr = np.lib.format.read_array(fh, allow_pickle=False)
    except BarkError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, RuntimeError, TypeError, NotImplementedError,
            MemoryError, OverflowError, SyntaxError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise error(f"{path}: array {name!r} cannot be read ({type(exc).__name__}: {detail}). The file may be "
                    "damaged.") from None
    if arr.size and arr.nbytes != nbytes:
        raise error(f"{path}: array {name!r} is shorter than its header says; the file is truncated.")
    return arr


def read_npz(path: str | os.PathLike, *, max_bytes: dict[str, int] | int, what: str,
             error: type[BarkError]) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, each checked against its size limit from its header before reading.

    ``max_bytes``: one limit for every member, or a limit per member name (members not named get the
    smallest named limit). Refused: pickled objects, more than 64 members, a member over its limit,
    and a member over 16 MiB that unpacks to more than 16 times its stored size (a zip bomb).
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise error(f"{path} cannot be read as {what} ({exc}). The file may be damaged or not a .npz.") from None
    out: dict[str, np.ndarray] = {}
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if len(infos) > MAX_NPZ_MEMBERS:
            raise error(f"{path} holds {len(infos)} entries; {what} has a few arrays. Is it the right file?")
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            limit = max_bytes if isinstance(max_bytes, int) else max_bytes.get(name, min(max_bytes.values()))
            try:
                fh = zf.open(info)
            except (OSError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError) as exc:
                raise error(f"{path}: entry {name!r} cannot be read ({exc}). The file may be damaged.") from None
            with fh:
                out[name] = _read_member(fh, name, limit, info.compress_size, path, what, error)
    return out


def read_npy(path: str | os.PathLike, *, max_bytes: int, what: str, error: type[BarkError]) -> np.ndarray:
    """One ``.npy`` file, its size checked from its header before the data is read; never unpickles."""
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise error(f"{path} cannot be read as {what} ({exc.strerror or exc}).") from None
    with fh:
        return _read_member(fh, path.stem, max_bytes, os.fstat(fh.fileno()).st_size, path, what, error)
