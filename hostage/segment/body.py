"""Body mask: the patient, without the air around it and without the CT table."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from ._grid import box_dilate, box_erode, mask_bbox

__all__ = ["PLANE", "body_mask_coarse", "fill_holes", "fill_holes_per_slice"]

logger = logging.getLogger(__name__)

#: In-plane (axial) 4-connectivity: hole filling per slice.
PLANE = np.zeros((3, 3, 3), bool)
PLANE[1] = ndi.generate_binary_structure(2, 1)


def fill_holes_per_slice(mask: np.ndarray, *, max_voxels: int | None = None) -> np.ndarray:
    """Fill holes in every axial slice of a (Z, Y, X) mask (one call, no z-connectivity).

    Examples
    --------
    >>> m = np.zeros((2, 5, 5), bool); m[0, 1:4, 1:4] = True; m[0, 2, 2] = False
    >>> int(fill_holes_per_slice(m).sum())
    9
    """
    return fill_holes(mask, structure=PLANE, max_voxels=max_voxels)


def _face_steps(structure: np.ndarray, axis: int) -> bool:
    """Whether `structure` connects a voxel to both face neighbours along `axis`."""
    centre = [s // 2 for s in structure.shape]
    if structure.shape[axis] < 3:
        return False
    lo, hi = list(centre), list(centre)
    lo[axis] -= 1
    hi[axis] += 1
    return bool(structure[tuple(lo)] and structure[tuple(hi)])


def fill_holes(
    mask: np.ndarray, *, structure: np.ndarray | None = None, max_voxels: int | None = None
) -> np.ndarray:
    """Fill holes: background components (connectivity `structure`) that do not touch the border.

    Same result as :func:`scipy.ndimage.binary_fill_holes` with the complementary
    connectivity, computed by one labelling pass (much faster on large arrays).
    With `max_voxels`, only holes of at most that many voxels are filled.
    Only the bounding box of `mask` is labelled: every background voxel
    outside it reaches the array border in a straight line, so a background
    component touching the box's face is not a hole (this needs `structure`
    to hold both face neighbours along each border axis; otherwise the whole
    array is labelled).

    Examples
    --------
    >>> m = np.zeros((3, 5, 5), bool); m[1, 1:4, 1:4] = True; m[1, 2, 2] = False
    >>> int(fill_holes(m).sum()), int(fill_holes(m, structure=PLANE).sum())
    (8, 9)
    """
    if structure is None:
        structure = ndi.generate_binary_structure(mask.ndim, 1)
    per_slice = structure.ndim == 3 and not structure[0].any()
    border_axes = [a for a in range(mask.ndim) if not (per_slice and a == 0)]
    if not mask.any():
        return mask.copy()
    if all(_face_steps(structure, a) for a in border_axes):
        box = mask_bbox(mask)
        out = mask.copy()
        out[box] = _fill_holes_whole(mask[box], structure, border_axes, max_voxels)
        return out
    return _fill_holes_whole(mask, structure, border_axes, max_voxels)


def _fill_holes_whole(
    mask: np.ndarray, structure: np.ndarray, border_axes: list[int], max_voxels: int | None
) -> np.ndarray:
    lab, n = ndi.label(~mask, structure=structure)
    if n == 0:
        return mask.copy()
    border = np.zeros(n + 1, bool)
    for axis in border_axes:
        # per-slice filling: the first and last slice are not a border
        for idx in (0, -1):
            border[np.take(lab, idx, axis=axis)] = True
    border[0] = True
    if max_voxels is not None:
        border |= np.bincount(lab.ravel(), minlength=n + 1) > max_voxels
    return ~border[lab] | mask


def body_mask_coarse(block_mean_hu: np.ndarray, *, body_min_hu: float) -> np.ndarray:
    """Find the patient on the coarse grid.

    Blocks above `body_min_hu` are opened in-plane with a 3 × 3 box (this
    removes thin shells such as the carbon-fibre skins of the CT table and
    detaches the table from the patient), the large components are kept (all
    of at least 10 % of the largest, so two separate thighs both count), and
    holes are filled in every axial slice (bowel gas, the table's foam core is
    outside).

    Parameters
    ----------
    block_mean_hu : (cz, cy, cx) ndarray of float32
        Block means (HU) of the volume.
    body_min_hu : float
        Blocks above this HU may be body.

    Returns
    -------
    (cz, cy, cx) ndarray of bool

    Examples
    --------
    >>> a = np.full((6, 20, 20), -1000.0, np.float32)
    >>> a[:, 3:13, 3:17] = 40.0   # patient
    >>> a[:, 15, :] = 250.0       # table skin, one block thick
    >>> m = body_mask_coarse(a, body_min_hu=-500)
    >>> bool(m[:, 15].any()), bool(m[3, 8, 8])
    (False, True)
    """
    m = block_mean_hu > body_min_hu
    m = box_dilate(box_erode(m, (0, 1, 1)), (0, 1, 1))
    lab, n = ndi.label(m)
    if n == 0:
        return m
    sizes = np.bincount(lab.ravel())[1:]
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= 0.1 * sizes.max()
    return fill_holes_per_slice(keep[lab])
