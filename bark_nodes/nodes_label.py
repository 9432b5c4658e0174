"""The label stage in the graph: Label (watermark + metadata), Save Labelled Audio, Detect Watermark.

Every file this pack writes goes through bark_core's label stage (``bark_core.label.export_audio``):
an inaudible keyed watermark in the samples plus AI-generated metadata in the file. Core SaveAudio
knows nothing of that, so Bark Save Labelled Audio is the saver for Bark audio; it also keeps
ComfyUI's habits: counter naming in the output folder, the workflow in the file, an audio preview.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any

from bark_core import ParameterError
from bark_core.label import (
    DEFAULT_STRENGTH_DB,
    FORMATS,
    MP3_RATES,
    LabelError,
    build_metadata,
    detect,
    export_audio,
    key_kind,
)
from bark_core.label import label as label_audio

from . import _comfy
from ._api import io
from .audio import (
    LABEL_KEY,
    batch_size,
    entry_for,
    from_comfy,
    label_meta,
    one_clip,
    quality_for,
    to_comfy,
    with_entry,
)
from .types import CATEGORY

log = logging.getLogger("bark_nodes")

KEY_TIP = ("Watermark key. Empty: the project key (BARK_WATERMARK_KEY if set, else bark_core's default key, "
           "which anyone with bark_core can detect). A custom key is stored in the workflow as plain text; "
           "keep such workflows private.")
SAMPLE_RATES = ("keep", *(str(r) for r in (16_000, 22_050, 24_000, 32_000, 44_100, 48_000)))
NORMALIZE = ("none", "peak", "rms", "lufs")
BITRATES = ("default", "64k", "96k", "128k", "192k", "256k", "320k")
WORKFLOW_TAGS_PARAM = "file_tags"  # export_audio keyword for extra plain file tags, when bark_core has it
MAX_WORKFLOW_IN_LABEL = 96_000  # bytes; label tags travel on ffmpeg's command line (128 kB per argument)


def _key(value: str) -> str | None:
    value = (value or "").strip()
    return value or None


def key_input() -> io.String.Input:
    return io.String.Input("key", default="", tooltip=KEY_TIP)


class BarkLabel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkLabel",
            display_name="Bark Label",
            category=CATEGORY,
            description="The label stage: adds bark_core's inaudible keyed watermark to the audio and attaches "
                        "the AI-generated label (model, voice, seed, text hash, time) that Bark Save Labelled "
                        "Audio writes into the file. Audio that already carries this key's mark is not marked "
                        "twice. Output is mono.",
            inputs=[
                io.Audio.Input("audio", tooltip="The clip to label: Bark Decode / Generate / Long-form output, "
                                                "or any AUDIO (then the label records less)."),
                key_input(),
                io.Float.Input("strength_db", default=DEFAULT_STRENGTH_DB, min=-80.0, max=-20.0, step=0.5,
                               tooltip="Watermark power relative to the audio, in dB. -40.5 (default) is inaudible "
                                       "and survives MP3 at 64 kbit/s; lower is fainter and less robust."),
                io.Boolean.Input("include_text", default=False,
                                 tooltip="Write the spoken text into the label. Off: only its SHA-256 hash, "
                                         "so the file proves which text it was without showing it."),
            ],
            outputs=[io.Audio.Output(display_name="audio"),
                     io.String.Output(display_name="label", tooltip="The label metadata as JSON (what the "
                                                                    "saved file will carry).")],
        )

    @classmethod
    def execute(cls, audio: Any, key: str = "", strength_db: float = DEFAULT_STRENGTH_DB,
                include_text: bool = False) -> io.NodeOutput:
        _comfy.check_interrupt()
        art = one_clip(audio, "Bark Label")
        meta = label_meta(audio, art)
        labelled = label_audio(art, _key(key), strength_db=strength_db, include_text=include_text, **meta)
        out = with_entry(to_comfy(labelled, source=audio), LABEL_KEY, labelled, key=_key(key),
                         strength_db=float(strength_db), include_text=bool(include_text), meta=meta)
        data = build_metadata(labelled)
        added = labelled.provenance.settings.get("watermark_added")
        log.info("Bark: labelled audio %s (%s key, watermark %s)", labelled.id, key_kind(_key(key)),
                 "added" if added else "already present")
        return io.NodeOutput(out, json.dumps(data, indent=2, ensure_ascii=False))


def workflow_tags(cls: Any) -> dict[str, str]:
    """What core SaveAudio writes into files: the prompt and the editor's workflow, as JSON text."""
    if not _comfy.metadata_enabled():
        return {}
    tags: dict[str, str] = {}
    prompt = _comfy.hidden(cls, "prompt")
    if prompt is not None:
        tags["prompt"] = json.dumps(prompt)
    extra = _comfy.hidden(cls, "extra_pnginfo")
    if isinstance(extra, dict):
        for name, value in extra.items():
            tags[str(name)] = json.dumps(value)
    return tags


