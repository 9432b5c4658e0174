"""The stages over artifacts and the model set they run on: text -> semantic -> coarse -> fine -> audio,
one call for all four, batches, long texts, and the prompts of a voice from a recording."""

from .batch import generate_batch
from .clone import AudioPrompts, prompts_from_audio, semantic_from_audio
from .generation import (
    TextTruncatedWarning,
    decode,
    decode_preview,
    generate_coarse,
    generate_fine,
    generate_semantic,
    normalize_text,
)
from .longform import CONTINUITY_MODES, DEFAULT_MAX_CHARS, LongFormError, LongTake, generate_long, split_text
from .modelset import MANIFEST, MODEL_STAGES, BarkModels, cpu_threads
from .pipeline import Take, generate

__all__ = [
    "generate_batch", "AudioPrompts", "prompts_from_audio", "semantic_from_audio", "TextTruncatedWarning", "decode",
    "decode_preview", "generate_coarse", "generate_fine", "generate_semantic", "normalize_text", "CONTINUITY_MODES",
    "DEFAULT_MAX_CHARS", "LongFormError", "LongTake", "generate_long", "split_text", "MANIFEST", "MODEL_STAGES",
    "BarkModels", "Take", "generate", "cpu_threads",
]
