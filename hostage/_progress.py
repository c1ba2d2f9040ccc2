"""Batch progress on the console: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import IO

from .enums import Status
from .result import StudyResult

__all__ = ["Progress", "fmt_duration"]


class Progress:
    """Studies done / failed / rate / ETA: a bar on a terminal, else one line per study.

    Parameters
    ----------
    total : int
        Studies to stage in this run (resumed ones excluded).
    mode : {"bar", "lines", "none"}
    stream : file, optional
        Where to write; ``sys.stderr`` by default.
    """

    def __init__(self, total: int, *, mode: str, stream: IO[str] | None = None) -> None:
        self.total = total
        self.mode = mode
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.failed = 0
        self.t0 = time.monotonic()
        self._last_draw = 0.0
        self._cleared = False

    def text(self, now: float | None = None) -> str:
        """Return the status text: ``12/100 done, 1 failed, 0.80 studies/s, ETA 1m50s``."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.t0, 1e-9)
        rate = self.done / elapsed
        eta = "?" if self.done == 0 else fmt_duration((self.total - self.done) / rate)
        return (
            f"{self.done}/{self.total} done, {self.failed} failed, {rate:.2f} studies/s, ETA {eta}"
        )

    def update(self, result: StudyResult, *, elapsed_s: float) -> None:
        """Count one finished study and show it."""
        self.done += 1
        self.failed += result.status is Status.ERROR
        if self.mode == "lines":
            what = (
                f"error: {result.error}"
                if result.status is Status.ERROR
                else f"ok, {len(result.foci)} foci, "
                f"{'-' if result.resection is None else result.resection.status.value}"
            )
            print(
                f"[{self.done}/{self.total}] {result.study_key}: {what} ({elapsed_s:.1f} s)",
                file=self.stream,
                flush=True,
            )
        elif self.mode == "bar":
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or self.done == self.total or self._cleared:
                self._cleared = False
                self._last_draw = now
                width = 24
                filled = width * self.done // max(self.total, 1)
                bar = "#" * filled + "." * (width - filled)
                self.stream.write(f"\r\x1b[K[{bar}] {self.text(now)}")
                self.stream.flush()

    def clear(self) -> None:
        """Erase the bar's line, so that a log line can be printed in its place."""
        if self.mode == "bar":
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._cleared = True

    def close(self) -> None:
        """End the bar's line."""
        if self.mode == "bar":
            self.stream.write("\n")
            self.stream.flush()


def fmt_duration(seconds: float) -> str:
    """Format a duration.

    Examples
    --------
    >>> fmt_duration(42.4), fmt_duration(130), fmt_duration(7300)
    ('42s', '2m10s', '2h01m')
    """
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
