"""Batched eager decode loops: several prompts in one forward pass per step.

Each item keeps its own generator, so item i of a batch gives what a batch of one gives for it: rows
that finish early keep stepping with their output ignored, and rows of different lengths are
left-padded with the padding hidden from attention (see ``models.gpt.padded_causal_mask``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .. import constants as C
from .draw import sample
from .eager import (
    check_coarse_settings,
    coarse_history,
    coarse_range,
    coarse_steps,
    coarse_window_input,
    device_of,
    fine_input,
    fine_window,
    left_pad_prompts,
    semantic_candidates,
    semantic_input,
    semantic_stop,
    unflatten_coarse,
)


@torch.inference_mode()
def semantic_tokens_batch(model: torch.nn.Module, text_ids: Sequence[np.ndarray],
                          histories: Sequence[np.ndarray | None], generators: Sequence[torch.Generator], *,
                          temp: float | None = C.DEFAULT_SEMANTIC_TEMP, top_k: int | None = None,
                          top_p: float | None = None, min_eos_p: float | None = C.DEFAULT_MIN_EOS_P,
                          max_gen_duration_s: float | None = None, allow_early_stop: bool = True,
                          max_steps: int = C.MAX_SEMANTIC_STEPS, progress: Callable[[int, int], None] | None = None
                          ) -> list[np.ndarray]:
    """Batched :func:`generation.semantic_tokens`; every prompt is 513 tokens, so no padding is needed."""
    device = device_of(model)
    x = torch.from_numpy(np.stack([semantic_input(t, h) for t, h in zip(text_ids, histories, strict=True)])).to(device)
    B = len(text_ids)
    cache = model.new_cache(B)
    logits = model(x, cache, merge_context=True)
    out: list[list[int]] = [[] for _ in range(B)]
    done = [False] * B
    duration = 0.0
    for n in range(max_steps):
        if n > 0:
            feed = torch.tensor([[o[-1] if o else 0] for o in out], device=device)
            logits = model(feed, cache)
        duration += 1 / C.SEMANTIC_RATE_HZ
        for b in range(B):
            if done[b]:
                continue
            item_t, probs = sample(semantic_candidates(logits[b, 0], allow_early_stop), generators[b], temp, top_k,
                                   top_p)
            item = int(item_t)
            if semantic_stop(item, probs, allow_early_stop, min_eos_p):
                done[b] = True
                continue
            out[b].append(item)
            if max_gen_duration_s is not None and duration > max_gen_duration_s:
                done[b] = True
        if progress is not None:
            progress(n + 1, max_steps)
        if all(done):
            break
    return [np.asarray(o, dtype=np.int64) for o in out]


@torch.inference_mode()
def coarse_tokens_batch(model: torch.nn.Module, semantics: Sequence[np.ndarray], voices: Sequence[Any],
                        generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_COARSE_TEMP,
                        top_k: int | None = None, top_p: float | None = None,
                        max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                        progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Batched :func:`generation.coarse_tokens`: each window's prompts are left-padded to one length."""
    check_coarse_settings(max_coarse_history, sliding_window_len)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    device = device_of(model)
    B = len(semantics)
    hists = [coarse_history(v, max_coarse_history) for v in voices]
    n_steps = [coarse_steps(len(s)) for s in semantics]
    x_sem = [torch.from_numpy(np.hstack([h[0], s]).astype(np.int64)).to(device)
             for h, s in zip(hists, semantics, strict=True)]
    x_coarse = [torch.from_numpy(h[1]).to(device) for h in hists]
    base = [len(h[0]) for h in hists]
    generated: list[list[int]] = [[] for _ in range(B)]
    n_windows = max(int(np.ceil(n / sliding_window_len)) for n in n_steps)
    total = max(n_steps)
    n_step = 0  # windows advance in lockstep, so every active row is at the same step
    for _ in range(n_windows):
        rows = [b for b in range(B) if n_step < n_steps[b]]
        prompts = [coarse_window_input(x_sem[b], x_coarse[b], base[b] + int(round(n_step / ratio)),
                                       max_semantic_history, max_coarse_history) for b in rows]
        x_in, pad = left_pad_prompts(prompts, device)
        cache = model.new_cache(len(rows))
        logits = model(x_in, cache, pad=pad)
        for k in range(sliding_window_len):
            if n_step >= total:
                break
            if k > 0:
                feed = torch.tensor([[x_coarse[b][-1]] for b in rows], device=device)
                logits = model(feed, cache, pad=pad)
            start = coarse_range(n_step)
            for i, b in enumerate(rows):
                if n_step >= n_steps[b]:
                    continue  # finished row: keeps a place in the batch, output ignored
                item, _ = sample(logits[i, 0, start:start + C.CODEBOOK_SIZE].float(), generators[b], temp, top_k,
                                 top_p)
                token = int(item) + start
                generated[b].append(token)
                x_coarse[b] = torch.cat([x_coarse[b], torch.tensor([token], device=device)])
            n_step += 1
            if progress is not None:
                progress(min(n_step, total), total)
    return [unflatten_coarse(np.asarray(g)) for g in generated]


@torch.inference_mode()
def fine_tokens_batch(model: torch.nn.Module, coarses: Sequence[np.ndarray], voices: Sequence[Any],
                      generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_FINE_TEMP,
                      progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Batched :func:`generation.fine_tokens`: windows are always 1,024 frames, so rows stack as they are."""
    device = device_of(model)
    prepared = [fine_input(c, v) for c, v in zip(coarses, voices, strict=True)]
    bufs = [torch.from_numpy(p[0].T.astype(np.int64).copy()).to(device) for p in prepared]
    n_loops = max(p[3] for p in prepared)
    n_coarse = coarses[0].shape[0]
    for n in range(n_loops):
        rows = [b for b, p in enumerate(prepared) if n < p[3]]
        spans = [fine_window(n, prepared[b][1], len(bufs[b])) for b in rows]
        windows = torch.stack([bufs[b][s:s + C.FINE_WINDOW] for b, (s, _, _) in zip(rows, spans, strict=True)]).clone()
        for nn in range(n_coarse, C.N_FINE_CODEBOOKS):
            logits = model(nn, windows)
            for i, (b, (_, _, rel)) in enumerate(zip(rows, spans, strict=True)):
                preds, _ = sample(logits[i, rel:, : C.CODEBOOK_SIZE].float(), generators[b], temp)
                windows[i, rel:, nn] = preds
        for i, (b, (_, fill, rel)) in enumerate(zip(rows, spans, strict=True)):
            bufs[b][fill:fill + (C.FINE_WINDOW - rel), n_coarse:] = windows[i, rel:, n_coarse:]
        if progress is not None:
            progress(n + 1, n_loops)
    out = []
    for buf, (_, n_history, n_pad, _) in zip(bufs, prepared, strict=True):
        arr = buf.T.cpu().numpy()[:, n_history:]
        out.append((arr[:, :-n_pad] if n_pad else arr).astype(np.int64))
    return out
