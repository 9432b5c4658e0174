"""The four stages as functions over artifacts: voices, seeds, devices, caching and provenance.

The token loops themselves live in :mod:`bark_core.sampling` (eager reference and fast decoder);
these functions choose one, feed it and record what determined the result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import constants as C
from .. import limits
from ..artifacts import Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, expect_artifact
from ..cache import cache_key, seed_part
from ..errors import ArtifactError, BadTextError, CheckpointError, ParameterError
from ..models import codec
from ..models.device import autocast_dtype
from ..models.quant import is_int8
from ..rights import voice_origin
from ..sampling import DrawnSeed, Seed, make_generator
from ..sampling.eager import (
    check_coarse_settings,
    coarse_steps,
    coarse_tokens,
    device_of,
    fine_tokens,
    semantic_tokens,
)
from ..sampling.fast import coarse_tokens_fast, semantic_tokens_fast
from ..voices import Voice
from .modelset import BarkModels

Progress = Callable[[int, int], None] | None
log = logging.getLogger(__name__)


class TextTruncatedWarning(UserWarning):
    """The text did not fit the 256-token window and its end was cut, as Suno's code does."""


def normalize_text(text: Any, max_chars: int = limits.MAX_TEXT_CHARS) -> str:
    """Collapse whitespace like Suno does; reject what cannot be spoken with a clear message."""
    if not isinstance(text, str):
        raise BadTextError(f"Text must be a string, got {type(text).__name__}. Pass the words to speak as str.")
    limits.text(text, "Text", max_chars=max_chars, error=BadTextError)
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



# --------------------------------------------------------------------------------------------------
# Settings, checked before any model loads
# --------------------------------------------------------------------------------------------------

def check_progress(progress: Any) -> None:
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress must be a function (done, total) or None, got {type(progress).__name__}.")


def check_semantic_settings(temp: Any = None, top_k: Any = None, top_p: Any = None, min_eos_p: Any = None,
                            max_gen_duration_s: Any = None, allow_early_stop: Any = True) -> None:
    """The text stage's settings: refuse NaN, infinities, wrong types and values outside their range."""
    limits.sampling_settings(temp, top_k, top_p)
    limits.number("min_eos_p", min_eos_p, lo=0.0, hi=1.0, allow_none=True,
                  hint="It is the end-of-speech probability that stops generation (Suno: 0.2), or None.")
    limits.number("max_gen_duration_s", max_gen_duration_s, lo=0.0, lo_open=True, hi=3600.0, allow_none=True,
                  hint="One generation makes at most about 15 s; None for no cap.")
    if not isinstance(allow_early_stop, (bool, np.bool_)):
        raise ParameterError(f"allow_early_stop must be True or False, got {allow_early_stop!r:.40}.")


def check_generate_settings(*, semantic_temp: Any = None, coarse_temp: Any = None, fine_temp: Any = None,
                            top_k: Any = None, top_p: Any = None, min_eos_p: Any = None,
                            max_gen_duration_s: Any = None, allow_early_stop: Any = True, progress: Any = None,
                            seed: Any = None) -> None:
    """Every setting of :func:`~bark_core.stages.generate`, checked up front (not after minutes of work)."""
    check_semantic_settings(semantic_temp, top_k, top_p, min_eos_p, max_gen_duration_s, allow_early_stop)
    limits.sampling_settings(coarse_temp, temp_name="coarse_temp")
    limits.sampling_settings(fine_temp, temp_name="fine_temp")
    limits.seed_value(seed)
    check_progress(progress)


def _made_by(hit: Any, seed: Seed, settings: dict[str, Any]) -> bool:
    """Whether a cached result records the seed and settings of this request (an entry of another request
    copied under this key does not)."""
    recorded = hit.provenance.settings
    if isinstance(seed, int) and not isinstance(seed, bool) and hit.provenance.seed != seed:
        return False
    return all(recorded.get(k) == v for k, v in settings.items())


def _check_length(art: Any, limit: int, stage: str) -> None:
    if art.n_frames > limit:
        raise ArtifactError(
            f"The {art.KIND} artifact has {art.n_frames:,} frames ({art.duration_s:.1f} s); the {stage} stage takes at "
            f"most {limit:,} ({limits.MAX_STAGE_S:g} s; one Bark generation makes about 15 s). Cut it with "
            "slice_artifact() and run the parts, then join the audio with concat().")


# --------------------------------------------------------------------------------------------------
# Artifact-level stages
# --------------------------------------------------------------------------------------------------

