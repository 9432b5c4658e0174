"""Bark Model Loader: where the weights come from, their size per stage, precision and device."""

from __future__ import annotations

from . import handle
from ._api import io
from .types import CATEGORY, Models

SIZE_TIP = ("{stage} model size for Suno's .pt checkpoints: large (best quality) or small (about 3x faster, "
            "less memory). Folders and transformers-format repos bring their own size.")


class BarkModelLoader(io.ComfyNode):
    """Makes the BARK_MODELS handle; weights load lazily when a stage first needs them."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkModelLoader",
            display_name="Bark Model Loader",
            category=CATEGORY,
            description="Chooses Bark's weights and where they run. Nothing loads until a stage needs its model; "
                        "ComfyUI's model manager then moves it to the GPU and frees it on 'Unload models'.",
            inputs=[
                io.Combo.Input("models", options=handle.model_choices(), default="suno",
                               tooltip="'suno': Suno's .pt files from the hub (downloaded on first use); "
                                       "'suno/bark-small', 'suno/bark': transformers-format hub repos; "
                                       f"'{handle.TINY_CHOICE}': an untrained set written into models/bark/tiny "
                                       "on first use, to check a graph offline (its audio is noise); other "
                                       "entries are model folders under ComfyUI's models/bark/."),
                io.Combo.Input("text_size", options=["large", "small"], default="large",
                               tooltip=SIZE_TIP.format(stage="Text (semantic)")),
                io.Combo.Input("coarse_size", options=["large", "small"], default="large",
                               tooltip=SIZE_TIP.format(stage="Coarse")),
                io.Combo.Input("fine_size", options=["large", "small"], default="large",
                               tooltip=SIZE_TIP.format(stage="Fine")),
                io.Combo.Input("precision", options=list(handle.PRECISIONS), default="auto",
                               tooltip="auto: bf16 on GPUs that support it, else fp32. fp16/bf16 halve memory; "
                                       "int8: int8 linear weights (a quarter of fp32's), the rest bf16."),
                io.Combo.Input("device", options=list(handle.DEVICES), default="auto",
                               tooltip="auto: ComfyUI's device (its --cpu/--gpu settings apply)."),
                io.Combo.Input("download_dir", options=list(handle.DOWNLOAD_DIRS), default=handle.DOWNLOAD_DIRS[0],
                               tooltip="Where hub weights are downloaded: ComfyUI's models/bark/hub, or the "
                                       "shared huggingface cache (reuses weights other tools downloaded)."),
                io.Boolean.Input("offline", default=False,
                                 tooltip="Never download: use only files already on disk, fail with a clear "
                                         "message otherwise."),
                io.Combo.Input("stage_cache", options=list(handle.STAGE_CACHES), default=handle.STAGE_CACHES[0],
                               tooltip="Bark's own stage cache, on top of ComfyUI's: a stage asked again with "
                                       "the same input, settings and seed returns its earlier result at once, "
                                       "even after ComfyUI freed its cache or in another graph. memory: in "
                                       "RAM for this session; disk: also in ComfyUI's temp folder (emptied at "
                                       "start); off: always recompute."),
            ],
            outputs=[Models.Output(display_name="models")],
        )

    @classmethod
    def execute(cls, models: str, text_size: str = "large", coarse_size: str = "large", fine_size: str = "large",
                precision: str = "auto", device: str = "auto", download_dir: str = handle.DOWNLOAD_DIRS[0],
                offline: bool = False, stage_cache: str = handle.STAGE_CACHES[0]) -> io.NodeOutput:
        h = handle.open_models(models, text_size=text_size, coarse_size=coarse_size, fine_size=fine_size,
                               precision=precision, device=device, download_dir=download_dir, offline=offline,
                               stage_cache_mode=stage_cache)
        return io.NodeOutput(h)


NODES = [BarkModelLoader]
