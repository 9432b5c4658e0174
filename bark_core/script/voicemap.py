"""Which voice speaks for which speaker: from the script's header, a JSON/TOML file, or a dict.

Each entry is a preset name (``v2/en_speaker_6``), a ``.npz`` path (relative to the file that names it),
``"none"`` (a random speaker on the first line, then that speaker's first accepted line becomes its voice,
so it stays one person), or a table ``{voice = "clone.npz", rights = {who = "...", right = "...", when = "..."}}``
for a cloned voice whose rights record is kept with it and carried into every label. The speaker ``"*"``
catches any speaker not named; without it, a speaker with no voice is an error naming its first line.

    [voices]
    Alice = "v2/en_speaker_9"
    Bob = { voice = "bob.npz", rights = { who = "Bob Example", right = "written consent", when = "2026-11-01" } }
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rights import RIGHTS_KEY, RightsRecord
from ..voices import Voice
from .parse import Script, ScriptError, parse_toml

RANDOM = ("none", "random", "")
WILDCARD = "*"


@dataclass
class VoiceEntry:
    speaker: str
    spec: Any  # preset name, path, Voice, or None for a random first take
    rights: RightsRecord | None = None

    def describe(self) -> str:
        if self.spec is None:
            return "random (then kept)"
        if isinstance(self.spec, Voice):
            return self.spec.label
        return os.path.basename(str(self.spec)) if str(self.spec).endswith(".npz") else str(self.spec)


@dataclass
class VoiceMap:
    """Speaker name -> voice entry; ``resolve`` turns entries into validated :class:`~bark_core.voices.Voice` s."""

    entries: dict[str, VoiceEntry] = field(default_factory=dict)
    source: str = "voices"

    @classmethod
    def from_mapping(cls, data: Any, *, base: Path | None = None, source: str = "voices") -> VoiceMap:
        if isinstance(data, VoiceMap):
            return data
        if data is None:
            return cls(source=source)
        if not isinstance(data, dict):
            raise ScriptError(f"a voice map must be a table of speaker = voice, got {type(data).__name__}.",
                              None, source)
        if set(data) == {"voices"} or ("voices" in data and isinstance(data["voices"], dict)):
            data = data["voices"]
        out = cls(source=source)
        for speaker, value in data.items():
            out.entries[str(speaker)] = _entry(str(speaker), value, base, source)
        return out

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> VoiceMap:
        path = Path(path)
        if not path.is_file():
            raise ScriptError(f"no voice map at {path}. Check the path.", None, path.name)
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ScriptError(f"not valid JSON ({exc.msg}).", exc.lineno, path.name) from exc
        else:
            data = parse_toml(text, path.name)
        return cls.from_mapping(data, base=path.parent, source=path.name)

    @classmethod
    def from_text(cls, text: str, *, source: str = "voices") -> VoiceMap:
        """A map written as TOML text (``Alice = "v2/en_speaker_9"``, or under a ``[voices]`` table)."""
        return cls.from_mapping(parse_toml(text, source), source=source)

    def merged(self, other: VoiceMap | None) -> VoiceMap:
        """This map with ``other``'s entries on top (a --voices file overrides the script header)."""
        out = VoiceMap(entries=dict(self.entries), source=self.source)
        if other is not None:
            out.entries.update(other.entries)
            out.source = other.source
        return out

    def entry(self, speaker: str) -> VoiceEntry | None:
        return self.entries.get(speaker) or self.entries.get(WILDCARD)

    def check(self, script: Script) -> None:
        """Every speaker of ``script`` has a voice, or a :class:`ScriptError` at its first line."""
        for line in script.lines:
            if line.speaker is None or self.entry(line.speaker) is not None:
                continue
            names = [n for n in self.entries if n != WILDCARD]
            close = difflib.get_close_matches(line.speaker, names, n=2, cutoff=0.6)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            known = f" Known speakers: {', '.join(names)}." if names else ""
            raise ScriptError(
                f"unknown speaker {line.speaker!r}.{hint}{known} Give it a voice: add "
                f"'{line.speaker} = \"v2/en_speaker_6\"' under [voices] in the script header or in the --voices "
                "file.", line.lineno, script.source)

    def resolve(self, models: Any, speaker: str) -> Voice | None:
        """The speaker's voice through ``models.voice`` (presets, files), with its rights record attached."""
        entry = self.entry(speaker)
        if entry is None:
            raise ScriptError(f"unknown speaker {speaker!r}.", None, self.source)
        if entry.spec is None:
            return None
        voice = models.voice(entry.spec)
        if entry.rights is not None and voice is not None:
            voice.source = {**voice.source, RIGHTS_KEY: entry.rights.to_dict()}
        return voice

    def to_dict(self) -> dict[str, Any]:
        return {k: {"voice": v.describe(), **({"rights": v.rights.to_dict()} if v.rights else {})}
                for k, v in self.entries.items()}


def _entry(speaker: str, value: Any, base: Path | None, source: str) -> VoiceEntry:
    rights = None
    if isinstance(value, dict):
        if "voice" not in value:
            raise ScriptError(f"the voice of {speaker!r} is a table without 'voice = ...'.", None, source)
        raw_rights = value.get("rights")
        if raw_rights is None and "who" in value:
            raw_rights = {k: value[k] for k in ("who", "right", "when", "evidence", "note") if k in value}
        if raw_rights is not None:
            try:
                rights = RightsRecord.from_dict(raw_rights)
            except Exception as exc:
                raise ScriptError(f"the rights record of {speaker!r} is incomplete: {exc}", None, source) from exc
        value = value["voice"]
    if isinstance(value, Voice):
        return VoiceEntry(speaker, value, rights)
    if value is None or (isinstance(value, str) and value.strip().lower() in RANDOM):
        return VoiceEntry(speaker, None, rights)
    if not isinstance(value, (str, os.PathLike)):
        raise ScriptError(f"the voice of {speaker!r} must be a preset name or a .npz path, got "
                          f"{type(value).__name__}.", None, source)
    spec = os.fspath(value).strip()
    if spec.endswith(".npz") and base is not None and not os.path.isabs(spec):
        spec = str(base / spec)
    return VoiceEntry(speaker, spec, rights)
