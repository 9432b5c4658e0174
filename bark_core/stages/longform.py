"""Long texts: split into sentence-sized chunks, generate each, join them with gaps.

One Bark generation holds at most 256 text tokens and about 14 s of speech, so anything longer is
cut into chunks at sentence boundaries. A rule-based splitter (no model download) handles the usual
traps: abbreviations, initials, decimals, ellipses, quotes after the full stop, and CJK punctuation.
Cues such as ``[laughter]``, ``♪``, ``—`` and CAPS pass through unchanged.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import constants as C
from .. import limits
from ..artifacts import Audio
from ..edit import concat
from ..errors import BadTextError, BarkError, ParameterError
from ..sampling import DrawnSeed, derive_seed, master_seed
from ..voices import Voice
from .generation import check_generate_settings, normalize_text
from .modelset import BarkModels
from .pipeline import Take, generate, merge_origins

DEFAULT_MAX_CHARS = 200  # ~13 s of speech at a typical 15 characters per second: fits 768 semantic steps
CONTINUITY_MODES = ("fixed", "carry", "reset")

ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co", "no",
    "fig", "approx", "dept", "mt", "ft", "gen", "col", "lt", "sgt", "capt", "rev", "hon", "est", "vol", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "cf", "al", "u.s", "u.k",
}
_TERMINALS = ".!?…‼⁇。！？"
_CJK_TERMINALS = "。！？"
_CLOSERS = "\"'”’»)]}」』】"
_SOFT_BREAKS = re.compile(r"(?<=[,;:—–、，；：])\s*")


def _is_boundary(text: str, i: int) -> bool:
    """Does the terminal punctuation at ``text[i]`` end a sentence?"""
    ch = text[i]
    j = i + 1
    while j < len(text) and (text[j] in _TERMINALS or text[j] in _CLOSERS):
        j += 1
    nxt = text[j] if j < len(text) else ""
    if ch in _CJK_TERMINALS:
        return True
    if nxt and not nxt.isspace():
        return False  # "3.14", "e.g.x", "file.txt"
    if ch == "." and i + 1 < len(text) and text[i + 1] == ".":
        return False  # inside "...": judged at its last dot
    if ch in ".…":
        rest = text[j:].lstrip()
        if ch == "…" or text[max(0, i - 2):i + 1] == "...":
            return not rest or not rest[0].islower()  # "wait... what" continues
        word = re.search(r"([\w.]+)\.$", text[:i + 1])
        if word:
            w = word.group(1).lower()
            if w in ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
                return False  # "Dr. Smith", "J. R. R. Tolkien"
            if w.replace(".", "").isdigit() and rest[:1].islower():
                return False  # "page 3. then"
    return True


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` with their punctuation, whitespace normalised."""
    text = normalize_text(text)
    out, start = [], 0
    i = 0
    while i < len(text):
        if text[i] in _TERMINALS and _is_boundary(text, i):
            j = i + 1
            while j < len(text) and (text[j] in _TERMINALS or text[j] in _CLOSERS):
                j += 1
            piece = text[start:j].strip()
            if piece:
                out.append(piece)
            start, i = j, j
            continue
        i += 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _split_long_sentence(sentence: str, fits: Callable[[str], bool]) -> list[str]:
    """Break one over-long sentence at commas/semicolons/dashes, then between words."""
    parts = [p for p in _SOFT_BREAKS.split(sentence) if p]
    pieces: list[str] = []
    for part in parts:
        pieces.extend([part] if fits(part) else _pack(part.split(" "), fits))
    return _pack(pieces, fits)


def _pack(pieces: list[str], fits: Callable[[str], bool]) -> list[str]:
    chunks: list[str] = []
    cur = ""
    for piece in pieces:
        cand = f"{cur} {piece}".strip()
        if cur and not fits(cand):
            chunks.append(cur)
            cur = piece
        else:
            cur = cand
    if cur:
        chunks.append(cur)
    return chunks


def split_text(text: str, *, max_chars: int = DEFAULT_MAX_CHARS, tokenizer: Any = None,
               max_tokens: int = C.TEXT_WINDOW) -> list[str]:
    """Chunks of whole sentences, each at most ``max_chars`` and (with a tokenizer) ``max_tokens`` tokens."""
    limits.number("max_chars", max_chars, lo=10, hi=limits.MAX_TEXT_CHARS, integer=True,
                  hint=f"Chunks are about one sentence (default {DEFAULT_MAX_CHARS}).")
    limits.text(text, "text", max_chars=limits.MAX_LONG_TEXT_CHARS, error=BadTextError)

    def fits(chunk: str) -> bool:
        if len(chunk) > max_chars:
            return False
        return tokenizer is None or len(tokenizer.encode(chunk)) <= max_tokens

    pieces: list[str] = []
    for sentence in split_sentences(text):
        pieces.extend([sentence] if fits(sentence) else _split_long_sentence(sentence, fits))
    return _pack(pieces, fits)


