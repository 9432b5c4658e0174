"""Saving Audio artifacts as WAV, FLAC, MP3 or OGG, always through the label stage.

Export is the only door through which audio leaves bark_core as a media file, so it is where the
watermark and the AI-generated metadata are applied. ``label=False`` exists for debugging and
research (e.g. measuring the codec without the mark); it is logged as a warning every time.
Files are written to a temporary name in the target folder and renamed into place, so a crash or a
full disk never leaves half a file under the final name, and an existing file is kept unless
``overwrite=True``.
"""

from __future__ import annotations

import io
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import constants as C
from .. import limits
from ..artifacts import Audio, Provenance, expect_artifact
from ..audio_io import pcm16, require_tool, resample
from ..errors import OutputPathError, ParameterError
from ..fileio import atomic_write, check_output_path
from ..quality import check
from .c2pa_manifest import C2PA_FORMATS, credentials, note_unsigned, sign
from .metadata import LabelError, build_metadata
from .metadata import label as label_audio
from .review import require_public_ok, review_metadata
from .tags import tag_encoded, wav_bytes
from .watermark import DEFAULT_STRENGTH_DB

logger = logging.getLogger("bark_core.export")

FORMATS = C.AUDIO_FORMATS
MP3_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
DEFAULT_BITRATES = {"mp3": "128k"}
DEFAULT_PEAK_DBFS = -1.0
DEFAULT_RMS_DBFS = -20.0
_CODECS = {"flac": "flac", "mp3": "libmp3lame", "ogg": "libvorbis"}


