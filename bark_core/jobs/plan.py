"""From valid rows to work: each row's seed, settings, voice and content-addressed output name.

A row's output name hashes everything that determines its bytes (text, voice content, seed, every
setting, the weights' fingerprints, precision, device class, CPU threads, format and label fields),
so a re-run finds finished rows by name, an edited row gets a new file, and nothing depends on
worker count, row order or batch composition.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .. import constants as C
from ..rights import RIGHTS_KEY
from ..sampling import derive_seed
from ..stages import BarkModels, normalize_text
from ..voices import Voice
from .manifest import (
    DEFAULT_SETTINGS,
    OUTPUT_FORMATS,
    Manifest,
    ManifestError,
    Row,
    check_voices,
    finish,
    voice_path,
)

KEY_VERSION = 1
ESTIMATED_CHARS_PER_S = 14.0  # speech rate for the dry-run estimate (docs/quality.md measures ~15.8)
MAX_GENERATION_S = C.MAX_SEMANTIC_STEPS / C.SEMANTIC_RATE_HZ  # one generation holds ~15.4 s


@dataclass(frozen=True)
class ModelSpec:
    """How a worker builds its :class:`BarkModels`: plain values, so it travels to a Ray actor as a few
    bytes and every actor reads the weights itself (from a shared folder or its node's hub cache).

    ``threads`` fixes torch's CPU threads per worker: float sums depend on how work is split across
    threads, so only workers with the same count give the same bytes. ``stage_cache`` is a folder for
    a disk :class:`~bark_core.StageCache`, or None for none.
    """

    models: str = "suno"
    size: str = "large"
    device: str = "auto"
    dtype: str = "auto"
    decoder: str = "auto"
    offload: bool = False
    cache_dir: str | None = None
    local_files_only: bool | None = None
    threads: int = 1
    stage_cache: str | None = None

    def with_device(self, device: str) -> ModelSpec:
        return ModelSpec(**{**asdict(self), "device": device})

    def build(self) -> BarkModels:
        from ..cache import StageCache

        cache = StageCache(self.stage_cache) if self.stage_cache else None
        return BarkModels(self.models, size=self.size, device=self.device, dtype=self.dtype, offload=self.offload,
                          decoder=self.decoder, cache_dir=self.cache_dir, local_files_only=self.local_files_only,
                          cache=cache)


@dataclass(frozen=True)
class OutputOptions:
    """What every row's file looks like: format (unless the row's ``out`` names one) and label fields."""

    format: str = "wav"
    sample_rate: int | None = None
    normalize: str | None = None
    include_text: bool = False

    def __post_init__(self) -> None:
        if self.format not in OUTPUT_FORMATS:
            raise ManifestError(f"Unknown output format {self.format!r}; use one of {', '.join(OUTPUT_FORMATS)}.")


@dataclass
class Task:
    """One row, resolved: what a worker needs to render it (small and JSON-able, voices by key)."""

    id: str
    key: str
    text: str
    voice: str | None  # key into the job's voice table
    voice_name: str | None
    seed: int
    settings: dict[str, Any]
    format: str
    relpath: str  # where the file goes, relative to the job folder (posix)
    speaker: str | None = None
    line: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(**d)

    @property
    def estimated_s(self) -> float:
        cap = self.settings.get("max_gen_duration_s") or MAX_GENERATION_S
        return min(cap, MAX_GENERATION_S, max(1.0, len(self.text) / ESTIMATED_CHARS_PER_S))


@dataclass
class Plan:
    """Every row's task, the voices they use (loaded once), and the rows set aside as invalid."""

    tasks: list[Task]
    voices: dict[str, Voice | None] = field(default_factory=dict)
    manifest: Manifest | None = None
    spec: ModelSpec = field(default_factory=ModelSpec)
    output: OutputOptions = field(default_factory=OutputOptions)

    @property
    def estimated_audio_s(self) -> float:
        return sum(t.estimated_s for t in self.tasks)

    def voice_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.tasks:
            name = t.voice_name or "(none)"
            counts[name] = counts.get(name, 0) + 1
        return counts


