"""Dialogue scripts as plain text: who says what, with pauses, in order.

A script is a list of :class:`Line` s. Each line has a speaker, the words to speak split into
:class:`Segment` s by pause tags, and (for subtitles) the cue's start and end time. The text format:

* ``Speaker: text`` or ``[Speaker] text`` starts a line; a line without a speaker tag continues
  with the previous line's speaker;
* a blank line is a paragraph break (a longer pause, :data:`PARAGRAPH_PAUSE_S`);
* ``[pause 0.8s]``, ``[pause:800ms]``, ``[pause 2 s]`` are exact silences, inside a line or alone on one;
* Bark's own cues (``[laughs]``, ``[sighs]``, ``♪``, ``—``, CAPS) pass through to the model untouched;
* ``#`` starts a comment line;
* an optional header between two ``---`` lines at the top is TOML: ``[voices]`` maps speakers to voices
  (see :mod:`bark_core.script.voicemap`), ``seed = 7`` sets the global seed, ``title = "..."``.

Every error names the line number and says how to fix it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import BarkError

PARAGRAPH_PAUSE_S = 0.8  # a blank line: a breath between paragraphs, longer than a sentence pause (0.3-0.6 s)
LINE_GAP_S = 0.35  # between two lines of dialogue: a natural turn gap (conversation averages ~0.2-0.5 s)
MAX_PAUSE_S = 30.0  # longer silences are almost always a typo (800s for 800ms); split the scene instead
BARK_CUES = ("laughter", "laughs", "sighs", "music", "gasps", "clears throat", "coughs", "whispers")

_PAUSE = re.compile(r"\[\s*pause\b([^\]]*)\]", re.IGNORECASE)
_PAUSE_VALUE = re.compile(r"^\s*[:=]?\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?)?\s*$", re.IGNORECASE)
_BRACKET_SPEAKER = re.compile(r"^\[([^\]\[]{1,40})\]\s*(.*)$")
_COLON_SPEAKER = re.compile(r"^([A-Za-z\u00C0-\u024F][\w .'\-]{0,39}?)\s*:\s+(.*)$")
_STRAY_TAG = re.compile(r"\[\s*pause", re.IGNORECASE)


class ScriptError(BarkError, ValueError):
    """A script, subtitle file or voice map cannot be used as written; ``lineno`` is 1-based (or None)."""

    def __init__(self, message: str, lineno: int | None = None, source: str = "script"):
        where = f"{source}, line {lineno}: " if lineno is not None else f"{source}: "
        super().__init__(where + message)
        self.lineno = lineno
        self.source = source


@dataclass(frozen=True)
class Segment:
    """A stretch of speech, or an exact silence (``text`` empty, ``pause_s`` > 0)."""

    text: str = ""
    pause_s: float = 0.0

    @property
    def is_pause(self) -> bool:
        return not self.text


@dataclass
class Line:
    """One spoken line (or, with no speaker and only a pause, a silence on its own)."""

    number: int  # 1-based position in the script
    lineno: int  # 1-based line in the source file
    speaker: str | None
    segments: list[Segment]
    start_s: float | None = None  # subtitle cues: where the line must start
    end_s: float | None = None  # ... and by when it should have ended
    paragraph: bool = False  # a blank line came before it
    key: str = ""  # stable id: seeds derive from it (see :func:`line_keys`)

    @property
    def text(self) -> str:
        """What is spoken, pause tags removed (the reference for the word error rate)."""
        return " ".join(s.text for s in self.segments if s.text).strip()

    @property
    def is_pause(self) -> bool:
        return all(s.is_pause for s in self.segments)

    @property
    def cue_s(self) -> float | None:
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "lineno": self.lineno, "speaker": self.speaker, "text": self.text,
                "segments": [{"text": s.text, "pause_s": s.pause_s} for s in self.segments],
                "start_s": self.start_s, "end_s": self.end_s, "paragraph": self.paragraph, "key": self.key}


@dataclass
class Script:
    """A parsed script: its lines, the header's settings and where it came from."""

    lines: list[Line]
    header: dict[str, Any] = field(default_factory=dict)
    source: str = "script"
    kind: str = "script"  # "script", "srt" or "vtt"
    folder: str | None = None  # the file's folder: the header's relative .npz voices are read from there

    @property
    def speakers(self) -> list[str]:
        seen: list[str] = []
        for line in self.lines:
            if line.speaker and line.speaker not in seen:
                seen.append(line.speaker)
        return seen

    @property
    def timed(self) -> bool:
        return self.kind in ("srt", "vtt")

    @property
    def spoken(self) -> list[Line]:
        return [line for line in self.lines if not line.is_pause]


