"""Rim completeness on hand-checkable hollow ellipsoids."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import ellipsoid

from hostage.config import FeatureConfig
from hostage.features import roi_from_arrays
from hostage.features.rim import rim_features
from hostage.segment import ReferenceTissues

CFG = FeatureConfig()


def shell_scene(spacing, *, radius_mm=20.0, cortex_mm=2.0, window=None):
    """Filled ellipsoid mask; HU: 1300 cortex shell, -80 fat inside, 40 muscle outside.

    window: fraction of the surface (a cap along +x) where the shell is replaced by fat.
    """
    a = radius_mm
    outer = ellipsoid(a, a, a, spacing=spacing)
    shape = outer.shape
    zz, yy, xx = np.meshgrid(
        *[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)],
        indexing="ij",
    )
    r = np.sqrt(zz**2 + yy**2 + xx**2)
    hu = np.where(outer, -80.0, 40.0)
    shell = outer & (r >= a - cortex_mm)
    if window is not None:
        # a spherical cap covering `window` of the area: x > a(1 - 2w)
        shell &= xx <= a * (1 - 2 * window)
    hu = np.where(shell, 1300.0, hu).astype(np.float32)
    pad = [(int(np.ceil(4 / s)), int(np.ceil(4 / s))) for s in spacing]
    return np.pad(hu, pad, constant_values=40.0), np.pad(outer, pad)


@pytest.mark.parametrize("spacing", [(0.6, 0.6, 0.6), (1.0, 0.8, 0.8), (3.0, 0.7, 0.7)])
def test_complete_shell_is_complete(spacing):
    hu, mask = shell_scene(spacing)
    out = rim_features(roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG), config=CFG)
    assert out["rim_completeness"] >= 0.97
    assert out["rim_fat_fraction"] >= 0.85
    assert out["rim_core_contrast_hu"] > 1000
    assert out["rim_thickness_mm"] == pytest.approx(2.0, abs=1.0)


@pytest.mark.parametrize("spacing", [(0.6, 0.6, 0.6), (1.0, 0.8, 0.8), (3.0, 0.7, 0.7)])
def test_cutting_a_quarter_window_drops_completeness_by_a_quarter(spacing):
    full = rim_features(
        roi_from_arrays(*shell_scene(spacing), spacing_zyx_mm=spacing, config=CFG), config=CFG
    )["rim_completeness"]
    hu, mask = shell_scene(spacing, window=0.25)
    cut = rim_features(roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG), config=CFG)
    assert full - cut["rim_completeness"] == pytest.approx(0.25, abs=0.06)


def test_no_shell_no_rim():
    spacing = (1.0, 1.0, 1.0)
    ball = ellipsoid(8, 8, 8, spacing=spacing)
    hu = np.where(ball, 300.0, 40.0).astype(np.float32)
    out = rim_features(
        roi_from_arrays(
            np.pad(hu, 4, constant_values=40.0), np.pad(ball, 4), spacing_zyx_mm=spacing, config=CFG
        ),
        config=CFG,
    )
    assert out["rim_completeness"] == 0.0
    assert np.isnan(out["rim_thickness_mm"])
    assert out["rim_core_contrast_hu"] == pytest.approx(0.0, abs=30)


def _reference(cortex_hu: float) -> ReferenceTissues:
    return ReferenceTissues(
        muscle_hu=40.0, fat_hu=-90.0, cortex_hu=cortex_hu, noise_hu=10.0, edge_width_mm=1.0
    )


@pytest.mark.parametrize("spacing", [(1.0, 0.8, 0.8), (3.0, 0.7, 0.7)])
def test_the_cortical_level_is_relative_to_the_scans_own_cortex(spacing):
    """A shell at 700 HU is cortex on a scan whose blurred native cortex reads 1000 HU
    (level 40 + 0.4 × 960 = 424 HU), not on one whose cortex reads 2000 HU (824 HU)."""
    hu, mask = shell_scene(spacing)
    hu = np.where(hu > 1000, 700.0, hu).astype(np.float32)
    soft = rim_features(
        roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG, reference=_reference(1000.0)),
        config=CFG,
    )
    sharp = rim_features(
        roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG, reference=_reference(2000.0)),
        config=CFG,
    )
    assert soft["rim_completeness"] >= 0.9
    assert sharp["rim_completeness"] == 0.0
