"""Reading any audio file into float32 samples, and the resampling every label tool shares.

Detection has to work on whatever a user found (an MP3 from a chat app, a 44.1 kHz FLAC, an OGG),
so decoding goes through ffmpeg; plain PCM WAV files are read with the standard library so the
most common case works even where ffmpeg is not installed.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

from . import limits
from .errors import BarkError, ParameterError
from .fileio import as_path

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
    rate_from = limits.sample_rate(rate_from, "the rate to resample from")
    rate_to = limits.sample_rate(rate_to, "the rate to resample to")
    x = np.asarray(samples, dtype=np.float64)
    if rate_from == rate_to:
        return x
    if x.size * rate_to / rate_from > limits.MAX_EXPORT_SAMPLES:
        raise ParameterError(
            f"Resampling {x.size:,} samples from {rate_from} Hz to {rate_to} Hz would make "
            f"{int(x.size * rate_to / rate_from):,}, over the limit of {limits.MAX_EXPORT_SAMPLES:,}. "
            "Use a lower rate or a shorter clip.")
    from scipy.signal import resample_poly

    g = math.gcd(rate_from, rate_to)
    return resample_poly(x, rate_to // g, rate_from // g)


def _wav_header(path: Path) -> tuple[int, int, int, int] | None:
    """(sample width, channels, rate, frames actually present) of an integer PCM WAV, or None for other files.

    The frame count is what the file holds, not what its header claims, and the rate must be a real
    audio rate: a header is not trusted with sizes.
    """
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate, claimed = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.getnframes()
            data_start = int(getattr(getattr(w, "_data_chunk", None), "offset", 44))  # where the samples begin
    except (wave.Error, EOFError, struct.error, ValueError, OverflowError):
        return None
    except OSError as exc:
        raise AudioFileError(f"{path} cannot be read ({exc.strerror or exc}). Check the path and its permissions.") \
            from None
    if width not in (2, 3, 4):
        return None
    if not 1 <= channels <= 64:
        raise AudioFileError(f"{path}: its header says {channels} channels; audio has 1 to 64. The file is damaged.")
    limits.sample_rate(rate, f"{path}: the sample rate in its header", error=AudioFileError)
    present = max(0, path.stat().st_size - data_start) // (width * channels)
    return width, channels, rate, min(claimed, present)


def _decode_pcm(raw: bytes, width: int, channels: int) -> np.ndarray | None:
    """Little-endian integer PCM frames -> mono float32 in [-1, 1); None for widths we do not read."""
    return _pcm_to_float(raw, width, channels) if width in (2, 3, 4) else None


def _pcm_to_float(raw: bytes, width: int, channels: int) -> np.ndarray:
    raw = raw[: len(raw) // (width * channels) * (width * channels)]  # odd byte counts: whole frames only
    if width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        data = ints.astype(np.float32) / 8_388_608.0
    else:
        data = (np.frombuffer(raw, "<i4").astype(np.float64) / 2_147_483_648.0).astype(np.float32)
    if channels > 1:
        data = data[: len(data) // channels * channels].reshape(-1, channels).mean(axis=1).astype(np.float32)
    return data


class AudioTooLongError(AudioFileError):
    """An audio file is longer than what an operation reads into memory (see bark_core.limits)."""


def _too_long(path: Path, seconds: float, samples: int | None, max_seconds: float, max_samples: int,
              at_least: bool = False) -> AudioFileError:
    more = "at least " if at_least else ""
    count = "" if samples is None else f" ({more}{samples:,} samples)"
    return AudioTooLongError(
        f"{path} lasts {more}{seconds / 60:.1f} min{count}; at most {max_seconds / 60:g} min and "
        f"{max_samples:,} samples ({max_samples / 24_000 / 60:g} min at 24 kHz) are read into memory. Split it "
        "(e.g. ffmpeg -i in.flac -f segment -segment_time 300 part%03d.flac) and process the parts; "
        "bark-core detect reads long files in blocks.")


def _read_wav_stdlib(path: Path, max_seconds: float, max_samples: int) -> tuple[np.ndarray, int] | None:
    """16/24/32-bit integer PCM WAV without ffmpeg; None when the file needs a real decoder."""
    head = _wav_header(path)
    if head is None:
        return None
    width, channels, rate, frames = head
    if frames > max_samples or frames > max_seconds * rate:
        raise _too_long(path, frames / rate, frames, max_seconds, max_samples)
    try:
        with wave.open(str(path), "rb") as w:
            raw = w.readframes(frames)
    except (wave.Error, EOFError, struct.error, ValueError) as exc:
        raise AudioFileError(f"{path} cannot be read as WAV ({exc}). The file is damaged.") from None
    return _pcm_to_float(raw, width, channels), rate


def _wav_stream_header(read: Any) -> tuple[int, bytes]:
    """(sample rate, first audio bytes) from the float32 WAV ffmpeg writes to a pipe (sizes may be placeholders)."""
    buf = b""
    pos, rate = 12, 0
    while len(buf) < 1 << 20:
        chunk = read(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) < 12:
            continue
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise AudioFileError("ffmpeg did not produce WAV output.")
        while pos + 8 <= len(buf):
            cid, size = buf[pos : pos + 4], struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
            if cid == b"data":
                return rate, buf[pos + 8 :]
            if cid == b"fmt ":
                if pos + 16 > len(buf):
                    break
                rate = struct.unpack("<I", buf[pos + 12 : pos + 16])[0]
            pos += 8 + size + (size & 1)
    raise AudioFileError("ffmpeg output has no audio data.")


def parse_pipe_wav(blob: bytes) -> tuple[np.ndarray, int]:
    """(float32 samples, rate) from the float32 WAV ffmpeg writes to a pipe, whose size fields may be placeholders."""
    stream = io.BytesIO(blob)
    rate, head = _wav_stream_header(stream.read)
    body = head + stream.read()
    return np.frombuffer(body[: len(body) // 4 * 4], "<f4").copy(), rate


def _ffmpeg_error(path: Path, err: Any, returncode: int | None) -> AudioFileError:
    err.seek(0)
    msg = err.read().decode(errors="replace").strip().splitlines()
    detail = msg[-1][:200] if msg else f"exit status {returncode}"
    return AudioFileError(f"{path} cannot be decoded as audio ({detail}). Is it an audio file?")


def _ffmpeg_stream(path: Path, sample_rate: int | None, block: int, max_samples: int, on_limit: Any) -> Any:
    """Yield (rate, float32 block) from ffmpeg decoding ``path`` to mono; ``on_limit(n, rate)`` raises when too long."""
    ffmpeg = require_tool("ffmpeg", f"decode {path.name}")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-vn", "-ac", "1"]
    if sample_rate:
        cmd += ["-ar", str(int(sample_rate))]
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    with tempfile.TemporaryFile() as err, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err) as proc:
        assert proc.stdout is not None
        try:
            try:
                rate, pending = _wav_stream_header(proc.stdout.read)
            except AudioFileError:
                proc.wait()
                raise _ffmpeg_error(path, err, proc.returncode) from None
            if rate:
                limits.sample_rate(rate, f"{path}: its sample rate", error=AudioFileError)
            total = 0
            done = False
            while not done or len(pending) >= 4:
                want = block * 4 - len(pending)
                if want > 0:
                    more = proc.stdout.read(want)
                    done = not more
                    pending += more
                n = min(len(pending) // 4, block)
                if n and (n == block or done):
                    total += n
                    if total > max_samples:
                        on_limit(total, rate)
                    yield rate, np.frombuffer(pending[: n * 4], "<f4").copy()
                    pending = pending[n * 4 :]
        except BaseException:
            proc.kill()  # too long, refused, or the caller stopped reading: ffmpeg must not run on
            raise
        if proc.wait() != 0:
            raise _ffmpeg_error(path, err, proc.returncode)


def read_audio(path: str | os.PathLike, sample_rate: int | None = None, *, max_seconds: float | None = None,
               max_samples: int | None = None) -> tuple[np.ndarray, int]:
    """Decode any file ffmpeg reads to mono float32 at its own rate (or ``sample_rate`` if given).

    At most ``max_seconds`` and ``max_samples`` are read (10 min, 14.4 M samples by default): decoding
    stops with :class:`AudioFileError` as soon as a file turns out longer, whatever its header says.
    """
    path = as_path(path, AudioFileError)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    max_seconds = limits.MAX_FILE_AUDIO_S if max_seconds is None else max_seconds
    max_samples = limits.MAX_AUDIO_SAMPLES if max_samples is None else max_samples
    if sample_rate:
        sample_rate = limits.sample_rate(sample_rate)
    if path.suffix.lower() in (".wav", ".wave"):
        got = _read_wav_stdlib(path, max_seconds, max_samples)
        if got is not None:
            samples, rate = got
            if sample_rate and sample_rate != rate:
                if samples.size * sample_rate / rate > max_samples:
                    raise _too_long(path, samples.size / rate, int(samples.size * sample_rate / rate), max_seconds,
                                    max_samples)
                samples, rate = resample(samples, rate, sample_rate).astype(np.float32), int(sample_rate)
            return samples, rate

    def too_long(n: int, rate: int) -> None:
        raise _too_long(path, n / max(rate, 1), n, max_seconds, max_samples, at_least=True)

    claimed = audio_duration(path)  # a header's word is enough to refuse at once; a lie is caught while decoding
    if claimed is not None and claimed > max_seconds + 1.0:
        raise _too_long(path, claimed, None, max_seconds, max_samples)
    parts: list[np.ndarray] = []
    rate = 0
    for rate, block in _ffmpeg_stream(path, sample_rate, 1 << 20, max_samples, too_long):
        parts.append(block)
        n = sum(p.size for p in parts)
        if rate and n > max_seconds * rate:
            too_long(n, rate)
    samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if rate <= 0:
        raise AudioFileError(f"{path}: ffmpeg reported no sample rate.")
    if samples.size == 0:
        raise AudioFileError(f"{path} holds no audio samples. Is it an audio file?")
    return samples, rate


def stream_audio(path: str | os.PathLike, sample_rate: int, block: int, *, max_seconds: float | None = None) -> Any:
    """Yield float32 mono blocks of ``block`` samples at ``sample_rate``, for files too long to hold in memory.

    Integer PCM WAV is read with the standard library (each block resampled on its own); anything
    else is decoded and resampled by ffmpeg. Stops with :class:`AudioFileError` past ``max_seconds``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"No audio file at {path}. Check the path.")
    sample_rate = limits.sample_rate(sample_rate)
    max_seconds = limits.MAX_DETECT_S if max_seconds is None else max_seconds
    max_samples = int(max_seconds * sample_rate)
    head = _wav_header(path) if path.suffix.lower() in (".wav", ".wave") else None
    if head is not None:
        width, channels, rate, frames = head
        if frames / rate > max_seconds:
            raise _too_long(path, frames / rate, frames, max_seconds, max_samples)
        down = rate // math.gcd(rate, sample_rate)  # whole resampling periods: no drift between blocks
        per = max(down, int(block * rate / sample_rate) // down * down)
        with wave.open(str(path), "rb") as w:
            left = frames
            while left > 0:
                raw = w.readframes(min(per, left))
                if not raw:
                    break
                left -= len(raw) // (width * channels)
                x = _pcm_to_float(raw, width, channels)
                yield x if rate == sample_rate else resample(x, rate, sample_rate).astype(np.float32)
        return

    def too_long(n: int, rate: int) -> None:
        raise _too_long(path, n / sample_rate, n, max_seconds, max_samples, at_least=True)

    for _rate, x in _ffmpeg_stream(path, sample_rate, block, max_samples, too_long):
        yield x


def audio_duration(path: str | os.PathLike) -> float | None:
    """Seconds of audio in a file, from its header (WAV) or ffprobe, without decoding; None when unknown."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() in (".wav", ".wave"):
        head = _wav_header(path)
        if head is not None:
            return head[3] / head[2]
    if find_tool("ffprobe") is None:
        return None
    try:
        value = float((probe(path).get("format") or {}).get("duration") or "nan")
    except (AudioFileError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


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
        raise AudioTooLongError(_range_too_long(path, None, lo, end_s, max_s))
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
    samples, rate = parse_pipe_wav(proc.stdout)
    if rate <= 0:
        raise AudioFileError(f"{path}: ffmpeg reported no sample rate.")
    if want is None and max_s is not None and len(samples) > round(max_s * rate):
        raise AudioTooLongError(_range_too_long(path, None, lo, end_s, max_s))
    if want is not None:
        samples = samples[: round(want * rate)]
    return samples, rate, None


def _range_too_long(path: Path, total: float | None, lo: float, end_s: float | None, max_s: float) -> str:
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
                raise AudioTooLongError(_range_too_long(path, total, lo, end_s, max_s))
            first = int(round(lo * rate))
            w.setpos(first)
            raw = w.readframes(max(0, int(round(hi * rate)) - first))
    except (wave.Error, EOFError, struct.error):
        return None
    data = _decode_pcm(raw, width, channels)
    return None if data is None else (data, rate, total)
