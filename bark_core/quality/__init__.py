"""Automatic quality checks (noise, clarity, speech, loudness, an approximate transcript) and repeatability.

A person still listens before publishing; these checks say where to listen and why.
"""

from .analysis import check
from .asr import transcribe, word_error_rate
from .repeat import RepeatabilityReport, StageComparison, repeatability
from .report import EXPECT, SCHEMA, SEVERITIES, Flag, Metrics, QualityError, QualityReport
from .speaker import SIMILARITY_MIN, SpeakerEmbedding, speaker_embedding, speaker_similarity
from .speech import text_syllables
from .thresholds import THRESHOLDS

__all__ = [
    "transcribe", "word_error_rate", "check", "RepeatabilityReport", "StageComparison", "repeatability", "EXPECT",
    "SCHEMA", "SEVERITIES", "Flag", "Metrics", "QualityError", "QualityReport", "text_syllables", "THRESHOLDS",
    "SIMILARITY_MIN", "SpeakerEmbedding", "speaker_embedding", "speaker_similarity",
]