def _export_accepts_tags() -> bool:
    return WORKFLOW_TAGS_PARAM in inspect.signature(export_audio).parameters


def _workflow_in_label(tags: dict[str, str]) -> dict[str, Any]:
    """Fallback while export_audio has no ``file_tags``: the workflow rides in the label's extra fields."""
    kept: dict[str, Any] = {}
    size = 0
    for name in ("prompt", *[n for n in tags if n != "prompt"]):
        if name not in tags:
            continue
        if size + len(tags[name]) > MAX_WORKFLOW_IN_LABEL:
            log.warning("Bark: the %s JSON (%d bytes) is too large for the label; this file is saved without it.",
                        name, len(tags[name]))
            continue
        kept[name] = json.loads(tags[name])
        size += len(tags[name])
    return {"comfyui": kept} if kept else {}


class BarkSaveLabelledAudio(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkSaveLabelledAudio",
            display_name="Bark Save Labelled Audio",
            category=CATEGORY,
            description="Saves AUDIO as WAV, FLAC, MP3 or OGG in ComfyUI's output folder, always through the "
                        "label stage: watermark plus AI-generated metadata (model, voice, seed, text hash, "
                        "review state, quality summary, voice rights) and the workflow. Unlabelled audio is "
                        "labelled here with the project key. Shows an audio player in the node.",
            is_output_node=True,
            inputs=[
                io.Audio.Input("audio", tooltip="Audio to save; Bark Label output keeps its key and settings."),
                io.String.Input("filename_prefix", default="audio/bark",
                                tooltip="Path under output/; ComfyUI's counter is appended (bark_00001_.flac). "
                                        "%batch_num% is replaced by the item number of a batch."),
                io.Combo.Input("format", options=list(FORMATS), default="flac",
                               tooltip="flac: lossless, compact. wav: 16-bit PCM, plays everywhere. mp3/ogg: "
                                       "small files (the watermark survives 64 kbit/s and up)."),
                io.Combo.Input("sample_rate", options=list(SAMPLE_RATES), default="keep",
                               tooltip="Resample on save; keep = the audio's own rate (24000 for Bark). MP3 "
                                       f"takes {', '.join(str(r) for r in MP3_RATES)} Hz."),
                io.Combo.Input("normalize", options=list(NORMALIZE), default="none",
                               tooltip="Level before the watermark: peak (to -1 dBFS by default), rms (to -20 "
                                       "dBFS) or lufs (loudness, to -16 LUFS: the usual target for speech on "
                                       "streaming and podcasts; needs 0.4 s or more). rms and lufs never clip. "
                                       "none keeps the level."),
                io.Float.Input("target_db", default=0.0, min=-60.0, max=0.0, step=0.5,
                               tooltip="Normalisation target (dBFS for peak/rms, LUFS for lufs); 0 = the mode's "
                                       "default (-1 peak, -20 rms, -16 lufs)."),
                io.Combo.Input("bitrate", options=list(BITRATES), default="default",
                               tooltip="MP3/OGG bitrate; default = 128k for MP3, quality 5 for OGG. Ignored "
                                       "for WAV/FLAC."),
                io.Boolean.Input("public", default=False,
                                 tooltip="For public use: refuse takes a person has not approved with Bark Review "
                                         "(or that were rejected). The file records the review either way."),
                io.Boolean.Input("label", default=True, label_on="on", label_off="OFF (debug only)",
                                 tooltip="Watermark and label metadata. Turn off only to study the raw codec "
                                         "output: the file then says nothing about being synthetic, and every "
                                         "such save is logged as a warning. Never publish unlabelled audio."),
            ],
            outputs=[io.String.Output(display_name="path", tooltip="Path of the saved file(s), one per line.")],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
        )

    @classmethod
    def execute(cls, audio: Any, filename_prefix: str = "audio/bark", format: str = "flac",
                sample_rate: str = "keep", normalize: str = "none", target_db: float = 0.0,
                bitrate: str = "default", public: bool = False, label: bool = True) -> io.NodeOutput:
        if format not in FORMATS:
            raise ParameterError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")
        if public and not label:
            raise LabelError("public=True with the label OFF: audio for public use must carry the watermark and "
                             "the AI-generated label. Turn the label on.")
        rate = None if sample_rate in ("keep", "", None) else int(sample_rate)
        tags = workflow_tags(cls)
        store = _comfy.review_dir()
        paths, ui = [], []
        for i in range(batch_size(audio)):
            _comfy.check_interrupt()
            art = from_comfy(audio, i)
            kwargs: dict[str, Any] = {}
            if label:
                lab = entry_for(audio, LABEL_KEY, art)
                meta = dict(lab["meta"]) if lab else label_meta(audio, art)
                kwargs = {"key": lab["key"] if lab else None,
                          "strength_db": lab["strength_db"] if lab else DEFAULT_STRENGTH_DB,
                          "include_text": lab["include_text"] if lab else False, **meta}
                report = quality_for(audio, art)  # the check a reviewer saw, else bark_core runs one
                kwargs["quality"] = "auto" if report is None else report
                if tags and _export_accepts_tags():
                    kwargs[WORKFLOW_TAGS_PARAM] = tags
                elif tags:
                    kwargs.update(_workflow_in_label(tags))
            path = _comfy.save_path(filename_prefix.replace("%batch_num%", str(i)), format)
            if not label:
                log.warning("Bark Save Labelled Audio: label OFF, %s is written WITHOUT watermark and WITHOUT "
                            "AI-generated metadata. Do not publish it.", path)
            path = export_audio(art, path, format=format, sample_rate=rate,
                                normalize=None if normalize == "none" else normalize,
                                target_db=None if target_db == 0 else float(target_db),
                                bitrate=None if bitrate == "default" else bitrate, overwrite=False, label=label,
                                public=public, review_store=store, **kwargs)
            log.info("Bark: saved %s audio %s to %s", "labelled" if label else "UNLABELLED", art.id, path)
            paths.append(str(path))
            ui.append(_comfy.output_ui_entry(path))
        return io.NodeOutput("\n".join(paths), ui={"audio": ui})


