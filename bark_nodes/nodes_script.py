"""Bark Script and Bark Retake Policy: a dialogue script or subtitle file to one scene, every line scored and
retaken until it passes (bark_core.script does all of it; these nodes only pass inputs and show results)."""

from __future__ import annotations

import logging
from typing import Any

from bark_core.script import (
    DEFAULT_MAX_TRIES,
    RetakePolicy,
    ScriptError,
    VoiceMap,
    parse_text,
    read_script,
    render_script,
)

from . import _comfy
from ._api import io
from .audio import to_comfy
from .handle import BarkHandle
from .nodes_stages import STAGE_SPANS
from .types import CATEGORY, models_input, seed_input

log = logging.getLogger("bark_nodes")

Policy = io.Custom("BARK_RETAKE_POLICY")
ASR_ENGINES = ("auto", "faster-whisper", "whisper", "pocketsphinx")
KINDS = ("auto", "script", "srt", "vtt")
SCENE = """---
[voices]
Alice = "v2/en_speaker_9"
Bob = "v2/en_speaker_6"
---
Alice: Is this the train to the city? [pause 0.8s] I have never taken it before.
[Bob] Yes, it leaves in five minutes. [laughs]

Alice: Thank you so much.
[pause:1200ms]
Bob: Have a good trip!"""


class BarkRetakePolicy(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkRetakePolicy",
            display_name="Bark Retake Policy",
            category=CATEGORY,
            description="How hard Bark Script tries per line: up to max_tries candidates, each judged on script "
                        "(word error rate of an offline transcript), same speaker (voice embedding similarity) and "
                        "clean (quality checks); the first that passes is kept, else the best.",
            inputs=[
                io.Int.Input("max_tries", default=DEFAULT_MAX_TRIES, min=1, max=20,
                             tooltip="Candidates per line at most; each costs a full generation."),
                io.Float.Input("wer_max", default=0.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Retake above this word error rate; 0 = the recogniser's default (0.25 for "
                                       "Whisper, 0.75 for the approximate pocketsphinx)."),
                io.Float.Input("similarity_min", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Retake below this speaker similarity; 0 = the speaker model's default "
                                       "(0.70 resemblyzer, 0.92 for the MFCC fallback)."),
                io.Boolean.Input("check_script", default=True, tooltip="Judge what was said (ASR + WER)."),
                io.Boolean.Input("check_speaker", default=True,
                                 tooltip="Judge who said it (similarity to the voice and the speaker's earlier "
                                         "lines)."),
                io.Boolean.Input("check_quality", default=True,
                                 tooltip="Judge how it sounds (noise, clipping, silences, abrupt end)."),
                io.Combo.Input("asr", options=list(ASR_ENGINES), default="auto",
                               tooltip="Recogniser: auto uses a Whisper model already cached on this machine, "
                                       "else pocketsphinx (offline, approximate)."),
            ],
            outputs=[Policy.Output(display_name="policy")],
        )

    @classmethod
    def execute(cls, max_tries: int = DEFAULT_MAX_TRIES, wer_max: float = 0.0, similarity_min: float = 0.0,
                check_script: bool = True, check_speaker: bool = True, check_quality: bool = True,
                asr: str = "auto") -> io.NodeOutput:
        return io.NodeOutput(RetakePolicy(max_tries=max_tries, wer_max=wer_max or None,
                                          similarity_min=similarity_min or None, check_script=check_script,
                                          check_speaker=check_speaker, check_quality=check_quality,
                                          asr_engine=asr))


def _read(script: str, script_file: str, kind: str) -> Any:
    kind_arg = None if kind == "auto" else kind
    if script_file.strip():
        from .files import _inside

        return read_script(_inside(_comfy.input_dir(), script_file.strip()), kind=kind_arg)
    if not script.strip():
        raise ScriptError("no script: type it into 'script' or name a file in ComfyUI's input folder.")
    return parse_text(script, kind=kind_arg)  # typed text is never taken for a path


