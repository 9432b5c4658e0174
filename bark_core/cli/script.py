"""``bark-core script SCRIPT [--voices MAP] [--srt] -o DIR``: a dialogue script or subtitle file to a labelled
scene, every line scored and retaken until it passes, with a summary table and a report.

Exit status: 0 when every line passed, 1 when some line kept a failing best take (see the report), 2 on errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import constants as C
from .common import add_model_args, models_from, run_standalone
from .say import ProgressBar


def add_script_commands(subparsers: Any) -> None:
    """Add ``script`` to an argparse subparsers object; it sets ``func(args) -> int``."""
    p = subparsers.add_parser(
        "script", help="render a dialogue script or .srt/.vtt subtitles, with automatic retakes",
        description="Speak every line of SCRIPT (the 'Speaker: text' format with [pause 0.8s] tags, or .srt/.vtt "
                    "cues placed at their times). Each line is generated up to --tries times until it passes the "
                    "checks (WER of an offline transcript, speaker similarity, quality, cue fit); the best take "
                    "is kept. Writes DIR/scene.wav (labelled), report.json, report.txt, lines/*.wav and, with "
                    "--srt, scene.srt. Exit status: 0 all lines passed, 1 some did not, 2 error.")
    p.add_argument("script", type=Path, help="script file (.txt), SubRip (.srt) or WebVTT (.vtt)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--voices", type=Path, help="speaker -> voice map (.toml or .json); overrides the script header")
    p.add_argument("--srt", action="store_true", help="also write scene.srt: the subtitles of what was placed")
    p.add_argument("--kind", choices=["script", "srt", "vtt"], help="input format (default: from the extension)")
    p.add_argument("--seed", type=int, help="global seed (default: the header's seed, else random and reported)")
    p.add_argument("--tries", type=int, default=C.SCRIPT_MAX_TRIES, help=f"candidates per line at most "
                                                                        f"(default {C.SCRIPT_MAX_TRIES})")
    p.add_argument("--wer-max", type=float, help="WER above which a take is retaken (default: per ASR engine)")
    p.add_argument("--similarity-min", type=float, help="speaker similarity below which a take is retaken "
                                                        "(default: per speaker model)")
    p.add_argument("--asr", default="auto", choices=["auto", "faster-whisper", "whisper", "pocketsphinx"],
                   help="recogniser (auto: a cached Whisper if installed, else pocketsphinx)")
    p.add_argument("--no-asr", action="store_true", help="skip the on-script (WER) check")
    p.add_argument("--no-speaker", action="store_true", help="skip the same-speaker check")
    p.add_argument("--no-qc", action="store_true", help="skip the quality checks")
    p.add_argument("--max-duration", type=float, default=None, help="longest take per segment, seconds")
    p.add_argument("--text-temp", type=float, default=C.DEFAULT_SEMANTIC_TEMP, help="semantic stage temperature")
    p.add_argument("--coarse-temp", type=float, default=C.DEFAULT_COARSE_TEMP, help="coarse stage temperature")
    p.add_argument("--fine-temp", type=float, default=C.DEFAULT_FINE_TEMP, help="fine stage temperature")
    p.add_argument("--no-cache", action="store_true", help="do not reuse or store stage results on disk")
    p.add_argument("--overwrite", action="store_true", help="replace an existing scene in DIR")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=run_script)


class LineProgress:
    """The core's ``progress(line, lines, try, tries, stage, done, total)`` as one bar per line, try and stage."""

    def __init__(self, bar: ProgressBar, speakers: list[str | None]):
        self.bar, self.speakers = bar, speakers

    def __call__(self, line: int, lines: int, attempt: int, tries: int, stage: str, done: int, total: int) -> None:
        who = self.speakers[line - 1] if line - 1 < len(self.speakers) else ""
        self.bar(f"line {line}/{lines} {who} try {attempt}/{tries} {stage}", done, total)


def run_script(args: argparse.Namespace) -> int:
    from ..cache import StageCache  # heavy imports only when a script runs
    from ..script import RetakePolicy, VoiceMap, read_script, render_script

    script = read_script(args.script, kind=args.kind)
    voices = VoiceMap.from_file(args.voices) if args.voices else None
    models = models_from(args)
    if not args.no_cache:
        models.cache = StageCache()  # a re-run (or a retake) reuses every stage already made
    if models.untrained:
        print("note: tiny UNTRAINED models - the result is noise, so every check is expected to fail.",
              file=sys.stderr)
    policy = RetakePolicy(max_tries=args.tries, wer_max=args.wer_max, similarity_min=args.similarity_min,
                          check_script=not args.no_asr, check_speaker=not args.no_speaker,
                          check_quality=not args.no_qc, asr_engine=args.asr)
    bar = None if args.quiet else ProgressBar()
    try:
        prod = render_script(models, script, voices, seed=args.seed, policy=policy,
                             progress=None if bar is None else LineProgress(bar, [ln.speaker for ln in script.spoken]),
                             semantic_temp=args.text_temp, coarse_temp=args.coarse_temp, fine_temp=args.fine_temp,
                             max_gen_duration_s=args.max_duration)
    finally:
        if bar:
            bar.close()
    paths = prod.save(args.output, overwrite=args.overwrite, srt=args.srt)
    print(prod.table())
    print(f"wrote {paths['audio']} ({prod.audio.duration_s:.2f} s), {args.output / 'report.json'}"
          + (f", {paths['scene.srt']}" if "scene.srt" in paths else ""))
    return 0 if all(r["passed"] for r in prod.rows()) else 1


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m bark_core.cli.script script SCENE.txt -o out/``."""
    return run_standalone("python -m bark_core.cli.script", __doc__.splitlines()[0], add_script_commands, argv)


if __name__ == "__main__":
    sys.exit(main())