class BarkDetectWatermark(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkDetectWatermark",
            display_name="Bark Detect Watermark",
            category=CATEGORY,
            description="Checks whether an AUDIO carries bark_core's watermark for a key, e.g. a file loaded "
                        "with Load Audio after re-encoding or cropping. The score is a z-value; above the "
                        "threshold the chance of a false alarm is below one in ten thousand.",
            is_output_node=True,
            inputs=[
                io.Audio.Input("audio", tooltip="Any AUDIO: Bark output, Load Audio, a video's soundtrack."),
                key_input(),
            ],
            outputs=[
                io.Float.Output(display_name="score", tooltip="Detection z-score (unmarked audio: about 0-5)."),
                io.Boolean.Output(display_name="detected"),
                io.String.Output(display_name="summary"),
            ],
        )

    @classmethod
    def execute(cls, audio: Any, key: str = "") -> io.NodeOutput:
        _comfy.check_interrupt()
        art = one_clip(audio, "Bark Detect Watermark")
        found = detect(art, _key(key))
        kind = key_kind(_key(key))
        verdict = "DETECTED" if found.detected else "not detected"
        lines = [f"Watermark {verdict} ({kind} key): score {found.score:.1f}, threshold {found.threshold:.2f}, "
                 f"false-alarm bound {found.false_positive_bound:.0e}, p-value {found.p_value:.2g}, "
                 f"{found.duration_s:.2f} s analysed, scheme {found.scheme}."]
        if not found.detected:
            lines.append("No mark for this key: the audio is unmarked, marked with another key, or the mark was "
                         "removed (heavy filtering, speed change).")
        if art.provenance.stage == "label":
            lines.append("This AUDIO also carries Bark label metadata from Bark Label.")
        summary = " ".join(lines)
        return io.NodeOutput(float(found.score), bool(found.detected), summary, ui={"text": [summary]})


NODES = [BarkLabel, BarkSaveLabelledAudio, BarkDetectWatermark]
