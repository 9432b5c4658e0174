"""The retake loop: up to N candidates per line, each scored, until one passes; the best is kept.

Candidate k of a line uses the seed ``derive_seed(seed, "line", line.key, k)``: one global seed and the line's
stable key (from its speaker, text and occurrence) fix every candidate, so a re-run makes the same candidates
(and, with a stage cache, finds them already made), and editing one line leaves the other lines' seeds alone.
Each candidate speaks the line's segments with the same seed family and joins them with exact silences for
the pause tags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import constants as C
from ..artifacts import Audio, Provenance
from ..rights import voice_origin
from ..sampling import derive_seed
from ..stages import BarkModels, Take, generate
from ..voices import Voice
from .parse import Line
from .scoring import LineScorer, RetakePolicy, Scores, SpeakerMemory
from .timeline import trim_silence

Scorer = Callable[[Audio, str, "SpeakerMemory | None", "float | None"], Scores]
Progress = Callable[[int, int, str, int, int], None]  # (attempt, max_tries, stage, done, total)


@dataclass
class Candidate:
    attempt: int
    seed: int
    audio: Audio
    takes: list[Take]
    scores: Scores


@dataclass
class LineResult:
    """A line's candidates, the chosen one and the reviewable take made from it."""

    line: Line
    candidates: list[Candidate] = field(default_factory=list)
    chosen: int = 0  # index into candidates
    take: Audio | None = None  # the chosen candidate's audio wrapped with every candidate's scores

    @property
    def best(self) -> Candidate:
        return self.candidates[self.chosen]

    @property
    def passed(self) -> bool:
        return self.best.scores.passed

    @property
    def verdict(self) -> str:
        if self.passed:
            return "passed" if self.chosen == 0 else f"passed on try {self.chosen + 1}"
        return "kept best, " + "; ".join(self.best.scores.reasons)

    @property
    def seeds(self) -> list[int]:
        return [c.seed for c in self.candidates]

    def voice(self, name: str) -> Voice:
        """The chosen take as a voice (for a speaker that started without one)."""
        takes = self.best.takes
        return takes[-1].voice(name=name)


def line_seed(seed: int, line: Line, attempt: int) -> int:
    """Seed of candidate ``attempt`` (0-based) of ``line``."""
    return derive_seed(seed, "line", line.key, attempt)


def speak_line(models: BarkModels, line: Line, voice: Voice | None, seed: int, *,
               progress: Callable[[str, int, int], None] | None = None,
               **generate_kwargs: Any) -> tuple[Audio, list[Take]]:
    """One candidate of ``line``: each speech segment generated and trimmed, pauses as exact silence."""
    pieces: list[np.ndarray] = []
    takes: list[Take] = []
    rate = C.SAMPLE_RATE
    for j, seg in enumerate(line.segments):
        if seg.is_pause:
            pieces.append(np.zeros(int(round(seg.pause_s * rate)), np.float32))
            continue
        take = generate(models, seg.text, voice, seed=derive_seed(seed, "segment", j), progress=progress,
                        **generate_kwargs)
        rate = take.audio.sample_rate
        pieces.append(trim_silence(take.audio.samples, rate))
        takes.append(take)
    first = takes[0].audio
    extra = {"untrained": bool(first.provenance.extra.get("untrained"))}
    try:
        extra["voice_origin"] = voice_origin(voice)
    except Exception:  # a voice without its rights record stops at the label, with its own message
        pass
    prov = Provenance(stage="line", model=first.provenance.model, model_checksum=first.provenance.model_checksum,
                      settings={"text": line.text, "speaker": line.speaker, "line": line.number, "key": line.key,
                                "segments": [{"text": s.text, "pause_s": s.pause_s} for s in line.segments],
                                "parts": [t.audio.id for t in takes], "trim_db": 40.0},
                      seed=seed, voice=first.provenance.voice, parent=first.id, lineage=first.lineage_ids(),
                      extra=extra)
    samples = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return Audio(samples=samples, sample_rate=rate, provenance=prov, parent=first), takes


def render_line(models: BarkModels, line: Line, voice: Voice | None, *, seed: int,
                policy: RetakePolicy | None = None, scorer: Scorer | None = None,
                memory: SpeakerMemory | None = None, start_attempt: int = 0,
                progress: Progress | None = None, **generate_kwargs: Any) -> LineResult:
    """Candidates for ``line`` until one passes ``scorer`` (or ``policy.max_tries`` are made); keeps the best.

    ``start_attempt`` continues a line's seed sequence (a retake asked for later makes new candidates, never
    the same ones again).
    """
    policy = policy or RetakePolicy()
    scorer = scorer or LineScorer(policy)
    result = LineResult(line=line)
    for k in range(start_attempt, start_attempt + policy.max_tries):
        cand_seed = line_seed(seed, line, k)
        cb = None
        if progress is not None:
            def cb(stage: str, done: int, total: int, _k: int = k - start_attempt + 1) -> None:
                progress(_k, policy.max_tries, stage, done, total)
        audio, takes = speak_line(models, line, voice, cand_seed, progress=cb, **generate_kwargs)
        scores = scorer(audio, line.text, memory, line.cue_s)
        scores.attempt, scores.seed = k + 1, cand_seed
        result.candidates.append(Candidate(attempt=k + 1, seed=cand_seed, audio=audio, takes=takes, scores=scores))
        if scores.passed:
            break
    passing = [i for i, c in enumerate(result.candidates) if c.scores.passed]
    result.chosen = passing[0] if passing else min(range(len(result.candidates)),
                                                   key=lambda i: result.candidates[i].scores.penalty)
    result.take = wrap_take(result, policy)
    return result


def wrap_take(result: LineResult, policy: RetakePolicy) -> Audio:
    """The chosen audio as its own artifact whose provenance holds every candidate's scores (reviewable)."""
    best = result.best.audio
    prov = Provenance(stage="retake", model=best.provenance.model, model_checksum=best.provenance.model_checksum,
                      settings={"text": result.line.text, "speaker": result.line.speaker, "line": result.line.number,
                                "chosen_attempt": result.best.attempt, "passed": result.passed,
                                "verdict": result.verdict, "policy": policy.to_dict(),
                                "candidates": [c.scores.to_dict() for c in result.candidates]},
                      seed=result.best.seed, voice=best.provenance.voice, parent=best.id,
                      lineage=best.lineage_ids(), extra=dict(best.provenance.extra))
    return Audio(samples=best.samples, sample_rate=best.sample_rate, provenance=prov, parent=best)


def chunk_scorer(policy: RetakePolicy | None = None, scorer: Scorer | None = None) -> Callable[..., dict[str, Any]]:
    """A scorer for :func:`bark_core.stages.generate_long`: WER against the chunk's text and speaker similarity
    against the first chunk (drift); returns the dict ``generate_long`` records per chunk."""
    policy = policy or RetakePolicy()
    scorer = scorer or LineScorer(policy)
    memory = SpeakerMemory()
    embed = getattr(scorer, "embed", None)

    def score(index: int, text: str, take: Take, first: Take | None) -> dict[str, Any]:
        if first is not None and memory.reference is None and embed is not None:
            memory.reference = embed(first.audio)
        s = scorer(take.audio, text, memory if first is not None else None, None)
        out = s.to_dict()
        out["drift"] = None if s.similarity_voice is None else round(1.0 - s.similarity_voice, 4)
        return out

    return score
