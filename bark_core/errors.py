"""One exception family so front ends can show the message instead of a traceback.

Every message names the offending input and says what to do about it.
"""

from __future__ import annotations


class BarkError(Exception):
    """Base of every error bark_core raises on purpose."""


class BadTextError(BarkError, ValueError):
    """The text prompt cannot be generated from."""


class VoiceError(BarkError, ValueError):
    """A voice (history prompt) is unknown, unreadable or malformed."""


class ArtifactError(BarkError, ValueError):
    """An artifact has the wrong kind, shape or values for the stage it was handed to."""


class CheckpointError(BarkError, RuntimeError):
    """Weights are missing, unreachable, unsafe or do not fit the model."""


class OutputPathError(BarkError, OSError):
    """A result cannot be written where it was asked to go."""


class ParameterError(BarkError, ValueError):
    """A setting (temperature, top_k, seed, gap, threshold, size...) is of the wrong type or out of range."""


class CacheError(BarkError, ValueError):
    """A folder cannot be used or cleared as a stage cache (it holds files the cache did not write)."""
class ExtraMissingError(BarkError, ImportError):
    """An optional dependency (a pip extra of bark-stages) that a feature needs is not installed."""