@dataclass
class LongTake:
    """The chunks of a long text, each chunk's take, and the joined audio."""

    chunks: list[str]
    takes: list[Take] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    voices_used: list[str | None] = field(default_factory=list)
    gap_s: float = 0.25
    audio: Audio | None = None
    seed: int | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)  # per chunk, when generated with a scorer
    tries: list[int] = field(default_factory=list)

    def drift(self) -> list[float | None]:
        """Per chunk: 1 - speaker similarity to the first chunk (None where not scored)."""
        return [s.get("drift") for s in self.scores]

    def drift_report(self) -> str:
        """One line per scored chunk (tries, WER, similarity to the first chunk, drift, verdict): what the CLI
        prints and the Long-form node shows, so a drifting or off-script chunk is found without listening."""
        if not self.scores:
            return "chunks were not scored (give a scorer, e.g. bark_core.script.chunk_scorer)"

        def fig(v: Any) -> str:
            return "-" if v is None else f"{v:.2f}"

        lines = ["chunk  tries  WER    sim    drift  verdict"]
        for i, s in enumerate(self.scores, start=1):
            tries = self.tries[i - 1] if i - 1 < len(self.tries) else 1
            why = "; ".join(s.get("reasons") or [])
            verdict = "pass" if s.get("passed") else ("fail" + (f": {why}" if why else ""))
            lines.append(f"{i:<6} {tries:<6} {fig(s.get('wer')):<6} {fig(s.get('similarity_voice')):<6} "
                         f"{fig(s.get('drift')):<6} {verdict}")
        drifts = [d for d in self.drift() if d is not None]
        if drifts:
            lines.append(f"largest drift {max(drifts):.2f} (1 - speaker similarity to chunk 1)")
        return "\n".join(lines)

    def label_meta(self, seed: int | None = None) -> dict[str, Any]:
        """What the label stage should record for the whole piece (see :meth:`Take.label_meta`)."""
        if not self.takes:
            raise BarkError("No chunk has been generated yet; nothing to label.")
        meta = self.takes[0].label_meta(seed=seed if seed is not None else self.seed)
        meta["text"] = " ".join(self.chunks)
        # every chunk may speak with another voice (continuity carry/reset): each one's stages and origins
        del meta["stages"]
        meta["chunk_stages"] = [take.stage_voices() for take in self.takes]
        origins = merge_origins([take.voice_origins() for take in self.takes])
        if origins:
            meta["voice_origins"] = origins
        return meta

    def join(self) -> Audio:
        if not self.takes:
            raise BarkError("No chunk has been generated yet; nothing to join.")
        self.audio = concat([t.audio for t in self.takes], gap_s=self.gap_s)
        return self.audio


class LongFormError(BarkError):
    """Chunk ``chunk`` (1-based) failed; ``partial`` holds the chunks made before it."""

    def __init__(self, message: str, chunk: int, partial: LongTake):
        super().__init__(message)
        self.chunk = chunk
        self.partial = partial


def _voice_for(i: int, mode: str, reset_every: int, preset: Voice | None, previous: Take | None) -> Voice | None:
    if mode == "fixed" or previous is None:
        return preset
    if mode == "reset" and i % reset_every == 0:
        return preset
    return previous.voice(name=f"chunk{i}")


