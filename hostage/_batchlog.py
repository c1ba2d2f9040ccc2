"""Logging of a batch: per-study capture in the workers, OUT/hostage.log in the coordinator."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOG_FORMAT", "LogCapture", "capture_logs", "log_to_file"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogCapture(logging.Handler):
    """Collect the records of this thread (Dask runs studies in threads of one worker)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.thread = threading.get_ident()
        self.records: list[tuple[str, int, str]] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.records.append((record.name, record.levelno, self.format(record)))


@contextlib.contextmanager
def capture_logs() -> Iterator[LogCapture]:
    """Collect what this thread logs to the ``hostage`` loggers while the block runs."""
    handler = LogCapture()
    root = logging.getLogger("hostage")
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


class _MinLevel(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


class _ToRoot(logging.Handler):
    """Forward records to the root logger's handlers (what propagation would do)."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


@contextlib.contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    """Append INFO and above of the ``hostage`` loggers to `path` for the batch.

    Whatever already receives hostage's records (the CLI's stderr handler, the
    root logger's handlers) keeps receiving exactly the levels it received before.
    """
    lg = logging.getLogger("hostage")
    saved_level, saved_propagate = lg.level, lg.propagate
    effective = lg.getEffectiveLevel()
    gate = _MinLevel(effective)
    others = list(lg.handlers)
    for h in others:
        h.addFilter(gate)
    forward = None
    if lg.propagate:
        forward = _ToRoot()
        forward.addFilter(gate)
        lg.addHandler(forward)
        lg.propagate = False
    fh = logging.FileHandler(path, mode="a", encoding="utf-8")
    fh.setLevel(logging.INFO)
    fh.setFormatter(logging.Formatter(LOG_FORMAT))
    lg.addHandler(fh)
    lg.setLevel(min(effective, logging.INFO))
    try:
        yield
    finally:
        lg.removeHandler(fh)
        fh.close()
        if forward is not None:
            lg.removeHandler(forward)
        for h in others:
            h.removeFilter(gate)
        lg.setLevel(saved_level)
        lg.propagate = saved_propagate
