"""One node per Bark stage, plus Generate (all stages at once). Each calls one bark_core function.

Node widgets map onto bark_core settings with ComfyUI-friendly "off" values: temperature 0 means
greedy (argmax), top_k 0 and top_p 1.0 mean no filter, max duration 0 means no limit.
"""

from __future__ import annotations

from typing import Any

import bark_core
from bark_core import constants as C
from bark_core.label import mark_output

from . import _comfy
from ._api import io
from .audio import to_comfy
from .handle import BarkHandle
from .types import CATEGORY, Coarse, Fine, Semantic, models_input, seed_input, voice_input, watermark_input

MAX_SEMANTIC_S = round(C.MAX_SEMANTIC_STEPS / C.SEMANTIC_RATE_HZ, 1)


def _temp(value: float) -> float | None:
    return None if value <= 0 else float(value)


def _top_k(value: int) -> int | None:
    return None if value <= 0 else int(value)


def _top_p(value: float) -> float | None:
    return None if value >= 1.0 else float(value)


def _duration(value: float) -> float | None:
    return None if value <= 0 else float(value)


def temp_input(id: str, default: float, what: str) -> io.Float.Input:
    return io.Float.Input(id, default=default, min=0.0, max=2.0, step=0.01,
                          tooltip=f"Sampling temperature of {what}: higher is more varied, lower more "
                                  "conservative; 0 takes the most likely token every step (greedy).")


def top_k_input() -> io.Int.Input:
    return io.Int.Input("top_k", default=0, min=0, max=1024, tooltip="Sample only among the k most likely "
                                                                     "tokens; 0 turns the filter off.")


def top_p_input() -> io.Float.Input:
    return io.Float.Input("top_p", default=1.0, min=0.01, max=1.0, step=0.01,
                          tooltip="Nucleus sampling: keep the most likely tokens up to this total probability; "
                                  "1.0 turns the filter off.")


def text_input() -> io.String.Input:
    return io.String.Input("text", multiline=True, default="Hello! [laughs] This is Bark, speaking from ComfyUI.",
                           tooltip="Words to speak, up to about 256 tokens (~15 s of speech). Cues such as "
                                   "[laughs], [sighs], [music], ♪ lyrics ♪, CAPITALS for emphasis, and — or ... "
                                   "for hesitation work with the trained models.")


def min_eos_input() -> io.Float.Input:
    return io.Float.Input("min_eos_p", default=C.DEFAULT_MIN_EOS_P, min=0.01, max=1.0, step=0.01,
                          tooltip="Stop once the end-of-speech probability reaches this; lower ends clips "
                                  "earlier, higher lets them run on.")


def max_duration_input() -> io.Float.Input:
    return io.Float.Input("max_duration_s", default=0.0, min=0.0, max=MAX_SEMANTIC_S, step=0.1,
                          tooltip=f"Cut the clip after this many seconds; 0 = no limit (Bark stops by itself, "
                                  f"at most {MAX_SEMANTIC_S} s).")