def settings_dtype(model: torch.nn.Module) -> dict[str, str]:
    """Precision and device class a stage ran in (called inside ``models.use``, where autocast is on if chosen)."""
    p = next(model.parameters())
    out = {"dtype": str(p.dtype).replace("torch.", ""), "device": p.device.type}
    if is_int8(model):  # int8 linear weights; embeddings, norms and activations in the dtype recorded here
        out = {"dtype": "int8", "activations": out["dtype"], "device": p.device.type}
    autocast = autocast_dtype(p.device)
    if autocast is not None:
        out["autocast"] = str(autocast).replace("torch.", "")
    return out


def voice_label(voice: Voice | None) -> str | None:
    return None if voice is None else voice.label


def _device_class(models: BarkModels, stage: str) -> str:
    return models.device_for(stage).split(":")[0]


def _cached(models: BarkModels, stage: str, seed: Seed, parts: Callable[[bool], dict[str, Any]],
            compute: Callable[[], Any], parent: Any = None, fits: Callable[[Any], bool] | None = None) -> Any:
    """Serve a stage from ``models.cache`` when its key is known, else compute and store it.

    ``parts(download)`` gives what the key hashes. It is asked first without downloading: weights
    not on disk yet cannot have made a cached result, so that is a miss found without fetching
    anything; the key is then made after ``compute`` (which loads, and so downloads, the weights).
    No model is touched on a hit: ``compute`` alone calls ``models.use``. ``fits(hit)`` checks a
    stored result against this request (its parent id, its length); a hit that does not fit was
    tampered with or damaged, and is recomputed instead of served.
    """
    cache = models.cache
    if cache is None:
        return compute()
    cacheable, seed_value = seed_part(cache, seed)
    if not cacheable or (isinstance(seed, DrawnSeed) and not cache.cache_unseeded):
        return compute()
    try:
        key: str | None = cache_key(stage, seed=seed_value, **parts(False))
    except CheckpointError:
        key = None
    if key is not None:
        hit = cache.get(key, stage)
        if hit is not None and fits is not None and not fits(hit):
            log.warning("the cached %s result for this request does not fit its input; recomputing it", stage)
            hit = None
        if hit is not None:
            if parent is not None:
                hit.parent = parent
            return hit
    else:
        cache.stats.count(stage, False)
    art = compute()
    cache.put(key or cache_key(stage, seed=seed_value, **parts(True)), art)
    return art


def stage_extra(untrained: bool, voice: Voice | None) -> dict[str, Any]:
    """Provenance extras: whether weights are untrained, and where the voice came from (rights included)."""
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
    check_semantic_settings(temp, top_k, top_p, min_eos_p, max_gen_duration_s, allow_early_stop)
    limits.seed_value(seed)
    check_progress(progress)
    max_gen_duration_s = models.semantic_cap(max_gen_duration_s)
    voice = models.voice(voice)
    ids, cut = encode_text(models.tokenizer, text)
    if cut:
        msg = (f"Text too long for one generation: {cut}% of its tokens (the end) were cut to fit Bark's "
               f"{C.TEXT_WINDOW}-token window. Split it into sentences or use long-form generation.")
        warnings.warn(msg, TextTruncatedWarning, stacklevel=2)  # one report: the warning (front ends show it)
    settings = dict(temp=temp, top_k=top_k, top_p=top_p, min_eos_p=min_eos_p,
                    max_gen_duration_s=max_gen_duration_s, allow_early_stop=allow_early_stop)
    decoder = models.decoder_for("text")

    def compute() -> SemanticTokens:
        with models.use("text") as loaded:
            gen, used_seed = make_generator(seed, device_of(loaded.model))
            history = None if voice is None else voice.semantic
            if decoder == "fast":
                tokens = semantic_tokens_fast(loaded.model, [ids], [history], [gen], progress=progress, **settings)[0]
            else:
                tokens = semantic_tokens(loaded.model, ids, history, generator=gen, progress=progress, **settings)
            recorded = {**settings, "decoder": decoder, "text": text,
                        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
                        "text_tokens": int(len(ids)), "text_truncated_pct": cut,
                        "tokenizer": models.tokenizer.public_source,
                        **settings_dtype(loaded.model)}
            prov = Provenance(stage="semantic", model=loaded.model_id, model_checksum=loaded.checksum,
                              settings=recorded, seed=used_seed, voice=voice_label(voice),
                              extra=stage_extra(loaded.untrained, voice))
        return SemanticTokens(tokens=tokens, provenance=prov)

    def parts(download: bool) -> dict[str, Any]:
        return dict(text=text, voice=_voice_part(voice), model=models.fingerprint("text", download=download),
                    tokenizer=models.tokenizer.checksum, settings=settings, decoder=decoder,
                    dtype=models.precision_name("text"), device=_device_class(models, "text"))

    return _cached(models, "semantic", seed, parts, compute,
                   fits=lambda hit: _made_by(hit, seed, settings) and hit.provenance.settings.get("text") == text
                   and hit.provenance.parent is None)


