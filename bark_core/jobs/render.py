"""Render a job: plan it, skip what is done, hand the rest to a backend, and commit each result.

The driver is the only writer of the job folder: each row's labelled bytes are written atomically
under their content-addressed name, then one line goes to the results log. A kill therefore loses
at most the rows in flight, and a file written just before a kill is adopted on resume by the
render key in its own label. Pure Python: Ray is imported only by :mod:`bark_core.jobs.ray_backend`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BarkError
from ..fileio import atomic_write
from ..label import read_label
from ..models.device import best_device
from .manifest import JobError, Manifest, load_manifest
from .plan import ModelSpec, OutputOptions, Plan, Task, plan_job
from .report import write_report
from .results import ResultsLog
from .worker import RowRenderer, RowResult


@dataclass
class JobProgress:
    """Counts for a progress bar; ``rate`` is rendered rows per minute, ``eta_s`` None until known."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    invalid: int = 0
    audio_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    @property
    def rate(self) -> float:
        worked = self.done + self.failed
        return 60.0 * worked / self.elapsed_s if self.elapsed_s > 0 and worked else 0.0

    @property
    def eta_s(self) -> float | None:
        left = self.total - self.finished
        return None if not self.rate else 60.0 * left / self.rate


@dataclass
class JobSummary:
    """What a render did, where its results are, and the driver's own time: ``plan_s`` validating and
    planning (before any row renders) and ``driver_s`` committing results (files, log, progress)."""

    out_dir: Path
    total: int
    rendered: int
    failed: int
    skipped: int
    invalid: int
    recovered: int
    audio_s: float
    wall_s: float
    driver_s: float
    log_path: Path
    plan_s: float = 0.0
    report_path: Path | None = None
    csv_path: Path | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def driver_ms_per_row(self) -> float:
        n = self.rendered + self.failed
        return 1000.0 * self.driver_s / n if n else 0.0


class LocalBackend:
    """Every task in this process, on one device: the default, and the reference Ray must match."""

    name = "local"

    def __init__(self, workers: int = 1, batch_size: int = 1):
        if workers != 1:
            raise JobError(f"The local backend renders with one worker (asked for {workers}); use --ray local to "
                           "run several workers on this machine, or --ray ADDRESS for a cluster.")
        self.batch_size = max(1, int(batch_size))
        self.workers = 1

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def device(self, spec: ModelSpec) -> str:
        return best_device() if spec.device in ("auto", None) else spec.device

    def run(self, plan: Plan, tasks: list[Task], models: Any = None) -> Iterator[RowResult]:
        import torch

        threads = torch.get_num_threads()
        try:
            worker = RowRenderer(plan.spec, plan.voices, plan.output, models=models)
            for chunk in batches(tasks, self.batch_size):
                yield from worker.render(chunk)
        finally:
            torch.set_num_threads(threads)  # the in-process caller keeps its own setting


def batches(tasks: list[Task], size: int) -> Iterator[list[Task]]:
    """Chunks of up to ``size`` tasks with equal settings (those can share one batch), in job order."""
    import json

    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(json.dumps(t.settings, sort_keys=True), []).append(t)
    for group in groups.values():
        for i in range(0, len(group), size):
            yield group[i:i + size]


