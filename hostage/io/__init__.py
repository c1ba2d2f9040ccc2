"""Read CT studies: DICOM folders (any layout) and NIfTI/NRRD/MetaImage volumes.

``load(path, *, series_uid=None, config=None) -> Volume`` is the entry point.
"""

from __future__ import annotations

from .volume import LoadReport, Volume

__all__ = ["LoadReport", "Volume", "load"]


def load(path, *, series_uid=None, config=None):
    """Load one study (placeholder until issue 2 lands)."""
    raise NotImplementedError("the loader is being implemented (issue 2)")
