"""``bark-core render MANIFEST -o DIR``: many lines, each with its own voice and seed, rendered here or
on a Ray cluster into labelled files, a resumable results log and a report."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import constants as C
from ..errors import BarkError
from .common import add_model_args

if TYPE_CHECKING:
    from ..jobs import JobProgress, ModelSpec


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class JobBar:
    """One status line on stderr: rows finished of total, failed, skipped, rate and ETA."""

    def __init__(self, stream: Any = None, interval: float = 0.2):
        self.stream = stream or sys.stderr
        self.interval = interval
        self.drawn = 0.0
        self.shown = False

    def __call__(self, p: JobProgress) -> None:
        now = time.monotonic()
        if p.finished < p.total and now - self.drawn < self.interval:
            return
        self.drawn, self.shown = now, True
        pct = 100.0 * p.finished / p.total if p.total else 100.0
        self.stream.write(f"\rrows {p.finished}/{p.total} ({pct:5.1f}%)  done {p.done}  failed {p.failed}  "
                          f"skipped {p.skipped}  {p.rate:6.1f} rows/min  ETA {_clock(p.eta_s)} ")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in C.JOB_SETTINGS:
            raise BarkError(f"--set {pair!r}: write NAME=VALUE with NAME one of {', '.join(C.JOB_SETTINGS)}.")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise BarkError(f"--set {pair!r}: the value must be JSON (0.6, 20, true, null).") from None
    from ..jobs.manifest import check_settings

    bad = check_settings(out, "--set")
    if bad:
        raise BarkError("; ".join(bad))
    return out


def _spec(args: argparse.Namespace) -> ModelSpec:
    from ..jobs import ModelSpec
    from ..models import tiny_model_dir

    source = str(tiny_model_dir()) if args.tiny else args.models
    return ModelSpec(models=source, size=args.size, device=args.device, dtype=args.dtype, decoder=args.decoder,
                     offload=args.offload, cache_dir=args.cache_dir, local_files_only=True if args.offline else None,
                     threads=1 if args.threads == "auto" else args.threads,  # one a worker: identical bytes
                     stage_cache=args.stage_cache)


def _script_job(args: argparse.Namespace) -> Any:
    """A script or subtitle file as a manifest (one row per spoken line), or the manifest path as given."""
    from ..jobs import load_manifest
    from ..jobs.manifest import SCRIPT_SUFFIXES

    if Path(args.manifest).suffix.lower() not in SCRIPT_SUFFIXES:
        if args.voices is not None or args.write_manifest is not None:
            raise BarkError("--voices and --write-manifest apply to scripts and subtitles (.txt, .srt, .vtt); a "
                            f"manifest names each row's voice itself: {args.manifest}")
        return args.manifest
    manifest = load_manifest(args.manifest, voices=args.voices, skip_invalid=args.skip_invalid)
    for note in manifest.notes:
        print(f"note: {args.manifest}: {note}", file=sys.stderr)
    return manifest


def _write_manifest(manifest: Any, path: Path) -> None:
    from ..fileio import atomic_write

    lines = []
    for row in manifest.rows:
        rec = {k: v for k, v in row.to_dict().items() if k != "line" and v not in (None, {})}
        lines.append(json.dumps(rec, ensure_ascii=False) + "\n")
    with atomic_write(path) as fh:
        fh.write("".join(lines).encode("utf-8"))
    print(f"wrote {len(lines)} rows to {path}" + (f" ({len(manifest.skipped)} invalid lines left out)"
                                                   if manifest.skipped else ""))
    if manifest.rights:
        print("note: rights records from the voice map are not in the manifest; render the script itself, or "
              "use voices whose .npz carries its record.", file=sys.stderr)


def run_render(args: argparse.Namespace) -> int:
    from ..jobs import OutputOptions, render_job  # heavy imports only when a job runs
    from ..jobs.render import dry_run

    job = _script_job(args)
    if args.write_manifest is None and args.output is None:
        raise BarkError("bark-core render needs -o DIR, the job folder for files, log and report.")
    if args.write_manifest is not None:
        _write_manifest(job, args.write_manifest)
        return 0
    seed = args.seed if args.seed is not None else (getattr(job, "seed", None) or 0)
    spec = _spec(args)
    output = OutputOptions(format=args.format, sample_rate=args.sample_rate, normalize=args.normalize)
    common = dict(spec=spec, output=output, job_seed=seed, defaults=_settings(args.set),
                  skip_invalid=args.skip_invalid)
    if args.dry_run:
        info = dry_run(job, args.output, **common)
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        print(f"plan for {args.manifest} -> {info['out_dir']} (device {info['device']}, "
              f"{', '.join(info['formats'])})")
        print(f"  rows: {info['rows']}  to render: {info['to_render']}  already done: {info['done']}  "
              f"invalid: {info['invalid_rows']}")
        print(f"  estimated audio: {info['estimated_audio_s']:.0f} s to render "
              f"({info['estimated_total_audio_s']:.0f} s for the whole job)")
        print("  voices: " + ", ".join(f"{v} x{n}" for v, n in info["voices"].items()))
        for line in info["invalid"]:
            print(f"  invalid: {line}")
        return 0
    if args.tiny:
        print("note: tiny UNTRAINED models - the result is noise, not speech.", file=sys.stderr)
    bar = None if args.quiet else JobBar()
    try:
        s = render_job(job, args.output, ray=args.ray, workers=args.workers, batch_size=args.batch_size,
                       resume=args.resume, progress=bar, **common)
    finally:
        if bar:
            bar.close()
    rate = 60.0 * (s.rendered + s.failed) / s.wall_s if s.wall_s > 0 else 0.0
    print(f"rendered {s.rendered}, failed {s.failed}, skipped {s.skipped} (recovered {s.recovered}) of {s.total} "
          f"rows; {s.audio_s:.1f} s of audio in {s.wall_s:.1f} s ({rate:.1f} rows/min)"
          + (f"; {s.invalid} invalid rows set aside (see the report)" if s.invalid else ""))
    for rid, err in s.failures[:10]:
        print(f"  failed {rid}: {err}")
    if len(s.failures) > 10:
        print(f"  ... and {len(s.failures) - 10} more failures (see {s.log_path})")
    print(f"log: {s.log_path}\nreport: {s.report_path} and {s.csv_path}")
    return 1 if s.failed else 0


def add_render_commands(sub: Any) -> None:
    """Add ``render`` to an argparse subparsers object."""
    p = sub.add_parser("render", help="render a manifest of many lines (JSONL/CSV) into labelled files",
                       description="Render every row of a manifest (JSONL or CSV: id, text, voice, seed, speaker, "
                                   "out, settings) into labelled files under content-addressed names, with a "
                                   "results log (results.jsonl) and a report (report.html, report.csv).")
    p.add_argument("manifest", help="the job: a .jsonl or .csv file, one row per line; or a script (.txt) or "
                                    "subtitles (.srt, .vtt): one row per spoken line, id = file stem + line number")
    p.add_argument("-o", "--output", metavar="DIR", help="job folder for files, log and report")
    p.add_argument("--voices", type=Path, default=None, metavar="MAP",
                   help="for a script or subtitles: speaker -> voice map (.toml/.json) over the script header's")
    p.add_argument("--write-manifest", type=Path, default=None, metavar="FILE.jsonl",
                   help="for a script or subtitles: write its rows as a JSONL manifest to edit, and stop")
    p.add_argument("--ray", default=None, metavar="auto|local|ADDRESS",
                   help="render through Ray Data: 'local' starts a cluster on this machine, 'auto' joins the "
                        "running one, or a cluster address (needs pip install 'bark-stages[ray]')")
    p.add_argument("--workers", type=int, default=None,
                   help="Ray actors (default: one per GPU, or one per --threads CPU cores); the local backend "
                        "has one")
    p.add_argument("--batch-size", type=int, default=1, help="rows with equal settings per generate_batch call")
    p.add_argument("--resume", action="store_true", help="continue the job in DIR: finished rows are skipped")
    p.add_argument("--dry-run", action="store_true", help="print the plan (rows, voices, audio estimate) and stop")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    p.add_argument("--skip-invalid", action="store_true", help="render the valid rows and report the bad ones")
    p.add_argument("--seed", type=int, default=None,
                   help="job seed: rows without a seed get hash(job seed, row id) (default: a script header's "
                        "seed, else 0)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help=f"a default setting for every row ({', '.join(C.JOB_SETTINGS)})")
    p.add_argument("--format", default="wav", choices=["wav", "flac", "mp3", "ogg"],
                   help="file format for rows whose out has no extension (default: wav)")
    p.add_argument("--sample-rate", type=int, default=None, help="resample every file (default: 24000)")
    p.add_argument("--normalize", default=None, choices=["peak", "rms", "lufs"], help="level every file")
    p.add_argument("--stage-cache", default=None, metavar="DIR",
                   help="a stage cache folder: rows whose earlier stages are cached skip them")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=run_render)
