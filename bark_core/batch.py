"""Several texts in one call, run as one batch on the device.

Each item keeps its own voice, seed and generator, so item i of a batch gives what a batch of one
gives for it: rows that finish early keep stepping with their output ignored, and rows of different
lengths are left-padded with the padding hidden from attention (see ``model.padded_causal_mask``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from . import constants as C
from .artifacts import CoarseCodes, FineCodes, Provenance, SemanticTokens
from .errors import ArtifactError
from .fast import coarse_tokens_fast, semantic_tokens_fast
from .generation import (
    _child,
    _device_of,
    _settings_dtype,
    _stage_extra,
    _voice_label,
    check_coarse_settings,
    coarse_history,
    coarse_range,
    coarse_steps,
    coarse_window_input,
    decode,
    encode_text,
    fine_input,
    fine_window,
    left_pad_prompts,
    normalize_text,
    semantic_candidates,
    semantic_input,
    semantic_stop,
    unflatten_coarse,
)
from .pipeline import BarkModels, Take
from .sampling import derive_seed, make_generator, sample
from .voices import Voice

Progress = Callable[[str, int, int], None] | None


@torch.inference_mode()
def semantic_tokens_batch(model: torch.nn.Module, text_ids: Sequence[np.ndarray],
                          histories: Sequence[np.ndarray | None], generators: Sequence[torch.Generator], *,
                          temp: float | None = C.DEFAULT_SEMANTIC_TEMP, top_k: int | None = None,
                          top_p: float | None = None, min_eos_p: float | None = C.DEFAULT_MIN_EOS_P,
                          max_gen_duration_s: float | None = None, allow_early_stop: bool = True,
                          max_steps: int = C.MAX_SEMANTIC_STEPS, progress: Callable[[int, int], None] | None = None
                          ) -> list[np.ndarray]:
    """Batched :func:`generation.semantic_tokens`; every prompt is 513 tokens, so no padding is needed."""
    device = _device_of(model)
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
def coarse_tokens_batch(model: torch.nn.Module, semantics: Sequence[np.ndarray], voices: Sequence[Voice | None],
                        generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_COARSE_TEMP,
                        top_k: int | None = None, top_p: float | None = None,
                        max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                        progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Batched :func:`generation.coarse_tokens`: each window's prompts are left-padded to one length."""
    check_coarse_settings(max_coarse_history, sliding_window_len)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    device = _device_of(model)
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
def fine_tokens_batch(model: torch.nn.Module, coarses: Sequence[np.ndarray], voices: Sequence[Voice | None],
                      generators: Sequence[torch.Generator], *, temp: float | None = C.DEFAULT_FINE_TEMP,
                      progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Batched :func:`generation.fine_tokens`: windows are always 1,024 frames, so rows stack as they are."""
    device = _device_of(model)
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

    With integer seeds, item i equals ``generate(models, texts[i], voices[i], seed=seeds[i])``.
    """
    if isinstance(texts, str) or not texts:
        raise ArtifactError("generate_batch takes a non-empty list of texts; use generate() for one text.")
    n = len(texts)
    norm = [normalize_text(t) for t in texts]
    vs = [models.voice(v) for v in _per_item(voices, n, "voices")]
    seed_list = _per_item(seeds, n, "seeds")
    tok = models.tokenizer
    encoded = [encode_text(tok, t) for t in norm]
    stage_seeds = [[derive_seed(s, st) if isinstance(s, int) else s for st in ("semantic", "coarse", "fine")]
                   for s in seed_list]

    def gens(stage: int, device: torch.device) -> tuple[list[torch.Generator], list[int | None]]:
        pairs = [make_generator(s[stage], device) for s in stage_seeds]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def cb(stage: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda d, t: progress(stage, d, t))

    sem_settings = dict(temp=semantic_temp, top_k=top_k, top_p=top_p, min_eos_p=min_eos_p,
                        max_gen_duration_s=max_gen_duration_s, allow_early_stop=allow_early_stop)
    with models.use("text") as loaded:
        g, used = gens(0, _device_of(loaded.model))
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
                        "tokenizer": tok.source, **_settings_dtype(loaded.model)}
            sems.append(SemanticTokens(tokens=tokens[i], provenance=Provenance(
                stage="semantic", model=loaded.model_id, model_checksum=loaded.checksum, settings=settings,
                seed=used[i], voice=_voice_label(vs[i]), extra=_stage_extra(loaded.untrained, vs[i]))))
    empty = [i + 1 for i, s in enumerate(sems) if s.n_frames == 0]
    if empty:
        raise ArtifactError(f"Item(s) {empty} stopped at once (empty semantic output); change their seed or "
                            "raise min_eos_p.")
    coarse_settings = dict(temp=coarse_temp, top_k=top_k, top_p=top_p)
    with models.use("coarse") as loaded:
        g, used = gens(1, _device_of(loaded.model))
        coarse_decoder = models.decoder_for("coarse")
        run_coarse = coarse_tokens_fast if coarse_decoder == "fast" else coarse_tokens_batch
        codes = run_coarse(loaded.model, [s.tokens for s in sems], vs, g, progress=cb("coarse"), **coarse_settings)
        settings = {**coarse_settings, "max_coarse_history": C.MAX_COARSE_HISTORY,
                    "sliding_window_len": C.SLIDING_WINDOW_LEN, "decoder": coarse_decoder}
        coarses = [CoarseCodes(codes=codes[i], parent=sems[i],
                               provenance=_child(sems[i], "coarse", loaded, settings, used[i], vs[i], loaded.model))
                   for i in range(n)]
    with models.use("fine") as loaded:
        g, used = gens(2, _device_of(loaded.model))
        fcodes = fine_tokens_batch(loaded.model, [c.codes for c in coarses], vs, g, temp=fine_temp,
                                   progress=cb("fine"))
        fines = [FineCodes(codes=fcodes[i], parent=coarses[i],
                           provenance=_child(coarses[i], "fine", loaded, {"temp": fine_temp}, used[i],
                                             vs[i], loaded.model))
                 for i in range(n)]
    takes = []
    for i in range(n):
        takes.append(Take(semantic=sems[i], coarse=coarses[i], fine=fines[i], audio=decode(models, fines[i])))
        if progress is not None:
            progress("decode", i + 1, n)
    return takes
