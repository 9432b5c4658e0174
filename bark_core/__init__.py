"""Bark text-to-audio, stage by stage: text -> semantic -> coarse -> fine -> audio -> label.

Each stage is a function over typed artifacts (see :mod:`bark_core.artifacts`); the models,
voices and checkpoints they use come from :class:`BarkModels`.

The house, bottom to top (each floor imports only from the floors below it):
the root modules (constants, errors, files, hub, audio I/O, then artifacts, voices, rights, edits,
cache, plots), :mod:`~bark_core.models`, :mod:`~bark_core.sampling`, :mod:`~bark_core.stages`,
:mod:`~bark_core.quality`, :mod:`~bark_core.cloning` (a voice from a recording), :mod:`~bark_core.label`
and :mod:`~bark_core.cli`. The names below are
the public API; front ends import only these and their subpackages' exports.
"""

from . import constants
from .artifacts import Artifact, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, load_artifact
from .audio_io import read_audio
from .cache import StageCache
from .cloning import RecordingError, RecordingWarning, voice_from_audio
from .edit import concat, slice_artifact
from .errors import ArtifactError, BadTextError, BarkError, CheckpointError, OutputPathError, VoiceError
from .label import export_audio, save_wav
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

__all__ = [
    "constants", "Artifact", "Audio", "CoarseCodes", "FineCodes", "Provenance", "SemanticTokens", "load_artifact",
    "read_audio", "StageCache", "concat", "slice_artifact", "RecordingError", "RecordingWarning", "semantic_from_audio",
    "ArtifactError", "BadTextError", "BarkError", "CheckpointError", "OutputPathError", "VoiceError",
    "export_audio", "save_wav", "tiny_model_dir", "write_tiny_model_set", "render",
    "COMMON_RIGHTS", "RightsError", "RightsRecord", "voice_origin", "derive_seed",
    "BarkModels", "Take", "TextTruncatedWarning", "decode", "decode_preview", "generate", "generate_batch",
    "generate_coarse", "generate_fine", "generate_long", "generate_semantic", "voice_from_audio",
    "Voice", "load_voice", "load_voice_file", "preset_names", "presets_by_language", "voice_from_artifacts",
]
