"""Inspection and file utilities: Inspect (artifact -> IMAGE), Audio Info, Coarse Preview, save/load."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import torch

import bark_core
from bark_core import Artifact, ArtifactError, Audio, CoarseCodes, FineCodes, SemanticTokens
from bark_core.label import mark_output

from . import _comfy, files
from ._api import io
from .audio import audio_stats, from_comfy, to_comfy
from .handle import BarkHandle
from .types import CATEGORY, Coarse, Fine, Semantic, models_input, watermark_input

ARTIFACT_TYPES = [Semantic, Coarse, Fine]


def _as_artifact(value: Any) -> Artifact:
    if isinstance(value, Artifact):
        return value
    if isinstance(value, dict) and "waveform" in value:
        return from_comfy(value)
    raise ArtifactError(f"Nothing to inspect: expected a Bark artifact or AUDIO, got {type(value).__name__}.")


class BarkInspect(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkInspect",
            display_name="Bark Inspect",
            category=CATEGORY,
            description="Draws what a stage produced: semantic tokens over time, coarse/fine codebooks as a "
                        "heatmap, audio as waveform and spectrogram. Connect the image to Preview Image. The "
                        "summary lists the stage chain and which stages came from the stage cache.",
            inputs=[
                io.MultiType.Input("artifact", types=[*ARTIFACT_TYPES, io.Audio],
                                   tooltip="Any Bark artifact (semantic, coarse, fine) or any AUDIO."),
                io.Int.Input("width", default=960, min=256, max=4096, step=8, tooltip="Image width in pixels."),
                io.Int.Input("height", default=360, min=128, max=4096, step=8,
                             tooltip="Image height in pixels (audio draws two panels in this height x 2)."),
            ],
            outputs=[io.Image.Output(display_name="image"),
                     io.String.Output(display_name="summary", tooltip="The artifact's description as JSON: "
                                                                      "shape, duration, seed, settings, lineage, "
                                                                      "and each stage's cache_hit.")],
        )

    @classmethod
    def execute(cls, artifact: Any, width: int = 960, height: int = 360) -> io.NodeOutput:
        art = _as_artifact(artifact)
        if isinstance(art, Audio):
            height *= 2
        rgb = bark_core.render(art, width=width, height=height)
        image = torch.from_numpy(rgb.astype(np.float32) / 255.0)[None]
        return io.NodeOutput(image, json.dumps(summary(art), indent=2))


def summary(art: Artifact) -> dict[str, Any]:
    """The artifact's description plus its chain in memory, each stage with its stage-cache flag.

    ``cache_hit`` true means bark_core's stage cache (the loader's stage_cache setting) returned that
    stage's earlier result instead of running the model.
    """
    info = art.describe()
    chain = []
    node: Any = art
    while isinstance(node, Artifact):
        chain.append({"kind": node.KIND, "id": node.id, "stage": node.provenance.stage,
                      "cache_hit": bool(node.cache_hit)})
        node = node.parent
    info["chain"] = chain[::-1]
    info["cache_hits"] = sum(1 for c in chain if c["cache_hit"])
    return info


class BarkAudioInfo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkAudioInfo",
            display_name="Bark Audio Info",
            category=CATEGORY,
            description="Duration of any AUDIO in seconds and in video frames, to size a video generator's "
                        "output to the speech.",
            inputs=[
                io.Audio.Input("audio", tooltip="Any AUDIO (Bark Decode, Load Audio, ...)."),
                io.Float.Input("fps", default=24.0, min=1.0, max=240.0, step=0.001,
                               tooltip="Frame rate of the video to match."),
            ],
            outputs=[
                io.Float.Output(display_name="seconds"),
                io.Int.Output(display_name="frames", tooltip="ceil(seconds x fps): enough frames to cover the audio."),
                io.Int.Output(display_name="sample_rate"),
                io.Int.Output(display_name="samples"),
            ],
        )

    @classmethod
    def execute(cls, audio: Any, fps: float = 24.0) -> io.NodeOutput:
        seconds, samples, rate, _channels = audio_stats(audio)
        frames = math.ceil(round(seconds * fps, 6))
        return io.NodeOutput(float(seconds), int(frames), int(rate), int(samples))


class BarkCoarsePreview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkCoarsePreview",
            display_name="Bark Coarse Preview",
            category=CATEGORY,
            description="A quick, rough listen to coarse codes without running the fine stage: EnCodec "
                        "decodes the two coarse codebooks alone (muffled but timed like the final audio).",
            inputs=[models_input(), Coarse.Input("coarse", tooltip="Coarse codes to listen to."),
                    watermark_input("Bark Coarse Preview")],
            outputs=[io.Audio.Output(display_name="audio")],
        )

    @classmethod
    def execute(cls, models: BarkHandle, coarse: Any, watermark: bool = True) -> io.NodeOutput:
        with models.hinted() as m:
            preview = bark_core.decode_preview(m, coarse)
        return io.NodeOutput(to_comfy(mark_output(preview, watermark, where="Bark Coarse Preview")))


class BarkSaveArtifact(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkSaveArtifact",
            display_name="Bark Save Artifact",
            category=CATEGORY,
            description="Saves a stage artifact (tokens plus provenance) as .npz in ComfyUI's output folder, "
                        "e.g. to redo later stages without regenerating earlier ones. Copy it to input/ to "
                        "load it with the Bark Load nodes (files in output/ are listed there too).",
            is_output_node=True,
            inputs=[
                io.MultiType.Input("artifact", types=ARTIFACT_TYPES,
                                   tooltip="Semantic, coarse or fine artifact."),
                io.String.Input("filename_prefix", default="bark/take",
                                tooltip="Path under output/; ComfyUI's counter is appended "
                                        "(take_00001_.coarse.npz)."),
            ],
            outputs=[io.String.Output(display_name="path")],
        )

    @classmethod
    def execute(cls, artifact: Any, filename_prefix: str = "bark/take") -> io.NodeOutput:
        if not isinstance(artifact, (SemanticTokens, CoarseCodes, FineCodes)):
            raise ArtifactError(f"Bark Save Artifact takes semantic, coarse or fine artifacts, got "
                                f"{getattr(artifact, 'KIND', type(artifact).__name__)}.")
        path = _comfy.save_path(filename_prefix, f"{artifact.KIND}.npz")
        path = artifact.save(path, overwrite=False)
        _comfy.log.info("Bark: saved %s artifact %s to %s", artifact.KIND, artifact.id, path)
        return io.NodeOutput(str(path), ui={"text": [str(path)], "bark_files": [_comfy.output_ui_entry(path)]})


LOADER_KINDS = ("semantic", "coarse", "fine")  # the kinds the loader nodes below exist for


def _loader_hint(kind: str) -> str:
    """Where a file of ``kind`` can be loaded: only nodes that exist are named."""
    if kind in LOADER_KINDS:
        return f"Use Bark Load {kind.capitalize()} for it."
    return ("No Bark node loads that kind; for audio, write it as a .wav in Python "
            "(bark_core.save_wav(bark_core.load_artifact(path), 'take.wav')) and use ComfyUI's Load Audio node.")


def _make_loader(cls_name: str, kind_type: Any, art_cls: type[Artifact]) -> type[io.ComfyNode]:
    """One loader node per kind, so each output is typed (ComfyUI advises this over multi-output loaders)."""
    kind = art_cls.KIND

    @classmethod
    def define_schema(cls: Any) -> io.Schema:
        return io.Schema(
            node_id=cls_name,
            display_name=f"Bark Load {kind.capitalize()}",
            category=CATEGORY,
            description=f"Loads a saved {kind} artifact (.npz from Bark Save Artifact) from ComfyUI's input "
                        "folder (or output folder, tagged [output]).",
            inputs=[io.Combo.Input("file", options=files.artifact_choices(),
                                   tooltip=f"A {kind} .npz; press R to refresh the list after adding files.")],
            outputs=[kind_type.Output(display_name=kind)],
        )

    @classmethod
    def fingerprint_inputs(cls: Any, file: str) -> str:
        return files.file_fingerprint(file)

    @classmethod
    def execute(cls: Any, file: str) -> io.NodeOutput:
        art = bark_core.load_artifact(files.resolve_choice(file))
        if not isinstance(art, art_cls):
            raise ArtifactError(f"{file} holds a {art.KIND} artifact, not {kind}. {_loader_hint(art.KIND)}")
        return io.NodeOutput(art)

    return type(cls_name, (io.ComfyNode,), {
        "__doc__": f"Load a {kind} artifact .npz.", "__module__": __name__,
        "define_schema": define_schema, "fingerprint_inputs": fingerprint_inputs, "execute": execute,
    })


BarkLoadSemantic = _make_loader("BarkLoadSemantic", Semantic, SemanticTokens)
BarkLoadCoarse = _make_loader("BarkLoadCoarse", Coarse, CoarseCodes)
BarkLoadFine = _make_loader("BarkLoadFine", Fine, FineCodes)

NODES = [BarkInspect, BarkAudioInfo, BarkCoarsePreview, BarkSaveArtifact, BarkLoadSemantic, BarkLoadCoarse,
         BarkLoadFine]
