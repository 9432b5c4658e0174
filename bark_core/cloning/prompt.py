"""Which part of a recording becomes the voice prompt, and what a listener should know about it.

Bark continues its prompt: a prompt that starts or stops mid-word makes it finish that word, and silence
or noise in the prompt turns into silence or noise in the take. So the prompt is cut like an editor
would cut it: silence trimmed off both ends, whole phrases only (a phrase ends at a pause of at least
:data:`~bark_core.quality.thresholds.PAUSE_MIN_S`), at most ``max_s`` seconds, choosing the window that
holds the most speech. Where is speech is decided by the quality checks' own activity detector, and the
recording's problems (clipping, noise, hum, not speech...) by the quality checks themselves.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from .. import constants as C
from ..artifacts import Audio, Provenance
from ..quality import check
from ..quality.report import Flag
from ..quality.signal import activity
from ..quality.thresholds import PAUSE_MIN_S, SILENT_PEAK_DBFS
from .recording import RecordingError

DEFAULT_PROMPT_S = C.CLONE_PROMPT_S
MAX_PROMPT_S = 30.0  # Bark reads at most ~10 s of history; HuBERT's attention memory grows with length squared
EDGE_S = 0.1  # silence kept before the first and after the last sound, so no onset or decay is cut
MIN_SPEECH_S = 1.0  # less sound than this is not a voice
SHORT_SPEECH_S = 4.0  # under this the voice is usable but thin (the quantizer's author suggests 5-10 s)
CUT_S = 0.005  # sound in the first or last 5 ms block: the recording was cut mid-sound there

# Quality flags that matter for a voice prompt, with what they mean for the clone.
ADVICE = {
    "clipping": "The recording is clipped; the voice will copy the distortion. Record again with lower gain.",
    "dc_offset": "The recording has a DC offset; remove it (high-pass filter) for a cleaner voice.",
    "low_snr": "The speech stands little above background noise; the voice will copy the noise. Use a cleaner "
               "recording or denoise it first.",
    "noise_floor": "The pauses are noisy; the voice will copy the background. Use a cleaner recording.",
    "hiss": "The pauses hold broadband hiss; the voice will copy it. Denoise the recording first.",
    "hum": "The recording carries mains hum; the voice will copy it. Remove it with a notch filter.",
    "not_speech": "This does not sound like speech; the quantizer was trained on speech, so the semantic prompt "
                  "will be meaningless. Use a recording of one person speaking.",
    "maybe_not_speech": "The spectrum is as flat as noise's; check that the recording is clear speech.",
    "maybe_music": "This sounds pitched like music or singing; the voice may sing or hum. Use plain speech.",
    "too_quiet": "The recording is very quiet; raise its level for a better voice.",
    "too_loud": "The recording is very loud (likely compressed or clipped).",
    "abrupt_end": "The prompt ends mid-sound; Bark tends to continue it. Choose end_s at a pause.",
    "long_pause": "The prompt holds a long pause; Bark may copy it. Choose a range without it.",
    "low_activity": "The prompt is mostly silence; choose a range with more speech.",
}


class RecordingWarning(UserWarning):
    """A recording can become a voice, but something about it will show in every take made with it."""


@dataclass
class PromptSelection:
    """The chosen prompt, in seconds within the recording handed in, and how it was chosen."""

    start_s: float
    end_s: float
    speech_s: float
    phrases: int
    whole_phrases: bool
    trimmed: bool

    def to_dict(self) -> dict[str, float | int | bool]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _phrases(regions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sound regions joined across gaps shorter than a pause: what a listener hears as phrases."""
    out: list[tuple[float, float]] = []
    for a, b in ((float(a), float(b)) for a, b in regions):
        if out and a - out[-1][1] < PAUSE_MIN_S:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _speech_in(phrases: list[tuple[float, float]], lo: float, hi: float) -> float:
    return sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in phrases)


