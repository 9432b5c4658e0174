"""Housekeeping commands: write the tiny model set, show or clear the stage cache, list voice presets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import constants as C
from .checks import seed


def _tiny(args: argparse.Namespace) -> int:
    from ..models import write_tiny_model_set

    folder = write_tiny_model_set(args.folder, seed=args.seed, max_gen_duration_s=C.TINY_TAKE_S)
    print(f"wrote the tiny UNTRAINED model set to {folder} (use: --models {folder})")
    return 0


def _voices(args: argparse.Namespace) -> int:
    from ..voices import presets_by_language

    for lang, names in presets_by_language().items():
        print(f"{lang}: {' '.join(names)}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from ..cache import StageCache

    cache = StageCache(args.dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} cached stage results from {cache.folder}")
    else:
        print(json.dumps(cache.info(), indent=2))
    return 0


def add_tool_commands(sub: Any) -> None:
    """Add ``tiny-models``, ``cache`` and ``voices`` to an argparse subparsers object."""
    p = sub.add_parser("tiny-models", help="write the tiny untrained model set into a folder",
                       description="Write a complete Bark model set with tiny UNTRAINED random weights, in the real "
                                   "file layouts, into FOLDER: everything runs offline end to end, and the audio "
                                   f"is noise, and takes stop after {C.TINY_TAKE_S:g} s unless --max-duration says "
                                   "otherwise. Use it with --models FOLDER (bark-say --tiny uses one in the cache).")
    p.add_argument("folder", help="where to write the set (created if missing)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random weights (default: 0)")
    p.set_defaults(func=_tiny)
    p = sub.add_parser("cache", help="show or clear the on-disk stage cache",
                       description="info: entries, size and hit counts of the stage cache; clear: remove its "
                                   "entries.")
    p.add_argument("action", choices=["info", "clear"], help="info or clear")
    p.add_argument("--dir", default=None, help="cache folder (default: ~/.cache/bark_core/stages)")
    p.set_defaults(func=_cache)
    p = sub.add_parser("voices", help="list the built-in voice presets",
                       description="List the voice preset names by language; pass one to --voice.")
    p.set_defaults(func=_voices)
