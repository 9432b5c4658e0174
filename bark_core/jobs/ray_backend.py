"""The same tasks through Ray Data: one actor per GPU (or per ``threads`` CPU cores), each loading the
models once, rows streamed to the actors in batches and results streamed back to the driver.

Only task descriptions (~0.5 KB per row) and the job's voice table (once per actor) travel to the
actors; weights never do: every actor reads them from the model folder or its node's hub cache,
so that path must exist on every node. Results come back as the labelled file's bytes (about
48 KB per second of 24 kHz WAV) plus a ~1 KB record, and only the driver writes the job folder.
``ray`` is imported here only, and only when a job asks for it (``pip install 'bark-stages[ray]'``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

from .manifest import JobError
from .plan import ModelSpec, OutputOptions, Plan, Task
from .worker import RowRenderer, RowResult

log = logging.getLogger(__name__)


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra: pandas, pyarrow
    except ImportError as exc:
        raise JobError(f"Rendering on Ray needs the ray package with its data extra ({exc}). Install it with "
                       "pip install 'bark-stages[ray]' (or pip install 'ray[data]'), or leave out --ray to render "
                       "here.") from exc
    return ray


class RayRowRenderer:
    """The ``map_batches`` callable class: built once per actor, so the models load once per actor."""

    def __init__(self, spec: dict[str, Any], voices: dict[str, Any], output: dict[str, Any]):
        self.inner = RowRenderer(ModelSpec(**spec), voices, OutputOptions(**output))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        tasks = [Task.from_dict(json.loads(t)) for t in batch["task"]]
        results = self.inner.render(tasks)
        return {"result": np.array([r.to_json() for r in results], dtype=object),
                "data": np.array([r.data for r in results], dtype=object)}


class RayBackend:
    """``address``: "local" starts a private cluster on this machine (stopped at the end), "auto" joins
    the running cluster (``ray start`` / RAY_ADDRESS), anything else is a cluster address. A session
    already started in this process (``ray.init``) is used as it is and left running."""

    name = "ray"

    def __init__(self, address: str, *, workers: int | None = None, batch_size: int = 1,
                 gpus_per_worker: float | None = None):
        self.address = address
        self.workers = workers
        self.batch_size = max(1, int(batch_size))
        self.gpus_per_worker = gpus_per_worker
        self._started = False
        self.start_s = 0.0
        self.ray: Any = None

    def __enter__(self) -> RayBackend:
        import time

        ray = self.ray = import_ray()
        t0 = time.monotonic()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            if self.address == "local":
                ray.init(include_dashboard=False, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
            self._started = True
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the job's own progress bar counts rows
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        self.start_s = time.monotonic() - t0
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False

    def _gpus(self) -> float:
        return float(self.ray.cluster_resources().get("GPU", 0.0))

    def device(self, spec: ModelSpec) -> str:
        """Where the actors run: CUDA when the cluster has GPUs (and the spec says auto), else the CPU."""
        if spec.device not in ("auto", None):
            return spec.device
        return "cuda" if self._gpus() >= 1 else "cpu"

    def _actors(self, spec: ModelSpec, on_gpu: bool) -> tuple[int, dict[str, float]]:
        if on_gpu:
            per = self.gpus_per_worker or 1.0
            n = self.workers or max(1, int(self._gpus() // per))
            return n, {"num_gpus": per}
        threads = max(1, int(spec.threads or 1))
        n = self.workers or max(1, int(self.ray.cluster_resources().get("CPU", 1) // threads))
        return n, {"num_cpus": threads}

    def run(self, plan: Plan, tasks: list[Task]) -> Iterator[RowResult]:
        ray = self.ray
        on_gpu = plan.spec.device.startswith("cuda")
        n, resources = self._actors(plan.spec, on_gpu)
        # rows with equal settings next to each other, so a batch can run as one generate_batch call
        ordered = sorted(tasks, key=lambda t: json.dumps(t.settings, sort_keys=True))
        items = [{"task": json.dumps(t.to_dict())} for t in ordered]
        blocks = max(1, min(len(items), math.ceil(len(items) / self.batch_size)))
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(
            RayRowRenderer,
            fn_constructor_kwargs={"spec": _asdict(plan.spec), "voices": plan.voices,
                                   "output": _asdict(plan.output)},
            batch_size=self.batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n), **resources)
        log.info("rendering %d rows on %d Ray actors (%s)", len(items), n, resources)
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for meta, data in zip(batch["result"], batch["data"], strict=True):
                    yield RowResult.from_json(str(meta), bytes(data))
        except ray.exceptions.RayError as exc:  # e.g. an actor could not load the weights on its node
            first = str(exc).strip().splitlines()
            raise JobError(f"The Ray job stopped: {first[-1] if first else type(exc).__name__}. Finished rows are "
                           "logged; fix the cause and run again with --resume.") from exc


def _asdict(obj: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)
