"""Long texts in the studio: ``bark_core.generate_long`` over the session's text, voice and settings.

A text longer than one generation (about 14 s of speech) is split into sentence-sized chunks by the
core, each chunk a take of its own; ``continuity`` decides whether each chunk keeps the chosen voice
("fixed"), carries the previous chunk's voice ("carry") or carries it but returns to the chosen one
every ``reset_every`` chunks ("reset"). The session only holds the result and reports progress.
"""

from __future__ import annotations

from typing import Any

from .settings import RunCancelled, StudioError


def long_settings() -> dict[str, Any]:
    """The long-form defaults, read from the core."""
    from bark_core.stages import DEFAULT_MAX_CHARS

    return {"continuity": "fixed", "reset_every": 3, "gap_s": 0.25, "max_chars": DEFAULT_MAX_CHARS}


def continuity_modes() -> tuple[str, ...]:
    from bark_core.stages import CONTINUITY_MODES

    return tuple(CONTINUITY_MODES)


class LongFormMixin:
    """``run_long`` for :class:`~bark_studio.session.Session`; ``long_take`` holds the last result
    (a ``bark_core`` LongTake: chunks, per-chunk takes and seeds, the joined audio)."""

    long_take: Any = None

    def whole_take_inputs(self) -> tuple[dict[str, Any], Any, Any, int]:
        """Settings, models, voice and master seed for a take made in one call (long form, stream)."""
        s = dict(self._settings)
        seed = self.seed if self.seed is not None else s["semantic_seed"]
        return s, self.models(), self.voice(s["voice"]), seed

    def run_long(self, *, continuity: str = "fixed", reset_every: int = 3, gap_s: float = 0.25,
                 max_chars: int | None = None) -> Any:
        """Speak the current text chunk by chunk with the current voice, seed and stage settings.

        Cancel stops at the next progress step; the chunks made before stay in ``long_take``."""
        from bark_core import generate_long
        from bark_core.stages import LongFormError

        if continuity not in continuity_modes():
            raise StudioError(f"continuity must be one of {', '.join(continuity_modes())}, got {continuity!r:.40}.")
        self.check_inputs("fine")
        with self._guard():
            s, models, voice, seed = self.whole_take_inputs()

            def progress(chunk: int, chunks: int, stage: str, done: int, total: int) -> None:
                if self._cancel.is_set():
                    raise RunCancelled(f"Cancelled during chunk {chunk} of {chunks}; the chunks before it are kept.")
                self.emit("long_progress", chunk=chunk, chunks=chunks, stage=stage, done=done, total=total)

            self.emit("long_start", seed=seed)
            try:
                long = generate_long(
                    models, s["text"], voice, seed=seed, continuity=continuity, reset_every=int(reset_every),
                    gap_s=float(gap_s), max_chars=int(max_chars or long_settings()["max_chars"]), progress=progress,
                    semantic_temp=s["semantic_temp"], coarse_temp=s["coarse_temp"], fine_temp=s["fine_temp"],
                    top_k=s["semantic_top_k"], top_p=s["semantic_top_p"], min_eos_p=s["min_eos_p"],
                    max_gen_duration_s=s["max_gen_duration_s"], allow_early_stop=s["allow_early_stop"])
            except LongFormError as exc:
                self.long_take = exc.partial if exc.partial.takes else None
                self.emit("long", long=self.long_take, message=str(exc))
                raise
            self.long_take = long
            self.emit("long", long=long, message=None)
            return long
