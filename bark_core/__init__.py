"""Bark text-to-audio, stage by stage: text -> semantic -> coarse -> fine -> audio -> label.

Each stage is a function over typed artifacts (see :mod:`bark_core.artifacts`); the models,
voices and checkpoints they use come from :class:`BarkModels`.
"""

from .artifacts import Artifact, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, load_artifact
from .errors import ArtifactError, BadTextError, BarkError, CheckpointError, OutputPathError, VoiceError
from .generation import (
    TextTruncatedWarning,
    decode,
    generate_coarse,
    generate_fine,
    generate_semantic,
)
from .pipeline import BarkModels, Take, generate
from .tiny import tiny_model_dir, write_tiny_model_set
from .voices import Voice, load_voice, preset_names, presets_by_language, voice_from_artifacts

__all__ = [
    "Artifact", "Audio", "CoarseCodes", "FineCodes", "Provenance", "SemanticTokens", "load_artifact",
    "ArtifactError", "BadTextError", "BarkError", "CheckpointError", "OutputPathError", "VoiceError",
    "TextTruncatedWarning", "decode", "generate_coarse", "generate_fine", "generate_semantic",
    "BarkModels", "Take", "generate", "tiny_model_dir", "write_tiny_model_set",
    "Voice", "load_voice", "preset_names", "presets_by_language", "voice_from_artifacts",
]
