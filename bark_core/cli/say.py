"""``bark-say "Hello there" --voice v2/en_speaker_6 -o hello.wav``: text to a labelled audio file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .. import constants as C
from ..label import export_audio
from ..stages import generate
from .common import add_model_args, models_from, run


class ProgressBar:
    """A one-line text bar on stderr; the core only calls ``progress(stage, done, total)``."""

    def __init__(self, stream: Any = None, width: int = 30, interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.stage: str | None = None
        self.t0 = self.drawn = time.monotonic()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:
            if self.stage is not None:
                self.stream.write("\n")
            self.stage, self.t0, self.drawn = stage, now, 0.0
        elif done < total and now - self.drawn < self.interval:
            return  # at most ~10 redraws a second, whatever the token rate
        self.drawn = now
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        fill = int(round(frac * self.width))
        self.stream.write(f"\r{stage:>8} [{'#' * fill}{'.' * (self.width - fill)}] {frac * 100:5.1f}% "
                          f"{time.monotonic() - self.t0:6.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()


def run_say(args: argparse.Namespace) -> int:
    models = models_from(args)
    if models.untrained:
        print("note: tiny UNTRAINED models - the result is noise, not speech.", file=sys.stderr)
    out = Path(args.output)
    bar = None if args.quiet else ProgressBar()
    try:
        take = generate(models, args.text, args.voice, seed=args.seed, semantic_temp=args.text_temp,
                        coarse_temp=args.coarse_temp, fine_temp=args.fine_temp, min_eos_p=args.min_eos_p,
                        progress=bar)
    finally:
        if bar:
            bar.close()
    written = _write_audio(take.audio, out, args, **take.label_meta(seed=args.seed))
    if args.save_artifacts:
        folder = Path(args.save_artifacts)
        for art in (take.semantic, take.coarse, take.fine):
            art.save(folder / f"{out.stem}.{art.KIND}.npz")
    if args.save_voice:
        take.voice(name=out.stem).save(args.save_voice)
    print(f"wrote {written} ({take.audio.duration_s:.2f} s, seed {take.semantic.provenance.seed})")
    return 0


def _write_audio(audio: Any, out: Path, args: argparse.Namespace, **meta: Any) -> Path:
    """Every file the CLI writes goes through the label stage (watermark + provenance tags)."""
    if args.no_label:
        return export_audio(audio, out, overwrite=args.overwrite, label=False)
    return export_audio(audio, out, overwrite=args.overwrite, **meta)


def add_say_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="what to say; cues like [laughter] or ♪ pass through")
    p.add_argument("-o", "--output", default="bark.wav", help="output audio file (default: bark.wav)")
    p.add_argument("--voice", default=None, help="preset (v2/en_speaker_6, announcer) or a voice .npz")
    p.add_argument("--seed", type=int, default=None, help="same seed, same audio (default: random, printed)")
    p.add_argument("--text-temp", type=float, default=C.DEFAULT_SEMANTIC_TEMP)
    p.add_argument("--coarse-temp", type=float, default=C.DEFAULT_COARSE_TEMP)
    p.add_argument("--fine-temp", type=float, default=C.DEFAULT_FINE_TEMP)
    p.add_argument("--min-eos-p", type=float, default=C.DEFAULT_MIN_EOS_P)
    p.add_argument("--save-artifacts", metavar="DIR", help="also save semantic/coarse/fine artifacts (.npz) here")
    p.add_argument("--save-voice", metavar="NPZ", help="also save this take as a voice file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--no-label", action="store_true",
                   help="skip the synthetic-audio label (watermark + metadata); logged as a warning. "
                        "Public use of generated audio should carry the label.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_args(p)


def say_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bark-say", description="Turn text into a 24 kHz audio file with Bark.")
    parser.add_argument("-v", "--verbose", action="store_true")
    add_say_arguments(parser)
    parser.set_defaults(func=run_say)
    return run(parser, argv)
