"""The label inside media files: one writer and one reader per format, built on mutagen.

Every format carries the label three ways, so that each kind of reader finds it:

============  ====================================================================================
WAV           ``LIST/INFO`` (``ICMT`` summary, ``ISFT`` generator) and an ``_PMX`` XMP chunk, both
              before ``data``; an ``id3 `` chunk (mutagen) with one ``TXXX`` per field and ``COMM``
MP3           ID3v2.4 (mutagen): ``TXXX`` per field, ``COMM`` summary, ``PRIV`` owner ``XMP``
FLAC          Vorbis comments (mutagen) per field plus ``COMMENT`` summary; XMP in an APPLICATION
              block ``riff`` holding an ``_PMX`` chunk (the flac tool's foreign-chunk carrier)
OGG           Vorbis comments as FLAC; XMP in a leading ID3v2.4 ``PRIV`` ``XMP`` frame
============  ====================================================================================

The XMP carriers are the ones exiftool reads (``XMP-iptcExt:DigitalSourceType``). Ogg has no XMP
carrier of its own: exiftool reads XMP only from an ID3v2 tag in front of the first Ogg page.
ffmpeg, libogg-based players and browsers skip such a tag; strict Ogg parsers (mutagen's OggVorbis,
for one) do not, so :func:`read_label` strips it first. RIFF chunks are written by hand because no
maintained library writes ``LIST/INFO`` or ``_PMX``; everything ID3 and Vorbis goes through mutagen.
"""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from mutagen.flac import FLAC, MetadataBlock
from mutagen.id3 import COMM, ID3, PRIV, TXXX
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from .. import limits
from ..audio_io import AudioFileError, probe_tags, riff_chunk
from ..audio_io import wav_bytes as plain_wav_bytes
from .xmp import IPTC_DIGITAL_SOURCE_TYPE, parse_xmp, xmp_packet

JSON_TAG = "BARK_LABEL"
LEGACY_WAV_CHUNK = b"bark"  # the JSON chunk of files written before the id3 chunk; still read
XMP_CHUNK = b"_PMX"
XMP_OWNER = "XMP"
FLAC_APPLICATION = 2  # metadata block type
RIFF_APP_ID = b"riff"
MAX_TAG_READ_BYTES = 64 * 1024**2  # read_label reads at most this much of a non-WAV file (about 1 h of MP3)


# --- the flat tag set ----------------------------------------------------------------------------


def summary_line(data: dict[str, Any]) -> str:
    """One key=value line for comment fields that people and simple parsers both read."""
    parts = [
        "AI_GENERATED=true",
        f"DigitalSourceType={data.get('digital_source_type', IPTC_DIGITAL_SOURCE_TYPE)}",
        f"generator={data.get('generator', 'bark_core')} {data.get('generator_version', '')}".rstrip(),
    ]
    for key in ("model", "voice", "seed", "text_sha256", "labelled_at"):
        if data.get(key) is not None:
            parts.append(f"{key}={data[key]}")
    if data.get("untrained"):
        parts.append("untrained=true (random weights: noise, not speech)")
    wm = data.get("watermark") or {}
    if wm.get("scheme"):
        parts.append(f"watermark={wm['scheme']}")
    return "Synthetic speech made with bark_core. " + "; ".join(parts)


def metadata_tags(data: dict[str, Any]) -> dict[str, str]:
    """Flat tag set for ID3 TXXX frames and Vorbis comments (without the summary comment)."""
    tags = {
        "AI_GENERATED": "true",
        "DIGITAL_SOURCE_TYPE": data["digital_source_type"],
        "GENERATOR": data["generator"],
        "GENERATOR_VERSION": data["generator_version"],
    }
    for key in ("model", "model_checksum", "voice", "seed", "text_sha256", "labelled_at"):
        if data.get(key) is not None:
            tags[key.upper()] = str(data[key])
    if data.get("untrained"):
        tags["UNTRAINED"] = "true"
    wm = data.get("watermark") or {}
    if wm.get("scheme"):
        tags["WATERMARK"] = str(wm["scheme"])
    tags[JSON_TAG] = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return tags


