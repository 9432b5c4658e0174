"""Cut and join artifacts on the time axis, each at its own frame rate.

Semantic tokens run at 49.9 Hz, coarse and fine codes at 75 Hz and audio at its sample rate, so a
time range means a different number of frames per kind; these helpers do that arithmetic once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import constants as C
from . import limits
from .artifacts import Artifact, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens
from .errors import ArtifactError


def frame_rate(art: Artifact) -> float:
    """Frames per second of an artifact's time axis."""
    if isinstance(art, SemanticTokens):
        return C.SEMANTIC_RATE_HZ
    if isinstance(art, (CoarseCodes, FineCodes)):
        return float(C.COARSE_RATE_HZ)
    if isinstance(art, Audio):
        return float(art.sample_rate)
    raise ArtifactError(f"{type(art).__name__} has no time axis to cut or join.")


def to_frame(seconds: float, rate: float) -> int:
    """Frame index of a time, rounding halves up (Python's round() would make 1 s of codes 74 frames)."""
    return int(math.floor(seconds * rate + 0.5))


def _carried_extra(parts: Sequence[Artifact]) -> dict[str, Any]:
    """What an edit must keep from its inputs: the untrained flag and the voice origin (rights) for the label."""
    extra: dict[str, Any] = {"untrained": any(p.provenance.extra.get("untrained", False) for p in parts)}
    origin = next((p.provenance.extra["voice_origin"] for p in parts if "voice_origin" in p.provenance.extra), None)
    if origin is not None:
        extra["voice_origin"] = origin
    return extra


def _data(art: Artifact) -> np.ndarray:
    return getattr(art, art._ARRAYS[0])


def _rebuild(template: Artifact, data: np.ndarray, prov: Provenance, parent: Artifact) -> Artifact:
    kwargs: dict[str, Any] = {template._ARRAYS[0]: data, "provenance": prov, "parent": parent}
    if isinstance(template, Audio):
        kwargs["sample_rate"] = template.sample_rate
    return type(template)(**kwargs)


def slice_artifact(art: Artifact, start_s: float = 0.0, end_s: float | None = None) -> Artifact:
    """The part of ``art`` between two times in seconds (``end_s`` None: to the end)."""
    rate = frame_rate(art)
    start_s = limits.number("start_s", start_s, lo=0.0, hi=1e7, error=ArtifactError)
    end_s = limits.number("end_s", end_s, lo=0.0, hi=1e7, allow_none=True, error=ArtifactError)
    data = _data(art)
    n = data.shape[-1]
    start = to_frame(max(0.0, start_s), rate)
    end = n if end_s is None else to_frame(end_s, rate)
    end = min(end, n)
    if end_s is not None and end_s <= start_s or start >= end:
        raise ArtifactError(f"The time range {start_s}..{end_s} s is empty for a {art.KIND} artifact of "
                            f"{art.duration_s:.2f} s. Pick a start before the end, inside the take.")
    prov = Provenance(stage="edit", settings={"op": "slice", "start_s": start_s, "end_s": end_s,
                                              "frames": [start, end]},
                      seed=art.provenance.seed, voice=art.provenance.voice, parent=art.id,
                      lineage=art.lineage_ids(), extra=_carried_extra([art]))
    return _rebuild(art, data[..., start:end], prov, art)


def concat(parts: Sequence[Artifact], gap_s: float = 0.0) -> Artifact:
    """Join artifacts of one kind end to end; audio may have silent gaps of ``gap_s`` seconds between parts.

    Token artifacts cannot hold silence (there is no silent token), so gaps are for audio only.
    """
    if isinstance(parts, (str, bytes)) or not isinstance(parts, Sequence) or not parts:
        raise ArtifactError("Nothing to join: pass a list of at least one artifact.")
    if not all(isinstance(p, Artifact) for p in parts):
        bad = next(type(p).__name__ for p in parts if not isinstance(p, Artifact))
        raise ArtifactError(f"concat joins artifacts, got a {bad} in the list.")
    gap_s = limits.number("gap_s", gap_s, lo=0.0, hi=60.0, error=ArtifactError,
                          hint="It is the silence between audio parts, in seconds.")
    first = parts[0]
    kinds = {p.KIND for p in parts}
    if len(kinds) != 1:
        raise ArtifactError(f"Only artifacts of one kind can be joined, got {sorted(kinds)}.")
    if gap_s and not isinstance(first, Audio):
        raise ArtifactError("Gaps are only possible between audio artifacts; decode the parts first, or use gap_s=0.")
    if isinstance(first, Audio) and len({p.sample_rate for p in parts}) != 1:
        raise ArtifactError("Audio parts have different sample rates; resample them to one rate first.")
    pieces: list[np.ndarray] = []
    gap = None
    if isinstance(first, Audio):
        gap = np.zeros(int(round(gap_s * first.sample_rate)), dtype=np.float32)
    total = sum(_data(p).shape[-1] for p in parts) + (len(parts) - 1) * (0 if gap is None else gap.size)
    most = limits.MAX_EXPORT_SAMPLES if isinstance(first, Audio) else limits.MAX_ARTIFACT_FRAMES
    if total > most:
        raise ArtifactError(f"The joined {first.KIND} would have {total:,} frames, over the limit of {most:,}; "
                            "join fewer or shorter parts.")
    for i, part in enumerate(parts):
        if i and gap is not None and gap.size:
            pieces.append(gap)
        pieces.append(_data(part))
    data = np.concatenate(pieces, axis=-1)
    prov = Provenance(stage="edit", settings={"op": "concat", "gap_s": gap_s, "parts": [p.id for p in parts]},
                      seed=first.provenance.seed, voice=first.provenance.voice, parent=first.id,
                      lineage=first.lineage_ids(),
                      extra=_carried_extra(parts))
    return _rebuild(first, data, prov, first)
