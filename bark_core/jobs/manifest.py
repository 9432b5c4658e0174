"""A render job is a manifest: one row per line to speak, as JSONL or CSV.

Every row is checked before any model loads, and every problem is reported at once with its line
number, so a 5,000-line script fails in a second with a list to fix instead of at row 3,117 after
an hour of rendering. ``skip_invalid`` keeps the good rows and reports the rest.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import constants as C
from ..errors import BarkError

ROW_FIELDS = ("id", "text", "voice", "seed", "speaker", "out", "settings")
SCRIPT_SUFFIXES = (".txt", ".script", ".srt", ".vtt")  # read as scripts, one row per spoken line
OUTPUT_FORMATS = ("wav", "flac", "mp3", "ogg")  # what bark_core.label.export_audio writes
MAX_SEED = C.MAX_SEED


def _temp(v: Any) -> str | None:
    if v is None:
        return None  # argmax
    return None if _number(v) and 0.0 < float(v) <= 5.0 else "a number in (0, 5], or null for argmax"


def _prob(v: Any) -> str | None:
    return None if v is None or (_number(v) and 0.0 < float(v) <= 1.0) else "a number in (0, 1], or null"


def _top_k(v: Any) -> str | None:
    ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1)
    return None if ok else "a whole number >= 1, or null"


def _duration(v: Any) -> str | None:
    ok = v is None or (_number(v) and 0.0 < float(v) <= 60.0)
    return None if ok else "seconds in (0, 60], or null for no cap"


def _flag(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


# Per-row settings: the keyword arguments of bark_core.stages.generate / generate_batch, with the
# check each value must pass. Their defaults are generate()'s.
SETTINGS: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "semantic_temp": (C.DEFAULT_SEMANTIC_TEMP, _temp),
    "coarse_temp": (C.DEFAULT_COARSE_TEMP, _temp),
    "fine_temp": (C.DEFAULT_FINE_TEMP, _temp),
    "top_k": (None, _top_k),
    "top_p": (None, _prob),
    "min_eos_p": (C.DEFAULT_MIN_EOS_P, _prob),
    "max_gen_duration_s": (None, _duration),
    "allow_early_stop": (True, _flag),
}
DEFAULT_SETTINGS: dict[str, Any] = {k: v[0] for k, v in SETTINGS.items()}


class ManifestError(BarkError, ValueError):
    """The manifest cannot be read, or some of its rows are invalid; ``problems`` lists each bad row."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class JobError(BarkError, RuntimeError):
    """A render job cannot start or continue as asked (folder in use, backend missing, bad option)."""


@dataclass(frozen=True)
class Problem:
    """One bad row: where it is, which row, and what to change."""

    line: int
    row_id: str | None
    message: str

    def __str__(self) -> str:
        who = f" (id {self.row_id!r})" if self.row_id is not None else ""
        return f"line {self.line}{who}: {self.message}"


@dataclass
class Row:
    """One line to render. ``line`` is where it sits in the manifest (1-based), for error messages."""

    id: str
    text: str
    voice: str | None = None
    seed: int | None = None
    speaker: str | None = None
    out: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "voice": self.voice, "seed": self.seed, "speaker": self.speaker,
                "out": self.out, "settings": dict(self.settings), "line": self.line}


@dataclass
class Manifest:
    """The valid rows of a job, plus the bad rows that ``skip_invalid`` set aside."""

    rows: list[Row]
    source: str = "<rows>"
    base_dir: Path | None = None  # relative voice paths are read from here (the manifest's folder)
    skipped: list[Problem] = field(default_factory=list)
    rights: dict[str, Any] = field(default_factory=dict)  # voice spec -> RightsRecord (a script's voice map)
    notes: list[str] = field(default_factory=list)  # what a script's rows leave out (pauses inside lines)
    seed: int | None = None  # a script header's seed: the job seed unless one is given

    def __len__(self) -> int:
        return len(self.rows)


def check_settings(settings: Any, where: str = "settings") -> list[str]:
    """What is wrong with a settings mapping, one message per bad key (empty when all is well)."""
    if settings is None:
        return []
    if not isinstance(settings, Mapping):
        return [f"{where} must be an object like {{\"coarse_temp\": 0.6}}, got {type(settings).__name__}"]
    out = []
    for key, value in settings.items():
        if key not in SETTINGS:
            out.append(f"unknown setting {key!r} in {where}; known: {', '.join(SETTINGS)}")
            continue
        why = SETTINGS[key][1](value)
        if why:
            out.append(f"bad setting {key}={value!r}: must be {why}")
    return out