def generate_long(models: BarkModels, text: str, voice: Any = None, *, seed: int | None = None,
                  continuity: str = "fixed", reset_every: int = 3, gap_s: float = 0.25,
                  max_chars: int = DEFAULT_MAX_CHARS, progress: Callable[..., None] | None = None,
                  scorer: Callable[[int, str, Take, Take | None], dict[str, Any]] | None = None,
                  max_tries: int = 1, **generate_kwargs: Any) -> LongTake:
    """Speak a text of any length.

    ``continuity``: "fixed" uses ``voice`` for every chunk; "carry" feeds each chunk's take to the next
    as its voice (one speaker that drifts naturally); "reset" carries too but returns to ``voice``
    every ``reset_every`` chunks (stops drift). Chunk seeds derive from ``seed``, so the piece repeats.
    ``progress(chunk, n_chunks, stage, done, total)`` reports chunks (1-based) and stages.

    ``scorer(index, text, take, first_take)`` judges each chunk and returns a dict with ``passed`` and
    ``penalty`` (lower is better) plus its figures, e.g. :func:`bark_core.script.chunk_scorer` (speaker
    similarity to the first chunk and WER). A chunk that does not pass is retaken with new derived seeds, up
    to ``max_tries`` candidates, and the first passing (else the lowest penalty) is kept; each chunk's
    scores and tries are recorded in ``scores`` and ``tries`` (``drift()`` lists the drift per chunk).
    """
    if continuity not in CONTINUITY_MODES:
        raise ParameterError(f"continuity must be one of {CONTINUITY_MODES}, got {continuity!r:.40}.")
    limits.number("reset_every", reset_every, lo=1, hi=1_000_000, integer=True)
    limits.number("gap_s", gap_s, lo=0.0, hi=60.0, hint="It is the silence between chunks, in seconds.")
    limits.seed_value(seed)
    if progress is not None and not callable(progress):
        raise ParameterError(f"progress must be a function or None, got {type(progress).__name__}.")
    allowed = set(inspect.signature(check_generate_settings).parameters) - {"progress", "seed"}
    unknown = sorted(set(generate_kwargs) - allowed)
    if unknown:
        raise ParameterError(f"generate_long got unexpected setting(s) {unknown}; it takes generate()'s settings "
                             "(semantic_temp, coarse_temp, fine_temp, top_k, top_p, min_eos_p, ...).")
    check_generate_settings(**generate_kwargs)
    chunks = split_text(text, max_chars=max_chars, tokenizer=models.tokenizer)
    if not chunks:
        raise BadTextError("Text is empty or only whitespace. Type the words to speak.")
    seed = master_seed(seed)  # drawn when not given; LongTake.seed redoes the whole piece
    preset = models.voice(voice)
    result = LongTake(chunks=chunks, gap_s=gap_s, seed=int(seed))
    previous: Take | None = None
    for i, chunk in enumerate(chunks):
        chunk_seed = derive_seed(seed, "chunk", i)
        if isinstance(seed, DrawnSeed):
            chunk_seed = DrawnSeed(chunk_seed)
        use = _voice_for(i, continuity, reset_every, preset, previous)
        cb = None
        if progress is not None:
            def cb(stage: str, done: int, total: int, _k: int = i + 1) -> None:
                progress(_k, len(chunks), stage, done, total)
        try:
            take, chunk_seed = _scored_chunk(models, i, chunk, use, seed, chunk_seed, cb, scorer, max_tries,
                                             result, generate_kwargs)
        except Exception as exc:
            if result.takes:
                result.join()
            raise LongFormError(f"Chunk {i + 1} of {len(chunks)} ({chunk[:40]!r}...) failed: {exc}. "
                                f"Chunks 1..{i} are kept in .partial.", chunk=i + 1, partial=result) from exc
        result.takes.append(take)
        result.seeds.append(int(chunk_seed))
        result.voices_used.append(None if use is None else use.label)
        previous = take
    result.join()
    return result


def _scored_chunk(models: BarkModels, i: int, chunk: str, voice: Voice | None, seed: int, chunk_seed: int,
                  cb: Any, scorer: Any, max_tries: int, result: LongTake,
                  generate_kwargs: dict[str, Any]) -> tuple[Take, int]:
    """One chunk: a single take, or with a scorer up to ``max_tries`` candidates, the first passing kept."""
    if scorer is None:
        return generate(models, chunk, voice, seed=chunk_seed, progress=cb, **generate_kwargs), chunk_seed
    first = result.takes[0] if result.takes else None
    tried: list[tuple[Take, int, dict[str, Any]]] = []
    for k in range(max(1, int(max_tries))):
        s = chunk_seed if k == 0 else derive_seed(seed, "chunk", i, "retake", k)
        take = generate(models, chunk, voice, seed=s, progress=cb, **generate_kwargs)
        scores = dict(scorer(i, chunk, take, first))
        if scores.get("seed") is None:
            scores["seed"] = s
        tried.append((take, s, scores))
        if scores.get("passed"):
            break
    best = next((t for t in tried if t[2].get("passed")), None) or min(tried, key=lambda t: t[2].get("penalty", 0))
    result.scores.append({**best[2], "candidates": [t[2] for t in tried]})
    result.tries.append(len(tried))
    return best[0], best[1]
