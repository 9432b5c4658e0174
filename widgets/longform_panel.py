"""The long-text box: continuity, chunk size and gap, a run button, and one player per chunk.

Apart from the stage panels because a long text is many takes at once; the work is
``Session.run_long`` (``bark_core.generate_long``), this box only draws what it reports.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from bark_core.label import labelled_wav_bytes

from .longform_state import continuity_modes, long_settings
from .ui import _button, _cell, _error_html, _full, _note_html, _style, close_tree

_CONTINUITY_HELP = {"fixed": "every chunk uses the chosen voice",
                    "carry": "each chunk speaks with the voice of the one before (one speaker, drifting)",
                    "reset": "carries the voice, but returns to the chosen one every few chunks (less drift)"}


class LongPanelMixin:
    """The long-text box of :class:`~bark_studio.studio.Studio`."""

    def _build_long_box(self) -> W.VBox:
        d = long_settings()
        self.long_continuity = W.Dropdown(description="continuity", style=_style("72px"), layout=_cell("230px"),
                                          options=[(f"{m}: {_CONTINUITY_HELP.get(m, m)}", m)
                                                   for m in continuity_modes()], value=d["continuity"])
        self.long_reset_every = W.BoundedIntText(value=d["reset_every"], min=1, max=1000, description="reset every",
                                                 style=_style("80px"), layout=_cell("150px"))
        self.long_gap = W.BoundedFloatText(value=d["gap_s"], min=0.0, max=10.0, step=0.05, description="gap (s)",
                                           style=_style("56px"), layout=_cell("130px"))
        self.long_max_chars = W.BoundedIntText(value=d["max_chars"], min=20, max=2000, description="chunk chars",
                                               style=_style("80px"), layout=_cell("160px"))
        self.long_button = _button("Run long text", "bark-run-long", "success", icon="forward",
                                   tooltip="Split the text into sentence-sized chunks and speak each (Cancel stops)")
        self.long_button.on_click(lambda _b: self._launch_long())
        self.long_status = W.HTML()
        self.long_status.add_class("bark-long-status")
        self.long_chunks = W.VBox([])
        self.long_chunks.add_class("bark-long-chunks")
        return W.VBox([
            W.HTML("<small>Texts longer than one generation (about 14 s of speech): the text above is split at "
                   "sentence ends and each chunk is a take of its own, with the voice, seed and stage settings "
                   "above.</small>"),
            W.Box([self.long_continuity, self.long_reset_every, self.long_gap, self.long_max_chars],
                  layout=W.Layout(display="flex", flex_flow="row wrap")),
            W.HBox([self.long_button]), self.long_status, self.long_chunks], layout=_full())

    def _launch_long(self) -> None:
        self._launch_work("long", lambda: self.session.run_long(
            continuity=self.long_continuity.value, reset_every=self.long_reset_every.value,
            gap_s=self.long_gap.value, max_chars=self.long_max_chars.value), self._long_error)

    def _long_error(self, exc: BaseException) -> None:
        from .settings import error_message

        self.long_status.value = _error_html(error_message(exc))

    def _on_long_event(self, event: str, **data: Any) -> None:
        if event == "long_start":
            self.long_status.value = _note_html(f"Starting (master seed {data['seed']})…", "#1d4ed8")
        elif event == "long_progress":
            self.long_status.value = _note_html(
                f"chunk {data['chunk']} of {data['chunks']} · {data['stage']} {data['done']}/{data['total']}",
                "#1d4ed8")
        elif event == "long":
            self._show_long(data["long"], data.get("message"))

    def _show_long(self, long: Any, message: str | None) -> None:
        rows: list[W.Widget] = []
        if long is not None:
            for i, (chunk, take) in enumerate(zip(long.chunks, long.takes, strict=False)):
                seed = long.seeds[i] if i < len(long.seeds) else None
                voice = long.voices_used[i] if i < len(long.voices_used) else None
                player = W.Audio(value=labelled_wav_bytes(take.audio), format="wav", autoplay=False,
                                 layout=_full())
                player.add_class("bark-long-player")
                rows.append(W.VBox([W.HTML(f"<small><b>chunk {i + 1}</b> · {take.audio.duration_s:.1f} s · seed "
                                           f"{seed} · voice {html.escape(str(voice or 'none'))}<br>"
                                           f"“{html.escape(chunk)}”</small>"), player]))
            if long.audio is not None:
                joined = W.Audio(value=labelled_wav_bytes(long.audio), format="wav", autoplay=False, layout=_full())
                joined.add_class("bark-long-joined")
                rows.insert(0, W.VBox([W.HTML(f"<small><b>All {len(long.takes)} chunks joined</b> · "
                                              f"{long.audio.duration_s:.1f} s</small>"), joined]))
        old = self.long_chunks.children
        self.long_chunks.children = rows
        for widget in old:  # replaced widgets are closed in the kernel too
            close_tree(widget)
        if message:
            self.long_status.value = _error_html(message)
        elif long is not None:
            self.long_status.value = _note_html(f"Done: {len(long.takes)} chunks, {long.audio.duration_s:.1f} s "
                                                f"(master seed {long.seed}).", "#15803d")
