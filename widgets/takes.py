"""Stage results and takes: what a run leaves behind, and looking takes up again.

A take outlives the session's current results (changing a setting replaces those, never a take), so
it carries its own settings and stage results; comparing, reviewing, saving and voices all start
from one. Nothing here runs a stage.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from bark_core import constants as C

from .settings import MODEL_KEYS, SEEDED, STAGE_KEYS, STAGES, StudioError


@dataclass
class StageResult:
    """One stage's output as the studio received it.

    ``cache_hit`` is copied at the moment the core returned the artifact: the in-memory cache hands
    the same object out again later and flips its flag, so the artifact's own flag can change after
    the fact. ``signature`` and ``input_id`` decide later whether the result is still fresh.
    """

    stage: str
    artifact: Any
    cache_hit: bool
    seconds: float
    signature: str
    input_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    quality: Any = None  # QualityReport, for decode results
    preview: Any = None  # Audio from decode_preview, for coarse results
    images: dict[str, bytes] = field(default_factory=dict, repr=False)  # PNG cache for panels and compare

    def summary(self) -> str:
        """One line for the stage panel: sizes, duration, seed, cache hit or compute time."""
        art = self.artifact
        prov = art.provenance
        if self.stage == "semantic":
            size = f"{art.n_frames} tokens @ {C.SEMANTIC_RATE_HZ:g} Hz"
        elif self.stage in ("coarse", "fine"):
            size = f"{art.codes.shape[0]} codebooks × {art.n_frames} frames @ {C.COARSE_RATE_HZ} Hz"
        else:
            size = f"{art.n_samples} samples @ {art.sample_rate} Hz"
        parts = [size, f"{art.duration_s:.2f} s"]
        if prov.seed is not None and self.stage in SEEDED:
            parts.append(f"seed {prov.seed}")
        parts.append("from cache" if self.cache_hit else f"computed in {self.seconds:.2f} s")
        if self.stage == "label":
            settings = prov.settings
            parts.append("watermark added" if settings.get("watermark_added") else "watermark already present")
        if (prov.extra or {}).get("untrained"):
            parts.append("UNTRAINED weights")
        return " · ".join(parts)


@dataclass
class StudioTake:
    """One take in the history: the stage results it holds, and the settings that made them."""

    number: int
    settings: dict[str, Any]
    results: dict[str, StageResult]
    voice: Any = None
    created: str = field(default_factory=lambda: _dt.datetime.now().strftime("%H:%M:%S"))
    seed: int | None = None  # the master seed, when the stage seeds came from one
    watermark_key: str | None = field(default=None, repr=False)  # the label's key (the settings hold its fingerprint)

    def _art(self, stage: str) -> Any:
        res = self.results.get(stage)
        return None if res is None else res.artifact

    @property
    def semantic(self) -> Any:
        return self._art("semantic")

    @property
    def coarse(self) -> Any:
        return self._art("coarse")

    @property
    def fine(self) -> Any:
        return self._art("fine")

    @property
    def audio(self) -> Any:
        """The decoded audio (what is checked and reviewed); ``labelled`` is the watermarked copy."""
        return self._art("decode")

    @property
    def labelled(self) -> Any:
        return self._art("label")

    @property
    def preview(self) -> Any:
        res = self.results.get("coarse")
        return None if res is None else res.preview

    @property
    def quality(self) -> Any:
        res = self.results.get("decode")
        return None if res is None else res.quality

    @property
    def stages(self) -> list[str]:
        return [s for s in STAGES if s in self.results]

    @property
    def complete(self) -> bool:
        """Whether the take reached audio (it can then be heard, checked, reviewed and exported)."""
        return "decode" in self.results

    def as_take(self) -> Any:
        """The core's :class:`bark_core.Take` (needs every stage through decode)."""
        from bark_core import Take

        missing = [s for s in ("semantic", "coarse", "fine", "decode") if s not in self.results]
        if missing:
            raise StudioError(f"Take {self.number} has no {', '.join(missing)} result yet; run it through decode.")
        return Take(semantic=self.semantic, coarse=self.coarse, fine=self.fine, audio=self.audio)

    def relevant_settings(self) -> dict[str, Any]:
        """The settings of the stages this take has (others did not shape it)."""
        keys = [k for s in self.stages for k in STAGE_KEYS[s]]
        return {k: self.settings.get(k) for k in (*MODEL_KEYS, *keys)}

    def title(self) -> str:
        """A short line for pickers: number, start of the text, voice, last stage, duration, seed."""
        last = self.stages[-1] if self.stages else "nothing"
        art = self.results[last].artifact if self.stages else None
        dur = f" · {art.duration_s:.1f} s" if art is not None else ""
        text = " ".join(str(self.settings.get("text") or "").split())
        text = text if len(text) <= 28 else text[:27].rstrip() + "…"
        voice = str(self.voice or "no voice").split("#")[0].split(":")[-1].split("/")[-1]
        seed = f" · seed {self.seed}" if self.seed is not None else ""
        return f"#{self.number} · “{text}” · {voice} · up to {last}{dur}{seed} · {self.created}"


def same_take(take: StudioTake, chain: dict[str, StageResult]) -> bool:
    """Whether a run's results are this take again (one holds the other's stages, artifact for artifact)."""
    common = [s for s in chain if s in take.results]
    return bool(common) and all(take.results[s].artifact.id == chain[s].artifact.id for s in common)


class HistoryMixin:
    """Looking takes up and comparing them, for :class:`~bark_studio.session.Session`: this needs
    nothing but ``self.takes``, which the runs fill, so it reads without the run logic."""

    def take(self, which: StudioTake | int | None = None) -> StudioTake:
        """A take by number (1-based, as shown), the take itself, or the last one for None."""
        if isinstance(which, StudioTake):
            return which
        if not self.takes:
            raise StudioError("There are no takes yet; run a stage first.")
        if which is None:
            return self.takes[-1]
        for t in self.takes:
            if t.number == which:
                return t
        raise StudioError(f"There is no take {which}; takes are numbered 1..{len(self.takes)}.")

    def compare(self, a: StudioTake | int, b: StudioTake | int) -> dict[str, Any]:
        """Two takes side by side: the settings that differ, and each take's stages."""
        ta, tb = self.take(a), self.take(b)
        keys = sorted(set(ta.relevant_settings()) | set(tb.relevant_settings()))
        diff = {k: (ta.settings.get(k), tb.settings.get(k)) for k in keys if ta.settings.get(k) != tb.settings.get(k)}
        return {"a": ta, "b": tb, "differences": diff}
