"""Review and export of a take: the decisions and the files that leave the studio.

Apart from the run logic because none of this generates anything: a finished take goes to
``bark_core.review`` and ``bark_core.export``, whose rules (a public export needs an approval, every
file is labelled) decide what is allowed; the session only picks the take and reports what happened.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .settings import StudioError
from .takes import StudioTake


class ReviewExportMixin:
    """Review and saving for :class:`~bark_studio.session.Session`. Each call names its take the way
    the history does (a number, the take, or None for the last), through ``take()``."""

    def _audio_of(self, take: StudioTake) -> Any:
        if take.audio is None:
            raise StudioError(f"Take {take.number} has no audio yet; run it through decode, then listen and review.")
        return take.audio

    def review(self, take: StudioTake | int | None = None) -> Any:
        """The human review that applies to the take's audio (``bark_core.review.review_state``)."""
        from bark_core.label import review_state

        return review_state(self._audio_of(self.take(take)), store=self.review_store)

    def approve(self, take: StudioTake | int | None = None, *, reviewer: str, note: str = "") -> Any:
        """Record that ``reviewer`` listened and finds the take fit for use (with its quality report)."""
        from bark_core.label import approve

        t = self.take(take)
        review = approve(self._audio_of(t), reviewer, note, store=self.review_store, quality=t.quality)
        self.emit("review", take=t, review=review)
        return review

    def reject(self, take: StudioTake | int | None = None, *, reviewer: str, note: str = "") -> Any:
        """Record that ``reviewer`` listened and the take must not be used; the note says why."""
        from bark_core.label import reject

        t = self.take(take)
        review = reject(self._audio_of(t), reviewer, note, store=self.review_store, quality=t.quality)
        self.emit("review", take=t, review=review)
        return review

    def save_take(self, take: StudioTake | int | None = None, folder: str | os.PathLike = ".", *,
                  artifacts: bool = True, audio: bool = False, voice: bool = False, audio_format: str = "wav",
                  overwrite: bool = False, public: bool = False) -> list[Path]:
        """Write a take's artifacts (``.npz``), its audio (labelled, through ``bark_core.export``) and/or
        its voice into ``folder``; returns the paths written. ``public=True`` needs an approval."""
        from bark_core.label import export_audio

        t = self.take(take)
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"take{t.number:03d}"
        written: list[Path] = []
        if artifacts:
            for stage in t.stages:
                path = folder / f"{stem}.{stage}.npz"
                if path.exists() and not overwrite:
                    raise StudioError(f"{path} already exists; tick overwrite or choose another folder.")
                written.append(t.results[stage].artifact.save(path, overwrite=True))
        if audio:
            audio_art = self._audio_of(t)
            core_take = t.as_take()
            core_take.seed = t.seed  # the take's master seed; labelled only if it redoes the take
            meta = core_take.label_meta()
            written.append(export_audio(audio_art, folder / f"{stem}.{audio_format.lower().lstrip('.')}",
                                        overwrite=overwrite, key=t.watermark_key, quality=t.quality,
                                        review_store=self.review_store, public=public,
                                        include_text=bool(t.settings.get("include_text")), **meta))
        if voice:
            if t.fine is None:
                raise StudioError(f"Take {t.number} has no fine codes; a voice needs the fine stage.")
            path = folder / f"{stem}.voice.npz"
            if path.exists() and not overwrite:
                raise StudioError(f"{path} already exists; tick overwrite or choose another folder.")
            written.append(_take_voice(t).save(path, overwrite=overwrite))
        if not written:
            raise StudioError("Nothing to save: choose artifacts, audio or voice.")
        self.emit("saved", take=t, paths=written)
        return written


def _take_voice(take: StudioTake) -> Any:
    from bark_core import voice_from_artifacts

    return voice_from_artifacts(take.semantic, take.coarse, take.fine, name=f"take{take.number}")
