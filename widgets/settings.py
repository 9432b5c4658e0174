"""The studio's settings: which stage each belongs to, their defaults, and how a typed value is checked.

Apart from the session so that the rules a setting obeys (its stage, its default, its form for the
core, what makes it invalid) sit in one place that the session, its takes and the widget all read;
the studio's own exceptions live here too, since every one of those modules raises them.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from bark_core import BarkError
from bark_core import constants as C

STAGES: tuple[str, ...] = ("semantic", "coarse", "fine", "decode", "label")
TITLES: dict[str, str] = {"semantic": "Semantic", "coarse": "Coarse", "fine": "Fine", "decode": "Decode",
                          "label": "Label"}
# which weights a stage needs, to announce loads and downloads before they happen
MODEL_OF: dict[str, str | None] = {"semantic": "text", "coarse": "coarse", "fine": "fine", "decode": "codec",
                                   "label": None}
MODEL_KEYS: tuple[str, ...] = ("models", "size", "device", "dtype", "decoder", "offload")
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "semantic": ("text", "voice", "semantic_temp", "semantic_top_k", "semantic_top_p", "min_eos_p",
                 "max_gen_duration_s", "allow_early_stop", "semantic_seed"),
    "coarse": ("coarse_temp", "coarse_top_k", "coarse_top_p", "max_coarse_history", "sliding_window_len",
               "coarse_seed"),
    "fine": ("fine_temp", "fine_seed"),
    "decode": (),
    "label": ("include_text", "watermark_key"),
}
# settings that change what is shown, not what a stage makes: they never mark anything stale
EXTRA_KEYS: tuple[str, ...] = ("preview",)
SEEDED: tuple[str, ...] = ("semantic", "coarse", "fine")
MAX_SEED = 2**63 - 1

DEFAULTS: dict[str, Any] = {
    "models": "suno", "size": "large", "device": "auto", "dtype": "auto", "decoder": "auto", "offload": False,
    "text": "Hello there! [laughs] This is Bark, stage by stage.", "voice": None,
    "semantic_temp": C.DEFAULT_SEMANTIC_TEMP, "semantic_top_k": None, "semantic_top_p": None,
    "min_eos_p": C.DEFAULT_MIN_EOS_P, "max_gen_duration_s": None, "allow_early_stop": True, "semantic_seed": 0,
    "coarse_temp": C.DEFAULT_COARSE_TEMP, "coarse_top_k": None, "coarse_top_p": None,
    "max_coarse_history": C.MAX_COARSE_HISTORY, "sliding_window_len": C.SLIDING_WINDOW_LEN, "coarse_seed": 0,
    "fine_temp": C.DEFAULT_FINE_TEMP, "fine_seed": 0,
    "include_text": False, "watermark_key": "default", "preview": True,
}


class StudioError(BarkError, ValueError):
    """A studio request cannot be carried out as asked (unknown setting, nothing to save, busy, ...)."""


class RunCancelled(BarkError):
    """The user pressed Cancel; raised from the core's progress callback to stop the stage at once."""


def stage_seeds(seed: int) -> dict[str, int]:
    """The per-stage seeds ``bark_core.generate(seed=...)`` derives, so a studio take can be redone there."""
    from bark_core import derive_seed

    return {f"{s}_seed": derive_seed(int(seed), s) for s in SEEDED}


def random_seed() -> int:
    """A fresh seed for the dice buttons; kept below 2**31 so it is short to read and to type."""
    return secrets.randbelow(2**31)


def error_message(exc: BaseException) -> str:
    """What a person should read: the core's message for its own errors, one line for anything else."""
    if isinstance(exc, BarkError | ValueError):
        return str(exc) or type(exc).__name__
    text = str(exc).strip().splitlines()  # the reason itself: a notebook user has no log to look in
    return f"Unexpected {type(exc).__name__}: {text[0] if text else 'no message'}"


def _check_stage(stage: str, allowed: tuple[str, ...] = STAGES) -> str:
    if stage not in allowed:
        raise StudioError(f"Unknown stage {stage!r}; use one of {', '.join(allowed)}.")
    return stage


def _seed(value: Any, name: str) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise StudioError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {value!r}.")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise StudioError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {value!r}.")
    return int(value)


_OPTIONAL_FLOATS = {"semantic_temp", "coarse_temp", "fine_temp", "semantic_top_p", "coarse_top_p", "min_eos_p",
                    "max_gen_duration_s"}
_OPTIONAL_INTS = {"semantic_top_k", "coarse_top_k"}
_INTS = {"max_coarse_history", "sliding_window_len"}
_BOOLS = {"allow_early_stop", "include_text", "preview", "offload"}


def precision_choices() -> tuple[str, ...]:
    """The precisions ``BarkModels`` takes, read from the core so that new ones appear here by themselves."""
    from bark_core.models import PRECISION_NAMES

    return tuple(PRECISION_NAMES)


def decoder_choices() -> tuple[str, ...]:
    """The decode loops ``BarkModels(decoder=...)`` takes, read from the core."""
    from bark_core.sampling import DECODERS

    return tuple(DECODERS)


_CHOICES = {"size": ("large", "small"), "device": ("auto", "cpu", "cuda", "mps")}


def _coerce(key: str, value: Any) -> Any:
    """Settings in the form the core takes; 0 means "off" (None) for the optional numbers, as in the UI."""
    if key.endswith("_seed"):
        return _seed(value, key)
    if key in _OPTIONAL_FLOATS:
        if value is None or value == 0:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise StudioError(f"{key} must be a number (0 for off), got {value!r}.") from None
        if value < 0:
            raise StudioError(f"{key} must not be negative, got {value}.")
        return value
    if key in _OPTIONAL_INTS | _INTS:
        if key in _OPTIONAL_INTS and (value is None or value == 0):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 0:
            raise StudioError(f"{key} must be a whole number, got {value!r}.")
        return int(value)
    if key in _BOOLS:
        return bool(value)
    if key in ("dtype", "decoder"):
        choices = precision_choices() if key == "dtype" else decoder_choices()
        if str(value) not in choices:
            raise StudioError(f"{key} must be one of {', '.join(choices)}, got {str(value)!r:.40}.")
        return str(value)
    if key in _CHOICES:
        value = str(value)
        if value not in _CHOICES[key] and not (key == "device" and value.startswith(("cuda:", "mps:"))):
            raise StudioError(f"{key} must be one of {', '.join(_CHOICES[key])}, got {value!r}.")
        return value
    if key == "models":
        value = os.fspath(value).strip() if value is not None else ""
        if not value:
            raise StudioError("models must name a model source: 'suno', a hub repo id or a folder.")
        return value
    if key == "voice":
        if value in (None, "", "none"):
            return None
        if hasattr(value, "fine"):  # a Voice object: keep it as a custom voice
            raise StudioError("Pass voices by name or path; add Voice objects with add_voice().")
        return os.fspath(value)
    if key == "text":
        return "" if value is None else str(value)
    return value
