"""The ``logloss`` command line: ``main(argv)`` returns an exit code; ``entrypoint`` exits with it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

EXIT_OK = 0
EXIT_INVALID_DATA = 1
EXIT_USAGE = 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logloss",
        description="Exact binary cross-entropy (log loss): explained, and computed without clipping.",
    )
    parser.add_argument("--version", action="version", version=f"logloss {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "explain",
        help="walk through binary cross-entropy with numbers computed by logloss",
        description="Walk through binary cross-entropy: the formula, the bird example, "
        "both terms, the mean, and why frameworks disagree.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    if args.command == "explain":
        from ._explain import explain_text

        sys.stdout.write(explain_text())
        return EXIT_OK
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def entrypoint() -> None:
    sys.exit(main())
