"""Token sampling shared by every stage: Suno's top-p, then top-k, then temperature, then a draw.

Sampling runs in float32 on the model's device with an explicit ``torch.Generator``, so the same
seed gives the same tokens on the same device and nothing hidden touches the global RNG.
"""

from __future__ import annotations

import secrets

import torch
from torch.nn import functional as F

from .. import constants as C
from .. import limits
from ..errors import ParameterError

Seed = int | torch.Generator | None
STAGE_SEEDS = ("semantic", "coarse", "fine")  # the labels generate() derives each stage's seed with


class SeedError(ParameterError):
    """A seed is not a whole number in 0..2**64-1 (or a torch.Generator)."""


class DrawnSeed(int):
    """A master seed drawn at random because the caller gave none.

    It is recorded, printed and labelled like any seed, so the take can be redone with it; the stage
    cache leaves such runs out (unless it keeps unseeded runs), as nobody will ask for that seed again.
    """


def check_seed(seed: object) -> int:
    """A seed as every entry point takes it: a whole number from 0 to 2**64-1."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= C.MAX_SEED:
        raise SeedError(f"seed must be a whole number from 0 to {C.MAX_SEED} (or a torch.Generator), got {seed!r}.")
    return seed


def master_seed(seed: object) -> int:
    """The one seed a whole take derives from: ``seed`` checked, or a new random one (a :class:`DrawnSeed`)."""
    return DrawnSeed(secrets.randbits(63)) if seed is None else check_seed(seed)


def stage_seeds(master: int, *labels: object) -> list[int]:
    """Each stage's seed derived from one master seed (a drawn master gives drawn stage seeds)."""
    kind = DrawnSeed if isinstance(master, DrawnSeed) else int
    return [kind(derive_seed(master, *labels, stage)) for stage in STAGE_SEEDS]


def make_generator(seed: Seed, device: torch.device | str) -> tuple[torch.Generator, int | None]:
    """Return a generator on ``device`` and the integer seed to record (None for a caller's generator).

    A missing seed is drawn at random *and returned*, so even an unseeded take can be redone.
    """
    if isinstance(seed, torch.Generator):
        return seed, None
    if seed is None:
        seed = secrets.randbits(63)
    limits.seed_value(seed)
    device = torch.device(device)
    gen = torch.Generator(device=device if device.type != "mps" else "cpu")
    gen.manual_seed(int(seed))
    return gen, int(seed)


def derive_seed(seed: int, *labels: object) -> int:
    """A child seed per stage/chunk, so one user seed makes a whole chain repeatable."""
    import hashlib

    h = hashlib.sha256(repr((int(seed), *labels)).encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Mask logits outside the nucleus (top_p, on raw logits) and outside the top k, as Suno does."""
    logits = logits.float().clone()
    if top_p is not None:
        sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
        cum = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        remove = cum > top_p
        remove[..., 1:] = remove[..., :-1].clone()
        remove[..., 0] = False
        logits = logits.scatter(-1, sorted_idx, sorted_logits.masked_fill(remove, float("-inf")))
    if top_k is not None:
        k = min(int(top_k), logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def sample(logits: torch.Tensor, generator: torch.Generator, temp: float | None, top_k: int | None = None,
           top_p: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Draw one token per row of ``logits`` (..., vocab); ``temp=None`` means argmax.

    Returns the ids and the probabilities they were drawn from (None for argmax).
    """
    if temp is None:
        return torch.argmax(logits, dim=-1), None
    limits.number("temperature", temp, lo=0.0, lo_open=True, hint="Use e.g. 0.7, or None for argmax.")
    probs = F.softmax(filter_logits(logits, top_k, top_p) / temp, dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    if flat.device.type == "mps":  # multinomial is unreliable on MPS
        ids = torch.multinomial(flat.cpu(), 1, generator=generator).to(flat.device)
    else:
        ids = torch.multinomial(flat, 1, generator=generator)
    return ids.reshape(probs.shape[:-1]), probs
