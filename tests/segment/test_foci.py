"""Shortcuts inside find_foci against their plain definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hostage.segment.foci import _thinner_than


def _edt_thinner(mask, spacing, min_mm):
    return 2.0 * float(ndi.distance_transform_edt(np.pad(mask, 1), sampling=spacing).max()) < min_mm


@pytest.mark.parametrize("spacing", [(1.0, 0.78, 0.78), (3.0, 0.7, 0.7), (0.5, 0.5, 0.5)])
@pytest.mark.parametrize("min_mm", [0.0, 0.4, 1.56, 3.0, 4.0])
def test_thinner_than_is_the_distance_transform_test(spacing, min_mm):
    rng = np.random.default_rng(3)
    cases = [np.ones((n, 9, 9), bool) for n in range(1, 8)]  # plates 1 to 7 slices thick
    cases += [np.ones((6, n, 6), bool) for n in range(1, 8)]
    cases += [ndi.binary_opening(rng.random((10, 12, 12)) < p) for p in (0.5, 0.7, 0.9)]
    cases = [c for c in cases if c.any()]
    for mask in cases:
        assert _thinner_than(mask, spacing, min_mm) == _edt_thinner(mask, spacing, min_mm)
