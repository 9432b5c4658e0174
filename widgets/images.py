"""PNG bytes for the studio's image widgets, drawn by ``bark_core.render``.

ipywidgets ``Image`` wants encoded bytes, and the core's renderer hands back RGB arrays so that it
stays free of any front end; this module is the small bridge (Pillow, which matplotlib already
needs). Placeholders are drawn without matplotlib so an empty studio appears instantly.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

PANEL_WIDTH = 560  # about the width a panel gets: text stays readable, not scaled down
PANEL_HEIGHT = 250
AUDIO_HEIGHT = 380


def png(rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 image (height, width, 3) as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def render_png(artifact: Any, *, width: int = PANEL_WIDTH, height: int | None = None,
               title: str | None = None) -> bytes:
    """The core's picture of a stage artifact (semantic plot, codebook heatmap, waveform+spectrogram)."""
    from bark_core import render

    if height is None:
        height = AUDIO_HEIGHT if getattr(artifact, "KIND", "") == "audio" else PANEL_HEIGHT
    return png(render(artifact, width=width, height=height, title=title))


def placeholder(text: str, *, width: int = PANEL_WIDTH, height: int = PANEL_HEIGHT) -> bytes:
    """A light panel saying what will appear here once the stage has run."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (244, 245, 247))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(208, 212, 218))
    try:
        box = draw.textbbox((0, 0), text)
        tw, th = box[2] - box[0], box[3] - box[1]
    except AttributeError:  # very old Pillow
        tw, th = 6 * len(text), 11
    draw.text(((width - tw) / 2, (height - th) / 2), text, fill=(120, 126, 135))
    return png(np.asarray(img))