def child_provenance(parent: Any, stage: str, loaded: Any, settings: dict, seed: int | None, voice: Voice | None,
           model: torch.nn.Module | None = None) -> Provenance:
    if model is not None:
        settings = {**settings, **settings_dtype(model)}
    return Provenance(stage=stage, model=None if loaded is None else loaded.model_id,
                      model_checksum=None if loaded is None else loaded.checksum, settings=settings, seed=seed,
                      voice=voice_label(voice),  # the voice this stage used, which may differ upstream
                      parent=parent.id, lineage=parent.lineage_ids(),
                      extra=stage_extra(getattr(loaded, "untrained", False), voice))


def generate_coarse(models: BarkModels, semantic: SemanticTokens, voice: Any = None, *,
                    temp: float | None = 0.7, top_k: int | None = None, top_p: float | None = None,
                    max_coarse_history: int = C.MAX_COARSE_HISTORY, sliding_window_len: int = C.SLIDING_WINDOW_LEN,
                    seed: Seed = None, progress: Progress = None,
                    on_window: Callable[[np.ndarray], None] | None = None) -> CoarseCodes:
    """Semantic tokens -> the first two EnCodec codebooks (75 Hz).

    ``on_window(flat)`` is called with the interleaved coarse tokens made so far after each sliding
    window (what streaming decodes early); a cached result calls it never.
    """
    expect_artifact(semantic, SemanticTokens, "coarse")
    if semantic.n_frames == 0:
        raise ArtifactError("The semantic artifact is empty (the model stopped at once); generate it again "
                            "with another seed or a higher min_eos_p.")
    _check_length(semantic, limits.MAX_SEMANTIC_INPUT, "coarse")
    limits.sampling_settings(temp, top_k, top_p)
    check_coarse_settings(max_coarse_history, sliding_window_len)
    limits.seed_value(seed)
    check_progress(progress)
    voice = models.voice(voice)
    settings = dict(temp=temp, top_k=top_k, top_p=top_p, max_coarse_history=max_coarse_history,
                    sliding_window_len=sliding_window_len)

    decoder = models.decoder_for("coarse")

    def compute() -> CoarseCodes:
        with models.use("coarse") as loaded:
            gen, used_seed = make_generator(seed, device_of(loaded.model))
            if decoder == "fast":
                codes = coarse_tokens_fast(loaded.model, [semantic.tokens], [voice], [gen], progress=progress,
                                           on_window=on_window, **settings)[0]
            else:
                codes = coarse_tokens(loaded.model, semantic.tokens, voice, generator=gen, progress=progress,
                                      on_window=on_window, **settings)
            prov = child_provenance(semantic, "coarse", loaded, {**settings, "decoder": decoder}, used_seed, voice,
                          loaded.model)
        return CoarseCodes(codes=codes, provenance=prov, parent=semantic)

    def parts(download: bool) -> dict[str, Any]:
        return dict(input=semantic.id, voice=_voice_part(voice), model=models.fingerprint("coarse", download=download),
                    settings=settings, decoder=decoder, dtype=models.precision_name("coarse"),
                    device=_device_class(models, "coarse"))

    frames = coarse_steps(semantic.n_frames) // C.N_COARSE_CODEBOOKS
    return _cached(models, "coarse", seed, parts, compute, parent=semantic,
                   fits=lambda hit: _made_by(hit, seed, settings) and hit.provenance.parent == semantic.id
                   and hit.n_frames == frames)


