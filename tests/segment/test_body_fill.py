"""Hole filling (body.fill_holes) against scipy's definition, cropped and uncropped."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hostage.segment.body import PLANE, fill_holes, fill_holes_per_slice


def _scipy_per_slice(m: np.ndarray, max_voxels: int | None) -> np.ndarray:
    out = m.copy()
    for z in range(m.shape[0]):
        filled = ndi.binary_fill_holes(m[z])
        if max_voxels is not None:
            lab, n = ndi.label(filled & ~m[z])
            sizes = np.bincount(lab.ravel(), minlength=n + 1)
            filled = m[z] | ((sizes <= max_voxels)[lab] & (lab > 0))
        out[z] = filled
    return out


@pytest.mark.parametrize("seed", range(6))
def test_fill_holes_equals_scipy_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    m = np.zeros((14, 30, 26), bool)
    # a random blob away from the border (so the bounding-box crop is used) with cavities
    m[3:11, 5:22, 4:20] = ndi.binary_opening(rng.random((8, 17, 16)) < 0.75)
    m[5:8, 9:13, 8:12] = False
    if seed % 2:
        m[0, 0, :] = True  # and one touching the border
    np.testing.assert_array_equal(fill_holes(m), ndi.binary_fill_holes(m))
    np.testing.assert_array_equal(fill_holes_per_slice(m), _scipy_per_slice(m, None))
    np.testing.assert_array_equal(
        fill_holes(m, structure=PLANE, max_voxels=5), _scipy_per_slice(m, 5)
    )


def test_fill_holes_with_a_structure_lacking_face_steps_labels_the_whole_array():
    # diagonal-only connectivity: the bounding-box shortcut does not hold, the result must
    # still be the background components (that connectivity) not touching the border
    s = np.zeros((3, 3, 3), bool)
    s[1, 1, 1] = True
    s[0, 0, 0] = s[2, 2, 2] = True
    m = np.zeros((5, 5, 5), bool)
    m[1:4, 1:4, 1:4] = True
    m[2, 2, 2] = False
    # the centre connects diagonally only to mask voxels: a hole
    assert fill_holes(m, structure=s)[2, 2, 2]
    lab, _ = ndi.label(~m, structure=s)
    touching = np.unique(
        np.concatenate(
            [
                lab[0].ravel(),
                lab[-1].ravel(),
                lab[:, 0].ravel(),
                lab[:, -1].ravel(),
                lab[:, :, 0].ravel(),
                lab[:, :, -1].ravel(),
            ]
        )
    )
    expected = m | ~np.isin(lab, touching)
    np.testing.assert_array_equal(fill_holes(m, structure=s), expected)


def test_fill_holes_of_an_empty_mask_is_empty():
    m = np.zeros((3, 4, 5), bool)
    out = fill_holes(m)
    assert out is not m and not out.any()
