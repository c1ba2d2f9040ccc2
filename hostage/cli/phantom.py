"""``hostage phantom``."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``phantom`` subcommand."""
    p = subparsers.add_parser("phantom", help="(being implemented)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``hostage phantom`` (being implemented)."""
    raise NotImplementedError("hostage phantom is being implemented")
