"""``hostage batch``."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``batch`` subcommand."""
    p = subparsers.add_parser("batch", help="(being implemented)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``hostage batch`` (being implemented)."""
    raise NotImplementedError("hostage batch is being implemented")
