"""Streamed playback: the first chunk plays while the rest of the take is being made.

A thin front on :func:`bark_core.generate_stream`: the first (watermarked) chunk goes into an autoplaying
player as soon as it exists, a status line counts the chunks, and the whole take, labelled, lands in a
second player when it is done. Gapless chunk-by-chunk playback would need a Web Audio front end; the
notebook's audio element restarts whenever its value changes, so this plays the first chunk only.

In the studio it is the "Stream" box (:class:`StreamPanelMixin`: the studio's text, voice, seed and
stage settings, Cancel stops it). Outside the studio:

    from bark_studio.stream_player import StreamPlayer
    player = StreamPlayer(models)          # a BarkModels
    player.widget                          # show it
    player.play("Hello there.", seed=1)    # returns at once; the take arrives in player.take
"""

from __future__ import annotations

import io
import threading
import time
import wave
from typing import Any

import ipywidgets as W
import numpy as np

from bark_core import BarkModels, generate_stream
from bark_core.label import labelled_wav_bytes

from .stream_state import stream_settings
from .ui import _button, _cell, _error_html, _full, _note_html, _style, close_tree


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class StreamPlayer:
    """Two players and a status line; :meth:`play` streams one take into them."""

    def __init__(self, models: BarkModels):
        self.models = models
        self.first = W.Audio(value=b"", format="wav", autoplay=True, loop=False, controls=True)
        self.whole = W.Audio(value=b"", format="wav", autoplay=False, loop=False, controls=True)
        self.status = W.HTML("")
        self.widget = W.VBox([self.status, W.Label("first chunk"), self.first, W.Label("whole take (labelled)"),
                              self.whole])
        self.take: Any = None
        self.error: BaseException | None = None
        self.first_audio_s: float | None = None
        self._thread: threading.Thread | None = None

    def play(self, text: str, voice: Any = None, *, seed: int | None = None, chunk_s: float = 1.0,
             background: bool = True, **settings: Any) -> StreamPlayer:
        """Start a streamed take (on a thread unless ``background=False``); bad settings raise at once."""
        stream = generate_stream(self.models, text, voice, seed=seed, chunk_s=chunk_s, **settings)
        self.take, self.error, self.first_audio_s = None, None, None
        self.status.value = "making the first chunk..."
        started = time.perf_counter()

        def consume() -> None:
            try:
                for chunk in stream:
                    if chunk.index == 0:
                        self.first_audio_s = time.perf_counter() - started
                        self.first.value = _wav(chunk.samples, chunk.sample_rate)
                    self.status.value = (f"first audio after {self.first_audio_s:.1f} s; chunk {chunk.index + 1} "
                                         f"ready at {chunk.elapsed_s:.1f} s")
                    if chunk.take is not None:
                        self.take = chunk.take
                        self.whole.value = labelled_wav_bytes(chunk.take.audio, **chunk.take.label_meta())
                        self.status.value += f"; take done ({chunk.take.audio.duration_s:.1f} s of audio)"
            except Exception as exc:  # noqa: BLE001 - shown in the status line, kept for the caller
                self.error = exc
                self.status.value = f"stream failed: {exc}"

        if background:
            self._thread = threading.Thread(target=consume, daemon=True, name="bark-studio-stream")
            self._thread.start()
        else:
            consume()
        return self

    def wait(self, timeout: float | None = None) -> Any:
        """The take once the stream is done (re-raising its error)."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.take


class StreamPanelMixin:
    """The stream box of :class:`~bark_studio.studio.Studio`: chunk size, fine window, a button, two players."""

    def _build_stream_box(self) -> W.VBox:
        d = stream_settings()
        self.stream_chunk_s = W.BoundedFloatText(value=d["chunk_s"], min=d["min_chunk_s"], max=d["max_chunk_s"],
                                                 step=0.1, description="chunk (s)", style=_style("60px"),
                                                 layout=_cell("150px"))
        self.stream_fine_window = W.BoundedIntText(
            value=d["fine_window"], min=d["min_fine_window"], max=d["max_fine_window"], description="fine window",
            style=_style("80px"), layout=_cell("170px"),
            tooltip=f"frames per streamed fine pass; {d['max_fine_window']} repeats the one-shot take when it fits "
                    "one chunk, but each chunk costs four times as much")
        self.stream_button = _button("Stream", "bark-run-stream", "success", icon="play",
                                     tooltip="Make the take in chunks and play the first one while the rest runs")
        self.stream_button.on_click(lambda _b: self._launch_stream())
        self.stream_status = W.HTML()
        self.stream_status.add_class("bark-stream-status")
        # players exist only once they have audio: an empty player logs a media error in the browser
        self.stream_players = W.VBox([])
        self.stream_players.add_class("bark-stream-players")
        self.stream_first: W.Audio | None = None
        self.stream_whole: W.Audio | None = None
        self._first_audio_s = 0.0
        return W.VBox([
            W.HTML("<small>The text above as one take, made chunk by chunk: the first chunk plays while the coarse "
                   "stage still runs. The whole take, labelled, follows.</small>"),
            W.Box([self.stream_chunk_s, self.stream_fine_window, self.stream_button],
                  layout=W.Layout(display="flex", flex_flow="row wrap", align_items="center")),
            self.stream_status, self.stream_players], layout=_full())

    def _launch_stream(self) -> None:
        self._launch_work("stream", lambda: self.session.run_stream(
            chunk_s=self.stream_chunk_s.value, fine_window=self.stream_fine_window.value), self._stream_error)

    def _stream_error(self, exc: BaseException) -> None:
        from .settings import error_message

        self.stream_status.value = _error_html(error_message(exc))

    def _on_stream_event(self, event: str, **data: Any) -> None:
        if event == "stream_start":
            old, self.stream_players.children = self.stream_players.children, ()
            for widget in old:  # replaced players are closed in the kernel too
                close_tree(widget)
            self.stream_first = self.stream_whole = None
            self.stream_status.value = _note_html(f"Making the first chunk (master seed {data['seed']})…",
                                                  "#1d4ed8")
        elif event == "stream_chunk":
            chunk = data["chunk"]
            if chunk.index == 0:
                self.stream_first = self._stream_player(_wav(chunk.samples, chunk.sample_rate), "first chunk", True)
                self._first_audio_s = chunk.elapsed_s
            self.stream_status.value = _note_html(
                f"first audio after {self._first_audio_s:.1f} s · chunk {chunk.index + 1} ready at "
                f"{chunk.elapsed_s:.1f} s", "#1d4ed8")
        elif event == "stream" and data.get("take") is not None:
            take = data["take"]
            self.stream_whole = self._stream_player(
                labelled_wav_bytes(take.audio, key=self.session._watermark_key, **take.label_meta()),
                "whole take (labelled)", False)
            self.stream_status.value = _note_html(
                f"Done: {take.audio.duration_s:.1f} s of audio; first audio after {self._first_audio_s:.1f} s.",
                "#15803d")

    def _stream_player(self, wav: bytes, title: str, autoplay: bool) -> W.Audio:
        player = W.Audio(value=wav, format="wav", autoplay=autoplay, loop=False, layout=_full())
        player.add_class("bark-stream-first" if autoplay else "bark-stream-whole")
        self.stream_players.children = (*self.stream_players.children, W.HTML(f"<small>{title}</small>"), player)
        return player
