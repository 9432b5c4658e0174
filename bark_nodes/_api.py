"""The one place the pack imports ComfyUI's node API from.

``comfy_api.latest`` is what ComfyUI's own nodes import (as ``IO``/``io``). The versioned modules
(``comfy_api.v0_0_2`` ...) only re-export it, and none is declared stable yet (``STABLE = False``
in 0.3.64 and 0.38.x), so pinning one would protect nothing. If a release renames or moves
something, the fix belongs here, not in every node module.
"""

from comfy_api.latest import ComfyExtension, io

__all__ = ["ComfyExtension", "io"]