def _xmp(data: dict[str, Any]) -> bytes:
    return xmp_packet(data, description=summary_line(data))


def _id3(data: dict[str, Any], *, fields: bool = True) -> ID3:
    tag = ID3()
    if fields:
        for key, value in metadata_tags(data).items():
            tag.add(TXXX(encoding=3, desc=key, text=[value]))
        tag.add(COMM(encoding=3, lang="eng", desc="", text=[summary_line(data)]))
    return tag


def _save_id3(tag: ID3, blob: bytes) -> bytes:
    """``blob`` with ``tag`` as its one leading ID3v2.4 tag (v2.4: c2pa rewrites tags as v2.4)."""
    buf = io.BytesIO(blob)
    tag.save(buf, v2_version=4, padding=lambda info: 256)
    return buf.getvalue()


# --- writers ---------------------------------------------------------------------------------------


def wav_bytes(samples: np.ndarray, sample_rate: int, data: dict[str, Any] | None) -> bytes:
    """16-bit mono WAV; with ``data``, the label in LIST/INFO, XMP and id3 chunks."""
    if data is None:
        return plain_wav_bytes(samples, sample_rate)
    info = riff_chunk(b"ICMT", summary_line(data).encode("utf-8") + b"\0") + riff_chunk(
        b"ISFT", f"{data['generator']} {data['generator_version']}".encode() + b"\0")
    blob = plain_wav_bytes(samples, sample_rate, [riff_chunk(b"LIST", b"INFO" + info),
                                                  riff_chunk(XMP_CHUNK, _xmp(data))])
    buf = io.BytesIO(blob)
    wave = WAVE(buf)
    wave.add_tags()
    for frame in _id3(data).values():
        wave.tags.add(frame)
    buf.seek(0)
    wave.save(buf, v2_version=4)
    return buf.getvalue()


class _Application(MetadataBlock):
    code = FLAC_APPLICATION


def _vorbis(tags: Any, data: dict[str, Any]) -> None:
    tags.clear()
    for key, value in metadata_tags(data).items():
        tags[key] = value
    tags["COMMENT"] = summary_line(data)


def tag_encoded(blob: bytes, fmt: str, data: dict[str, Any]) -> bytes:
    """MP3, FLAC or OGG bytes from ffmpeg (written without tags) with the label added."""
    if fmt == "mp3":
        tag = _id3(data)
        tag.add(PRIV(owner=XMP_OWNER, data=_xmp(data)))
        return _save_id3(tag, _strip_id3(blob))
    buf = io.BytesIO(blob)
    if fmt == "flac":
        flac = FLAC(buf)
        if flac.tags is None:
            flac.add_tags()
        _vorbis(flac.tags, data)
        flac.metadata_blocks = [b for b in flac.metadata_blocks
                                if not (b.code == FLAC_APPLICATION and b.write()[:4] == RIFF_APP_ID)]
        flac.metadata_blocks.append(_Application(RIFF_APP_ID + riff_chunk(XMP_CHUNK, _xmp(data))))
        buf.seek(0)
        flac.save(buf, padding=lambda info: 1024)
        return buf.getvalue()
    if fmt == "ogg":
        ogg = OggVorbis(buf)
        _vorbis(ogg.tags, data)
        buf.seek(0)
        ogg.save(buf)
        tag = _id3(data, fields=False)  # Vorbis comments hold the fields; the ID3 tag only the XMP
        tag.add(PRIV(owner=XMP_OWNER, data=_xmp(data)))
        return _save_id3(tag, buf.getvalue())
    raise ValueError(f"no tag writer for {fmt!r}")


# --- readers ---------------------------------------------------------------------------------------


