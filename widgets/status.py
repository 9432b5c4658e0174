"""What the status line says while a run goes on, and the two run steps that need a helper to say it.

Apart from the session so that the words a person reads (loading only when weights load, step k of n
with elapsed and remaining time, "from cache") are decided in one place, from the session's events,
with a clock the tests can replace.
"""

from __future__ import annotations

import threading
from typing import Any

from bark_core import BarkModels

from .settings import RunCancelled, StudioError


def _secs(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def progress_line(stage: str, done: int, total: int, elapsed: float, remaining: float | None, *,
                  cache_hit: bool | None = None) -> str:
    """"coarse: step 120 of 400 · 3.2 s elapsed · about 7.5 s left", or "semantic: from cache"."""
    if done >= total > 0 and cache_hit is not None:
        return f"{stage}: from cache" if cache_hit else f"{stage}: computed in {_secs(elapsed)}"
    if total <= 1:
        return f"{stage}: working… {_secs(elapsed)} elapsed"
    left = "" if remaining is None else f" · about {_secs(remaining)} left"
    return f"{stage}: step {done} of {total} · {_secs(elapsed)} elapsed{left}"


class LiveMixin:
    """Loading notices and the cancellable coarse preview, for :class:`~bark_studio.session.Session`."""

    def _hook_loads(self, models: BarkModels) -> None:
        """Say "Loading" only when a stage really loads weights: ``before_use`` runs only when the
        stage cache could not serve the result, and the model may be loaded already."""
        if getattr(models.before_use, "_bark_studio", False):
            return
        previous = models.before_use

        def before_use(name: str) -> None:
            if previous is not None:
                previous(name)
            if not models.is_loaded(name):
                self.emit("loading", stage=self.running, model=name,
                          text=f"{self.running or name}: loading the {name} model…")

        before_use._bark_studio = True  # type: ignore[attr-defined]
        models.before_use = before_use

    def _cancellable_preview(self, models: BarkModels, coarse: Any) -> Any:
        """The coarse preview (from the stage cache when it was made before). One EnCodec call cannot be
        interrupted, so it runs in a helper thread that Cancel abandons: the run stops at once."""
        box: dict[str, Any] = {}
        self.emit("message", text="coarse: decoding the preview…")

        def work() -> None:
            try:
                box["audio"] = self._preview(models, coarse)
            except BaseException as exc:  # handed to the run below
                box["error"] = exc

        worker = threading.Thread(target=work, name="bark-studio-preview", daemon=True)
        worker.start()
        while worker.is_alive():
            if self._cancel.wait(0.05):
                raise RunCancelled("Cancelled during the coarse preview; the coarse codes are kept.")
        if "error" in box:
            raise box["error"]
        return box["audio"]

    @staticmethod
    def _preview(models: BarkModels, coarse: Any) -> Any:
        from bark_core import decode_preview

        return decode_preview(models, coarse)

    def preview(self) -> Any:
        """Decode the current coarse codes alone (listen before fine), if not done during the run."""
        res = self.results.get("coarse")
        if res is None:
            raise StudioError("There are no coarse codes to preview yet; run the coarse stage first.")
        if res.preview is None:
            res.preview = self._preview(self.models(), res.artifact)
            self.emit("result", stage="coarse", result=res)
        return res.preview
