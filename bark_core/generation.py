"""The four stages as functions over artifacts, following Suno's ``bark/generation.py`` step by step.

Each ``*_tokens`` function is the bare algorithm over numpy arrays and a loaded model, so it can
be checked token for token against Suno's code; the artifact-level functions around them handle
voices, seeds, devices and provenance.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import constants as C
from .artifacts import Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, expect_artifact
from .errors import ArtifactError, BadTextError
from .sampling import Seed, make_generator, sample
from .voices import Voice

if TYPE_CHECKING:
    from .pipeline import BarkModels

Progress = Callable[[int, int], None] | None
log = logging.getLogger(__name__)


class TextTruncatedWarning(UserWarning):
    """The text did not fit the 256-token window and its end was cut, as Suno's code does."""


def normalize_text(text: Any) -> str:
    """Collapse whitespace like Suno does; reject what cannot be spoken with a clear message."""
    if not isinstance(text, str):
        raise BadTextError(f"Text must be a string, got {type(text).__name__}. Pass the words to speak as str.")
    norm = re.sub(r"\s+", " ", text).strip()
    if not norm:
        raise BadTextError("Text is empty or only whitespace. Type the words (or cues like [laughter]) to speak.")
    return norm


def encode_text(tokenizer: Any, text: str) -> tuple[np.ndarray, float]:
    """Tokens offset into the semantic model's text range, cut to the window; returns the % cut."""
    ids = np.asarray(tokenizer.encode(text), dtype=np.int64) + C.TEXT_ENCODING_OFFSET
    cut = 0.0
    if len(ids) > C.TEXT_WINDOW:
        cut = round((len(ids) - C.TEXT_WINDOW) / len(ids) * 100, 1)
        ids = ids[: C.TEXT_WINDOW]
    return ids, cut


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _report(progress: Progress, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# --------------------------------------------------------------------------------------------------
# Bare algorithms
# --------------------------------------------------------------------------------------------------

def semantic_input(text_ids: np.ndarray, history: np.ndarray | None) -> np.ndarray:
    """The 513-token prompt: text window, semantic history window, infer token."""
    text = np.pad(text_ids, (0, C.TEXT_WINDOW - len(text_ids)), constant_values=C.TEXT_PAD_TOKEN)
    if history is not None:
        hist = history.astype(np.int64)[-C.SEMANTIC_HISTORY_WINDOW:]
        hist = np.pad(hist, (0, C.SEMANTIC_HISTORY_WINDOW - len(hist)), constant_values=C.SEMANTIC_PAD_TOKEN)
    else:
        hist = np.full(C.SEMANTIC_HISTORY_WINDOW, C.SEMANTIC_PAD_TOKEN, dtype=np.int64)
    return np.hstack([text, hist, [C.SEMANTIC_INFER_TOKEN]]).astype(np.int64)


def semantic_stop(item: int, probs: torch.Tensor | None, allow_early_stop: bool, min_eos_p: float | None) -> bool:
    """Suno's end-of-speech rule: EOS drawn, or its probability at least ``min_eos_p``."""
    return bool(semantic_stop_mask(torch.as_tensor(item), probs, allow_early_stop, min_eos_p))


def semantic_stop_mask(ids: torch.Tensor, probs: torch.Tensor | None, allow_early_stop: bool,
                       min_eos_p: float | None) -> torch.Tensor:
    """:func:`semantic_stop` for a batch of draws, as a bool tensor that stays on the device."""
    stop = torch.zeros_like(ids, dtype=torch.bool)
    if not allow_early_stop:
        return stop
    stop = ids == C.SEMANTIC_VOCAB_SIZE
    if min_eos_p is not None and probs is not None:
        stop = stop | (probs[..., -1] >= min_eos_p)
    return stop


def semantic_candidates(row: torch.Tensor, allow_early_stop: bool) -> torch.Tensor:
    """The 10,000 semantic logits, plus the EOS logit as candidate 10,000 when early stop is on (last axis)."""
    row = row.float()
    relevant = row[..., : C.SEMANTIC_VOCAB_SIZE]
    if allow_early_stop:
        relevant = torch.cat([relevant, row[..., C.SEMANTIC_EOS_TOKEN:C.SEMANTIC_EOS_TOKEN + 1]], dim=-1)
    return relevant


@torch.inference_mode()
def semantic_tokens(model: torch.nn.Module, text_ids: np.ndarray, history: np.ndarray | None, *,
                    generator: torch.Generator, temp: float | None = C.DEFAULT_SEMANTIC_TEMP,
                    top_k: int | None = None, top_p: float | None = None,
                    min_eos_p: float | None = C.DEFAULT_MIN_EOS_P, max_gen_duration_s: float | None = None,
                    allow_early_stop: bool = True, max_steps: int = C.MAX_SEMANTIC_STEPS,
                    progress: Progress = None) -> np.ndarray:
    """Text window + semantic history + infer token, then one token per step until EOS."""
    device = _device_of(model)
    x = torch.from_numpy(semantic_input(text_ids, history))[None].to(device)
    cache = model.new_cache(1)
    logits = model(x, cache, merge_context=True)
    out: list[int] = []
    duration = 0.0
    for n in range(max_steps):
        if n > 0:
            logits = model(torch.tensor([[out[-1]]], device=device), cache)
        item_t, probs = sample(semantic_candidates(logits[0, 0], allow_early_stop), generator, temp, top_k, top_p)
        item = int(item_t)
        if semantic_stop(item, probs, allow_early_stop, min_eos_p):
            break
        out.append(item)
        duration += 1 / C.SEMANTIC_RATE_HZ
        if max_gen_duration_s is not None and duration > max_gen_duration_s:
            break
        _report(progress, n + 1, max_steps)
    _report(progress, max_steps, max_steps)
    return np.asarray(out, dtype=np.int64)


def _flatten_codebooks(arr: np.ndarray) -> np.ndarray:
    """Interleave codebooks frame by frame, codebook n shifted by n*1024 (Suno's coarse layout)."""
    arr = arr.astype(np.int64).copy()
    for n in range(1, arr.shape[0]):
        arr[n, :] += C.CODEBOOK_SIZE * n
    return arr.ravel("F")


def coarse_history(voice: Voice | None, max_coarse_history: int) -> tuple[np.ndarray, np.ndarray]:
    """Semantic and flattened coarse history from a voice, trimmed as Suno's code trims them."""
    if voice is None:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    sem_hist = voice.semantic
    coarse_hist = _flatten_codebooks(voice.coarse) + C.SEMANTIC_VOCAB_SIZE
    n_sem = int(np.min([max_semantic_history, len(sem_hist) - len(sem_hist) % 2,
                        int(np.floor(len(coarse_hist) / ratio))]))
    n_coarse = int(round(n_sem * ratio))
    # numpy slicing as in Suno's code (including [-0:] meaning "all")
    sem_hist = sem_hist[-n_sem:].astype(np.int64)
    coarse_hist = coarse_hist[-n_coarse:].astype(np.int64)[: -C.COARSE_HISTORY_TRIM]
    return sem_hist, coarse_hist


def coarse_steps(n_semantic: int) -> int:
    """Flattened coarse tokens to generate for ``n_semantic`` semantic tokens (a whole number of frames)."""
    n_steps = int(round(np.floor(n_semantic * C.SEMANTIC_TO_COARSE_RATIO / C.N_COARSE_CODEBOOKS)
                        * C.N_COARSE_CODEBOOKS))
    if n_steps <= 0:
        raise ArtifactError("The semantic input is too short to make any coarse frame.")
    return n_steps


def coarse_window_input(x_sem: torch.Tensor, x_coarse: torch.Tensor, sem_idx: int, max_semantic_history: int,
                        max_coarse_history: int) -> torch.Tensor:
    """One window's prompt (1-D): semantic context padded to 256, infer token, recent coarse history."""
    x_in = x_sem[max(0, sem_idx - max_semantic_history):][: C.COARSE_SEMANTIC_WINDOW]
    x_in = torch.nn.functional.pad(x_in, (0, C.COARSE_SEMANTIC_WINDOW - x_in.shape[-1]),
                                   value=C.COARSE_SEMANTIC_PAD_TOKEN)
    infer = torch.tensor([C.COARSE_INFER_TOKEN], device=x_sem.device)
    return torch.cat([x_in, infer, x_coarse[-max_coarse_history:]])


def unflatten_coarse(flat: np.ndarray) -> np.ndarray:
    """Interleaved coarse ids back to (2, frames) codebook values."""
    codes = flat.astype(np.int64).reshape(-1, C.N_COARSE_CODEBOOKS).T - C.SEMANTIC_VOCAB_SIZE
    for n in range(1, C.N_COARSE_CODEBOOKS):
        codes[n, :] -= n * C.CODEBOOK_SIZE
    return codes


def coarse_range(n_step: int) -> int:
    """First logit index of the codebook that step ``n_step`` predicts."""
    return C.SEMANTIC_VOCAB_SIZE + (0 if n_step % C.N_COARSE_CODEBOOKS == 0 else C.CODEBOOK_SIZE)


def left_pad_prompts(prompts: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Coarse window prompts of different lengths as one (B, T) batch, and each row's padding count."""
    width = max(len(p) for p in prompts)
    pad = torch.tensor([width - len(p) for p in prompts], device=device)
    x_in = torch.stack([torch.nn.functional.pad(p, (width - len(p), 0), value=C.COARSE_SEMANTIC_PAD_TOKEN)
                        for p in prompts])
    return x_in, pad


def check_coarse_settings(max_coarse_history: int, sliding_window_len: int) -> None:
    if not C.MIN_COARSE_HISTORY <= max_coarse_history <= C.MAX_COARSE_HISTORY:
        raise ValueError(f"max_coarse_history must be in {C.MIN_COARSE_HISTORY}..{C.MAX_COARSE_HISTORY}, "
                         f"got {max_coarse_history}.")
    if sliding_window_len < 1 or max_coarse_history + sliding_window_len > C.CONTEXT_WINDOW_SIZE - 256:
        raise ValueError(f"sliding_window_len must be >= 1 and max_coarse_history + sliding_window_len <= 768, "
                         f"got {sliding_window_len}.")


@torch.inference_mode()
def coarse_tokens(model: torch.nn.Module, semantic: np.ndarray, voice: Voice | None, *,
                  generator: torch.Generator, temp: float | None = C.DEFAULT_COARSE_TEMP,
                  top_k: int | None = None, top_p: float | None = None,
                  max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                  progress: Progress = None) -> np.ndarray:
    """Two interleaved codebooks, generated in windows of 60 tokens with a fresh KV cache each."""
    check_coarse_settings(max_coarse_history, sliding_window_len)
    ratio = C.SEMANTIC_TO_COARSE_RATIO
    max_semantic_history = int(np.floor(max_coarse_history / ratio))
    sem_hist, coarse_hist = coarse_history(voice, max_coarse_history)
    n_steps = coarse_steps(len(semantic))
    device = _device_of(model)
    x_sem = torch.from_numpy(np.hstack([sem_hist, semantic]).astype(np.int64)).to(device)
    x_coarse = torch.from_numpy(coarse_hist).to(device)
    base = len(sem_hist)
    generated: list[torch.Tensor] = []
    n_step = 0
    cache = model.new_cache(1)
    for _ in range(int(np.ceil(n_steps / sliding_window_len))):
        sem_idx = base + int(round(n_step / ratio))
        x_in = coarse_window_input(x_sem, x_coarse, sem_idx, max_semantic_history, max_coarse_history)
        cache.reset()
        logits = model(x_in[None], cache)
        for k in range(sliding_window_len):
            if n_step >= n_steps:
                break
            if k > 0:
                logits = model(generated[-1].view(1, 1), cache)
            start = coarse_range(n_step)
            item, _ = sample(logits[0, 0, start:start + C.CODEBOOK_SIZE].float(), generator, temp, top_k, top_p)
            item = item.reshape(()) + start
            generated.append(item)
            x_coarse = torch.cat([x_coarse, item.view(1)])
            n_step += 1
            _report(progress, n_step, n_steps)
    return unflatten_coarse(torch.stack(generated).cpu().numpy())


def fine_input(coarse: np.ndarray, voice: Voice | None) -> tuple[np.ndarray, int, int, int]:
    """(8, frames) input with voice history in front and padding behind, plus history, padding, loop counts."""
    n_coarse, n_frames = coarse.shape
    in_arr = np.vstack([coarse, np.full((C.N_FINE_CODEBOOKS - n_coarse, n_frames), C.FINE_PAD_TOKEN)])
    n_history = 0
    if voice is not None:
        hist = voice.fine[:, -C.FINE_HISTORY:]
        in_arr = np.hstack([hist, in_arr])
        n_history = hist.shape[1]
    n_pad = max(0, C.FINE_WINDOW - in_arr.shape[1])
    if n_pad:
        in_arr = np.hstack([in_arr, np.full((C.N_FINE_CODEBOOKS, n_pad), C.FINE_PAD_TOKEN)])
    n_loops = max(0, int(np.ceil((n_frames - (C.FINE_WINDOW - n_history)) / C.FINE_STEP))) + 1
    return in_arr, n_history, n_pad, n_loops


def fine_window(n: int, n_history: int, total: int) -> tuple[int, int, int]:
    """Window ``n``: where it starts, where filling starts, and the fill offset inside the window."""
    start = min(n * C.FINE_STEP, total - C.FINE_WINDOW)
    fill = min(n_history + n * C.FINE_STEP, total - C.FINE_STEP)
    return start, fill, fill - start


@torch.inference_mode()
def fine_tokens(model: torch.nn.Module, coarse: np.ndarray, voice: Voice | None, *,
                generator: torch.Generator, temp: float | None = C.DEFAULT_FINE_TEMP,
                progress: Progress = None) -> np.ndarray:
    """Fill codebooks n_coarse..7 over 1024-frame windows that advance 512 frames at a time."""
    n_coarse = coarse.shape[0]
    in_arr, n_history, n_pad, n_loops = fine_input(coarse, voice)
    device = _device_of(model)
    buf_all = torch.from_numpy(in_arr.T.astype(np.int64).copy()).to(device)  # (frames, 8)
    for n in range(n_loops):
        start, fill, rel = fine_window(n, n_history, len(buf_all))
        window = buf_all[start:start + C.FINE_WINDOW][None].clone()
        for nn in range(n_coarse, C.N_FINE_CODEBOOKS):
            logits = model(nn, window)[0, rel:, : C.CODEBOOK_SIZE].float()
            preds, _ = sample(logits, generator, temp)
            window[0, rel:, nn] = preds
        buf_all[fill:fill + (C.FINE_WINDOW - rel), n_coarse:] = window[0, rel:, n_coarse:]
        _report(progress, n + 1, n_loops)
    out = buf_all.T.cpu().numpy()[:, n_history:]
    if n_pad:
        out = out[:, :-n_pad]
    return out.astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Artifact-level stages
# --------------------------------------------------------------------------------------------------

def _settings_dtype(model: torch.nn.Module) -> dict[str, str]:
    p = next(model.parameters())
    return {"dtype": str(p.dtype).replace("torch.", ""), "device": p.device.type}


def _voice_label(voice: Voice | None) -> str | None:
    return None if voice is None else voice.label


def _device_class(models: BarkModels, stage: str) -> str:
    return models.device_for(stage).split(":")[0]


def _cached(models: BarkModels, stage: str, seed: Seed, parts: dict[str, Any], compute: Callable[[], Any],
            parent: Any = None) -> Any:
    """Serve a stage from ``models.cache`` when its key is known, else compute and store it."""
    from .cache import cache_key, seed_part

    cache = models.cache
    if cache is None:
        return compute()
    cacheable, seed_value = seed_part(cache, seed)
    if not cacheable:
        return compute()
    key = cache_key(stage, seed=seed_value, **parts)
    hit = cache.get(key, stage)
    if hit is not None:
        if parent is not None:
            hit.parent = parent
        return hit
    art = compute()
    cache.put(key, art)
    return art


def _stage_extra(untrained: bool, voice: Voice | None) -> dict[str, Any]:
    """Provenance extras: whether weights are untrained, and where the voice came from (rights included)."""
    from .rights import voice_origin

    extra: dict[str, Any] = {"untrained": bool(untrained)}
    if voice is not None:
        extra["voice_origin"] = voice_origin(voice)
    return extra


def _voice_part(voice: Voice | None) -> str | None:
    return None if voice is None else f"{voice.label}:{voice.id}"


def generate_semantic(models: BarkModels, text: str, voice: Any = None, *, temp: float | None = 0.7,
                      top_k: int | None = None, top_p: float | None = None, min_eos_p: float | None = 0.2,
                      max_gen_duration_s: float | None = None, allow_early_stop: bool = True, seed: Seed = None,
                      progress: Progress = None) -> SemanticTokens:
    """Text -> semantic tokens. Warns (TextTruncatedWarning) when the text exceeds 256 tokens."""
    text = normalize_text(text)
    voice = models.voice(voice)
    ids, cut = encode_text(models.tokenizer, text)
    if cut:
        msg = (f"Text too long for one generation: {cut}% of its tokens (the end) were cut to fit Bark's "
               f"{C.TEXT_WINDOW}-token window. Split it into sentences or use long-form generation.")
        log.warning(msg)
        warnings.warn(msg, TextTruncatedWarning, stacklevel=2)
    settings = dict(temp=temp, top_k=top_k, top_p=top_p, min_eos_p=min_eos_p,
                    max_gen_duration_s=max_gen_duration_s, allow_early_stop=allow_early_stop)
    decoder = models.decoder_for("text")

    def compute() -> SemanticTokens:
        with models.use("text") as loaded:
            gen, used_seed = make_generator(seed, _device_of(loaded.model))
            history = None if voice is None else voice.semantic
            if decoder == "fast":
                from .fast import semantic_tokens_fast

                tokens = semantic_tokens_fast(loaded.model, [ids], [history], [gen], progress=progress, **settings)[0]
            else:
                tokens = semantic_tokens(loaded.model, ids, history, generator=gen, progress=progress, **settings)
            recorded = {**settings, "decoder": decoder, "text": text,
                        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
                        "text_tokens": int(len(ids)), "text_truncated_pct": cut, "tokenizer": models.tokenizer.source,
                        **_settings_dtype(loaded.model)}
            prov = Provenance(stage="semantic", model=loaded.model_id, model_checksum=loaded.checksum,
                              settings=recorded, seed=used_seed, voice=_voice_label(voice),
                              extra=_stage_extra(loaded.untrained, voice))
        return SemanticTokens(tokens=tokens, provenance=prov)

    parts = dict(text=text, voice=_voice_part(voice), model=models.fingerprint("text"),
                 tokenizer=models.tokenizer.checksum, settings=settings, decoder=decoder,
                 dtype=str(models.dtype_for("text")),
                 device=_device_class(models, "text"))
    return _cached(models, "semantic", seed, parts, compute)


def _child(parent: Any, stage: str, loaded: Any, settings: dict, seed: int | None, voice: Voice | None,
           model: torch.nn.Module | None = None) -> Provenance:
    if model is not None:
        settings = {**settings, **_settings_dtype(model)}
    return Provenance(stage=stage, model=None if loaded is None else loaded.model_id,
                      model_checksum=None if loaded is None else loaded.checksum, settings=settings, seed=seed,
                      voice=_voice_label(voice),  # the voice this stage used, which may differ upstream
                      parent=parent.id, lineage=parent.lineage_ids(),
                      extra=_stage_extra(getattr(loaded, "untrained", False), voice))


def generate_coarse(models: BarkModels, semantic: SemanticTokens, voice: Any = None, *,
                    temp: float | None = 0.7, top_k: int | None = None, top_p: float | None = None,
                    max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                    seed: Seed = None, progress: Progress = None) -> CoarseCodes:
    """Semantic tokens -> the first two EnCodec codebooks (75 Hz)."""
    expect_artifact(semantic, SemanticTokens, "coarse")
    if semantic.n_frames == 0:
        raise ArtifactError("The semantic artifact is empty (the model stopped at once); generate it again "
                            "with another seed or a higher min_eos_p.")
    voice = models.voice(voice)
    check_coarse_settings(max_coarse_history, sliding_window_len)
    settings = dict(temp=temp, top_k=top_k, top_p=top_p, max_coarse_history=max_coarse_history,
                    sliding_window_len=sliding_window_len)

    decoder = models.decoder_for("coarse")

    def compute() -> CoarseCodes:
        with models.use("coarse") as loaded:
            gen, used_seed = make_generator(seed, _device_of(loaded.model))
            if decoder == "fast":
                from .fast import coarse_tokens_fast

                codes = coarse_tokens_fast(loaded.model, [semantic.tokens], [voice], [gen], progress=progress,
                                           **settings)[0]
            else:
                codes = coarse_tokens(loaded.model, semantic.tokens, voice, generator=gen, progress=progress,
                                      **settings)
            prov = _child(semantic, "coarse", loaded, {**settings, "decoder": decoder}, used_seed, voice,
                          loaded.model)
        return CoarseCodes(codes=codes, provenance=prov, parent=semantic)

    parts = dict(input=semantic.id, voice=_voice_part(voice), model=models.fingerprint("coarse"), settings=settings,
                 decoder=decoder,
                 dtype=str(models.dtype_for("coarse")), device=_device_class(models, "coarse"))
    return _cached(models, "coarse", seed, parts, compute, parent=semantic)


def generate_fine(models: BarkModels, coarse: CoarseCodes, voice: Any = None, *, temp: float | None = 0.5,
                  seed: Seed = None, progress: Progress = None) -> FineCodes:
    """Coarse codes -> all eight codebooks; ``temp=None`` takes the most likely code everywhere."""
    expect_artifact(coarse, CoarseCodes, "fine")
    if coarse.n_frames == 0:
        raise ArtifactError("The coarse artifact has no frames; nothing to refine. Generate coarse codes first.")
    voice = models.voice(voice)

    def compute() -> FineCodes:
        with models.use("fine") as loaded:
            gen, used_seed = make_generator(seed, _device_of(loaded.model))
            codes = fine_tokens(loaded.model, coarse.codes, voice, generator=gen, temp=temp, progress=progress)
            prov = _child(coarse, "fine", loaded, {"temp": temp}, used_seed, voice, loaded.model)
        return FineCodes(codes=codes, provenance=prov, parent=coarse)

    parts = dict(input=coarse.id, voice=_voice_part(voice), model=models.fingerprint("fine"), temp=temp,
                 dtype=str(models.dtype_for("fine")), device=_device_class(models, "fine"))
    return _cached(models, "fine", seed, parts, compute, parent=coarse)


def decode(models: BarkModels, fine: FineCodes) -> Audio:
    """Fine codes -> 24 kHz waveform through EnCodec."""
    from . import codec

    expect_artifact(fine, FineCodes, "decode")

    def compute() -> Audio:
        with models.use("codec") as codec_model:
            audio = codec.decode(fine, codec_model)
        extra = {"untrained": models.untrained}
        origin = next((a.provenance.extra["voice_origin"] for a in (fine, fine.parent, getattr(fine.parent, "parent",
                       None)) if a is not None and "voice_origin" in a.provenance.extra), None)
        if origin is not None:  # the rights record of a cloned voice must reach the label
            extra["voice_origin"] = origin
        audio.provenance = dataclasses.replace(audio.provenance, extra=extra)
        return audio

    # decoding is deterministic: always cacheable
    parts = dict(input=fine.id, model=models.fingerprint("codec"), device=_device_class(models, "codec"))
    return _cached(models, "decode", 0, parts, compute, parent=fine)


def decode_preview(models: BarkModels, coarse: CoarseCodes) -> Audio:
    """Listen before the fine stage: the two coarse codebooks decoded alone (EnCodec at 1.5 kbps)."""
    from . import codec

    expect_artifact(coarse, CoarseCodes, "coarse preview")
    if coarse.n_frames == 0:
        raise ArtifactError("The coarse artifact has no frames; nothing to preview.")
    with models.use("codec") as codec_model:
        samples = codec.decode_codes(coarse.codes, codec_model)
    prov = Provenance(stage="coarse_preview", model=getattr(codec_model, "bark_core_source", "encodec_24khz"),
                      settings={"bandwidth": 1.5, "codebooks": C.N_COARSE_CODEBOOKS}, voice=coarse.provenance.voice,
                      parent=coarse.id, lineage=coarse.lineage_ids(), extra={"untrained": models.untrained})
    return Audio(samples=samples, sample_rate=C.SAMPLE_RATE, provenance=prov, parent=coarse)


def expected_samples(n_frames: int) -> int:
    """EnCodec 24 kHz makes 320 samples per 75 Hz frame."""
    return int(n_frames * C.SAMPLE_RATE // C.COARSE_RATE_HZ)


def coarse_frames_for(semantic_len: int) -> int:
    return int(math.floor(semantic_len * C.SEMANTIC_TO_COARSE_RATIO / C.N_COARSE_CODEBOOKS))
