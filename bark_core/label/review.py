"""Human review of takes: unreviewed, approved or rejected, by whom, when and why.

Automatic checks (:mod:`bark_core.quality`) point at problems; only a person who listened can say a
take is fit to publish. That decision is recorded here, explicitly, and the export stage asks
:func:`require_public_ok` before it writes anything "for public use".

Decisions are stored as small JSON files, one per audio artifact, named by the artifact's id, in a
review folder (default ``<bark_core cache>/reviews``, or ``$BARK_REVIEW_DIR``, or any folder passed
as ``store=``). Artifact ids are content hashes, so the decision survives saving and reloading the
artifact, restarting Python, or regenerating the same take with the same seed. Audio derived from a
reviewed take (labelled, normalised, resampled: its provenance lineage holds the reviewed id)
inherits the nearest decision up its lineage; other takes, even from the same text, do not.
Each file keeps the full history of decisions for that take, newest last.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import constants as C
from .. import limits
from ..artifacts import Audio, Provenance, load_artifact
from ..errors import BarkError
from ..fileio import atomic_write
from .metadata import read_label

SCHEMA = "bark_core.review/1"
STATES = ("unreviewed", "approved", "rejected")
ENV_DIR = "BARK_REVIEW_DIR"
_ATTR = "_bark_review"  # in-memory copy on the artifact object
_ID = re.compile(r"^[0-9a-f]{8,64}$")
log = logging.getLogger(__name__)


class ReviewError(BarkError, ValueError):
    """A review cannot be recorded or read as asked."""


class NotApprovedError(BarkError, RuntimeError):
    """A take is about to be used publicly without a human approval."""

    def __init__(self, message: str, review: Review):
        super().__init__(message)
        self.review = review


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Review:
    """One decision about one take. ``artifact_id`` is the take that was reviewed; ``applies_to`` the
    artifact asked about (different when the decision was inherited from an ancestor)."""

    state: str = "unreviewed"
    reviewer: str | None = None
    note: str = ""
    time: str | None = None
    artifact_id: str | None = None
    applies_to: str | None = None
    lineage: tuple[str, ...] = ()
    quality: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ReviewError(f"Review state must be one of {', '.join(STATES)}, got {self.state!r}.")

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    @property
    def inherited(self) -> bool:
        return self.artifact_id is not None and self.applies_to is not None and self.artifact_id != self.applies_to

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reviewer": self.reviewer, "note": self.note, "time": self.time,
                "artifact_id": self.artifact_id, "applies_to": self.applies_to, "lineage": list(self.lineage),
                "quality": self.quality}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Review:
        return cls(state=data.get("state", "unreviewed"), reviewer=data.get("reviewer"), note=data.get("note") or "",
                   time=data.get("time"), artifact_id=data.get("artifact_id"), applies_to=data.get("applies_to"),
                   lineage=tuple(data.get("lineage") or ()), quality=data.get("quality"))


class ReviewStore:
    """A folder of ``<audio id>.json`` review files; writes are atomic, reads tolerate damage."""

    def __init__(self, folder: str | os.PathLike | None = None):
        if folder is None:
            folder = os.environ.get(ENV_DIR) or Path(C.default_cache_dir()) / "reviews"
        self.folder = Path(folder).expanduser()

    def __repr__(self) -> str:
        return f"ReviewStore({str(self.folder)!r})"

    def path(self, artifact_id: str) -> Path:
        if not isinstance(artifact_id, str) or not _ID.match(artifact_id):
            raise ReviewError(f"{artifact_id!r} is not an artifact id (hex digits, as Artifact.id gives).")
        return self.folder / f"{artifact_id}.json"

    def read(self, artifact_id: str) -> dict[str, Any] | None:
        """The stored record for exactly this id, or None. A damaged file reads as absent."""
        path = self.path(artifact_id)
        try:
            with open(path, "rb") as fh:
                blob = fh.read(limits.MAX_REVIEW_FILE_BYTES + 1)
            data = limits.loads_json(blob, f"review file {path}", error=ReviewError,
                                     max_bytes=limits.MAX_REVIEW_FILE_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, ReviewError) as exc:
            log.warning("ignoring review file %s: %s", path, exc)
            return None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or not _well_formed(data):
            return None
        return data

    def write(self, review: Review) -> Path:
        assert review.artifact_id is not None
        path = self.path(review.artifact_id)
        old = self.read(review.artifact_id) or {}
        history = list(old.get("history") or [])
        entry = {k: v for k, v in review.to_dict().items() if k != "applies_to"}
        history.append(entry)
        record = {"schema": SCHEMA, **entry, "history": history}
        blob = json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8")
        with atomic_write(path) as fh:
            fh.write(blob)
        return path

    def find(self, ids: list[str]) -> Review | None:
        """The decision recorded for the first id in ``ids`` that has one."""
        for art_id in ids:
            data = self.read(art_id)
            if data is not None:
                return Review.from_dict({**data, "artifact_id": art_id})
        return None


def _well_formed(data: dict[str, Any]) -> bool:
    """A stored decision whose fields have the types :class:`Review` expects (else it reads as absent)."""
    lineage = data.get("lineage") or []
    return (data.get("state", "unreviewed") in STATES
            and all(data.get(k) is None or isinstance(data.get(k), str) for k in ("reviewer", "note", "time"))
            and isinstance(lineage, list) and all(isinstance(x, str) for x in lineage)
            and (data.get("quality") is None or isinstance(data.get("quality"), dict))
            and isinstance(data.get("history") or [], list))


def _store(store: ReviewStore | str | os.PathLike | None) -> ReviewStore:
    return store if isinstance(store, ReviewStore) else ReviewStore(store)


@dataclass(eq=False)
class _TakeRef:
    """A take known only by id and lineage, as a labelled file's metadata records it."""

    id: str
    provenance: Provenance
    parent: Any = None


