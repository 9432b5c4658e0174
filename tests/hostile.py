"""The harness of the hostile-input corpus (tests/test_hostile*.py): run one case, judge what a user would see.

Each case must end cleanly: a :class:`BarkError` with a message (or success where the input is valid),
within a time bound, with peak memory under a bound, without deleting any file, without writing outside
its target folder and without leaving a partial file under the final name. Every outcome is tallied, so
the corpus reports cases, clean errors, tracebacks, hangs, memory blow-ups and wrong results.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bark_core import BarkError

TALLY: Counter[str] = Counter()
PROBLEMS: list[str] = []
MEMORY_MB = 400  # peak resident memory a case may add (the models of a case are loaded before it)
TIME_S = 30.0  # generous: every case should take well under a second; this catches hangs, not slowness


def _status_mb(field_name: str) -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux >= 4.0), so each case's own peak can be read."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _snapshot(roots: Iterable[Path]) -> dict[Path, tuple[int, int]]:
    out: dict[Path, tuple[int, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
                p = Path(dirpath) / name
                try:
                    st = p.lstat()
                except OSError:
                    continue
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass
class Case:
    """What a case may do: ``expect`` "error" (a BarkError), "ok" (success) or "any" (either, judged by ``check``)."""

    name: str
    expect: str = "error"
    watch: tuple[Path, ...] = ()
    out: Path | None = None  # the only folder where new files may appear
    final: Path | None = None  # the final file name: must not exist after an error
    may_delete: tuple[Path, ...] = ()  # files the case is meant to remove (e.g. stale .part files)
    memory_mb: float = MEMORY_MB
    time_s: float = TIME_S
    check: Callable[[Any], bool] | None = None
    match: str | None = None  # a word the error message must contain
    notes: list[str] = field(default_factory=list)


def run_case(case: Case, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` as one corpus case, tally its outcome and return its result (or the BarkError)."""
    before = _snapshot(case.watch)
    base = _status_mb("VmRSS")
    measured = _reset_peak()
    start = time.monotonic()
    result: Any = None
    outcome = "ok"
    try:
        result = fn()
    except BarkError as exc:
        outcome, result = "error", exc
    except Exception:  # noqa: BLE001 - the corpus counts these
        outcome, result = "traceback", traceback.format_exc(limit=4)
    elapsed = time.monotonic() - start
    peak = _status_mb("VmHWM") - base if measured else 0.0
    after = _snapshot(case.watch)
    TALLY["cases"] += 1
    problems = []
    if outcome == "traceback":
        TALLY["tracebacks"] += 1
        problems.append(f"traceback:\n{result}")
    elif outcome == "error":
        TALLY["clean errors"] += 1
        msg = str(result)
        if len(msg) < 20 or "\n" in msg.strip():
            problems.append(f"unclear message {msg!r}")
        if case.match and case.match.lower() not in msg.lower():
            problems.append(f"message lacks {case.match!r}: {msg}")
    else:
        TALLY["successes"] += 1
    if elapsed > case.time_s:
        TALLY["hangs"] += 1
        problems.append(f"took {elapsed:.1f} s (bound {case.time_s} s)")
    if peak > case.memory_mb:
        TALLY["memory blow-ups"] += 1
        problems.append(f"peak memory +{peak:.0f} MB (bound {case.memory_mb} MB)")
    wrong = []
    if case.expect == "error" and outcome == "ok":
        wrong.append(f"accepted bad input (returned {type(result).__name__})")
    if case.expect == "ok" and outcome == "error":
        wrong.append(f"refused valid input: {result}")
    if outcome == "ok" and case.check is not None and not case.check(result):
        wrong.append(f"wrong result {result!r:.200}")
    deleted = [p for p in before if p not in after and p not in case.may_delete]
    if deleted:
        wrong.append(f"deleted {deleted[:3]}")
    created = [p for p in after if p not in before]
    outside = [p for p in created if case.out is None or case.out not in p.parents]
    if outside:
        wrong.append(f"wrote outside its folder: {outside[:3]}")
    partial = [p for p in created if p.name.endswith(".part")]
    if partial:
        wrong.append(f"left temporary files {partial[:3]}")
    if outcome != "ok" and case.final is not None and case.final.exists() and case.final not in before:
        wrong.append(f"left {case.final} after failing")
    if wrong:
        TALLY["wrong results"] += 1
        problems.extend(wrong)
    if problems:
        PROBLEMS.append(f"{case.name}: " + "; ".join(problems))
    return result


def summary() -> str:
    keys = ("cases", "clean errors", "successes", "tracebacks", "hangs", "memory blow-ups", "wrong results")
    return ", ".join(f"{k} {TALLY[k]}" for k in keys)
