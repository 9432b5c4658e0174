"""``bark-core <command>``: every command registered in one place, each defined in its own module."""

from __future__ import annotations

import argparse
import sys

from .clone import add_clone_commands
from .common import run
from .label import add_label_commands
from .quality import add_quality_commands
from .say import add_say_arguments, run_say
from .tools import add_tool_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bark-core", description="Bark text-to-audio, stage by stage.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("say", help="text to an audio file")
    add_say_arguments(p)
    p.set_defaults(func=run_say)
    add_tool_commands(sub)
    add_label_commands(sub)
    add_quality_commands(sub)
    add_clone_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
