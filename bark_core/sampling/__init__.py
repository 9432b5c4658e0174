"""Token sampling and the decode loops below the stages: draws, the eager reference loops, batched loops,
and the fast static-cache decoder. Nothing here knows about artifacts, voices files or provenance."""

from .draw import (
    STAGE_SEEDS,
    DrawnSeed,
    Seed,
    SeedError,
    check_seed,
    derive_seed,
    filter_logits,
    make_generator,
    master_seed,
    sample,
    stage_seeds,
)
from .fast import DECODERS, release, resolve_decoder
from .graphs import GraphFallbackWarning, set_self_check
from .static import NonFiniteLogitsError

__all__ = ["STAGE_SEEDS", "DrawnSeed", "Seed", "SeedError", "check_seed", "derive_seed", "filter_logits",
           "make_generator", "master_seed", "sample", "stage_seeds", "DECODERS", "release", "resolve_decoder",
           "GraphFallbackWarning", "set_self_check", "NonFiniteLogitsError"]
