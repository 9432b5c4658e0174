"""The label stage: every waveform bark_core hands out says, in two independent ways, that it is synthetic.

1. An inaudible keyed watermark in the samples (:mod:`bark_core.label.watermark`), which survives
   re-encoding, resampling and cropping.
2. Machine-readable metadata in the file, for tools that never decode audio: the IPTC digital
   source type in the file's XMP packet (what exiftool and Adobe's tools read), private fields
   (``AI_GENERATED``, ``BARK_LABEL`` ...) in ID3 frames, Vorbis comments and RIFF chunks, and, when
   a signing certificate is configured, a C2PA manifest. :mod:`bark_core.label.tags` says where each
   format keeps what; :mod:`bark_core.label.c2pa_manifest` signs.

   ``BARK_LABEL`` holds the JSON object that :func:`read_label` returns. It carries
   ``AI_GENERATED``, the IPTC digital source type ``trainedAlgorithmicMedia``, the generator name
   and version, model ids (repo ids or file names with a content hash, never local paths), voice,
   seed, a SHA-256 of the prompt text (the text itself only on request), the UTC time of labelling
   and the watermark scheme.

Files are always written from samples, never by editing tags in place, so labelling a labelled
file again leaves exactly one tag set, and :func:`label` leaves audio alone that already carries the
mark of the same key (checked by detection, which costs ~50 ms for a 14 s clip).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import re
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from .. import limits
from ..artifacts import Audio, Provenance, expect_artifact
from ..errors import BarkError
from ..rights import RightsError
from .tags import read_label as read_label  # re-exported: callers have long imported it from here
from .tags import summary_line as summary_line
from .watermark import (
    DEFAULT_STRENGTH_DB,
    SCHEME,
    detect,
    embed_samples,
    key_kind,
)
from .xmp import IPTC_DIGITAL_SOURCE_TYPE

logger = logging.getLogger("bark_core.label")

GENERATOR = "bark_core"
DISTRIBUTION = "bark-stages"
# untrained random weights (the tiny offline set) learned nothing: the output is made by an algorithm alone
IPTC_UNTRAINED_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
LABEL_SCHEMA = "bark_core.label/1"
_RESERVED = {"text", "model", "model_checksum", "voice", "seed"}


# Sections the label carries besides provenance: the human review, the automatic quality report's
# summary, and where the voice came from (with the speaker's rights record for cloned voices); then
# each stage's voice and seed (``stages``; ``chunk_stages`` for long-form, one entry per chunk) and
# every voice's origin and rights when stages used different voices (``voice_origins``).
LABEL_SECTIONS = ("review", "qc", "voice_origin", "stages", "chunk_stages", "voice_origins")


class LabelError(BarkError, ValueError):
    """Label metadata cannot be built or written as asked."""


PROJECT_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"  # present in a source checkout


def project_version(pyproject: Path = PROJECT_FILE) -> str | None:
    """``[project] version`` of our own pyproject.toml, when it is this distribution's; else None."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # 3.10: the two lines we need, read plainly
        name = re.search(r'^name\s*=\s*"([^"]+)"', text, re.M)
        version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
        project = {"name": name and name.group(1), "version": version and version.group(1)}
    else:
        try:
            project = tomllib.loads(text).get("project", {})
        except tomllib.TOMLDecodeError:
            return None
    return project.get("version") if project.get("name") == DISTRIBUTION else None


