"""ComfyUI entry point when this repository is cloned into ``ComfyUI/custom_nodes/``.

Does nothing heavy at import: it makes ``bark_core`` importable from this checkout (when it was
not pip-installed) and hands ComfyUI the V3 entry point, which imports the nodes lazily. It is
not part of the ``bark_core`` package, so plain ``import bark_core`` and pytest never run it.
No ``NODE_CLASS_MAPPINGS``: it would take precedence over ``comfy_entrypoint``, and ComfyUI
versions without the V3 API (< 0.3.48) could not run these nodes anyway.
"""

import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("bark_core") is None and _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from .bark_nodes import comfy_entrypoint  # noqa: E402  (cheap: defers every heavy import)

WEB_DIRECTORY = "./bark_nodes/web"

__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
