"""Scripts and subtitles as render jobs: one manifest row per spoken line.

A dialogue script (``Speaker: text``), a SubRip ``.srt`` or a WebVTT ``.vtt`` file becomes rows that the
job machinery renders like any manifest, so a 3,000-line audiobook script resumes after a kill and scales
out on Ray instead of going through the single-process scene renderer (``bark-core script``):

* ``id``: the file's stem and the line's 1-based line number in that file (``scene-0007``), so an edited
  line keeps its id (and its seed) as long as it stays on its line, and every error names that line;
* ``voice``: the speaker's voice from the script header's ``[voices]`` table, overridden by a ``--voices``
  map (the ``"*"`` speaker catches the rest). A speaker with ``"none"`` gets no voice: each of its rows
  draws its own random speaker, since rows render independently (the scene renderer instead keeps the
  speaker's first take as its voice);
* ``speaker``: the script's speaker, which goes into each file's label;
* a cloned voice's rights record from the map travels with the row's voice into the label.

Each row is one file, so what only a timeline can hold is not in it: pauses *between* lines, subtitle
times, and pause tags *inside* a line (the row speaks the line's words without them; each such line is
listed in :attr:`ScriptRows.notes`). Use ``bark-core script`` for a placed, timed scene.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..rights import RightsRecord
from ..script import Script, ScriptError, VoiceMap, read_script
from ..voices import Voice


@dataclass
class ScriptRows:
    """Manifest records from a script, with their source line numbers, and what the rows cannot keep."""

    records: list[tuple[int, dict[str, Any], str | None]]  # (line, record, problem) as parse_rows takes them
    rights: dict[str, RightsRecord] = field(default_factory=dict)  # voice spec -> rights record from the map
    notes: list[str] = field(default_factory=list)
    source: str = "script"
    seed: int | None = None  # the header's seed, a default job seed


def _stem(source: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem).strip("._-")
    return stem or "line"


def script_rows(script: Script | str | os.PathLike, voices: VoiceMap | str | os.PathLike | None = None) -> ScriptRows:
    """Rows for every spoken line of ``script`` (a :class:`Script` or a path), voices from its header and
    ``voices`` (a :class:`VoiceMap` or a map file, which overrides the header)."""
    if not isinstance(script, Script):
        script = read_script(Path(script))
    # .npz paths are relative to the file that names them; the map makes them whole, so rows need no base
    base = Path(script.folder) if script.folder is not None else None
    vmap = VoiceMap.from_mapping(script.header.get("voices"), base=base, source=script.source)
    if voices is not None:
        vmap = vmap.merged(voices if isinstance(voices, VoiceMap) else VoiceMap.from_file(voices))
    stem = _stem(script.source)
    out = ScriptRows(records=[], source=script.source)
    seed = script.header.get("seed")
    out.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    names = [n for n in vmap.entries if n != "*"]
    if not vmap.entries and script.speakers:  # one message, not one per line
        raise ScriptError(f"no voice map, and the speakers {', '.join(script.speakers)} need voices. Pass --voices "
                          "MAP (a .toml like examples/scenes/voices.toml) or add a [voices] header; "
                          "'*' = \"none\" gives every speaker a random voice.", None, script.source)
    for line in script.spoken:
        record: dict[str, Any] = {"id": f"{stem}-{line.lineno:04d}", "text": line.text, "speaker": line.speaker}
        problem = None
        entry = vmap.entry(line.speaker) if line.speaker is not None else vmap.entries.get("*")
        if entry is None and line.speaker is not None:
            close = difflib.get_close_matches(line.speaker, names, n=2, cutoff=0.6)
            problem = (f"unknown speaker {line.speaker!r}" + (f" (did you mean {' or '.join(close)}?)" if close else "")
                       + "; give it a voice under [voices] in the script header or in a --voices map"
                       + (f" (known: {', '.join(names)})" if names else ""))
        elif entry is not None and entry.spec is not None:
            if isinstance(entry.spec, Voice):
                problem = (f"speaker {line.speaker!r} has an in-memory voice; a render job needs a preset name or "
                           "a .npz path")
            else:
                record["voice"] = str(entry.spec)
                if entry.rights is not None:
                    out.rights[str(entry.spec)] = entry.rights
        if any(s.is_pause for s in line.segments):
            pauses = ", ".join(f"{s.pause_s:g} s" for s in line.segments if s.is_pause)
            out.notes.append(f"line {line.lineno}: pause(s) of {pauses} inside the line are left out of its row "
                             "(one file per line; `bark-core script` places pauses on a timeline)")
        out.records.append((line.lineno, record, problem))
    if not out.records:
        raise ScriptError("no spoken lines; write lines like 'Alice: Hello.'", None, script.source)
    return out
