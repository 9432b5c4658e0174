"""Bark Long-form: a text of any length, split into sentence chunks, spoken one after another and joined."""

from __future__ import annotations

import logging
from typing import Any

from bark_core import constants as C
from bark_core.label import mark_output
from bark_core.script import RetakePolicy, chunk_scorer
from bark_core.stages import CONTINUITY_MODES, DEFAULT_MAX_CHARS, LongFormError, LongTake, generate_long

from . import _comfy
from ._api import io
from .audio import to_comfy
from .handle import BarkHandle
from .nodes_script import Policy
from .nodes_stages import (
    STAGE_SPANS,
    _duration,
    _temp,
    _top_k,
    _top_p,
    max_duration_input,
    min_eos_input,
    temp_input,
    top_k_input,
    top_p_input,
)
from .types import CATEGORY, models_input, seed_input, voice_input, watermark_input

log = logging.getLogger("bark_nodes")

LONG_TEXT = ("Bark speaks about fifteen seconds at a time. This node splits a long text at sentence ends, "
             "speaks each chunk, and joins them with a short pause. [laughs] The voice can stay fixed, carry "
             "over from chunk to chunk, or return to the preset every few chunks.")


def _interrupt_cause(exc: BaseException) -> BaseException | None:
    """ComfyUI's interrupt exception when a chunk failed because the user pressed Cancel."""
    mm = _comfy.model_management()
    kind = getattr(mm, "InterruptProcessingException", None)
    cause = exc.__cause__
    return cause if kind is not None and isinstance(cause, kind) else None


def chunk_summary(long: LongTake, seed: int, continuity: str) -> str:
    lines = [f"{len(long.takes)} chunk(s), {long.audio.duration_s:.2f} s in total, seed {seed}, continuity "
             f"{continuity}, gap {long.gap_s:g} s"]
    for i, (text, take, chunk_seed, voice) in enumerate(
            zip(long.chunks, long.takes, long.seeds, long.voices_used, strict=False), start=1):
        lines.append(f"{i}. {take.audio.duration_s:.2f} s, seed {chunk_seed}, voice {voice or 'none'}: {text}")
    if long.scores:
        lines += ["", long.drift_report()]
    return "\n".join(lines)


class BarkLongForm(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkLongForm",
            display_name="Bark Long-form",
            category=CATEGORY,
            description="Speaks a text of any length: splits it at sentence ends into chunks of at most "
                        "max_chars, generates each chunk with all four stages, and joins them with gap_s of "
                        "silence. One seed repeats the whole piece. With a Bark Retake Policy, each chunk is "
                        "scored and retaken until it passes, and the chunks output reports its drift. The progress "
                        "bar runs over chunks and stages; a failing chunk is named in the error.",
            inputs=[
                models_input(),
                io.String.Input("text", multiline=True, default=LONG_TEXT,
                                tooltip="Any length; split at . ! ? and the like (abbreviations, decimals and "
                                        "ellipses are handled), long sentences at commas. Cues such as [laughs] "
                                        "pass through."),
                voice_input(),
                seed_input("Seed of the whole piece; each chunk's seed derives from it."),
                io.Combo.Input("continuity", options=list(CONTINUITY_MODES), default="fixed",
                               tooltip="fixed: the voice input for every chunk (a random speaker per chunk without "
                                       "one). carry: each chunk speaks in the voice of the chunk before (one "
                                       "speaker that drifts naturally). reset: carry, but go back to the voice "
                                       "input every reset_every chunks."),
                io.Int.Input("reset_every", default=3, min=1, max=100,
                             tooltip="With continuity 'reset': return to the voice input every this many chunks."),
                io.Float.Input("gap_s", default=0.25, min=0.0, max=5.0, step=0.05,
                               tooltip="Silence between chunks, in seconds."),
                io.Int.Input("max_chars", default=DEFAULT_MAX_CHARS, min=10, max=400,
                             tooltip="Longest chunk in characters (~15 per second of speech; Bark holds ~14 s). "
                                     "Chunks also stay under Bark's 256 text tokens."),
                temp_input("semantic_temp", C.DEFAULT_SEMANTIC_TEMP, "the semantic stage"),
                temp_input("coarse_temp", C.DEFAULT_COARSE_TEMP, "the coarse stage"),
                temp_input("fine_temp", C.DEFAULT_FINE_TEMP, "the fine stage"),
                top_k_input(), top_p_input(), min_eos_input(), max_duration_input(),
                watermark_input("Bark Long-form"),
                Policy.Input("policy", optional=True,
                             tooltip="From Bark Retake Policy: score every chunk (WER of an offline transcript, "
                                     "speaker similarity to the first chunk, quality) and retake it up to "
                                     "max_tries candidates; the chunks output then lists each chunk's drift. "
                                     "Without it each chunk is taken as it comes."),
            ],
            outputs=[io.Audio.Output(display_name="audio"),
                     io.String.Output(display_name="chunks", tooltip="One line per chunk: duration, seed, voice, "
                                                                     "text.")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, text: str, seed: int, continuity: str = "fixed", reset_every: int = 3,
                gap_s: float = 0.25, max_chars: int = DEFAULT_MAX_CHARS,
                semantic_temp: float = C.DEFAULT_SEMANTIC_TEMP, coarse_temp: float = C.DEFAULT_COARSE_TEMP,
                fine_temp: float = C.DEFAULT_FINE_TEMP, top_k: int = 0, top_p: float = 1.0,
                min_eos_p: float = C.DEFAULT_MIN_EOS_P, max_duration_s: float = 0.0,
                voice: Any = None, watermark: bool = True, policy: RetakePolicy | None = None) -> io.NodeOutput:
        bar = _comfy.Progress(1000)

        def progress(chunk: int, n_chunks: int, stage: str, done: int, total: int) -> None:
            start, span = STAGE_SPANS[stage]
            width = bar.total / n_chunks
            bar.callback((chunk - 1) * width + width * start / 100, width * span / 100)(done, total)

        scoring = {} if policy is None else {"scorer": chunk_scorer(policy), "max_tries": policy.max_tries}
        try:
            with models.hinted() as m:  # each stage loads its model only if the stage cache misses
                long = generate_long(m, text, voice, seed=seed, continuity=continuity, reset_every=reset_every,
                                     gap_s=gap_s, max_chars=max_chars, progress=progress, **scoring,
                                     semantic_temp=_temp(semantic_temp), coarse_temp=_temp(coarse_temp),
                                     fine_temp=_temp(fine_temp), top_k=_top_k(top_k), top_p=_top_p(top_p),
                                     min_eos_p=min_eos_p, max_gen_duration_s=_duration(max_duration_s))
        except LongFormError as exc:
            cancelled = _interrupt_cause(exc)
            if cancelled is not None:
                raise cancelled from None  # Cancel is not a failure of the chunk
            log.error("Bark Long-form: chunk %d of %d failed; %d chunk(s) before it were generated.", exc.chunk,
                      len(exc.partial.chunks), len(exc.partial.takes))
            raise
        bar.finish()
        summary = chunk_summary(long, seed, continuity)
        meta = {**long.label_meta(seed=seed), "chunks": len(long.takes)}
        audio = mark_output(long.audio, watermark, where="Bark Long-form", **meta)
        return io.NodeOutput(to_comfy(audio, meta=meta), summary, ui={"text": [summary]})


NODES = [BarkLongForm]
