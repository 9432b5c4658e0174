"""Housekeeping commands: write the tiny model set, show or clear the stage cache, list voice presets."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..cache import StageCache
from ..models import write_tiny_model_set
from ..voices import presets_by_language


def _tiny(args: argparse.Namespace) -> int:
    folder = write_tiny_model_set(args.folder, seed=args.seed)
    print(f"wrote the tiny UNTRAINED model set to {folder} (use: --models {folder})")
    return 0


def _voices(args: argparse.Namespace) -> int:
    for lang, names in presets_by_language().items():
        print(f"{lang}: {' '.join(names)}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    cache = StageCache(args.dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} cached stage results from {cache.folder}")
    else:
        print(json.dumps(cache.info(), indent=2))
    return 0


def add_tool_commands(sub: Any) -> None:
    """Add ``tiny-models``, ``cache`` and ``voices`` to an argparse subparsers object."""
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