def _format_for(path: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = path.suffix.lower().lstrip(".")
        if fmt == "oga":
            fmt = "ogg"
        if fmt not in FORMATS:
            raise OutputPathError(
                f"Cannot tell the format of {path.name} from its extension; name it .wav, .flac, .mp3 or .ogg, "
                "or pass format=."
            )
        return fmt
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise OutputPathError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    return fmt


DEFAULT_LUFS = -16.0  # the usual target for speech on streaming platforms and podcasts


def normalize_samples(samples: np.ndarray, mode: str | None, target_db: float | None = None,
                      sample_rate: int | None = None) -> np.ndarray:
    """Peak, RMS or loudness (LUFS, ITU-R BS.1770) normalisation; RMS and LUFS never push the peak past -0.1/-1 dBFS."""
    x = np.asarray(samples, dtype=np.float64)
    if mode is None or mode == "none":
        return x
    if mode not in ("peak", "rms", "lufs"):
        raise OutputPathError(f"normalize must be 'peak', 'rms', 'lufs' or None, got {mode!r}.")
    if target_db is not None and float(target_db) > 0.0:
        raise OutputPathError(f"target_db={target_db} is above 0 dBFS and would clip; use a negative value.")
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x
    if mode == "peak":
        target = DEFAULT_PEAK_DBFS if target_db is None else float(target_db)
        return x * (10.0 ** (target / 20.0) / peak)
    if mode == "lufs":
        import pyloudnorm

        target = DEFAULT_LUFS if target_db is None else float(target_db)
        rate = int(sample_rate or 24000)
        if x.size < int(0.4 * rate):
            raise OutputPathError("Loudness (LUFS) needs at least 0.4 s of audio; "
                                  "use normalize='peak' for shorter clips.")
        loudness = pyloudnorm.Meter(rate).integrated_loudness(x)
        if not math.isfinite(loudness):
            return x  # silence: nothing to normalise
        gain, ceiling, what = 10.0 ** ((target - loudness) / 20.0), -1.0, f"{target:.1f} LUFS"
    else:
        target = DEFAULT_RMS_DBFS if target_db is None else float(target_db)
        rms = math.sqrt(float(np.mean(x * x)))
        gain, ceiling, what = 10.0 ** (target / 20.0) / rms, -0.1, f"RMS {target:.1f} dBFS"
    limit = 10.0 ** (ceiling / 20.0) / peak
    if gain > limit:
        logger.warning("%s would clip (peak %.1f dBFS); gain limited to keep the peak at %.1f dBFS.",
                       what, 20.0 * math.log10(peak * gain), ceiling)
        gain = limit
    return x * gain


def export_audio(
    audio: Audio,
    path: str | os.PathLike,
    *,
    format: str | None = None,
    sample_rate: int | None = None,
    normalize: str | None = None,
    target_db: float | None = None,
    bitrate: str | None = None,
    overwrite: bool = False,
    label: bool = True,
    key: str | bytes | None = None,
    strength_db: float = DEFAULT_STRENGTH_DB,
    include_text: bool = False,
    public: bool = False,
    quality: Any = "auto",
    review_store: Any = None,
    c2pa_cert: str | bytes | os.PathLike | None = None,
    c2pa_key: str | bytes | os.PathLike | None = None,
    **meta: Any,
) -> Path:
    """Write ``audio`` as a labelled media file and return its path.

    ``format`` defaults to the file extension (wav, flac, mp3, ogg). ``sample_rate`` resamples
    (default: the audio's own rate, 24 kHz for Bark). ``normalize`` is ``"peak"`` (default target
    -1 dBFS), ``"rms"`` (default -20 dBFS) or ``"lufs"`` (default -16 LUFS), applied before the
    watermark so the mark keeps its level relative to what is heard. ``meta`` (``text``, ``model``,
    ``voice``, ``seed``, extra fields) goes into the label; see :func:`bark_core.label.label`. The
    label also records the take's human review state and the summary of its quality report:
    ``quality="auto"`` runs :func:`bark_core.quality.check`, or pass your own report, or None to
    leave it out. ``public=True`` refuses takes that are unreviewed or rejected. ``label=False``
    writes neither watermark nor metadata and logs a warning saying so.

    WAV, MP3 and FLAC also get a signed C2PA manifest when a certificate chain and key are given
    (``c2pa_cert``/``c2pa_key``: PEM text or file paths; default ``$BARK_C2PA_CERT``/``$BARK_C2PA_KEY``).
    """
    audio = expect_artifact(audio, Audio, "export")
    path = check_output_path(path, overwrite=overwrite)  # before any work: a bad name fails at once
    fmt = _format_for(path, format)
    if sample_rate is not None:
        sample_rate = limits.sample_rate(sample_rate)
    if target_db is not None:
        limits.number("target_db", target_db, lo=-100.0, hint="It is a level in dBFS (or LUFS), e.g. -16.")
    if bitrate is not None and not isinstance(bitrate, str):
        raise ParameterError(f"bitrate must be text like '128k', got {bitrate!r:.40}.")
    rate = int(sample_rate or audio.sample_rate)
    if audio.n_samples * rate / audio.sample_rate > limits.MAX_EXPORT_SAMPLES:
        raise ParameterError(f"Exporting {audio.duration_s / 60:.1f} min at {rate} Hz makes more than "
                             f"{limits.MAX_EXPORT_SAMPLES:,} samples; export shorter parts or at a lower rate.")
    take_id = audio.id
    creds = credentials(c2pa_cert, c2pa_key) if label else None  # a bad setting fails before any work
    if public:  # public use needs a human's approval on record (see bark_core.label.review)
        require_public_ok(audio, store=review_store)
    if label:
        meta.setdefault("review", review_metadata(audio, store=review_store))
        if isinstance(quality, str) and quality == "auto":  # ~40 ms: every label carries its QC summary
            if audio.n_samples > limits.MAX_AUDIO_SAMPLES:
                logger.warning("%s: %.1f min is longer than the quality check takes (%d samples); the label "
                               "carries no QC summary. Check the parts with bark_core.quality.check().",
                               path, audio.duration_s / 60, limits.MAX_AUDIO_SAMPLES)
                quality = None
            else:
                quality = check(audio, text=meta.get("text"))
        if quality is not None:
            meta.setdefault("qc", quality.summary() if hasattr(quality, "summary") else dict(quality))
    if fmt == "mp3" and rate not in MP3_RATES:
        raise OutputPathError(
            f"MP3 cannot store {rate} Hz; choose one of {', '.join(map(str, MP3_RATES))} or export FLAC/WAV/OGG."
        )
    if fmt != "wav":
        require_tool("ffmpeg", f"encode {fmt.upper()}")

    samples = np.asarray(audio.samples, dtype=np.float64)
    if rate != audio.sample_rate:
        samples = resample(samples, audio.sample_rate, rate)
    samples = normalize_samples(samples, normalize, target_db, rate)
    if rate != audio.sample_rate or normalize not in (None, "none"):
        settings = {"sample_rate": rate, "normalize": normalize, "target_db": target_db}
        audio = Audio(
            provenance=Provenance(
                stage="export",
                model=audio.provenance.model,
                model_checksum=audio.provenance.model_checksum,
                settings=settings,
                seed=audio.provenance.seed,
                voice=audio.provenance.voice,
                parent=audio.id,
                lineage=audio.lineage_ids(),
                extra=dict(audio.provenance.extra),
            ),
            parent=audio,
            samples=samples.astype(np.float32),
            sample_rate=rate,
        )

    data: dict[str, Any] | None = None
    if label:
        audio = label_audio(audio, key, strength_db=strength_db, include_text=include_text, take_id=take_id, **meta)
        data = build_metadata(audio)
    else:
        logger.warning(
            "export_audio(label=False): %s is written WITHOUT watermark and WITHOUT AI-generated metadata. "
            "Do not publish it; drop label=False to label it.",
            path,
        )
        if meta:
            raise LabelError(f"label=False cannot record label fields {sorted(meta)}; drop them or enable the label.")

    if fmt == "wav":
        blob = wav_bytes(audio.samples, audio.sample_rate, data)
    else:
        blob = _encode(audio, path, fmt, bitrate=bitrate)
        if data is not None:
            blob = tag_encoded(blob, fmt, data)
    if data is not None:
        if creds is not None and fmt in C2PA_FORMATS:
            blob = sign(blob, fmt, data, creds)  # last: the manifest hashes the finished file
        else:
            note_unsigned(fmt, creds)
    with atomic_write(path, overwrite=overwrite) as fh:
        fh.write(blob)
    return path


def _encode(audio: Audio, path: Path, fmt: str, *, bitrate: str | None) -> bytes:
    """ffmpeg's encoding of the samples, without any tags (the label is added by mutagen)."""
    import warnings

    with warnings.catch_warnings():  # pydub imports the deprecated audioop module
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydub import AudioSegment
        from pydub.exceptions import CouldntEncodeError

    segment = AudioSegment(data=pcm16(audio.samples), sample_width=2, frame_rate=audio.sample_rate, channels=1)
    params: list[str] = ["-map_metadata", "-1", "-fflags", "+bitexact"]
    if fmt == "mp3":
        params += ["-write_id3v2", "0", "-write_id3v1", "0"]
    elif fmt == "ogg" and bitrate is None:
        params += ["-q:a", "5"]
    bitrate = bitrate or DEFAULT_BITRATES.get(fmt)
    if fmt == "flac":
        bitrate = None
    buf = io.BytesIO()
    try:
        segment.export(buf, format=fmt, codec=_CODECS[fmt], bitrate=bitrate, parameters=params)
    except CouldntEncodeError as exc:
        last = str(exc).strip().splitlines()[-1:] or [""]
        raise OutputPathError(
            f"ffmpeg could not encode {path.name} as {fmt.upper()} (bitrate={bitrate!r}): {last[0]}. "
            "Check the bitrate and that your ffmpeg has the encoder."
        ) from exc
    return buf.getvalue()


def save_wav(audio: Audio, path: str | os.PathLike, *, overwrite: bool = False, label: bool = True,
             **meta: Any) -> Path:
    """16-bit WAV through the label stage (watermark + provenance tags), like every export; an existing
    file is replaced only with ``overwrite=True``.

    ``label=False`` writes the bare samples, for material that is not generated output (test
    signals, user recordings); see :func:`export_audio` for formats and options.
    """
    audio = expect_artifact(audio, Audio, "save_wav")
    path = Path(path)
    if label:
        return export_audio(audio, path, format="wav", overwrite=overwrite, **meta)
    logger.warning("save_wav(label=False): %s is written WITHOUT watermark and WITHOUT AI-generated metadata. "
                   "Do not publish it; drop label=False to label it.", path)
    with atomic_write(path, overwrite=overwrite) as fh:
        fh.write(audio.to_wav_bytes())
    return path


def labelled_wav_bytes(audio: Audio, key: str | bytes | None = None, **meta: Any) -> bytes:
    """The labelled WAV of ``audio`` as bytes (watermark + tags), for players that hand audio to people.

    A browser's player lets anyone download what it plays, so front ends play this rather than
    :meth:`Audio.to_wav_bytes`. Audio that already carries the mark is not marked twice, and audio
    that comes out of the label stage (perhaps with a custom key) is written as it is.
    """
    audio = expect_artifact(audio, Audio, "labelled_wav_bytes")
    done = audio.provenance.stage == "label" and audio.provenance.settings.get("watermarked") and not meta
    labelled = audio if done else label_audio(audio, key, **meta)
    return wav_bytes(labelled.samples, labelled.sample_rate, build_metadata(labelled))
