"""From a line to a production: dialogue scripts and subtitles, scored takes with automatic retakes, one timeline.

Read a script (:func:`read_script`: the plain ``Speaker: text`` format with pause tags, or ``.srt`` / ``.vtt``
cues), map speakers to voices (:class:`VoiceMap`), and :func:`render_script` speaks every line through the
retake loop (:func:`render_line`): candidates are judged on script (WER of an offline transcript), same
speaker (embedding similarity to the voice and to the speaker's earlier lines), clean (the quality checks) and,
for cues, fit; the result is a labelled track, an SRT of what was placed and a per-line report.
"""

from .parse import (
    BARK_CUES,
    LINE_GAP_S,
    MAX_PAUSE_S,
    PARAGRAPH_PAUSE_S,
    Line,
    Script,
    ScriptError,
    Segment,
    parse_script,
)
from .production import Production, render_script, retake_line
from .retake import Candidate, LineResult, chunk_scorer, line_seed, render_line, speak_line
from .scoring import (
    CUE_OVERFLOW_MAX,
    DEFAULT_MAX_TRIES,
    WER_MAX,
    LineScorer,
    RetakePolicy,
    Scores,
    SpeakerMemory,
)
from .subtitles import DEFAULT_SPEAKER, compose_srt, parse_srt, parse_text, parse_vtt, read_script
from .timeline import MAX_COMPRESSION, PLACE_TOLERANCE_S, Placement, fit_to_cue, place, time_stretch, trim_silence
from .voicemap import VoiceEntry, VoiceMap

__all__ = [
    "BARK_CUES", "LINE_GAP_S", "MAX_PAUSE_S", "PARAGRAPH_PAUSE_S", "Line", "Script", "ScriptError", "Segment",
    "parse_script", "Production", "render_script", "retake_line", "Candidate", "LineResult", "chunk_scorer",
    "line_seed", "render_line", "speak_line", "CUE_OVERFLOW_MAX", "DEFAULT_MAX_TRIES", "WER_MAX", "LineScorer",
    "RetakePolicy", "Scores", "SpeakerMemory", "DEFAULT_SPEAKER", "compose_srt", "parse_srt", "parse_vtt",
    "parse_text", "read_script", "MAX_COMPRESSION", "PLACE_TOLERANCE_S", "Placement", "fit_to_cue", "place",
    "time_stretch",
    "trim_silence", "VoiceEntry", "VoiceMap",
]
