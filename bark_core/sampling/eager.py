"""The eager decode loops: Suno's ``bark/generation.py`` step by step, over numpy arrays and a loaded model.

Kept free of voices-as-files, seeds-as-ints, devices-by-name and provenance, so each loop can be checked
token for token against Suno's code; :mod:`bark_core.stages` wraps them into artifact-level stages, and
:mod:`bark_core.sampling.fast` reuses their prompt builders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import constants as C
from .. import limits
from ..errors import ArtifactError
from .draw import sample

Progress = Callable[[int, int], None] | None


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _report(progress: Progress, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# --------------------------------------------------------------------------------------------------
# Bare algorithms
# --------------------------------------------------------------------------------------------------

def semantic_input(text_ids: np.ndarray, history: np.ndarray | None) -> np.ndarray:
    """The 513-token prompt: text window, semantic history window, infer token."""
    text = np.pad(text_ids, (0, C.TEXT_WINDOW - len(text_ids)), constant_values=C.TEXT_PAD_TOKEN)
    if history is not None:
        hist = history.astype(np.int64)[-C.SEMANTIC_HISTORY_WINDOW:]
        hist = np.pad(hist, (0, C.SEMANTIC_HISTORY_WINDOW - len(hist)), constant_values=C.SEMANTIC_PAD_TOKEN)
    else:
        hist = np.full(C.SEMANTIC_HISTORY_WINDOW, C.SEMANTIC_PAD_TOKEN, dtype=np.int64)
    return np.hstack([text, hist, [C.SEMANTIC_INFER_TOKEN]]).astype(np.int64)


def semantic_stop(item: int, probs: torch.Tensor | None, allow_early_stop: bool, min_eos_p: float | None) -> bool:
    """Suno's end-of-speech rule: EOS drawn, or its probability at least ``min_eos_p``."""
    return bool(semantic_stop_mask(torch.as_tensor(item), probs, allow_early_stop, min_eos_p))


def semantic_stop_mask(ids: torch.Tensor, probs: torch.Tensor | None, allow_early_stop: bool,
                       min_eos_p: float | None) -> torch.Tensor:
    """:func:`semantic_stop` for a batch of draws, as a bool tensor that stays on the device."""
    stop = torch.zeros_like(ids, dtype=torch.bool)
    if not allow_early_stop:
        return stop
    stop = ids == C.SEMANTIC_VOCAB_SIZE
    if min_eos_p is not None and probs is not None:
        stop = stop | (probs[..., -1] >= min_eos_p)
    return stop


def semantic_candidates(row: torch.Tensor, allow_early_stop: bool) -> torch.Tensor:
    """The 10,000 semantic logits, plus the EOS logit as candidate 10,000 when early stop is on (last axis)."""
    row = row.float()
    relevant = row[..., : C.SEMANTIC_VOCAB_SIZE]
    if allow_early_stop:
        relevant = torch.cat([relevant, row[..., C.SEMANTIC_EOS_TOKEN:C.SEMANTIC_EOS_TOKEN + 1]], dim=-1)
    return relevant


@torch.inference_mode()
def semantic_tokens(model: torch.nn.Module, text_ids: np.ndarray, history: np.ndarray | None, *,
                    generator: torch.Generator, temp: float | None = C.DEFAULT_SEMANTIC_TEMP,
                    top_k: int | None = None, top_p: float | None = None,
                    min_eos_p: float | None = C.DEFAULT_MIN_EOS_P, max_gen_duration_s: float | None = None,
                    allow_early_stop: bool = True, max_steps: int = C.MAX_SEMANTIC_STEPS,
                    progress: Progress = None) -> np.ndarray:
    """Text window + semantic history + infer token, then one token per step until EOS."""
    device = device_of(model)
    x = torch.from_numpy(semantic_input(text_ids, history))[None].to(device)
    cache = model.new_cache(1)
    logits = model(x, cache, merge_context=True)
    out: list[int] = []
    duration = 0.0
    for n in range(max_steps):
        if n > 0:
            logits = model(torch.tensor([[out[-1]]], device=device), cache)
        item_t, probs = sample(semantic_candidates(logits[0, 0], allow_early_stop), generator, temp, top_k, top_p)
        item = int(item_t)
        if semantic_stop(item, probs, allow_early_stop, min_eos_p):
            break
        out.append(item)
        duration += 1 / C.SEMANTIC_RATE_HZ
        if max_gen_duration_s is not None and duration > max_gen_duration_s:
            break
        _report(progress, n + 1, max_steps)
    if len(out) < max_steps:  # stopped early: the stage is complete (a full run has said so already)
        _report(progress, max_steps, max_steps)
    return np.asarray(out, dtype=np.int64)


