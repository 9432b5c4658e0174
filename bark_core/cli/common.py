"""What every command shares: model options, one-line errors with exit status 2, and standalone entry points."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..errors import BarkError
from ..models import tiny_model_dir
from ..stages import BarkModels


def add_model_args(p: argparse.ArgumentParser) -> None:
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
                        "(fast on CUDA). On CPU both give the same tokens for a seed; on CUDA in bf16 they match "
                        "until a rounding near-tie, then differ")
    g.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: the hub's own)")
    g.add_argument("--offline", action="store_true", help="use only files already in the cache")


def models_from(args: argparse.Namespace) -> Any:
    source = tiny_model_dir() if args.tiny else args.models
    return BarkModels(source, size=args.size, device=args.device, dtype=args.dtype, offload=args.offload,
                      decoder=args.decoder, cache_dir=args.cache_dir, local_files_only=True if args.offline else None)


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
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


def run_standalone(prog: str, description: str, add_commands: Any, argv: Any = None) -> int:
    """``python -m bark_core.<module>`` entry points: the same parsing and one-line errors as ``bark-core``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser, None if argv is None else list(argv))
