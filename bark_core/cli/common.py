"""What every command shares: the parser, model options, one-line errors with exit status 2, and
standalone entry points.

Nothing heavy is imported here: ``--help`` and a wrong option answer before torch loads. The
handlers import the stages when they run, after :mod:`bark_core.cli.checks` has accepted the arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from .. import constants as C
from ..errors import BarkError
from .checks import device_name, thread_count


class CliParser(argparse.ArgumentParser):
    """argparse with the house's error form: one ``error:`` line and exit status 2, no usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument("--models", default="suno",
                   help="'suno' (original weights from the hub), a hub repo in transformers format "
                        "(suno/bark-small), or a local folder (default: suno)")
    g.add_argument("--tiny", action="store_true",
                   help="use the tiny UNTRAINED model set (offline smoke run; produces noise)")
    g.add_argument("--size", choices=["large", "small"], default="large", help="model size (default: large)")
    g.add_argument("--device", default="auto", type=device_name,
                   help="auto, cpu, cuda, cuda:N or mps; checked before any model loads (default: auto)")
    g.add_argument("--dtype", default="auto", choices=list(C.PRECISION_NAMES),
                   help="precision of the transformers (default: bf16 on CUDA, fp32 elsewhere); autocast: fp32 "
                        "weights under bf16 autocast with TF32, Suno's own CUDA mode; int8: int8 linear weights, "
                        "the rest bf16 (least memory; refused where the device has no int8 kernel)")
    g.add_argument("--offload", action="store_true", help="keep idle stages on the CPU to save GPU memory")
    g.add_argument("--decoder", default="auto", choices=["auto", "fast", "eager"],
                   help="decode loop: fast (static cache, CUDA graphs), eager (the reference) or auto "
                        "(fast on CUDA). On CPU both give the same tokens for a seed; on CUDA in bf16 they match "
                        "until a rounding near-tie, then differ")
    g.add_argument("--threads", default="auto", type=thread_count,
                   help="CPU threads for torch: a number, or auto (1 for the tiny set, whose steps are too "
                        "small to share; torch's default otherwise; see benchmarks/speed.py --threads)")
    g.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: the hub's own)")
    g.add_argument("--offline", action="store_true", help="use only files already in the cache")


def models_from(args: argparse.Namespace) -> Any:
    """The model set the options name, on a device checked first; no weights load here."""
    from ..models import check_device, tiny_model_dir
    from ..stages import BarkModels

    check_device(args.device, option="--device")
    source = tiny_model_dir() if args.tiny else args.models
    return BarkModels(source, size=args.size, device=args.device, dtype=args.dtype, offload=args.offload,
                      decoder=args.decoder, cache_dir=args.cache_dir, local_files_only=True if args.offline else None)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, in command-line terms where the core speaks Python."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    cli_text = getattr(exc, "cli_message", None)
    return cli_text() if callable(cli_text) else text


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # huggingface_hub has its own stderr handler; passed on to ours as well, each line would print twice
    logging.getLogger("huggingface_hub").propagate = False


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Warnings as ``warning: ...`` lines (no source line), in command-line terms."""
    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        text = " ".join(str(message).split())
        if category.__name__ == "TextTruncatedWarning":
            text += " bark-say --long speaks a long text in sentence chunks."
        print(f"warning: {text}", file=sys.stderr)

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse, run the chosen handler, and turn every failure into one ``error:`` line and status 2."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed as one line)
        return exc.code if isinstance(exc.code, int) else 2
    verbose = bool(getattr(args, "verbose", False))
    _setup_logging(verbose)
    with _one_line_warnings():
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except BarkError as exc:
            if verbose:
                traceback.print_exc()
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:  # a bug or an unforeseen input: still one line, the details behind -v
            if verbose:
                traceback.print_exc()
            hint = "" if verbose else "; run with -v for the traceback"
            print(f"error: {one_line(exc)} ({type(exc).__name__}{hint})", file=sys.stderr)
            return 2


def run_standalone(prog: str, description: str, add_commands: Any, argv: Any = None) -> int:
    """``python -m bark_core.<module>`` entry points: the same parsing and one-line errors as ``bark-core``."""
    parser = CliParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens; show tracebacks")
    add_commands(parser.add_subparsers(dest="command", required=True, parser_class=CliParser))
    return run(parser, None if argv is None else list(argv))
