"""The fast decoder's machinery: a sampler that stays on the device, packed CPU linears, the static decoder.

:mod:`bark_core.sampling.fast` builds the semantic and coarse stages on top of :class:`StaticDecoder`;
:mod:`bark_core.sampling.graphs` captures its step as CUDA graphs and decides when not to trust them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import BarkError
from ..models.device import autocast_dtype, return_freed_memory
from ..models.gpt import GPT
from ..models.quant import Int8Linear
from . import graphs
from .draw import filter_logits


class NonFiniteLogitsError(BarkError, FloatingPointError):
    """The model produced NaN or infinite logits, so no token can be drawn from them."""


# --------------------------------------------------------------------------------------------------
# Sampling on the device
# --------------------------------------------------------------------------------------------------

class DeviceSampler:
    """Suno's filtering (top-p, top-k, temperature) and a draw that never leaves the device.

    The draw is an exponential race: with E_i ~ Exp(1), ``argmax p_i / E_i`` is distributed exactly
    as ``p``, and it is what ``torch.multinomial`` computes for a single draw. The noise is drawn
    outside any graph, one row per item from that item's generator, so item i of a batch sees the
    random stream it would see alone.

    Temperature and top-p live in device scalars that a captured graph reads at replay, so changing
    them (:meth:`configure`) needs no new graph; only greedy-or-not, top-k and top-p on-or-off shape
    the step.
    """

    def __init__(self, generators: Sequence[torch.Generator], width: int, device: torch.device,
                 temp: float | None, top_k: int | None, top_p: float | None):
        self.generators = list(generators)
        self.greedy, self.top_k, self.use_top_p = temp is None, top_k, top_p is not None
        self.device = torch.device(device)
        self.noise = torch.ones(len(self.generators), width, device=device, dtype=torch.float32)
        self.temp = torch.ones((), device=device, dtype=torch.float32)
        self.top_p = torch.ones((), device=device, dtype=torch.float32)
        self.configure(temp, top_p)

    def mode(self) -> tuple:
        return self.greedy, self.top_k, self.use_top_p

    def configure(self, temp: float | None, top_p: float | None) -> None:
        """New temperature and top-p for the next draws (a device fill, no sync, no new graph)."""
        if (temp is None) != self.greedy or (top_p is not None) != self.use_top_p:
            raise ValueError("greedy-or-sampled and top_p on-or-off are part of the sampler's shape; build a new one.")
        if temp is not None and temp <= 0:
            raise ValueError(f"temperature must be > 0 (or None for argmax), got {temp}.")
        if temp is not None:
            # on CUDA, PyTorch divides by a Python scalar as a product with its float32 reciprocal; keep
            # that rounding so the eager and fast paths see the same probabilities there too
            div = np.float32(1.0) / np.float32(temp) if self.device.type == "cuda" else temp
            self.temp.fill_(float(div))
        if top_p is not None:
            self.top_p.fill_(float(top_p))

    def refill(self) -> None:
        """New noise for the next draw (host side, no sync)."""
        if self.greedy:
            return
        for row, gen in zip(self.noise, self.generators, strict=True):
            row.exponential_(generator=gen)

    def __call__(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, width) candidate logits -> ids (B,) and the probabilities drawn from (None for argmax)."""
        if self.greedy:
            return torch.argmax(logits, dim=-1), None
        filtered = filter_logits(logits, self.top_k, self.top_p if self.use_top_p else None)
        scaled = filtered * self.temp if self.device.type == "cuda" else filtered / self.temp
        probs = F.softmax(scaled, dim=-1)
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
    autocast = autocast_dtype(model.lm_head.weight.device) is not None
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            packed = _packed_linear(module.weight.detach()) if module.bias is None and not autocast else None
            out[id(module)] = packed or module.forward
        elif isinstance(module, Int8Linear):  # PyTorch's int8 kernel: nothing to pack, no host sync
            out[id(module)] = module.forward
    return out


def precision_key(device: torch.device, dtype: torch.dtype) -> tuple:
    """What a captured step bakes in besides addresses: device, weight dtype, autocast, TF32."""
    tf32 = torch.backends.cuda.matmul.allow_tf32 if device.type == "cuda" else None
    return str(device), dtype, autocast_dtype(device), tf32


# --------------------------------------------------------------------------------------------------
# The static decoder
# --------------------------------------------------------------------------------------------------

