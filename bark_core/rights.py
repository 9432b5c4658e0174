"""Voice rights: where a voice came from, and on what basis a cloned voice may be used.

A voice built from someone's recorded speech imitates a real person. Publishing speech in that
voice needs that person's consent (or a licence from whoever holds the rights), so such a voice
carries a :class:`RightsRecord` from the moment it is built: who, what right, since when, and the
evidence. The record rides in ``Voice.source["rights"]`` as plain JSON, is written into the voice
``.npz`` by ``Voice.save`` (in the ``bark_core_voice`` key, which Suno's loader ignores) and comes
back with ``load_voice``. :func:`voice_origin` turns any voice's source into the small dict the
label metadata records.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from .errors import BarkError

SCHEMA = "bark_core.rights/1"
RIGHTS_KEY = "rights"  # where a voice's source dict keeps the record
COMMON_RIGHTS = ("own voice", "written consent", "recorded verbal consent", "licensed", "public domain")
VOICE_KINDS = ("preset", "generated", "file", "memory", "audio")

_WHY = ("Public use of a cloned voice needs the speaker's consent, so a voice made from recorded audio must "
        "say whose voice it is and on what basis it may be used.")
_EXAMPLE = ("RightsRecord(who='Jane Doe', right='written consent', when='2024-05-01', "
            "evidence='signed release form, file releases/jane-doe.pdf')")


class RightsError(BarkError, ValueError):
    """A rights record is missing or incomplete where a cloned voice needs one."""


def _parse_when(value: Any) -> str:
    """ISO date (YYYY-MM-DD) or date-time; stored as given in ISO form, never in the future."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise RightsError(
                f"when={value!r} is not a date. Give the date the right was granted as YYYY-MM-DD "
                "(e.g. '2024-05-01'), so anyone checking later knows which agreement applies."
            ) from None
    else:
        raise RightsError(
            "A rights record needs when: the date the consent or licence was given (YYYY-MM-DD). " + _WHY
        )
    today = max(date.today(), datetime.now(timezone.utc).date())  # local or UTC, whichever is later
    if parsed.date() > today:
        raise RightsError(f"when={value!r} lies in the future; a right can only be recorded once it was granted.")
    if parsed.time() == datetime.min.time() and parsed.tzinfo is None:
        return parsed.date().isoformat()
    return parsed.isoformat()