def check_out(out: str) -> str | None:
    """An output name must stay inside the job folder and have a format export can write."""
    p = PurePosixPath(out.replace("\\", "/"))
    if p.is_absolute() or (p.parts and ":" in p.parts[0]) or ".." in p.parts or not p.name or p.name in (".",):
        return (f"out {out!r} must be a relative name inside the output folder (like ch1/line_003.wav), "
                "without '..' or a leading '/'")
    if p.suffix and p.suffix.lower().lstrip(".") not in OUTPUT_FORMATS:
        return f"out {out!r} has an extension export cannot write; use {', '.join('.' + f for f in OUTPUT_FORMATS)}"
    return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(type(value).__name__)
    text = str(value).strip()
    return text or None


def _seed(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError
    return int(value)


def row_from_record(record: Mapping[str, Any], line: int) -> tuple[Row | None, list[str]]:
    """One manifest record as a :class:`Row`, or the list of what is wrong with it."""
    problems: list[str] = []
    unknown = [k for k in record if k not in ROW_FIELDS]
    if unknown:
        problems.append(f"unknown field(s) {', '.join(map(repr, unknown))}; fields are {', '.join(ROW_FIELDS)}")
    values: dict[str, Any] = {}
    for name in ("id", "voice", "speaker", "out"):
        try:
            values[name] = _as_text(record.get(name))
        except TypeError as exc:
            problems.append(f"{name} must be text, got {exc}")
            values[name] = None
    if values["id"] is None:
        problems.append("id is missing; give every row a unique id (like ch1-003)")
    text = record.get("text")
    if text is not None and not isinstance(text, str):
        problems.append(f"text must be text, got {type(text).__name__}; quote it")
    elif text is None or not " ".join(text.split()):
        problems.append("text is empty; write the words (or cues like [laughs]) to speak")
    try:
        values["seed"] = _seed(record.get("seed"))
    except (TypeError, ValueError):
        problems.append(f"seed {record.get('seed')!r} must be a whole number from 0 to 2**64-1, or left out")
    settings = record.get("settings")
    if isinstance(settings, str):  # CSV cells hold JSON
        try:
            settings = json.loads(settings) if settings.strip() else None
        except json.JSONDecodeError as exc:
            problems.append(f"settings is not JSON ({exc.msg}); write it like {{\"coarse_temp\": 0.6}}")
            settings = None
    problems += check_settings(settings)
    if values["out"] is not None:
        why = check_out(values["out"])
        if why:
            problems.append(why)
    if problems:
        return None, problems
    return Row(id=values["id"], text=text, voice=values["voice"], seed=values["seed"], speaker=values["speaker"],
               out=values["out"], settings=dict(settings or {}), line=line), []


def _jsonl_records(text: str) -> Iterable[tuple[int, Any, str | None]]:
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            yield n, json.loads(raw), None
        except json.JSONDecodeError as exc:
            yield n, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _csv_records(text: str) -> Iterable[tuple[int, Any, str | None]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [h for h in header if h not in ROW_FIELDS]
    if unknown or "text" not in header or "id" not in header:
        raise ManifestError(f"the CSV header must name the columns id and text (also allowed: "
                            f"{', '.join(f for f in ROW_FIELDS if f not in ('id', 'text'))}); "
                            f"found {', '.join(header) or 'no header'}", [])
    start = reader.line_num + 1
    for rec in reader:
        if not any((v or "").strip() for v in rec.values() if isinstance(v, str)):
            start = reader.line_num + 1
            continue
        extra = rec.pop(None, None)  # cells past the header
        rec = {k: (v if v is None or v.strip() else None) for k, v in rec.items()}
        yield start, rec, (f"{len(extra)} more cells than the header has columns" if extra else None)
        start = reader.line_num + 1


def parse_rows(records: Iterable[tuple[int, Any, str | None]]) -> tuple[list[Row], list[Problem]]:
    """Rows and problems from (line, record, parse error) triples; duplicate ids are problems too."""
    rows: list[Row] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    for line, record, error in records:
        rid = record.get("id") if isinstance(record, Mapping) else None
        rid = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
        if error is None and not isinstance(record, Mapping):
            error = f"a row must be a JSON object with id and text, got {type(record).__name__}"
        if error is not None:
            problems.append(Problem(line, rid, error))
            continue
        row, why = row_from_record(record, line)
        if rid is not None and rid in first_line:
            why = [*why, f"duplicate id {rid!r}: line {first_line[rid]} has it already; ids must be unique"]
            row = None
        if rid is not None:
            first_line.setdefault(rid, line)
        if row is None:
            problems += [Problem(line, rid, w) for w in why]
            continue
        rows.append(row)
    return rows, problems


def read_manifest(path: str | os.PathLike) -> tuple[list[Row], list[Problem]]:
    """Parse a ``.jsonl`` / ``.json`` lines file or a ``.csv`` file into rows and per-line problems."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"No manifest at {path}. Pass a .jsonl or .csv file with one row per line.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"Cannot read the manifest {path} ({exc}); save it as UTF-8 text.") from exc
    kind = path.suffix.lower()
    if kind == ".csv":
        try:
            records = list(_csv_records(text))
        except ManifestError as exc:
            raise ManifestError(f"{path.name}: {exc}") from None
    elif kind in (".jsonl", ".ndjson", ".json"):
        records = list(_jsonl_records(text))
    else:
        raise ManifestError(f"{path.name}: unknown manifest type {kind or '(none)'}; use .jsonl or .csv.")
    return parse_rows(records)


def problems_message(source: str, problems: list[Problem], limit: int = 50) -> str:
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    n_lines = len({p.line for p in problems})
    return (f"{source}: {n_lines} bad row(s); fix them or pass --skip-invalid (skip_invalid=True) to render "
            "the others:\n  " + "\n  ".join(lines))


def voice_path(spec: str, base_dir: Path | None) -> str:
    """Relative ``.npz`` voice paths are read from the manifest's folder, not the current directory."""
    if base_dir is not None and spec.endswith(".npz") and not os.path.isabs(spec):
        return os.fspath(base_dir / spec)
    return spec


def check_voices(rows: list[Row], resolve: Callable[[str], Any]) -> list[Problem]:
    """Resolve each distinct voice once; every row that names a voice that fails gets the reason."""
    why: dict[str, str | None] = {}
    for spec in dict.fromkeys(r.voice for r in rows if r.voice is not None):
        try:
            resolve(spec)
            why[spec] = None
        except BarkError as exc:
            why[spec] = str(exc)
    return [Problem(r.line, r.id, f"voice {r.voice!r}: {why[r.voice]}") for r in rows
            if r.voice is not None and why.get(r.voice)]


def load_manifest(source: str | os.PathLike | Iterable[Mapping[str, Any]], *, skip_invalid: bool = False,
                  resolve_voice: Callable[[str], Any] | None = None, voices: Any = None) -> Manifest:
    """Read and validate a whole manifest before any work starts.

    ``source`` is a ``.jsonl``/``.csv`` path, a script or subtitle file (``.txt``, ``.srt``, ``.vtt``:
    one row per spoken line, see :mod:`bark_core.jobs.scripts`; ``voices`` is then a voice map file or
    ``VoiceMap`` over the script header's), or an iterable of row dicts (line numbers count from 1).
    ``resolve_voice`` checks voices (``BarkModels.voice``); without it voices are checked when the job
    is planned. Raises :class:`ManifestError` listing every bad row unless ``skip_invalid``, which keeps
    them in ``Manifest.skipped``.
    """
    extra: dict[str, Any] = {}
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() in SCRIPT_SUFFIXES:
        from .scripts import script_rows

        path = Path(source)
        if not path.is_file():
            raise ManifestError(f"No script at {path}. Pass a .txt script, an .srt or a .vtt file.")
        try:
            got = script_rows(path, voices)
        except BarkError as exc:  # a bad tag, reversed cues, a bad voice map: the script's own message and line
            raise ManifestError(str(exc)) from exc
        rows, problems = parse_rows(got.records)
        name, base = path.name, None  # the voice map already read .npz paths from the file that names them
        extra = {"rights": got.rights, "notes": got.notes, "seed": got.seed}
    elif voices is not None:
        raise ManifestError("a voice map applies to script and subtitle files (.txt, .srt, .vtt); a manifest names "
                            "each row's voice in its voice field.")
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        rows, problems = read_manifest(path)
        name, base = path.name, path.parent
    else:
        rows, problems = parse_rows((n, rec, None) for n, rec in enumerate(source, start=1))
        name, base = "<rows>", None
    if resolve_voice is not None:
        problems += check_voices(rows, lambda spec: resolve_voice(voice_path(spec, base)))
    return finish(Manifest(rows=rows, source=name, base_dir=base, **extra), problems, skip_invalid)


def finish(manifest: Manifest, problems: list[Problem], skip_invalid: bool) -> Manifest:
    """Refuse a manifest with problems, or set its bad rows aside when asked to."""
    problems = sorted(problems, key=lambda p: p.line)
    if problems and not skip_invalid:
        raise ManifestError(problems_message(manifest.source, problems), problems)
    bad = {p.line for p in problems}
    manifest.rows = [r for r in manifest.rows if r.line not in bad]
    manifest.skipped = [*manifest.skipped, *problems]
    if not manifest.rows and not manifest.skipped:
        raise ManifestError(f"{manifest.source} has no rows; write one JSON object (or CSV line) per line to speak.")
    return manifest
