"""The ComfyExtension that registers every Bark node (ComfyUI's V3 entry point)."""

from __future__ import annotations

from . import (
    _comfy,
    nodes_label,
    nodes_longform,
    nodes_models,
    nodes_review,
    nodes_script,
    nodes_stages,
    nodes_tools,
    nodes_voice,
)
from ._api import ComfyExtension, io


def node_list() -> list[type[io.ComfyNode]]:
    """All node classes, in menu order."""
    return [*nodes_models.NODES, *nodes_voice.NODES, *nodes_stages.NODES, *nodes_longform.NODES,
            *nodes_script.NODES, *nodes_label.NODES, *nodes_review.NODES, *nodes_tools.NODES]


class BarkExtension(ComfyExtension):
    async def on_load(self) -> None:
        _comfy.register_folders()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return node_list()


async def comfy_entrypoint() -> BarkExtension:
    _comfy.register_folders()
    return BarkExtension()
