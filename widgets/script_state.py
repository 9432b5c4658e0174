"""The studio's script desk without widgets: a script and voice map, the scene made from them, and per-line
review (listen, accept, reject, retake one line). Every step is ``bark_core.script``; this keeps the state.

    desk = ScriptDesk(session)            # a bark_studio Session: models, cache, review store
    desk.set(script=open("scene.txt").read(), tries=2)
    prod = desk.run()
    desk.retake(3); desk.accept(3, reviewer="Sam")
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bark_core.label import approve, reject, review_state
from bark_core.script import Production, RetakePolicy, VoiceMap, parse_text, render_script, retake_line

SETTINGS = {"script": "", "voices": "", "seed": 7, "tries": 3, "max_duration_s": 0.0, "check_script": True,
            "check_speaker": True, "check_quality": True}


class ScriptDeskError(RuntimeError):
    """A desk action that cannot run now (nothing rendered yet, a run in progress)."""


class ScriptDesk:
    """Script, voices and retake settings; the rendered production; events for a view (``subscribe``)."""

    def __init__(self, session: Any, **settings: Any):
        self.session = session
        self.settings: dict[str, Any] = dict(SETTINGS)
        self.production: Production | None = None
        self.busy = False
        self._lock = threading.Lock()
        self._listeners: list[Callable[..., None]] = []
        self.set(**settings)

    # ---- events -------------------------------------------------------------------------------
    def subscribe(self, listener: Callable[..., None]) -> None:
        self._listeners.append(listener)

    def emit(self, event: str, **data: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, **data)
            except Exception:  # a drawing problem must never break a run
                pass

    # ---- settings -----------------------------------------------------------------------------
    def set(self, **settings: Any) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise ScriptDeskError(f"unknown script settings {unknown}; known: {sorted(SETTINGS)}.")
        self.settings.update(settings)
        return dict(self.settings)

    def load(self, path: str | os.PathLike) -> None:
        """Put a script, .srt or .vtt file's text into the desk."""
        self.set(script=Path(path).read_text(encoding="utf-8-sig"))

    def policy(self) -> RetakePolicy:
        s = self.settings
        return RetakePolicy(max_tries=int(s["tries"]), check_script=bool(s["check_script"]),
                            check_speaker=bool(s["check_speaker"]), check_quality=bool(s["check_quality"]))

    def _kwargs(self) -> dict[str, Any]:
        d = float(self.settings["max_duration_s"] or 0.0)
        return {"max_gen_duration_s": d} if d > 0 else {}

    # ---- runs ---------------------------------------------------------------------------------
    def _guard(self) -> Any:
        desk = self

        class _Guard:
            def __enter__(self) -> None:
                if not desk._lock.acquire(blocking=False):
                    raise ScriptDeskError("A script run is in progress; wait for it to finish.")
                desk.busy = True
                desk.emit("busy", busy=True)

            def __exit__(self, *exc: Any) -> None:
                desk.busy = False
                desk._lock.release()
                desk.emit("busy", busy=False)

        return _Guard()

    def run(self) -> Production:
        """Render the whole script (every line through the retake loop); returns the production."""
        with self._guard():
            s = self.settings
            script = parse_text(s["script"]) if s["script"].strip() else None
            if script is None:
                raise ScriptDeskError("The script is empty: type lines like 'Alice: Hello there.' or load a file.")
            voices = VoiceMap.from_text(s["voices"]) if s["voices"].strip() else None

            def progress(line: int, lines: int, attempt: int, tries: int, stage: str, done: int, total: int) -> None:
                self.emit("progress", line=line, lines=lines, attempt=attempt, tries=tries, stage=stage,
                          done=done, total=total)

            try:
                self.production = render_script(self.session.models(), script, voices, seed=int(s["seed"]),
                                                policy=self.policy(), progress=progress, **self._kwargs())
            except Exception as exc:
                self.emit("error", message=str(exc))
                raise
            self.emit("done", production=self.production)
            return self.production

    def _prod(self) -> Production:
        if self.production is None:
            raise ScriptDeskError("Nothing rendered yet: run the script first.")
        return self.production

    def retake(self, number: int) -> Any:
        """New candidates for one line (its seed sequence continues); the scene is re-assembled."""
        prod = self._prod()
        with self._guard():
            result = retake_line(self.session.models(), prod, number, tries=int(self.settings["tries"]),
                                 **self._kwargs())
        self.emit("line", number=number)
        return result

    # ---- review -------------------------------------------------------------------------------
    def _take(self, number: int) -> Any:
        prod = self._prod()
        if number not in prod.results:
            raise ScriptDeskError(f"Line {number} is not a spoken line (lines: {sorted(prod.results)}).")
        return prod.results[number].take

    def accept(self, number: int, *, reviewer: str, note: str = "") -> Any:
        review = approve(self._take(number), reviewer, note, store=self.session.review_store)
        self.emit("line", number=number)
        return review

    def reject(self, number: int, *, reviewer: str, note: str = "") -> Any:
        review = reject(self._take(number), reviewer, note, store=self.session.review_store)
        self.emit("line", number=number)
        return review

    def rows(self) -> list[dict[str, Any]]:
        """The production's rows plus each chosen take's review state."""
        if self.production is None:
            return []
        rows = self.production.rows()
        for row in rows:
            row["review"] = review_state(self._take(row["line"]), store=self.session.review_store).state
        return rows

    # ---- listening and saving -----------------------------------------------------------------
    def line_wav(self, number: int) -> bytes:
        return self._take(number).to_wav_bytes()

    def scene_wav(self) -> bytes:
        return self._prod().audio.to_wav_bytes()

    def save(self, folder: str | os.PathLike, *, overwrite: bool = True) -> dict[str, Path]:
        """The labelled scene, each chosen line, report.json/.txt and scene.srt."""
        return self._prod().save(folder, overwrite=overwrite)
