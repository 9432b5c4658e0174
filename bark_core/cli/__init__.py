"""The ``bark-say`` and ``bark-core`` commands; each subcommand lives in its own module and is
registered in :mod:`bark_core.cli.app`."""

from .app import build_parser, main
from .common import run_standalone
from .say import ProgressBar, say_main

__all__ = ["run_standalone", "build_parser", "main", "ProgressBar", "say_main"]
