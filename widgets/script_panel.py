"""The studio's script panel: a script and voice map in, a per-line table out (listen, scores, accept, reject,
retake one line), the scene player and the SRT of what was placed. It draws what the
:class:`~bark_studio.script_state.ScriptDesk` reports and forwards clicks to it."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as W

from .script_state import ScriptDesk
from .settings import error_message
from .ui import _button, _error_html, _full, _note_html, _style, close_tree

VERDICT_COLOUR = {True: "#15803d", False: "#b45309"}


class LineRow:
    """One line of the table: its scores, a player and the three actions."""

    def __init__(self, panel: ScriptPanel, row: dict[str, Any]):
        self.number = row["line"]
        self.player = W.Audio(value=panel.desk.line_wav(self.number), format="wav", autoplay=False, loop=False,
                              layout=W.Layout(width="220px", height="32px"))
        self.accept_button = _button("Accept", "bark-script-accept", "success", icon="check", width="84px",
                                     tooltip="Record that you listened and this take is fit for use")
        self.reject_button = _button("Reject", "bark-script-reject", "danger", icon="times", width="84px",
                                     tooltip="Record that this take must not be used")
        self.retake_button = _button("Retake", "bark-script-retake", icon="refresh", width="84px",
                                     tooltip="Make new candidates for this line (new seeds) and keep the best")
        self.accept_button.on_click(lambda _b: panel._review(panel.desk.accept, self.number))
        self.reject_button.on_click(lambda _b: panel._review(panel.desk.reject, self.number))
        self.retake_button.on_click(lambda _b: panel._launch(panel.desk.retake, self.number))
        wer = "n/a" if row["wer"] is None else f"{row['wer']:.2f}"
        sim = "n/a" if row["similarity"] is None else f"{row['similarity']:.2f}"
        colour = VERDICT_COLOUR[bool(row["passed"])]
        self.info = W.HTML(
            f"<b>{self.number}</b> {html.escape(str(row['speaker']))}: {html.escape(row['text'][:70])}<br>"
            f"<small>tries {row['tries']} · WER {wer} · similarity {sim} · {row['duration_s']:.2f} s · "
            f"<span style='color:{colour}'>{html.escape(row['verdict'])}</span> · review <b>{row['review']}</b>"
            "</small>", layout=W.Layout(width="52%"))
        self.box = W.HBox([self.info, self.player, self.accept_button, self.reject_button, self.retake_button],
                          layout=W.Layout(align_items="center", border_bottom="1px solid #e5e7eb"))
        self.box.add_class("bark-script-row")


class ScriptPanel(W.VBox):
    """Script in, scene out, one row per line. ``background``: run in a thread (False: in the caller's)."""

    def __init__(self, desk: ScriptDesk, *, reviewer: str = "", background: bool = True):
        super().__init__()
        self.desk = desk
        self.background = background
        self._thread: threading.Thread | None = None
        self.rows: dict[int, LineRow] = {}
        s = desk.settings
        self.script = W.Textarea(value=s["script"], rows=8, layout=_full(),
                                 placeholder="Alice: Hello there. [pause 0.5s] How are you?\n[Bob] Fine! [laughs]\n"
                                             "(or paste .srt / .vtt subtitles)")
        self.voices = W.Textarea(value=s["voices"], rows=3, layout=_full(),
                                 placeholder='Alice = "v2/en_speaker_9"\nBob = "v2/en_speaker_6"')
        self.seed = W.IntText(value=int(s["seed"]), description="seed", style=_style("36px"),
                              layout=W.Layout(width="150px"))
        self.tries = W.BoundedIntText(value=int(s["tries"]), min=1, max=20, description="tries",
                                      style=_style("36px"), layout=W.Layout(width="120px"))
        self.max_duration = W.BoundedFloatText(value=float(s["max_duration_s"]), min=0.0, max=15.4, step=0.1,
                                               description="max s", style=_style("44px"),
                                               layout=W.Layout(width="140px"))
        self.reviewer = W.Text(value=reviewer, description="reviewer", style=_style("60px"),
                               layout=W.Layout(width="220px"))
        self.run_button = _button("Render script", "bark-script-run", "success", icon="play",
                                  tooltip="Every line through the retake loop, then one timeline")
        self.status = W.HTML()
        self.progress = W.IntProgress(value=0, min=0, max=1000, layout=W.Layout(width="240px"))
        self.table = W.VBox()
        self.table.add_class("bark-script-table")
        self.scene_player = W.Audio(format="wav", autoplay=False, loop=False, layout=_full())
        self.scene_box = W.VBox([W.HTML("<b>Scene</b>")])  # the player joins once there is a scene to play
        self.srt = W.Textarea(rows=6, layout=_full(), disabled=True)
        self.run_button.on_click(lambda _b: self._launch(self._run))
        controls = W.HBox([self.seed, self.tries, self.max_duration, self.reviewer, self.run_button, self.progress],
                          layout=W.Layout(flex_flow="row wrap", align_items="center"))
        self.children = [W.HTML("<b>Script</b> <small>'Speaker: text' lines, [pause 0.8s], a --- header with "
                                "[voices]; or SRT/WebVTT cues</small>"), self.script,
                         W.HTML("<b>Voices</b> <small>(TOML; overrides the header)</small>"), self.voices, controls,
                         self.status, self.table, self.scene_box,
                         W.HTML("<b>SRT as placed</b>"), self.srt]
        self.add_class("bark-script-panel")
        desk.subscribe(self._on_event)

    # ---- actions ------------------------------------------------------------------------------
    def _run(self) -> Any:
        self.desk.set(script=self.script.value, voices=self.voices.value, seed=int(self.seed.value),
                      tries=int(self.tries.value), max_duration_s=float(self.max_duration.value))
        return self.desk.run()

    def _action(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self.status.value = _error_html(error_message(exc))
            return None

    def _review(self, fn: Callable[..., Any], number: int) -> Any:
        return self._action(fn, number, reviewer=self.reviewer.value)

    def _launch(self, fn: Callable[..., Any], *args: Any) -> None:
        def work() -> None:
            self._action(fn, *args)

        if self.background:
            self._thread = threading.Thread(target=work, name="bark-studio-script", daemon=True)
            self._thread.start()
        else:
            work()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # ---- drawing ------------------------------------------------------------------------------
    def _on_event(self, event: str, **data: Any) -> None:
        if event == "busy":
            self.run_button.disabled = data["busy"]
            for row in self.rows.values():
                row.retake_button.disabled = data["busy"]
        elif event == "progress":
            width = 1000 / max(1, data["lines"])
            frac = data["done"] / data["total"] if data["total"] else 0.0
            self.progress.value = int((data["line"] - 1) * width + width * frac)
            self.status.value = _note_html(f"line {data['line']}/{data['lines']}, try {data['attempt']}/"
                                           f"{data['tries']}: {data['stage']}", "#1d4ed8")
        elif event == "error":
            self.status.value = _error_html(data["message"])
        elif event in ("done", "line"):
            self.refresh()

    def refresh(self) -> None:
        """Redraw the table, the scene player and the SRT from the desk."""
        prod = self.desk.production
        if prod is None:
            return
        rows = self.desk.rows()
        old = list(self.rows.values())
        self.rows = {r["line"]: LineRow(self, r) for r in rows}
        self.table.children = [r.box for r in self.rows.values()]
        for row in old:  # the kernel keeps every widget until it is closed, shown or not
            close_tree(row.box)
        self.scene_player.value = self.desk.scene_wav()
        self.scene_box.children = (self.scene_box.children[0], self.scene_player)
        self.srt.value = prod.srt
        self.progress.value = self.progress.max
        passed = sum(r["passed"] for r in rows)
        self.status.value = _note_html(f"{passed}/{len(rows)} lines passed · scene {prod.audio.duration_s:.2f} s · "
                                       f"ASR {prod.engines.get('asr')} · speaker model {prod.engines.get('speaker')}",
                                       "#15803d" if passed == len(rows) else "#b45309")
