"""Every limit on what bark_core accepts from outside, and the checks that apply them, in one place.

Hostile or damaged input must fail with one clear error before it costs memory or time: a 700 kB FLAC
that decodes to 90 minutes, an ``.npz`` member that unpacks to gigabytes, a WAV header claiming
2**31 Hz, a checkpoint asking for 50 million positions, a temperature of NaN. The numbers below are
stated in the README ("Limits") and sized so each operation stays well under 1 GB of memory on top of
the loaded models. They are far above what Bark itself produces: one generation is at most 768
semantic tokens (about 15 s) and long-form text works chunk by chunk.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from . import constants as C
from .errors import BarkError, ParameterError

# ---- audio ---------------------------------------------------------------------------------------
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
#: audio decoded from a file into memory (check, label, voice from audio, Load Audio in the nodes)
MAX_FILE_AUDIO_S = 600.0
MAX_AUDIO_SAMPLES = int(MAX_FILE_AUDIO_S * C.SAMPLE_RATE)  # 14.4 M samples: 10 min at 24 kHz, 5 min at 48 kHz
#: detect() streams the file in blocks, so it takes far longer files
MAX_DETECT_S = 6 * 3600.0
#: resampling or exporting may not grow audio beyond this many samples
MAX_EXPORT_SAMPLES = 4 * MAX_AUDIO_SAMPLES

# ---- stage inputs (time and memory grow with length) ---------------------------------------------
MAX_STAGE_S = 30.0  # twice the longest single Bark generation
MAX_SEMANTIC_INPUT = int(MAX_STAGE_S * C.SEMANTIC_RATE_HZ)  # 1,497 tokens into the coarse stage
MAX_CODE_FRAMES = int(MAX_STAGE_S * C.COARSE_RATE_HZ)  # 2,250 frames into the fine stage, decode, preview
MAX_TEXT_CHARS = 100_000  # one generation (only 256 tokens are used); long-form: 10x
MAX_LONG_TEXT_CHARS = 1_000_000

# ---- files ---------------------------------------------------------------------------------------
MAX_ARTIFACT_FRAMES = 3600 * 75  # an hour of codes (semantic: an hour at 49.9 Hz)
MAX_ARTIFACT_AUDIO_SAMPLES = 4 * MAX_AUDIO_SAMPLES  # 40 min at 24 kHz as float32 (230 MB)
MAX_VOICE_FRAMES = 600 * 75  # ten minutes of prompt; the stages use the last 630 / 512 frames
MAX_HEADER_BYTES = 4 * 1024**2  # JSON headers of artifacts, voices, reviews, labels, manifests
MAX_JSON_DEPTH = 32
MAX_REVIEW_FILE_BYTES = 4 * 1024**2

# ---- sampling settings ---------------------------------------------------------------------------
MAX_SEED = C.MAX_SEED  # one rule for every entry point: 0..2**64-1 (see constants)
MAX_TOP_K = 1_000_000


def number(name: str, value: Any, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           integer: bool = False, allow_none: bool = False, error: type[BarkError] = ParameterError,
           hint: str = "") -> Any:
    """``value`` as a finite int/float in range, or ``error`` naming ``name``, the range and ``hint``.

    Refuses bools, strings, NaN and infinities: a setting of NaN is a bug upstream, never a request.
    """
    if value is None:
        if allow_none:
            return None
        raise error(f"{name} must be a number, got None.{(' ' + hint) if hint else ''}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number, got {type(value).__name__} {value!r:.40}.{(' ' + hint) if hint else ''}")
    if integer:
        if isinstance(value, numbers.Integral):
            out: Any = int(value)
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            out = int(value)
        else:
            raise error(f"{name} must be a whole number, got {value!r}.{(' ' + hint) if hint else ''}")
    else:
        out = float(value)
        if not math.isfinite(out):
            raise error(f"{name} must be a finite number, got {value!r}.{(' ' + hint) if hint else ''}")
    below = lo is not None and (out <= lo if lo_open else out < lo)
    if below or (hi is not None and out > hi):
        def show(v: float) -> str:
            return f"{v:,}" if isinstance(v, int) else f"{v:g}"

        lo_txt = "" if lo is None else (f"> {show(lo)}" if lo_open else f">= {show(lo)}")
        hi_txt = "" if hi is None else f"<= {show(hi)}"
        rng = " and ".join(t for t in (lo_txt, hi_txt) if t)
        raise error(f"{name} must be {rng}, got {value!r}.{(' ' + hint) if hint else ''}")
    return out


def sample_rate(value: Any, what: str = "sample_rate", *, error: type[BarkError] = ParameterError) -> int:
    """A sample rate in Hz within :data:`MIN_SAMPLE_RATE` .. :data:`MAX_SAMPLE_RATE`."""
    return number(what, value, lo=MIN_SAMPLE_RATE, hi=MAX_SAMPLE_RATE, integer=True, error=error,
                  hint="Audio rates are between 1 kHz and 384 kHz (Bark makes 24 kHz).")


def sampling_settings(temp: Any = None, top_k: Any = None, top_p: Any = None, *, temp_name: str = "temp") -> None:
    """The shared checks of ``temp`` (> 0 or None for argmax), ``top_k`` (>= 1) and ``top_p`` (0 < p <= 1)."""
    number(temp_name, temp, lo=0.0, lo_open=True, hi=100.0, allow_none=True,
           hint="Use a temperature such as 0.7, or None for the most likely token.")
    number("top_k", top_k, lo=1, hi=MAX_TOP_K, integer=True, allow_none=True,
           hint="top_k keeps the k most likely tokens: use None for no limit, or 1 or more.")
    number("top_p", top_p, lo=0.0, lo_open=True, hi=1.0, allow_none=True,
           hint="top_p keeps the most likely tokens up to that probability mass: use None or 0 < p <= 1.")


def seed_value(seed: Any) -> None:
    """Refuse seeds a generator cannot take (negative, over 63 bits, not an int); None and Generators pass."""
    if seed is None or type(seed).__name__ == "Generator":
        return
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= C.MAX_SEED:
        raise ParameterError(f"seed must be a whole number from 0 to {C.MAX_SEED} (or a torch.Generator), "
                             f"got {seed!r:.40}. Pass None for a random seed that is recorded and printed.")


def text(value: Any, name: str = "text", *, max_chars: int = MAX_TEXT_CHARS, error: type[BarkError] = ParameterError,
         allow_none: bool = False) -> str | None:
    """A Python string that can be encoded (no lone surrogates) and is not absurdly long."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise error(f"{name} must be a string, got {type(value).__name__}. Pass the words as str.")
    if len(value) > max_chars:
        raise error(f"{name} has {len(value):,} characters; at most {max_chars:,} are accepted. "
                    "Split it (long-form generation splits text into sentences for you).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise error(f"{name} holds a character that is not valid Unicode text (a lone surrogate such as "
                    f"{value[exc.start]!r} at position {exc.start}); it often comes from mis-decoded bytes. "
                    "Remove it, or decode the source text with the right encoding.") from None
    return value


def loads_json(blob: str | bytes, what: str, *, error: type[BarkError], max_bytes: int = MAX_HEADER_BYTES,
               max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON header that came from a file: bounded size and nesting, one typed error otherwise."""
    if len(blob) > max_bytes:
        raise error(f"The {what} is {len(blob):,} bytes; at most {max_bytes:,} are accepted. The file is damaged "
                    "or was not written by bark_core.")
    try:
        data = json.loads(blob)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise error(f"The {what} is not valid JSON ({type(exc).__name__}: {str(exc)[:120]}). The file is damaged "
                    "or was not written by bark_core.") from None
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise error(f"The {what} nests deeper than {max_depth} levels; bark_core never writes that. The file "
                        "is damaged or was not written by bark_core.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return data