def row_seed(job_seed: int, row_id: str) -> int:
    """A row's default seed: a hash of the job seed and the row id, never of its position."""
    return derive_seed(int(job_seed), "row", str(row_id))


def safe_stem(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "row"
    return stem[:80]


def model_identity(models: BarkModels, threads: int) -> dict[str, Any]:
    """What about the models changes the output: weights, tokenizer, decode loop, precision, device."""
    stages = ("text", "coarse", "fine")
    ident = {
        "weights": {s: models.fingerprint(s) for s in (*stages, "codec")},
        "tokenizer": models.tokenizer.checksum,
        "decoder": {s: models.decoder_for(s) for s in stages},
        "dtype": {s: models.precision_for(s).name for s in stages},  # int8 and autocast apart from bf16/fp32
        "device": {s: models.device_for(s).split(":")[0] for s in (*stages, "codec")},
    }
    if "cpu" in ident["device"].values():
        ident["cpu_threads"] = int(threads)
    return ident


def render_key(row: Row, seed: int, settings: dict[str, Any], voice: Voice | None, fmt: str,
               identity: dict[str, Any], output: OutputOptions) -> str:
    from ..label.metadata import generator_version

    blob = {"v": KEY_VERSION, "id": row.id, "text": normalize_text(row.text), "voice": None if voice is None
            else voice.id, "seed": seed, "settings": settings, "speaker": row.speaker, "format": fmt,
            "output": asdict(output), "models": identity, "generator": generator_version()}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def output_relpath(row: Row, key: str, fmt: str) -> str:
    """``[out folder/]stem.<key16>.<ext>``: human-readable, unique per content, inside the job folder."""
    if row.out:
        p = PurePosixPath(row.out.replace("\\", "/"))
        stem, parent = (p.stem if p.suffix else p.name), p.parent
    else:
        stem, parent = row.id, PurePosixPath(".")
    name = f"{safe_stem(stem)}.{key[:16]}.{fmt}"
    return name if str(parent) in ("", ".") else f"{parent.as_posix()}/{name}"


def plan_job(manifest: Manifest, models: BarkModels, *, spec: ModelSpec, job_seed: int = 0,
             defaults: dict[str, Any] | None = None, output: OutputOptions | None = None,
             skip_invalid: bool = False) -> Plan:
    """Resolve voices (each once), seeds, settings and output names; rows with unknown voices are
    refused (or set aside with ``skip_invalid``) before any model loads."""
    output = output or OutputOptions()
    settings0 = {**DEFAULT_SETTINGS, **(defaults or {})}
    resolved: dict[str, Voice | None] = {}

    def resolve(spec_text: str) -> Voice | None:
        if spec_text not in resolved:
            voice = models.voice(voice_path(spec_text, manifest.base_dir))
            rights = manifest.rights.get(spec_text)
            if rights is not None and voice is not None:  # a script's voice map keeps a clone's record beside it
                voice = copy.copy(voice)  # not on the models' shared voice: another job may not name that record
                voice.source = {**voice.source, RIGHTS_KEY: rights.to_dict()}
            resolved[spec_text] = voice
        return resolved[spec_text]

    finish(manifest, check_voices(manifest.rows, resolve), skip_invalid)
    identity = model_identity(models, spec.threads)
    voices: dict[str, Voice | None] = {}
    tasks = []
    for row in manifest.rows:
        voice = None if row.voice is None else resolved[row.voice]
        vkey = None if voice is None else voice.id
        if vkey is not None:
            voices[vkey] = voice
        seed = row.seed if row.seed is not None else row_seed(job_seed, row.id)
        settings = {**settings0, **row.settings}
        suffix = PurePosixPath(row.out).suffix.lower().lstrip(".") if row.out else ""
        fmt = suffix or output.format
        key = render_key(row, seed, settings, voice, fmt, identity, output)
        tasks.append(Task(id=row.id, key=key, text=row.text, voice=vkey, voice_name=row.voice, seed=seed,
                          settings=settings, format=fmt, relpath=output_relpath(row, key, fmt), speaker=row.speaker,
                          line=row.line))
    return Plan(tasks=tasks, voices=voices, manifest=manifest, spec=spec, output=output)
