"""The fast decoder: static KV cache, a one-token step that can be replayed as a CUDA graph, sampling on the device.

Bark spends almost all its time in single-token decode steps (768 semantic + ~2,300 coarse for 15 s
of audio), and an eager step is mostly kernel-launch and Python overhead, not arithmetic. So this
module runs the step over fixed-shape buffers: the KV cache, the attention mask, the write index,
the position ids and the fed-back token all live on the device and are updated in place by the step
itself. On CUDA the whole step (forward, candidate selection, filtering, the draw, feeding the token
back) is captured once as a CUDA graph and replayed; the host only refills the random numbers and
looks at the stop flags every few steps. On the CPU the same step runs eagerly and, in bf16, through
oneDNN-packed weights, which halves a step there.

The eager loops in :mod:`bark_core.sampling.eager` stay the readable reference. Under greedy decoding this
path gives their tokens; under sampling it draws from the same distribution but with its own use of
the random stream (the exponential race below instead of ``torch.multinomial``), so a seed gives
different, equally repeatable audio on the two paths. ``BarkModels(decoder=...)`` chooses the path
(automatic: fast on CUDA).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from .. import constants as C
from .. import limits
from ..errors import ParameterError
from ..models.gpt import GPT
from .draw import filter_logits
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
# Sampling on the device
# --------------------------------------------------------------------------------------------------

class DeviceSampler:
    """Suno's filtering (top-p, top-k, temperature) and a draw that never leaves the device.

    The draw is an exponential race: with E_i ~ Exp(1), ``argmax p_i / E_i`` is distributed exactly
    as ``p``. The noise is drawn outside any graph, one row per item from that item's generator, so
    item i of a batch sees the random stream it would see alone.
    """

    def __init__(self, generators: Sequence[torch.Generator], width: int, device: torch.device,
                 temp: float | None, top_k: int | None, top_p: float | None):
        if temp is not None:
            limits.number("temperature", temp, lo=0.0, lo_open=True, hint="Use e.g. 0.7, or None for argmax.")
        self.generators = list(generators)
        self.temp, self.top_k, self.top_p = temp, top_k, top_p
        self.noise = torch.ones(len(self.generators), width, device=device, dtype=torch.float32)

    def refill(self) -> None:
        """New noise for the next draw (host side, no sync)."""
        if self.temp is None:
            return
        for row, gen in zip(self.noise, self.generators, strict=True):
            row.exponential_(generator=gen)

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, width) candidate logits -> ids (B,) and the probabilities drawn from (None for argmax)."""
        if self.temp is None:
            return torch.argmax(logits, dim=-1), None
        probs = F.softmax(filter_logits(logits, self.top_k, self.top_p) / self.temp, dim=-1)
        return torch.argmax(probs / self.noise.clamp_min(1e-30), dim=-1), probs


# --------------------------------------------------------------------------------------------------
# Linear layers for one-token steps
# --------------------------------------------------------------------------------------------------