class StaticDecoder:
    """One causal model, a batch size and a sampler, with every per-step tensor preallocated.

    ``select(logits, dec)`` picks the candidate logits of a step and ``emit(ids, probs, dec)`` turns
    the draw into tokens (and updates stage state kept in ``dec.state``); both are plain tensor
    code, so they are captured in the graph together with the forward pass. Call :meth:`ready`
    once the stage state exists: with graphs on, it records one graph per key-length bucket and,
    the first time for this model and device, checks them against the eager model.
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
        self.logits = torch.zeros(batch, p.shape[0], dtype=torch.float32, device=dev)  # last step's, for checks
        self.bad = torch.zeros(batch, dtype=torch.bool, device=dev)  # a step saw NaN/inf logits
        self.length = 0  # host copy of the write slot: picks the bucket, slices the eager step
        self.padded = False
        self.lin = _step_linears(model)
        self.state: dict[str, torch.Tensor] = {}
        self.graphs: dict[int, Callable[[], None]] = {}  # key-length bucket -> replay
        self.buckets: tuple[int, ...] = ()
        self.use_graph = self.device.type == "cuda" if graph is None else bool(graph)
        self.key = precision_key(self.device, p.dtype)

    def ready(self) -> StaticDecoder:
        if not self.use_graph or self.graphs:
            return self
        known = graphs.verdict(self.model, self.key)
        if known is not None and not known[0]:
            self.use_graph = False  # this model already fell back here: no new warning, no new capture
            return self
        try:
            self._capture()
            if known is None and graphs.self_check_enabled():
                self._self_check()
        except Exception as exc:  # noqa: BLE001 - any capture or check failure means: do not trust graphs
            self._fall_back(exc)
        return self

    def _fall_back(self, exc: BaseException) -> None:
        self.graphs.clear()
        self.use_graph = False
        graphs.fall_back(self.model, self.key, exc)

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
            kc, vc = self.cache.k[i], self.cache.v[i]
            q, k, v = lin[id(att.c_attn)](blk.ln_1(x)).split(Cn, dim=2)
            q = q.view(B, 1, H, hd).transpose(1, 2)
            kc.index_copy_(2, self.write, k.view(B, 1, H, hd).transpose(1, 2).to(kc.dtype))
            vc.index_copy_(2, self.write, v.view(B, 1, H, hd).transpose(1, 2).to(vc.dtype))
            y = F.scaled_dot_product_attention(q.to(kc.dtype), kc[:, :, :n_keys], vc[:, :, :n_keys], attn_mask=mask)
            x = x + lin[id(att.c_proj)](y.to(q.dtype).transpose(1, 2).reshape(B, 1, Cn))
            mlp = blk.mlp
            x = x + lin[id(mlp.c_proj)](mlp.gelu(lin[id(mlp.c_fc)](blk.ln_2(x))))
        self.write += 1
        self.pos += 1
        return lin[id(m.lm_head)](m.transformer.ln_f(x))[:, 0]

    def _draw(self, logits: torch.Tensor) -> None:
        logits = logits.float()
        self.logits.copy_(logits)
        candidates = self.select(logits, self)
        self.bad.logical_or_(~torch.isfinite(candidates).all(dim=-1))
        ids, probs = self.sampler(candidates)
        tokens = self.emit(ids, probs, self)
        self.tok.copy_(tokens[:, None])
        self.out.index_copy_(1, self.out_idx, tokens[:, None])
        self.out_idx += 1

    def _body(self, n_keys: int, masked: bool) -> None:
        self._draw(self._forward_one(n_keys, masked))

    def _reset_counters(self) -> None:
        self.out_idx.zero_()
        self.write.zero_()
        self.pos.zero_()

    def _capture(self) -> None:
        """One graph per key-length bucket, sharing one memory pool. Warm-ups scribble on the buffers,
        which ``start`` and the stage reset."""
        autocast = self.key[2]
        pool = graphs.new_pool(self.device)
        for n_keys in graphs.bucket_sizes(self.L):
            def body(n_keys: int = n_keys) -> None:
                self._body(n_keys, True)

            if autocast is not None:  # the autocast weight cache must not outlive the graph that reads it
                with torch.autocast(self.device.type, dtype=autocast, cache_enabled=False):
                    replay = graphs.capture_step(body, self.device, self._reset_counters, pool)
            else:
                replay = graphs.capture_step(body, self.device, self._reset_counters, pool)
            self.graphs[n_keys] = replay
        self.buckets = tuple(self.graphs)

    def _self_check(self) -> None:
        """Teacher-forced steps through every bucket's graph against the plain eager model.

        The graph feeds back its own draws; the eager model is fed the same tokens, so the two must
        give the same logits up to rounding. Throwaway generators keep the caller's streams untouched.
        """
        model, B = self.model, self.B
        gens = [torch.Generator(device=self.device).manual_seed(i) for i in range(B)]
        saved, self.sampler.generators = self.sampler.generators, gens
        got, want = [], []
        try:
            vocab = min(model.config.input_vocab_size, 10_000)
            buckets = graphs.bucket_sizes(self.L)
            for n_keys in buckets:
                T = max(1, n_keys - 2)
                steps = min(3, self.L - T, self.out.shape[1] - 1)
                if steps < 1:
                    continue
                prompt = torch.randint(0, vocab, (1, T), generator=gens[0], device=self.device).expand(B, T)
                self.start(prompt)
                fed = []
                for _ in range(steps):
                    fed.append(self.tok[:1].clone())
                    self.step()
                    got.append(self.logits[0].clone())
                if not self.use_graph:
                    raise graphs.GraphCaptureError("a replay failed during the self-check")
                cache = model.new_cache(1, T + steps)
                model(prompt[:1], cache)
                for tok in fed:
                    want.append(model(tok, cache)[0, -1].float())
        finally:
            self.sampler.generators = saved
        if not got:
            return
        half = self.key[1] in (torch.float16, torch.bfloat16, torch.int8) or self.key[2] is not None
        ok, detail = graphs.logits_agree(torch.stack(got), torch.stack(want), half)
        if not ok:
            raise graphs.GraphCaptureError(f"graph steps disagree with the eager model: {detail}")
        graphs.record_verdict(model, self.key, True, f"self-check passed: {detail}")

    # -- driving it -----------------------------------------------------------------------------------

    def start(self, x: torch.Tensor, pad: torch.Tensor | None = None, merge_context: bool = False,
              padded: bool | None = None) -> None:
        """Prefill ``x`` (B, T) into the cache and draw the first token from its last position.

        ``padded`` says (from host-side lengths) whether any row of ``pad`` is non-zero, so the host
        never reads ``pad`` back from the device.
        """
        if self.cache is None:
            self.cache = self.model.new_cache(self.B, self.L)
        self.cache.reset()
        logits = self.model(x, self.cache, merge_context=merge_context, pad=pad)[:, -1]
        if self.device.type == "cpu":  # a prefill's freed temporaries, retained by glibc, grew the heap every window
            return_freed_memory()
        T = self.cache.length
        keys = torch.arange(self.L, device=self.device)
        first = torch.zeros(self.B, dtype=torch.long, device=self.device) if pad is None else pad
        self.mask.copy_(((keys[None] >= first[:, None]) & (keys[None] < T))[:, None, None])
        self.write.fill_(T)
        self.pos.copy_((T - first)[:, None])
        self.length = T
        self.padded = pad is not None and (True if padded is None else padded)
        self.out_idx.zero_()
        self.sampler.refill()
        self._draw(logits)

    def park(self) -> None:
        """Between calls on a CPU, free the KV cache (the next :meth:`start` makes a new one).

        Kept, the semantic model's cache (75 MB in ``small``) stayed resident through the coarse, fine
        and decode stages; making it again costs a few milliseconds. Graphs bake in the cache's
        address, so a decoder with graphs keeps it.
        """
        if not self.graphs and self.device.type == "cpu":
            self.cache = None

    def step(self) -> None:
        """Feed the last token, draw the next (one graph replay when graphs are on)."""
        if self.length >= self.L:
            raise RuntimeError(f"Static KV cache full: {self.L} positions.")
        self.sampler.refill()
        n_keys = self.length + 1
        if self.graphs:
            try:
                self.graphs[graphs.bucket_for(n_keys, self.buckets)]()
            except Exception as exc:  # noqa: BLE001 - fall back for good, then redo this step eagerly
                self._fall_back(exc)
                self._body(n_keys, self.padded)
        else:
            self._body(n_keys, self.padded)
        self.length += 1

    def check_finite(self, stage: str) -> None:
        """Raise if any step so far saw NaN/inf logits (reads one flag per row: a sync, so call it rarely)."""
        bad = self.bad.cpu()
        if bool(bad.any()):
            rows = [int(i) for i in torch.nonzero(bad).flatten()]
            raise NonFiniteLogitsError(
                f"The {stage} model produced NaN or infinite logits (batch item(s) {rows}), so no token could be "
                f"drawn; half-precision overflow is the usual cause. Run this stage in bf16 or fp32 (dtype='bf16' "
                f"or 'fp32') instead of {self.key[1]}, or check the weights.")
