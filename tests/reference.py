"""Helpers for tests that compare bark_core with reference implementations (transformers, Suno's bark)."""

from __future__ import annotations

import importlib.machinery
import sys
import types


def stub_broken_torchaudio() -> types.ModuleType | None:
    """Make ``import torchaudio`` succeed with an empty stub when the installed torchaudio cannot load.

    transformers and Suno's bark import torchaudio (directly or through encodec) although the code
    paths the tests use never call it; a torchaudio wheel built for another torch raises OSError on
    import. Call this before importing those references. Returns the stub, or None when the real
    torchaudio imports (or a stub is already installed). The stub stays in ``sys.modules``.
    """
    current = sys.modules.get("torchaudio")
    if current is not None:
        return current if getattr(current, "__bark_core_stub__", False) else None
    try:
        import torchaudio  # noqa: F401

        return None
    except Exception as exc:  # missing, or the OSError of a mismatched build
        reason = f"{type(exc).__name__}: {exc}"
    stub = types.ModuleType("torchaudio", f"Test stub: the real torchaudio failed to import ({reason}).")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", loader=None)
    stub.__bark_core_stub__ = True
    stub.__version__ = "0.0.0+stub"
    sys.modules["torchaudio"] = stub
    return stub


def reference_encodec():
    """Meta's ``encodec`` package (test-only: bark_core runs its own port), importable without torchaudio."""
    stub_broken_torchaudio()
    import encodec

    return encodec