@dataclass(frozen=True)
class RightsRecord:
    """Who may be imitated, on what basis, since when, and how that can be shown.

    ``who``: the speaker (or the rights holder, for an actor under contract). ``right``: the basis,
    e.g. "own voice", "written consent", "licensed". ``when``: the date it was granted.
    ``evidence``: where the proof is kept (a form, a contract number); ``note``: anything else, such
    as limits on use.
    """

    who: str
    right: str
    when: str
    evidence: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        who = self.who.strip() if isinstance(self.who, str) else ""
        right = self.right.strip() if isinstance(self.right, str) else ""
        if not who:
            raise RightsError(
                "A rights record needs who: the speaker (or rights holder) whose voice this is. " + _WHY
                + " Example: " + _EXAMPLE
            )
        if not right:
            raise RightsError(
                f"A rights record needs right: the basis for using {who}'s voice, e.g. "
                f"{', '.join(repr(r) for r in COMMON_RIGHTS[:3])} or 'licensed'. " + _WHY
            )
        for name in ("evidence", "note"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise RightsError(f"{name} must be text, got {type(value).__name__}.")
        object.__setattr__(self, "who", who)
        object.__setattr__(self, "right", right)
        object.__setattr__(self, "when", _parse_when(self.when))
        for name in ("evidence", "note"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value.strip() or None) if isinstance(value, str) else None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only, so it fits in a voice file's metadata and in label tags."""
        data = {"schema": SCHEMA, **dataclasses.asdict(self)}
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> RightsRecord:
        """Rebuild and re-validate a record read from a file; unknown keys are ignored."""
        if isinstance(data, RightsRecord):
            return data
        if not isinstance(data, dict):
            raise RightsError(f"A rights record must be a mapping, got {type(data).__name__}. " + _WHY)
        return cls(who=data.get("who", ""), right=data.get("right", ""), when=data.get("when", ""),
                   evidence=data.get("evidence"), note=data.get("note"))


def require_rights_for_audio_voice(rights: RightsRecord | dict[str, Any] | None) -> RightsRecord:
    """The validated record a voice built from recorded audio must carry, or a :class:`RightsError` saying why."""
    if rights is None or (isinstance(rights, dict) and not rights):
        raise RightsError(
            "A voice built from recorded audio needs a rights record (rights=...). " + _WHY + " Pass e.g. "
            + _EXAMPLE + "; use right='own voice' for your own recordings."
        )
    return RightsRecord.from_dict(rights)


def audio_voice_source(rights: RightsRecord | dict[str, Any] | None, **info: Any) -> dict[str, Any]:
    """The ``Voice.source`` dict for a voice built from user audio: kind, rights record and ``info``
    (e.g. ``file=`` name, ``sha256=`` of the recording). Raises when the rights record is missing."""
    record = require_rights_for_audio_voice(rights)
    return {**info, "kind": "audio", RIGHTS_KEY: record.to_dict()}


def voice_rights(voice: Any) -> RightsRecord | None:
    """The rights record a voice carries, if any."""
    source = getattr(voice, "source", None) or {}
    data = source.get(RIGHTS_KEY)
    return None if data is None else RightsRecord.from_dict(data)


def voice_origin(voice: Any) -> dict[str, Any]:
    """Where a voice came from, normalised for label metadata (no local paths, only file names).

    kinds: "none" (no voice), "preset" (name, repo), "generated" (the take's lineage and seed),
    "file" (file name), "memory" (arrays handed in directly), "audio" (user audio: always with its
    rights record, else :class:`RightsError`), "unknown" (a source this version does not know).
    """
    if voice is None:
        return {"kind": "none"}
    source = dict(getattr(voice, "source", None) or {})
    kind = source.get("kind")
    out: dict[str, Any] = {"kind": kind if kind in VOICE_KINDS else "unknown"}
    name = getattr(voice, "name", None)
    if name:
        out["name"] = str(name)
    vid = getattr(voice, "id", None)
    if vid:
        out["voice_id"] = str(vid)
    if kind == "preset":
        out["preset"] = source.get("preset") or name
        if source.get("repo"):
            out["repo"] = source["repo"]
    elif kind == "generated":
        out["lineage"] = [str(x) for x in source.get("lineage") or []]
        if source.get("seed") is not None:
            out["seed"] = source["seed"]
    elif kind == "file":
        if source.get("path"):
            out["file"] = os.path.basename(str(source["path"]))
    elif kind == "audio":
        if RIGHTS_KEY not in source:
            raise RightsError(
                f"Voice {name!r} was built from recorded audio but carries no rights record. " + _WHY
                + " Rebuild it with rights=" + _EXAMPLE + "."
            )
        out[RIGHTS_KEY] = RightsRecord.from_dict(source[RIGHTS_KEY]).to_dict()
        for key in ("file", "sha256", "duration_s"):
            if source.get(key) is not None:
                out[key] = os.path.basename(str(source[key])) if key == "file" else source[key]
        if isinstance(source.get("range_s"), (list, tuple)):
            out["range_s"] = list(source["range_s"])
        if isinstance(source.get("semantic"), dict):
            out["semantic"] = _semantic_origin(source["semantic"])
    elif kind not in VOICE_KINDS and kind is not None:
        out["source_kind"] = str(kind)
    return out


def _plain_name(value: Any) -> str:
    """A hub id or file name as is; a local path reduced to its last part (labels carry no folders)."""
    text = str(value)
    return os.path.basename(text.replace("\\", "/")) if text.startswith(("/", "~", ".")) or "\\" in text else text


def _semantic_origin(semantic: dict[str, Any]) -> dict[str, Any]:
    """How a cloned voice's semantic prompt was made: the method, and for HuBERT + quantizer which files."""
    out: dict[str, Any] = {"method": str(semantic.get("method", "unknown"))}
    quantizer = semantic.get("quantizer")
    if isinstance(quantizer, dict):
        out["quantizer"] = {k: quantizer[k] for k in ("source", "sha256", "version", "language")
                            if quantizer.get(k) is not None}
        if quantizer.get("file") is not None:
            out["quantizer"]["file"] = os.path.basename(_plain_name(quantizer["file"]))
    hubert = semantic.get("hubert")
    if isinstance(hubert, dict) and hubert.get("source") is not None:
        out["hubert"] = {"source": _plain_name(hubert["source"]), "layer": hubert.get("layer")}
    if semantic.get("id") is not None:
        out["id"] = str(semantic["id"])
    return out


def utc_today() -> str:
    """Today's date in UTC, the default ``when`` for a record made at the moment consent is given."""
    return datetime.now(timezone.utc).date().isoformat()
