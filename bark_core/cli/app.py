"""``bark-core <command>``: every command registered in one place, each defined in its own module."""

from __future__ import annotations

import sys

from .clone import add_clone_commands
from .common import CliParser, run
from .label import add_label_commands
from .quality import add_quality_commands
from .render import add_render_commands
from .say import add_say_arguments, run_say
from .script import add_script_commands
from .tools import add_tool_commands


def build_parser() -> CliParser:
    parser = CliParser(prog="bark-core", description="Bark text-to-audio, stage by stage. Errors are one line "
                       "and exit status 2.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)
    p = sub.add_parser("say", help="text to an audio file",
                       description="Turn text into a labelled 24 kHz audio file (the same as bark-say).")
    add_say_arguments(p)
    p.set_defaults(func=run_say)
    add_tool_commands(sub)
    add_label_commands(sub)
    add_quality_commands(sub)
    add_script_commands(sub)
    add_render_commands(sub)
    add_clone_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