def parse_pause(tag_body: str, lineno: int, source: str = "script") -> float:
    """Seconds of a pause tag's body (`` 0.8s``, ``:800ms``, `` 2``); a :class:`ScriptError` when malformed."""
    m = _PAUSE_VALUE.match(tag_body)
    if not m:
        raise ScriptError(f"malformed pause tag [pause{tag_body}]. Write [pause 0.8s] or [pause:800ms].",
                          lineno, source)
    value = float(m.group(1))
    unit = (m.group(2) or "s").lower()
    seconds = value / 1000.0 if unit == "ms" else value
    if seconds <= 0 or seconds > MAX_PAUSE_S:
        raise ScriptError(f"pause of {seconds:g} s is outside 0..{MAX_PAUSE_S:g} s. Check the unit (ms or s).",
                          lineno, source)
    return seconds


def split_segments(text: str, lineno: int, source: str = "script") -> list[Segment]:
    """Speech and pause segments of one line's text, in order; Bark cues stay inside the speech."""
    out: list[Segment] = []
    pos = 0
    for m in _PAUSE.finditer(text):
        before = text[pos:m.start()].strip()
        if before:
            out.append(Segment(text=before))
        out.append(Segment(pause_s=parse_pause(m.group(1), lineno, source)))
        pos = m.end()
    rest = text[pos:].strip()
    if _STRAY_TAG.search(rest):
        raise ScriptError("a [pause ...] tag is not closed with ']'.", lineno, source)
    if rest:
        out.append(Segment(text=rest))
    for seg in out:
        if seg.text.count("[") != seg.text.count("]"):
            raise ScriptError(f"unbalanced brackets in {seg.text!r}. Cues look like [laughs].", lineno, source)
    return out


def _speaker_of(raw: str) -> tuple[str | None, str]:
    """(speaker, rest) when ``raw`` starts with ``Name:`` or ``[Name]`` (a Bark cue is not a speaker)."""
    m = _BRACKET_SPEAKER.match(raw)
    if m:
        name = m.group(1).strip()
        if name.lower() not in BARK_CUES and not name.lower().startswith("pause"):
            return name, m.group(2)
        return None, raw
    m = _COLON_SPEAKER.match(raw)
    if m:
        return m.group(1).strip(), m.group(2)
    return None, raw


def _split_header(text: str, source: str) -> tuple[dict[str, Any], list[str], int]:
    """The TOML header between two ``---`` lines at the top, the remaining lines and their first line number."""
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None or lines[first].strip() != "---":
        return {}, lines, 1
    end = next((i for i in range(first + 1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise ScriptError("the header opened with '---' is never closed. Add a '---' line after it.",
                          first + 1, source)
    header = parse_toml("\n".join(lines[first + 1:end]), source, first_lineno=first + 2)
    return header, lines[end + 1:], end + 2


def parse_toml(text: str, source: str, first_lineno: int = 1) -> dict[str, Any]:
    """TOML through the standard library (tomli on Python 3.10), errors with the file's line number."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        lineno = first_lineno + int(m.group(1)) - 1 if m else None
        raise ScriptError(f"the header is not valid TOML ({exc}).", lineno, source) from exc


def line_keys(lines: list[Line]) -> None:
    """Give each line a key from its speaker, text and occurrence, so editing one line keeps the others' seeds."""
    seen: dict[str, int] = {}
    for line in lines:
        base = f"{line.speaker or ''}\x1f{line.text}\x1f{line.start_s}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        line.key = hashlib.sha256(f"{base}\x1f{n}".encode()).hexdigest()[:12]


def parse_script(text: str, *, source: str = "script") -> Script:
    """Parse the plain-text script format (see the module docstring)."""
    header, body, offset = _split_header(text, source)
    lines: list[Line] = []
    speaker: str | None = None
    paragraph = False
    for i, raw in enumerate(body):
        lineno = offset + i
        stripped = raw.strip()
        if not stripped:
            paragraph = bool(lines)
            continue
        if stripped.startswith("#"):
            continue
        if stripped == "---":
            raise ScriptError("a '---' header is only allowed at the top of the script.", lineno, source)
        who, rest = _speaker_of(stripped)
        if who is not None:
            speaker = who
        segments = split_segments(rest, lineno, source)
        if not segments:
            raise ScriptError(f"speaker {who!r} has nothing to say. Write text after '{who}:'.", lineno, source)
        is_pause = all(s.is_pause for s in segments)
        if speaker is None and not is_pause:
            raise ScriptError("this line has no speaker. Start it with 'Name:' or '[Name]'.", lineno, source)
        lines.append(Line(number=len(lines) + 1, lineno=lineno, speaker=None if is_pause else speaker,
                          segments=segments, paragraph=paragraph))
        paragraph = False
    if not any(not ln.is_pause for ln in lines):
        raise ScriptError("the script has no spoken line. Write lines like 'Alice: Hello there.'", None, source)
    line_keys(lines)
    return Script(lines=lines, header=header, source=source, kind="script")