def _flatten_codebooks(arr: np.ndarray) -> np.ndarray:
    """Interleave codebooks frame by frame, codebook n shifted by n*1024 (Suno's coarse layout)."""
    arr = arr.astype(np.int64).copy()
    for n in range(1, arr.shape[0]):
        arr[n, :] += C.CODEBOOK_SIZE * n
    return arr.ravel("F")


def coarse_history(voice: Any, max_coarse_history: int) -> tuple[np.ndarray, np.ndarray]:
    """Semantic and flattened coarse history from a voice, trimmed as Suno's code trims them."""
    if voice is None:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    sem_hist = voice.semantic
    coarse_hist = _flatten_codebooks(voice.coarse) + C.SEMANTIC_VOCAB_SIZE
    n_sem = int(np.min([max_semantic_history, len(sem_hist) - len(sem_hist) % 2,
                        int(np.floor(len(coarse_hist) / ratio))]))
    n_coarse = int(round(n_sem * ratio))
    # numpy slicing as in Suno's code (including [-0:] meaning "all")
    sem_hist = sem_hist[-n_sem:].astype(np.int64)
    coarse_hist = coarse_hist[-n_coarse:].astype(np.int64)[: -C.COARSE_HISTORY_TRIM]
    return sem_hist, coarse_hist


def coarse_steps(n_semantic: int) -> int:
    """Flattened coarse tokens to generate for ``n_semantic`` semantic tokens (a whole number of frames)."""
    n_steps = int(round(np.floor(n_semantic * C.SEMANTIC_TO_COARSE_RATIO / C.N_COARSE_CODEBOOKS)
                        * C.N_COARSE_CODEBOOKS))
    if n_steps <= 0:
        raise ArtifactError("The semantic input is too short to make any coarse frame.")
    return n_steps


def coarse_window_input(x_sem: torch.Tensor, x_coarse: torch.Tensor, sem_idx: int, max_semantic_history: int,
                        max_coarse_history: int) -> torch.Tensor:
    """One window's prompt (1-D): semantic context padded to 256, infer token, recent coarse history."""
    x_in = x_sem[max(0, sem_idx - max_semantic_history):][: C.COARSE_SEMANTIC_WINDOW]
    x_in = torch.nn.functional.pad(x_in, (0, C.COARSE_SEMANTIC_WINDOW - x_in.shape[-1]),
                                   value=C.COARSE_SEMANTIC_PAD_TOKEN)
    infer = x_sem.new_full((1,), C.COARSE_INFER_TOKEN)  # made on the device: no host-to-device copy
    return torch.cat([x_in, infer, x_coarse[-max_coarse_history:]])


def unflatten_coarse(flat: np.ndarray) -> np.ndarray:
    """Interleaved coarse ids back to (2, frames) codebook values."""
    codes = flat.astype(np.int64).reshape(-1, C.N_COARSE_CODEBOOKS).T - C.SEMANTIC_VOCAB_SIZE
    for n in range(1, C.N_COARSE_CODEBOOKS):
        codes[n, :] -= n * C.CODEBOOK_SIZE
    return codes


def coarse_range(n_step: int) -> int:
    """First logit index of the codebook that step ``n_step`` predicts."""
    return C.SEMANTIC_VOCAB_SIZE + (0 if n_step % C.N_COARSE_CODEBOOKS == 0 else C.CODEBOOK_SIZE)


