"""The one error hierarchy of hostage.

Every error raised on purpose by the package is a :class:`HostageError`. Errors
about the user's input also subclass :class:`ValueError` so that generic
callers can catch them; a missing optional dependency also subclasses
:class:`ImportError`.

Messages say what is wrong, where (file, argument or config key), the value
that was found and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ConfigError",
    "GeometryError",
    "HostageError",
    "InputError",
    "MissingDependencyError",
    "did_you_mean",
]


class HostageError(Exception):
    """Base class of every error hostage raises on purpose."""


class InputError(HostageError, ValueError):
    """The input data (a file, a folder, a series) cannot be used.

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    path : str or Path, optional
        The file or folder the problem was found in.
    code : str, optional
        A short machine-readable reason, e.g. ``"missing_slices"``,
        ``"not_dicom"``, ``"truncated"``, ``"not_ct"``, ``"no_series"``.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, code: str = "input"):
        self.path = None if path is None else Path(path)
        self.code = code
        if path is not None and str(path) not in message:
            message = f"{path}: {message}"
        super().__init__(message)

    def __reduce__(self):  # keep pickling (multiprocessing, Dask) lossless
        return (_rebuild_input_error, (type(self), str(self), self.path, self.code))


def _rebuild_input_error(cls, message, path, code):
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.path = path
    err.code = code
    return err


class GeometryError(InputError):
    """The slices of a series do not form a valid regular 3-D grid."""


class ConfigError(HostageError, ValueError):
    """A configuration file or value is invalid (unknown key, wrong type, out of range)."""


class MissingDependencyError(HostageError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return a ``" (did you mean 'x'?)"`` hint, or ``""`` when nothing is close.

    Examples
    --------
    >>> did_you_mean("min_focus_volume_mm", ["min_focus_volume_mm3", "bone_min_hu"])
    " (did you mean 'min_focus_volume_mm3'?)"
    >>> did_you_mean("zzz", ["a", "b"])
    ''
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