def select_prompt(samples: np.ndarray, sample_rate: int, *, max_s: float = DEFAULT_PROMPT_S,
                  trim: bool = True) -> PromptSelection:
    """The stretch of ``samples`` to use as the voice prompt (see the module's docstring).

    Windows of whole phrases that fit in ``max_s`` are preferred, the one with the most speech first
    (the earliest among equals), leaving out phrases cut by either end of the recording while the rest
    hold at least a second of speech. When no pause falls within ``max_s`` the window ends at a phrase's end
    and starts mid-phrase (``whole_phrases`` False): Bark reads a prompt's end most. ``trim=False`` keeps
    the recording as given, cut only to its last ``max_s`` seconds. Silence raises :class:`RecordingError`.
    """
    if not 0 < max_s <= MAX_PROMPT_S:
        raise RecordingError(f"max_seconds={max_s}: give a prompt length of up to {MAX_PROMPT_S:g} s (about 10 is "
                             "best; Bark reads only the last few seconds of a prompt, and HuBERT's memory grows with "
                             "the square of the length).")
    x = np.asarray(samples, dtype=np.float64)
    duration = len(x) / sample_rate
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak < 10 ** (SILENT_PEAK_DBFS / 20):
        raise RecordingError(f"The recording is silent (peak {20 * np.log10(max(peak, 1e-10)):.0f} dBFS): there is "
                             "no voice in it. Check the file, the range (start_s/end_s) and the input level.")
    # a steady sound (a tone, a drone) has no quieter stretch to tell sound from background: one phrase
    phrases = _phrases(activity(x - float(np.median(x)), sample_rate).regions) or [(0.0, duration)]
    if not trim:
        lo = max(0.0, duration - max_s)
        speech = _speech_in(phrases, lo, duration)
        return PromptSelection(lo, duration, speech, len(phrases), lo == 0.0, False)
    if sum(b - a for a, b in phrases) < MIN_SPEECH_S:
        found = sum(b - a for a, b in phrases)
        raise RecordingError(f"The recording holds only {found:.2f} s of sound over {duration:.2f} s; a voice "
                             f"needs at least {MIN_SPEECH_S:g} s, ideally 5-10 s of clear speech.")
    best: tuple[float, float, float, int, bool] | None = None  # (speech, lo, hi, n phrases, whole)
    # a phrase running into either end of the recording (or of the chosen range) was probably cut there
    cut = [a < CUT_S or b > duration - CUT_S for a, b in phrases]
    for allow_cut in (False, True):
        for i, (a, _) in enumerate(phrases):
            for j in range(i, len(phrases)):
                lo, hi = max(0.0, a - EDGE_S), min(duration, phrases[j][1] + EDGE_S)
                if hi - lo > max_s or (cut[j] and not allow_cut):
                    break
                if cut[i] and not allow_cut:
                    continue
                speech = _speech_in(phrases, lo, hi)
                if best is None or speech > best[0] + 1e-9:
                    best = (speech, lo, hi, j - i + 1, True)
        if best is not None and best[0] >= MIN_SPEECH_S:
            break
    if best is None:  # every phrase is longer than max_s: end on a phrase end, start inside the phrase
        for _, b in phrases:
            hi = min(duration, b + EDGE_S)
            lo = max(0.0, hi - max_s)
            speech = _speech_in(phrases, lo, hi)
            if best is None or speech > best[0] + 1e-9:
                best = (speech, lo, hi, 1, False)
    assert best is not None
    speech, lo, hi, n, whole = best
    return PromptSelection(lo, hi, speech, n, whole, True)


def check_prompt(samples: np.ndarray, sample_rate: int, selection: PromptSelection, *,
                 label: str = "recording", warn: bool = True) -> list[Flag]:
    """Quality flags of the chosen prompt that will show in the voice, each also given as a
    :class:`RecordingWarning` (unless ``warn`` is False) with what it means for the clone."""
    report = check(Audio(samples=samples, sample_rate=sample_rate, provenance=Provenance(stage="recording")),
                   expect="speech")
    flags = [f for f in report.flags if f.code in ADVICE]
    if selection.speech_s < SHORT_SPEECH_S:
        flags.append(Flag("short_prompt", "warn", f"Only {selection.speech_s:.1f} s of speech; the voice will be "
                          "thin. Give 5-10 s of clear speech.", selection.speech_s, SHORT_SPEECH_S, "s"))
    if not selection.whole_phrases:
        flags.append(Flag("mid_phrase", "warn", "No pause within max_seconds: the prompt starts mid-phrase. "
                          "Choose start_s/end_s around whole sentences, or a larger max_seconds.", None, None))
    if warn:
        for f in flags:
            figure = "" if f.value is None else f" ({f.code}: {f.value:.3g}{f.unit}, limit {f.threshold:g}{f.unit})"
            warnings.warn(RecordingWarning(f"{label}: {ADVICE.get(f.code, f.message)}{figure}"), stacklevel=3)
    return flags