def _labelled_file_take(path: Path) -> Any:
    """The take a labelled audio file was exported from, so a file can be reviewed from the CLI."""
    data = read_label(path) if path.is_file() else None
    take_id = (data or {}).get("take_id")
    if not take_id:
        raise ReviewError(
            f"{path} carries no bark_core label with a take id, so there is no take to record a review for. "
            "Review the Audio artifact (.npz from Audio.save()) or a file exported by bark_core."
        )
    lineage = list(data.get("lineage", []))
    ancestors = lineage[:lineage.index(take_id)] if take_id in lineage else []
    return _TakeRef(id=take_id, provenance=Provenance(stage="file", lineage=tuple(ancestors)))


def _audio_of(x: Any) -> Audio:
    """Accept what front ends hold: an Audio artifact, a Take, or a saved Audio ``.npz``."""
    if isinstance(x, Audio):
        return x
    inner = getattr(x, "audio", None)
    if isinstance(inner, Audio):
        return inner
    if isinstance(x, (str, os.PathLike)):
        path = Path(x)
        if path.suffix.lower() != ".npz":
            return _labelled_file_take(path)
        art = load_artifact(path)
        if isinstance(art, Audio):
            return art
        x = art
    kind = getattr(x, "KIND", type(x).__name__)
    raise ReviewError(
        f"A review is recorded for audio someone listened to, but got {kind}. Decode it first and review "
        "the Audio artifact (or pass the Take)."
    )


def _ids(audio: Audio) -> list[str]:
    """This take first, then its ancestors nearest first."""
    return [audio.id, *reversed(audio.provenance.lineage)]


def _decide(x: Any, state: str, reviewer: str, note: str, store: Any, quality: Any) -> Review:
    audio = _audio_of(x)
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ReviewError(
            "A review needs the reviewer's name (reviewer='...'), so the decision can be traced to the person "
            "who listened."
        )
    if not isinstance(note, str):
        raise ReviewError(f"note must be text, got {type(note).__name__}.")
    limits.text(reviewer, "reviewer", max_chars=1000, error=ReviewError)
    limits.text(note, "note", max_chars=100_000, error=ReviewError)
    if quality is not None and not isinstance(quality, dict):
        if not hasattr(quality, "summary"):
            raise ReviewError("quality= takes a QualityReport or its summary() dict.")
        quality = quality.summary()
    review = Review(state=state, reviewer=reviewer.strip(), note=note.strip(), time=_utc_now(),
                    artifact_id=audio.id, applies_to=audio.id, lineage=tuple(audio.provenance.lineage),
                    quality=quality)
    _store(store).write(review)
    setattr(audio, _ATTR, review)
    return review


