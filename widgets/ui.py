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
    "invalid": ("INVALID input: fix it to run", "#b91c1c", "2px dashed #dc2626"),
}
CSS = """<style>
.bark-studio, .bark-studio * { box-sizing: border-box; }
.bark-studio .bark-stale .bark-result, .bark-studio .bark-error .bark-result,
.bark-studio .bark-cancelled .bark-result, .bark-studio .bark-invalid .bark-result { opacity: 0.4; }
.bark-studio .bark-panel { padding: 6px; border-radius: 6px; min-width: 0; overflow: hidden; }
.bark-studio .bark-panel > *, .bark-studio .bark-grid > *, .bark-studio .widget-hbox > *,
.bark-studio .widget-vbox > * { min-width: 0; max-width: 100%; }
.bark-studio .widget-checkbox { width: auto; }
.bark-studio .widget-hbox { flex-wrap: wrap; }
.bark-studio select[multiple], .bark-studio select[size] { overflow-x: hidden; }
.bark-studio select option { overflow: hidden; text-overflow: ellipsis; }
.bark-studio .jupyter-button, .bark-studio .widget-upload { flex-shrink: 0; }
.bark-studio .widget-inline-hbox .widget-label { flex-shrink: 0; }
.bark-studio .widget-text input, .bark-studio .widget-dropdown select { min-width: 0; }
.bark-studio .bark-field-invalid input { border: 2px solid #dc2626; background: #fef2f2; }
.bark-studio .bark-plot img, .bark-studio img.bark-plot { max-width: 100%; height: auto; }
.bark-studio pre.bark-qc { white-space: pre-wrap; font-size: 11px; line-height: 1.3; margin: 2px 0; }
.bark-studio .bark-msg-error { color: #b91c1c; white-space: pre-wrap; }
.bark-studio .bark-settings { columns: 2; column-gap: 16px; line-height: 1.35; }
</style>"""


def _style(width: str = "110px") -> dict[str, str]:
    return {"description_width": width}


def _full(**kw: Any) -> W.Layout:
    """As wide as the box (the CSS below keeps ipywidgets' margins inside that width)."""
    return W.Layout(width="auto", max_width="100%", min_width="0", **kw)


def _cell(width: str = "auto") -> W.Layout:
    """A field inside a grid cell or a wrapping row: may shrink, never spills over the box's edge."""
    return W.Layout(width=width, min_width="0", max_width="100%")


def _button(text: str, cls: str, style: str = "", tooltip: str = "", icon: str = "", width: str = "auto") -> W.Button:
    b = W.Button(description=text, button_style=style, tooltip=tooltip or text, icon=icon,
                 layout=W.Layout(width=width))
    b.add_class(cls)
    return b


def close_tree(widget: W.Widget) -> None:
    """Close a replaced widget, its children and their layouts and styles: the kernel keeps every
    widget until it is closed, whatever the page shows."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    for part in ("layout", "style"):
        sub = getattr(widget, part, None)
        if isinstance(sub, W.Widget):
            sub.close()
    widget.close()


def _error_html(message: str) -> str:
    return f'<div class="bark-msg-error">⚠ {html.escape(message)}</div>'


def _note_html(message: str, colour: str = "#374151") -> str:
    return f'<div style="color:{colour}">{html.escape(message)}</div>'
