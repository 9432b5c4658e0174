"""The label stage: every waveform bark_core hands out says, in two independent ways, that it is synthetic.

1. An inaudible keyed watermark in the samples (:mod:`bark_core.label.watermark`), which survives
   re-encoding, resampling and cropping.
2. Machine-readable metadata in the file, for tools that never decode audio:

   ============  ==========================================================================
   WAV           ``LIST/INFO`` chunk (``ICMT`` = key=value summary, ``ISFT`` = generator) and a
                 ``bark`` chunk holding the full label as UTF-8 JSON (both before ``data``)
   MP3           ID3v2.3 tag: one ``TXXX`` frame per field (``AI_GENERATED``, ``BARK_LABEL`` ...)
                 and a ``COMM`` comment with the key=value summary
   FLAC, OGG     Vorbis comments with the same field names plus ``COMMENT``
   ============  ==========================================================================

   ``BARK_LABEL`` (and the ``bark`` chunk) holds the JSON object that :func:`read_label` returns.
   It carries ``AI_GENERATED``, the IPTC digital source type ``trainedAlgorithmicMedia``, the
   generator name and version, model checkpoint id, voice, seed, a SHA-256 of the prompt text
   (the text itself only on request), the UTC time of labelling and the watermark scheme.

Files are always written from samples, never by editing tags in place, so labelling a labelled
file again leaves exactly one tag set, and :func:`label` leaves audio alone that already carries the
mark of the same key (checked by detection, which costs ~50 ms for a 14 s clip).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts import Audio, Provenance, expect_artifact
from ..audio_io import AudioFileError, probe_tags, riff_chunk
from ..audio_io import wav_bytes as plain_wav_bytes
from ..errors import BarkError
from ..rights import RightsError
from .watermark import (
    DEFAULT_STRENGTH_DB,
    SCHEME,
    detect,
    embed_samples,
    key_kind,
)

logger = logging.getLogger("bark_core.label")

GENERATOR = "bark_core"
DISTRIBUTION = "bark-stages"
IPTC_DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
LABEL_SCHEMA = "bark_core.label/1"
WAV_CHUNK_ID = b"bark"
JSON_TAG = "BARK_LABEL"
_RESERVED = {"text", "model", "model_checksum", "voice", "seed"}


# Sections the label carries besides provenance: the human review, the automatic quality report's
# summary, and where the voice came from (with the speaker's rights record for cloned voices).
LABEL_SECTIONS = ("review", "qc", "voice_origin")


class LabelError(BarkError, ValueError):
    """Label metadata cannot be built or written as asked."""


def generator_version() -> str:
    """Installed version of the distribution, so a file says which code made it."""
    try:
        return importlib_metadata.version(DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        return "0.0.0"


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, name) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise LabelError(
        f"Label field {name!r} has a {type(value).__name__} value; metadata must be text, numbers, lists or dicts."
    )


def label(
    audio: Audio,
    key: str | bytes | None = None,
    *,
    strength_db: float = DEFAULT_STRENGTH_DB,
    include_text: bool = False,
    **meta: Any,
) -> Audio:
    """Watermark ``audio`` and attach label metadata; provenance stage ``"label"``.

    ``meta`` may name ``text`` (stored as a SHA-256 unless ``include_text``), ``model``,
    ``model_checksum``, ``voice``, ``seed`` (overriding what the provenance says) and any other
    JSON-able fields, kept under ``extra``. Audio that already carries this key's mark (by its
    provenance or by detection) is not marked a second time.
    """
    audio = expect_artifact(audio, Audio, "label")
    prov = audio.provenance
    # Detection, not provenance, decides: provenance can be copied onto audio that lost its mark.
    already = detect(audio, key).detected
    samples = audio.samples if already else embed_samples(audio.samples, audio.sample_rate, key, strength_db)

    text = meta.pop("text", None)
    if text is None:
        text = prov.settings.get("text", prov.extra.get("text"))
    info: dict[str, Any] = {
        # the take a reviewer judges: the audio handed in (export passes the one before resampling)
        "take_id": meta.pop("take_id", None) or audio.id,
        "lineage": list(audio.lineage_ids()),
        "model": meta.pop("model", prov.model),
        "model_checksum": meta.pop("model_checksum", prov.model_checksum),
        "voice": meta.pop("voice", prov.voice),
        "seed": meta.pop("seed", prov.seed),
    }
    if text is not None:
        if not isinstance(text, str):
            raise LabelError(f"text must be a string, got {type(text).__name__}.")
        info["text_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if include_text:
            info["text"] = text
    elif "text_sha256" in prov.settings.get("label", {}):
        info["text_sha256"] = prov.settings["label"]["text_sha256"]
    for field_name in LABEL_SECTIONS:
        if meta.get(field_name) is not None:
            info[field_name] = meta.pop(field_name)
        elif field_name == "voice_origin" and prov.extra.get("voice_origin") is not None:
            info[field_name] = prov.extra["voice_origin"]
    origin = info.get("voice_origin")
    if isinstance(origin, dict) and origin.get("kind") == "audio" and not origin.get("rights"):
        raise RightsError("This take uses a voice made from a recording, but its label would carry no rights "
                          "record, so it is not exported. Rebuild the voice with rights=RightsRecord(who=..., "
                          "right=..., when=...) (bark-core clone --rights-who/--rights-what) and generate again.")
    meta = {k: v for k, v in meta.items() if v is not None}
    if meta:
        info["extra"] = _jsonable(meta, "extra")
    info = _jsonable(info, "label")

    settings = {
        "watermarked": True,
        "watermark": SCHEME,
        "watermark_key": key_kind(key),
        "watermark_strength_db": float(prov.settings.get("watermark_strength_db", strength_db))
        if already
        else float(strength_db),
        "watermark_added": not already,
        "label": info,
    }
    seed = info.get("seed")
    new_prov = Provenance(
        stage="label",
        model=info.get("model"),
        model_checksum=info.get("model_checksum"),
        settings=settings,
        seed=int(seed) if isinstance(seed, (int, float)) and not isinstance(seed, bool) else prov.seed,
        voice=info.get("voice"),
        parent=audio.id,
        lineage=audio.lineage_ids(),
        extra=dict(prov.extra),
    )
    return Audio(provenance=new_prov, parent=audio, samples=samples, sample_rate=audio.sample_rate)


def build_metadata(audio: Audio) -> dict[str, Any]:
    """The label object written into files; ``audio`` should come from :func:`label`."""
    prov = audio.provenance
    settings = prov.settings
    info = dict(settings.get("label") or {})
    data: dict[str, Any] = {
        "AI_GENERATED": True,
        "digital_source_type": IPTC_DIGITAL_SOURCE_TYPE,
        "generator": GENERATOR,
        "generator_version": generator_version(),
        "model": info.get("model", prov.model),
        "model_checksum": info.get("model_checksum", prov.model_checksum),
        "voice": info.get("voice", prov.voice),
        "seed": info.get("seed", prov.seed),
        "text_sha256": info.get("text_sha256"),
        "labelled_at": _utc_now(),
        "watermark": {
            "scheme": settings.get("watermark") if settings.get("watermarked") else None,
            "key": settings.get("watermark_key"),
            "strength_db": settings.get("watermark_strength_db"),
        },
        "artifact_id": audio.id,
        "take_id": info.get("take_id", prov.parent),
        "lineage": info.get("lineage", list(prov.lineage)),
        "schema": LABEL_SCHEMA,
    }
    if "text" in info:
        data["text"] = info["text"]
    for field_name in LABEL_SECTIONS:
        if info.get(field_name) is not None:
            data[field_name] = info[field_name]
    if info.get("extra"):
        data["extra"] = info["extra"]
    return data


def summary_line(data: dict[str, Any]) -> str:
    """One key=value line for comment fields that people and simple parsers both read."""
    parts = [
        "AI_GENERATED=true",
        f"DigitalSourceType={data.get('digital_source_type', IPTC_DIGITAL_SOURCE_TYPE)}",
        f"generator={data.get('generator', GENERATOR)} {data.get('generator_version', '')}".rstrip(),
    ]
    for key in ("model", "voice", "seed", "text_sha256", "labelled_at"):
        if data.get(key) is not None:
            parts.append(f"{key}={data[key]}")
    wm = data.get("watermark") or {}
    if wm.get("scheme"):
        parts.append(f"watermark={wm['scheme']}")
    return "Synthetic speech made with bark_core. " + "; ".join(parts)


def metadata_tags(data: dict[str, Any]) -> dict[str, str]:
    """Flat tag set for ID3 TXXX frames and Vorbis comments; ``comment`` becomes COMM/COMMENT."""
    tags = {
        "AI_GENERATED": "true",
        "DIGITAL_SOURCE_TYPE": data["digital_source_type"],
        "GENERATOR": data["generator"],
        "GENERATOR_VERSION": data["generator_version"],
    }
    for key in ("model", "model_checksum", "voice", "seed", "text_sha256", "labelled_at"):
        if data.get(key) is not None:
            tags[key.upper()] = str(data[key])
    wm = data.get("watermark") or {}
    if wm.get("scheme"):
        tags["WATERMARK"] = str(wm["scheme"])
    tags[JSON_TAG] = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    tags["comment"] = summary_line(data)
    return tags


# --- WAV -------------------------------------------------------------------------------------


def _info_text(text: str) -> bytes:
    return text.encode("utf-8") + b"\0"


def wav_bytes(samples: np.ndarray, sample_rate: int, data: dict[str, Any] | None) -> bytes:
    """16-bit mono WAV; with ``data``, LIST/INFO and ``bark`` chunks sit between ``fmt`` and ``data``."""
    chunks: list[bytes] = []
    if data is not None:
        info = riff_chunk(b"ICMT", _info_text(summary_line(data))) + riff_chunk(
            b"ISFT", _info_text(f"{data['generator']} {data['generator_version']}")
        )
        chunks.append(riff_chunk(b"LIST", b"INFO" + info))
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8")
        chunks.append(riff_chunk(WAV_CHUNK_ID, blob))
    return plain_wav_bytes(samples, sample_rate, chunks)


def _wav_chunks(blob: bytes) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    pos = 12
    while pos + 8 <= len(blob):
        cid = blob[pos : pos + 4]
        size = struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        out.setdefault(cid, []).append(blob[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    return out


def _parse_summary(text: str) -> dict[str, Any] | None:
    if "AI_GENERATED=true" not in text:
        return None
    out: dict[str, Any] = {"AI_GENERATED": True, "source": "summary"}
    for part in text.split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            k = k.strip().split(". ")[-1]
            if k != "AI_GENERATED":
                out[k] = v.strip()
    return out


def _read_wav_label(path: Path) -> dict[str, Any] | None:
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        blob = head + fh.read()
    chunks = _wav_chunks(blob)
    for body in chunks.get(WAV_CHUNK_ID, []):
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            return data
    for body in chunks.get(b"LIST", []):
        if body[:4] != b"INFO":
            continue
        for cid, items in _wav_chunks(b"RIFF\0\0\0\0WAVE" + body[4:]).items():
            if cid == b"ICMT":
                for item in items:
                    parsed = _parse_summary(item.rstrip(b"\0").decode("utf-8", errors="replace"))
                    if parsed:
                        return parsed
    return None


def read_label(path: str | os.PathLike) -> dict[str, Any] | None:
    """The label object of a WAV, MP3, FLAC or OGG file, or None when it carries none.

    Tags are read by ffprobe (or, for WAV, from the RIFF chunks directly). A file whose JSON tag
    was lost but whose comment survived returns the parsed comment with ``"source": "summary"``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    with open(path, "rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _read_wav_label(path)
    tags = probe_tags(path)
    lowered = {k.lower(): v for k, v in tags.items()}
    raw = lowered.get(JSON_TAG.lower())
    if raw:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return data
    for key in ("comment", "description"):
        if key in lowered:
            parsed = _parse_summary(lowered[key])
            if parsed:
                return parsed
    if lowered.get("ai_generated", "").lower() == "true":
        return {"AI_GENERATED": True, "source": "tags", **{k: v for k, v in lowered.items() if k != "ai_generated"}}
    return None


# --- MP3 (ID3v2.3) ----------------------------------------------------------------------------


def _id3_text(text: str) -> bytes:
    return b"\xff\xfe" + text.encode("utf-16-le")


def _id3_frame(fid: bytes, body: bytes) -> bytes:
    return fid + struct.pack(">I", len(body)) + b"\0\0" + body


def id3v2_tag(tags: dict[str, str]) -> bytes:
    """An ID3v2.3 tag (UTF-16 text): TXXX per field and COMM for ``comment``.

    Written by hand because ffmpeg stores ``comment`` as a TXXX frame, which players do not show.
    """
    frames = []
    for key, value in tags.items():
        if key == "comment":
            body = b"\x01" + b"eng" + _id3_text("") + b"\0\0" + _id3_text(value)
            frames.append(_id3_frame(b"COMM", body))
        else:
            frames.append(_id3_frame(b"TXXX", b"\x01" + _id3_text(key) + b"\0\0" + _id3_text(value)))
    payload = b"".join(frames) + b"\0" * 256  # padding lets editors add frames without rewriting audio
    n = len(payload)
    size = bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
    return b"ID3\x03\x00\x00" + size + payload


def strip_id3v2(blob: bytes) -> bytes:
    """MP3 bytes without leading ID3v2 tags, so a new tag never stacks on an old one."""
    while blob[:3] == b"ID3" and len(blob) >= 10:
        size = (blob[6] << 21) | (blob[7] << 14) | (blob[8] << 7) | blob[9]
        footer = 10 if blob[5] & 0x10 else 0
        blob = blob[10 + size + footer :]
    return blob
