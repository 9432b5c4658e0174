"""ComfyUI nodes for bark_core: one node per Bark stage, voices, inspection and artifact files.

Thin by design: every node calls one bark_core function; generation logic lives in bark_core.
Importing this package is cheap and needs no ComfyUI; ``comfy_entrypoint`` imports the node
modules (which need ``comfy_api``) only when ComfyUI asks for them.
"""

from __future__ import annotations

from typing import Any

WEB_DIRECTORY = "./web"


async def comfy_entrypoint() -> Any:
    """ComfyUI's V3 entry point: returns the extension listing every Bark node."""
    from .extension import comfy_entrypoint as entry

    return await entry()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
