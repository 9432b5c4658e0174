"""Repeatability: the same seed twice must give the same take; other seeds show how much takes vary."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BarkError
from ..stages import generate
from .analysis import check
from .report import EXPECT, QualityError, QualityReport, round_figure, utc_now
from .speech import fmt

REPEAT_SCHEMA = "bark_core.repeatability/1"
VARIATION_METRICS = ("duration_s", "loudness_lufs", "snr_db", "speech_activity", "syllables_per_s")


@dataclass
class StageComparison:
    """Whether one stage gave the same output twice from the same seed, and where it first differed."""

    stage: str
    identical: bool
    first_id: str
    second_id: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RepeatabilityReport:
    """Same seed twice (must be identical) plus the spread of results across other seeds."""

    text: str
    seed: int
    identical: bool
    stages: list[StageComparison]
    differing_stage: str | None = None
    cache_bypassed: bool = False
    voice: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    takes: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    flag_counts: dict[str, int] = field(default_factory=dict)
    pass_rate: float | None = None
    checked_at: str = field(default_factory=lambda: utc_now())

    @property
    def n_other_seeds(self) -> int:
        return max(0, len(self.seeds) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": REPEAT_SCHEMA,
            "text": self.text,
            "seed": self.seed,
            "identical": self.identical,
            "differing_stage": self.differing_stage,
            "stages": [s.to_dict() for s in self.stages],
            "cache_bypassed": self.cache_bypassed,
            "voice": self.voice,
            "settings": _plain(self.settings),
            "variation": {
                "n_other_seeds": self.n_other_seeds,
                "seeds": list(self.seeds),
                "takes": _plain(self.takes),
                "stats": _plain(self.stats),
                "flag_counts": dict(self.flag_counts),
                "pass_rate": round_figure(self.pass_rate),
            },
            "checked_at": self.checked_at,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """A plain verdict first, then the spread across seeds."""
        if self.identical:
            head = (f"Repeatable: seed {self.seed} gave identical semantic, coarse and fine tokens and identical "
                    "audio twice.")
        else:
            bad = next(s for s in self.stages if not s.identical)
            head = f"NOT repeatable: with seed {self.seed} the {bad.stage} stage differed ({bad.detail})."
        lines = [head]
        if len(self.seeds) > 1:
            lines.append(f"Across {len(self.seeds)} seeds ({', '.join(map(str, self.seeds))}), "
                         f"{fmt(None if self.pass_rate is None else self.pass_rate * 100, 0)} % passed the check:")
            for name, st in self.stats.items():
                if st.get("n"):
                    lines.append(f"  {name}: mean {st['mean']:.2f}, std {st['std']:.2f}, "
                                 f"min {st['min']:.2f}, max {st['max']:.2f} (n={st['n']})")
            if self.flag_counts:
                lines.append("  flags: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.flag_counts.items())))
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return round_figure(value.item())
    if isinstance(value, float):
        return round_figure(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)  # callables such as progress=, devices, generators


def _compare(stage: str, a: Any, b: Any) -> StageComparison:
    """Exact comparison; the detail says where the outputs part, as a clue to the cause."""
    if stage == "audio":
        x, y = a.samples, b.samples
        same = a.sample_rate == b.sample_rate and x.shape == y.shape and bool(np.array_equal(x, y))
        if same:
            detail = f"{len(x)} samples equal"
        elif x.shape != y.shape:
            detail = f"lengths differ: {len(x)} vs {len(y)} samples"
        else:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            detail = f"max |difference| {float(diff.max()):.3g}, first at sample {int(np.argmax(diff > 0))}"
        return StageComparison(stage, same, a.id, b.id, detail)
    x, y = (a.tokens, b.tokens) if stage == "semantic" else (a.codes, b.codes)
    same = x.shape == y.shape and bool(np.array_equal(x, y))
    if same:
        detail = f"shape {list(x.shape)} equal"
    elif x.shape != y.shape:
        detail = f"shapes differ: {list(x.shape)} vs {list(y.shape)}"
    else:
        frames = np.flatnonzero(np.any((x != y).reshape(-1, x.shape[-1]), axis=0))
        detail = f"first difference at frame {int(frames[0])} of {x.shape[-1]}"
    return StageComparison(stage, same, a.id, b.id, detail)


class _NoStageCache:
    """Take ``models.cache`` away for the duration, so the second run really recomputes."""

    def __init__(self, models: Any):
        self.models = models
        self.saved: Any = None
        self.had = hasattr(models, "cache")

    def __enter__(self) -> bool:
        if not self.had:
            return False
        self.saved = self.models.cache
        self.models.cache = None
        return self.saved is not None

    def __exit__(self, *exc: Any) -> None:
        if self.had:
            self.models.cache = self.saved


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"n": int(arr.size), "mean": float(arr.mean()), "std": float(arr.std()), "min": float(arr.min()),
            "max": float(arr.max())}


def repeatability(models: Any, text: str, voice: Any = None, *, seed: int, n_seeds: int = 0,
                  seeds: list[int] | None = None, expect: str = "speech", **generate_kwargs: Any
                  ) -> RepeatabilityReport:
    """Prove a take can be redone exactly, and show how much takes differ from seed to seed.

    The chain is generated twice with ``seed`` through :func:`bark_core.generate`, with the
    stage cache switched off so both runs compute (the cache is restored afterwards; do not share
    ``models`` with another thread meanwhile). Tokens of every stage and the audio must be equal.
    Then the chain runs for ``seeds`` (or ``n_seeds`` seeds after ``seed``: seed+1, seed+2, ...), and
    the report gives mean/std/min/max of duration, loudness, speech-to-noise ratio, speech activity
    and speaking rate over all these takes (the first one included), and how often each flag came up.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise QualityError(f"repeatability needs a non-negative integer seed (the one to redo), got {seed!r}.")
    if seeds is None:
        if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 0:
            raise QualityError(f"n_seeds must be a whole number >= 0, got {n_seeds!r}.")
        others = [int(seed) + 1 + i for i in range(n_seeds)]
    else:
        bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0]
        if bad:
            raise QualityError(f"seeds must be non-negative integers; {bad} are not.")
        others = [int(s) for s in dict.fromkeys(seeds) if int(s) != int(seed)]
    if expect not in EXPECT:
        raise QualityError(f"expect must be one of {', '.join(EXPECT)}, got {expect!r}.")

    with _NoStageCache(models) as bypassed:
        first = generate(models, text, voice, seed=int(seed), **generate_kwargs)
        second = generate(models, text, voice, seed=int(seed), **generate_kwargs)
    stages = [_compare(name, getattr(first, name), getattr(second, name))
              for name in ("semantic", "coarse", "fine", "audio")]
    differing = next((s.stage for s in stages if not s.identical), None)

    rows: list[dict[str, Any]] = []
    reports: list[QualityReport] = []
    for s in [int(seed), *others]:
        try:
            take = first if s == int(seed) else generate(models, text, voice, seed=s, **generate_kwargs)
        except BarkError as exc:  # one bad seed (e.g. an empty semantic take) must not hide the others
            rows.append({"seed": s, "error": str(exc)})
            continue
        rep = check(take.audio, text=text, expect=expect)
        reports.append(rep)
        row: dict[str, Any] = {"seed": s, "audio_id": take.audio.id, "passed": rep.passed, "flags": rep.codes()}
        row.update({k: getattr(rep.metrics, k) for k in VARIATION_METRICS})
        rows.append(row)

    counts: dict[str, int] = {}
    for rep in reports:
        for code in dict.fromkeys(rep.codes()):
            counts[code] = counts.get(code, 0) + 1
    stats = {k: _stats([r[k] for r in rows if r.get(k) is not None]) for k in VARIATION_METRICS}
    voice_label = first.audio.provenance.voice
    settings = {k: v for k, v in generate_kwargs.items() if k != "progress"}
    return RepeatabilityReport(
        text=text, seed=int(seed), identical=differing is None, stages=stages, differing_stage=differing,
        cache_bypassed=bool(bypassed), voice=voice_label, settings=settings, seeds=[int(seed), *others],
        takes=rows, stats=stats, flag_counts=counts,
        pass_rate=(sum(r.passed for r in reports) / len(reports)) if reports else None,
    )