@functools.lru_cache(maxsize=1)
def generator_version() -> str:
    """Version of the code that made a file: the installed distribution's, else (a git clone, e.g. a
    ComfyUI custom node that was never pip-installed) the version in the checkout's pyproject.toml."""
    try:
        return importlib_metadata.version(DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        return project_version() or "0.0.0"


# An absolute local path (POSIX, home-relative or Windows) inside a label value. The look-behind keeps
# URLs (``http://x/y``), repo ids (``suno/bark``) and presets (``v2/en_speaker_6``) out of it.
_PATH_CHARS = r"[^\s/\\,;\"'<>|=()\[\]{}]"
_LOCAL_PATH = re.compile(
    rf"(?<![\w.:/~-])(?:~|/)(?:{_PATH_CHARS}+/)+{_PATH_CHARS}*"
    rf"|(?<![\w])[A-Za-z]:[\\/](?:{_PATH_CHARS}+[\\/])*{_PATH_CHARS}*"
)
_KEEP_VERBATIM = {"text", "text_sha256"}  # the user's own words are theirs to publish (include_text)


def _file_name(match: re.Match[str]) -> str:
    parts = [p for p in re.split(r"[\\/]", match.group(0)) if p and p != "~"]
    return parts[-1] if parts else ""


def public_value(value: Any, name: str = "") -> Any:
    """``value`` with every absolute local path cut to its last component.

    Labels travel with published files; a path such as ``/home/<user>/.cache/...`` tells strangers
    who made the file and how their disk is laid out. Model ids are built without paths in the first
    place; this is the net under everything else (voice origins, extra fields, workflows).
    """
    if isinstance(value, str):
        return value if name in _KEEP_VERBATIM else _LOCAL_PATH.sub(_file_name, value)
    if isinstance(value, list):
        return [public_value(v, name) for v in value]
    if isinstance(value, dict):
        return {k: public_value(v, str(k)) for k, v in value.items()}
    return value


def _utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _jsonable(value: Any, name: str, depth: int = 0) -> Any:
    if depth > limits.MAX_JSON_DEPTH:
        raise LabelError(f"Label field {name!r} nests deeper than {limits.MAX_JSON_DEPTH} levels (or refers to "
                         "itself); keep label metadata flat.")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return limits.text(value, f"label field {name!r}", max_chars=limits.MAX_LONG_TEXT_CHARS, error=LabelError)
    if isinstance(value, float) and not math.isfinite(value):
        raise LabelError(f"Label field {name!r} is {value}; label metadata holds finite numbers only.")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, name, depth + 1) for v in value]
    if isinstance(value, dict):
        return {_jsonable(str(k), name): _jsonable(v, f"{name}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return _jsonable(os.fspath(value), name, depth)
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
    untrained = bool(meta.pop("untrained", False)) or made_untrained(audio)
    info: dict[str, Any] = {
        # the take a reviewer judges: the audio handed in (export passes the one before resampling)
        "take_id": meta.pop("take_id", None) or audio.id,
        "lineage": list(audio.lineage_ids()),
        "model": meta.pop("model", prov.model),
        "model_checksum": meta.pop("model_checksum", prov.model_checksum),
        "voice": meta.pop("voice", prov.voice),
        "seed": meta.pop("seed", prov.seed),
    }
    if untrained:  # the file must not pass for the work of a trained model
        info["untrained"] = True
    if text is not None:
        limits.text(text, "text", max_chars=limits.MAX_LONG_TEXT_CHARS, error=LabelError)
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
    seed = info.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise LabelError(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r:.40}.")

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
    new_prov = Provenance(
        stage="label",
        model=info.get("model"),
        model_checksum=info.get("model_checksum"),
        settings=settings,
        seed=seed if seed is not None else prov.seed,
        voice=info.get("voice"),
        parent=audio.id,
        lineage=audio.lineage_ids(),
        extra=dict(prov.extra),
    )
    return Audio(provenance=new_prov, parent=audio, samples=samples, sample_rate=audio.sample_rate)


def mark_output(audio: Audio, watermark: bool = True, *, where: str = "output", **meta: Any) -> Audio:
    """The audio a front end hands on: watermarked (through :func:`label`) unless turned off.

    Front ends (ComfyUI nodes, the studio) pass audio to tools bark_core does not control: a core
    saver, a video node, a browser's download button. Marking at the source keeps the mark on
    whatever those write. Turning it off is for measurements only and is logged as a warning.
    """
    audio = expect_artifact(audio, Audio, where)
    if watermark:
        return label(audio, **meta)
    logger.warning("%s: watermark OFF. This audio carries no synthetic-audio mark, and neither will anything saved "
                   "from it unless it goes through the label stage. Do not publish it.", where)
    return audio


def made_untrained(audio: Audio) -> bool:
    """Whether untrained weights made ``audio`` or any artifact it came from (the chain held in memory)."""
    art: Any = audio
    while art is not None:
        if art.provenance.extra.get("untrained") or (art.provenance.settings.get("label") or {}).get("untrained"):
            return True
        art = art.parent
    return False


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
    if info.get("untrained"):
        data["untrained"] = True
        data["digital_source_type"] = IPTC_UNTRAINED_SOURCE_TYPE
    if "text" in info:
        data["text"] = info["text"]
    for field_name in LABEL_SECTIONS:
        if info.get(field_name) is not None:
            data[field_name] = info[field_name]
    if info.get("extra"):
        data["extra"] = info["extra"]
    return public_value(data)