class BarkScript(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkScript",
            display_name="Bark Script",
            category=CATEGORY,
            description="A dialogue script ('Speaker: text' lines, [pause 0.8s] tags, a [voices] header) or "
                        ".srt/.vtt subtitles to one scene: every line is generated, scored and retaken until it "
                        "passes (see Bark Retake Policy), then placed on one timeline (subtitle cues at their "
                        "times). Outputs the scene, the per-line report and the SRT of what was placed.",
            is_output_node=True,
            inputs=[
                models_input(),
                io.String.Input("script", multiline=True, default=SCENE,
                                tooltip="The script text, or subtitles (SRT/WebVTT text). Ignored when script_file "
                                        "is set."),
                io.String.Input("script_file", default="", optional=True,
                                tooltip="A .txt/.srt/.vtt file in ComfyUI's input folder (relative path); "
                                        "overrides the script text."),
                io.Combo.Input("kind", options=list(KINDS), default="auto",
                               tooltip="auto: .srt/.vtt by extension or content, else the script format."),
                io.String.Input("voices", multiline=True, default="", optional=True,
                                tooltip="Optional speaker -> voice map in TOML ('Alice = \"v2/en_speaker_9\"'); "
                                        "overrides the script header's [voices]."),
                seed_input("Global seed: each line's candidates derive from it and the line, so a re-run repeats."),
                Policy.Input("policy", optional=True,
                             tooltip="From Bark Retake Policy; unconnected: 3 tries, all checks, default thresholds."),
                io.Float.Input("max_duration_s", default=0.0, min=0.0, max=15.4, step=0.1,
                               tooltip="Cut each generated segment after this many seconds; 0 = no limit."),
                io.Boolean.Input("save_report", default=True,
                                 tooltip="Also write the labelled scene, each chosen line, report.json/.txt and "
                                         "scene.srt into output/<filename_prefix>_NNNNN_/."),
                io.String.Input("filename_prefix", default="bark/script",
                                tooltip="Folder name prefix under ComfyUI's output folder."),
            ],
            outputs=[io.Audio.Output(display_name="audio"),
                     io.String.Output(display_name="report", tooltip="Per line: tries, WER, similarity, duration, "
                                                                     "verdict."),
                     io.String.Output(display_name="srt", tooltip="SubRip text of the lines as placed.")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, script: str = SCENE, seed: int = 0, script_file: str = "",
                kind: str = "auto", voices: str = "", policy: RetakePolicy | None = None,
                max_duration_s: float = 0.0, save_report: bool = True,
                filename_prefix: str = "bark/script") -> io.NodeOutput:
        sc = _read(script, script_file, kind)
        vmap = VoiceMap.from_text(voices) if voices.strip() else None
        bar = _comfy.Progress(1000)
        n_lines = max(1, len(sc.spoken))

        def progress(line: int, lines: int, attempt: int, tries: int, stage: str, done: int, total: int) -> None:
            start, span = STAGE_SPANS[stage]
            width = bar.total / n_lines
            bar.callback((line - 1) * width + width * start / 100, width * span / 100)(done, total)

        m = models.prepare("semantic", "coarse", "fine", "decode")
        prod = render_script(m, sc, vmap, seed=seed, policy=policy, progress=progress,
                             max_gen_duration_s=max_duration_s or None)
        bar.finish()
        table = prod.table()
        if save_report:
            base = _comfy.save_path(filename_prefix, "wav")
            folder = base.parent / base.stem
            paths = prod.save(folder)
            table += f"\nsaved to {folder.name}/: {', '.join(sorted(p.name for p in paths.values()))}"
            log.info("Bark Script: wrote %s", folder)
        meta = {**prod.label_meta(), "qc": prod.qc_summary()}
        return io.NodeOutput(to_comfy(prod.audio, meta=meta), table, prod.srt, ui={"text": [table]})


NODES = [BarkScript, BarkRetakePolicy]
