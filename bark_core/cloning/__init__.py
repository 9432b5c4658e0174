"""A voice from a recording: the consent record first, the recording within limits, a prompt of whole
phrases checked like a take, then all three prompts (HuBERT + quantizer for the semantic one)."""

from .prompt import DEFAULT_PROMPT_S, PromptSelection, RecordingWarning, check_prompt, select_prompt
from .recording import MAX_RECORDING_S, MIN_RECORDING_S, Recording, RecordingError, load_recording
from .voice import voice_from_audio

__all__ = [
    "DEFAULT_PROMPT_S", "PromptSelection", "RecordingWarning", "check_prompt", "select_prompt", "MAX_RECORDING_S",
    "MIN_RECORDING_S", "Recording", "RecordingError", "load_recording", "voice_from_audio",
]
