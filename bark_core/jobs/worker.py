"""One worker: loads the models once, renders tasks into labelled file bytes, and never stops the job
for one bad row. The local backend runs one in-process; the Ray backend runs one per actor.

Rows that share settings run as one :func:`~bark_core.stages.generate_batch` call (item i of a batch
is exactly what a single :func:`~bark_core.stages.generate` gives it); when a batch fails, its rows
are retried one by one so only the row at fault is recorded as failed. With a stage cache, rows run
one by one through :func:`~bark_core.stages.generate`, which asks the cache at every stage
(``generate_batch`` does not use the cache).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..label import export_audio
from ..quality import check
from ..stages import BarkModels, Take, generate, generate_batch
from ..voices import Voice
from .plan import ModelSpec, OutputOptions, Task


@dataclass
class RowResult:
    """What a worker hands back for one task: the file's bytes and the record for the log."""

    id: str
    key: str
    status: str  # "ok" or "failed"
    data: bytes = b""
    duration_s: float | None = None
    scores: dict[str, Any] | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    render_s: float = 0.0
    worker: str = ""

    def meta(self) -> dict[str, Any]:
        """Everything but the bytes, as JSON-able values."""
        d = asdict(self)
        d.pop("data")
        return d

    def to_json(self) -> str:
        return json.dumps(self.meta())

    @classmethod
    def from_json(cls, text: str, data: bytes = b"") -> RowResult:
        return cls(**json.loads(text), data=data)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class RowRenderer:
    """Renders :class:`Task` lists on one device; build once per worker (it loads the weights lazily).

    ``voices`` is the job's voice table (voice key -> Voice), shipped once per worker instead of per row.
    """

    def __init__(self, spec: ModelSpec, voices: dict[str, Voice | None], output: OutputOptions,
                 models: BarkModels | None = None):
        import torch

        if spec.threads:
            torch.set_num_threads(int(spec.threads))  # same thread count, same float sums, same bytes
        self.models = models if models is not None else spec.build()
        self.voices = voices
        self.output = output
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def render(self, tasks: list[Task]) -> list[RowResult]:
        """Results in the order of ``tasks``; rows with equal settings share one batch."""
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(tasks):
            groups.setdefault(json.dumps(t.settings, sort_keys=True), []).append(i)
        if self.models.cache is not None:  # generate_batch bypasses the stage cache; generate() asks it per stage
            groups = {str(i): [i] for i in range(len(tasks))}
        out: list[RowResult | None] = [None] * len(tasks)
        for idx in groups.values():
            group = [tasks[i] for i in idx]
            t0 = time.perf_counter()
            takes = self._generate(group)
            share = (time.perf_counter() - t0) / len(group)
            for i, task, take in zip(idx, group, takes, strict=True):
                out[i] = self._finish(task, take, share)
        return [r for r in out if r is not None]

    def _generate(self, tasks: list[Task]) -> list[Take | BaseException]:
        s = tasks[0].settings
        if len(tasks) == 1:
            t = tasks[0]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # truncation is read from provenance below
                    return [generate(self.models, t.text, self.voices.get(t.voice) if t.voice else None,
                                     seed=t.seed, **s)]
            except Exception as exc:  # one bad row must not stop the job; it is recorded with its reason
                return [exc]
        try:
            return list(generate_batch(self.models, [t.text for t in tasks],
                                       voices=[self.voices.get(t.voice) if t.voice else None for t in tasks],
                                       seeds=[t.seed for t in tasks], **s))
        except Exception:
            return [r for t in tasks for r in self._generate([t])]  # find the row at fault

    def _finish(self, task: Task, take: Take | BaseException, gen_s: float) -> RowResult:
        t0 = time.perf_counter()
        res = RowResult(id=task.id, key=task.key, status="failed", worker=self.worker)
        if isinstance(take, BaseException):
            res.error, res.render_s = _error(take), round(gen_s, 4)
            return res
        try:
            cut = take.semantic.provenance.settings.get("text_truncated_pct") or 0.0
            if cut:
                res.warnings.append(f"text cut by {cut}% to fit one generation; split the row")
            report = check(take.audio, text=task.text)
            # the label keeps its own labelled_at; without a second clock in it, the labelled take's id
            # (and every byte but that one timestamp) repeats whoever renders the row, wherever
            qc = {k: v for k, v in report.summary().items() if k != "checked_at"}
            meta = {**take.label_meta(seed=task.seed), "row_id": task.id, "render_key": task.key,
                    "speaker": task.speaker}
            o = self.output
            with tempfile.TemporaryDirectory(prefix="bark-row-") as tmp:
                path = export_audio(take.audio, Path(tmp) / f"row.{task.format}", sample_rate=o.sample_rate,
                                    normalize=o.normalize, include_text=o.include_text, quality=qc, **meta)
                res.data = path.read_bytes()
            res.status, res.duration_s, res.scores = "ok", round(take.audio.duration_s, 4), report.summary()
        except Exception as exc:  # export or QC failed for this row only
            res.error = _error(exc)
        res.render_s = round(gen_s + time.perf_counter() - t0, 4)
        return res
