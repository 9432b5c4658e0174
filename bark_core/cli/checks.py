"""Every command-line argument checked before any model loads, with messages in command-line terms.

A wrong value should cost a second, not the minutes a generation takes on a CPU: numbers are checked
by argparse (one ``error:`` line, exit 2), paths and formats by :func:`check_output` right after
parsing, and devices (which need torch) before the model set is built. Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from pathlib import Path

from .. import constants as C
from ..errors import OutputPathError

_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")
_DEVICE_GUESSES = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "metal": "mps", "apple": "mps"}


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def temperature(text: str) -> float:
    """A sampling temperature: finite and above 0 (lower is more predictable)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0; temperatures are > 0 (e.g. 0.7; lower is "
                                         "more predictable)")
    return value


def probability(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def finite(text: str) -> float:
    return _number(text)


def seed(text: str) -> int:
    """A seed as the API takes it: a whole number from 0 to 2**64-1."""
    try:
        value = int(text, 0) if text.strip().lower().startswith(("0x", "0o", "0b")) else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= C.MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is out of range; seeds are whole numbers from 0 to {C.MAX_SEED}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def thread_count(text: str) -> int | str:
    if text == "auto":
        return text
    value = positive_int(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"{text} threads is more than any machine has; use auto or a core count")
    return value


def device_name(text: str) -> str:
    """A device's spelling (auto, cpu, cuda, cuda:N, mps); whether it is there is checked after parsing."""
    name = text.strip().lower()
    if _DEVICE.fullmatch(name):
        return name
    guess = _DEVICE_GUESSES.get(name.replace("-", "").replace("_", ""))
    hint = f" (did you mean {guess}?)" if guess else ""
    raise argparse.ArgumentTypeError(f"{text!r} is not a device{hint}; use auto, cpu, cuda, cuda:N or mps")


# ---- output paths --------------------------------------------------------------------------------

def _nearest_folder(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_writable_folder(folder: Path, option: str, shown: str | os.PathLike | None = None) -> None:
    """The folder (or, when it does not exist yet, the folder it would be made in) takes new files."""
    shown = folder if shown is None else shown
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{option} {shown}: {folder} is a file, not a folder; choose another place.")
    base = folder if folder.is_dir() else _nearest_folder(folder / "x")
    if not base.is_dir():
        raise OutputPathError(f"{option} {shown}: {base} is a file, not a folder; choose another place.")
    try:  # a real probe: access() says yes to root even on read-only or virtual file systems (/proc)
        fd, probe = tempfile.mkstemp(prefix=".bark-probe-", dir=base)
    except OSError as exc:
        raise OutputPathError(f"{option} {shown}: cannot write in {base} ({exc.strerror or exc}); choose a "
                              "folder you can write to.") from None
    os.close(fd)
    os.unlink(probe)


def _not_a_folder(target: Path, path: str | os.PathLike, option: str) -> None:
    if target.is_dir():
        raise OutputPathError(f"{option} {path} is a folder; give a file name (e.g. {Path(path) / 'bark.wav'}). "
                              "--overwrite replaces files, never folders.")


def check_new_file(path: str | os.PathLike, option: str, *, overwrite: bool) -> Path:
    """A file we may write: not a folder, not there already unless ``--overwrite``, in a writable folder."""
    target = Path(path).expanduser()
    _not_a_folder(target, path, option)
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise OutputPathError(f"{option} {path} already exists; add --overwrite to replace it, or choose another "
                              "name.")
    check_writable_folder(target.parent if str(target.parent) else Path("."), option, shown=path)
    return target


def audio_format(path: str | os.PathLike, fmt: str | None, option: str, *, format_option: str | None) -> str:
    """The output format from ``--format`` or the file's extension, and the encoder it needs."""
    ext = Path(path).suffix.lower().lstrip(".")
    chosen = fmt or ext
    if chosen not in C.AUDIO_FORMATS:
        names = ", ".join(f".{f}" for f in C.AUDIO_FORMATS[:-1]) + f" or .{C.AUDIO_FORMATS[-1]}"
        how = f"end the name with {names}" + (f", or pass {format_option}" if format_option else "")
        what = f"the extension .{ext} is not an audio format bark_core writes" if ext else "the name has no extension"
        raise OutputPathError(f"{option} {path}: {what}; {how}.")
    if chosen != "wav":
        from ..audio_io import require_tool

        require_tool("ffmpeg", f"write .{chosen} files (or write .wav, which needs nothing)")
    return chosen


def check_output(path: str | os.PathLike, *, overwrite: bool, fmt: str | None = None, option: str = "-o",
                 format_option: str | None = None) -> tuple[Path, str]:
    """An audio output checked as a whole before any work: folder, format, encoder, overwrite, permissions."""
    _not_a_folder(Path(path).expanduser(), path, option)
    chosen = audio_format(path, fmt, option, format_option=format_option)
    return check_new_file(path, option, overwrite=overwrite), chosen
