"""Heap setting for a study staged in a worker whose environment fixed glibc's mmap threshold.

glibc's malloc serves large blocks with ``mmap`` and raises that threshold
adaptively (up to 32 MiB on 64-bit), so that a process which allocates and frees
arrays of a few MiB over and over reuses its heap. Setting any of
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or ``MALLOC_MMAP_MAX_`` turns that
adaptation off and leaves the threshold at 128 KiB: every array above it is then
mapped, zero-filled page by page and unmapped again. Dask's nanny starts its
workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (``distributed.nanny.pre-spawn-environ``).
Staging a 100 x 320 x 320 study there took about 300 000 minor page faults and
0.7-1.1 s of system CPU, against 8 000 faults and 0.05-0.2 s in a local worker
(``docs/batch.md``, "Dask workers and the heap").

:func:`study_heap` raises the mmap threshold to glibc's own adaptive maximum (and
the trim threshold to twice that, as the adaptation does) while a study runs,
then sets both back and returns the freed memory to the system (``malloc_trim``),
which is what the environment variable was set for. It does
nothing when the threshold is adaptive, when ``MALLOC_MMAP_THRESHOLD_`` was set
on purpose, or off glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import threading
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["STUDY_MMAP_THRESHOLD", "fixed_mmap_threshold", "study_heap"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, glibc malloc.h
_DEFAULT_THRESHOLD = 128 * 1024  # glibc's default mmap and trim thresholds
#: The mmap threshold used while a study runs: glibc's adaptive maximum on 64-bit (32 MiB).
STUDY_MMAP_THRESHOLD = 32 * 1024 * 1024
#: The trim threshold used meanwhile: twice the mmap threshold, as glibc's adaptation sets it.
STUDY_TRIM_THRESHOLD = 2 * STUDY_MMAP_THRESHOLD

_FIXING_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")

_lock = threading.Lock()
_active = 0  # studies inside study_heap() in this process (a Dask worker may run several)


def fixed_mmap_threshold(environ: Mapping[str, str]) -> bool:
    """Return True if `environ` turned glibc's adaptive mmap threshold off by the way.

    Parameters
    ----------
    environ : mapping of str to str
        The process environment.

    Returns
    -------
    bool
        True when ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
        ``MALLOC_MMAP_MAX_`` is set and ``MALLOC_MMAP_THRESHOLD_`` is not (a
        threshold chosen on purpose is left alone).

    Examples
    --------
    >>> fixed_mmap_threshold({"MALLOC_TRIM_THRESHOLD_": "65536"})
    True
    >>> fixed_mmap_threshold({"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "1"})
    False
    >>> fixed_mmap_threshold({})
    False
    """
    if "MALLOC_MMAP_THRESHOLD_" in environ:
        return False
    return any(name in environ for name in _FIXING_VARIABLES)


def _glibc() -> Any:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # pragma: no cover - glibc under another name
        return None


@contextlib.contextmanager
def study_heap() -> Iterator[bool]:
    """Let large arrays reuse the heap while a study runs (see the module docstring).

    Yields
    ------
    bool
        True if the threshold was raised for the study, False if nothing was changed.
    """
    global _active
    libc = _glibc() if fixed_mmap_threshold(os.environ) else None
    if libc is None:
        yield False
        return
    with _lock:
        if _active == 0 and not (
            libc.mallopt(_M_MMAP_THRESHOLD, STUDY_MMAP_THRESHOLD) == 1
            and libc.mallopt(_M_TRIM_THRESHOLD, STUDY_TRIM_THRESHOLD) == 1
        ):
            logger.debug("mallopt refused; heap settings left as they are")
            _restore(libc)
            libc = None
        else:
            _active += 1
    if libc is None:
        yield False
        return
    try:
        yield True
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                _restore(libc)
                libc.malloc_trim(0)


def _restore(libc: Any) -> None:
    """Set back the thresholds the environment gave (glibc reads them once, at start)."""
    try:
        trim = int(os.environ.get("MALLOC_TRIM_THRESHOLD_", _DEFAULT_THRESHOLD))
    except ValueError:
        trim = _DEFAULT_THRESHOLD
    libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, trim)
