"""The Jupyter studio: one ipywidgets 8 composite over a :class:`~bark_studio.session.Session`.

Plain ipywidgets (VBox/HBox/GridBox, Image, Audio, FileUpload), no custom JavaScript, so it renders
in JupyterLab 4 and Notebook 7 as installed. The widget only draws what the session reports and
forwards what the user does; every generation step, picture, check and file format comes from
``bark_core``. Long runs go to a background thread so the notebook stays live and Cancel can be
pressed; ``background=False`` runs in the caller's thread instead (tests, scripted notebooks).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W

from .images import AUDIO_HEIGHT, PANEL_HEIGHT, PANEL_WIDTH, placeholder, render_png
from .session import STAGES, TITLES, Session, StageResult, StudioError, StudioTake, error_message

log = logging.getLogger("bark_studio")

NO_VOICE = "none"
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


def _opt_float(v: Any) -> float:
    return 0.0 if v is None else float(v)


def _opt_int(v: Any) -> int:
    return 0 if v is None else int(v)


class StagePanel:
    """The widgets of one stage: header with state badge, settings, run button, progress, picture,
    figures, error line and audio players."""

    def __init__(self, stage: str, number: int, sliders: list[W.Widget], fields: list[W.Widget],
                 players: tuple[str, ...] = (), seed: bool = False):
        self.stage = stage
        self.badge = W.HTML()
        self.header = W.HTML(f"<b>{number} · {TITLES[stage]}</b>")
        self.run_button = _button(f"Run {stage}", f"bark-run-{stage}", tooltip=f"Run up to the {stage} stage "
                                  "(stale or missing stages before it run first, from the cache where possible)",
                                  icon="play")
        self.seed: W.Text | None = None
        self.dice: W.Button | None = None
        row: list[W.Widget] = [self.run_button]
        if seed:
            self.seed = W.Text(description="seed", continuous_update=False, style=_style("36px"),
                               layout=W.Layout(width="230px"))
            self.dice = _button("", f"bark-dice-{stage}", tooltip=f"Roll the dice: a new random seed for the "
                                f"{stage} stage", icon="random", width="42px")
            row += [self.seed, self.dice]
        self.progress = W.IntProgress(value=0, min=0, max=100, layout=W.Layout(width="60%"))
        self.progress_text = W.Label("")
        self.image = W.Image(value=placeholder(f"{TITLES[stage]}: not run yet",
                                               height=AUDIO_HEIGHT if stage == "decode" else PANEL_HEIGHT),
                             format="png", layout=_full(object_fit="contain"))
        self.image.add_class("bark-plot")
        self.info = W.HTML()
        self.error = W.HTML()
        self.players: dict[str, W.Audio] = {}
        self.player_boxes: list[W.Widget] = []
        for name in players:
            player = W.Audio(value=b"", format="wav", autoplay=False, loop=False, controls=True,
                             layout=W.Layout(width="98%"))
            player.add_class(f"bark-player-{name}")
            self.players[name] = player
            self.player_boxes.append(W.VBox([W.HTML(f"<small>{html.escape(_PLAYER_TITLES[name])}</small>"), player]))
        grid = W.GridBox(fields, layout=W.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="0 8px",
                                                 width="100%"))
        body: list[W.Widget] = [W.HBox([self.header, self.badge], layout=W.Layout(justify_content="space-between")),
                                *sliders, grid, W.HBox(row), W.HBox([self.progress, self.progress_text]),
                                self.error]
        if stage != "label":
            body.append(self.image)
        body += [self.info, *self.player_boxes]
        self.box = W.VBox(body, layout=W.Layout(width="auto", border=STATE_STYLE["empty"][2]))
        self.box.add_class("bark-panel")
        self.box.add_class(f"bark-panel-{stage}")
        self._last_pct = -1

    def show_state(self, state: str, error: str | None) -> None:
        text, colour, border = STATE_STYLE[state]
        self.badge.value = f'<span class="bark-state" style="color:{colour};font-weight:600">{text}</span>'
        self.box.layout.border = border
        for cls in ("bark-stale", "bark-fresh", "bark-empty", "bark-error", "bark-running", "bark-cancelled"):
            self.box.remove_class(cls)
        self.box.add_class(f"bark-{state}")
        self.error.value = _error_html(error) if error else ""

    def show_progress(self, done: int, total: int) -> None:
        pct = 100 if total <= 0 else int(100 * done / total)
        if pct == self._last_pct and done != total:
            return  # at most a hundred widget updates a stage, however many tokens it makes
        self._last_pct = pct
        self.progress.value = pct
        self.progress_text.value = f"{done} / {total}" if total > 1 else ("done" if done >= total else "")

    def reset_progress(self) -> None:
        self._last_pct = -1
        self.progress.value = 0
        self.progress_text.value = ""


_PLAYER_TITLES = {"preview": "Preview after coarse (2 codebooks, 1.5 kbps): is this take worth finishing?",
                  "decode": "Decoded audio (24 kHz)", "label": "Labelled audio (watermarked, as exported)"}


class Studio(W.VBox):
    """Run Bark stage by stage in a notebook: look at each stage, change a setting, re-run only what follows.

    ``models``: "suno" (Suno's weights from the hub), a hub repo id, a local folder (e.g.
    ``bark_core.tiny_model_dir()``, the untrained offline set) or a ready ``BarkModels``.
    ``background``: run stages in a thread so the notebook stays responsive (False: in the caller's
    thread). ``output_dir``: where the save buttons write. ``reviewer``: the name put in the review
    box. ``cache``/``review_store`` and the settings (``text=``, ``voice=``, ``seed=``,
    ``coarse_temp=`` ...) go to :class:`~bark_studio.session.Session`.

    Scripting: ``studio.run("coarse")``, ``studio.run_all()``, ``studio.set(coarse_temp=0.9)``,
    ``studio.takes[-1]``; these run in the caller's thread and raise the core's errors after showing them.
    """

    def __init__(self, models: Any = "suno", *, background: bool = True, output_dir: str | os.PathLike = "bark_takes",
                 reviewer: str = "", cache: Any = True, review_store: Any = None, **settings: Any):
        super().__init__()
        self.session = Session(models, cache=cache, review_store=review_store, **settings)
        self.background = background
        self._thread: threading.Thread | None = None
        self._syncing = False
        self._lock = threading.RLock()
        self.controls: dict[str, W.ValueWidget] = {}
        self._converters: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {}
        self.selected: int | None = None
        self._shown_error: str | None = None
        self._build(output_dir, reviewer)
        self.session.subscribe(self._on_event)
        self._sync_widgets(self.session.settings)
        self._refresh_states()
        self._refresh_header()

    # ================================================================================ building
    def _bind(self, key: str, widget: W.ValueWidget, to_widget: Callable[[Any], Any] = lambda v: v,
              from_widget: Callable[[Any], Any] = lambda v: v) -> W.ValueWidget:
        self.controls[key] = widget
        self._converters[key] = (to_widget, from_widget)
        widget.add_class(f"bark-set-{key}")
        widget.observe(lambda change, key=key: self._widget_changed(key, change["new"]), names="value")
        return widget

    def _slider(self, key: str, desc: str, lo: float, hi: float, step: float, tip: str) -> W.FloatSlider:
        w = W.FloatSlider(description=desc, min=lo, max=hi, step=step, readout_format=".2f", continuous_update=False,
                          style=_style(), layout=_full(), tooltip=tip)
        return self._bind(key, w, _opt_float, lambda v: v)

    def _build(self, output_dir: str | os.PathLike, reviewer: str) -> None:
        from bark_core.rights import COMMON_RIGHTS

        s = self.session
        self.title = W.HTML()
        # ---- text, voice, models --------------------------------------------------------------
        self.text = self._bind("text", W.Textarea(placeholder="Text to speak; cues like [laughs] or ♪ work too",
                                                  rows=3, continuous_update=True, layout=_full()))
        self.language = W.Dropdown(description="voice", style=_style("40px"), layout=W.Layout(width="48%"))
        self.speaker = W.Dropdown(layout=W.Layout(width="50%"))
        self.language.add_class("bark-voice-language")
        self.speaker.add_class("bark-voice-speaker")
        self.language.observe(self._language_changed, names="value")
        self.speaker.observe(self._speaker_changed, names="value")
        self.voice_upload = W.FileUpload(accept=".npz", multiple=False, description="Upload .npz voice",
                                         layout=W.Layout(width="auto"))
        self.voice_upload.observe(self._voice_uploaded, names="value")
        self.take_voice_button = _button("Use last take as voice", "bark-take-voice", icon="user",
                                         tooltip="The last take with fine codes becomes the voice of the next clip")
        self.take_voice_button.on_click(lambda _b: self._action(self._voice_box_msg, s.voice_from_take))
        # voice from a recording: consent first
        self.rec_upload = W.FileUpload(accept="audio/*,.wav,.mp3,.flac,.ogg", multiple=False,
                                       description="Recording", layout=W.Layout(width="auto"))
        self.rec_who = W.Text(description="who", placeholder="the speaker (or rights holder)", style=_style("60px"),
                              layout=_full())
        self.rec_right = W.Combobox(description="right", options=list(COMMON_RIGHTS), ensure_option=False,
                                    placeholder="own voice, written consent, licensed…", style=_style("60px"),
                                    layout=_full())
        self.rec_when = W.Text(description="when", value=_dt.date.today().isoformat(), placeholder="YYYY-MM-DD",
                               style=_style("60px"), layout=_full())
        self.rec_evidence = W.Text(description="evidence", placeholder="where the consent form/licence is kept",
                                   style=_style("60px"), layout=_full())
        self.rec_button = _button("Make voice from recording", "bark-audio-voice", icon="microphone",
                                  tooltip="Partial voice clone; the rights record travels into every label")
        self.rec_button.on_click(lambda _b: self._action(self._voice_box_msg, self._voice_from_recording))
        rec_box = W.VBox([W.HTML("<small>A voice made from someone's recording imitates a real person: say whose "
                                 "voice it is and on what basis it may be used (consent or licence).</small>"),
                          self.rec_upload, self.rec_who, self.rec_right, self.rec_when, self.rec_evidence,
                          self.rec_button])
        self.rec_accordion = W.Accordion([rec_box], titles=("Voice from a recording (needs consent)",),
                                         selected_index=None)
        self.voice_info = W.HTML()
        self.voice_info.add_class("bark-voice-info")
        self.voice_msg = W.HTML()
        voice_box = W.VBox([W.HBox([self.language, self.speaker]),
                            W.HBox([self.voice_upload, self.take_voice_button]), self.rec_accordion,
                            self.voice_info, self.voice_msg], layout=W.Layout(width="50%"))
        self.model_source = self._bind("models", W.Combobox(
            description="models", options=["suno", "suno/bark-small", "suno/bark"], ensure_option=False,
            continuous_update=False, style=_style("50px"), layout=_full(),
            tooltip="'suno' (Suno's weights from the hub), a hub repo id, or a local model folder"))
        size = self._bind("size", W.Dropdown(description="size", options=["large", "small"], style=_style("32px"),
                                             layout=W.Layout(width="130px")))
        device = self._bind("device", W.Dropdown(description="device", options=["auto", "cpu", "cuda", "mps"],
                                                 style=_style("44px"), layout=W.Layout(width="140px")))
        dtype = self._bind("dtype", W.Dropdown(description="precision", options=["auto", "fp32", "fp16", "bf16"],
                                               style=_style("60px"), layout=W.Layout(width="150px")))
        offload = self._bind("offload", W.Checkbox(description="offload idle stages to CPU", indent=False,
                                                   layout=W.Layout(width="200px")))
        models_row = W.HBox([size, device, dtype, offload], layout=W.Layout(flex_flow="row wrap"))
        text_box = W.VBox([W.HTML("<b>Text</b>"), self.text, self.model_source, models_row],
                          layout=W.Layout(width="50%"))

        # ---- run bar ----------------------------------------------------------------------------
        self.run_all_button = _button("Run all", "bark-run-all", "success", icon="forward",
                                      tooltip="Text to labelled audio; unchanged stages come from the cache")
        self.cancel_button = _button("Cancel", "bark-cancel", "danger", icon="stop", tooltip="Stop the running stage")
        self.cancel_button.disabled = True
        self.seed_text = W.Text(description="seed", continuous_update=False, style=_style("36px"),
                                layout=W.Layout(width="170px"),
                                tooltip="One seed for all stages, derived as bark_core.generate(seed=...) does")
        self.seed_text.add_class("bark-master-seed")
        self.dice_button = _button("", "bark-dice", tooltip="Roll the dice: a new random seed for every stage",
                                   icon="random", width="42px")
        self.status = W.HTML()
        self.status.add_class("bark-status")
        self.cache_info = W.HTML()
        self.cache_info.add_class("bark-cache-info")
        self.run_all_button.on_click(lambda _b: self._launch("label"))
        self.cancel_button.on_click(lambda _b: self.session.cancel())
        self.dice_button.on_click(lambda _b: self._action(self._status_error, s.reroll))
        self.seed_text.observe(self._master_seed_changed, names="value")
        run_bar = W.HBox([self.run_all_button, self.cancel_button, self.seed_text, self.dice_button, self.status],
                         layout=W.Layout(align_items="center", flex_flow="row wrap"))

        # ---- stage panels -------------------------------------------------------------------------
        def temp(stage: str) -> W.FloatSlider:
            return self._slider(f"{stage}_temp", "temperature", 0.0, 2.0, 0.05,
                                "Sampling temperature; 0 takes the most likely token (argmax)")

        def top_k(stage: str) -> W.BoundedIntText:
            return self._bind(f"{stage}_top_k", W.BoundedIntText(description="top-k (0 off)", min=0, max=10_000,
                                                                 style=_style(), layout=_cell()),
                              _opt_int, lambda v: v)

        def top_p(stage: str) -> W.BoundedFloatText:
            return self._bind(f"{stage}_top_p", W.BoundedFloatText(description="top-p (0 off)", min=0.0, max=1.0,
                                                                   step=0.05, style=_style(), layout=_cell()),
                              _opt_float, lambda v: v)

        sem_sliders = [
            temp("semantic"),
            self._slider("min_eos_p", "min EOS prob.", 0.0, 1.0, 0.01,
                         "Stop when the end-of-speech probability reaches this (0: Suno's argmax rule)"),
        ]
        sem_settings = [
            top_k("semantic"), top_p("semantic"),
            self._bind("max_gen_duration_s", W.BoundedFloatText(description="max s (0 off)", min=0.0, max=60.0,
                                                                step=0.5, style=_style(), layout=_cell()),
                       _opt_float, lambda v: v),
            self._bind("allow_early_stop", W.Checkbox(description="allow early stop", indent=False)),
        ]
        coarse_sliders = [
            temp("coarse"),
            self._bind("max_coarse_history", W.IntSlider(description="history (tokens)", min=60, max=630, step=10,
                                                         continuous_update=False, style=_style(),
                                                         layout=_full())),
        ]
        coarse_settings = [
            top_k("coarse"), top_p("coarse"),
            self._bind("sliding_window_len", W.BoundedIntText(description="window", min=1, max=708, style=_style(),
                                                              layout=_cell())),
            self._bind("preview", W.Checkbox(description="preview after coarse", indent=False)),
        ]
        fine_sliders = [temp("fine")]
        label_settings = [self._bind("include_text", W.Checkbox(description="store the text itself in the label "
                                                                "(else only its SHA-256)", indent=False,
                                                                layout=_full()))]
        self.panels: dict[str, StagePanel] = {
            "semantic": StagePanel("semantic", 1, sem_sliders, sem_settings, seed=True),
            "coarse": StagePanel("coarse", 2, coarse_sliders, coarse_settings, players=("preview",), seed=True),
            "fine": StagePanel("fine", 3, fine_sliders, [], seed=True),
            "decode": StagePanel("decode", 4, [], [], players=("decode",)),
            "label": StagePanel("label", 5, label_settings, [], players=("label",)),
        }
        self.run_buttons = {stage: p.run_button for stage, p in self.panels.items()}
        for stage, panel in self.panels.items():
            panel.run_button.on_click(lambda _b, stage=stage: self._launch(stage))
            if panel.seed is not None:
                self._bind(f"{stage}_seed", panel.seed, str, lambda v: v)
                panel.dice.on_click(lambda _b, stage=stage: self._action(self._status_error, s.reroll, stage))

        # ---- quality and review of the selected take ----------------------------------------------
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

        grid = W.GridBox([*(p.box for p in self.panels.values()), qc_box],
                         layout=W.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="8px",
                                         width="100%"))

        # ---- history, compare, save ---------------------------------------------------------------
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

        self.busy_buttons = [self.run_all_button, *self.run_buttons.values(), self.take_voice_button,
                             self.rec_button, self.save_artifacts_button, self.save_audio_button,
                             self.save_voice_button]
        self.children = [W.HTML(CSS), self.title, W.HBox([text_box, voice_box]), run_bar, self.cache_info, grid,
                         history_box]
        self.add_class("bark-studio")
        self._refresh_voices()

    # ============================================================================ plain-Python API
    @property
    def takes(self) -> list[StudioTake]:
        """Every take so far, oldest first."""
        return self.session.takes

    @property
    def settings(self) -> dict[str, Any]:
        return self.session.settings

    def set(self, **settings: Any) -> Studio:
        """Change settings by name (``studio.set(coarse_temp=0.9)``); affected stages turn stale."""
        self.session.set(**settings)
        return self

    def run(self, stage: str = "label") -> StudioTake:
        """Run up to ``stage`` in this thread (missing or stale stages before it first); returns the take."""
        return self.session.run(stage)

    def run_all(self) -> StudioTake:
        """Text to labelled audio, in this thread."""
        return self.session.run_all()

    def cancel(self) -> None:
        self.session.cancel()

    def state(self, stage: str) -> str:
        """"empty", "fresh", "stale", "running" or "error"."""
        return self.session.state(stage)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background run started by a button; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def results(self) -> dict[str, StageResult]:
        """The latest result of each stage (fresh or stale: see :meth:`state`)."""
        return self.session.results

    def take(self, which: StudioTake | int | None = None) -> StudioTake:
        """A take by its number, or the last one."""
        return self.session.take(which)

    def reroll(self, stage: str | None = None) -> int:
        """The dice: a new seed for one stage, or for all of them."""
        return self.session.reroll(stage)

    def preview(self) -> Any:
        """Decode the current coarse codes alone (listen before the fine stage)."""
        return self.session.preview()

    def add_voice(self, voice: Any, *, select: bool = True) -> str:
        """A ``bark_core.Voice`` as a picker entry; returns its key."""
        return self.session.add_voice(voice, select=select)

    def add_voice_file(self, source: Any, *, name: str | None = None, select: bool = True) -> str:
        """A ``.npz`` voice (path or uploaded bytes) as a picker entry; returns its key."""
        return self.session.add_voice_file(source, name=name, select=select)

    def voice_from_take(self, take: StudioTake | int | None = None, *, select: bool = True) -> str:
        """A take (default: the last with fine codes) as the voice of the next clip."""
        return self.session.voice_from_take(take, select=select)

    def voice_from_audio(self, audio: Any, **rights_and_names: Any) -> str:
        """A voice from a recording; needs ``who=``, ``right=`` and ``when=`` (the speaker's consent)."""
        return self.session.voice_from_audio(audio, **rights_and_names)

    def approve(self, take: StudioTake | int | None = None, *, reviewer: str, note: str = "") -> Any:
        """Record a human approval of the take's audio (see ``bark_core.review``)."""
        return self.session.approve(take, reviewer=reviewer, note=note)

    def reject(self, take: StudioTake | int | None = None, *, reviewer: str, note: str = "") -> Any:
        """Record a human rejection of the take's audio, with the reason in ``note``."""
        return self.session.reject(take, reviewer=reviewer, note=note)

    def review(self, take: StudioTake | int | None = None) -> Any:
        """The review decision that applies to the take's audio."""
        return self.session.review(take)

    def save_take(self, take: StudioTake | int | None = None, folder: str | os.PathLike | None = None,
                  **what: Any) -> list[Path]:
        """Save a take's artifacts/audio (labelled)/voice; ``folder`` defaults to the folder box."""
        return self.session.save_take(take, self.save_folder.value if folder is None else folder, **what)

    def compare(self, a: StudioTake | int, b: StudioTake | int) -> dict[str, Any]:
        """Show two takes side by side; returns the settings that differ and both takes."""
        return self.show_compare(self.session.take(a).number, self.session.take(b).number)

    # ============================================================================ user actions
    def _launch(self, stage: str) -> None:
        """A run button: run in the background (or inline) and show any failure; never raise."""
        if self.session.busy:
            self._status_error(StudioError("A run is in progress; wait for it or press Cancel."))
            return
        self._shown_error = None
        self._set_busy(True)

        def work() -> None:
            try:
                self.session.run(stage)
            except BaseException as exc:  # shown, never raised into the notebook
                if error_message(exc) != self._shown_error:  # stage errors are on screen already
                    self._status_error(exc)
            finally:
                self._set_busy(self.session.busy)

        if self.background:
            self._thread = threading.Thread(target=work, name=f"bark-studio-{stage}", daemon=True)
            self._thread.start()
        else:
            work()

    def _action(self, show_error: Callable[[BaseException], None], fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            show_error(exc)
            return None

    def _status_error(self, exc: BaseException) -> None:
        self.status.value = _error_html(error_message(exc))

    def _voice_box_msg(self, exc: BaseException) -> None:
        self.voice_msg.value = _error_html(error_message(exc))

    def _compare_error(self, exc: BaseException) -> None:
        self.compare_msg.value = _error_html(error_message(exc))

    def _widget_changed(self, key: str, value: Any) -> None:
        if self._syncing:
            return
        _, from_widget = self._converters[key]
        stage = next((s for s in STAGES if key in _keys_of(s)), None)
        try:
            self.session.set(**{key: from_widget(value)})
        except Exception as exc:
            msg = _error_html(error_message(exc))
            if stage is not None and stage in self.panels:
                self.panels[stage].error.value = msg
            else:
                self.status.value = msg

    def _master_seed_changed(self, change: dict) -> None:
        if self._syncing or not str(change["new"]).strip():
            return
        self._action(self._status_error, lambda: self.session.set(seed=change["new"]))

    def _language_changed(self, change: dict) -> None:
        if self._syncing:
            return
        options = self._speaker_options(change["new"])
        with self._quiet():
            self.speaker.options = options
            self.speaker.value = options[0][1]
        self._action(self._voice_box_msg, lambda: self.session.set(voice=options[0][1]))

    def _speaker_changed(self, change: dict) -> None:
        if self._syncing or change["new"] is None:
            return
        self.voice_msg.value = ""
        self._action(self._voice_box_msg, lambda: self.session.set(voice=change["new"]))

    def _voice_uploaded(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        self.voice_msg.value = ""
        try:
            self._action(self._voice_box_msg, lambda: self.session.add_voice_file(bytes(f["content"]), name=f["name"]))
        finally:
            self.voice_upload.value = ()  # so the same file can be chosen again

    def _voice_from_recording(self) -> str:
        files = self.rec_upload.value
        if not files:
            raise StudioError("Choose a recording first (WAV, FLAC, MP3 or OGG), then fill in who, right and when.")
        f = files[0]
        return self.session.voice_from_audio(bytes(f["content"]), filename=f["name"], who=self.rec_who.value,
                                             right=self.rec_right.value, when=self.rec_when.value,
                                             evidence=self.rec_evidence.value or None)

    def _review(self, what: str) -> None:
        def go() -> None:
            if self.selected is None:
                raise StudioError("There is no take to review yet; run through decode first.")
            fn = self.session.approve if what == "approve" else self.session.reject
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
        if self._syncing or change["new"] is None:
            return
        self.selected = change["new"]
        self._show_take()

    # ============================================================================ drawing
    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Widget updates made here are the studio's own echo of the session: do not send them back."""
        with self._lock:
            prev, self._syncing = self._syncing, True
            try:
                yield
            finally:
                self._syncing = prev

    def _on_event(self, event: str, **data: Any) -> None:
        """Session events, possibly from the worker thread: redraw what they concern."""
        stage = data.get("stage")
        if event == "settings":
            self._sync_widgets(data["changed"])
            self._refresh_states()
        elif event == "busy":
            self._set_busy(data["busy"])
            self._refresh_states()
        elif event == "run":
            self.status.value = _note_html(f"Running up to {stage}…", "#1d4ed8")
        elif event == "stage":
            self.panels[stage].reset_progress()
            self.status.value = _note_html(f"Running {stage}…", "#1d4ed8")
            self._refresh_states()
        elif event == "progress":
            self.panels[stage].show_progress(data["done"], data["total"])
        elif event == "result":
            self._show_result(stage, data["result"])
            self._refresh_states()
        elif event == "error":
            self._shown_error = data["message"]
            self.status.value = _error_html(f"{stage}: {data['message']}")
            self.panels[stage].reset_progress()
            self._refresh_states()
        elif event == "message":
            self.status.value = _note_html(data["text"], "#1d4ed8")
        elif event == "done":
            take = data["take"]
            self.status.value = _note_html(f"Done: take #{take.number} up to {stage} in {data['seconds']:.1f} s.",
                                           "#15803d")
            self._refresh_cache_info()
        elif event == "take":
            self._refresh_history(select=data["take"].number)
        elif event == "voices":
            self.voice_msg.value = ""
            self._refresh_voices()
        elif event == "review":
            self._refresh_history(select=self.selected)

    def _set_busy(self, busy: bool) -> None:
        for b in self.busy_buttons:
            b.disabled = busy
        self.cancel_button.disabled = not busy

    def _sync_widgets(self, values: dict[str, Any]) -> None:
        with self._quiet():
            for key, value in values.items():
                if key == "voice":
                    self._show_voice(value)
                    continue
                widget = self.controls.get(key)
                if widget is None:
                    continue
                to_widget, _ = self._converters[key]
                try:
                    if isinstance(widget, W.Dropdown) and to_widget(value) not in widget.options:
                        widget.options = [*widget.options, to_widget(value)]  # e.g. device "cuda:1"
                    widget.value = to_widget(value)
                except Exception:  # e.g. a value outside a slider's range: the session keeps the true value
                    log.debug("studio: cannot show %s=%r", key, value, exc_info=True)
            if any(k.endswith("_seed") for k in values):
                self.seed_text.value = "" if self.session.seed is None else str(self.session.seed)
            if "models" in values:
                self.model_source.value = str(values["models"])
        if set(values) & {"models", "size", "device", "dtype", "offload"}:
            self._refresh_header()

    def _refresh_states(self) -> None:
        for stage, panel in self.panels.items():
            panel.show_state(self.session.state(stage), self.session.error(stage))

    def _refresh_header(self) -> None:
        s = self.session.settings
        note = ""
        try:
            models = self.session.models()
            if models.untrained:
                note = (' <span style="color:#b45309">· UNTRAINED tiny model set: everything runs, the audio is '
                        'noise. Use models="suno" for real speech.</span>')
        except Exception as exc:
            note = " " + _error_html(error_message(exc))
        self.title.value = (f'<div style="font-size:15px"><b>Bark studio</b> <small>models '
                            f'<code>{html.escape(str(s["models"]))}</code> · {s["size"]} · {s["device"]} · '
                            f'{s["dtype"]}</small>{note}</div>')

    def _refresh_cache_info(self) -> None:
        stats = self.session.cache_stats()
        if not stats:
            self.cache_info.value = "<small>stage cache: off</small>"
            return
        per = ", ".join(f"{k} {v['hits']}/{v['hits'] + v['misses']}" for k, v in stats["by_stage"].items())
        self.cache_info.value = (f"<small>stage cache: {stats['hits']} hits, {stats['misses']} misses"
                                 f"{' (' + per + ' hits)' if per else ''}</small>")

    def _image_of(self, result: StageResult, key: str = "main", width: int = PANEL_WIDTH) -> bytes:
        if key not in result.images:
            result.images[key] = render_png(result.artifact, width=width)
        return result.images[key]

    def _show_result(self, stage: str, result: StageResult) -> None:
        panel = self.panels[stage]
        if stage != "label":
            panel.image.value = self._image_of(result)
        info = html.escape(result.summary())
        if result.warnings:
            info += "".join(f'<div style="color:#b45309">⚠ {html.escape(w)}</div>' for w in result.warnings)
        if stage == "label":
            review = result.artifact.provenance.settings.get("label", {}).get("review", {})
            info += f"<br><small>review recorded in the label: {html.escape(str(review.get('human_review')))}</small>"
        panel.info.value = f"<small>{info}</small>"
        if stage == "coarse":
            panel.players["preview"].value = b"" if result.preview is None else result.preview.to_wav_bytes()
        elif stage in ("decode", "label"):
            panel.players[stage].value = result.artifact.to_wav_bytes()

    def _speaker_options(self, group: str) -> list[tuple[str, str]]:
        if group == NO_VOICE:
            return [("(no voice prompt)", NO_VOICE)]
        return self.session.voice_choices().get(group, []) or [("(none)", NO_VOICE)]

    def _refresh_voices(self) -> None:
        groups = self.session.voice_choices()
        with self._quiet():
            self.language.options = [("No voice", NO_VOICE), *((g, g) for g in groups)]
        self._show_voice(self.session.settings["voice"])

    def _show_voice(self, key: str | None) -> None:
        groups = self.session.voice_choices()
        group = NO_VOICE if key is None else next((g for g, items in groups.items() if any(k == key for _, k in items)),
                                                  None)
        if group is None:  # not a picker entry (cannot happen through Session.set); show "no voice"
            group, key = NO_VOICE, None
        with self._quiet():
            self.language.value = group
            self.speaker.options = self._speaker_options(group)
            self.speaker.value = NO_VOICE if key is None else key
        self.voice_info.value = self._voice_html(key)

    def _voice_html(self, key: str | None) -> str:
        if key is None:
            return "<small>No voice prompt: Bark picks a random speaker for each take.</small>"
        try:
            info = self.session.voice_info(key)
        except Exception as exc:
            return _error_html(error_message(exc))
        kind = info.get("kind")
        if kind == "preset":
            return (f"<small>Voice <b>{html.escape(str(key))}</b>: a Suno preset (from the hub, or the model "
                    "folder's voices/). Rights record: not needed for built-in presets.</small>")
        rows = [f"<b>{html.escape(str(info.get('name', key)))}</b> ({html.escape(str(kind))}, "
                f"{info.get('seconds', '?')} s, id {html.escape(str(info.get('voice_id', '')))})"]
        rights = info.get("rights")
        if rights:
            rows.append("Rights record: " + "; ".join(f"{k} <b>{html.escape(str(v))}</b>" for k, v in rights.items()
                                                      if k != "schema"))
        elif kind == "generated":
            rows.append(f"Made from a generated take (seed {info.get('seed')}); no rights record needed.")
        else:
            rows.append("Rights record: none in the file.")
        return "<small>" + "<br>".join(rows) + "</small>"

    def _refresh_history(self, select: int | None = None) -> None:
        takes = self.session.takes
        options = [(self._take_title(t), t.number) for t in reversed(takes)]
        with self._quiet():
            self.history.options = options
            self.compare_a.options = options
            self.compare_b.options = options
            if select is not None:
                self.history.value = select
            if len(takes) >= 2:
                self.compare_a.value = takes[-2].number
                self.compare_b.value = takes[-1].number
        if select is not None:
            self.selected = select
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
                    player = W.Audio(value=art.to_wav_bytes(), format="wav", autoplay=False,
                                     layout=W.Layout(width="98%"))
                    player.add_class(f"bark-compare-player-{name}")
                    parts += [W.HTML(f"<small>{name}</small>"), player]
            for stage in ("semantic", "coarse", "fine", "decode"):
                res = take.results.get(stage)
                if res is not None:
                    parts.append(W.Image(value=self._image_of(res), format="png", layout=_full(object_fit="contain")))
            col = W.VBox(parts, layout=W.Layout(width="50%", border="1px solid #d0d4da", padding="4px"))
            columns.append(col)
        self.compare_box.children = columns
        return result


def _keys_of(stage: str) -> tuple[str, ...]:
    from .session import STAGE_KEYS

    return (*STAGE_KEYS[stage], *(("preview",) if stage == "coarse" else ()))


def _short(value: Any, key: str = "") -> str:
    if value is None:
        text = "argmax" if key.endswith("_temp") else "none" if key == "voice" else "off"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


__all__ = ["Studio", "StagePanel"]
