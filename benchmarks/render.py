"""Throughput of ``bark-core render``: rows per minute and audio seconds per wall second, in this
process (the local backend) and through Ray Data with 1 and 2 actors (or 1 actor per GPU), on random
weights at the tiny and the real ``small`` size, plus the driver's own time per row.

Every row makes the same amount of audio (early stop off, a fixed duration), so runs compare. Weights
are random (``write_tiny_model_set`` at each size): the audio is noise, the work is real.

    python benchmarks/render.py                                     # the README's table (CPU)
    python benchmarks/render.py --sizes tiny --rows 200 --workers 1 2
    python benchmarks/render.py --sizes small --device cuda --rows 64 --batch-size 8 --workers 1   # a GPU

``wall`` figures count everything a user waits for (planning, actor start, model loading, rendering);
``steady`` figures count from the first finished row to the last, i.e. throughput once running.
The driver's time is planning (validation, voices, render keys) and committing (atomic file write,
log line, progress) per row, measured inside :func:`bark_core.jobs.render_job`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {"tiny": dict(n_layer=2, n_head=2, n_embd=32), "small": dict(n_layer=12, n_head=12, n_embd=768)}
VOICES = ["v2/en_speaker_6", "v2/de_speaker_3", "v2/fr_speaker_1", "announcer"]


def weights(root: Path, size: str) -> Path:
    from bark_core import write_tiny_model_set

    folder = root / size
    if not (folder / "bark_models.json").is_file():
        write_tiny_model_set(folder, **SIZES[size])
    return folder


def manifest(path: Path, rows: int, seconds: float) -> Path:
    settings = {"max_gen_duration_s": seconds, "allow_early_stop": False}
    with open(path, "w") as fh:
        for i in range(rows):
            fh.write(json.dumps({"id": f"row-{i:04d}", "text": f"This is line number {i} of the benchmark.",
                                 "voice": VOICES[i % len(VOICES)], "settings": settings}) + "\n")
    return path


def run_one(job: Path, out: Path, size: str, folder: Path, backend: str, workers: int, args: argparse.Namespace
            ) -> dict[str, Any]:
    from bark_core.jobs import ModelSpec, render_job

    spec = ModelSpec(models=str(folder), device=args.device, dtype=args.dtype, threads=args.threads)
    stamps: list[float] = []
    t0 = time.perf_counter()
    s = render_job(job, out, spec=spec, ray=None if backend == "local" else "local",
                   workers=None if backend == "local" else workers, batch_size=args.batch_size,
                   progress=lambda p: stamps.append(time.perf_counter()))
    wall = time.perf_counter() - t0
    n = s.rendered
    steady = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    per_row_audio = s.audio_s / n if n else 0.0
    return {
        "size": size, "backend": backend, "workers": workers, "rows": n, "failed": s.failed, "audio_s": s.audio_s,
        "wall_s": round(wall, 2), "rows_per_min": round(60 * n / wall, 2) if wall else 0.0,
        "audio_per_wall_s": round(s.audio_s / wall, 4) if wall else 0.0,
        "steady_rows_per_min": round(60 * (n - 1) / steady, 2) if steady else None,
        "steady_audio_per_wall_s": round((n - 1) * per_row_audio / steady, 4) if steady else None,
        "plan_ms_per_row": round(1000 * s.plan_s / max(1, s.total), 2),
        "commit_ms_per_row": round(s.driver_ms_per_row, 2),
        "first_row_s": round(stamps[0] - t0, 2) if stamps else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| size | backend | workers | rows | audio s | wall s | rows/min | audio s / wall s | steady rows/min "
            "| steady audio s / wall s | first row s | driver ms/row (plan + commit) |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['backend']} | {r['workers']} | error: {r['error']} |" + " |" * 8)
            continue
        lines.append(
            f"| {r['size']} | {r['backend']} | {r['workers']} | {r['rows']} | {r['audio_s']:.1f} | {r['wall_s']:.1f} "
            f"| {r['rows_per_min']:.1f} | {r['audio_per_wall_s']:.3f} | {r['steady_rows_per_min'] or 0:.1f} "
            f"| {r['steady_audio_per_wall_s'] or 0:.3f} | {r['first_row_s']} "
            f"| {r['plan_ms_per_row']:.1f} + {r['commit_ms_per_row']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=list(SIZES))
    p.add_argument("--rows", type=int, nargs="+", default=[200, 8],
                   help="rows per size, in the order of --sizes (one value: all sizes)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio per row (early stop off)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray actor counts to run")
    p.add_argument("--no-local", action="store_true", help="skip the in-process backend")
    p.add_argument("--no-ray", action="store_true", help="skip Ray (the local backend only)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--weights", default=None, help="folder for the random weights (kept for re-runs)")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    root = Path(args.weights or tempfile.mkdtemp(prefix="bark-render-bench-"))
    rows_for = dict(zip(args.sizes, args.rows if len(args.rows) > 1 else args.rows * len(args.sizes), strict=False))
    results: list[dict[str, Any]] = []
    ray_init_s = None
    ray = None
    if not args.no_ray:
        try:
            import ray

            t = time.perf_counter()
            ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
            ray_init_s = round(time.perf_counter() - t, 2)
        except ImportError:
            print("ray is not installed: Ray rows skipped (pip install 'bark-stages[ray]')", file=sys.stderr)
            ray = None
    try:
        for size in args.sizes:
            folder = weights(root, size)
            job = manifest(root / f"{size}.jsonl", rows_for.get(size, 8), args.seconds)
            runs = [] if args.no_local else [("local", 1)]
            runs += [] if ray is None else [("ray", w) for w in args.workers]
            for backend, workers in runs:
                out = root / f"out-{size}-{backend}-{workers}"
                shutil.rmtree(out, ignore_errors=True)
                print(f"{size}: {backend} x{workers} ...", file=sys.stderr, flush=True)
                try:
                    results.append(run_one(job, out, size, folder, backend, workers, args))
                except Exception as exc:  # one failed configuration still leaves the others' figures
                    results.append({"size": size, "backend": backend, "workers": workers, "error": repr(exc)})
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if ray is not None:
            ray.shutdown()
    info = {"date": datetime.date.today().isoformat(), "machine": platform.platform(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "command": " ".join(sys.argv),
            "ray_init_s": ray_init_s, "seconds_per_row": args.seconds, "device": args.device,
            "batch_size": args.batch_size, "threads": args.threads}
    print(table(results))
    print(f"\n{info['date']}, {info['machine']}, {info['cpus']} CPUs; Ray local cluster start {ray_init_s} s; "
          f"{args.seconds} s of audio per row; batch {args.batch_size}; {args.threads} thread(s) per worker")
    if args.out:
        Path(args.out).write_text(json.dumps({"info": info, "rows": results}, indent=2))
    if not args.weights:
        shutil.rmtree(root, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
