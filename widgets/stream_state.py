"""Streamed takes in the studio: ``bark_core.generate_stream`` over the session's text, voice and settings.

The session only drives the core's stream and reports each chunk as an event; the stream box draws them.
Cancel stops the stream at its next chunk (the coarse worker stops at its next window).
"""

from __future__ import annotations

from typing import Any

from .settings import RunCancelled


def stream_settings() -> dict[str, Any]:
    """The streaming defaults and bounds, read from the core."""
    from bark_core.label import MAX_CHUNK_S, MAX_FINE_WINDOW, MIN_CHUNK_S, MIN_FINE_WINDOW, STREAM_FINE_WINDOW

    return {"chunk_s": 1.0, "fine_window": STREAM_FINE_WINDOW, "min_chunk_s": MIN_CHUNK_S, "max_chunk_s": MAX_CHUNK_S,
            "min_fine_window": MIN_FINE_WINDOW, "max_fine_window": MAX_FINE_WINDOW}


class StreamMixin:
    """``run_stream`` for :class:`~bark_studio.session.Session`; ``stream_take`` holds the last whole take."""

    stream_take: Any = None

    def run_stream(self, *, chunk_s: float = 1.0, fine_window: int | None = None) -> Any:
        """Speak the current text as a stream: a ``stream_chunk`` event per watermarked chunk, then ``stream``
        with the whole take (its artifacts and joined audio). Returns the take."""
        from bark_core import generate_stream

        self.check_inputs("fine")
        with self._guard():
            s, models, voice, seed = self.whole_take_inputs()
            stream = generate_stream(
                models, s["text"], voice, seed=seed, chunk_s=float(chunk_s),
                fine_window=int(fine_window or stream_settings()["fine_window"]),
                semantic_temp=s["semantic_temp"], coarse_temp=s["coarse_temp"], fine_temp=s["fine_temp"],
                top_k=s["semantic_top_k"], top_p=s["semantic_top_p"], min_eos_p=s["min_eos_p"],
                max_gen_duration_s=s["max_gen_duration_s"], allow_early_stop=s["allow_early_stop"],
                key=self._watermark_key)
            self.emit("stream_start", seed=seed)
            try:
                for chunk in stream:
                    if self._cancel.is_set():
                        raise RunCancelled(f"Stream cancelled after {chunk.index + 1} chunks.")
                    self.emit("stream_chunk", chunk=chunk)
                    if chunk.take is not None:
                        self.stream_take = chunk.take
            finally:
                stream.close()
            self.emit("stream", take=self.stream_take)
            return self.stream_take
