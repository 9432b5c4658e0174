"""Command-line access to the automatic quality check: ``check`` audio files before anyone publishes them.

Mounted under ``bark-core`` by the main CLI through :func:`add_quality_commands`; also runs alone:
``python -m bark_core.cli.quality check take.wav --text "Hello there"``.

Exit status: 0 when every file passed (warnings allowed), 1 when some file has a "fail" flag,
2 when a file could not be read (or the command line is wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import constants as C
from ..errors import BarkError
from .common import run_standalone
from .label import UNTRAINED_NOTE


def add_quality_commands(subparsers: Any) -> None:
    """Add ``check`` to an argparse subparsers object; it sets ``func(args) -> int``."""
    p = subparsers.add_parser(
        "check",
        help="measure noise, clarity and loudness of audio files and flag problems",
        description=(
            "Report noise floor, speech-to-noise ratio, clipping, DC offset, hum, hiss, speech activity, "
            "silences, speaking rate (with --text), abrupt endings and loudness (LUFS) for each FILE (any format "
            "ffmpeg reads, or a bark_core Audio .npz). Exit status: 0 all passed, 1 some file has a fail flag, "
            "2 some file could not be read."
        ),
    )
    p.add_argument("files", nargs="+", type=Path, help="audio files or Audio artifacts (.npz)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", help="the prompt text, for the speaking-rate check and ASR word error rate")
    src.add_argument("--text-file", type=Path, help="read the prompt text from a UTF-8 file")
    p.add_argument("--expect", choices=C.QUALITY_EXPECT, default="speech",
                   help="speech (default), music (no speech checks) or any (technical checks only)")
    p.add_argument("--asr", action="store_true",
                   help="also transcribe with pocketsphinx (English, approximate; needs pip install pocketsphinx)")
    p.add_argument("--json", action="store_true", help="print one JSON array with a full report per file")
    p.set_defaults(func=run_check)

    r = subparsers.add_parser(
        "review",
        help="approve, reject or show the human review of a take",
        description=(
            "Record a reviewer's decision for the take a labelled audio file (exported by bark_core) or an Audio "
            "artifact (.npz) holds. Public exports (export_audio(public=True)) need an approval on record."
        ),
    )
    r.add_argument("action", choices=["approve", "reject", "show"])
    r.add_argument("file", type=Path, help="labelled audio file or Audio artifact (.npz)")
    r.add_argument("--reviewer", help="who listened (required for approve/reject)")
    r.add_argument("--note", default="", help="why: what you heard")
    r.add_argument("--store", type=Path, default=None, help="review folder (default: ~/.cache/bark_core/reviews)")
    r.set_defaults(func=run_review)


def run_review(args: argparse.Namespace) -> int:
    """``review approve|reject|show FILE``; exit 0 when the take is approved after the call, else 1."""
    from ..label import approve, reject, review_state

    if args.action == "show":
        review = review_state(str(args.file), store=args.store)
    elif not args.reviewer:
        raise BarkError("review approve/reject needs --reviewer NAME: a decision must name the person who listened.")
    else:
        decide = approve if args.action == "approve" else reject
        review = decide(str(args.file), args.reviewer, args.note, store=args.store)
    who = f" by {review.reviewer} at {review.time}" if review.reviewer else ""
    note = f": {review.note}" if review.note else ""
    print(f"{args.file}: {review.state}{who}{note}")
    return 0 if review.state == "approved" else 1


def _text_from(args: argparse.Namespace) -> str | None:
    if getattr(args, "text_file", None) is not None:
        try:
            return args.text_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise BarkError(f"Cannot read the text file {args.text_file}: {exc.strerror or exc}.") from exc
    return args.text


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``check``; returns 0 (all passed), 1 (some failed) or 2 (some unreadable)."""
    from ..quality import check

    try:
        text = _text_from(args)
    except BarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records: list[dict[str, Any]] = []
    status = 0
    for path in args.files:
        try:
            report = check(path, text=text, expect=args.expect, asr=args.asr)
        except BarkError as exc:
            status = 2
            records.append({"source": str(path), "error": str(exc)})
            if not args.json:
                print(f"{path}: error: {exc}", file=sys.stderr)
            continue
        if not report.passed:
            status = max(status, 1)
        untrained = _untrained(path)
        records.append({**report.to_dict(), **({"untrained": True} if untrained else {})})
        if not args.json:
            print(report.to_text())
            if untrained:
                print(f"  note:    {UNTRAINED_NOTE} (its label says so); judge real takes only")
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
    return status


def _untrained(path: Path) -> bool:
    """Whether a file's label (or an Audio artifact's provenance) says untrained weights made it."""
    from ..artifacts import load_artifact
    from ..label import read_label

    try:
        if path.suffix.lower() == ".npz":
            return bool(load_artifact(path).provenance.extra.get("untrained"))
        return bool((read_label(path) or {}).get("untrained"))
    except BarkError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m bark_core.cli.quality check FILE ...``."""
    return run_standalone("python -m bark_core.cli.quality", __doc__.splitlines()[0], add_quality_commands, argv)


if __name__ == "__main__":
    sys.exit(main())
