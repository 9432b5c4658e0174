"""Bark's three transformers, nanoGPT style: a config dataclass and a few small modules.

Parameter names match Suno's checkpoints (``transformer.h.0.attn.c_attn.weight`` ...), so a
state dict loads without renaming. The causal GPT serves text->semantic and semantic->coarse;
the fine GPT is non-causal and predicts one codebook at a time from the sum of the embeddings
of the codebooks below it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
from torch.nn import functional as F

from .. import constants as C
from .device import autocast_dtype


@dataclass(frozen=True)
class GPTConfig:
    """Shape of one Bark transformer; ``bias`` is False in every published checkpoint."""

    block_size: int = C.CONTEXT_WINDOW_SIZE
    input_vocab_size: int = C.TEXT_INPUT_VOCAB
    output_vocab_size: int = C.TEXT_OUTPUT_VOCAB
    n_layer: int = 24
    n_head: int = 16
    n_embd: int = 1024
    dropout: float = 0.0
    bias: bool = False
    # fine model only
    n_codes_total: int = C.N_FINE_CODEBOOKS
    n_codes_given: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


# What a checkpoint's config may declare. The published models sit well inside; the bounds stop a
# hostile file from asking for a 50-million-position cache or 100,000 layers before any weight is read.
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "block_size": (C.CONTEXT_WINDOW_SIZE, 4 * C.CONTEXT_WINDOW_SIZE),
    "n_layer": (1, 96),
    "n_head": (1, 128),
    "n_embd": (8, 8192),
    "input_vocab_size": (1, 1_000_000),
    "output_vocab_size": (1, 1_000_000),
}
MAX_KV_CACHE_BYTES = 2 * 1024**3  # keys and values of one row at full length, fp32 (large Bark: 0.2 GB)
# the ids each stage feeds in and reads out, so a checkpoint of another stage is refused up front
STAGE_MIN_VOCAB: dict[str, tuple[int, int]] = {
    "text": (C.SEMANTIC_INFER_TOKEN + 1, C.SEMANTIC_VOCAB_SIZE + 1),
    "coarse": (C.COARSE_INFER_TOKEN + 1, C.SEMANTIC_VOCAB_SIZE + C.N_COARSE_CODEBOOKS * C.CODEBOOK_SIZE),
    "fine": (C.FINE_PAD_TOKEN + 1, C.CODEBOOK_SIZE),
}


def check_config(stage: str, cfg: GPTConfig, source: str, error: type[Exception] = ValueError) -> GPTConfig:
    """Refuse a config no Bark checkpoint has, before any memory is allocated for it."""
    for name, (lo, hi) in CONFIG_BOUNDS.items():
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise error(f"{source}: {name} must be a whole number, got {value!r:.40}. The checkpoint is damaged.")
        if not lo <= value <= hi:
            raise error(f"{source}: {name}={value} is outside {lo}..{hi}, the range any Bark checkpoint uses. "
                        "The checkpoint is damaged or not a Bark model.")
    if cfg.n_embd % cfg.n_head:
        raise error(f"{source}: n_embd={cfg.n_embd} is not a multiple of n_head={cfg.n_head}. The checkpoint is "
                    "damaged or not a Bark model.")
    kv = 2 * cfg.n_layer * cfg.block_size * cfg.n_embd * 4
    if kv > MAX_KV_CACHE_BYTES:
        raise error(f"{source}: n_layer x block_size x n_embd asks for a {kv / 1024**3:.1f} GiB cache per row; Bark "
                    "needs 0.2 GiB. The checkpoint is damaged or not a Bark model.")
    need_in, need_out = STAGE_MIN_VOCAB.get(stage, (1, 1))
    if cfg.input_vocab_size < need_in or cfg.output_vocab_size < need_out:
        raise error(f"{source}: vocabularies {cfg.input_vocab_size}/{cfg.output_vocab_size} are too small for the "
                    f"{stage} model (it needs at least {need_in}/{need_out}). Is it another stage's checkpoint?")
    if stage == "fine" and (cfg.n_codes_total != C.N_FINE_CODEBOOKS or not 1 <= cfg.n_codes_given < cfg.n_codes_total):
        raise error(f"{source}: a fine model predicts {C.N_FINE_CODEBOOKS} codebooks from 1, but the checkpoint says "
                    f"n_codes_total={cfg.n_codes_total!r:.20}, n_codes_given={cfg.n_codes_given!r:.20}.")
    if not isinstance(cfg.bias, bool) or isinstance(cfg.dropout, bool) or not isinstance(cfg.dropout, (int, float)):
        raise error(f"{source}: bias must be true/false and dropout a number. The checkpoint is damaged.")
    return cfg


SIZES: dict[str, dict[str, int]] = {
    "large": {"n_layer": 24, "n_head": 16, "n_embd": 1024},
    "small": {"n_layer": 12, "n_head": 12, "n_embd": 768},
}
VOCABS: dict[str, tuple[int, int]] = {
    "text": (C.TEXT_INPUT_VOCAB, C.TEXT_OUTPUT_VOCAB),
    "coarse": (C.COARSE_VOCAB, C.COARSE_VOCAB),
    "fine": (C.FINE_VOCAB, C.FINE_VOCAB),
}


def preset_config(stage: str, size: str = "large", **overrides) -> GPTConfig:
    """Config of a published model: ``stage`` in text/coarse/fine, ``size`` large/small."""
    if stage not in VOCABS:
        raise ValueError(f"Unknown model stage {stage!r}; use one of {sorted(VOCABS)}.")
    if size not in SIZES:
        raise ValueError(f"Unknown model size {size!r}; use 'large' or 'small'.")
    vin, vout = VOCABS[stage]
    cfg = GPTConfig(input_vocab_size=vin, output_vocab_size=vout, **SIZES[size])
    return replace(cfg, **overrides)


class LayerNorm(nn.Module):
    """LayerNorm whose bias can be absent, as in Bark's causal models."""

    def __init__(self, ndim: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class KVCache:
    """Preallocated keys and values for every layer, filled left to right.

    Preallocation keeps memory flat during a generation (no ``torch.cat`` per step) and gives the
    decode step fixed shapes, which is what a compiled or graph-captured step needs later.
    """

    def __init__(self, n_layer: int, batch: int, n_head: int, max_len: int, head_dim: int,
                 device: torch.device | str, dtype: torch.dtype):
        # one block for every layer's keys and values: on a CPU, glibc maps a block that large on its own
        # and unmaps it when freed, where 2 x n_layer blocks of a few MB each left holes in the heap
        store = torch.zeros((2, n_layer, batch, n_head, max_len, head_dim), device=device, dtype=dtype)
        self.k = [store[0, i] for i in range(n_layer)]  # plain views (unbind's may not be written in place)
        self.v = [store[1, i] for i in range(n_layer)]
        self.length = 0
        self.max_len = max_len

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: {end} positions > {self.max_len}.")
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def reset(self) -> None:
        self.length = 0


class SelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, causal: bool):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.causal = causal

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                pad: torch.Tensor | None = None) -> torch.Tensor:
        B, T, Cn = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        hd = Cn // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        past, out_dtype = 0, q.dtype
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)
            q = q.to(k.dtype)  # a CPU cache keeps fp32 keys for half models (see GPT.new_cache)
        if pad is not None:  # batch of left-padded rows: hide each row's padding from every query
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=padded_causal_mask(pad, past, T, x.device))
        elif not self.causal:
            y = F.scaled_dot_product_attention(q, k, v)
        elif past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # several new tokens after a cached prefix: causal mask shifted by the prefix
            full = past + T
            mask = torch.ones(T, full, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.to(out_dtype).transpose(1, 2).contiguous().view(B, T, Cn)
        return self.c_proj(y)


def padded_causal_mask(pad: torch.Tensor, past: int, T: int, device: torch.device) -> torch.Tensor:
    """(B, 1, T, past+T) mask: causal, minus the first ``pad[b]`` keys of row b.

    A padding query still sees itself, so its softmax is defined; its output is never used.
    """
    q_pos = torch.arange(past, past + T, device=device)[:, None]
    k_pos = torch.arange(past + T, device=device)[None, :]
    causal = k_pos <= q_pos
    real = k_pos[None] >= pad.to(device)[:, None, None]
    return ((causal[None] & real) | (k_pos == q_pos)[None])[:, None]


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig, causal: bool = True):
        super().__init__()
        # Suno's fine model uses torch LayerNorms, which always carry a bias
        ln_bias = config.bias if causal else True
        self.ln_1 = LayerNorm(config.n_embd, ln_bias)
        self.attn = SelfAttention(config, causal)
        self.ln_2 = LayerNorm(config.n_embd, ln_bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                pad: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer, pad)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Causal model for text->semantic and semantic->coarse."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.input_vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.output_vocab_size, bias=False)

    def new_cache(self, batch: int = 1, max_len: int | None = None) -> KVCache:
        """Keys and values in the dtype attention computes them in: autocast's, when it is on.

        Without autocast, half-precision models (bf16, fp16, int8) on a CPU keep an fp32 cache: PyTorch's CPU attention
        over a bf16 cache took 7x as long as over fp32 for one query and 900 keys (2-core EPYC, torch
        2.13), and in the decode loop that was 40 % of the coarse stage. Keys and values are computed in
        the model's dtype and stored exactly, so only attention's own rounding changes (for the better).
        Read from the position embedding, which stays a float tensor when the linears are int8.
        """
        p = self.transformer.wpe.weight
        cfg = self.config
        dtype = autocast_dtype(p.device)  # autocast decides attention's dtype itself: follow it
        if dtype is None:
            dtype = torch.float32 if p.device.type == "cpu" and p.dtype in (torch.bfloat16, torch.float16) else p.dtype
        return KVCache(cfg.n_layer, batch, cfg.n_head, max_len or cfg.block_size,
                       cfg.n_embd // cfg.n_head, p.device, dtype)

    def embed(self, idx: torch.Tensor, merge_context: bool) -> torch.Tensor:
        """Token embeddings; ``merge_context`` sums text and semantic history position-wise.

        That is how the semantic model sees 256 text tokens and 256 history tokens in 256 positions.
        """
        wte = self.transformer.wte
        if not merge_context:
            return wte(idx)
        w = C.TEXT_WINDOW
        if idx.shape[1] < 2 * w + 1:
            raise ValueError(f"merge_context needs at least {2 * w + 1} tokens, got {idx.shape[1]}.")
        return torch.cat([wte(idx[:, :w]) + wte(idx[:, w:2 * w]), wte(idx[:, 2 * w:])], dim=1)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, merge_context: bool = False,
                all_logits: bool = False, pad: torch.Tensor | None = None) -> torch.Tensor:
        """Logits for the last position (or all, with ``all_logits``); appends to ``cache`` if given.

        ``pad`` (batch,) counts left-padding slots per row: those rows' positions start after their
        padding, and no query attends to it, so a padded row computes what it would alone.
        """
        past = cache.length if cache is not None else 0
        tok = self.embed(idx, merge_context and past == 0)
        t = tok.shape[1]
        if past + t > self.config.block_size:
            raise ValueError(f"Sequence of {past + t} positions exceeds block size {self.config.block_size}.")
        pos = torch.arange(past, past + t, device=idx.device)
        if pad is None:
            x = tok + self.transformer.wpe(pos)[None]
        else:
            x = tok + self.transformer.wpe((pos[None] - pad.to(idx.device)[:, None]).clamp(min=0))
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache, i, pad)
        if cache is not None:
            cache.length += t
        x = self.transformer.ln_f(x)
        return self.lm_head(x if all_logits else x[:, -1:, :])


