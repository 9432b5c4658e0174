"""Long texts: split into sentence-sized chunks, generate each, join them with gaps.

One Bark generation holds at most 256 text tokens and about 14 s of speech, so anything longer is
cut into chunks at sentence boundaries. A rule-based splitter (no model download) handles the usual
traps: abbreviations, initials, decimals, ellipses, quotes after the full stop, and CJK punctuation.
Cues such as ``[laughter]``, ``♪``, ``—`` and CAPS pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import constants as C
from ..artifacts import Audio
from ..edit import concat
from ..errors import BadTextError, BarkError
from ..sampling import derive_seed, make_generator
from ..voices import Voice
from .generation import normalize_text
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
    if max_chars < 10:
        raise ValueError(f"max_chars must be at least 10, got {max_chars}.")

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
                  **generate_kwargs: Any) -> LongTake:
    """Speak a text of any length.

    ``continuity``: "fixed" uses ``voice`` for every chunk; "carry" feeds each chunk's take to the next
    as its voice (one speaker that drifts naturally); "reset" carries too but returns to ``voice``
    every ``reset_every`` chunks (stops drift). Chunk seeds derive from ``seed``, so the piece repeats.
    ``progress(chunk, n_chunks, stage, done, total)`` reports chunks (1-based) and stages.
    """
    if continuity not in CONTINUITY_MODES:
        raise ValueError(f"continuity must be one of {CONTINUITY_MODES}, got {continuity!r}.")
    if reset_every < 1:
        raise ValueError(f"reset_every must be >= 1, got {reset_every}.")
    chunks = split_text(text, max_chars=max_chars, tokenizer=models.tokenizer)
    if not chunks:
        raise BadTextError("Text is empty or only whitespace. Type the words to speak.")
    if seed is None:
        _, seed = make_generator(None, "cpu")
    preset = models.voice(voice)
    result = LongTake(chunks=chunks, gap_s=gap_s, seed=seed)
    previous: Take | None = None
    for i, chunk in enumerate(chunks):
        chunk_seed = derive_seed(seed, "chunk", i)
        use = _voice_for(i, continuity, reset_every, preset, previous)
        cb = None
        if progress is not None:
            def cb(stage: str, done: int, total: int, _k: int = i + 1) -> None:
                progress(_k, len(chunks), stage, done, total)
        try:
            take = generate(models, chunk, use, seed=chunk_seed, progress=cb, **generate_kwargs)
        except Exception as exc:
            if result.takes:
                result.join()
            raise LongFormError(f"Chunk {i + 1} of {len(chunks)} ({chunk[:40]!r}...) failed: {exc}. "
                                f"Chunks 1..{i} are kept in .partial.", chunk=i + 1, partial=result) from exc
        result.takes.append(take)
        result.seeds.append(chunk_seed)
        result.voices_used.append(None if use is None else use.label)
        previous = take
    result.join()
    return result
