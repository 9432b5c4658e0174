"""The Jupyter studio: one ipywidgets 8 composite over a :class:`~bark_studio.session.Session`.

Plain ipywidgets (VBox/HBox/GridBox, Image, Audio, FileUpload), no custom JavaScript, so it renders
in JupyterLab 4 and Notebook 7 as installed. The widget only draws what the session reports and
forwards what the user does; every generation step, picture, check and file format comes from
``bark_core``. Long runs go to a background thread so the notebook stays live and Cancel can be
pressed; ``background=False`` runs in the caller's thread instead (tests, scripted notebooks).

The panels are built and drawn by mixins next door (``panels``, ``voice_panel``, ``review_panel``)
so that each box can be read on its own; this class binds settings, launches runs and routes the
session's events to them.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W

from bark_core import constants as C

from .panels import StagePanel, StagePanelsMixin
from .review_panel import ReviewPanelMixin
from .script_panel import ScriptPanel
from .script_state import ScriptDesk
from .session import STAGES, Session, StageResult, StudioError, StudioTake, error_message
from .ui import CSS, _button, _error_html, _full, _note_html, _style
from .ui import STATE_STYLE as STATE_STYLE  # re-exported: these were defined here before the split
from .voice_panel import NO_VOICE as NO_VOICE
from .voice_panel import VoicePanelMixin

log = logging.getLogger("bark_studio")


class Studio(VoicePanelMixin, StagePanelsMixin, ReviewPanelMixin, W.VBox):
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

    def _build(self, output_dir: str | os.PathLike, reviewer: str) -> None:
        s = self.session
        self.title = W.HTML()
        # ---- text, voice, models --------------------------------------------------------------
        self.text = self._bind("text", W.Textarea(placeholder="Text to speak; cues like [laughs] or ♪ work too",
                                                  rows=3, continuous_update=True, layout=_full()))
        voice_box = self._build_voice_box()
        self.model_source = self._bind("models", W.Combobox(
            description="models", options=["suno", "suno/bark-small", "suno/bark"], ensure_option=False,
            continuous_update=False, style=_style("50px"), layout=_full(),
            tooltip="'suno' (Suno's weights from the hub), a hub repo id, or a local model folder"))
        size = self._bind("size", W.Dropdown(description="size", options=["large", "small"], style=_style("32px"),
                                             layout=W.Layout(width="130px")))
        device = self._bind("device", W.Dropdown(description="device", options=["auto", "cpu", "cuda", "mps"],
                                                 style=_style("44px"), layout=W.Layout(width="140px")))
        dtype = self._bind("dtype", W.Dropdown(description="precision", options=list(C.PRECISION_CHOICES),
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

        # ---- stage panels (panels.py), quality and review (review_panel.py) ------------------------
        self._build_stage_panels()
        qc_box = self._build_review_box(reviewer)

        grid = W.GridBox([*(p.box for p in self.panels.values()), qc_box],
                         layout=W.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="8px",
                                         width="100%"))

        # ---- history, compare, save (review_panel.py) ----------------------------------------------
        history_box = self._build_history_box(output_dir)

        self.busy_buttons = [self.run_all_button, *self.run_buttons.values(), self.take_voice_button,
                             self.rec_button, self.save_artifacts_button, self.save_audio_button,
                             self.save_voice_button]
        # ---- the script desk (script_panel.py): a whole scene, one row per line ---------------------
        self.script_panel = ScriptPanel(ScriptDesk(self.session), reviewer=reviewer, background=self.background)
        script_box = W.Accordion(children=[self.script_panel], titles=("Script: dialogue and subtitles",))
        self.children = [W.HTML(CSS), self.title, W.HBox([text_box, voice_box]), run_bar, self.cache_info, grid,
                         history_box, script_box]
        self.add_class("bark-studio")
        self._refresh_voices()

    # ============================================================================ plain-Python API
    @property
    def script(self) -> ScriptDesk:
        """The script desk: ``studio.script.set(script=...)``, ``.run()``, ``.retake(n)``, ``.accept(n, ...)``."""
        return self.script_panel.desk

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


def _keys_of(stage: str) -> tuple[str, ...]:
    from .session import STAGE_KEYS

    return (*STAGE_KEYS[stage], *(("preview",) if stage == "coarse" else ()))


__all__ = ["Studio", "StagePanel"]
