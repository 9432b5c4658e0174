"""Streamed takes: labelled audio chunks while the coarse stage is still running, then the whole take.

The semantic stage runs first (the coarse stage needs its tokens). The coarse stage then runs on a
worker thread and hands over its tokens after every sliding window (60 tokens, 0.4 s of audio); as
soon as ``chunk_s`` of new frames are there (for the first chunk: whatever the first coarse window
gives, about 0.3 s), this thread runs the fine stage and EnCodec on them and yields the chunk,
watermarked, while the coarse stage goes on.

How the output differs from :func:`bark_core.generate` for the same seed (``benchmarks/speed.py
--impl ours-stream`` and ``tests/test_stream.py`` measure it):
- semantic and coarse tokens are the same (the same stage functions and seeds);
- the fine stage sees each chunk with the already decided fine codes on its left (at least
  ``FINE_CONTEXT`` frames, more as the window allows) and ``HOLD`` frames of coarse look-ahead on its
  right, in a window of ``fine_window`` frames (default ``STREAM_FINE_WINDOW``) padded as the one-shot
  stage pads its last window. The one-shot stage sees the whole take (up to 1,024 frames) at once, so
  the codes agree only partly once a take spans several chunks. With ``fine_window=1024`` a take in
  one chunk gets exactly the one-shot codes and audio, but every chunk then costs a whole one-shot fine
  pass (six passes over 1,024 frames), which is what kept first audio late. The fine generator is
  shared by the chunks;
- EnCodec decodes each chunk with ``DECODE_CONTEXT`` frames of left context and ``HOLD`` frames of
  right context, and consecutive chunks are cross-faded over ``FADE`` frames (27 ms), so joins have
  no step; every frame's audio is emitted exactly once, so the joined take has the one-shot length;
- each chunk is watermarked with the carrier phase continuing from the chunk before, so the joined
  chunks carry one unbroken mark (the final take's ``audio`` is unmarked, as from ``generate``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import constants as C
from ..artifacts import Audio, FineCodes
from ..errors import ParameterError
from ..models import codec
from ..sampling import Seed, make_generator, master_seed, sample, stage_seeds
from ..sampling.eager import unflatten_coarse
from ..stages import BarkModels, Take, generate_coarse, generate_semantic
from ..stages.generation import check_generate_settings, child_provenance, decode_extra
from .watermark import CLIP_GUARD, DEFAULT_STRENGTH_DB, make_mark

FRAME = C.SAMPLE_RATE // C.COARSE_RATE_HZ  # 320 samples per 75 Hz frame
MIN_CHUNK_S, MAX_CHUNK_S = 0.4, 8.0  # one coarse window .. what one fine pass holds with its context
FINE_CONTEXT = 128  # frames of decided fine codes a fine pass keeps at least (it takes all the window holds)
DECODE_CONTEXT = 75  # frames EnCodec decodes in front of a chunk (its LSTM and convolutions warm up)
HOLD = 8  # frames of look-ahead a chunk keeps back for the next one (its right edge is recomputed)
FADE = 2  # frames cross-faded at a join
FIRST_CHUNK = 16  # frames: the first chunk goes out as soon as one coarse window leaves this many (0.2 s)
STREAM_FINE_WINDOW = 256  # frames a streamed fine pass spans: 1/4 of the one-shot window, room for 128 new frames
MIN_FINE_WINDOW, MAX_FINE_WINDOW = FINE_CONTEXT + 2 * HOLD, C.FINE_WINDOW


@dataclass
class StreamChunk:
    """One piece of a streamed take: watermarked samples, where they start, and (last) the whole take."""

    samples: np.ndarray
    sample_rate: int
    index: int
    start_s: float
    elapsed_s: float  # seconds from the call to this chunk being ready
    final: bool = False
    take: Take | None = None

    @property
    def duration_s(self) -> float:
        return self.samples.size / self.sample_rate


def check_chunk_s(chunk_s: Any, name: str = "chunk_s", low: float = MIN_CHUNK_S) -> float:
    if isinstance(chunk_s, bool) or not isinstance(chunk_s, (int, float)) or not math.isfinite(chunk_s) \
            or not low <= chunk_s <= MAX_CHUNK_S:
        raise ParameterError(f"{name} must be a number of seconds from {low} to {MAX_CHUNK_S}, got "
                             f"{chunk_s!r:.40}. 1-2 s gives early first audio and few joins.")
    return float(chunk_s)


@torch.inference_mode()
def check_fine_window(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_FINE_WINDOW <= value <= MAX_FINE_WINDOW:
        raise ParameterError(f"fine_window must be a whole number of frames from {MIN_FINE_WINDOW} to "
                             f"{MAX_FINE_WINDOW}, got {value!r:.40}. {STREAM_FINE_WINDOW} gives early first audio; "
                             f"{MAX_FINE_WINDOW} "
                             "makes a take that fits one chunk equal to the one-shot take.")
    return value


def _fine_piece(model: torch.nn.Module, history: np.ndarray, coarse: np.ndarray, gen: torch.Generator,
                temp: float | None, window: int = C.FINE_WINDOW) -> np.ndarray:
    """Fine codes (8, n) for ``coarse`` (2, n) after ``history`` (8, h) of decided codes.

    The window is padded to ``window`` frames and every slot after the history is filled, pads
    included, as the one-shot fine stage fills its last window (which is 1,024 frames: with that
    window a take that fits one chunk gets the one-shot fine codes). The model saw padded windows
    there, so a streamed pass keeps pads after its frames rather than ending at the last real one.
    """
    n_coarse, n = coarse.shape
    new = np.vstack([coarse, np.full((C.N_FINE_CODEBOOKS - n_coarse, n), C.FINE_PAD_TOKEN)])
    arr = np.hstack([history, new]) if history.size else new
    arr = np.hstack([arr, np.full((C.N_FINE_CODEBOOKS, max(0, window - arr.shape[1])), C.FINE_PAD_TOKEN)])
    device = next(model.parameters()).device
    x = torch.from_numpy(arr.T.astype(np.int64).copy()).to(device)[None]
    h = history.shape[1] if history.size else 0
    for nn in range(n_coarse, C.N_FINE_CODEBOOKS):
        logits = model(nn, x)[0, h:, :C.CODEBOOK_SIZE].float()
        preds, _ = sample(logits, gen, temp)
        x[0, h:, nn] = preds
    return x[0, h:h + n].T.cpu().numpy().astype(np.int64)


class _Coarse(threading.Thread):
    """The coarse stage on a worker thread, publishing its tokens after every window."""

    class Stopped(Exception):
        pass

    def __init__(self, models: BarkModels, sem: Any, voice: Any, kw: dict[str, Any], turns: bool):
        super().__init__(daemon=True, name="bark-stream-coarse")
        self.models, self.sem, self.voice, self.kw = models, sem, voice, kw
        self.updates: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        # ``turns``: after each window, wait until the consumer has used it (CPU whose cores the thread pool
        # already fills: two threads of GEMMs at once only thrash, and the first chunk would wait on both)
        self.turns = turns
        self.go = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def _window(self, flat: np.ndarray) -> None:
        if self.stop.is_set():
            raise self.Stopped()
        self.go.clear()
        self.updates.put(flat)
        if self.turns:
            while not self.go.wait(0.5):
                if self.stop.is_set():
                    raise self.Stopped()

    def run(self) -> None:
        try:
            self.result = generate_coarse(self.models, self.sem, self.voice, on_window=self._window, **self.kw)
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            self.error = exc
        self.updates.put(None)


def _cpu_is_full(models: BarkModels) -> bool:
    """True when the coarse and fine stages both run on a CPU whose cores torch's thread pool already uses."""
    devices = {torch.device(models.device_for(stage)).type for stage in ("coarse", "fine")}
    return devices == {"cpu"} and torch.get_num_threads() >= (os.cpu_count() or 1)


