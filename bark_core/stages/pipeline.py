"""The one-call pipeline: text through every stage to one :class:`Take`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..artifacts import Audio, CoarseCodes, FineCodes, SemanticTokens
from ..sampling import STAGE_SEEDS, Seed, derive_seed, master_seed, stage_seeds
from ..voices import Voice, voice_from_artifacts
from .generation import check_generate_settings, decode, generate_coarse, generate_fine, generate_semantic
from .modelset import BarkModels

VOICED_STAGES = ("semantic", "coarse", "fine")


def voices_line(stage_voices: dict[str, dict[str, Any]]) -> str:
    """One voice name when every stage used it, else each stage's: "semantic=a, coarse=b, fine=b"."""
    names = [v.get("voice") or "none" for v in stage_voices.values()]
    if len(set(names)) == 1:
        return names[0]
    return ", ".join(f"{stage}={name}" for stage, name in zip(stage_voices, names, strict=True))


def merge_origins(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per distinct voice (by id, else by content), its ``stages`` merged in first-use order."""
    merged: dict[str, dict[str, Any]] = {}
    for group in groups:
        for origin in group:
            body = {k: v for k, v in origin.items() if k != "stages"}
            key = str(body.get("voice_id") or sorted(body.items(), key=str))
            entry = merged.setdefault(key, {**body, "stages": []})
            entry["stages"] += [s for s in origin.get("stages", []) if s not in entry["stages"]]
    return list(merged.values())


@dataclass
class Take:
    """One run through every stage; each artifact keeps its own provenance (its stage's seed included).

    ``seed`` is the master seed the stage seeds were derived from: ``generate(..., seed=take.seed)``
    redoes the take. It is None when no single seed made it (a torch.Generator, or stage seeds set
    one by one).
    """

    semantic: SemanticTokens
    coarse: CoarseCodes
    fine: FineCodes
    audio: Audio
    seed: int | None = None

    def redo_seed(self) -> int | None:
        """``seed`` when it really derives every stage's recorded seed, else None: a label never
        carries a number that would not redo the take."""
        if self.seed is None:
            return None
        arts = (self.semantic, self.coarse, self.fine)
        if any(a.provenance.seed != derive_seed(self.seed, s) for s, a in zip(STAGE_SEEDS, arts, strict=True)):
            return None
        return int(self.seed)

    def label_meta(self, seed: int | None = None) -> dict[str, Any]:
        """What the label stage should record for this take: text, models of every stage, voices, and the
        master seed (``seed`` overrides it).

        Stages may run with different voices (re-voicing at coarse/fine), so ``voice`` names each
        stage's voice when they differ, ``stages`` records every stage's voice and seed, and
        ``voice_origins`` every voice's origin, with the rights record of a cloned one.
        """
        arts = (self.semantic, self.coarse, self.fine, self.audio)
        stages = zip(("text", "coarse", "fine", "codec"), arts, strict=True)
        meta = {"text": self.semantic.provenance.settings.get("text", ""),
                "model": ", ".join(f"{k}={a.provenance.model}" for k, a in stages),
                "voice": voices_line(self.stage_voices()),
                "seed": seed if seed is not None else self.redo_seed(),
                "stages": self.stage_voices()}
        origins = self.voice_origins()
        if origins:
            meta["voice_origins"] = origins
        return meta

    def stage_voices(self) -> dict[str, dict[str, Any]]:
        """The voice and seed each stage ran with."""
        return {name: {"voice": art.provenance.voice, "seed": art.provenance.seed}
                for name, art in zip(VOICED_STAGES, (self.semantic, self.coarse, self.fine), strict=True)}

    def voice_origins(self) -> list[dict[str, Any]]:
        """Each distinct voice's origin (rights included) with the stages that used it."""
        found: list[dict[str, Any]] = []
        for name, art in zip(VOICED_STAGES, (self.semantic, self.coarse, self.fine), strict=True):
            origin = art.provenance.extra.get("voice_origin")
            if origin is not None:
                found.append({**origin, "stages": [name]})
        return merge_origins([found])

    def voice(self, name: str = "take") -> Voice:
        """This take as a voice for the next clip (keeps one speaker across clips)."""
        return voice_from_artifacts(self.semantic, self.coarse, self.fine, name=name)


def generate(models: BarkModels, text: str, voice: Any = None, *, seed: Seed = None,
             semantic_temp: float | None = 0.7, coarse_temp: float | None = 0.7, fine_temp: float | None = 0.5,
             top_k: int | None = None, top_p: float | None = None, min_eos_p: float | None = 0.2,
             max_gen_duration_s: float | None = None, allow_early_stop: bool = True,
             progress: Any = None) -> Take:
    """Text -> audio through all four stages; ``progress(stage, done, total)`` if given.

    One master seed drives every stage through derived per-stage seeds, so the whole take repeats:
    without ``seed`` one is drawn, and ``take.seed`` holds it either way. A ``torch.Generator`` is
    shared by the stages instead (and the take has no master seed).
    """
    check_generate_settings(semantic_temp=semantic_temp, coarse_temp=coarse_temp, fine_temp=fine_temp, top_k=top_k,
                            top_p=top_p, min_eos_p=min_eos_p, max_gen_duration_s=max_gen_duration_s,
                            allow_early_stop=allow_early_stop, progress=progress, seed=seed)
    master: int | None = None
    if isinstance(seed, torch.Generator):
        seeds: list[Seed] = [seed, seed, seed]
    else:
        master = master_seed(seed)
        seeds = list(stage_seeds(master))

    def cb(stage: str) -> Any:
        return None if progress is None else (lambda d, t: progress(stage, d, t))

    voice = models.voice(voice)
    sem = generate_semantic(models, text, voice, temp=semantic_temp, top_k=top_k, top_p=top_p,
                            min_eos_p=min_eos_p, max_gen_duration_s=max_gen_duration_s,
                            allow_early_stop=allow_early_stop, seed=seeds[0], progress=cb("semantic"))
    coarse = generate_coarse(models, sem, voice, temp=coarse_temp, top_k=top_k, top_p=top_p, seed=seeds[1],
                             progress=cb("coarse"))
    fine = generate_fine(models, coarse, voice, temp=fine_temp, seed=seeds[2], progress=cb("fine"))
    audio = decode(models, fine)
    if progress is not None:
        progress("decode", 1, 1)
    return Take(semantic=sem, coarse=coarse, fine=fine, audio=audio, seed=None if master is None else int(master))