def make_backend(ray: str | None, workers: int | None, batch_size: int, gpus_per_worker: float | None = None) -> Any:
    """``ray=None`` renders here; "local", "auto" or an address renders through Ray Data."""
    if ray in (None, "", "off", "none"):
        return LocalBackend(workers or 1, batch_size)
    from .ray_backend import RayBackend

    return RayBackend(ray, workers=workers, batch_size=batch_size, gpus_per_worker=gpus_per_worker)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _done_already(task: Task, out_dir: Path, latest: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record proving ``task`` is finished, or None. A logged file must still hash to what was logged;
    a file without a log line (kill between write and log) counts when its label names this render key."""
    path = out_dir / task.relpath
    if not path.is_file():
        return None
    rec = latest.get(task.key)
    if rec and rec.get("status") == "ok" and rec.get("file") == task.relpath:
        return rec if _sha256(path.read_bytes()) == rec.get("sha256") else None
    try:
        label = read_label(path) or {}
    except BarkError:
        return None
    if (label.get("extra") or {}).get("render_key") != task.key:
        return None
    qc = label.get("qc") or {}
    return {**_record(task, "ok"), "file": task.relpath, "sha256": _sha256(path.read_bytes()),
            "bytes": path.stat().st_size, "duration_s": qc.get("duration_s"), "scores": qc or None,
            "recovered": True}


def _record(task: Task, status: str) -> dict[str, Any]:
    return {"id": task.id, "key": task.key, "status": status, "line": task.line, "seed": task.seed,
            "voice": task.voice_name, "speaker": task.speaker, "text": task.text}


def prepare(manifest: Manifest | str | os.PathLike, *, spec: ModelSpec, device: str, job_seed: int = 0,
            defaults: dict[str, Any] | None = None, output: OutputOptions | None = None,
            skip_invalid: bool = False) -> tuple[Plan, Any]:
    """Validate the manifest and plan every row on the driver (no weights are loaded here)."""
    spec = spec.with_device(device)
    models = spec.build()
    if not isinstance(manifest, Manifest):  # voices are checked with the rest, so one run lists every problem
        manifest = load_manifest(manifest, skip_invalid=skip_invalid, resolve_voice=models.voice)
    plan = plan_job(manifest, models, spec=spec, job_seed=job_seed, defaults=defaults, output=output,
                    skip_invalid=skip_invalid)
    return plan, models


def split_done(plan: Plan, out_dir: Path, log: ResultsLog) -> tuple[list[Task], list[tuple[Task, dict]]]:
    """Tasks still to render, and (task, record) for those already finished."""
    latest = log.latest_by("key")
    todo, done = [], []
    for task in plan.tasks:
        rec = _done_already(task, out_dir, latest)
        if rec is None:
            todo.append(task)
        else:
            done.append((task, rec))
    return todo, done


def render_job(manifest: Manifest | str | os.PathLike, out_dir: str | os.PathLike, *,
               spec: ModelSpec | None = None, output: OutputOptions | None = None, job_seed: int = 0,
               defaults: dict[str, Any] | None = None, ray: str | None = None, workers: int | None = None,
               batch_size: int = 1, gpus_per_worker: float | None = None, resume: bool = False,
               skip_invalid: bool = False, progress: Callable[[JobProgress], None] | None = None,
               clock: Callable[[], float] = time.monotonic) -> JobSummary:
    """Render every row of ``manifest`` into ``out_dir``; see the module docstring for the guarantees.

    ``ray``: None renders in this process; "local" starts a private Ray cluster here, "auto" joins the
    running one, anything else is a Ray address. A folder holding an earlier log needs ``resume=True``.
    """
    spec = spec or ModelSpec()
    out = Path(out_dir)
    log = ResultsLog(out)
    if log.exists() and not resume:
        raise JobError(f"{out} already holds {log.path.name} from an earlier render; pass --resume (resume=True) "
                       "to continue it, skipping finished rows, or choose an empty folder.")
    t_start = t_plan = clock()
    if not isinstance(manifest, Manifest):  # every row checked before a cluster starts or a model loads
        manifest = load_manifest(manifest, skip_invalid=skip_invalid, resolve_voice=spec.build().voice)
    with make_backend(ray, workers, batch_size, gpus_per_worker) as backend, log:
        plan, models = prepare(manifest, spec=spec, device=backend.device(spec), job_seed=job_seed,
                               defaults=defaults, output=output, skip_invalid=skip_invalid)
        todo, done = split_done(plan, out, log)
        t_plan = clock() - t_plan  # minus the backend's start-up, which is not the driver's work
        t_plan -= getattr(backend, "start_s", 0.0)
        prog = JobProgress(total=len(plan.tasks), skipped=len(done))
        summary = JobSummary(out_dir=out, total=len(plan.tasks), rendered=0, failed=0, skipped=len(done),
                             invalid=len(invalid_rows(plan)), recovered=0, audio_s=0.0,
                             wall_s=0.0, driver_s=0.0, log_path=log.path, plan_s=t_plan)
        prog.invalid = summary.invalid
        _log_invalid(plan, log)
        for _task, rec in done:
            if rec.get("recovered"):
                log.append(rec)
                summary.recovered += 1
        by_key = {t.key: t for t in todo}
        started = clock()
        t_driver = 0.0
        try:
            if todo:
                results = backend.run(plan, todo, models=models) if backend.name == "local" else \
                    backend.run(plan, todo)
                for res in results:
                    t0 = clock()
                    _commit(by_key[res.key], res, out, log, summary)
                    prog.done, prog.failed = summary.rendered, summary.failed
                    prog.audio_s = summary.audio_s
                    prog.elapsed_s = clock() - started
                    t_driver += clock() - t0
                    if progress is not None:
                        progress(prog)
        finally:
            summary.driver_s = t_driver
            summary.wall_s = clock() - t_start
            current: dict[str, str | None] = {t.id: t.key for t in plan.tasks}
            for rid in invalid_rows(plan):
                current.setdefault(rid, None)
            summary.report_path, summary.csv_path = write_report(out, log.records(), current)
    return summary


def summary_invalid(plan: Plan) -> list[Any]:
    return list(plan.manifest.skipped) if plan.manifest else []


def _invalid_id(p: Any) -> str:
    """Invalid rows are named by line too: a duplicate id must not shadow the valid row of that id."""
    return f"{p.row_id} (line {p.line})" if p.row_id is not None else f"line {p.line}"


def invalid_rows(plan: Plan) -> dict[str, tuple[int, str]]:
    """Rows set aside by skip_invalid: report id -> (line, every problem of that line)."""
    out: dict[str, tuple[int, str]] = {}
    for p in summary_invalid(plan):
        rid = _invalid_id(p)
        out[rid] = (p.line, f"{out[rid][1]}; {p.message}" if rid in out else p.message)
    return out


def _log_invalid(plan: Plan, log: ResultsLog) -> None:
    """Rows set aside by skip_invalid go into the log (again only when their reason changed), so the
    report shows them."""
    latest = log.latest_by("id")
    for rid, (line, message) in invalid_rows(plan).items():
        prev = latest.get(rid)
        if prev and prev.get("status") == "invalid" and prev.get("error") == message:
            continue
        log.append({"id": rid, "key": None, "status": "invalid", "line": line, "error": message})


def _commit(task: Task, res: RowResult, out: Path, log: ResultsLog, summary: JobSummary) -> None:
    """Write the file (atomically, under its content-addressed name), then log it."""
    rec = {**_record(task, res.status), **{k: v for k, v in res.meta().items() if k not in ("id", "key", "status")}}
    if res.status == "ok":
        try:
            path = out / task.relpath
            with atomic_write(path, overwrite=True) as fh:
                fh.write(res.data)
            rec.update(file=task.relpath, sha256=_sha256(res.data), bytes=len(res.data))
        except BarkError as exc:  # a full disk fails this row, visibly, not the job
            rec.update(status="failed", error=str(exc))
    log.append(rec)
    if rec["status"] == "ok":
        summary.rendered += 1
        summary.audio_s += float(res.duration_s or 0.0)
    else:
        summary.failed += 1
        summary.failures.append((task.id, str(rec.get("error"))))


def dry_run(manifest: Manifest | str | os.PathLike, out_dir: str | os.PathLike, *, spec: ModelSpec | None = None,
            output: OutputOptions | None = None, job_seed: int = 0, defaults: dict[str, Any] | None = None,
            skip_invalid: bool = False, device: str | None = None) -> dict[str, Any]:
    """The plan without rendering: rows, voices, estimated audio, and how many rows a resume would skip.

    Nothing is written and no weights load. Render keys depend on the device class, so ``device``
    (default: ``spec.device``, or this machine's best device) should be where the workers will run.
    """
    spec = spec or ModelSpec()
    dev = device or (best_device() if spec.device in ("auto", None) else spec.device)
    plan, _ = prepare(manifest, spec=spec, device=dev, job_seed=job_seed, defaults=defaults, output=output,
                      skip_invalid=skip_invalid)
    out = Path(out_dir)
    todo, done = split_done(plan, out, ResultsLog(out))
    return {"rows": len(plan.tasks), "to_render": len(todo), "done": len(done),
            "invalid": [str(p) for p in summary_invalid(plan)], "invalid_rows": len(invalid_rows(plan)),
            "voices": plan.voice_counts(),
            "estimated_audio_s": round(sum(t.estimated_s for t in todo), 1),
            "estimated_total_audio_s": round(plan.estimated_audio_s, 1), "device": dev,
            "formats": sorted({t.format for t in plan.tasks}), "out_dir": str(out)}
