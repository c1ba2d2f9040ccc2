"""Metal (implants): far above bone density; never a focus, and its streaks lower trust nearby."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from ._grid import CoarseGrid

__all__ = ["metal_mask_coarse"]

logger = logging.getLogger(__name__)


def metal_mask_coarse(
    block_max_hu: np.ndarray, *, grid: CoarseGrid, metal_min_hu: float, min_volume_mm3: float
) -> np.ndarray:
    """Blocks holding metal: maximum HU at least `metal_min_hu`, in components of `min_volume_mm3` or more.

    Parameters
    ----------
    block_max_hu : (cz, cy, cx) ndarray
        Block maxima (HU).
    grid : CoarseGrid
        The coarse grid (block size).
    metal_min_hu : float
        Metal threshold (HU).
    min_volume_mm3 : float
        Smaller components (counted in whole blocks) are ignored.

    Returns
    -------
    (cz, cy, cx) ndarray of bool

    Examples
    --------
    >>> g = CoarseGrid.for_volume((8, 8, 8), spacing_zyx_mm=(2, 2, 2), block_mm=2)
    >>> a = np.zeros((8, 8, 8), np.int16); a[2:5, 2:5, 2:5] = 3000; a[7, 7, 7] = 3000
    >>> int(metal_mask_coarse(a, grid=g, metal_min_hu=2500, min_volume_mm3=20).sum())
    27
    """
    m = block_max_hu >= metal_min_hu
    if not m.any():
        return m
    lab, n = ndi.label(m, structure=np.ones((3, 3, 3), bool))
    block_mm3 = float(np.prod(grid.coarse_spacing_zyx_mm))
    sizes = np.bincount(lab.ravel())[1:] * block_mm3
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= min_volume_mm3
    return keep[lab]
