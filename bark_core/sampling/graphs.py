"""CUDA-graph plumbing for the fast decoder: safe capture, key-length buckets, the self-check, the fallback.

A captured graph replays the exact kernels, device and addresses it recorded, and PyTorch does not
check any of them at replay. So everything that can make a replay silently wrong is handled here,
in one place:

- capture runs under a guard for the model's own device, on an explicit side stream (PyTorch's
  default capture stream belongs to whichever device was current at the first capture of the
  process, and a capture there records an empty graph), in ``"thread_local"`` error mode (a CUDA
  call from another thread, such as ComfyUI's server, does not invalidate it), and an empty graph is
  an error, not PyTorch's warning;
- a decoder captures one graph per key-length bucket (256/512/768/1,024 keys for Bark's context),
  and each step replays the smallest that covers the live length, so early steps read fewer keys;
- the first time a model gets graphs on a device, a few teacher-forced steps through the graphs are
  compared with the plain eager model within a tolerance for its precision; the verdict is kept on
  the model, and ``BARK_GRAPH_SELF_CHECK=0`` (or :func:`set_self_check`) turns the check off;
- any capture, replay or self-check failure disables graphs for that model and device, with one
  warning; the decoder goes on with the same step run eagerly (same tokens, slower).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)

BUCKET = 256  # key-length granularity of the captured steps
SELF_CHECK_ENV = "BARK_GRAPH_SELF_CHECK"
# max |graph - eager| per step, as a fraction of that step's logit standard deviation. Rounding of a
# half-precision step (other attention kernels, another reduction order) stays far below it; stale
# or misplaced state (an empty graph, freed weights, a wrong cache slot) lands at several deviations.
HALF_TOLERANCE = 0.25
FP32_TOLERANCE = 0.02
_VERDICTS = "_bark_graph_verdicts"  # model.__dict__: {(device, precision): (ok, reason)}
_self_check: bool | None = None  # None: read the environment


class GraphCaptureError(RuntimeError):
    """A CUDA graph could not be captured, replayed or trusted; the decoder falls back to eager steps."""


class GraphFallbackWarning(RuntimeWarning):
    """Emitted once per model and device when its fast decoder stops using CUDA graphs."""


# --------------------------------------------------------------------------------------------------
# Capture
# --------------------------------------------------------------------------------------------------

def capture_step(body: Callable[[], None], device: torch.device, reset: Callable[[], None],
                 pool: Any = None, warmup: int = 2) -> Callable[[], None]:
    """Record ``body`` as a CUDA graph on ``device``; return its replay.

    ``reset`` puts the decoder's write index and counters back before each warm-up and before the
    capture, so warm-ups never index past the static buffers.
    """
    if device.type != "cuda":
        raise GraphCaptureError(f"CUDA graphs need a CUDA device; this model is on {device}.")
    with torch.cuda.device(device):
        current = torch.cuda.current_stream(device)
        stream = torch.cuda.Stream(device)
        stream.wait_stream(current)
        with torch.cuda.stream(stream):  # warm-up on the capture stream: lazy inits happen outside capture
            for _ in range(warmup):
                reset()
                body()
        current.wait_stream(stream)
        reset()
        graph = torch.cuda.CUDAGraph()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with torch.cuda.graph(graph, pool=pool, stream=stream, capture_error_mode="thread_local"):
                body()
    check_capture_warnings(seen, device)
    return graph.replay


def check_capture_warnings(seen: list[warnings.WarningMessage], device: torch.device) -> None:
    """PyTorch only warns when a capture recorded nothing; replaying that graph would return stale tokens."""
    for w in seen:
        if "graph is empty" in str(w.message).lower():
            raise GraphCaptureError(f"The captured decode step on {device} recorded no kernels (an empty CUDA "
                                    "graph): it was captured on the wrong device or stream.")
    for w in seen:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def new_pool(device: torch.device) -> Any:
    """One memory pool for all bucket graphs of a decoder: their temporaries never live across replays."""
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        return torch.cuda.graph_pool_handle()


# --------------------------------------------------------------------------------------------------
# Buckets
# --------------------------------------------------------------------------------------------------

def bucket_sizes(block_size: int) -> tuple[int, ...]:
    """Key lengths to capture: every multiple of 256 below the context, and the context itself."""
    return (*range(BUCKET, block_size, BUCKET), block_size)


def bucket_for(n_keys: int, buckets: tuple[int, ...]) -> int:
    """The smallest captured key length that covers ``n_keys`` live keys."""
    for b in buckets:
        if b >= n_keys:
            return b
    raise ValueError(f"{n_keys} keys exceed the largest captured length {buckets[-1]}.")


# --------------------------------------------------------------------------------------------------
# Self-check and verdicts
# --------------------------------------------------------------------------------------------------

def set_self_check(enabled: bool | None) -> None:
    """Turn the first-build self-check on or off for this process (None: follow $BARK_GRAPH_SELF_CHECK)."""
    global _self_check
    _self_check = enabled


def self_check_enabled() -> bool:
    if _self_check is not None:
        return _self_check
    return os.environ.get(SELF_CHECK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def logits_agree(graph: torch.Tensor, eager: torch.Tensor, half: bool) -> tuple[bool, dict[str, float]]:
    """Whether teacher-forced graph logits (steps, vocab) match eager ones within the precision's tolerance."""
    graph, eager = graph.float(), eager.float()
    scale = eager.std(dim=-1).clamp_min(1e-6)
    err = ((graph - eager).abs().amax(dim=-1) / scale).nan_to_num(nan=float("inf"))
    tol = HALF_TOLERANCE if half else FP32_TOLERANCE
    worst = float(err.max()) if err.numel() else 0.0
    ok = bool(torch.isfinite(graph).all()) and worst <= tol
    return ok, {"max_err_in_std": round(worst, 5), "tolerance_in_std": tol, "steps": int(err.numel())}


def verdict(model: torch.nn.Module, key: tuple) -> tuple[bool, str] | None:
    """The cached graph verdict of a model for ``key`` (device, precision), or None if never decided."""
    return model.__dict__.get(_VERDICTS, {}).get(key)


def record_verdict(model: torch.nn.Module, key: tuple, ok: bool, reason: str) -> None:
    model.__dict__.setdefault(_VERDICTS, {})[key] = (ok, reason)


def fall_back(model: torch.nn.Module, key: tuple, exc: BaseException) -> None:
    """Disable graphs for this model and precision on this device, warning once."""
    first = verdict(model, key) is None or verdict(model, key)[0]
    reason = f"{type(exc).__name__}: {exc}"
    record_verdict(model, key, False, reason)
    if first:
        msg = (f"Bark fast decoder: CUDA graphs disabled for this model on {key[0]} ({reason}); it continues "
               "with the same steps run eagerly (same tokens, slower).")
        log.warning(msg)
        warnings.warn(msg, GraphFallbackWarning, stacklevel=3)
