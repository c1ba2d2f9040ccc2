"""Atomic file writes and filesystem-safe study keys: the one place outputs touch disk."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "study_key",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@functools.cache
def _umask() -> int:
    """Return the process umask (read once, and set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`.

    Use this for writers that insist on a file name (SimpleITK, pydicom). On any
    error the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    # mkstemp creates 0600 files; outputs are ordinary files readable as the umask allows.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, fsync, rename)."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _json_safe(obj.item())
    return obj


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write `data` as indented JSON atomically; NaN and infinities become ``null``."""
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def study_key(identifier: str, *, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """Return a filesystem-safe key ([A-Za-z0-9._-] only), unique among `taken`.

    Parameters
    ----------
    identifier : str
        A StudyInstanceUID or a file name. Never pass free-text DICOM fields.
    taken : set of str
        Keys already in use; a numeric suffix makes the result unique.

    Examples
    --------
    >>> study_key("1.2.840.113619.2.55")
    '1.2.840.113619.2.55'
    >>> study_key("my scan (1).nii.gz")
    'my_scan_1_.nii.gz'
    >>> study_key("1.2.3", taken={"1.2.3"})
    '1.2.3_2'
    """
    base = _UNSAFE.sub("_", identifier).strip("._") or "study"
    base = base[:120]
    key, n = base, 2
    while key in taken:
        key = f"{base}_{n}"
        n += 1
    return key
