"""Quality, review, history, compare and save: the boxes that look at one finished take.

Apart from the stage panels because they follow the take picked in the history
(``Studio.selected``), not the session's latest stage results.
"""

from __future__ import annotations

import html
import os
from typing import Any

import ipywidgets as W

from bark_core.label import labelled_wav_bytes

from .settings import StudioError, error_message
from .takes import StudioTake
from .ui import STATE_STYLE, _button, _error_html, _full, _note_html, _style, close_tree


class ReviewPanelMixin:
    """The take boxes' part of :class:`~bark_studio.studio.Studio`; the actions themselves are the
    session's (``approve``, ``reject``, ``save_take``, ``compare``)."""

    def _build_review_box(self, reviewer: str) -> W.VBox:
        self.qc_title = W.HTML("<b>6 · Quality &amp; review</b>")
        self.quality = W.HTML(_note_html("Run through decode to get the quality report.", "#6b7280"))
        self.quality.add_class("bark-quality")
        self.reviewer = W.Text(value=reviewer, description="reviewer", placeholder="your name",
                               style=_style("60px"), layout=_full())
        self.review_note = W.Textarea(description="note", placeholder="what you heard", rows=2,
                                      style=_style("60px"), layout=_full())
        self.approve_button = _button("Approve", "bark-approve", "success", icon="check")
        self.reject_button = _button("Reject", "bark-reject", "warning", icon="times")
        self.approve_button.on_click(lambda _b: self._review("approve"))
        self.reject_button.on_click(lambda _b: self._review("reject"))
        self.review_info = W.HTML()
        self.review_info.add_class("bark-review-state")
        qc_box = W.VBox([self.qc_title, self.quality, self.reviewer, self.review_note,
                         W.HBox([self.approve_button, self.reject_button]), self.review_info],
                        layout=W.Layout(width="auto", border=STATE_STYLE["empty"][2]))
        qc_box.add_class("bark-panel")
        qc_box.add_class("bark-panel-quality")
        return qc_box

    def _build_history_box(self, output_dir: str | os.PathLike) -> W.VBox:
        self.history = W.Select(options=[], rows=6, layout=W.Layout(width="45%"))
        self.history.add_class("bark-history")
        self.history.observe(self._history_selected, names="value")
        self.take_details = W.HTML()
        self.compare_a = W.Dropdown(description="A", style=_style("16px"), layout=W.Layout(width="260px"))
        self.compare_b = W.Dropdown(description="B", style=_style("16px"), layout=W.Layout(width="260px"))
        self.compare_button = _button("Compare", "bark-compare", icon="columns")
        self.compare_button.on_click(lambda _b: self._action(self._compare_error, self.show_compare))
        self.compare_box = W.HBox([])
        self.compare_box.add_class("bark-compare-view")
        self.compare_msg = W.HTML()
        self.save_folder = W.Text(value=os.fspath(output_dir), description="folder", style=_style("46px"),
                                  layout=W.Layout(width="320px"))
        self.save_format = W.Dropdown(options=["wav", "flac", "mp3", "ogg"], value="wav", layout=W.Layout(width="80px"))
        self.save_overwrite = W.Checkbox(description="overwrite", indent=False, layout=W.Layout(width="100px"))
        self.save_artifacts_button = _button("Save artifacts", "bark-save-artifacts", icon="save")
        self.save_audio_button = _button("Save audio (labelled)", "bark-save-audio", icon="file-audio-o")
        self.save_voice_button = _button("Save voice", "bark-save-voice", icon="user")
        self.save_artifacts_button.on_click(lambda _b: self._save(artifacts=True))
        self.save_audio_button.on_click(lambda _b: self._save(audio=True))
        self.save_voice_button.on_click(lambda _b: self._save(voice=True))
        self.save_msg = W.HTML()
        self.save_msg.add_class("bark-save-msg")
        history_box = W.VBox([
            W.HTML("<b>History</b> <small>(every take with its settings; select one to check, review or save "
                   "it)</small>"),
            W.HBox([self.history, self.take_details]),
            W.HBox([self.save_folder, self.save_format, self.save_overwrite, self.save_artifacts_button,
                    self.save_audio_button, self.save_voice_button], layout=W.Layout(flex_flow="row wrap")),
            self.save_msg,
            W.HTML("<b>Compare two takes</b>"),
            W.HBox([self.compare_a, self.compare_b, self.compare_button]), self.compare_msg, self.compare_box,
        ])
        return history_box

    def _compare_error(self, exc: BaseException) -> None:
        self.compare_msg.value = _error_html(error_message(exc))

    def _reviewer_name(self) -> str:
        # who reviews stays (the person at the keyboard); what they noted belongs to one take only
        return self._reviewer

    def _recorded_review(self, take: StudioTake) -> Any:
        if take.audio is None:
            return None
        try:
            review = self.session.review(take)
        except Exception:
            return None
        return review if review.state in ("approved", "rejected") else None

    def _review(self, what: str) -> None:
        def go() -> None:
            if self.selected is None:
                raise StudioError("There is no take to review yet; run through decode first.")
            fn = self.session.approve if what == "approve" else self.session.reject
            self._reviewer = self.reviewer.value
            fn(self.selected, reviewer=self.reviewer.value, note=self.review_note.value)

        self._action(lambda exc: setattr(self.review_info, "value", _error_html(error_message(exc))), go)

    def _save(self, **what: bool) -> None:
        def go() -> None:
            if self.selected is None:
                raise StudioError("There is no take to save yet; run a stage first.")
            paths = self.session.save_take(self.selected, self.save_folder.value, audio_format=self.save_format.value,
                                           overwrite=self.save_overwrite.value, artifacts=what.get("artifacts", False),
                                           audio=what.get("audio", False), voice=what.get("voice", False))
            self.save_msg.value = "Saved: " + ", ".join(f"<code>{html.escape(str(p))}</code>" for p in paths)

        self.save_msg.value = ""
        self._action(lambda exc: setattr(self.save_msg, "value", _error_html(error_message(exc))), go)

    def _history_selected(self, change: dict) -> None:
        if self._syncing or change["new"] is None or change["new"] == self.session.selected:
            return

        def failed(exc: BaseException) -> None:
            self.save_msg.value = _error_html(error_message(exc))
            with self._quiet():
                self.history.value = self.session.selected  # the list shows the take that is on screen

        self._action(failed, self.session.select, change["new"])

    def _refresh_history(self) -> None:
        takes = self.session.takes
        options = [(self._take_title(t), t.number) for t in reversed(takes)]
        with self._quiet():
            if list(self.history.options) != options:
                self.history.options = options
                self.compare_a.options = options
                self.compare_b.options = options
                if len(takes) >= 2:
                    self.compare_a.value = takes[-2].number
                    self.compare_b.value = takes[-1].number
            self.history.value = self.session.selected
        self._show_take()

    def _take_title(self, take: StudioTake) -> str:
        state = ""
        if take.audio is not None:
            try:
                state = " · " + self.session.review(take).state
            except Exception:
                state = ""
        return take.title() + state

    def _show_take(self) -> None:
        if self.selected is None:
            return
        take = self.session.take(self.selected)
        if getattr(self, "_review_shown", None) != take.number:  # another take: its own review, or empty fields
            self._review_shown = take.number
            review = self._recorded_review(take)
            with self._quiet():
                self.reviewer.value = review.reviewer if review is not None and review.reviewer else (
                    self._reviewer_name())
                self.review_note.value = review.note if review is not None and review.note else ""
        rows = "".join(f"<div>{html.escape(k)} = <b>{html.escape(_short(v, k))}</b></div>"
                       for k, v in take.relevant_settings().items())
        self.take_details.value = (f"<small><b>Take #{take.number}</b> ({', '.join(take.stages)})"
                                   f'<div class="bark-settings">{rows}</div></small>')
        self.qc_title.value = f"<b>6 · Quality &amp; review</b> · take #{take.number}"
        if take.quality is None:
            self.quality.value = _note_html("Run this take through decode to get its quality report.", "#6b7280")
            self.review_info.value = ""
            return
        self.quality.value = f'<pre class="bark-qc">{html.escape(take.quality.to_text())}</pre>'
        try:
            review = self.session.review(take)
        except Exception as exc:
            self.review_info.value = _error_html(error_message(exc))
            return
        colour = {"approved": "#15803d", "rejected": "#b91c1c"}.get(review.state, "#6b7280")
        who = f" by {html.escape(review.reviewer)} at {html.escape(str(review.time))}" if review.reviewer else ""
        note = f": “{html.escape(review.note)}”" if review.note else ""
        self.review_info.value = (f'<span style="color:{colour};font-weight:600">{review.state.upper()}</span>'
                                  f"{who}{note}")

    def show_compare(self, a: int | None = None, b: int | None = None) -> dict[str, Any]:
        """Two takes side by side (players, pictures, differing settings); returns the comparison."""
        a = self.compare_a.value if a is None else a
        b = self.compare_b.value if b is None else b
        if a is None or b is None:
            raise StudioError("Pick two takes (A and B) to compare; make a second take first.")
        result = self.session.compare(a, b)
        self.compare_msg.value = ""
        diff = result["differences"]
        columns = []
        for side in ("a", "b"):
            take: StudioTake = result[side]
            i = 0 if side == "a" else 1
            diff_html = "".join(f"<div>{html.escape(k)} = <b>{html.escape(_short(v[i], k))}</b></div>"
                                for k, v in diff.items()) or "<div>same settings</div>"
            parts: list[W.Widget] = [W.HTML(f"<b>{side.upper()}: take #{take.number}</b><small>{diff_html}</small>")]
            for name, art in (("preview", take.preview), ("decode", take.audio), ("label", take.labelled)):
                if art is not None:
                    player = W.Audio(value=labelled_wav_bytes(art), format="wav", autoplay=False,
                                     layout=W.Layout(width="98%"))
                    player.add_class(f"bark-compare-player-{name}")
                    parts += [W.HTML(f"<small>{name}</small>"), player]
            for stage in ("semantic", "coarse", "fine", "decode"):
                res = take.results.get(stage)
                if res is not None:
                    parts.append(W.Image(value=self._image_of(res), format="png", layout=_full(object_fit="contain")))
            col = W.VBox(parts, layout=W.Layout(flex="1 1 0", min_width="0", border="1px solid #d0d4da",
                                                padding="4px"))
            columns.append(col)
        old = self.compare_box.children
        self.compare_box.children = columns
        for widget in old:  # the front end drops them; the kernel must too
            close_tree(widget)
        return result


def _short(value: Any, key: str = "") -> str:
    if value is None:
        text = "argmax" if key.endswith("_temp") else "none" if key == "voice" else "off"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
