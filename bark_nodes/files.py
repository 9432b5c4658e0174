"""Dropdown lists of ``.npz`` files (voices, artifacts) and turning a choice back into a path."""

from __future__ import annotations

from pathlib import Path

from bark_core import ParameterError

from . import _comfy

OUTPUT_TAG = " [output]"
VOICES_PREFIX = "voices/"


def _npz_under(base: Path) -> list[str]:
    if not base.is_dir():
        return []
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*.npz") if p.is_file())


def artifact_choices() -> list[str]:
    """``.npz`` files in input/ (plain names) and output/ (names tagged " [output]", ComfyUI's style)."""
    names = _npz_under(_comfy.input_dir())
    names += [n + OUTPUT_TAG for n in _npz_under(_comfy.output_dir())]
    return names


def voice_file_choices() -> list[str]:
    """Voice ``.npz`` files in models/bark/voices/ (as "voices/<name>") and in input/."""
    names: list[str] = []
    for base in _comfy.bark_dirs():
        names += [VOICES_PREFIX + n for n in _npz_under(base / _comfy.VOICES_SUBDIR)]
    names += _npz_under(_comfy.input_dir())
    return list(dict.fromkeys(names))


def _inside(base: Path, rel: str) -> Path:
    path = (base / rel).resolve()
    if base.resolve() not in path.parents:
        raise ParameterError(f"{rel!r} points outside {base}; pick a file from the list.")
    return path


def resolve_choice(choice: str) -> Path:
    """Path of a dropdown value; never outside the folders the lists come from."""
    if not choice or not choice.strip():
        raise ParameterError("No file chosen. Put a .npz into ComfyUI's input folder (or models/bark/voices/) "
                         "and press R to refresh the lists.")
    if choice.endswith(OUTPUT_TAG):
        return _inside(_comfy.output_dir(), choice[: -len(OUTPUT_TAG)])
    if choice.startswith(VOICES_PREFIX):
        rel = choice[len(VOICES_PREFIX):]
        for base in _comfy.bark_dirs():
            path = _inside(base / _comfy.VOICES_SUBDIR, rel)
            if path.is_file():
                return path
        return _inside(_comfy.bark_dirs()[0] / _comfy.VOICES_SUBDIR, rel)
    return _inside(_comfy.input_dir(), choice)


def file_fingerprint(choice: str) -> str:
    """Changes when the chosen file changes, so ComfyUI re-runs the loader node."""
    try:
        st = resolve_choice(choice).stat()
        return f"{choice}:{st.st_mtime_ns}:{st.st_size}"
    except (OSError, ValueError):
        return f"{choice}:missing"
