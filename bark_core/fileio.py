"""Atomic writes: a crash or a full disk never leaves a half-written file under the final name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import OutputPathError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` only once it is complete.

    The temporary file sits in the target folder so the final rename never crosses filesystems.
    """
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.exists() and not overwrite:
        raise OutputPathError(f"{target} already exists; pass overwrite=True or choose another name.")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise OutputPathError(
            f"Cannot write to {target}: {exc.strerror or exc}. Choose a folder you can write to."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
