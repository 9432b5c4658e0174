"""What a quality check reports: flags for people and programs, every figure, and a label summary."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import constants as C
from ..errors import BarkError
from .signal import db
from .thresholds import THRESHOLDS

SCHEMA = "bark_core.quality/1"
EXPECT = C.QUALITY_EXPECT
SEVERITIES = ("info", "warn", "fail")


class QualityError(BarkError, ValueError):
    """A quality check cannot run on the input as given."""


@dataclass(frozen=True)
class Flag:
    """One finding: a code for programs, a sentence for people, and the figure that triggered it."""

    code: str
    severity: str
    message: str
    value: float | None = None
    threshold: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"Flag severity must be one of {SEVERITIES}, got {self.severity!r}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Metrics:
    """Every measured figure; ``None`` where it does not apply (e.g. no text given)."""

    duration_s: float
    sample_rate: int
    peak_dbfs: float
    rms_dbfs: float
    dc_offset: float
    clipped_pct: float
    noise_floor_dbfs: float
    speech_level_dbfs: float | None = None
    snr_db: float | None = None
    hum_db: float | None = None
    hum_hz: float | None = None
    pause_flatness: float | None = None
    hiss_dbfs: float | None = None
    speech_activity: float = 0.0
    leading_silence_s: float | None = None
    trailing_silence_s: float | None = None
    longest_pause_s: float = 0.0
    long_pauses: list[list[float]] = field(default_factory=list)
    speech_time_s: float = 0.0
    text_syllables: int | None = None
    text_chars: int | None = None
    syllables_per_s: float | None = None
    chars_per_s: float | None = None
    end_level_db: float | None = None
    loudness_lufs: float | None = None
    voiced_ratio: float | None = None
    spectral_flatness: float | None = None
    syllabic_modulation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: round_figure(v) for k, v in dataclasses.asdict(self).items()}


@dataclass
class QualityReport:
    """What :func:`check` found. ``passed`` is False when any flag has severity "fail"."""

    source: str
    metrics: Metrics
    flags: list[Flag] = field(default_factory=list)
    expect: str = "speech"
    artifact_id: str | None = None
    text_source: str | None = None
    asr: dict[str, Any] | None = None
    checked_at: str = field(default_factory=lambda: utc_now())
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))

    @property
    def passed(self) -> bool:
        return not any(f.severity == "fail" for f in self.flags)

    def codes(self, severity: str | None = None) -> list[str]:
        return [f.code for f in self.flags if severity is None or f.severity == severity]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "source": self.source,
            "artifact_id": self.artifact_id,
            "expect": self.expect,
            "text_source": self.text_source,
            "passed": self.passed,
            "flags": [f.to_dict() for f in self.flags],
            "metrics": self.metrics.to_dict(),
            "asr": self.asr,
            "checked_at": self.checked_at,
            "thresholds": self.thresholds,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def summary(self) -> dict[str, Any]:
        """The few figures that belong in a file's label metadata (small, no text, no transcript)."""
        m = self.metrics
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "passed": self.passed,
            "fail": self.codes("fail"),
            "warn": self.codes("warn"),
            "duration_s": round_figure(m.duration_s),
            "snr_db": round_figure(m.snr_db),
            "loudness_lufs": round_figure(m.loudness_lufs),
            "speech_activity": round_figure(m.speech_activity),
            "clipped_pct": round_figure(m.clipped_pct),
            "checked_at": self.checked_at,
        }
        if self.asr and self.asr.get("wer") is not None:
            out["asr_wer_approx"] = round_figure(self.asr["wer"])
        return out

    def to_text(self) -> str:
        """A report for people: verdict, flags with their figures, then the measurements."""
        m = self.metrics
        verdict = "PASSED" if self.passed else "FAILED"
        n_warn = len(self.codes("warn"))
        lines = [f"{self.source}: {verdict} ({len(self.codes('fail'))} fail, {n_warn} warn) - expect {self.expect}"]
        for f in sorted(self.flags, key=lambda f: SEVERITIES.index(f.severity), reverse=True):
            lines.append(f"  [{f.severity}] {f.code}: {f.message}")

        def fmt(v: Any, unit: str = "", nd: int = 1) -> str:
            return "n/a" if v is None else f"{v:.{nd}f}{unit}"

        digital_silence = m.noise_floor_dbfs <= db(0.0) + 0.05
        floor = "digital silence" if digital_silence else fmt(m.noise_floor_dbfs, " dBFS")
        snr = fmt(m.snr_db, " dB") if not digital_silence or m.snr_db is None else f">= {m.snr_db:.0f} dB"
        hum = "none" if m.hum_db is None else f"{m.hum_db:.1f} dB @{m.hum_hz:.0f} Hz"
        lines += [
            f"  noise:   floor {floor}, speech-to-noise {snr}, hum {hum}, "
            f"pause flatness {fmt(m.pause_flatness, '', 2)}, clipped {m.clipped_pct:.3f} %, DC {m.dc_offset:+.4f}",
            "  clarity: "
            f"duration {m.duration_s:.2f} s, speech {m.speech_time_s:.2f} s (activity {m.speech_activity:.0%}), "
            f"silence lead {fmt(m.leading_silence_s, ' s', 2)} / tail {fmt(m.trailing_silence_s, ' s', 2)}, "
            f"longest pause {m.longest_pause_s:.2f} s, end level {fmt(m.end_level_db, ' dB')}",
            "  speech:  "
            f"rate {fmt(m.syllables_per_s, ' syll/s')} ({fmt(m.chars_per_s, ' chars/s')}), "
            f"voiced {fmt(m.voiced_ratio, '', 2)}, syllabic modulation {fmt(m.syllabic_modulation, '', 2)}, "
            f"spectral flatness {fmt(m.spectral_flatness, '', 2)}",
            f"  level:   loudness {fmt(m.loudness_lufs, ' LUFS')}, peak {fmt(m.peak_dbfs, ' dBFS')}, "
            f"RMS {fmt(m.rms_dbfs, ' dBFS')}",
        ]
        if self.asr is not None:
            if self.asr.get("available"):
                wer = self.asr.get("wer")
                lines.append(
                    f"  asr (approximate, {self.asr.get('engine')}): \"{self.asr.get('transcript', '')}\""
                    + ("" if wer is None else f", WER {wer:.2f}")
                )
            else:
                lines.append(f"  asr: not run ({self.asr.get('note')})")
        return "\n".join(lines)


def round_figure(v: Any, nd: int = 4) -> Any:
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, nd)
    if isinstance(v, list):
        return [round_figure(x, nd) for x in v]
    return v


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
