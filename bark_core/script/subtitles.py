"""Subtitles in and out: SubRip (``srt``) and WebVTT (``webvtt-py``) cues as timed script lines, and the SRT of
what was actually placed on the timeline.

A cue's text may name its speaker like a script line (``Alice: text``, ``[Alice] text``) or, in WebVTT, with a
voice span (``<v Alice>text``); a cue without one keeps the previous cue's speaker, and the first defaults to
:data:`DEFAULT_SPEAKER`. Pause tags inside a cue work as in scripts. Cues must not overlap or run backwards.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from .parse import Line, Script, ScriptError, _speaker_of, line_keys, parse_script, split_segments

DEFAULT_SPEAKER = "Narrator"
_TIMING = re.compile(r"-->")
_VTT_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})$")


def _timing_lines(text: str) -> list[int]:
    """1-based line numbers of every ``-->`` line, in order: cue k's timing line is the k-th one."""
    return [i + 1 for i, ln in enumerate(text.splitlines()) if _TIMING.search(ln)]


def _check_order(lines: list[Line], source: str) -> None:
    for i, line in enumerate(lines):
        if line.end_s <= line.start_s:  # type: ignore[operator]
            raise ScriptError(f"cue {line.number} ends ({line.end_s:.3f} s) before it starts ({line.start_s:.3f} s). "
                              "Swap or fix its times.", line.lineno, source)
        if i and line.start_s < lines[i - 1].end_s - 1e-6:  # type: ignore[operator]
            prev = lines[i - 1]
            raise ScriptError(f"cue {line.number} starts at {line.start_s:.3f} s, before cue {prev.number} ends at "
                              f"{prev.end_s:.3f} s (line {prev.lineno}). Subtitle cues for one track must not "
                              "overlap: move one of them.", line.lineno, source)


def _cue_line(number: int, lineno: int, start: float, end: float, text: str, speaker: str | None,
              previous: str | None, source: str) -> tuple[Line, str]:
    text = " ".join(t.strip() for t in text.splitlines() if t.strip())
    who, rest = _speaker_of(text)
    speaker = speaker or who or previous or DEFAULT_SPEAKER
    segments = split_segments(rest if who else text, lineno, source)
    if not segments:
        raise ScriptError(f"cue {number} has no text. Remove the cue or write its words.", lineno, source)
    return Line(number=number, lineno=lineno, speaker=speaker, segments=segments, start_s=start, end_s=end), speaker


def parse_srt(text: str, *, source: str = "subtitles.srt") -> Script:
    """SubRip cues as timed lines (parsed by the ``srt`` package)."""
    try:
        import srt
    except ImportError as exc:
        raise ScriptError("reading .srt files needs the srt package: pip install 'bark-stages[script]'.",
                          None, source) from exc
    try:
        cues = list(srt.parse(text))
    except srt.SRTParseError as exc:
        lineno = text[:getattr(exc, "expected_start", 0)].count("\n") + 1
        raise ScriptError(f"not a valid SubRip file ({str(exc).splitlines()[0]}).", lineno, source) from exc
    timing = _timing_lines(text)
    lines: list[Line] = []
    speaker: str | None = None
    for k, cue in enumerate(cues):
        lineno = timing[k] if k < len(timing) else 0
        line, speaker = _cue_line(k + 1, lineno, cue.start.total_seconds(), cue.end.total_seconds(), cue.content,
                                  None, speaker, source)
        lines.append(line)
    return _finish(lines, source, "srt")


def _vtt_seconds(stamp: str, lineno: int, source: str) -> float:
    m = _VTT_TIME.match(stamp.strip())
    if not m:
        raise ScriptError(f"cannot read the time {stamp!r}. Write HH:MM:SS.mmm.", lineno, source)
    h, mi, s, ms = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def parse_vtt(text: str, *, source: str = "subtitles.vtt") -> Script:
    """WebVTT cues as timed lines (parsed by ``webvtt-py``); ``<v Name>`` voice spans name the speaker."""
    try:
        import webvtt
        from webvtt.errors import MalformedFileError
    except ImportError as exc:
        raise ScriptError("reading .vtt files needs webvtt-py: pip install 'bark-stages[script]'.",
                          None, source) from exc
    try:
        captions = list(webvtt.from_string(text))
    except MalformedFileError as exc:
        raise ScriptError(f"not a valid WebVTT file ({exc}).", None, source) from exc
    timing = _timing_lines(text)
    lines: list[Line] = []
    speaker: str | None = None
    for k, cap in enumerate(captions):
        lineno = timing[k] if k < len(timing) else 0
        start, end = _vtt_seconds(cap.start, lineno, source), _vtt_seconds(cap.end, lineno, source)
        line, speaker = _cue_line(k + 1, lineno, start, end, cap.text, getattr(cap, "voice", None), speaker, source)
        lines.append(line)
    return _finish(lines, source, "vtt")


def _finish(lines: list[Line], source: str, kind: str) -> Script:
    if not lines:
        raise ScriptError("the subtitle file has no cues.", None, source)
    _check_order(lines, source)
    line_keys(lines)
    return Script(lines=lines, source=source, kind=kind)


def read_script(path: str | os.PathLike, *, kind: str | None = None) -> Script:
    """A script from a file: ``.srt``, ``.vtt`` or any text file (``kind`` overrides the extension).

    A ``str`` that is not an existing file is read as the script text itself (see :func:`parse_text`); front
    ends that take text from users call :func:`parse_text` directly, so a path typed there is never opened.
    """
    text = os.fspath(path)
    if not isinstance(path, Path) and ("\n" in text or len(text) >= 4096 or not Path(text).is_file()):
        return parse_text(text, kind=kind)
    file = Path(text)
    if not file.is_file():
        raise ScriptError(f"no file at {file}. Check the path.", None, str(file))
    try:
        body = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read the file ({exc}). Save it as UTF-8 text.", None, file.name) from exc
    script = parse_text(body, kind=kind or {".srt": "srt", ".vtt": "vtt"}.get(file.suffix.lower()), source=file.name)
    script.folder = os.fspath(file.parent)
    return script


def parse_text(text: str, *, kind: str | None = None, source: str = "script") -> Script:
    """A script from its text: ``kind`` "script", "srt" or "vtt", or None to tell from the text (``WEBVTT``
    or a SubRip cue number and timing line first means subtitles)."""
    if kind is None:
        head = text.lstrip("\ufeff").lstrip()
        if head.startswith("WEBVTT"):
            kind = "vtt"
        elif re.match(r"^\d+\s*\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->", head):
            kind = "srt"
        else:
            kind = "script"
    if kind == "srt":
        return parse_srt(text, source=source)
    if kind == "vtt":
        return parse_vtt(text, source=source)
    if kind != "script":
        raise ScriptError(f"unknown script kind {kind!r}; use script, srt or vtt.", None, source)
    return parse_script(text, source=source)


def compose_srt(cues: list[dict[str, Any]]) -> str:
    """SubRip text of placed cues: dicts with ``start_s``, ``end_s``, ``text`` and optional ``speaker``."""
    import srt

    subs = [srt.Subtitle(index=i + 1, start=timedelta(seconds=round(c["start_s"], 3)),
                         end=timedelta(seconds=round(c["end_s"], 3)),
                         content=f"{c['speaker']}: {c['text']}" if c.get("speaker") else c["text"])
            for i, c in enumerate(cues)]
    return srt.compose(subs, reindex=False)


__all__ = ["DEFAULT_SPEAKER", "parse_srt", "parse_vtt", "parse_text", "read_script", "compose_srt",
           "parse_script"]
