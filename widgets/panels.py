"""The five stage panels: settings, run and dice buttons, progress, picture and players of each stage.

:class:`StagePanel` is the widgets of one stage; :class:`StagePanelsMixin` is the part of
:class:`~bark_studio.studio.Studio` that builds them and draws stage results into them. Apart from
the studio so the per-stage layout can be read without the voice, review and history boxes.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from bark_core.label import labelled_wav_bytes

from .images import AUDIO_HEIGHT, PANEL_HEIGHT, PANEL_WIDTH, placeholder, render_png
from .settings import TITLES
from .takes import StageResult
from .ui import STATE_STYLE, _button, _cell, _error_html, _full, _note_html, _style

# what the picture and players of a panel hold when the panel's state is not "fresh"
_STATE_NOTES = {"stale": "Shown: the last result, made with earlier settings (stale).",
                "error": "Shown: the last result from before the error.",
                "cancelled": "Shown: the last result from before the cancelled run.",
                "invalid": "Shown: the last result; the settings now hold invalid input."}


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
                               layout=_cell("230px"))
            self.dice = _button("", f"bark-dice-{stage}", tooltip=f"Roll the dice: a new random seed for the "
                                f"{stage} stage", icon="random", width="42px")
            row += [self.seed, self.dice]
        self.progress = W.IntProgress(value=0, min=0, max=100, layout=_cell("60%"))
        self.progress_text = W.Label("")
        self.image = W.Image(value=placeholder(f"{TITLES[stage]}: not run yet",
                                               height=AUDIO_HEIGHT if stage == "decode" else PANEL_HEIGHT),
                             format="png", layout=_full(object_fit="contain"))
        self.image.add_class("bark-plot")
        self.info = W.HTML()
        self.error = W.HTML()
        self.state_note = W.HTML()
        self.state_note.add_class("bark-state-note")
        self.players: dict[str, W.Audio] = {}
        self._player_box: dict[str, W.VBox] = {}
        self.player_boxes: list[W.Widget] = []
        for name in players:
            # no empty <audio> on the page (a browser logs an error for each): on the page once it has audio
            player = W.Audio(value=b"", format="wav", autoplay=False, loop=False, controls=True, layout=_full())
            player.add_class(f"bark-player-{name}")
            self.players[name] = player
            box = W.VBox([W.HTML(f"<small>{html.escape(_PLAYER_TITLES[name])}</small>")])
            box.add_class("bark-result")
            self._player_box[name] = box
            self.player_boxes.append(box)
        # two columns where they fit, one where the panel is narrow (a 1024 px window)
        grid = W.GridBox(fields, layout=W.Layout(grid_template_columns="repeat(auto-fill, minmax(190px, 1fr))",
                                                 grid_gap="0 8px"))
        body: list[W.Widget] = [W.HBox([self.header, self.badge], layout=W.Layout(justify_content="space-between",
                                                                                 flex_flow="row wrap")),
                                *sliders, grid, W.HBox(row, layout=W.Layout(flex_flow="row wrap")),
                                W.HBox([self.progress, self.progress_text]), self.error, self.state_note]
        if stage != "label":
            self.image.add_class("bark-result")
            body.append(self.image)
        self.info.add_class("bark-result")
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
        note = _STATE_NOTES.get(state) if self.info.value else None
        self.state_note.value = _note_html(note, "#b45309") if note else ""

    def play(self, name: str, wav: bytes) -> None:
        """Give a player its audio (shown), or empty it (hidden)."""
        player, box = self.players[name], self._player_box[name]
        player.value = wav
        box.children = (box.children[0], player) if wav else (box.children[0],)

    def clear(self) -> None:
        """Back to "not run yet": placeholder picture, no figures, no players."""
        self.image.value = placeholder(f"{TITLES[self.stage]}: not run yet",
                                       height=AUDIO_HEIGHT if self.stage == "decode" else PANEL_HEIGHT)
        self.info.value = ""
        for name in self.players:
            self.play(name, b"")

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


class StagePanelsMixin:
    """The stage panels' part of :class:`~bark_studio.studio.Studio`: every setting shown in a panel is
    bound through ``Studio._bind``, so it reaches the session like any other setting."""

    def _widget_changed_secret(self, key: str) -> None:
        # the key itself never goes into the settings (they are shown and saved): only its fingerprint
        if not self._syncing:
            self.session.enter("watermark_key", key or None)

    def _slider(self, key: str, desc: str, lo: float, hi: float, step: float, tip: str) -> W.FloatSlider:
        w = W.FloatSlider(description=desc, min=lo, max=hi, step=step, readout_format=".2f", continuous_update=False,
                          style=_style(), layout=_full(), tooltip=tip)
        return self._bind(key, w, _opt_float, lambda v: v)

    def _build_stage_panels(self) -> None:
        s = self.session

        def temp(stage: str) -> W.FloatSlider:
            return self._slider(f"{stage}_temp", "temperature", 0.0, 2.0, 0.05,
                                "Sampling temperature; 0 takes the most likely token (argmax)")

        def top_k(stage: str) -> W.BoundedIntText:
            return self._bind(f"{stage}_top_k", W.BoundedIntText(description="top-k (0 off)", min=0, max=10_000,
                                                                 style=_style("86px"), layout=_cell()),
                              _opt_int, lambda v: v)

        def top_p(stage: str) -> W.BoundedFloatText:
            return self._bind(f"{stage}_top_p", W.BoundedFloatText(description="top-p (0 off)", min=0.0, max=1.0,
                                                                   step=0.05, style=_style("86px"), layout=_cell()),
                              _opt_float, lambda v: v)

        sem_sliders = [
            temp("semantic"),
            self._slider("min_eos_p", "min EOS prob.", 0.0, 1.0, 0.01,
                         "Stop when the end-of-speech probability reaches this (0: Suno's argmax rule)"),
        ]
        sem_settings = [
            top_k("semantic"), top_p("semantic"),
            self._bind("max_gen_duration_s", W.BoundedFloatText(description="max s (0 off)", min=0.0, max=60.0,
                                                                step=0.5, style=_style("86px"), layout=_cell()),
                       _opt_float, lambda v: v),
            self._bind("allow_early_stop", W.Checkbox(description="allow early stop", indent=False, layout=_cell())),
        ]
        coarse_sliders = [
            temp("coarse"),
            self._bind("max_coarse_history", W.IntSlider(description="history (tokens)", min=60, max=630, step=10,
                                                         continuous_update=False, style=_style(),
                                                         layout=_full())),
        ]
        coarse_settings = [
            top_k("coarse"), top_p("coarse"),
            self._bind("sliding_window_len", W.BoundedIntText(description="window", min=1, max=708,
                                                              style=_style("86px"),
                                                              layout=_cell())),
            self._bind("preview", W.Checkbox(description="preview after coarse", indent=False, layout=_cell())),
        ]
        fine_sliders = [temp("fine")]
        self.watermark_key = W.Password(description="watermark key", placeholder="empty: bark_core's default key",
                                        continuous_update=False, style=_style(), layout=_full(),
                                        tooltip="Your own key: only who holds it can detect your watermark")
        self.watermark_key.add_class("bark-set-watermark_key")
        self.watermark_key.observe(lambda ch: self._widget_changed_secret(ch["new"]), names="value")
        label_settings = [self._bind("include_text", W.Checkbox(description="store the text itself in the label "
                                                                "(else only its SHA-256)", indent=False,
                                                                layout=_full())), self.watermark_key]
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

    def _refresh_states(self) -> None:
        for stage, panel in self.panels.items():
            panel.show_state(self.session.state(stage), self.session.error(stage))

    def _image_of(self, result: StageResult, key: str = "main", width: int = PANEL_WIDTH) -> bytes:
        if key not in result.images:
            result.images[key] = render_png(result.artifact, width=width, title=_plot_title(result))
        return result.images[key]

    def _show_results(self) -> None:
        """Every panel from the session's results (after a take was selected): nothing of another take stays."""
        for stage, panel in self.panels.items():
            result = self.session.results.get(stage)
            if result is None:
                panel.clear()
            else:
                self._show_result(stage, result)
        self._refresh_states()

    def _show_result(self, stage: str, result: StageResult) -> None:
        panel = self.panels[stage]
        if stage != "label":
            panel.image.value = self._image_of(result)
        info = html.escape(result.summary())
        if result.warnings:
            info += "".join(f'<div style="color:#b45309">⚠ {html.escape(w)}</div>' for w in result.warnings)
            if stage == "semantic" and any("cut" in w or "truncat" in w for w in result.warnings):
                info += ('<div style="color:#b45309">For the whole text, open “Long text: chunk by chunk” below: '
                         "it speaks any length in sentence-sized chunks.</div>")
        if stage == "label":
            review = result.artifact.provenance.settings.get("label", {}).get("review", {})
            info += f"<br><small>review recorded in the label: {html.escape(str(review.get('human_review')))}</small>"
        panel.info.value = f"<small>{info}</small>"
        if stage == "coarse":
            # players hand their audio to anyone who downloads it: they play labelled audio
            panel.play("preview", b"" if result.preview is None else labelled_wav_bytes(result.preview))
        elif stage in ("decode", "label"):
            panel.play(stage, labelled_wav_bytes(result.artifact))


def _plot_title(result: StageResult) -> str:
    """Short, and without any state word: the panel's badge says whether the picture is fresh."""
    art = result.artifact
    parts = [TITLES[result.stage], f"{art.duration_s:.2f} s"]
    if art.provenance.seed is not None and result.stage in ("semantic", "coarse", "fine"):
        parts.append(f"seed {art.provenance.seed}")
    if (art.provenance.extra or {}).get("untrained"):
        parts.append("untrained weights")
    return " · ".join(parts)
