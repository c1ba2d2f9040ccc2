"""Import optional dependencies with an error that names the pip extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["EXTRAS", "import_optional"]

#: module name -> (pip extra, distribution to install)
EXTRAS: dict[str, tuple[str, str]] = {
    "matplotlib": ("report", "matplotlib"),
    "highdicom": ("dicom", "highdicom"),
    "dask": ("dask", "dask[distributed]"),
    "distributed": ("dask", "dask[distributed]"),
    "pylibjpeg": ("jpeg", "pylibjpeg"),
    "pandas": ("pandas", "pandas"),
}


def import_optional(name: str, *, feature: str) -> ModuleType:
    """Import `name` or raise :class:`MissingDependencyError` saying how to install it.

    Parameters
    ----------
    name : str
        Module to import, e.g. ``"highdicom"`` or ``"matplotlib.pyplot"``.
    feature : str
        What the caller wanted to do, used in the message (``"DICOM SEG output"``).

    Returns
    -------
    module : module

    Raises
    ------
    MissingDependencyError
        If the module cannot be imported.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        top = name.split(".")[0]
        extra, dist = EXTRAS.get(top, ("", top))
        how = f"pip install 'hostage[{extra}]'" if extra else f"pip install {dist}"
        raise MissingDependencyError(
            f"{feature} needs the optional package {dist!r}, which is not installed "
            f"({exc}). Install it with: {how}"
        ) from exc
