"""The fast decoder: static KV cache, a one-token step replayed as CUDA graphs, sampling on the device.

Bark spends almost all its time in single-token decode steps (768 semantic + ~2,300 coarse for 15 s
of audio), and an eager step is mostly kernel-launch and Python overhead, not arithmetic. So this
module runs the step over fixed-shape buffers (:mod:`bark_core.sampling.static`): the KV cache, the
attention mask, the write index, the position ids and the fed-back token all live on the device and
are updated in place by the step itself. On CUDA the whole step (forward, candidate selection,
filtering, the draw, feeding the token back) is captured as CUDA graphs, one per key-length bucket,
and replayed (:mod:`bark_core.sampling.graphs` makes capture safe, checks the graphs once against the
eager model and falls back to eager steps with one warning when they cannot be trusted). Within a
call the host refills the random numbers and looks at the stop flags every few steps; a coarse
window's prompt is built on the device, so the host does not wait for the GPU between windows. On
the CPU the same step runs eagerly and, in bf16, through oneDNN-packed weights, which halves a step.

The eager loops in :mod:`bark_core.sampling.eager` stay the readable reference. The device sampler
is the exponential race that ``torch.multinomial`` itself runs for a single draw, fed from the same
generator, so on the CPU the fast path gives the eager path's tokens for a seed, sampled or greedy
(the tests check both). On CUDA the graph step attends with a mask over a bucket of keys while the
eager step attends over the live keys, so the two use different attention kernels; in bf16 their
logits differ by rounding, and their tokens match until a draw or an argmax meets a rounding
near-tie, after which the takes differ (each stays repeatable for its seed).
``BarkModels(decoder=...)`` chooses the path (automatic: fast on CUDA).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .. import constants as C
from ..errors import ParameterError
from ..models.gpt import GPT
from .eager import (
    check_coarse_settings,
    coarse_history,
    coarse_steps,
    coarse_window_input,
    left_pad_prompts,
    semantic_candidates,
    semantic_input,
    semantic_stop_mask,
    unflatten_coarse,
)
from .static import DeviceSampler, NonFiniteLogitsError, StaticDecoder, _packed_linear, precision_key

__all__ = ["DECODERS", "STOP_CHECK_EVERY", "DeviceSampler", "NonFiniteLogitsError", "StaticDecoder", "_packed_linear",
           "coarse_tokens_fast", "release", "resolve_decoder", "semantic_tokens_fast"]

Progress = Callable[[int, int], None] | None
DECODERS = ("auto", "fast", "eager")
STOP_CHECK_EVERY = 16  # semantic stage: host looks at the EOS flags once per this many steps


def resolve_decoder(decoder: str | bool | None, device: torch.device | str) -> str:
    """'fast' or 'eager' for a model on ``device``: automatic means fast on CUDA, eager elsewhere."""
    if decoder is True:
        return "fast"
    if decoder is False:
        return "eager"
    decoder = "auto" if decoder is None else str(decoder).lower()
    if decoder not in DECODERS:
        raise ParameterError(f"Unknown decoder {decoder!r}; use 'auto', 'fast' or 'eager'.")
    if decoder == "auto":
        return "fast" if torch.device(device).type == "cuda" else "eager"
    return decoder


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------

_DECODER_ATTR = "_bark_fast_decoder"


def _decoder(model: GPT, key: tuple, build: Callable[[], StaticDecoder]) -> StaticDecoder:
    """Reuse the decoder (and its captured graphs) of the last call with the same shape of settings.

    One decoder per model at a time, so the static cache never multiplies. A graph bakes in the
    address of every weight it reads, so the key holds every parameter's and buffer's address, plus
    device, dtype, autocast and TF32: a model moved behind our back (ComfyUI's model manager, an
    offload round trip) gets a new decoder instead of a replay over freed memory.
    """
    p = model.lm_head.weight
    addresses = tuple(t.data_ptr() for t in (*model.parameters(), *model.buffers()))
    full = (*key, precision_key(p.device, p.dtype), addresses)
    held = model.__dict__.get(_DECODER_ATTR)
    if held is not None and held[0] == full:
        return held[1]
    model.__dict__.pop(_DECODER_ATTR, None)
    dec = build()
    model.__dict__[_DECODER_ATTR] = (full, dec)
    return dec


def release(model: torch.nn.Module) -> None:
    """Drop a model's decoder (its static cache, graphs and packed CPU weights).

    Call it when a model leaves its device (``BarkModels`` offload and the ComfyUI nodes' unload hook
    do) or after changing its weights in place: the decoder keeps its own packed copy of bf16 CPU
    weights. A moved weight alone is caught by the decoder's key; releasing also frees the memory.
    """
    model.__dict__.pop(_DECODER_ATTR, None)


def _semantic_limit(max_steps: int, max_gen_duration_s: float | None) -> int:
    """Tokens the eager loop can emit: it stops after the token whose running duration passes the limit."""
    if max_gen_duration_s is None:
        return max_steps
    duration = 0.0
    for n in range(max_steps):
        duration += 1 / C.SEMANTIC_RATE_HZ
        if duration > max_gen_duration_s:
            return n + 1
    return max_steps


@torch.inference_mode()
def semantic_tokens_fast(model: GPT, text_ids: Sequence[np.ndarray], histories: Sequence[np.ndarray | None],
                         generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_SEMANTIC_TEMP,
                         top_k: int | None = None, top_p: float | None = None,
                         min_eos_p: float | None = C.DEFAULT_MIN_EOS_P, max_gen_duration_s: float | None = None,
                         allow_early_stop: bool = True, max_steps: int = C.MAX_SEMANTIC_STEPS,
                         progress: Progress = None, graph: bool | None = None) -> list[np.ndarray]:
    """:func:`eager.semantic_tokens` for a batch, on the static decoder; EOS is checked every few steps."""
    device = model.lm_head.weight.device
    B = len(text_ids)
    x = torch.from_numpy(np.stack([semantic_input(t, h) for t, h in zip(text_ids, histories, strict=True)]))
    limit = _semantic_limit(max_steps, max_gen_duration_s)
    width = C.SEMANTIC_VOCAB_SIZE + (1 if allow_early_stop else 0)
    use_eos_p = min_eos_p is not None

    def build() -> StaticDecoder:
        def select(logits: torch.Tensor, dec: StaticDecoder) -> torch.Tensor:
            return semantic_candidates(logits, allow_early_stop)

        def emit(ids: torch.Tensor, probs: torch.Tensor | None, dec: StaticDecoder) -> torch.Tensor:
            stop = semantic_stop_mask(ids, probs, allow_early_stop, dec.state["min_eos_p"] if use_eos_p else None)
            done, n_out = dec.state["done"], dec.state["n_out"]
            n_out.copy_(torch.where(stop & ~done, dec.out_idx, n_out))  # tokens before the first stop
            done.logical_or_(stop)
            return ids

        sampler = DeviceSampler(generators, width, device, temp, top_k, top_p)
        dec = StaticDecoder(model, B, sampler, select, emit, max_steps, graph)
        dec.state.update(done=torch.zeros(B, dtype=torch.bool, device=device),
                         n_out=torch.zeros(B, dtype=torch.long, device=device),
                         min_eos_p=torch.zeros((), dtype=torch.float32, device=device))
        return dec.ready()

    # temperature, top-p and min-EOS-p are device scalars the graphs read: not part of the key
    key = ("semantic", B, temp is None, top_k, top_p is not None, use_eos_p, allow_early_stop, max_steps, graph)
    dec = _decoder(model, key, build)
    dec.sampler.generators = list(generators)
    dec.sampler.configure(temp, top_p)
    if use_eos_p:
        dec.state["min_eos_p"].fill_(float(min_eos_p))
    done, n_out = dec.state["done"], dec.state["n_out"]
    done.zero_()
    dec.bad.zero_()
    n_out.fill_(limit)
    dec.start(x.to(device), merge_context=True)
    n = 1
    while n < limit:
        if n % STOP_CHECK_EVERY == 0:
            if progress is not None:
                progress(n, max_steps)
            all_done, any_bad = torch.stack([done.all(), dec.bad.any()]).tolist()  # one read for both flags
            if any_bad:
                dec.check_finite("text")
            if all_done:
                break
        dec.step()
        n += 1
    if progress is not None:
        progress(max_steps, max_steps)
    dec.check_finite("text")
    lengths = n_out.clamp(max=n).tolist()
    tokens = dec.out[:, :n].cpu().numpy()
    dec.park()
    return [tokens[b, :lengths[b]].astype(np.int64) for b in range(B)]


def _window_pads(hist_lengths: list[int], n_windows: int, window: int, max_coarse_history: int) -> list[list[int]]:
    """Left padding of every row in every coarse window, from host-side lengths alone.

    A window's prompt is 256 semantic slots, the infer token and the last ``max_coarse_history``
    coarse tokens; rows advance in lockstep, so row b holds ``hist_lengths[b] + w * window`` of them.
    """
    pads = []
    for w in range(n_windows):
        lengths = [C.COARSE_SEMANTIC_WINDOW + 1 + min(h + w * window, max_coarse_history) for h in hist_lengths]
        pads.append([max(lengths) - n for n in lengths])
    return pads


@torch.inference_mode()
def coarse_tokens_fast(model: GPT, semantics: Sequence[np.ndarray], voices: Sequence[Any],
                       generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_COARSE_TEMP,
                       top_k: int | None = None, top_p: float | None = None,
                       max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                       progress: Progress = None, graph: bool | None = None,
                       on_window: Callable[[np.ndarray], None] | None = None) -> list[np.ndarray]:
    """:func:`eager.coarse_tokens` for a batch: each window re-prefilled in one pass, then graph steps.

    ``on_window(flat)`` sees the first row's interleaved tokens so far after every window (streaming;
    it reads them back from the device, so only a caller who asks pays that wait).

    Everything a window needs is on the device before the first one starts (prompt sources, padding
    counts), and its prompt is built there from the tokens already generated, so the host never waits
    for the GPU until the last window is done.
    """
    check_coarse_settings(max_coarse_history, sliding_window_len)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    device = model.lm_head.weight.device
    B = len(semantics)
    hists = [coarse_history(v, max_coarse_history) for v in voices]
    n_steps = [coarse_steps(len(s)) for s in semantics]
    total = max(n_steps)
    n_windows = math.ceil(total / sliding_window_len)
    x_sem = [torch.from_numpy(np.hstack([h[0], s]).astype(np.int64)).to(device)
             for h, s in zip(hists, semantics, strict=True)]
    hist_coarse = [torch.from_numpy(h[1]).to(device) for h in hists]
    base = [len(h[0]) for h in hists]
    host_pads = _window_pads([len(h[1]) for h in hists], n_windows, sliding_window_len, max_coarse_history)
    pads = torch.tensor(host_pads, dtype=torch.long).to(device)  # one upload for every window

    def build() -> StaticDecoder:
        span = torch.arange(C.CODEBOOK_SIZE, device=device)

        def offset(dec: StaticDecoder) -> torch.Tensor:
            return C.SEMANTIC_VOCAB_SIZE + dec.state["parity"] * C.CODEBOOK_SIZE

        def select(logits: torch.Tensor, dec: StaticDecoder) -> torch.Tensor:
            return logits.index_select(1, span + offset(dec))

        def emit(ids: torch.Tensor, probs: torch.Tensor | None, dec: StaticDecoder) -> torch.Tensor:
            tokens = ids + offset(dec)
            parity = dec.state["parity"]
            parity.copy_((parity + 1) % C.N_COARSE_CODEBOOKS)  # codebooks alternate token by token
            return tokens

        sampler = DeviceSampler(generators, C.CODEBOOK_SIZE, device, temp, top_k, top_p)
        dec = StaticDecoder(model, B, sampler, select, emit, sliding_window_len, graph)
        dec.state["parity"] = torch.zeros(1, dtype=torch.long, device=device)
        return dec.ready()

    key = ("coarse", B, temp is None, top_k, top_p is not None, sliding_window_len, graph)
    dec = _decoder(model, key, build)
    dec.sampler.generators = list(generators)
    dec.sampler.configure(temp, top_p)
    dec.bad.zero_()
    windows: list[torch.Tensor] = []  # (B, steps) each, kept on the device
    n_step = 0
    for w in range(n_windows):
        made = torch.cat(windows, dim=1) if windows else None
        prompts = []
        for b in range(B):
            x_coarse = hist_coarse[b] if made is None else torch.cat([hist_coarse[b], made[b]])
            prompts.append(coarse_window_input(x_sem[b], x_coarse, base[b] + int(round(n_step / ratio)),
                                               max_semantic_history, max_coarse_history))
        x_in, _ = left_pad_prompts(prompts, device, pad=pads[w])
        assert [x_in.shape[1] - len(p) for p in prompts] == host_pads[w]  # shapes only: no device read
        dec.state["parity"].fill_(n_step % C.N_COARSE_CODEBOOKS)
        dec.start(x_in, pad=pads[w] if B > 1 else None, padded=any(host_pads[w]))
        steps = min(sliding_window_len, total - n_step)
        for _ in range(steps - 1):
            dec.step()
        windows.append(dec.out[:, :steps].clone())
        n_step += steps
        if on_window is not None:
            on_window(torch.cat(windows, dim=1)[0].cpu().numpy())
        if progress is not None:
            progress(n_step, total)
    flat = torch.cat(windows, dim=1).cpu().numpy()
    dec.check_finite("coarse")
    dec.park()
    return [unflatten_coarse(flat[b, :n_steps[b]]) for b in range(B)]
