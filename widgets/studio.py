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
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as W

from .longform_panel import LongPanelMixin
from .panels import StagePanel, StagePanelsMixin
from .review_panel import ReviewPanelMixin
from .script_panel import ScriptPanel
from .script_state import ScriptDesk
from .session import Session, StageResult, StudioError, StudioTake, error_message
from .settings import decoder_choices, precision_choices
from .stream_player import StreamPanelMixin
from .ui import CSS, _button, _cell, _error_html, _full, _note_html, _style
from .ui import STATE_STYLE as STATE_STYLE  # re-exported: these were defined here before the split
from .voice_panel import NO_VOICE as NO_VOICE
from .voice_panel import VoicePanelMixin

log = logging.getLogger("bark_studio")


class Studio(VoicePanelMixin, StagePanelsMixin, ReviewPanelMixin, LongPanelMixin, StreamPanelMixin, W.VBox):
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
        self._jobs: queue.SimpleQueue | None = None
        self._idle = threading.Event()  # set while no background run is queued or running
        self._idle.set()
        self._pending = 0
        self._syncing = False
        self._lock = threading.RLock()
        self.controls: dict[str, W.ValueWidget] = {}
        self._converters: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {}
        self._shown_error: str | None = None
        self._reviewer = reviewer
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

        def pick(key: str, desc: str, options: Any, label_width: str, tip: str) -> W.Dropdown:
            return self._bind(key, W.Dropdown(description=desc, options=list(options), style=_style(label_width),
                                              layout=_cell(width="150px"), tooltip=tip))

        size = pick("size", "size", ["large", "small"], "32px", "Suno's large or small checkpoints")
        device = pick("device", "device", ["auto", "cpu", "cuda", "mps"], "44px", "Where the stages run")
        dtype = pick("dtype", "precision", precision_choices(), "60px",
                     "How the weights are stored and computed (bark_core's precisions)")
        decoder = pick("decoder", "decoder", decoder_choices(), "60px",
                       "The token loop: fast (static cache, CUDA), eager (reference), auto picks by device")
        offload = self._bind("offload", W.Checkbox(description="offload idle stages to CPU", indent=False,
                                                   layout=_cell(width="200px")))
        models_row = W.Box([size, device, dtype, decoder, offload],
                           layout=W.Layout(display="flex", flex_flow="row wrap", width="100%"))
        text_box = W.VBox([W.HTML("<b>Text</b>"), self.text, self.model_source, models_row],
                          layout=W.Layout(flex="1 1 0", min_width="0"))

        # ---- run bar ----------------------------------------------------------------------------
        self.run_all_button = _button("Run all", "bark-run-all", "success", icon="forward",
                                      tooltip="Text to labelled audio; unchanged stages come from the cache")
        self.cancel_button = _button("Cancel", "bark-cancel", "danger", icon="stop", tooltip="Stop the running stage")
        self.cancel_button.disabled = True
        self.seed_text = W.Text(description="seed", continuous_update=False, style=_style("36px"),
                                layout=W.Layout(width="150px"),
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
                         layout=W.Layout(grid_template_columns="repeat(2, minmax(0, 1fr))", grid_gap="8px"))
        grid.add_class("bark-grid")

        # ---- history, compare, save (review_panel.py) ----------------------------------------------
        history_box = self._build_history_box(output_dir)
        long_box = W.Accordion(children=[self._build_long_box()], titles=("Long text: chunk by chunk",),
                               selected_index=None)
        stream_box = W.Accordion(children=[self._build_stream_box()], titles=("Stream: first audio early",),
                                 selected_index=None)

        self.busy_buttons = [self.run_all_button, *self.run_buttons.values(), self.take_voice_button,
                             self.rec_button, self.save_artifacts_button, self.save_audio_button,
                             self.save_voice_button, self.long_button, self.stream_button]
        # ---- the script desk (script_panel.py): a whole scene, one row per line ---------------------
        self.script_panel = ScriptPanel(ScriptDesk(self.session), reviewer=reviewer, background=self.background)
        script_box = W.Accordion(children=[self.script_panel], titles=("Script: dialogue and subtitles",))
        self.children = [W.HTML(CSS), self.title, W.HBox([text_box, voice_box], layout=W.Layout(grid_gap="8px")),
                         run_bar, self.cache_info, grid, history_box, long_box, stream_box, script_box]
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
        """"empty", "fresh", "stale", "running", "error", "cancelled" or "invalid"."""
        return self.session.state(stage)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background runs started by buttons; True when none is running any more."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        if self._jobs is not None:
            self._jobs.put(None)  # the worker thread ends after the run in progress
        super().close()

    def _worker(self) -> None:
        """One thread for every background run: a new thread per run would give the allocator a new
        arena each time, and the kernel's memory would grow with the number of runs."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

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
        self._launch_work(stage, lambda: self.session.run(stage), self._status_error)

    def run_long(self, **options: Any) -> Any:
        """A long text chunk by chunk, in this thread (see ``Session.run_long``); returns the LongTake."""
        return self.session.run_long(**options)

    def _launch_work(self, name: str, job: Callable[[], Any], show_error: Callable[[BaseException], None]) -> None:
        if self.session.busy:
            show_error(StudioError("A run is in progress; wait for it or press Cancel."))
            return
        self._shown_error = None
        self._set_busy(True)

        def work() -> None:
            try:
                job()
            except BaseException as exc:  # shown, never raised into the notebook
                if error_message(exc) != self._shown_error:  # stage errors are on screen already
                    show_error(exc)
            finally:
                self._set_busy(self.session.busy)

        if self.background:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._worker, name="bark-studio-worker", daemon=True)
                self._thread.start()
            with self._lock:
                self._pending += 1
                self._idle.clear()
            self._jobs.put(work)
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

    def _clear_status_error(self) -> None:
        """A changed setting may be the fix: the run's old error goes (a stage's own error stays in its
        panel for as long as its settings are those that failed)."""
        if "bark-msg-error" in self.status.value:
            self.status.value = ""

    def _widget_changed(self, key: str, value: Any) -> None:
        if self._syncing:
            return
        _, from_widget = self._converters[key]
        try:
            value = from_widget(value)
        except Exception as exc:  # kept as invalid input: the session blocks the stage until it is fixed
            value = f"{value} ({error_message(exc)})"
        self.session.enter(key, value)

    def _master_seed_changed(self, change: dict) -> None:
        if self._syncing:
            return
        if not str(change["new"]).strip() and "seed" not in self.session.invalid_inputs():
            self._sync_widgets(self._seed_values())  # an emptied field shows the seed in use again
            return
        self.session.enter("seed", change["new"])

    @property
    def selected(self) -> int | None:
        """The number of the take on screen (panels, players, pictures, review)."""
        return self.session.selected

    @selected.setter
    def selected(self, number: int | None) -> None:
        if number is not None and number != self.session.selected:
            self.session.select(number)

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
            self._clear_status_error()
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
            if data.get("text"):
                self.status.value = _note_html(data["text"], "#1d4ed8")
        elif event == "loading":
            self.status.value = _note_html(data["text"], "#1d4ed8")
        elif event == "invalid":
            self._show_invalid(data["keys"])
            self._refresh_states()
            if not self.session.invalid_inputs():
                self._clear_status_error()
        elif event == "selected":
            self._show_results()
            self._refresh_history()
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
            self._refresh_history()
        elif event == "voices":
            self.voice_msg.value = ""
            self._refresh_voices()
        elif event == "review":
            self._refresh_history()
        elif event.startswith("long"):
            self._on_long_event(event, **data)
        elif event.startswith("stream"):
            self._on_stream_event(event, **data)

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
                typed = self.session.typed("seed")
                self.seed_text.value = typed if typed is not None else (
                    "" if self.session.seed is None else str(self.session.seed))
            if "models" in values:
                self.model_source.value = str(values["models"])
        if set(values) & {"models", "size", "device", "dtype", "decoder", "offload"}:
            self._refresh_header()

    def _show_invalid(self, keys: list[str]) -> None:
        """Typed input that is not used stays in its field, marked; fixed input shows the value in use."""
        for key in keys:
            widget = self.seed_text if key == "seed" else self.controls.get(key)
            if widget is None:
                continue
            if self.session.typed(key) is not None:
                widget.add_class("bark-field-invalid")
            else:
                widget.remove_class("bark-field-invalid")
                self._sync_widgets(self._seed_values() if key == "seed" else {key: self.session.settings.get(key)})

    def _seed_values(self) -> dict[str, Any]:
        return {k: v for k, v in self.session.settings.items() if k.endswith("_seed")}

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


__all__ = ["Studio", "StagePanel"]
