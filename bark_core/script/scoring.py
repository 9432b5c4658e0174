"""How a candidate take is judged: on script (WER), same speaker (embedding similarity), clean (quality
checks) and, for subtitle cues, whether it fits the cue.

A candidate **passes** when every check that could run passes. When none of a line's candidates passes, the
one with the lowest **penalty** is kept (and flagged):

    penalty = min(WER, 1) + (1 - similarity) + 0.5 x (failing quality checks) + overflow

where similarity is the lower of "against the voice reference" and "against the speaker's earlier accepted
lines" (0 when neither exists), and overflow is how far the take runs past its cue, as a fraction of the cue.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import constants as C
from ..artifacts import Audio
from ..quality import check
from ..quality.asr import pick_engine as pick_asr
from ..quality.asr import transcribe
from ..quality.speaker import SIMILARITY_MIN, SpeakerEmbedding, engine_note, speaker_embedding, speaker_similarity
from ..quality.speaker import pick_engine as pick_speaker

# ---- thresholds, each with its reason -----------------------------------------------------------------------
# Whisper transcribes clean synthetic speech almost word for word (WER ~0-0.1); one word in four wrong means the
# take left the script (invented words, a dropped clause, "uh").
WER_MAX_WHISPER = 0.25
# pocketsphinx's small English model misses many words of correct speech (on our espeak-ng test clips it scores
# 0.4-0.9 against the right text and 0.9-1.4 against a wrong one), so it can only catch gross departures.
WER_MAX_POCKETSPHINX = 0.75
# Bark's own hesitations ("uh") and small slips are tolerated under these; above them the take is retaken.
WER_MAX = {"faster-whisper": WER_MAX_WHISPER, "whisper": WER_MAX_WHISPER, "pocketsphinx": WER_MAX_POCKETSPHINX}
# A take may run this far past its cue before it fails the fit check: 0, since time compression (up to
# MAX_COMPRESSION, see timeline) is the second remedy, only after retakes.
CUE_OVERFLOW_MAX = 0.0
DEFAULT_MAX_TRIES = C.SCRIPT_MAX_TRIES
QC_PENALTY = 0.5  # one failing quality check weighs like half the words wrong


@dataclass
class RetakePolicy:
    """How hard to try: candidates per line and the pass thresholds (None: the engine's default above)."""

    max_tries: int = DEFAULT_MAX_TRIES
    wer_max: float | None = None
    similarity_min: float | None = None
    check_script: bool = True
    check_speaker: bool = True
    check_quality: bool = True
    asr_engine: str = "auto"
    speaker_engine: str = "auto"

    def __post_init__(self) -> None:
        if not 1 <= int(self.max_tries) <= 50:
            raise ValueError(f"max_tries must be 1..50, got {self.max_tries}.")
        self.max_tries = int(self.max_tries)

    def wer_limit(self, engine: str) -> float:
        return self.wer_max if self.wer_max is not None else WER_MAX.get(engine.split()[0], WER_MAX_POCKETSPHINX)

    def similarity_limit(self, engine: str) -> float:
        return self.similarity_min if self.similarity_min is not None else SIMILARITY_MIN[engine]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Scores:
    """Every figure of one candidate; goes into its take's provenance and the report."""

    attempt: int = 1
    seed: int | None = None
    duration_s: float = 0.0
    wer: float | None = None
    transcript: str | None = None
    asr_engine: str | None = None
    similarity_voice: float | None = None
    similarity_speaker: float | None = None
    speaker_engine: str | None = None
    qc_passed: bool | None = None
    qc_fail: list[str] = field(default_factory=list)
    qc_warn: list[str] = field(default_factory=list)
    cue_s: float | None = None
    fit: float | None = None  # duration / cue duration
    checks: dict[str, bool] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    @property
    def similarity(self) -> float | None:
        vals = [v for v in (self.similarity_voice, self.similarity_speaker) if v is not None]
        return min(vals) if vals else None

    @property
    def penalty(self) -> float:
        wer = 1.0 if self.wer is None and self.checks.get("on_script") is not None else (self.wer or 0.0)
        sim = self.similarity
        overflow = max(0.0, (self.fit or 0.0) - 1.0)
        return (min(wer, 1.0) + (0.0 if sim is None else 1.0 - sim) + QC_PENALTY * len(self.qc_fail) + overflow)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out.update(passed=self.passed, penalty=round(self.penalty, 4),
                   similarity=None if self.similarity is None else round(self.similarity, 4))
        return out


@dataclass
class SpeakerMemory:
    """What the scorer compares a take with: the voice reference and the speaker's accepted lines so far."""

    reference: SpeakerEmbedding | None = None
    accepted: list[SpeakerEmbedding] = field(default_factory=list)

    def centre(self) -> SpeakerEmbedding | None:
        if not self.accepted:
            return None
        v = np.mean([e.vector for e in self.accepted], axis=0)
        n = float(np.linalg.norm(v))
        return SpeakerEmbedding(v / n if n > 0 else v, self.accepted[0].engine)


class LineScorer:
    """Scores candidates of script lines (or long-form chunks) by the policy's checks.

    A scorer is any callable ``(audio, text, memory, cue_s) -> Scores``; tests and callers can pass their own.
    """

    def __init__(self, policy: RetakePolicy | None = None):
        self.policy = policy or RetakePolicy()
        self.asr_engine = pick_asr(self.policy.asr_engine)[0] if self.policy.check_script else "off"
        self.speaker_engine = pick_speaker(self.policy.speaker_engine) if self.policy.check_speaker else "off"

    def describe(self) -> dict[str, Any]:
        return {"asr": self.asr_engine, "speaker": self.speaker_engine,
                "speaker_note": engine_note(self.speaker_engine) if self.speaker_engine != "off" else None,
                "policy": self.policy.to_dict()}

    def embed(self, audio: Audio) -> SpeakerEmbedding | None:
        if self.speaker_engine == "off" or audio.n_samples == 0:
            return None
        return speaker_embedding(audio.samples, audio.sample_rate, self.speaker_engine)

    def __call__(self, audio: Audio, text: str, memory: SpeakerMemory | None = None,
                 cue_s: float | None = None) -> Scores:
        p = self.policy
        s = Scores(duration_s=round(audio.duration_s, 4), cue_s=cue_s)
        if p.check_script and text.strip():
            asr = transcribe(audio.samples, audio.sample_rate, text, engine=p.asr_engine)
            s.asr_engine = asr.get("engine")
            if asr.get("available"):
                s.transcript, s.wer = asr.get("transcript"), asr.get("wer")
                limit = p.wer_limit(str(s.asr_engine))
                s.checks["on_script"] = s.wer is not None and s.wer <= limit
                if not s.checks["on_script"]:
                    s.reasons.append(f"WER {s.wer:.2f} > {limit:.2f}")
        if p.check_speaker and memory is not None:
            emb = self.embed(audio)
            s.speaker_engine = self.speaker_engine
            if emb is not None and memory.reference is not None:
                s.similarity_voice = speaker_similarity(emb, memory.reference)
            centre = memory.centre()
            if emb is not None and centre is not None:
                s.similarity_speaker = speaker_similarity(emb, centre)
            if s.similarity is not None:
                limit = p.similarity_limit(self.speaker_engine)
                s.checks["same_speaker"] = s.similarity >= limit
                if not s.checks["same_speaker"]:
                    s.reasons.append(f"similarity {s.similarity:.2f} < {limit:.2f}")
        if p.check_quality:
            report = check(audio, text=text or None)
            s.qc_passed, s.qc_fail, s.qc_warn = report.passed, report.codes("fail"), report.codes("warn")
            s.checks["clean"] = report.passed
            if not report.passed:
                s.reasons.append("quality: " + ", ".join(s.qc_fail))
        if cue_s:
            s.fit = round(audio.duration_s / cue_s, 4)
            s.checks["fits_cue"] = s.fit <= 1.0 + CUE_OVERFLOW_MAX
            if not s.checks["fits_cue"]:
                s.reasons.append(f"{audio.duration_s:.2f} s for a {cue_s:.2f} s cue")
        return s
