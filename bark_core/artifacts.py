"""Typed stage outputs: tokens or samples plus where they came from.

Each stage returns one of these instead of a bare array so that a result can be saved, reloaded
days later, handed to any stage that accepts its kind, and still say which model, settings, seed,
voice and parent produced it. Front ends (ComfyUI nodes, notebook widgets) pass exactly these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import constants as C
from . import limits
from .audio_io import wav_bytes
from .errors import ArtifactError
from .fileio import as_path, atomic_write, npz_path, read_npz

FORMAT_VERSION = 1
_META_KEY = "__bark_core_meta__"


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


@dataclass(frozen=True)
class Provenance:
    """Everything that determined an artifact, recorded so a take can be explained or redone."""

    stage: str
    model: str | None = None
    model_checksum: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    voice: str | None = None
    parent: str | None = None
    lineage: tuple[str, ...] = ()
    created: str = field(default_factory=_utc_now)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lineage"] = list(self.lineage)
        return _jsonable(data)

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        """Rebuild provenance read from a file, checking each field's type (unknown fields are ignored)."""
        if not isinstance(data, dict):
            raise ArtifactError(f"provenance must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for name in ("stage", "created"):
            if name in kwargs and not isinstance(kwargs[name], str):
                raise ArtifactError(f"provenance.{name} must be text, got {type(kwargs[name]).__name__}.")
        for name in ("model", "model_checksum", "voice", "parent"):
            if kwargs.get(name) is not None and not isinstance(kwargs[name], str):
                raise ArtifactError(f"provenance.{name} must be text or null, got {type(kwargs[name]).__name__}.")
        for name in ("settings", "extra"):
            if not isinstance(kwargs.get(name, {}), dict):
                raise ArtifactError(f"provenance.{name} must be a JSON object, got {type(kwargs[name]).__name__}.")
        seed = kwargs.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
            raise ArtifactError(f"provenance.seed must be a whole number from 0 to 2**64 - 1 or null, "
                                f"got {seed!r:.40}.")
        lineage = kwargs.get("lineage") or []
        if not isinstance(lineage, list) or not all(isinstance(x, str) for x in lineage):
            raise ArtifactError("provenance.lineage must be a list of artifact ids (text).")
        kwargs["lineage"] = tuple(lineage)
        kwargs.setdefault("stage", "unknown")
        return cls(**kwargs)


def check_token_array(name: str, value: Any, *, ndim: int, high: int, low: int = 0, rows: int | None = None,
                      allow_empty: bool = True, error: type[Exception] = ArtifactError) -> np.ndarray:
    """Check token/code arrays once, for artifacts and voices alike, so bad data fails here with a
    message naming it, not deep inside a model. Returns int64 (uint16 presets become plain ints)."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise error(f"{name} must be an integer array, got dtype {arr.dtype}.")
    if arr.ndim != ndim or (rows is not None and arr.shape[0] != rows):
        want = "(frames,)" if ndim == 1 else f"({rows if rows is not None else 'codebooks'}, frames)"
        raise error(f"{name} must have shape {want}, got {arr.shape}.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise error(f"{name} contains NaN or infinite values; the data is damaged.")
        if not np.all(arr == np.round(arr)):
            raise error(f"{name} holds fractional values; token ids must be whole numbers.")
    if not allow_empty and arr.shape[-1] == 0:
        raise error(f"{name} is empty; it needs at least one frame.")
    if arr.size and (arr.min() < low or arr.max() >= high):
        raise error(f"{name} holds ids {int(arr.min())}..{int(arr.max())}; valid ids are {low}..{high - 1}.")
    return arr.astype(np.int64)


@dataclass(eq=False)
class Artifact:
    """Base of all stage outputs. ``parent`` is kept in memory only; files record its id."""

    KIND: ClassVar[str] = "artifact"
    provenance: Provenance
    parent: Artifact | None = field(default=None, repr=False, compare=False)
    cache_hit: bool = field(default=False, compare=False)

    # subclasses name their array fields here, in save order
    _ARRAYS: ClassVar[tuple[str, ...]] = ()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self._ARRAYS}

    def _extra_meta(self) -> dict[str, Any]:
        return {}

    @property
    def id(self) -> str:
        """Content hash: equal data and provenance (creation time aside) give an equal id."""
        h = hashlib.sha256(self.KIND.encode())
        for name, arr in self._arrays().items():
            a = np.ascontiguousarray(arr)
            h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
            h.update(a.tobytes())
        prov = self.provenance.to_dict()
        prov.pop("created", None)
        h.update(json.dumps(prov, sort_keys=True).encode())
        h.update(json.dumps(_jsonable(self._extra_meta()), sort_keys=True).encode())
        return h.hexdigest()[:16]

    @property
    def duration_s(self) -> float:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """A small summary for inspection panels and logs."""
        return {
            "kind": self.KIND,
            "id": self.id,
            "shape": {k: list(v.shape) for k, v in self._arrays().items()},
            "duration_s": round(self.duration_s, 3),
            "cache_hit": self.cache_hit,
            "provenance": self.provenance.to_dict(),
        }

    def save(self, path: str | os.PathLike, *, overwrite: bool = True, meta: dict[str, Any] | None = None) -> Path:
        """Write a ``.npz`` that numpy reads without pickle; ``meta`` adds entries to its JSON header."""
        path = npz_path(path)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.KIND,
            "id": self.id,
            "provenance": self.provenance.to_dict(),
            "extra": _jsonable(self._extra_meta()),
            **(meta or {}),
        }
        buf = io.BytesIO()
        np.savez(buf, **self._arrays(), **{_META_KEY: np.array(json.dumps(meta))})
        with atomic_write(path, overwrite=overwrite) as fh:
            fh.write(buf.getvalue())
        return path

    def lineage_ids(self) -> tuple[str, ...]:
        """Ids from the first artifact of the chain down to this one."""
        return (*self.provenance.lineage, self.id)


@dataclass(eq=False)
class SemanticTokens(Artifact):
    """Output of text->semantic: ids in 0..9999 at 49.9 Hz."""

    KIND: ClassVar[str] = "semantic"
    _ARRAYS: ClassVar[tuple[str, ...]] = ("tokens",)
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        self.tokens = check_token_array("semantic tokens", self.tokens, ndim=1, high=C.SEMANTIC_VOCAB_SIZE)

    @property
    def n_frames(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_frames / C.SEMANTIC_RATE_HZ


@dataclass(eq=False)
class _Codes(Artifact):
    N_CODEBOOKS: ClassVar[int] = 0
    _ARRAYS: ClassVar[tuple[str, ...]] = ("codes",)
    codes: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))

    def __post_init__(self) -> None:
        codes = check_token_array(f"{self.KIND} codes", self.codes, ndim=2, high=C.CODEBOOK_SIZE)
        if codes.shape[0] != self.N_CODEBOOKS:
            raise ArtifactError(
                f"{self.KIND} codes must have {self.N_CODEBOOKS} codebooks (shape ({self.N_CODEBOOKS}, frames)), "
                f"got shape {codes.shape}."
            )
        self.codes = codes

    @property
    def n_frames(self) -> int:
        return int(self.codes.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_frames / C.COARSE_RATE_HZ


@dataclass(eq=False)
class CoarseCodes(_Codes):
    """Output of semantic->coarse: the first 2 EnCodec codebooks at 75 Hz."""

    KIND: ClassVar[str] = "coarse"
    N_CODEBOOKS: ClassVar[int] = C.N_COARSE_CODEBOOKS


@dataclass(eq=False)
class FineCodes(_Codes):
    """Output of coarse->fine: all 8 EnCodec codebooks at 75 Hz, ready to decode."""

    KIND: ClassVar[str] = "fine"
    N_CODEBOOKS: ClassVar[int] = C.N_FINE_CODEBOOKS


@dataclass(eq=False)
class Audio(Artifact):
    """A mono waveform in [-1, 1]; decode output and label input."""

    KIND: ClassVar[str] = "audio"
    _ARRAYS: ClassVar[tuple[str, ...]] = ("samples",)
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    sample_rate: int = C.SAMPLE_RATE

    def __post_init__(self) -> None:
        arr = np.asarray(self.samples)
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise ArtifactError(f"audio samples must be mono, shape (samples,), got {arr.shape}.")
        if not np.issubdtype(arr.dtype, np.number):
            raise ArtifactError(f"audio samples must be numeric, got dtype {arr.dtype}.")
        if np.iscomplexobj(arr):
            raise ArtifactError("audio samples must be real numbers, got complex values.")
        arr = arr.astype(np.float32, copy=False)
        if not np.all(np.isfinite(arr)):
            raise ArtifactError("audio samples contain NaN or infinite values (or values beyond float32).")
        self.sample_rate = limits.sample_rate(self.sample_rate, "audio sample_rate", error=ArtifactError)
        self.samples = arr

    def _extra_meta(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate}

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    def to_wav_bytes(self) -> bytes:
        """Unlabelled 16-bit PCM WAV, for players and previews; files for people go through the label stage
        (:func:`bark_core.label.export_audio`)."""
        return wav_bytes(self.samples, self.sample_rate)


ARTIFACT_TYPES: dict[str, type[Artifact]] = {
    cls.KIND: cls for cls in (SemanticTokens, CoarseCodes, FineCodes, Audio)
}


# What a file may hold, checked from each member's header before its data is read.
_MEMBER_BYTES = {
    _META_KEY: 4 * limits.MAX_HEADER_BYTES,  # numpy stores text as 4 bytes per character
    "tokens": 8 * limits.MAX_ARTIFACT_FRAMES,
    "codes": 8 * C.N_FINE_CODEBOOKS * limits.MAX_ARTIFACT_FRAMES,
    "samples": 8 * limits.MAX_ARTIFACT_AUDIO_SAMPLES,
}


def _read_file(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    path = as_path(path, ArtifactError)
    if not path.is_file():
        raise ArtifactError(f"No artifact file at {path}. Check the path.")
    arrays = read_npz(path, max_bytes=_MEMBER_BYTES, what="a bark_core artifact", error=ArtifactError)
    raw = arrays.pop(_META_KEY, None)
    if raw is None:
        raise ArtifactError(f"{path} is not a bark_core artifact (no metadata). Voice files load with load_voice().")
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise ArtifactError(f"{path}: the artifact header is not text; the file is damaged.")
    meta = limits.loads_json(str(raw), f"header of {path}", error=ArtifactError)
    if not isinstance(meta, dict):
        raise ArtifactError(f"{path}: the artifact header must be a JSON object, got {type(meta).__name__}.")
    return meta, arrays


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of an artifact file (kind, id, provenance, and any extra entries)."""
    return _read_file(path)[0]


def load_artifact_and_meta(path: str | os.PathLike) -> tuple[Artifact, dict[str, Any]]:
    """:func:`load_artifact` plus the file's header (for extra entries such as a cache key)."""
    path = as_path(path, ArtifactError)
    meta, arrays = _read_file(path)
    version = meta.get("format_version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(f"{path}: format_version must be a positive whole number, got {version!r:.40}.")
    if version > FORMAT_VERSION:
        raise ArtifactError(f"{path} was written by a newer bark_core (format {version}); "
                            "upgrade bark_core to read it.")
    kind = meta.get("kind")
    cls = ARTIFACT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ArtifactError(f"{path} holds an unknown artifact kind {kind!r:.60}; known kinds: "
                            f"{', '.join(ARTIFACT_TYPES)}.")
    missing = [name for name in cls._ARRAYS if name not in arrays]
    if missing:
        raise ArtifactError(f"{path} lacks the array(s) {missing} a {cls.KIND} artifact needs.")
    extra = meta.get("extra") or {}
    if not isinstance(extra, dict):
        raise ArtifactError(f"{path}: the header's extra must be a JSON object, got {type(extra).__name__}.")
    allowed = {f.name for f in dataclasses.fields(cls) if f.init} - set(cls._ARRAYS) - {"provenance", "parent",
                                                                                            "cache_hit"}
    unknown = sorted(set(extra) - allowed)
    if unknown:  # the header describes the data; it may never replace it
        raise ArtifactError(f"{path}: the header's extra holds unknown field(s) {unknown[:5]} for a {cls.KIND} "
                            f"artifact (allowed: {sorted(allowed) or 'none'}). The file was altered; re-save it.")
    try:
        prov = Provenance.from_dict(meta.get("provenance") or {"stage": "unknown"})
        art = cls(provenance=prov, **{name: arrays[name] for name in cls._ARRAYS}, **extra)
    except ArtifactError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise ArtifactError(f"{path}: the header does not fit a {cls.KIND} artifact ({exc}).") from None
    recorded = meta.get("id")
    if recorded is not None and recorded != art.id:
        raise ArtifactError(f"{path}: its content does not match its recorded id {str(recorded)[:20]!r} (it is "
                            f"{art.id}); the tokens or header were changed after saving. Re-create the artifact.")
    return art, meta


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Read any artifact saved by :meth:`Artifact.save`; the file says which kind it is.

    Sizes are checked from the file's headers before any data is read, the header's fields are
    type-checked, and the content must match the id recorded at saving: a damaged or edited file
    raises :class:`ArtifactError` naming what is wrong.
    """
    return load_artifact_and_meta(path)[0]


def expect_artifact(value: Any, cls: type[Artifact], stage: str) -> Artifact:
    """Fail with a message naming both kinds when the wrong artifact reaches a stage."""
    if isinstance(value, cls):
        return value
    got = getattr(value, "KIND", type(value).__name__)
    raise ArtifactError(
        f"The {stage} stage takes {cls.KIND} artifacts, but got {got}. "
        f"Connect the output of the stage that produces {cls.KIND} here."
    )