def _packed_linear(weight: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A oneDNN-prepacked bf16 linear for CPU decode steps, or None where that op is not available.

    For a single row, PyTorch's plain bf16 ``linear`` reaches about half the memory bandwidth that the
    packed weight reaches on CPUs with AMX/AVX512-BF16; the result is the same product.
    """
    ops = getattr(torch.ops, "mkldnn", None)
    if weight.device.type != "cpu" or weight.dtype != torch.bfloat16 or ops is None:
        return None
    try:
        packed = ops._reorder_linear_weight(weight, 1)

        def run(x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, x.shape[-1])
            return ops._linear_pointwise(flat, packed, None, "none", [], "").reshape(*x.shape[:-1], -1)

        probe = torch.ones(1, weight.shape[1], dtype=weight.dtype)
        if not torch.equal(run(probe), F.linear(probe, weight)):
            return None
        return run
    except (RuntimeError, AttributeError):
        return None


def _step_linears(model: GPT) -> dict[int, Callable[[torch.Tensor], torch.Tensor]]:
    out: dict[int, Callable[[torch.Tensor], torch.Tensor]] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            packed = _packed_linear(module.weight.detach()) if module.bias is None else None
            out[id(module)] = packed or module.forward
    return out


# --------------------------------------------------------------------------------------------------
# The static decoder
# --------------------------------------------------------------------------------------------------

class StaticDecoder:
    """One causal model, a batch size and a sampler, with every per-step tensor preallocated.

    ``select(logits, dec)`` picks the candidate logits of a step and ``emit(ids, probs, dec)`` turns
    the draw into tokens (and updates stage state kept in ``dec.state``); both are plain tensor
    code, so they are captured in the graph together with the forward pass. Call :meth:`ready`
    once the stage state exists: on CUDA it records the graph.
    """

    def __init__(self, model: GPT, batch: int, sampler: DeviceSampler,
                 select: Callable[[torch.Tensor, StaticDecoder], torch.Tensor],
                 emit: Callable[[torch.Tensor, torch.Tensor | None, StaticDecoder], torch.Tensor],
                 max_out: int, graph: bool | None = None):
        p = model.lm_head.weight
        self.model, self.B, self.sampler = model, batch, sampler
        self.select, self.emit = select, emit
        self.device = p.device
        self.L = model.config.block_size
        self.cache = model.new_cache(batch, self.L)
        dev = self.device
        self.tok = torch.zeros(batch, 1, dtype=torch.long, device=dev)  # token fed to the next step
        self.pos = torch.zeros(batch, 1, dtype=torch.long, device=dev)  # its position id (after padding)
        self.write = torch.zeros(1, dtype=torch.long, device=dev)  # cache slot it is written to
        self.mask = torch.zeros(batch, 1, 1, self.L, dtype=torch.bool, device=dev)
        self.out = torch.zeros(batch, max(1, max_out), dtype=torch.long, device=dev)
        self.out_idx = torch.zeros(1, dtype=torch.long, device=dev)
        self.length = 0  # host copy of the write slot, for the eager step's slicing
        self.padded = False
        self.lin = _step_linears(model)
        self.state: dict[str, torch.Tensor] = {}
        self.graph: torch.cuda.CUDAGraph | None = None
        self.use_graph = self.device.type == "cuda" if graph is None else bool(graph)

    def ready(self) -> StaticDecoder:
        if self.use_graph and self.graph is None:
            self._capture()
        return self

    # -- the step -----------------------------------------------------------------------------------

    def _forward_one(self, n_keys: int, masked: bool) -> torch.Tensor:
        m, B = self.model, self.B
        cfg = m.config
        H, Cn = cfg.n_head, cfg.n_embd
        hd = Cn // H
        lin = self.lin
        self.mask.index_fill_(-1, self.write, True)
        x = m.transformer.wte(self.tok) + m.transformer.wpe(self.pos)
        mask = self.mask[..., :n_keys] if masked else None
        for i, blk in enumerate(m.transformer.h):
            att = blk.attn
            q, k, v = lin[id(att.c_attn)](blk.ln_1(x)).split(Cn, dim=2)
            q = q.view(B, 1, H, hd).transpose(1, 2)
            self.cache.k[i].index_copy_(2, self.write, k.view(B, 1, H, hd).transpose(1, 2))
            self.cache.v[i].index_copy_(2, self.write, v.view(B, 1, H, hd).transpose(1, 2))
            y = F.scaled_dot_product_attention(q, self.cache.k[i][:, :, :n_keys], self.cache.v[i][:, :, :n_keys],
                                               attn_mask=mask)
            x = x + lin[id(att.c_proj)](y.transpose(1, 2).reshape(B, 1, Cn))
            mlp = blk.mlp
            x = x + lin[id(mlp.c_proj)](mlp.gelu(lin[id(mlp.c_fc)](blk.ln_2(x))))
        self.write += 1
        self.pos += 1
        return lin[id(m.lm_head)](m.transformer.ln_f(x))[:, 0]

    def _draw(self, logits: torch.Tensor) -> None:
        ids, probs = self.sampler(self.select(logits.float(), self))
        tokens = self.emit(ids, probs, self)
        self.tok.copy_(tokens[:, None])
        self.out.index_copy_(1, self.out_idx, tokens[:, None])
        self.out_idx += 1

    def _body(self, n_keys: int, masked: bool) -> None:
        self._draw(self._forward_one(n_keys, masked))

    def _capture(self) -> None:
        """Record the step once. Warm-up runs scribble on the buffers, which ``start`` and the stage reset."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.out_idx.zero_()
                self._body(self.L, True)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.out_idx.zero_()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._body(self.L, True)

    # -- driving it -----------------------------------------------------------------------------------

    def start(self, x: torch.Tensor, pad: torch.Tensor | None = None, merge_context: bool = False) -> None:
        """Prefill ``x`` (B, T) into the cache and draw the first token from its last position."""
        self.cache.reset()
        logits = self.model(x, self.cache, merge_context=merge_context, pad=pad)[:, -1]
        T = self.cache.length
        keys = torch.arange(self.L, device=self.device)
        first = torch.zeros(self.B, dtype=torch.long, device=self.device) if pad is None else pad.to(self.device)
        self.mask.copy_(((keys[None] >= first[:, None]) & (keys[None] < T))[:, None, None])
        self.write.fill_(T)
        self.pos.copy_((T - first)[:, None])
        self.length = T
        self.padded = pad is not None and bool((pad != 0).any())
        self.out_idx.zero_()
        self.sampler.refill()
        self._draw(logits)

    def step(self) -> None:
        """Feed the last token, draw the next (one graph replay on CUDA)."""
        if self.length >= self.L:
            raise RuntimeError(f"Static KV cache full: {self.L} positions.")
        self.sampler.refill()
        if self.graph is not None:
            self.graph.replay()
        else:
            self._body(self.length + 1, self.padded)
        self.length += 1


# --------------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------------

_DECODER_ATTR = "_bark_fast_decoder"


def _decoder(model: GPT, key: tuple, build: Callable[[], StaticDecoder]) -> StaticDecoder:
    """Reuse the decoder (and its captured graph) of the last call with the same settings.

    One decoder per model at a time, so the static cache never multiplies; a change of device or
    dtype (offload, precision) is part of the key.
    """
    p = model.lm_head.weight
    full = (*key, p.device, p.dtype, p.data_ptr())
    held = model.__dict__.get(_DECODER_ATTR)
    if held is not None and held[0] == full:
        return held[1]
    model.__dict__.pop(_DECODER_ATTR, None)
    dec = build()
    model.__dict__[_DECODER_ATTR] = (full, dec)
    return dec


def release(model: torch.nn.Module) -> None:
    """Drop a model's decoder (its static cache, graph and packed CPU weights).

    Call it before moving a model or after changing its weights in place: the decoder keeps its own
    packed copy of bf16 CPU weights and is otherwise rebuilt only when device, dtype or storage change.
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

    def build() -> StaticDecoder:
        def select(logits: torch.Tensor, dec: StaticDecoder) -> torch.Tensor:
            return semantic_candidates(logits, allow_early_stop)

        def emit(ids: torch.Tensor, probs: torch.Tensor | None, dec: StaticDecoder) -> torch.Tensor:
            stop = semantic_stop_mask(ids, probs, allow_early_stop, min_eos_p)
            done, n_out = dec.state["done"], dec.state["n_out"]
            n_out.copy_(torch.where(stop & ~done, dec.out_idx, n_out))  # tokens before the first stop
            done.logical_or_(stop)
            return ids

        sampler = DeviceSampler(generators, width, device, temp, top_k, top_p)
        dec = StaticDecoder(model, B, sampler, select, emit, max_steps, graph)
        dec.state.update(done=torch.zeros(B, dtype=torch.bool, device=device),
                         n_out=torch.zeros(B, dtype=torch.long, device=device))
        return dec.ready()

    key = ("semantic", B, temp, top_k, top_p, min_eos_p, allow_early_stop, max_steps, graph)
    dec = _decoder(model, key, build)
    dec.sampler.generators = list(generators)
    done, n_out = dec.state["done"], dec.state["n_out"]
    done.zero_()
    n_out.fill_(limit)
    dec.start(x.to(device), merge_context=True)
    n = 1
    while n < limit:
        if n % STOP_CHECK_EVERY == 0:
            if progress is not None:
                progress(n, max_steps)
            if bool(done.all()):
                break
        dec.step()
        n += 1
    if progress is not None:
        progress(max_steps, max_steps)
    lengths = n_out.clamp(max=n).tolist()
    tokens = dec.out[:, :n].cpu().numpy()
    return [tokens[b, :lengths[b]].astype(np.int64) for b in range(B)]


@torch.inference_mode()
def coarse_tokens_fast(model: GPT, semantics: Sequence[np.ndarray], voices: Sequence[Any],
                       generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_COARSE_TEMP,
                       top_k: int | None = None, top_p: float | None = None,
                       max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                       progress: Progress = None, graph: bool | None = None) -> list[np.ndarray]:
    """:func:`eager.coarse_tokens` for a batch: each window re-prefilled in one pass, then graph steps.

    The prompts of a window are built on the device from the tokens already generated, so the host
    never waits for the GPU until the last window is done.
    """
    check_coarse_settings(max_coarse_history, sliding_window_len)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    device = model.lm_head.weight.device
    B = len(semantics)
    hists = [coarse_history(v, max_coarse_history) for v in voices]
    n_steps = [coarse_steps(len(s)) for s in semantics]
    total = max(n_steps)
    x_sem = [torch.from_numpy(np.hstack([h[0], s]).astype(np.int64)).to(device)
             for h, s in zip(hists, semantics, strict=True)]
    hist_coarse = [torch.from_numpy(h[1]).to(device) for h in hists]
    base = [len(h[0]) for h in hists]

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

    dec = _decoder(model, ("coarse", B, temp, top_k, top_p, sliding_window_len, graph), build)
    dec.sampler.generators = list(generators)
    windows: list[torch.Tensor] = []  # (B, steps) each, kept on the device
    n_step = 0
    while n_step < total:
        made = torch.cat(windows, dim=1) if windows else None
        prompts = []
        for b in range(B):
            x_coarse = hist_coarse[b] if made is None else torch.cat([hist_coarse[b], made[b]])
            prompts.append(coarse_window_input(x_sem[b], x_coarse, base[b] + int(round(n_step / ratio)),
                                               max_semantic_history, max_coarse_history))
        x_in, pad = left_pad_prompts(prompts, device)
        dec.state["parity"].fill_(n_step % C.N_COARSE_CODEBOOKS)
        dec.start(x_in, pad=pad if B > 1 else None)
        steps = min(sliding_window_len, total - n_step)
        for _ in range(steps - 1):
            dec.step()
        windows.append(dec.out[:, :steps].clone())
        n_step += steps
        if progress is not None:
            progress(n_step, total)
    flat = torch.cat(windows, dim=1).cpu().numpy()
    return [unflatten_coarse(flat[b, :n_steps[b]]) for b in range(B)]
