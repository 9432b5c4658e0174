"""Bark text-to-audio, stage by stage: text -> semantic -> coarse -> fine -> audio -> label.

Each stage is a function over typed artifacts (see :mod:`bark_core.artifacts`); the models,
voices and checkpoints they use come from :class:`BarkModels`.

The house, bottom to top (each floor imports only from the floors below it):
the root modules (constants, errors, files, hub, audio I/O, then artifacts, voices, rights, edits,
cache, plots), :mod:`~bark_core.models`, :mod:`~bark_core.sampling`, :mod:`~bark_core.stages`,
:mod:`~bark_core.quality`, :mod:`~bark_core.cloning` (a voice from a recording), :mod:`~bark_core.label`
and :mod:`~bark_core.cli`. The names below are
the public API; front ends import only these and their subpackages' exports.

The names load on first use (PEP 562): ``bark-say --help`` and a mistyped option answer at once
instead of waiting seconds for torch, which only the stages need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy table below resolves to, for readers, type checkers and the layer test
    from . import constants, limits
    from .artifacts import Artifact, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, load_artifact
    from .audio_io import read_audio
    from .cache import StageCache
    from .cloning import RecordingError, RecordingWarning, voice_from_audio
    from .edit import concat, slice_artifact
    from .errors import (
        ArtifactError,
        BadTextError,
        BarkError,
        CacheError,
        CheckpointError,
        OutputPathError,
        ParameterError,
        VoiceError,
    )
    from .label import StreamChunk, export_audio, generate_stream, save_wav
    from .models import tiny_model_dir, write_tiny_model_set
    from .plots import render
    from .rights import COMMON_RIGHTS, RightsError, RightsRecord, voice_origin
    from .sampling import derive_seed
    from .stages import (
        BarkModels,
        Take,
        TextTruncatedWarning,
        decode,
        decode_preview,
        generate,
        generate_batch,
        generate_coarse,
        generate_fine,
        generate_long,
        generate_semantic,
        semantic_from_audio,
    )
    from .voices import Voice, load_voice, load_voice_file, preset_names, presets_by_language, voice_from_artifacts

# public name -> the submodule that defines it (a module name maps to itself)
_WHERE: dict[str, str] = {
    "constants": "constants",
    "limits": "limits",
    **dict.fromkeys(("Artifact", "Audio", "CoarseCodes", "FineCodes", "Provenance", "SemanticTokens",
                     "load_artifact"), "artifacts"),
    "read_audio": "audio_io",
    "StageCache": "cache",
    **dict.fromkeys(("RecordingError", "RecordingWarning", "voice_from_audio"), "cloning"),
    **dict.fromkeys(("concat", "slice_artifact"), "edit"),
    **dict.fromkeys(("ArtifactError", "BadTextError", "BarkError", "CacheError", "CheckpointError",
                     "OutputPathError", "ParameterError", "VoiceError"), "errors"),
    **dict.fromkeys(("StreamChunk", "export_audio", "generate_stream", "save_wav"), "label"),
    **dict.fromkeys(("tiny_model_dir", "write_tiny_model_set"), "models"),
    "render": "plots",
    **dict.fromkeys(("COMMON_RIGHTS", "RightsError", "RightsRecord", "voice_origin"), "rights"),
    "derive_seed": "sampling",
    **dict.fromkeys(("BarkModels", "Take", "TextTruncatedWarning", "decode", "decode_preview", "generate",
                     "generate_batch", "generate_coarse", "generate_fine", "generate_long", "generate_semantic",
                     "semantic_from_audio"), "stages"),
    **dict.fromkeys(("Voice", "load_voice", "load_voice_file", "preset_names", "presets_by_language",
                     "voice_from_artifacts"), "voices"),
}

__all__ = [
    "constants", "limits", "Artifact", "Audio", "CoarseCodes", "FineCodes", "Provenance", "SemanticTokens",
    "load_artifact", "read_audio", "StageCache", "concat", "slice_artifact", "RecordingError", "RecordingWarning",
    "semantic_from_audio",
    "ArtifactError", "BadTextError", "BarkError", "CacheError", "CheckpointError", "OutputPathError",
    "ParameterError", "VoiceError",
    "export_audio", "save_wav", "StreamChunk", "generate_stream", "tiny_model_dir", "write_tiny_model_set", "render",
    "COMMON_RIGHTS", "RightsError", "RightsRecord", "voice_origin", "derive_seed",
    "BarkModels", "Take", "TextTruncatedWarning", "decode", "decode_preview", "generate", "generate_batch",
    "generate_coarse", "generate_fine", "generate_long", "generate_semantic", "voice_from_audio",
    "Voice", "load_voice", "load_voice_file", "preset_names", "presets_by_language", "voice_from_artifacts",
]


def __getattr__(name: str) -> Any:
    """Load a public name (or a subpackage, ``bark_core.label``) the first time it is asked for."""
    where = _WHERE.get(name)
    if where is None:
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(f"{__name__}.{where}")
    value = module if where == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