class BarkTextToSemantic(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkTextToSemantic",
            display_name="Bark Text → Semantic",
            category=CATEGORY,
            description="Stage 1: text to semantic tokens (what is said and how, ~50 per second).",
            inputs=[
                models_input(), text_input(), voice_input(), seed_input(),
                temp_input("temp", C.DEFAULT_SEMANTIC_TEMP, "the semantic stage"),
                top_k_input(), top_p_input(), min_eos_input(), max_duration_input(),
                io.Boolean.Input("allow_early_stop", default=True,
                                 tooltip="Let the model end the clip by itself (Suno's default)."),
            ],
            outputs=[Semantic.Output(display_name="semantic")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, text: str, seed: int, temp: float = C.DEFAULT_SEMANTIC_TEMP,
                top_k: int = 0, top_p: float = 1.0, min_eos_p: float = C.DEFAULT_MIN_EOS_P,
                max_duration_s: float = 0.0, allow_early_stop: bool = True, voice: Any = None) -> io.NodeOutput:
        bar = _comfy.Progress()
        with models.hinted() as m:  # the model loads only if the stage cache misses
            sem = bark_core.generate_semantic(m, text, voice, temp=_temp(temp), top_k=_top_k(top_k),
                                              top_p=_top_p(top_p), min_eos_p=min_eos_p,
                                              max_gen_duration_s=_duration(max_duration_s),
                                              allow_early_stop=allow_early_stop, seed=seed, progress=bar.callback())
        bar.finish()
        return io.NodeOutput(sem)


class BarkSemanticToCoarse(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkSemanticToCoarse",
            display_name="Bark Semantic → Coarse",
            category=CATEGORY,
            description="Stage 2: semantic tokens to the first two EnCodec codebooks (75 frames per second). "
                        "The voice here sets the timbre: swap it to re-voice a take.",
            inputs=[
                models_input(),
                Semantic.Input("semantic", tooltip="Semantic tokens from Text → Semantic or Load Semantic."),
                voice_input(), seed_input(),
                temp_input("temp", C.DEFAULT_COARSE_TEMP, "the coarse stage"),
                top_k_input(), top_p_input(),
                io.Int.Input("max_coarse_history", default=C.MAX_COARSE_HISTORY, min=C.MIN_COARSE_HISTORY,
                             max=C.MAX_COARSE_HISTORY,
                             tooltip="How many past coarse tokens each window sees (60..630)."),
                io.Int.Input("sliding_window_len", default=C.SLIDING_WINDOW_LEN, min=1,
                             max=C.CONTEXT_WINDOW_SIZE - 256 - C.MIN_COARSE_HISTORY,
                             tooltip="Tokens generated per window; history + window must stay <= 768."),
            ],
            outputs=[Coarse.Output(display_name="coarse")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, semantic: Any, seed: int, temp: float = C.DEFAULT_COARSE_TEMP,
                top_k: int = 0, top_p: float = 1.0, max_coarse_history: int = C.MAX_COARSE_HISTORY,
                sliding_window_len: int = C.SLIDING_WINDOW_LEN, voice: Any = None) -> io.NodeOutput:
        bar = _comfy.Progress()
        with models.hinted() as m:  # the model loads only if the stage cache misses
            coarse = bark_core.generate_coarse(m, semantic, voice, temp=_temp(temp), top_k=_top_k(top_k),
                                               top_p=_top_p(top_p), max_coarse_history=max_coarse_history,
                                               sliding_window_len=sliding_window_len, seed=seed,
                                               progress=bar.callback())
        bar.finish()
        return io.NodeOutput(coarse)


class BarkCoarseToFine(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkCoarseToFine",
            display_name="Bark Coarse → Fine",
            category=CATEGORY,
            description="Stage 3: fills EnCodec codebooks 3-8 from the coarse codes (detail and clarity).",
            inputs=[
                models_input(),
                Coarse.Input("coarse", tooltip="Coarse codes from Semantic → Coarse or Load Coarse."),
                voice_input(), seed_input(),
                temp_input("temp", C.DEFAULT_FINE_TEMP, "the fine stage"),
            ],
            outputs=[Fine.Output(display_name="fine")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, coarse: Any, seed: int, temp: float = C.DEFAULT_FINE_TEMP,
                voice: Any = None) -> io.NodeOutput:
        bar = _comfy.Progress()
        with models.hinted() as m:  # the model loads only if the stage cache misses
            fine = bark_core.generate_fine(m, coarse, voice, temp=_temp(temp), seed=seed, progress=bar.callback())
        bar.finish()
        return io.NodeOutput(fine)


class BarkDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkDecode",
            display_name="Bark Decode",
            category=CATEGORY,
            description="Stage 4: fine codes to 24 kHz mono audio through EnCodec, watermarked (inaudible) so "
                        "that whatever saves it downstream keeps the synthetic-audio mark. The AUDIO output "
                        "feeds Bark Save Labelled Audio, PreviewAudio and video nodes.",
            inputs=[models_input(), Fine.Input("fine", tooltip="Fine codes from Coarse → Fine or Load Fine."),
                    watermark_input("Bark Decode")],
            outputs=[io.Audio.Output(display_name="audio")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, fine: Any, watermark: bool = True) -> io.NodeOutput:
        _comfy.check_interrupt()
        with models.hinted() as m:  # the codec loads only if the stage cache misses
            return io.NodeOutput(to_comfy(mark_output(bark_core.decode(m, fine), watermark, where="Bark Decode")))


STAGE_SPANS = {"semantic": (0, 40), "coarse": (40, 40), "fine": (80, 15), "decode": (95, 5)}


class BarkGenerate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkGenerate",
            display_name="Bark Generate",
            category=CATEGORY,
            description="All four stages in one node. One seed drives every stage (through derived per-stage "
                        "seeds), so a take repeats exactly. The stage artifacts come out too, for inspection, "
                        "saving or re-running one stage. The audio comes out watermarked (inaudible), so any saver "
                        "keeps the synthetic-audio mark.",
            inputs=[
                models_input(), text_input(), voice_input(), seed_input("Seed of the whole take."),
                temp_input("semantic_temp", C.DEFAULT_SEMANTIC_TEMP, "the semantic stage"),
                temp_input("coarse_temp", C.DEFAULT_COARSE_TEMP, "the coarse stage"),
                temp_input("fine_temp", C.DEFAULT_FINE_TEMP, "the fine stage"),
                top_k_input(), top_p_input(), min_eos_input(), max_duration_input(),
                watermark_input("Bark Generate"),
            ],
            outputs=[
                io.Audio.Output(display_name="audio"),
                Semantic.Output(display_name="semantic"),
                Coarse.Output(display_name="coarse"),
                Fine.Output(display_name="fine"),
            ],
        )

    @classmethod
    def execute(cls, models: BarkHandle, text: str, seed: int, semantic_temp: float = C.DEFAULT_SEMANTIC_TEMP,
                coarse_temp: float = C.DEFAULT_COARSE_TEMP, fine_temp: float = C.DEFAULT_FINE_TEMP, top_k: int = 0,
                top_p: float = 1.0, min_eos_p: float = C.DEFAULT_MIN_EOS_P, max_duration_s: float = 0.0,
                voice: Any = None, watermark: bool = True) -> io.NodeOutput:
        bar = _comfy.Progress()
        callbacks = {stage: bar.callback(*span) for stage, span in STAGE_SPANS.items()}
        with models.hinted() as m:  # each stage loads its model only if the stage cache misses
            take = bark_core.generate(m, text, voice, seed=seed, semantic_temp=_temp(semantic_temp),
                                      coarse_temp=_temp(coarse_temp), fine_temp=_temp(fine_temp),
                                      top_k=_top_k(top_k), top_p=_top_p(top_p), min_eos_p=min_eos_p,
                                      max_gen_duration_s=_duration(max_duration_s),
                                      progress=lambda stage, done, total: callbacks[stage](done, total))
        bar.finish()
        # the label records the master seed (take.seed, the one typed here): it redoes the whole take
        meta = take.label_meta()
        audio = to_comfy(mark_output(take.audio, watermark, where="Bark Generate", **meta), meta=meta)
        return io.NodeOutput(audio, take.semantic, take.coarse, take.fine)


NODES = [BarkTextToSemantic, BarkSemanticToCoarse, BarkCoarseToFine, BarkDecode, BarkGenerate]
