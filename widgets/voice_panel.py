"""The voice box: preset picker, ``.npz`` upload, "last take as voice", and a voice from a recording.

Apart from the studio because of the consent form a recorded voice needs: who, on what right, when
and the evidence are asked for here and handed to ``Session.voice_from_audio``, which refuses a
voice without them.
"""

from __future__ import annotations

import datetime as _dt
import html

import ipywidgets as W

from .settings import StudioError, error_message
from .ui import _button, _error_html, _full, _note_html, _style

NO_VOICE = "none"
SEMANTIC_CHOICES = {"full clone (HuBERT + quantizer)": "hubert", "partial (coarse and fine only)": "none"}


class VoicePanelMixin:
    """The voice box's part of :class:`~bark_studio.studio.Studio`: the picker shows the session's
    voice setting and changes it, so it stays in step with ``studio.set(voice=...)``."""

    def _build_voice_box(self) -> W.VBox:
        from bark_core import COMMON_RIGHTS

        s = self.session
        self.language = W.Dropdown(description="voice", style=_style("40px"),
                                   layout=W.Layout(flex="1 1 0", min_width="0"))
        self.speaker = W.Dropdown(layout=W.Layout(flex="1 1 0", min_width="0"))
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
        # no default: the date the consent was given is a fact to state, not today's date
        self.rec_when = W.Text(description="when", value="", placeholder=f"YYYY-MM-DD, e.g. {_dt.date.today()}",
                               style=_style("60px"), layout=_full())
        self.rec_evidence = W.Text(description="evidence", placeholder="where the consent form/licence is kept",
                                   style=_style("60px"), layout=_full())
        self.rec_semantic = W.Dropdown(description="semantic", options=list(SEMANTIC_CHOICES.items()), value="hubert",
                                       style=_style("60px"), layout=_full())
        self.rec_button = _button("Make voice from recording", "bark-audio-voice", icon="microphone",
                                  tooltip="All three prompts (HuBERT + an English-trained quantizer for the semantic "
                                          "one); the rights record travels into every label")
        self.rec_button.on_click(lambda _b: self._action(self._voice_box_msg, self._voice_from_recording))
        rec_box = W.VBox([W.HTML("<small>A voice made from someone's recording imitates a real person: say whose "
                                 "voice it is and on what basis it may be used (consent or licence).</small>"),
                          self.rec_upload, self.rec_who, self.rec_right, self.rec_when, self.rec_evidence,
                          self.rec_semantic, self.rec_button])
        self.rec_accordion = W.Accordion([rec_box], titles=("Voice from a recording (needs consent)",),
                                         selected_index=None)
        self.voice_info = W.HTML()
        self.voice_info.add_class("bark-voice-info")
        self.voice_msg = W.HTML()
        voice_box = W.VBox([W.HBox([self.language, self.speaker]),
                            W.HBox([self.voice_upload, self.take_voice_button]), self.rec_accordion,
                            self.voice_info, self.voice_msg], layout=W.Layout(flex="1 1 0", min_width="0"))
        return voice_box

    def _voice_box_msg(self, exc: BaseException) -> None:
        self.voice_msg.value = _error_html(error_message(exc))

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
        key = self.session.voice_from_audio(bytes(f["content"]), filename=f["name"], who=self.rec_who.value,
                                            right=self.rec_right.value, when=self.rec_when.value,
                                            evidence=self.rec_evidence.value or None, semantic=self.rec_semantic.value)
        warned = getattr(self.session, "voice_warnings", [])
        if warned:  # the voice is made; say what the recording check heard
            self.voice_msg.value = "<br>".join(_note_html(w, "#b45309") for w in warned)
        return key

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
        sem = info.get("semantic") or {}
        if sem.get("method") == "hubert-quantizer":
            q = sem.get("quantizer", {})
            rows.append(f"Semantic prompt: HuBERT + {html.escape(str(q.get('file')))} (trained on "
                        f"{html.escape(str(q.get('language', 'unknown')))} speech)")
        elif sem.get("method") == "none":
            rows.append("Semantic prompt: none (partial voice: timbre, not speaking style)")
        rights = info.get("rights")
        if rights:
            rows.append("Rights record: " + "; ".join(f"{k} <b>{html.escape(str(v))}</b>" for k, v in rights.items()
                                                      if k != "schema"))
        elif kind == "generated":
            rows.append(f"Made from a generated take (seed {info.get('seed')}); no rights record needed.")
        else:
            rows.append("Rights record: none in the file.")
        return "<small>" + "<br>".join(rows) + "</small>"
