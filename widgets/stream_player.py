"""Streamed playback for the studio: the first chunk plays while the rest of the take is being made.

A thin front on :func:`bark_core.generate_stream`: the first (watermarked) chunk goes into an autoplaying
player as soon as it exists, a status line counts the chunks, and the whole take, labelled, lands in a
second player when it is done. Gapless chunk-by-chunk playback would need a Web Audio front end; the
notebook's audio element restarts whenever its value changes, so this plays the first chunk only.

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
