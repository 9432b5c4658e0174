"""Command line: ``bark-say "Hello there" --voice v2/en_speaker_6 -o hello.wav`` and ``bark-core <command>``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from . import constants as C
from .errors import BarkError


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


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument("--models", default="suno",
                   help="'suno' (original weights from the hub), a hub repo in transformers format "
                        "(suno/bark-small), or a local folder (default: suno)")
    g.add_argument("--tiny", action="store_true",
                   help="use the tiny UNTRAINED model set (offline smoke run; produces noise)")
    g.add_argument("--size", choices=["large", "small"], default="large", help="model size (default: large)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps (default: auto)")
    g.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="precision of the transformers (default: bf16 on CUDA, fp32 elsewhere)")
    g.add_argument("--offload", action="store_true", help="keep idle stages on the CPU to save GPU memory")
    g.add_argument("--decoder", default="auto", choices=["auto", "fast", "eager"],
                   help="decode loop: fast (static cache, CUDA graphs), eager (the reference) or auto "
                        "(fast on CUDA; fast gives other audio than eager for the same seed)")
    g.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: the hub's own)")
    g.add_argument("--offline", action="store_true", help="use only files already in the cache")


def _models_from(args: argparse.Namespace) -> Any:
    from .pipeline import BarkModels
    from .tiny import tiny_model_dir

    source = tiny_model_dir() if args.tiny else args.models
    return BarkModels(source, size=args.size, device=args.device, dtype=args.dtype, offload=args.offload,
                      decoder=args.decoder, cache_dir=args.cache_dir, local_files_only=True if args.offline else None)


def _say(args: argparse.Namespace) -> int:
    from .pipeline import generate

    models = _models_from(args)
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
    from .export import export_audio

    if args.no_label:
        return export_audio(audio, out, overwrite=args.overwrite, label=False)
    return export_audio(audio, out, overwrite=args.overwrite, **meta)


def _say_parser(p: argparse.ArgumentParser) -> None:
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
    _add_model_args(p)


def _tiny(args: argparse.Namespace) -> int:
    from .tiny import write_tiny_model_set

    folder = write_tiny_model_set(args.folder, seed=args.seed)
    print(f"wrote the tiny UNTRAINED model set to {folder} (use: --models {folder})")
    return 0


def _voices(args: argparse.Namespace) -> int:
    from .voices import presets_by_language

    for lang, names in presets_by_language().items():
        print(f"{lang}: {' '.join(names)}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    import json

    from .cache import StageCache

    cache = StageCache(args.dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} cached stage results from {cache.folder}")
    else:
        print(json.dumps(cache.info(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bark-core", description="Bark text-to-audio, stage by stage.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("say", help="text to an audio file")
    _say_parser(p)
    p.set_defaults(func=_say)
    p = sub.add_parser("tiny-models", help="write the tiny untrained model set into a folder")
    p.add_argument("folder")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tiny)
    p = sub.add_parser("cache", help="show or clear the on-disk stage cache")
    p.add_argument("action", choices=["info", "clear"])
    p.add_argument("--dir", default=None, help="cache folder (default: ~/.cache/bark_core/stages)")
    p.set_defaults(func=_cache)
    p = sub.add_parser("voices", help="list the built-in voice presets")
    p.set_defaults(func=_voices)
    from .label_cli import add_label_commands
    from .quality_cli import add_quality_commands

    add_label_commands(sub)
    add_quality_commands(sub)
    return parser


def _run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except BarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return _run(build_parser(), argv)


def run_standalone(prog: str, description: str, add_commands: Any, argv: Any = None) -> int:
    """``python -m bark_core.<module>`` entry points: the same parsing and one-line errors as ``bark-core``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return _run(parser, None if argv is None else list(argv))


def say_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bark-say", description="Turn text into a 24 kHz audio file with Bark.")
    parser.add_argument("-v", "--verbose", action="store_true")
    _say_parser(parser)
    parser.set_defaults(func=_say)
    return _run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