def approve(take_or_artifact: Any, reviewer: str, note: str = "", *,
            store: ReviewStore | str | os.PathLike | None = None, quality: Any = None) -> Review:
    """Record that ``reviewer`` listened to the take and finds it fit for use.

    ``quality``: the :class:`~bark_core.quality.QualityReport` the reviewer saw, kept as its summary.
    """
    return _decide(take_or_artifact, "approved", reviewer, note, store, quality)


def reject(take_or_artifact: Any, reviewer: str, note: str = "", *,
           store: ReviewStore | str | os.PathLike | None = None, quality: Any = None) -> Review:
    """Record that ``reviewer`` listened and the take must not be used; ``note`` should say why."""
    return _decide(take_or_artifact, "rejected", reviewer, note, store, quality)


def review_state(x: Any, *, store: ReviewStore | str | os.PathLike | None = None) -> Review:
    """The decision that applies to a take: its own, else its nearest reviewed ancestor's, else unreviewed.

    The store is the truth (another process may have decided since); the copy attached in memory is
    used when the store has none, e.g. after the review folder was changed.
    """
    audio = _audio_of(x)
    ids = _ids(audio)
    found = _store(store).find(ids)
    if found is None:
        node: Any = audio
        while node is not None and found is None:
            found = getattr(node, _ATTR, None)
            node = node.parent
    if found is None:
        return Review(state="unreviewed", applies_to=audio.id, lineage=tuple(audio.provenance.lineage))
    return Review(state=found.state, reviewer=found.reviewer, note=found.note, time=found.time,
                  artifact_id=found.artifact_id, applies_to=audio.id, lineage=found.lineage, quality=found.quality)


def require_public_ok(audio: Any, *, store: ReviewStore | str | os.PathLike | None = None) -> Review:
    """The approval that allows public use, or :class:`NotApprovedError` saying what is missing."""
    review = review_state(audio, store=store)
    if review.state == "approved":
        return review
    art_id = review.applies_to
    if review.state == "rejected":
        why = f": {review.note!r}" if review.note else ""
        raise NotApprovedError(
            f"Take {art_id} was rejected by {review.reviewer} on {review.time}{why}. It cannot be exported for "
            "public use. Regenerate it (another seed) and review the new take, or, if the rejection was a "
            "mistake, record a new decision with bark_core.label.approve(take, reviewer=...).",
            review,
        )
    raise NotApprovedError(
        f"Take {art_id} has not been reviewed. Public use of synthetic speech needs a human quality check: "
        "listen to it (bark_core.quality.check(take) shows what to listen for), then record the decision with "
        "bark_core.label.approve(take, reviewer='your name') or reject(...).",
        review,
    )


def review_metadata(audio: Any, *, store: ReviewStore | str | os.PathLike | None = None,
                    include_note: bool = False) -> dict[str, Any]:
    """Review fields for a file's label metadata. Notes stay out unless asked for: they may be private."""
    review = review_state(audio, store=store)
    data: dict[str, Any] = {
        "human_review": review.state,
        "reviewed_by": review.reviewer,
        "reviewed_at": review.time,
        "reviewed_artifact_id": review.artifact_id,
    }
    if include_note and review.note:
        data["review_note"] = review.note
    return {k: v for k, v in data.items() if v is not None}


def review_history(x: Any, *, store: ReviewStore | str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Every decision recorded for exactly this take, oldest first (the audit trail)."""
    audio = _audio_of(x)
    data = _store(store).read(audio.id) or {}
    return list(data.get("history") or [])


__all__ = [
    "Review", "ReviewStore", "ReviewError", "NotApprovedError", "STATES",
    "approve", "reject", "review_state", "require_public_ok", "review_metadata", "review_history",
]

