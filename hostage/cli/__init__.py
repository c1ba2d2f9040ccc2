"""The ``hostage`` command line: a thin shell over the library.

Each subcommand module defines ``add_parser(subparsers)`` and ``run(args) -> int``.
Exit codes (CONTRACT.md): 0 all studies staged; 1 at least one study ended in
error; 2 bad command line or configuration (nothing written).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import ConfigError, HostageError
from . import batch, phantom, stage

__all__ = ["main"]

_SUBCOMMANDS = (batch, stage, phantom)

EXIT_OK, EXIT_STUDY_ERROR, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="hostage",
        description=(
            "Stage heterotopic ossification on CT (amorphous / immature / mature) and decide "
            "resection readiness. A research measurement, not a medical device."
        ),
    )
    parser.add_argument("--version", action="version", version=f"hostage {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _SUBCOMMANDS:
        module.add_parser(sub)
    return parser


def _configure_logging(verbosity: int, quiet: bool) -> None:
    level = (
        logging.ERROR
        if quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("hostage")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0, 1 or 2 (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help/--version
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose, getattr(args, "quiet", False))
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"hostage: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except HostageError as exc:
        print(f"hostage: error: {exc}", file=sys.stderr)
        return EXIT_STUDY_ERROR
