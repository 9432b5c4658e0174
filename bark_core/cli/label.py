"""Command-line access to the label stage: ``label`` files and ``detect`` the watermark.

Mounted under ``bark-core`` by the main CLI through :func:`add_label_commands`; also runs alone:
``python -m bark_core.cli.label detect take.mp3``.

``detect`` exit status follows grep: 0 when every file carries the watermark, 1 when at least one
readable file does not, 2 when a file could not be read (or the command line is wrong). Only the
watermark decides: the tags, the IPTC XMP field and the C2PA manifest are reported beside it, but
tags can be added or stripped by anyone, and a manifest is only as trustworthy as its signer.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import constants as C
from ..errors import BarkError
from .checks import check_output, finite, positive_int
from .common import run_standalone

UNTRAINED_NOTE = "made with the tiny UNTRAINED model set: noise, not speech"


def _sample_rate(text: str) -> int:
    value = positive_int(text)
    if not 1_000 <= value <= 384_000:
        raise argparse.ArgumentTypeError(f"{text} Hz is outside 1000..384000, the rates audio files use")
    return value


def _bitrate(text: str) -> str:
    if not re.fullmatch(r"[1-9]\d{0,3}k", text.strip().lower()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a bitrate; write kilobits a second, e.g. 96k or 192k")
    return text.strip().lower()


def _positive(text: str) -> float:
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--key",
        help="watermark key as text (default: $BARK_WATERMARK_KEY, else the bark_core project key)",
    )
    group.add_argument(
        "--key-file",
        type=Path,
        help="read the watermark key from a file (trailing newlines stripped), keeping it out of shell history",
    )


def _key_from(args: argparse.Namespace) -> str | bytes | None:
    if getattr(args, "key_file", None) is not None:
        try:
            data = args.key_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise BarkError(f"Cannot read the key file {args.key_file}: {exc.strerror or exc}.") from exc
        if not data:
            raise BarkError(f"The key file {args.key_file} is empty; put the key in it or drop --key-file.")
        return data
    return args.key


def add_label_commands(subparsers: Any) -> None:
    """Add ``label`` and ``detect`` to an argparse subparsers object; each sets ``func(args) -> int``."""
    p = subparsers.add_parser(
        "label",
        help="watermark an audio file and write it with AI-generated metadata (wav, flac, mp3, ogg)",
        description=(
            "Read INPUT (any format ffmpeg decodes, or a bark_core Audio .npz), add the bark_core watermark "
            "unless it is already there, and write OUTPUT with machine-readable AI-generated metadata. "
            "The output format follows OUTPUT's extension unless --format is given."
        ),
    )
    p.add_argument("input", type=Path, help="audio file or Audio artifact (.npz)")
    p.add_argument("output", type=Path, help="labelled file to write (.wav, .flac, .mp3, .ogg)")
    p.add_argument("--format", choices=C.AUDIO_FORMATS, help="output format (default: from OUTPUT's extension)")
    p.add_argument("--sample-rate", type=_sample_rate, help="output sample rate in Hz (default: the input's)")
    p.add_argument("--normalize", choices=("peak", "rms", "lufs"), help="loudness normalisation before labelling")
    p.add_argument("--target-db", type=finite, help="normalisation target in dBFS (peak: -1, rms: -20)")
    p.add_argument("--bitrate", type=_bitrate, help="encoder bitrate for mp3/ogg, e.g. 96k")
    p.add_argument(
        "--strength-db",
        type=finite,
        default=C.WATERMARK_STRENGTH_DB,
        help=f"watermark power relative to the audio, dB (default {C.WATERMARK_STRENGTH_DB:g})",
    )
    p.add_argument("--text", help="prompt text; stored as a SHA-256 unless --include-text")
    p.add_argument("--include-text", action="store_true", help="store the prompt text itself in the metadata")
    p.add_argument("--model", help="model checkpoint id to record")
    p.add_argument("--voice", help="voice (history prompt) to record")
    p.add_argument("--seed", type=int, help="seed to record (the master seed that redoes the take)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--c2pa-cert", type=Path, metavar="PEM",
                   help="certificate chain to sign a C2PA manifest with (default: $BARK_C2PA_CERT; wav/mp3/flac)")
    p.add_argument("--c2pa-key", type=Path, metavar="PEM", help="private key of --c2pa-cert (default: $BARK_C2PA_KEY)")
    _add_key_options(p)
    p.set_defaults(func=run_label)

    d = subparsers.add_parser(
        "detect",
        help="check audio files for the bark_core watermark",
        description=(
            "Print the watermark score and decision for each FILE (any format and sample rate ffmpeg reads), "
            "beside its label tags, its IPTC digital source type (XMP) and whether its C2PA manifest validates. "
            "Exit status: 0 every file is watermarked, 1 some file is not, 2 some file could not be read."
        ),
    )
    d.add_argument("files", nargs="+", type=Path, help="audio files to check")
    d.add_argument("--json", action="store_true", help="print one JSON array with a record per file")
    d.add_argument(
        "--threshold",
        type=_positive,
        help="z-score threshold (default gives a false-positive bound of 1e-4 per file; 6.44 gives 1e-6); "
             "lowering it voids the bound",
    )
    _add_key_options(d)
    d.set_defaults(func=run_detect)


def _load_input(path: Path) -> Any:
    from ..artifacts import Audio, Provenance, load_artifact
    from ..audio_io import read_audio
    from ..label import read_label

    if path.suffix.lower() == ".npz":
        art = load_artifact(path)
        if not isinstance(art, Audio):
            raise BarkError(f"{path} holds a {art.KIND} artifact; label needs audio (decode it first).")
        return art
    samples, rate = read_audio(path)
    existing = read_label(path) or {}
    seed = existing.get("seed")
    settings: dict[str, Any] = {"source": str(path)}
    if existing.get("text_sha256"):
        settings["label"] = {"text_sha256": existing["text_sha256"]}
    prov = Provenance(
        stage="import",
        model=existing.get("model"),
        seed=int(seed) if isinstance(seed, int) or (isinstance(seed, str) and seed.isdigit()) else None,
        voice=existing.get("voice"),
        settings=settings,
    )
    return Audio(provenance=prov, samples=samples, sample_rate=rate)


def run_label(args: argparse.Namespace) -> int:
    """Handler of ``label``; returns the exit status."""
    try:
        # the output first: a wrong name, format or --overwrite costs nothing yet
        check_output(args.output, overwrite=args.overwrite, fmt=args.format, option="output",
                     format_option="--format")
        from ..label import export_audio

        audio = _load_input(args.input)
        meta = {
            k: v
            for k, v in {"text": args.text, "model": args.model, "voice": args.voice, "seed": args.seed}.items()
            if v is not None
        }
        out = export_audio(
            audio,
            args.output,
            format=args.format,
            sample_rate=args.sample_rate,
            normalize=args.normalize,
            target_db=args.target_db,
            bitrate=args.bitrate,
            overwrite=args.overwrite,
            key=_key_from(args),
            strength_db=args.strength_db,
            include_text=args.include_text,
            c2pa_cert=args.c2pa_cert,
            c2pa_key=args.c2pa_key,
            **meta,
        )
    except BarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"labelled {args.input} -> {out}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    """Handler of ``detect``; returns 0 (all marked), 1 (some unmarked) or 2 (some unreadable)."""
    from ..label import detect


    try:
        key = _key_from(args)
    except BarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records: list[dict[str, Any]] = []
    status = 0
    for path in args.files:
        record: dict[str, Any] = {"path": str(path)}
        try:
            result = detect(path, key, threshold=args.threshold)
            record.update(result.to_dict())
            record.update(_labels(path))
            if not result.detected:
                status = max(status, 1)
        except BarkError as exc:
            record.update({"detected": None, "error": str(exc)})
            status = 2
        records.append(record)
        if not args.json:
            _print_record(record)
    if args.json:
        print(json.dumps(records, indent=2))
    return status


def _labels(path: Path) -> dict[str, Any]:
    """The three readable labels of a file, each None when absent or unreadable."""
    from ..label import read_label, read_manifest, read_xmp

    out: dict[str, Any] = {}
    for name, reader in (("label", read_label), ("xmp", read_xmp), ("c2pa", read_manifest)):
        try:
            value = reader(path)
        except (BarkError, OSError, ValueError):
            value = None
        if name == "xmp":
            value = (value or {}).get("Iptc4xmpExt:DigitalSourceType")
        out[name] = value
    return out


def _print_record(record: dict[str, Any]) -> None:
    if record.get("error"):
        print(f"{record['path']}: error: {record['error']}", file=sys.stderr)
        return
    verdict = "watermark DETECTED" if record["detected"] else "no watermark"
    lab = record.get("label")
    tags = (
        f"tags: AI_GENERATED ({lab.get('generator', '?')} {lab.get('generator_version', '')})".rstrip()
        if lab
        else "tags: none"
    )
    if lab and lab.get("untrained"):
        tags += f"; {UNTRAINED_NOTE}"
    xmp = f"XMP {str(record['xmp']).rsplit('/', 1)[-1]}" if record.get("xmp") else "XMP none"
    c2pa = record.get("c2pa")
    if not c2pa:
        c2pa_text = "C2PA none"
    elif c2pa.get("valid") is None:
        c2pa_text = "C2PA unchecked (c2pa not installed)"
    else:
        what = "valid" if c2pa["valid"] else "INVALID"
        detail = ", ".join(c2pa.get("failures") or []) or c2pa.get("error") or ""
        trust = ", trusted signer" if c2pa.get("trusted") else ", signer not in trust list"
        trust = trust if c2pa["valid"] else ""
        c2pa_text = f"C2PA {what} ({c2pa.get('state')}{trust}{': ' + detail if detail else ''})"
    p_value = record["p_value"]
    p_text = f"p <= {p_value:.2g}" if p_value > 0 else "p < 1e-300"
    score = f"score {record['score']:.1f}, threshold {record['threshold']:.2f}, {p_text}"
    print(f"{record['path']}: {verdict} ({score}); {tags}; {xmp}; {c2pa_text}")


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m bark_core.cli.label {label,detect}``."""
    return run_standalone("python -m bark_core.cli.label", __doc__.splitlines()[0], add_label_commands, argv)


if __name__ == "__main__":
    sys.exit(main())
