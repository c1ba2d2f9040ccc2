"""``hostage stage``."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``stage`` subcommand."""
    p = subparsers.add_parser("stage", help="(being implemented)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``hostage stage`` (being implemented)."""
    raise NotImplementedError("hostage stage is being implemented")