def generate_stream(models: BarkModels, text: str, voice: Any = None, *, seed: Seed = None, chunk_s: float = 1.0,
                    first_chunk_s: float = FIRST_CHUNK / C.COARSE_RATE_HZ, fine_window: int = STREAM_FINE_WINDOW,
                    semantic_temp: float | None = 0.7, coarse_temp: float | None = 0.7,
                    fine_temp: float | None = 0.5, top_k: int | None = None, top_p: float | None = None,
                    min_eos_p: float | None = 0.2, max_gen_duration_s: float | None = None,
                    allow_early_stop: bool = True, key: str | bytes | None = None,
                    strength_db: float = DEFAULT_STRENGTH_DB) -> Iterator[StreamChunk]:
    """Yield watermarked :class:`StreamChunk` s as the coarse stage completes windows; the last holds the Take.

    ``first_chunk_s`` (default 0.21 s, what the first coarse window gives) sizes the first chunk;
    ``chunk_s`` (0.4 to 8 s) every later one. ``fine_window`` (frames, default 256) is the span of each
    streamed fine pass; 1,024 costs four times as much per chunk and makes a one-chunk take equal
    to the one-shot take. Seeds follow :func:`bark_core.generate` (one master
    seed, derived per stage), so the semantic and
    coarse tokens equal the one-shot take's; see the module docstring for what differs after them.
    Closing the iterator early stops the coarse worker at its next window. Settings are checked here,
    at the call, before anything runs.
    """
    started = time.perf_counter()
    chunk_s = check_chunk_s(chunk_s)
    first_chunk_s = check_chunk_s(first_chunk_s, "first_chunk_s", FIRST_CHUNK / C.COARSE_RATE_HZ)
    fine_window = check_fine_window(fine_window)
    check_generate_settings(semantic_temp=semantic_temp, coarse_temp=coarse_temp, fine_temp=fine_temp, top_k=top_k,
                            top_p=top_p, min_eos_p=min_eos_p, max_gen_duration_s=max_gen_duration_s,
                            allow_early_stop=allow_early_stop, seed=seed)
    if isinstance(seed, torch.Generator):
        raise ParameterError("generate_stream takes an integer seed (or None), not a torch.Generator: its chunks "
                             "run on two threads, which must not share one generator.")
    return _stream(models, text, voice, started, seed, (first_chunk_s, chunk_s, fine_window), semantic_temp,
                   coarse_temp, fine_temp, top_k, top_p, min_eos_p, max_gen_duration_s, allow_early_stop, key,
                   strength_db)


