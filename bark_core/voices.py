"""Voices (Bark's "history prompts"): presets from the hub, ``.npz`` files, generated takes.

A voice is three token arrays (semantic, coarse, fine) that condition every stage. They are
validated once, here, with messages that say what is wrong, instead of failing as an assert
deep inside a stage.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import constants as C
from . import limits
from .artifacts import CoarseCodes, FineCodes, SemanticTokens, check_token_array, expect_artifact
from .edit import slice_artifact
from .errors import CheckpointError, VoiceError
from .fileio import atomic_write, npz_path, read_npy, read_npz
from .hub import hub_file

VOICE_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")
_META_KEY = "bark_core_voice"


def _check(name: str, source: str, value: Any, ndim: int, rows: int | None, high: int) -> np.ndarray:
    return check_token_array(f"voice {source!r}: {name}", value, ndim=ndim, rows=rows, high=high,
                             allow_empty=False, error=VoiceError)


@dataclass(eq=False)
class Voice:
    """A validated history prompt plus where it came from."""

    semantic: np.ndarray
    coarse: np.ndarray
    fine: np.ndarray
    name: str = "custom"
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.partial:  # a voice from reference audio: EnCodec gives codes, no semantic tokens
            self.semantic = np.zeros(0, dtype=np.int64)
        else:
            self.semantic = _check("semantic_prompt", self.name, self.semantic, 1, None, C.SEMANTIC_VOCAB_SIZE)
        self.coarse = _check("coarse_prompt", self.name, self.coarse, 2, C.N_COARSE_CODEBOOKS, C.CODEBOOK_SIZE)
        self.fine = _check("fine_prompt", self.name, self.fine, 2, C.N_FINE_CODEBOOKS, C.CODEBOOK_SIZE)
        longest = max(len(self.semantic), self.coarse.shape[1], self.fine.shape[1])
        if longest > limits.MAX_VOICE_FRAMES:
            raise VoiceError(f"voice {self.name!r} has a prompt of {longest:,} frames; at most "
                             f"{limits.MAX_VOICE_FRAMES:,} (10 min) are accepted, and the stages use only the last "
                             "few seconds. Build it from a time range (voice_from_artifacts(..., start_s=, end_s=)).")
        if self.partial:
            return
        want = round(C.SEMANTIC_TO_COARSE_RATIO / C.N_COARSE_CODEBOOKS, 1)
        got = round(self.coarse.shape[1] / len(self.semantic), 1)
        if got != want:  # the coarse stage's history alignment assumes this ratio
            raise VoiceError(
                f"voice {self.name!r}: coarse_prompt has {self.coarse.shape[1]} frames for {len(self.semantic)} "
                f"semantic tokens (ratio {got}); Bark voices need a ratio of {want} (75 Hz / 49.9 Hz). "
                "Build voices from one generation, or slice semantic and coarse over the same time range."
            )

    @property
    def partial(self) -> bool:
        """True for voices from reference audio whose semantic prompt is left empty (partial cloning)."""
        return self.source.get("kind") == "audio" and np.asarray(self.semantic).size == 0

    @property
    def id(self) -> str:
        h = hashlib.sha256()
        for arr in (self.semantic, self.coarse, self.fine):
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    @property
    def label(self) -> str:
        """Short form for provenance: the preset name, or name plus content hash."""
        return self.name if self.source.get("kind") == "preset" else f"{self.name}#{self.id}"

    @property
    def duration_s(self) -> float:
        return len(self.semantic) / C.SEMANTIC_RATE_HZ

    def to_dict(self) -> dict[str, np.ndarray]:
        """The mapping Suno's ``generate_audio(history_prompt=...)`` accepts."""
        return {"semantic_prompt": self.semantic, "coarse_prompt": self.coarse, "fine_prompt": self.fine}

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a ``.npz`` Suno's loader reads; our name and origin ride along in one extra key.

        Like every export, it never replaces an existing file unless ``overwrite=True``. The origin
        (kind, rights record) is sealed with a hash over itself and the prompts, so an edit of either
        (a cloned voice relabelled as a preset, its rights record removed) is detected on load.
        """
        path = npz_path(path)
        try:
            source_json = json.dumps(self.source, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise VoiceError(f"voice {self.name!r}: its source record is not plain JSON ({exc}); keep only text, "
                             "numbers, lists and dicts in Voice.source.") from None
        meta = json.dumps({"name": self.name, "source": json.loads(source_json),
                           "seal": _seal(source_json, self.to_dict())})
        buf = io.BytesIO()
        np.savez(buf, **self.to_dict(), **{_META_KEY: np.array(meta)})
        with atomic_write(path, overwrite=overwrite) as fh:
            fh.write(buf.getvalue())
        return path


def _seal(source_json: str, prompts: dict[str, Any]) -> str:
    """Hash binding a voice's origin record to its prompts (see :meth:`Voice.save`)."""
    h = hashlib.sha256(b"bark_core voice seal v1\0" + source_json.encode("utf-8"))
    for key in VOICE_KEYS:
        arr = np.ascontiguousarray(np.asarray(prompts[key]), dtype=np.int64)
        h.update(f"{key}:{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _origin_from_meta(raw: Any, name: str, source: dict[str, Any], prompts: dict[str, Any]) -> dict[str, Any]:
    """The voice's source record: the file's own sealed record, or only what the file itself shows."""
    arr = np.asarray(raw)
    if arr.ndim != 0 or arr.dtype.kind != "U":
        raise VoiceError(f"voice {name!r}: its {_META_KEY} entry is not text; the file is damaged. Re-save the voice.")
    meta = limits.loads_json(str(arr), f"origin record of voice {name!r}", error=VoiceError)
    claimed = meta.get("source") if isinstance(meta, dict) else None
    if not isinstance(claimed, dict):
        raise VoiceError(f"voice {name!r}: its origin record is damaged (no source mapping). Re-save the voice, or "
                         f"delete the {_META_KEY} entry to use it as a plain voice file.")
    seal = meta.get("seal")
    kind = claimed.get("kind")
    if seal is None:  # written by hand or by an old version: nothing proves the claimed origin
        if kind == "audio":
            raise VoiceError(f"voice {name!r} claims to be cloned from a recording, but its origin record is not "
                             "sealed, so its rights record cannot be trusted. Rebuild it with voice_from_audio(..., "
                             "rights=...) and save it again.")
        return {**source, "claimed_kind": str(kind)} if kind not in (None, "file") else source
    try:
        prompts_ok = all(np.asarray(prompts[k]).dtype.kind in "iu" for k in VOICE_KEYS)
        valid = prompts_ok and isinstance(seal, str) and seal == _seal(json.dumps(claimed, sort_keys=True), prompts)
    except (TypeError, ValueError, OverflowError):
        valid = False
    if not valid:
        raise VoiceError(f"voice {name!r} was changed after it was saved: its origin record (kind {kind!r:.40}, "
                         "rights) no longer matches its content. Use the original file, or rebuild the voice and "
                         "save it again.")
    return {**source, **claimed}  # where the voice originally came from outranks the file it sits in


def _from_mapping(data: Any, name: str, source: dict[str, Any]) -> Voice:
    keys = set(getattr(data, "files", None) or data.keys())
    missing = [k for k in VOICE_KEYS if k not in keys]
    if missing:
        raise VoiceError(
            f"voice {name!r} lacks {', '.join(missing)}. A Bark voice .npz holds semantic_prompt, coarse_prompt "
            "and fine_prompt; save one with Voice.save() or bark_core.voice_from_take()."
        )
    prompts = {k: data[k] for k in VOICE_KEYS}
    if _META_KEY in keys:
        source = _origin_from_meta(data[_META_KEY], name, source, prompts)
    return Voice(semantic=prompts["semantic_prompt"], coarse=prompts["coarse_prompt"], fine=prompts["fine_prompt"],
                 name=name, source=source)


_VOICE_BYTES = {_META_KEY: 4 * limits.MAX_HEADER_BYTES, "semantic_prompt": 8 * limits.MAX_VOICE_FRAMES,
                "coarse_prompt": 8 * C.N_COARSE_CODEBOOKS * limits.MAX_VOICE_FRAMES,
                "fine_prompt": 8 * C.N_FINE_CODEBOOKS * limits.MAX_VOICE_FRAMES}


def load_voice_file(path: str | os.PathLike, name: str | None = None) -> Voice:
    """A voice from a ``.npz`` (Suno's layout, or :meth:`Voice.save`'s), sizes checked before reading."""
    path = Path(path)
    if not path.is_file():
        raise VoiceError(f"No voice file at {path}. Check the path, or use a preset name such as v2/en_speaker_6.")
    arrays = read_npz(path, max_bytes=_VOICE_BYTES, what="a voice .npz", error=VoiceError)
    return _from_mapping(arrays, name or path.stem, {"kind": "file", "path": str(path)})


def preset_names(language: str | None = None, version: str | None = None) -> list[str]:
    """Built-in preset names, optionally for one language code and one version ("v1"/"v2")."""
    names = list(C.PRESET_NAMES)
    if language:
        names = [n for n in names if n.split("/")[-1].startswith(f"{language}_")]
    if version == "v2":
        names = [n for n in names if n.startswith("v2/")]
    elif version == "v1":
        names = [n for n in names if not n.startswith("v2/") and n != "announcer"]
    return names


def presets_by_language() -> dict[str, list[str]]:
    """Presets grouped by language name, for pickers in the front ends."""
    groups: dict[str, list[str]] = {"Other": ["announcer"]}
    for code, lang in C.SUPPORTED_LANGUAGES.items():
        groups[lang] = preset_names(code, "v2") + preset_names(code, "v1")
    return groups


def _fetch_preset(name: str, cache_dir: str | os.PathLike | None, local_files_only: bool | None) -> Voice:
    """Download a preset from the hub repo, where each prompt is one ``.npy`` listed in a JSON index."""
    what, local = f"Voice preset {name!r}", f"voices/{name}.npz"  # a model folder serves presets as voices/<name>.npz
    # a HubFileError says what was needed, where it is cached and how to do without the hub
    index_path = hub_file(C.HUB_REPO, "speaker_embeddings_path.json", cache_dir=cache_dir,
                          local_files_only=local_files_only, what=what, local=local)
    try:
        blob = index_path.read_bytes()
    except OSError as exc:
        raise VoiceError(f"The hub's voice index {index_path} cannot be read ({exc}); "
                         "delete it to re-download.") from exc
    index = limits.loads_json(blob, f"hub voice index {index_path}", error=VoiceError)
    entry = index.get(name) if isinstance(index, dict) else None
    if not isinstance(entry, dict):
        raise VoiceError(f"The hub's voice index has no entry for {name!r}.")
    repo = index.get("repo_or_path") or C.HUB_REPO
    if not isinstance(repo, str) or repo.count("/") != 1 or os.path.isabs(repo):
        repo = C.HUB_REPO
    arrays = {}
    for key in VOICE_KEYS:
        if key not in entry:
            raise VoiceError(f"The hub's voice index entry for {name!r} lacks {key}.")
        rel = entry[key]
        parts = rel.replace("\\", "/").split("/") if isinstance(rel, str) else []
        if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or ".." in parts:
            raise VoiceError(f"The hub's voice index names {rel!r:.80} for {name!r}: not a file inside the repo. "
                             "Delete the index from the hub cache to re-download it.")
        try:
            arrays[key] = read_npy(hub_file(repo, entry[key], cache_dir=cache_dir, local_files_only=local_files_only,
                                            what=what, local=local),
                                   max_bytes=_VOICE_BYTES[key], what=f"prompt of voice {name!r}", error=VoiceError)
        except CheckpointError:
            raise
        except Exception as exc:
            raise VoiceError(f"The hub file {entry[key]} of voice {name!r} is damaged ({exc}).") from exc
    return _from_mapping(arrays, name, {"kind": "preset", "preset": name, "repo": repo})


def load_voice(spec: Any, *, presets_dir: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None) -> Voice | None:
    """Turn anything a user may call a voice into a validated :class:`Voice`.

    Accepts None (no voice), a Voice, a mapping with the three prompts, a ``.npz`` path, or a preset
    name ("v2/en_speaker_6", "announcer"). ``presets_dir`` is a local folder of preset ``.npz`` files
    in Suno's layout (``v2/en_speaker_6.npz``), tried before the hub.
    """
    if spec is None or isinstance(spec, Voice):
        return spec
    if isinstance(spec, dict) or hasattr(spec, "files"):
        return _from_mapping(spec, "custom", {"kind": "memory"})
    if not isinstance(spec, (str, os.PathLike)):
        raise VoiceError(f"A voice must be a preset name, a .npz path or a Voice, got {type(spec).__name__}.")
    text = os.fspath(spec).strip()
    if text.endswith(".npz") or os.path.isfile(text):
        return load_voice_file(text)
    name = text.replace("\\", "/")
    if name not in C.PRESET_NAMES:
        close = difflib.get_close_matches(name, C.PRESET_NAMES, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else " Presets look like v2/en_speaker_6 or announcer."
        raise VoiceError(f"Unknown voice {text!r}.{hint} A path to a .npz voice file works too.")
    if presets_dir is not None:
        local = Path(presets_dir) / f"{name}.npz"
        if local.is_file():
            voice = load_voice_file(local, name)
            voice.source = {"kind": "preset", "preset": name, "path": str(local)}
            return voice
    return _fetch_preset(name, cache_dir, local_files_only)


def voice_from_artifacts(semantic: Any, coarse: Any, fine: Any, *, name: str = "take",
                         start_s: float | None = None, end_s: float | None = None) -> Voice:
    """A voice from one generation (Suno's ``output_full``), optionally from a time range of it.

    Slicing cuts all three arrays over the same seconds at their own rates, which keeps the
    coarse/semantic ratio Bark expects.
    """
    expect_artifact(semantic, SemanticTokens, "voice")
    expect_artifact(coarse, CoarseCodes, "voice")
    expect_artifact(fine, FineCodes, "voice")
    source: dict[str, Any] = {"kind": "generated", "semantic": semantic.id, "coarse": coarse.id, "fine": fine.id,
                              "lineage": list(fine.lineage_ids()), "seed": fine.provenance.seed}
    if start_s is not None or end_s is not None:
        lo = 0.0 if start_s is None else start_s
        semantic, coarse, fine = (slice_artifact(a, lo, end_s) for a in (semantic, coarse, fine))
        source["range_s"] = [lo, end_s]
    return Voice(semantic=semantic.tokens, coarse=coarse.codes, fine=fine.codes, name=name, source=source)