class FineGPT(nn.Module):
    """Non-causal model that fills codebooks 2..7 given the ones below."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        n_total, n_given = config.n_codes_total, config.n_codes_given
        self.transformer = nn.ModuleDict(dict(
            wtes=nn.ModuleList([nn.Embedding(config.input_vocab_size, config.n_embd) for _ in range(n_total)]),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config, causal=False) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, True),
        ))
        self.lm_heads = nn.ModuleList(
            [nn.Linear(config.n_embd, config.output_vocab_size, bias=False) for _ in range(n_given, n_total)]
        )
        self.tie_weights()

    def tie_weights(self) -> None:
        """Embedding of codebook i+1 is the head that predicts it (as trained)."""
        for i in range(self.config.n_codes_total - self.config.n_codes_given):
            self.transformer.wtes[i + 1].weight = self.lm_heads[i].weight

    def forward(self, pred_idx: int, idx: torch.Tensor) -> torch.Tensor:
        """Logits for codebook ``pred_idx`` at every position of ``idx`` (batch, frames, 8)."""
        b, t, n = idx.shape
        if not 0 < pred_idx < self.config.n_codes_total:
            raise ValueError(f"pred_idx must be in 1..{self.config.n_codes_total - 1}, got {pred_idx}.")
        if t > self.config.block_size or n != self.config.n_codes_total:
            raise ValueError(f"Fine model input must be (batch, <= {self.config.block_size}, "
                             f"{self.config.n_codes_total}), got {tuple(idx.shape)}.")
        # summed as one reduction over a stacked axis, in the order Suno's code sums them
        x = torch.stack([self.transformer.wtes[i](idx[:, :, i]) for i in range(pred_idx + 1)], dim=-1).sum(dim=-1)
        x = x + self.transformer.wpe(torch.arange(t, device=idx.device))[None]
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        return self.lm_heads[pred_idx - self.config.n_codes_given](x)


def build_model(stage: str, config: GPTConfig) -> nn.Module:
    return FineGPT(config) if stage == "fine" else GPT(config)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def init_random_(model: nn.Module, generator: torch.Generator, std: float = 0.02) -> nn.Module:
    """GPT-2 style random init; used for untrained model sets and tests."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
            elif name.split(".")[-2].startswith("ln"):
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * std)
        for block in getattr(model.transformer, "h", []):
            scale = std / math.sqrt(2 * len(model.transformer.h))
            block.attn.c_proj.weight.mul_(scale / std)
            block.mlp.c_proj.weight.mul_(scale / std)
    return model