def _stream(models: BarkModels, text: str, voice: Any, started: float, seed: Seed, sizes: tuple[float, float, int],
            semantic_temp: float | None, coarse_temp: float | None, fine_temp: float | None, top_k: int | None,
            top_p: float | None, min_eos_p: float | None, max_gen_duration_s: float | None, allow_early_stop: bool,
            key: str | bytes | None, strength_db: float) -> Iterator[StreamChunk]:
    first_chunk_s, chunk_s, fine_window = sizes
    master = master_seed(seed)
    seeds = list(stage_seeds(master))
    voice = models.voice(voice)
    sem = generate_semantic(models, text, voice, temp=semantic_temp, top_k=top_k, top_p=top_p, min_eos_p=min_eos_p,
                            max_gen_duration_s=max_gen_duration_s, allow_early_stop=allow_early_stop, seed=seeds[0])
    worker = _Coarse(models, sem, voice, dict(temp=coarse_temp, top_k=top_k, top_p=top_p, seed=seeds[1]),
                     turns=_cpu_is_full(models))
    chunk_frames = max(1, round(chunk_s * C.COARSE_RATE_HZ))
    first_frames = max(1, round(first_chunk_s * C.COARSE_RATE_HZ))
    fine_parts: list[np.ndarray] = []  # decided fine codes, (8, n) each
    state = {"emitted": 0, "offset": 0, "index": 0}
    tail: np.ndarray | None = None
    gen: torch.Generator | None = None
    used_fine_seed: int | None = None
    fine_loaded: Any = None

    def decided() -> np.ndarray:
        return np.hstack(fine_parts) if fine_parts else np.zeros((C.N_FINE_CODEBOOKS, 0), np.int64)

    def chunk(coarse_codes: np.ndarray, final: bool) -> StreamChunk:
        nonlocal tail, gen, used_fine_seed, fine_loaded
        avail = coarse_codes.shape[1]
        end = avail if final else avail - HOLD
        done = decided()
        start = done.shape[1]
        with models.use("fine") as loaded:
            fine_loaded = loaded
            if gen is None:
                gen, used_fine_seed = make_generator(seeds[2], next(loaded.model.parameters()).device)
            # the voice's fine prompt and every decided frame, as far as the window holds them: while a take
            # fits one window, each frame then sits at the position the one-shot fine stage gives it
            known = np.hstack([voice.fine[:, -C.FINE_HISTORY:] if voice is not None
                               else np.zeros((C.N_FINE_CODEBOOKS, 0), np.int64), done]).astype(np.int64)
            pieces, at = [], start
            while at < avail:  # one pass: at least FINE_CONTEXT frames of history, the rest new frames
                stop = min(avail, at + fine_window - FINE_CONTEXT)
                history = known[:, max(0, known.shape[1] - (fine_window - (stop - at))):]
                piece = _fine_piece(loaded.model, history, coarse_codes[:, at:stop], gen, fine_temp, fine_window)
                pieces.append(piece)
                known = np.hstack([known, piece])
                at = stop
        new = np.hstack(pieces)
        fine_parts.append(new[:, :end - start])
        codes = np.hstack([done, new])  # decided up to ``end``, provisional after
        lead = 0 if tail is None else tail.size // FRAME  # the held-back frames this chunk fades in over
        d0 = max(0, start - lead - DECODE_CONTEXT)
        with models.use("codec") as codec_model:
            wave = codec.decode_codes(codes[:, d0:avail], codec_model)[(start - lead - d0) * FRAME:(end - d0) * FRAME]
        fade = 0 if tail is None else tail.size
        if fade:
            ramp = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
            wave = wave.copy()
            wave[:fade] = tail[:fade] * (1 - ramp) + wave[:fade] * ramp
        keep = wave.size if final else max(0, wave.size - FADE * FRAME)
        out, tail = wave[:keep], (None if final else wave[keep:])
        emitted_from = state["offset"]
        mark = make_mark(out.astype(np.float64), key, strength_db, offset=emitted_from)
        bound = np.maximum(np.abs(out), CLIP_GUARD)
        marked = np.clip(out + mark, -bound, bound).astype(np.float32)
        state["offset"] += out.size
        piece = StreamChunk(samples=marked, sample_rate=C.SAMPLE_RATE, index=state["index"],
                            start_s=emitted_from / C.SAMPLE_RATE, elapsed_s=time.perf_counter() - started,
                            final=final)
        state["index"] += 1
        plain.append(out)
        return piece

    plain: list[np.ndarray] = []
    worker.start()
    try:
        while True:
            # every window in order, never skipping ahead: chunk boundaries then depend on the tokens alone,
            # so a seed repeats its take however fast this machine is
            item = worker.updates.get()
            if item is None:
                break
            flat = item[:item.size - item.size % C.N_COARSE_CODEBOOKS]
            avail = flat.size // C.N_COARSE_CODEBOOKS
            # the first chunk is short by default (what the first coarse window gives), so audio starts early
            if avail - HOLD - decided().shape[1] >= (first_frames if not fine_parts else chunk_frames):
                piece = chunk(unflatten_coarse(flat), final=False)
                worker.go.set()  # the coarse stage goes on while the consumer plays or writes the chunk
                yield piece
            worker.go.set()
        worker.join()
        if worker.error is not None:
            raise worker.error
        coarse_art = worker.result
        last = chunk(coarse_art.codes, final=True)
        fine_art = FineCodes(codes=decided(), parent=coarse_art, provenance=child_provenance(
            coarse_art, "fine", fine_loaded, {"temp": fine_temp, "streamed": True, "chunk_s": chunk_s,
                                                  "first_chunk_s": first_chunk_s, "fine_window": fine_window},
            used_fine_seed, voice, fine_loaded.model))
        with models.use("codec") as codec_model:
            prov = dataclasses.replace(codec.decode_provenance(fine_art, codec_model, streamed=True, chunk_s=chunk_s),
                                       extra=decode_extra(models, fine_art))
        audio = Audio(samples=np.concatenate(plain).astype(np.float32), sample_rate=C.SAMPLE_RATE, provenance=prov,
                      parent=fine_art)
        last.take = Take(semantic=sem, coarse=coarse_art, fine=fine_art, audio=audio, seed=int(master))
        yield last
    finally:
        worker.stop.set()
        worker.go.set()
        if worker.is_alive():
            worker.join()
