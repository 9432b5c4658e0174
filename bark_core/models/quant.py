"""Weight-only int8 for Bark's GPTs: int8 weights with one scale per output channel, bf16 activations.

A decode step reads every weight once per token, so its time follows the bytes the weights take;
int8 reads half of bf16's. The product is PyTorch's own ``aten._weight_int8pack_mm`` (x @ (q * s).T
without materialising the float weight), which runs on CPUs and, in recent builds, on CUDA; no hand
kernels. The semantic and coarse models' token embeddings are int8 rows with a scale per row (the
semantic one is the largest single tensor in Bark); layer norms, position embeddings and the fine
model's heads and embeddings (tied in pairs, which int8 would store twice) stay in bf16.
"""

from __future__ import annotations

import functools

import torch
import torch.nn as nn

from ..errors import BarkError

INT8_FALLBACK = "bf16"
# from this many rows on, a product dequantises the weight and runs a bf16 GEMM: on a 2-core EPYC, 1,024
# rows x 768 x 3,072 took 66 ms through the int8 kernel, 41 ms dequantised, 36 ms in plain bf16
MANY_ROWS = 256


class Int8UnsupportedError(BarkError):
    """This device or torch build has no weight-only int8 product."""


class Int8Linear(nn.Module):
    """A bias-free linear layer whose weight is int8 rows times a bf16 scale per row (output channel).

    ``weight`` keeps nn.Linear's name and (out, in) shape, so code that reads a model's device or
    shape from it keeps working; its dtype is int8.
    """

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("scale", scale)
        self.in_features = weight.shape[1]
        self.out_features = weight.shape[0]

    @classmethod
    def from_float(cls, weight: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> Int8Linear:
        """Symmetric per-channel quantisation of a float weight: scale = max|row| / 127."""
        return cls(*quantize_rows(weight, dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the CPU kernel is fast only for bf16 activations (fp32 ones take a slow path), so compute in the
        # scale's dtype and hand back the caller's
        flat = x.reshape(-1, x.shape[-1])
        if flat.dtype != self.scale.dtype:
            flat = flat.to(self.scale.dtype)
        if flat.shape[0] >= MANY_ROWS:  # prefill and the fine stage: compute-bound, where bf16 GEMMs win
            y = torch.nn.functional.linear(flat, self.dequantized())
        else:
            y = torch.ops.aten._weight_int8pack_mm(flat.contiguous(), self.weight, self.scale)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantized(self) -> torch.Tensor:
        # one product, promoted to the scale's dtype: no separate cast copy of the weight (bit-equal)
        return torch.mul(self.weight, self.scale[:, None])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 per-channel"


def quantize_rows(weight: torch.Tensor, dtype: torch.dtype = torch.bfloat16, rows: int = 1024
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 rows and a ``dtype`` scale per row (max |row| / 127), a few thousand rows at a time.

    In blocks, the float temporaries stay a few MB: whole, a 129,600-row embedding needed 1.2 GB of them.
    """
    w = weight.detach()
    q = torch.empty(w.shape, dtype=torch.int8, device=w.device)
    scale = torch.empty(w.shape[0], dtype=dtype, device=w.device)
    for start in range(0, w.shape[0], rows):
        block = w[start:start + rows].float()
        s = (block.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
        q[start:start + rows] = torch.round(block / s[:, None]).clamp_(-127, 127).to(torch.int8)
        scale[start:start + rows] = s.to(dtype)
    return q, scale


class Int8Embedding(nn.Module):
    """A token embedding stored as int8 rows times a per-row scale; a lookup dequantises only its rows.

    The semantic model's input table (129,600 x 768 in ``small``) holds more weights than its twelve
    blocks together, so leaving it bf16 kept an int8 small set at two thirds of bf16's memory.
    """

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("scale", scale)
        self.num_embeddings, self.embedding_dim = weight.shape

    @classmethod
    def from_float(cls, weight: torch.Tensor, dtype: torch.dtype = torch.bfloat16) -> Int8Embedding:
        return cls(*quantize_rows(weight, dtype))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.weight[idx].to(self.scale.dtype) * self.scale[idx].unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 per-row"


@functools.lru_cache(maxsize=8)
def _probe(device: str) -> str | None:
    """None when the int8 product runs on ``device`` and matches the float product, else why not."""
    op = getattr(torch.ops.aten, "_weight_int8pack_mm", None)
    if op is None:
        return f"torch {torch.__version__} has no aten._weight_int8pack_mm"
    try:
        gen = torch.Generator().manual_seed(0)
        w = torch.randn(64, 64, generator=gen)
        layer = Int8Linear.from_float(w).to(device)
        x = torch.randn(2, 64, generator=gen).to(device=device, dtype=torch.bfloat16)
        got = layer(x).float().cpu()
        want = (x.float().cpu() @ layer.dequantized().float().cpu().T)
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        return f"aten._weight_int8pack_mm does not run on {device} in torch {torch.__version__}: {str(exc)[:120]}"
    if not torch.allclose(got, want, rtol=0.05, atol=0.05):
        return f"aten._weight_int8pack_mm gives wrong results on {device}"
    return None


def check_int8(device: str | torch.device, option: str = "dtype") -> None:
    """Raise Int8UnsupportedError (naming bf16 as the fallback) unless int8 weights can run on ``device``."""
    kind = torch.device(device).type
    name = str(torch.device(device)) if kind != "cuda" else f"cuda:{torch.device(device).index or 0}"
    why = _probe(name) if kind in ("cpu", "cuda") else f"int8 weights are not supported on {kind}"
    if why is not None:
        raise Int8UnsupportedError(f"{option} 'int8' cannot run here: {why}. Use {option}='{INT8_FALLBACK}' instead "
                                   "(half the memory of fp32, no int8 kernel needed).")


def quantize_(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Replace every bias-free nn.Linear and every token embedding (``wte``) by its int8 form, except
    the fine model's heads and embeddings that share one weight (stored once, they stay bf16).

    Quantised from the weights as loaded (fp32 in Suno's files), layer by layer, so the float copy of
    each layer is dropped as soon as its int8 one exists. Position embeddings stay float.
    """
    linears = [m.weight.data_ptr() for m in model.modules() if isinstance(m, nn.Linear)]
    embeddings = [m.weight.data_ptr() for m in model.modules() if isinstance(m, nn.Embedding)]
    # only modules with children are listed: a list of every module would keep each replaced float layer alive
    # until the end, holding the whole float model and the int8 one at once
    parents = [m for m in model.modules() if next(m.children(), None) is not None]
    for parent in parents:
        for name in [n for n, _ in parent.named_children()]:
            child = getattr(parent, name)
            ptr = getattr(getattr(child, "weight", None), "data_ptr", lambda: None)()
            if isinstance(child, nn.Linear) and child.bias is None and ptr not in embeddings:
                setattr(parent, name, Int8Linear.from_float(child.weight, dtype).to(child.weight.device))
            elif isinstance(child, nn.Embedding) and name == "wte" and ptr not in linears:
                setattr(parent, name, Int8Embedding.from_float(child.weight, dtype).to(child.weight.device))
            del child
    return model


def is_int8(model: nn.Module) -> bool:
    return any(isinstance(m, (Int8Linear, Int8Embedding)) for m in model.modules())


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the parameters and buffers a model holds (shared tensors once)."""
    seen: dict[int, int] = {}
    for t in (*model.parameters(), *model.buffers()):
        seen[t.data_ptr()] = t.numel() * t.element_size()
    return sum(seen.values())
