"""Import an optional package (transformers' HuBERT) even where ``torchaudio`` is missing or broken.

PyPI's torchaudio pins one exact torch and fails to load beside any other, and some packages import it
at the top although we never call what needs it. A placeholder stands in while such a package is
imported, and the real import error comes back to anyone who uses torchaudio itself.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from typing import Any

_IMPORT_LOCK = threading.Lock()


def _torchaudio_placeholder(error: BaseException) -> types.ModuleType:
    """A stand-in ``torchaudio`` whose every attribute explains why the real one is missing."""
    reason = f"{type(error).__name__}: {error}"
    module = types.ModuleType("torchaudio", "Placeholder installed by bark_core.models.optional_import.")
    module.__spec__ = importlib.machinery.ModuleSpec("torchaudio", loader=None)
    module.__file__ = None

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # keep hasattr()/inspect probes working
        raise ImportError(
            f"torchaudio.{name} is unavailable: torchaudio could not be imported ({reason}). "
            "bark_core does not need it; install a torchaudio build that "
            "matches your torch if you want those helpers."
        )

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def _forget_modules(prefix: str) -> None:
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def import_despite_torchaudio(name: str) -> types.ModuleType:
    """Import module ``name`` (encodec, transformers' HuBERT) even where ``torchaudio`` is missing or broken.

    ``torchaudio`` is probed first. If importing it raises anything (``ModuleNotFoundError``, the
    ``OSError`` of a wheel built for another torch, ...), a placeholder module is put in
    ``sys.modules["torchaudio"]`` only while ``name`` is imported, then the previous state is
    restored, so a later ``import torchaudio`` elsewhere still fails with the real error. Errors of
    the module itself (not installed, broken) propagate unchanged.
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    with _IMPORT_LOCK:
        module = sys.modules.get(name)
        if module is not None:
            return module
        try:
            import torchaudio  # noqa: F401
        except Exception as exc:  # any failure inside torchaudio's own import
            torchaudio_error: BaseException | None = exc
        else:
            torchaudio_error = None
        _forget_modules(name)  # leftovers of an earlier failed attempt
        if torchaudio_error is None:
            return _import_or_clean(name)

        missing = object()
        previous = sys.modules.get("torchaudio", missing)
        sys.modules["torchaudio"] = _torchaudio_placeholder(torchaudio_error)
        try:
            return _import_or_clean(name)
        finally:
            if previous is missing:
                sys.modules.pop("torchaudio", None)
            else:
                sys.modules["torchaudio"] = previous  # type: ignore[assignment]


def _import_or_clean(name: str) -> types.ModuleType:
    """Import ``name``; on failure drop its half-imported submodules and re-raise the error unchanged."""
    try:
        return importlib.import_module(name)
    except BaseException:
        _forget_modules(name)
        raise
