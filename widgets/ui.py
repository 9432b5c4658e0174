"""The studio's look, shared by every panel: state colours, CSS, and small widget helpers.

In one place so that the stage panels, the voice box and the review box draw badges, buttons and
messages the same way.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

STATE_STYLE = {  # badge text, colour, panel border
    "empty": ("not run yet", "#6b7280", "1px solid #d0d4da"),
    "fresh": ("up to date", "#15803d", "2px solid #16a34a"),
    "stale": ("STALE: settings changed, run again", "#b45309", "2px dashed #f59e0b"),
    "running": ("running…", "#1d4ed8", "2px solid #3b82f6"),
    "error": ("error", "#b91c1c", "2px solid #dc2626"),
    "cancelled": ("cancelled", "#b45309", "2px dashed #9ca3af"),
}
CSS = """<style>
.bark-studio .bark-stale img { opacity: 0.45; }
.bark-studio .bark-panel { padding: 6px; border-radius: 6px; }
.bark-studio pre.bark-qc { white-space: pre-wrap; font-size: 11px; line-height: 1.3; margin: 2px 0; }
.bark-studio .bark-msg-error { color: #b91c1c; white-space: pre-wrap; }
.bark-studio .bark-settings { columns: 2; column-gap: 16px; line-height: 1.35; }
</style>"""


def _style(width: str = "110px") -> dict[str, str]:
    return {"description_width": width}


def _full(**kw: Any) -> W.Layout:
    return W.Layout(width="100%", **kw)


def _cell() -> W.Layout:
    """A settings field inside a two-column grid cell: may shrink, never spills over the panel edge."""
    return W.Layout(width="auto", min_width="0")


def _button(text: str, cls: str, style: str = "", tooltip: str = "", icon: str = "", width: str = "auto") -> W.Button:
    b = W.Button(description=text, button_style=style, tooltip=tooltip or text, icon=icon,
                 layout=W.Layout(width=width))
    b.add_class(cls)
    return b


def _error_html(message: str) -> str:
    return f'<div class="bark-msg-error">⚠ {html.escape(message)}</div>'


def _note_html(message: str, colour: str = "#374151") -> str:
    return f'<div style="color:{colour}">{html.escape(message)}</div>'