def generate_fine(models: BarkModels, coarse: CoarseCodes, voice: Any = None, *, temp: float | None = 0.5,
                  seed: Seed = None, progress: Progress = None) -> FineCodes:
    """Coarse codes -> all eight codebooks; ``temp=None`` takes the most likely code everywhere."""
    expect_artifact(coarse, CoarseCodes, "fine")
    if coarse.n_frames == 0:
        raise ArtifactError("The coarse artifact has no frames; nothing to refine. Generate coarse codes first.")
    _check_length(coarse, limits.MAX_CODE_FRAMES, "fine")
    limits.sampling_settings(temp)
    limits.seed_value(seed)
    check_progress(progress)
    voice = models.voice(voice)

    def compute() -> FineCodes:
        with models.use("fine") as loaded:
            gen, used_seed = make_generator(seed, device_of(loaded.model))
            codes = fine_tokens(loaded.model, coarse.codes, voice, generator=gen, temp=temp, progress=progress)
            prov = child_provenance(coarse, "fine", loaded, {"temp": temp}, used_seed, voice, loaded.model)
        return FineCodes(codes=codes, provenance=prov, parent=coarse)

    def parts(download: bool) -> dict[str, Any]:
        return dict(input=coarse.id, voice=_voice_part(voice), model=models.fingerprint("fine", download=download),
                    temp=temp, dtype=models.precision_name("fine"), device=_device_class(models, "fine"))

    return _cached(models, "fine", seed, parts, compute, parent=coarse,
                   fits=lambda hit: _made_by(hit, seed, {"temp": temp}) and hit.provenance.parent == coarse.id
                   and hit.n_frames == coarse.n_frames
                   and np.array_equal(hit.codes[:C.N_COARSE_CODEBOOKS], coarse.codes))


def decode(models: BarkModels, fine: FineCodes) -> Audio:
    """Fine codes -> 24 kHz waveform through EnCodec."""
    expect_artifact(fine, FineCodes, "decode")
    _check_length(fine, limits.MAX_CODE_FRAMES, "decode")

    def compute() -> Audio:
        with models.use("codec") as codec_model:
            audio = codec.decode(fine, codec_model)
        audio.provenance = dataclasses.replace(audio.provenance, extra=decode_extra(models, fine))
        return audio

    return _cached_decode(models, "decode", fine, compute)


def decode_extra(models: BarkModels, fine: FineCodes) -> dict[str, Any]:
    """What decoded audio's provenance carries beyond the codec: untrained weights, a cloned voice's rights."""
    extra: dict[str, Any] = {"untrained": models.untrained}
    origin = next((a.provenance.extra["voice_origin"] for a in (fine, fine.parent, getattr(fine.parent, "parent",
                   None)) if a is not None and "voice_origin" in a.provenance.extra), None)
    if origin is not None:  # the rights record of a cloned voice must reach the label
        extra["voice_origin"] = origin
    return extra


def _cached_decode(models: BarkModels, stage: str, codes: FineCodes | CoarseCodes, compute: Callable[[], Audio]
                   ) -> Audio:
    """EnCodec's output for ``codes`` from the stage cache, or ``compute``'s. Decoding is deterministic, so
    it is always cacheable, keyed by the codes, the codec's weights and the device class."""
    def parts(download: bool) -> dict[str, Any]:
        return dict(input=codes.id, model=models.fingerprint("codec", download=download),
                    device=_device_class(models, "codec"))

    return _cached(models, stage, 0, parts, compute, parent=codes,
                   fits=lambda hit: hit.provenance.parent == codes.id and hit.sample_rate == C.SAMPLE_RATE
                   and hit.n_samples == expected_samples(codes.n_frames))


def decode_preview(models: BarkModels, coarse: CoarseCodes) -> Audio:
    """Listen before the fine stage: the two coarse codebooks decoded alone (EnCodec at 1.5 kbps)."""
    expect_artifact(coarse, CoarseCodes, "coarse preview")
    if coarse.n_frames == 0:
        raise ArtifactError("The coarse artifact has no frames; nothing to preview.")
    _check_length(coarse, limits.MAX_CODE_FRAMES, "coarse preview")

    def compute() -> Audio:
        with models.use("codec") as codec_model:
            samples = codec.decode_codes(coarse.codes, codec_model)
        prov = Provenance(stage="coarse_preview", model=getattr(codec_model, "bark_core_source", "encodec_24khz"),
                          settings={"bandwidth": 1.5, "codebooks": C.N_COARSE_CODEBOOKS},
                          voice=coarse.provenance.voice, parent=coarse.id, lineage=coarse.lineage_ids(),
                          extra={"untrained": models.untrained})
        return Audio(samples=samples, sample_rate=C.SAMPLE_RATE, provenance=prov, parent=coarse)

    # deterministic like decode, and as slow: cached next to the coarse codes it was made from
    return _cached_decode(models, "coarse_preview", coarse, compute)


def expected_samples(n_frames: int) -> int:
    """EnCodec 24 kHz makes 320 samples per 75 Hz frame."""
    return int(n_frames * C.SAMPLE_RATE // C.COARSE_RATE_HZ)


def coarse_frames_for(semantic_len: int) -> int:
    return int(math.floor(semantic_len * C.SEMANTIC_TO_COARSE_RATIO / C.N_COARSE_CODEBOOKS))

