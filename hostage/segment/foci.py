"""Hyperdense soft-tissue foci: the :class:`Focus` object (finding them: see `find_foci`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Focus"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Focus:
    """One candidate HO focus.

    Attributes
    ----------
    id : int
        Focus id, equal to its label in :attr:`Segmentation.labels` (1, 2, ...).
    bbox_zyx : tuple of 3 slice
        Bounding box of the focus in voxel indices, (z, y, x) order.
    mask : ndarray of bool
        The focus inside its bounding box (shape = bbox shape), as skimage's
        ``RegionProperties.image``. Read-only.
    volume_mm3 : float
        Volume in mm³ (voxel count × voxel volume).
    centroid_lps_mm : tuple of 3 float
        Centroid in DICOM patient coordinates (LPS, mm).
    """

    id: int
    bbox_zyx: tuple[slice, slice, slice]
    mask: np.ndarray
    volume_mm3: float
    centroid_lps_mm: tuple[float, float, float]

    def __post_init__(self) -> None:
        shape = tuple(s.stop - s.start for s in self.bbox_zyx)
        if self.mask.dtype != bool or self.mask.shape != shape:
            raise ValueError(
                f"Focus {self.id}: mask must be bool with the bbox shape {shape}; "
                f"got {self.mask.dtype} {self.mask.shape}"
            )
        mask = self.mask.view()
        mask.flags.writeable = False
        object.__setattr__(self, "mask", mask)