def left_pad_prompts(prompts: list[torch.Tensor], device: torch.device,
                     pad: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Coarse window prompts of different lengths as one (B, T) batch, and each row's padding count.

    A caller that already holds the counts on the device passes them as ``pad``, so none is uploaded.
    """
    width = max(len(p) for p in prompts)
    if pad is None:
        pad = torch.tensor([width - len(p) for p in prompts], device=device)
    x_in = torch.stack([torch.nn.functional.pad(p, (width - len(p), 0), value=C.COARSE_SEMANTIC_PAD_TOKEN)
                        for p in prompts])
    return x_in, pad


def check_coarse_settings(max_coarse_history: int, sliding_window_len: int) -> None:
    limits.number("max_coarse_history", max_coarse_history, lo=C.MIN_COARSE_HISTORY, hi=C.MAX_COARSE_HISTORY,
                  integer=True, hint=f"Suno uses {C.MAX_COARSE_HISTORY}.")
    limits.number("sliding_window_len", sliding_window_len, lo=1, hi=C.CONTEXT_WINDOW_SIZE - 256 - max_coarse_history,
                  integer=True, hint="max_coarse_history + sliding_window_len must stay <= 768 (Suno: 630 + 60).")


@torch.inference_mode()
def coarse_tokens(model: torch.nn.Module, semantic: np.ndarray, voice: Any, *,
                  generator: torch.Generator, temp: float | None = C.DEFAULT_COARSE_TEMP,
                  top_k: int | None = None, top_p: float | None = None,
                  max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                  progress: Progress = None, on_window: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
    """Two interleaved codebooks, generated in windows of 60 tokens with a fresh KV cache each.

    ``on_window(flat)`` sees the interleaved tokens made so far after every window (streaming).
    """
    check_coarse_settings(max_coarse_history, sliding_window_len)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    sem_hist, coarse_hist = coarse_history(voice, max_coarse_history)
    n_steps = coarse_steps(len(semantic))
    device = device_of(model)
    x_sem = torch.from_numpy(np.hstack([sem_hist, semantic]).astype(np.int64)).to(device)
    x_coarse = torch.from_numpy(coarse_hist).to(device)
    base = len(sem_hist)
    generated: list[torch.Tensor] = []
    n_step = 0
    cache = model.new_cache(1)
    for _ in range(int(np.ceil(n_steps / sliding_window_len))):
        sem_idx = base + int(round(n_step / ratio))
        x_in = coarse_window_input(x_sem, x_coarse, sem_idx, max_semantic_history, max_coarse_history)
        cache.reset()
        logits = model(x_in[None], cache)
        for k in range(sliding_window_len):
            if n_step >= n_steps:
                break
            if k > 0:
                logits = model(generated[-1].view(1, 1), cache)
            start = coarse_range(n_step)
            item, _ = sample(logits[0, 0, start:start + C.CODEBOOK_SIZE].float(), generator, temp, top_k, top_p)
            item = item.reshape(()) + start
            generated.append(item)
            x_coarse = torch.cat([x_coarse, item.view(1)])
            n_step += 1
            _report(progress, n_step, n_steps)
        if on_window is not None:
            on_window(torch.stack(generated).cpu().numpy())
    return unflatten_coarse(torch.stack(generated).cpu().numpy())


def fine_input(coarse: np.ndarray, voice: Any) -> tuple[np.ndarray, int, int, int]:
    """(8, frames) input with voice history in front and padding behind, plus history, padding, loop counts."""
    n_coarse, n_frames = coarse.shape
    in_arr = np.vstack([coarse, np.full((C.N_FINE_CODEBOOKS - n_coarse, n_frames), C.FINE_PAD_TOKEN)])
    n_history = 0
    if voice is not None:
        hist = voice.fine[:, -C.FINE_HISTORY:]
        in_arr = np.hstack([hist, in_arr])
        n_history = hist.shape[1]
    n_pad = max(0, C.FINE_WINDOW - in_arr.shape[1])
    if n_pad:
        in_arr = np.hstack([in_arr, np.full((C.N_FINE_CODEBOOKS, n_pad), C.FINE_PAD_TOKEN)])
    n_loops = max(0, int(np.ceil((n_frames - (C.FINE_WINDOW - n_history)) / C.FINE_STEP))) + 1
    return in_arr, n_history, n_pad, n_loops


def fine_window(n: int, n_history: int, total: int) -> tuple[int, int, int]:
    """Window ``n``: where it starts, where filling starts, and the fill offset inside the window."""
    start = min(n * C.FINE_STEP, total - C.FINE_WINDOW)
    fill = min(n_history + n * C.FINE_STEP, total - C.FINE_STEP)
    return start, fill, fill - start


@torch.inference_mode()
def fine_tokens(model: torch.nn.Module, coarse: np.ndarray, voice: Any, *,
                generator: torch.Generator, temp: float | None = C.DEFAULT_FINE_TEMP,
                progress: Progress = None) -> np.ndarray:
    """Fill codebooks n_coarse..7 over 1024-frame windows that advance 512 frames at a time."""
    n_coarse = coarse.shape[0]
    in_arr, n_history, n_pad, n_loops = fine_input(coarse, voice)
    device = device_of(model)
    buf_all = torch.from_numpy(in_arr.T.astype(np.int64).copy()).to(device)  # (frames, 8)
    for n in range(n_loops):
        start, fill, rel = fine_window(n, n_history, len(buf_all))
        window = buf_all[start:start + C.FINE_WINDOW][None].clone()
        for nn in range(n_coarse, C.N_FINE_CODEBOOKS):
            logits = model(nn, window)[0, rel:, : C.CODEBOOK_SIZE].float()
            preds, _ = sample(logits, generator, temp)
            window[0, rel:, nn] = preds
        buf_all[fill:fill + (C.FINE_WINDOW - rel), n_coarse:] = window[0, rel:, n_coarse:]
        _report(progress, n + 1, n_loops)
    out = buf_all.T.cpu().numpy()[:, n_history:]
    if n_pad:
        out = out[:, :-n_pad]
    return out.astype(np.int64)


