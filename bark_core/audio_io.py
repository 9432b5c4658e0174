"""Reading any audio file into float32 samples, and the resampling every label tool shares.

Detection has to work on whatever a user found (an MP3 from a chat app, a 44.1 kHz FLAC, an OGG),
so decoding goes through ffmpeg; plain PCM WAV files are read with the standard library so the
most common case works even where ffmpeg is not installed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BarkError

_INSTALL_HINT = (
    "Install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; "
    "conda: conda install -c conda-forge ffmpeg) and make sure it is on PATH."
)


class ToolMissingError(BarkError, RuntimeError):
    """An external program (ffmpeg, ffprobe) that an audio operation needs is not installed."""


class AudioFileError(BarkError, ValueError):
    """An audio file is missing, unreadable, or not audio."""


def find_tool(name: str) -> str | None:
    """Path of ffmpeg/ffprobe, honouring BARK_FFMPEG / BARK_FFPROBE overrides."""
    override = os.environ.get(f"BARK_{name.upper()}")
    if override:
        return override if os.path.isfile(override) else shutil.which(override)
    return shutil.which(name)


def require_tool(name: str, purpose: str) -> str:
    """Path of an external tool, or an error that names what it was needed for and how to install it."""
    path = find_tool(name)
    if path is None:
        raise ToolMissingError(f"{name} is needed to {purpose} but was not found. {_INSTALL_HINT}")
    return path


def resample(samples: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Polyphase resampling (float64 out); exact integer ratios for the usual audio rates."""
    rate_from, rate_to = int(rate_from), int(rate_to)
    x = np.asarray(samples, dtype=np.float64)
    if rate_from == rate_to:
        return x
    if rate_from <= 0 or rate_to <= 0:
        raise AudioFileError(f"Cannot resample from {rate_from} Hz to {rate_to} Hz; rates must be positive.")
    from scipy.signal import resample_poly

    g = math.gcd(rate_from, rate_to)
    return resample_poly(x, rate_to // g, rate_from // g)


def _read_wav_stdlib(path: Path) -> tuple[np.ndarray, int] | None:
    """16/24/32-bit integer PCM WAV without ffmpeg; None when the file needs a real decoder."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, struct.error):
        return None
    data = _decode_pcm(raw, width, channels)
    return None if data is None else (data, rate)


def _decode_pcm(raw: bytes, width: int, channels: int) -> np.ndarray | None:
    """Little-endian integer PCM frames -> mono float32 in [-1, 1); None for widths we do not read."""
    if width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        data = ints.astype(np.float32) / 8_388_608.0
    elif width == 4:
        data = (np.frombuffer(raw, "<i4").astype(np.float64) / 2_147_483_648.0).astype(np.float32)
    else:
        return None
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1).astype(np.float32)
    return data


def _parse_wav_stream(blob: bytes) -> tuple[np.ndarray, int]:
    """Parse the float32 WAV ffmpeg writes to a pipe (its size fields may be placeholders)."""
    if blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise AudioFileError("ffmpeg did not produce WAV output.")
    pos, rate = 12, 0
    while pos + 8 <= len(blob):
        cid, size = blob[pos : pos + 4], struct.unpack("<I", blob[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            rate = struct.unpack("<I", blob[pos + 12 : pos + 16])[0]
        elif cid == b"data":
            body = blob[pos + 8 :]
            if size not in (0, 0xFFFFFFFF) and size <= len(body):
                body = body[:size]
            body = body[: len(body) // 4 * 4]
            return np.frombuffer(body, "<f4").copy(), rate
        pos += 8 + size + (size & 1)
    raise AudioFileError("ffmpeg output has no audio data.")


def read_audio(path: str | os.PathLike, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode any file ffmpeg reads to mono float32 at its own rate (or ``sample_rate`` if given)."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    if path.suffix.lower() in (".wav", ".wave"):
        got = _read_wav_stdlib(path)
        if got is not None:
            samples, rate = got
            if sample_rate and sample_rate != rate:
                samples, rate = resample(samples, rate, sample_rate).astype(np.float32), int(sample_rate)
            return samples, rate
    ffmpeg = require_tool("ffmpeg", f"decode {path.name}")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn", "-ac", "1"]
    if sample_rate:
        cmd += ["-ar", str(int(sample_rate))]
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = msg[-1] if msg else f"exit status {proc.returncode}"
        raise AudioFileError(f"{path} cannot be decoded as audio ({detail}). Is it an audio file?")
    samples, rate = _parse_wav_stream(proc.stdout)
    if rate <= 0:
        raise AudioFileError(f"{path}: ffmpeg reported no sample rate.")
    return samples, rate


def probe(path: str | os.PathLike) -> dict[str, Any]:
    """ffprobe's JSON description (format and streams, with their tags)."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    ffprobe = require_tool("ffprobe", f"read the tags of {path.name}")
    proc = subprocess.run(
        [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
        raise AudioFileError(f"ffprobe cannot read {path} ({detail}). Is it an audio file?")
    try:
        return json.loads(proc.stdout.decode("utf-8", errors="replace") or "{}")
    except json.JSONDecodeError as exc:
        raise AudioFileError(f"ffprobe returned unreadable output for {path} ({exc}).") from exc


def probe_tags(path: str | os.PathLike) -> dict[str, str]:
    """All container and stream tags ffprobe sees, keys as written (OGG keeps them on the stream)."""
    info = probe(path)
    tags: dict[str, str] = {}
    for stream in info.get("streams") or []:
        tags.update(stream.get("tags") or {})
    tags.update((info.get("format") or {}).get("tags") or {})
    return tags


def riff_chunk(cid: bytes, body: bytes) -> bytes:
    """One RIFF chunk, padded to an even length as the format requires."""
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def pcm16(samples: np.ndarray) -> bytes:
    """Little-endian 16-bit PCM, scaled by 32768 so that decoding (/32768) and re-encoding is lossless."""
    ints = np.round(np.asarray(samples, np.float64) * 32768.0)
    return np.clip(ints, -32768, 32767).astype("<i2").tobytes()


def wav_bytes(samples: np.ndarray, sample_rate: int, chunks: list[bytes] | tuple[bytes, ...] = ()) -> bytes:
    """16-bit mono WAV; extra ``chunks`` (already RIFF-framed) sit between ``fmt`` and ``data``."""
    fmt = struct.pack("<HHIIHH", 1, 1, int(sample_rate), int(sample_rate) * 2, 2, 16)
    body = b"WAVE" + riff_chunk(b"fmt ", fmt) + b"".join(chunks) + riff_chunk(b"data", pcm16(samples))
    return b"RIFF" + struct.pack("<I", len(body)) + body


class AudioTooLongError(AudioFileError):
    """A recording is longer than an operation reads at once."""


def _range_error(path: Path, start_s: float, end_s: float | None) -> AudioFileError | None:
    if start_s < 0 or (end_s is not None and end_s <= start_s):
        return AudioFileError(f"{path.name}: the range start {start_s} s .. end {end_s} s is empty or negative; "
                              "give 0 <= start < end in seconds.")
    return None


def read_audio_range(path: str | os.PathLike, start_s: float | None = None, end_s: float | None = None, *,
                     max_s: float | None = None) -> tuple[np.ndarray, int, float | None]:
    """Decode only ``[start_s, end_s)`` of a file, mono float32 at its own rate, and never more than ``max_s``
    seconds: memory follows the range, not the file, so an hours-long file costs what its range costs.

    Plain PCM WAV is read from the right offset with the standard library (its length is known at once);
    other formats go through ffmpeg with ``-ss``/``-t``, reading at most ``max_s`` seconds and a frame.
    Returns (samples, rate, the whole file's duration in seconds, or None where only ffmpeg knows it).
    Raises :class:`AudioTooLongError` when the range, or the file without one, is longer than ``max_s``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    lo = float(start_s or 0.0)
    bad = _range_error(path, lo, end_s)
    if bad is not None:
        raise bad
    if path.suffix.lower() in (".wav", ".wave"):
        got = _read_wav_range(path, lo, end_s, max_s)
        if got is not None:
            return got
    want = None if end_s is None else float(end_s) - lo
    if max_s is not None and want is not None and want > max_s:
        raise AudioTooLongError(_too_long(path, None, lo, end_s, max_s))
    ffmpeg = require_tool("ffmpeg", f"decode {path.name}")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    if lo > 0:
        cmd += ["-ss", f"{lo:.6f}"]
    cmd += ["-i", str(path), "-vn", "-ac", "1"]
    if want is not None:
        cmd += ["-t", f"{want:.6f}"]
    elif max_s is not None:
        cmd += ["-t", f"{max_s + 0.05:.6f}"]  # a little over the limit tells "exactly max_s" from "longer"
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        detail = msg[-1] if msg else f"exit status {proc.returncode}"
        raise AudioFileError(f"{path} cannot be decoded as audio ({detail}). Is it an audio file?")
    samples, rate = _parse_wav_stream(proc.stdout)
    if rate <= 0:
        raise AudioFileError(f"{path}: ffmpeg reported no sample rate.")
    if want is None and max_s is not None and len(samples) > round(max_s * rate):
        raise AudioTooLongError(_too_long(path, None, lo, end_s, max_s))
    if want is not None:
        samples = samples[: round(want * rate)]
    return samples, rate, None


def _too_long(path: Path, total: float | None, lo: float, end_s: float | None, max_s: float) -> str:
    what = f"The range {lo:g}..{end_s:g} s of {path.name}" if end_s is not None else (
        f"{path.name} ({total:.0f} s{' from ' + format(lo, 'g') + ' s' if lo else ''})" if total is not None
        else f"{path.name}{' from ' + format(lo, 'g') + ' s' if lo else ''}")
    return (f"{what} is longer than {max_s:g} s, more than is read at once. Choose a shorter range with "
            f"start/end (in seconds; only that range is read), or cut the file first.")


def _read_wav_range(path: Path, lo: float, end_s: float | None,
                    max_s: float | None) -> tuple[np.ndarray, int, float] | None:
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate, n = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
            if width not in (2, 3, 4) or rate <= 0:
                return None
            total = n / rate
            if lo >= total:
                raise AudioFileError(f"{path.name} lasts {total:.2f} s; start {lo:g} s is past its end.")
            hi = total if end_s is None else min(float(end_s), total)
            if max_s is not None and hi - lo > max_s + 1.0 / rate:
                raise AudioTooLongError(_too_long(path, total, lo, end_s, max_s))
            first = int(round(lo * rate))
            w.setpos(first)
            raw = w.readframes(max(0, int(round(hi * rate)) - first))
    except (wave.Error, EOFError, struct.error):
        return None
    data = _decode_pcm(raw, width, channels)
    return None if data is None else (data, rate, total)
