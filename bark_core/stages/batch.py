"""Several texts in one call, run as one batch on the device.

Each item keeps its own voice, seed and generator, so item i of a batch gives what a single run gives
for it; the batched token loops are in :mod:`bark_core.sampling.batch`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .. import constants as C
from .. import limits
from ..artifacts import CoarseCodes, FineCodes, Provenance, SemanticTokens
from ..errors import ArtifactError, ParameterError
from ..sampling import make_generator, master_seed, stage_seeds
from ..sampling.batch import coarse_tokens_batch, fine_tokens_batch, semantic_tokens_batch
from ..sampling.eager import device_of
from ..sampling.fast import coarse_tokens_fast, semantic_tokens_fast
from .generation import (
    check_generate_settings,
    child_provenance,
    decode,
    encode_text,
    normalize_text,
    settings_dtype,
    stage_extra,
    voice_label,
)
from .modelset import BarkModels
from .pipeline import Take

Progress = Callable[[str, int, int], None] | None
MAX_BATCH = 256  # texts per call: each needs its own KV cache rows on the device


def _per_item(value: Any, n: int, name: str) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ArtifactError(f"{name} has {len(value)} entries for {n} texts; give one per text or a single value.")
        return list(value)
    return [value] * n


def generate_batch(models: BarkModels, texts: Sequence[str], voices: Any = None, seeds: Any = None, *,
                   semantic_temp: float | None = 0.7, coarse_temp: float | None = 0.7, fine_temp: float | None = 0.5,
                   top_k: int | None = None, top_p: float | None = None, min_eos_p: float | None = 0.2,
                   max_gen_duration_s: float | None = None, allow_early_stop: bool = True,
                   progress: Progress = None) -> list[Take]:
    """One :class:`Take` per text; ``voices`` and ``seeds`` are one value or one per text.

    With integer seeds, item i equals ``generate(models, texts[i], voices[i], seed=seeds[i])``. An item
    without a seed gets its own drawn master seed, as ``generate`` does; ``takes[i].seed`` redoes it.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise ArtifactError("generate_batch takes a non-empty list of texts; use generate() for one text.")
    if len(texts) > MAX_BATCH:
        raise ParameterError(f"generate_batch takes at most {MAX_BATCH} texts at once, got {len(texts)}; "
                             "split the list into batches.")
    n = len(texts)
    norm = [normalize_text(t) for t in texts]
    check_generate_settings(semantic_temp=semantic_temp, coarse_temp=coarse_temp, fine_temp=fine_temp, top_k=top_k,
                            top_p=top_p, min_eos_p=min_eos_p, max_gen_duration_s=max_gen_duration_s,
                            allow_early_stop=allow_early_stop, progress=progress)
    seed_list = _per_item(seeds, n, "seeds")
    for s in seed_list:
        limits.seed_value(s)
    vs = [models.voice(v) for v in _per_item(voices, n, "voices")]
    tok = models.tokenizer
    encoded = [encode_text(tok, t) for t in norm]
    masters = [None if isinstance(s, torch.Generator) else master_seed(s) for s in seed_list]
    item_seeds = [[s, s, s] if m is None else stage_seeds(m) for s, m in zip(seed_list, masters, strict=True)]

    def gens(stage: int, device: torch.device) -> tuple[list[torch.Generator], list[int | None]]:
        pairs = [make_generator(s[stage], device) for s in item_seeds]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def cb(stage: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda d, t: progress(stage, d, t))

    sem_settings = dict(temp=semantic_temp, top_k=top_k, top_p=top_p, min_eos_p=min_eos_p,
                        max_gen_duration_s=models.semantic_cap(max_gen_duration_s), allow_early_stop=allow_early_stop)
    with models.use("text") as loaded:
        g, used = gens(0, device_of(loaded.model))
        sem_decoder = models.decoder_for("text")
        run_semantic = semantic_tokens_fast if sem_decoder == "fast" else semantic_tokens_batch
        tokens = run_semantic(loaded.model, [e[0] for e in encoded],
                                       [None if v is None else v.semantic for v in vs], g, progress=cb("semantic"),
                                       **sem_settings)
        sems = []
        for i in range(n):
            # the same record a single run writes, so a batch item has the id its single run would have
            settings = {**sem_settings, "decoder": sem_decoder, "text": norm[i],
                        "text_sha256": hashlib.sha256(norm[i].encode()).hexdigest(),
                        "text_tokens": int(len(encoded[i][0])), "text_truncated_pct": encoded[i][1],
                        "tokenizer": tok.public_source, **settings_dtype(loaded.model)}
            sems.append(SemanticTokens(tokens=tokens[i], provenance=Provenance(
                stage="semantic", model=loaded.model_id, model_checksum=loaded.checksum, settings=settings,
                seed=used[i], voice=voice_label(vs[i]), extra=stage_extra(loaded.untrained, vs[i]))))
    empty = [i + 1 for i, s in enumerate(sems) if s.n_frames == 0]
    if empty:
        raise ArtifactError(f"Item(s) {empty} stopped at once (empty semantic output); change their seed or "
                            "raise min_eos_p.")
    coarse_settings = dict(temp=coarse_temp, top_k=top_k, top_p=top_p)
    with models.use("coarse") as loaded:
        g, used = gens(1, device_of(loaded.model))
        coarse_decoder = models.decoder_for("coarse")
        run_coarse = coarse_tokens_fast if coarse_decoder == "fast" else coarse_tokens_batch
        codes = run_coarse(loaded.model, [s.tokens for s in sems], vs, g, progress=cb("coarse"), **coarse_settings)
        settings = {**coarse_settings, "max_coarse_history": C.MAX_COARSE_HISTORY,
                    "sliding_window_len": C.SLIDING_WINDOW_LEN, "decoder": coarse_decoder}
        coarses = [CoarseCodes(codes=codes[i], parent=sems[i],
                               provenance=child_provenance(sems[i], "coarse", loaded, settings, used[i], vs[i],
                                                           loaded.model))
                   for i in range(n)]
    with models.use("fine") as loaded:
        g, used = gens(2, device_of(loaded.model))
        fcodes = fine_tokens_batch(loaded.model, [c.codes for c in coarses], vs, g, temp=fine_temp,
                                   progress=cb("fine"))
        fines = [FineCodes(codes=fcodes[i], parent=coarses[i],
                           provenance=child_provenance(coarses[i], "fine", loaded, {"temp": fine_temp}, used[i],
                                             vs[i], loaded.model))
                 for i in range(n)]
    takes = []
    for i in range(n):
        takes.append(Take(semantic=sems[i], coarse=coarses[i], fine=fines[i], audio=decode(models, fines[i]),
                          seed=None if masters[i] is None else int(masters[i])))
        if progress is not None:
            progress("decode", i + 1, n)
    return takes
