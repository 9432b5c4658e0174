"""``bark-say "Hello there" --voice v2/en_speaker_6 -o hello.wav``: text to a labelled audio file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import constants as C
from ..errors import OutputPathError, ParameterError
from .checks import check_new_file, check_output, check_writable_folder, probability, seconds
from .checks import seed as seed_type
from .checks import temperature as temp_type
from .common import CliParser, add_model_args, models_from, run


class ProgressBar:
    """Stage progress on stderr; the core only calls ``progress(stage, done, total)``.

    On a terminal it is one redrawn line, at most one redraw per ``interval`` seconds. Into a log
    file or pipe it writes plain lines instead: one when a stage ends, and one every ``log_every``
    seconds while a long stage runs. ``clock`` is injectable so tests need no real time.
    """

    def __init__(self, stream: Any = None, width: int = 30, interval: float = 0.1, *,
                 clock: Callable[[], float] = time.monotonic, tty: bool | None = None, log_every: float = 10.0):
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.clock = clock
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty()) if tty is None else tty
        self.log_every = log_every
        self.stage: str | None = None
        self.t0 = self.drawn = clock()
        self.finished = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage != self.stage:
            if self.stage is not None and self.tty:
                self.stream.write("\n")
            self.stage, self.t0, self.drawn, self.finished = stage, now, now, False
        elif self.finished:
            return  # a stage that reports 100 % twice is drawn once
        frac = 0.0 if total <= 0 else min(1.0, done / total)
        ended = done >= total
        wait = self.interval if self.tty else self.log_every
        if not ended and now - self.drawn < wait:
            return
        self.drawn, self.finished = now, ended
        if self.tty:
            fill = int(round(frac * self.width))
            self.stream.write(f"\r{stage:>8} [{'#' * fill}{'.' * (self.width - fill)}] {frac * 100:5.1f}% "
                              f"{now - self.t0:6.1f}s")
        elif ended:
            self.stream.write(f"{stage}: done in {now - self.t0:.1f} s\n")
        else:
            self.stream.write(f"{stage}: {frac * 100:.0f}% after {now - self.t0:.1f} s\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stage is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _check_say_args(args: argparse.Namespace) -> Path:
    """Every path the run will write, checked before any model loads."""
    out, _ = check_output(args.output, overwrite=args.overwrite)
    if getattr(args, "tries", 1) != 1 and not args.long:
        raise ParameterError("--tries scores and retakes the chunks of a long text; add --long (for one line "
                             "with retakes, write it as a one-line script for bark-core script).")
    if not 1 <= getattr(args, "tries", 1) <= 20:
        raise ParameterError(f"--tries must be 1..20 candidates per chunk, got {args.tries}.")
    if args.stream and args.long:
        raise ParameterError("--stream makes one take; it cannot be combined with --long. Drop one of them.")
    if args.stream:
        from ..label.stream import check_chunk_s, check_fine_window

        check_chunk_s(args.chunk_s)
        check_fine_window(args.fine_window)
    if args.save_artifacts:
        folder = Path(args.save_artifacts).expanduser()
        check_writable_folder(folder, "--save-artifacts")
        kinds = ("semantic", "coarse", "fine")
        names = [f"{out.stem}.{k}.npz" for k in kinds] if not args.long else [f"{out.stem}.chunk*.{k}.npz"
                                                                              for k in kinds]
        for name in names:
            clash = sorted(folder.glob(name)) if folder.is_dir() else []
            if clash and not args.overwrite:
                raise OutputPathError(
                    f"--save-artifacts {args.save_artifacts}: {clash[0].name} is already there; add --overwrite "
                    "to replace it, or choose another folder or -o name.")
    if args.save_voice:
        voice = Path(args.save_voice)
        check_new_file(voice if voice.suffix == ".npz" else voice.with_name(voice.name + ".npz"), "--save-voice",
                       overwrite=args.overwrite)
    return out


def run_say(args: argparse.Namespace) -> int:
    out = _check_say_args(args)  # before torch, before any model: a wrong path costs a second, not minutes
    from ..stages import cpu_threads

    models = models_from(args)
    with cpu_threads(models, None if args.threads == "auto" else args.threads):
        return _say(args, models, out)


def _say(args: argparse.Namespace, models: Any, out: Path) -> int:
    from ..label import export_audio
    from ..stages import generate, generate_long

    if models.untrained:
        print("note: tiny UNTRAINED models - the result is noise, not speech.", file=sys.stderr)
    bar = None if args.quiet else ProgressBar()
    settings = dict(semantic_temp=args.text_temp, coarse_temp=args.coarse_temp, fine_temp=args.fine_temp,
                    min_eos_p=args.min_eos_p, max_gen_duration_s=args.max_duration)
    try:
        if args.long:
            progress = None if bar is None else (lambda k, n, stage, done, total: bar(f"{k}/{n} {stage}", done, total))
            scoring = {}
            if args.tries > 1:  # each chunk judged on WER and similarity to chunk 1, retaken until it passes
                from ..script import RetakePolicy, chunk_scorer

                policy = RetakePolicy(max_tries=args.tries, asr_engine=args.asr)
                scoring = {"scorer": chunk_scorer(policy), "max_tries": args.tries}
            result = generate_long(models, args.text, args.voice, seed=args.seed, progress=progress, **scoring,
                                   **settings)
            takes, audio, master = result.takes, result.audio, result.seed
            meta = result.label_meta()
        elif args.stream:
            take = _stream(args, models, out, settings)
            takes, audio, master = [take], take.audio, take.seed
            meta = take.label_meta()
        else:
            take = generate(models, args.text, args.voice, seed=args.seed, progress=bar, **settings)
            takes, audio, master = [take], take.audio, take.seed
            meta = take.label_meta()
    finally:
        if bar:
            bar.close()
    if args.no_label:
        written = export_audio(audio, out, overwrite=args.overwrite, label=False)
    else:  # every file the CLI writes goes through the label stage (watermark + provenance tags)
        written = export_audio(audio, out, overwrite=args.overwrite, **meta)
    if args.save_artifacts:
        folder = Path(args.save_artifacts)
        for i, take in enumerate(takes, 1):
            stem = out.stem if len(takes) == 1 and not args.long else f"{out.stem}.chunk{i:03d}"
            for art in (take.semantic, take.coarse, take.fine):
                art.save(folder / f"{stem}.{art.KIND}.npz", overwrite=args.overwrite)
    if args.save_voice:
        takes[-1].voice(name=out.stem).save(args.save_voice, overwrite=args.overwrite)
    if args.long and args.tries > 1:
        print(result.drift_report())
    print(f"wrote {written} ({audio.duration_s:.2f} s, seed {master}; --seed {master} makes it again)")
    return 0


def _stream(args: argparse.Namespace, models: Any, out: Path, settings: dict[str, Any]) -> Any:
    """Write the watermarked chunks to a growing WAV under a temporary name beside ``out``; return the take.

    The temporary file (fileio's part naming, so a crash leaves only a stale part that later writes
    clean up) is deleted at the end: the published file is the labelled export of the whole take, so
    an interrupted stream never leaves anything under the final name.
    """
    import tempfile
    import wave

    import numpy as np

    from ..fileio import PART_PREFIX, PART_SUFFIX
    from ..label import generate_stream

    started = time.perf_counter()
    parent = out.parent if str(out.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=PART_PREFIX, suffix=PART_SUFFIX, dir=parent)
    take = None
    try:
        with open(fd, "wb") as fh, wave.open(fh, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(C.SAMPLE_RATE)
            for chunk in generate_stream(models, args.text, args.voice, seed=args.seed, chunk_s=args.chunk_s,
                                         fine_window=args.fine_window, **settings):
                if chunk.index == 0 and not args.quiet:
                    print(f"first audio after {time.perf_counter() - started:.2f} s (growing in {tmp})",
                          file=sys.stderr)
                wav.writeframes((np.clip(chunk.samples, -1, 1) * 32767).astype("<i2").tobytes())
                fh.flush()
                take = chunk.take or take
    finally:
        Path(tmp).unlink(missing_ok=True)
    return take


def add_say_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="what to say; cues like [laughter] or ♪ pass through")
    p.add_argument("-o", "--output", default="bark.wav",
                   help="output audio file: .wav, .flac, .mp3 or .ogg (default: bark.wav); checked before any "
                        "work starts")
    p.add_argument("--voice", default=None, help="preset (v2/en_speaker_6, announcer) or a voice .npz")
    p.add_argument("--seed", type=seed_type, default=None,
                   help="master seed, 0..2**64-1: the same seed gives the same take (default: random; the seed "
                        "used is printed and written into the label)")
    g = p.add_argument_group("sampling")
    g.add_argument("--text-temp", type=temp_type, default=C.DEFAULT_SEMANTIC_TEMP, metavar="T",
                   help=f"temperature of the semantic (text) stage, > 0; lower is more predictable, higher more "
                        f"varied (default: {C.DEFAULT_SEMANTIC_TEMP})")
    g.add_argument("--coarse-temp", type=temp_type, default=C.DEFAULT_COARSE_TEMP, metavar="T",
                   help=f"temperature of the coarse acoustic stage, > 0 (default: {C.DEFAULT_COARSE_TEMP})")
    g.add_argument("--fine-temp", type=temp_type, default=C.DEFAULT_FINE_TEMP, metavar="T",
                   help=f"temperature of the fine acoustic stage, > 0 (default: {C.DEFAULT_FINE_TEMP})")
    g.add_argument("--min-eos-p", type=probability, default=C.DEFAULT_MIN_EOS_P, metavar="P",
                   help="end speech once the end-of-speech probability reaches P, 0..1; lower ends sooner "
                        f"(default: {C.DEFAULT_MIN_EOS_P})")
    g.add_argument("--max-duration", type=seconds, default=None, metavar="SECONDS",
                   help="stop the semantic stage after this much audio (default: up to ~15 s; a quick smoke run "
                        "needs 1)")
    p.add_argument("--long", action="store_true",
                   help="text longer than one generation (~14 s): speak it in sentence chunks and join them")
    p.add_argument("--tries", type=int, default=1, metavar="N",
                   help="with --long: score each chunk (WER of an offline transcript, speaker similarity to the "
                        "first chunk, quality) and retake it up to N candidates; prints each chunk's drift "
                        "(default 1: no scoring)")
    p.add_argument("--asr", default="auto", choices=["auto", "faster-whisper", "whisper", "pocketsphinx"],
                   help="with --tries: the recogniser (auto: a cached Whisper if installed, else pocketsphinx)")
    p.add_argument("--stream", action="store_true",
                   help="make the audio in chunks as the coarse stage goes (prints the time to first audio); the "
                        "chunks grow a temporary WAV beside the output, published labelled when the take is done")
    p.add_argument("--chunk-s", type=float, default=1.0, metavar="SECONDS",
                   help="--stream: seconds of audio per chunk after the first, short one (0.4 to 8; default 1)")
    p.add_argument("--fine-window", type=int, default=256, metavar="FRAMES",
                   help="--stream: frames each streamed fine pass spans (144 to 1024; default 256). 1024 costs "
                        "four times as much per chunk and makes a take that fits one chunk equal to the one-shot take")
    p.add_argument("--save-artifacts", metavar="DIR", help="also save semantic/coarse/fine artifacts (.npz) here")
    p.add_argument("--save-voice", metavar="NPZ", help="also save this take as a voice file")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-label", action="store_true",
                   help="skip the synthetic-audio label (watermark + metadata); logged as a warning. "
                        "Public use of generated audio should carry the label.")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_args(p)


def say_main(argv: list[str] | None = None) -> int:
    parser = CliParser(prog="bark-say", description="Turn text into a labelled 24 kHz audio file with Bark. "
                       "Every argument is checked before any model loads; errors are one line, exit status 2.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens; show tracebacks")
    add_say_arguments(parser)
    parser.set_defaults(func=run_say)
    return run(parser, argv)