def _id3_size(blob: bytes) -> int:
    if blob[:3] != b"ID3" or len(blob) < 10:
        return 0
    size = (blob[6] << 21) | (blob[7] << 14) | (blob[8] << 7) | blob[9]
    return 10 + size + (10 if blob[5] & 0x10 else 0)


def _strip_id3(blob: bytes) -> bytes:
    """Bytes without leading ID3v2 tags, so a new tag never stacks on an old one."""
    while (n := _id3_size(blob)) > 0:
        blob = blob[n:]
    return blob


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


def _from_json(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        data = limits.loads_json(raw, "label", error=AudioFileError)
    except AudioFileError:
        return None
    return data if isinstance(data, dict) else None


def _from_xmp(blob: bytes) -> dict[str, Any] | None:
    fields = parse_xmp(blob)
    source_type = fields.get("Iptc4xmpExt:DigitalSourceType")
    if not source_type:
        return None
    out: dict[str, Any] = {"AI_GENERATED": source_type == IPTC_DIGITAL_SOURCE_TYPE,
                           "digital_source_type": source_type, "source": "xmp"}
    if "Iptc4xmpExt:AISystemUsed" in fields:
        out["generator"] = fields["Iptc4xmpExt:AISystemUsed"]
    if "Iptc4xmpExt:AISystemVersionUsed" in fields:
        out["generator_version"] = fields["Iptc4xmpExt:AISystemVersionUsed"]
    return out


def _from_id3(tag: ID3 | None) -> dict[str, Any] | None:
    if tag is None:
        return None
    for frame in tag.getall(f"TXXX:{JSON_TAG}"):
        data = _from_json(frame.text[0] if frame.text else None)
        if data:
            return data
    for frame in tag.getall("COMM"):
        parsed = _parse_summary(" ".join(map(str, frame.text)))
        if parsed:
            return parsed
    for frame in tag.getall(f"PRIV:{XMP_OWNER}"):
        parsed = _from_xmp(frame.data)
        if parsed:
            return parsed
    return None


def _from_vorbis(tags: Any) -> dict[str, Any] | None:
    if tags is None:
        return None
    lowered = {k.lower(): v for k, v in tags.items()}
    data = _from_json((lowered.get(JSON_TAG.lower()) or [None])[0])
    if data:
        return data
    for key in ("comment", "description"):
        for value in lowered.get(key, []):
            parsed = _parse_summary(value)
            if parsed:
                return parsed
    return None


def _riff_chunks(blob: bytes, pos: int = 12) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    while pos + 8 <= len(blob):
        cid = blob[pos : pos + 4]
        size = struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        out.setdefault(cid, []).append(blob[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    return out


def _read_wav(blob: bytes) -> dict[str, Any] | None:
    chunks = _riff_chunks(blob)
    for cid in (b"id3 ", b"ID3 "):
        for body in chunks.get(cid, []):
            try:
                found = _from_id3(ID3(io.BytesIO(body)))
            except Exception:  # a damaged tag is no label
                found = None
            if found:
                return found
    for body in chunks.get(LEGACY_WAV_CHUNK, []):
        data = _from_json(body.decode("utf-8", errors="replace"))
        if data:
            return data
    for body in chunks.get(b"LIST", []):
        if body[:4] == b"INFO":
            for item in _riff_chunks(body, 4).get(b"ICMT", []):
                parsed = _parse_summary(item.rstrip(b"\0").decode("utf-8", errors="replace"))
                if parsed:
                    return parsed
    for body in chunks.get(XMP_CHUNK, []):
        parsed = _from_xmp(body)
        if parsed:
            return parsed
    return None


def _wav_meta_blob(path: Path) -> bytes:
    """The RIFF header and every chunk but the audio, found by seeking: a long take is never read."""
    size = path.stat().st_size
    parts: list[bytes] = []
    with open(path, "rb") as fh:
        parts.append(fh.read(12))
        pos = 12
        for _ in range(10_000):  # a RIFF file has a handful of chunks; a loop of tiny chunks is damage
            if pos + 8 > size:
                break
            fh.seek(pos)
            head = fh.read(8)
            if len(head) < 8:
                break
            n = struct.unpack("<I", head[4:])[0]
            if head[:4] != b"data" and n <= limits.MAX_HEADER_BYTES:
                body = fh.read(n)
                parts.append(head + body + (b"\0" if n & 1 else b""))
            pos += 8 + n + (n & 1)
    return b"".join(parts)


def _read_id3_prefixed(blob: bytes) -> dict[str, Any] | None:
    """MP3, or FLAC/OGG behind a leading ID3 tag (c2pa puts one before FLAC, we put one before OGG)."""
    tag = None
    if _id3_size(blob):
        try:
            tag = ID3(io.BytesIO(blob))
        except Exception:  # no tag or a damaged one: no label from it
            tag = None
    body = _strip_id3(blob)
    if body[:4] == b"fLaC":
        try:
            found = _from_vorbis(FLAC(io.BytesIO(body)).tags)
        except Exception:
            found = None
        if found:
            return found
    elif body[:4] == b"OggS":
        try:
            found = _from_vorbis(OggVorbis(io.BytesIO(body)).tags)
        except Exception:  # Ogg Opus/FLAC or damaged
            found = None
        if found:
            return found
    return _from_id3(tag)


def read_label(path: str | os.PathLike) -> dict[str, Any] | None:
    """The label object of a WAV, MP3, FLAC or OGG file, or None when it carries none.

    A file whose JSON tag was lost but whose summary comment (or XMP) survived returns the parsed
    comment with ``"source": "summary"`` (or ``"xmp"``). Other containers (M4A, ...) are read
    through ffprobe.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    with open(path, "rb") as fh:
        blob = fh.read(MAX_TAG_READ_BYTES)  # tags sit at the start of MP3, FLAC and OGG files
    if blob[:4] == b"RIFF" and blob[8:12] == b"WAVE":
        return _read_wav(_wav_meta_blob(path))
    found = _read_id3_prefixed(blob)
    if found or _strip_id3(blob)[:4] in (b"fLaC", b"OggS") or _id3_size(blob):
        return found
    tags = probe_tags(path)
    lowered = {k.lower(): v for k, v in tags.items()}
    data = _from_json(lowered.get(JSON_TAG.lower()))
    if data:
        return data
    for key in ("comment", "description"):
        parsed = _parse_summary(lowered.get(key, ""))
        if parsed:
            return parsed
    if lowered.get("ai_generated", "").lower() == "true":
        return {"AI_GENERATED": True, "source": "tags", **{k: v for k, v in lowered.items() if k != "ai_generated"}}
    return None


def read_xmp(path: str | os.PathLike) -> dict[str, str]:
    """The XMP properties a file carries where :mod:`bark_core.label.tags` writes them ({} if none)."""
    blob = Path(path).read_bytes()
    if blob[:4] == b"RIFF" and blob[8:12] == b"WAVE":
        bodies = _riff_chunks(blob).get(XMP_CHUNK, [])
        return parse_xmp(bodies[0]) if bodies else {}
    if _id3_size(blob):
        try:
            for frame in ID3(io.BytesIO(blob)).getall(f"PRIV:{XMP_OWNER}"):
                return parse_xmp(frame.data)
        except Exception:
            pass
    body = _strip_id3(blob)
    if body[:4] == b"fLaC":
        try:
            for block in FLAC(io.BytesIO(body)).metadata_blocks:
                raw = block.write() if block.code == FLAC_APPLICATION else b""
                if raw[:4] == RIFF_APP_ID:
                    found = _riff_chunks(raw, 4).get(XMP_CHUNK, [])
                    if found:
                        return parse_xmp(found[0])
        except Exception:
            pass
    return {}
