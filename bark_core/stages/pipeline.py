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
        """What the label stage should record for this take: text, models of every stage, voice, and the
        master seed (``seed`` overrides it)."""
        arts = (self.semantic, self.coarse, self.fine, self.audio)
        stages = zip(("text", "coarse", "fine", "codec"), arts, strict=True)
        return {"text": self.semantic.provenance.settings.get("text", ""),
                "model": ", ".join(f"{k}={a.provenance.model}" for k, a in stages),
                "voice": self.semantic.provenance.voice or "none",
                "seed": seed if seed is not None else self.redo_seed()}

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
