"""Hand-checkable arrays: distances, sizes, margins, zonal pattern, connectivity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.draw import ellipsoid

from hostage.config import FeatureConfig
from hostage.features import roi_from_arrays
from hostage.features.bone import bone_features
from hostage.features.margin import margin_features
from hostage.features.size import size_features
from hostage.features.texture import connectivity
from hostage.features.zonal import zonal_features
from hostage.segment import ReferenceTissues

CFG = FeatureConfig()
SPACINGS = [(1.0, 1.0, 1.0), (2.5, 0.7, 0.7)]


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("gap_mm", [0.0, 5.0, 10.0])
def test_bone_gap_is_the_cleft_width(spacing, gap_mm):
    # a slab of bone at x < 20 mm, a block focus starting at x = 20 + gap along x
    shape = (int(30 / spacing[0]), int(30 / spacing[1]), int(60 / spacing[2]))
    x = np.arange(shape[2]) * spacing[2]
    bone = np.zeros(shape, bool)
    bone[..., x < 20] = True
    mask = np.zeros(shape, bool)
    mask[
        int(10 / spacing[0]) : int(20 / spacing[0]),
        int(10 / spacing[1]) : int(20 / spacing[1]),
        (x >= 20 + gap_mm) & (x < 30 + gap_mm),
    ] = True
    hu = np.where(mask, 400.0, 40.0).astype(np.float32)
    roi = roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG, bone_mask=bone)
    out = bone_features(roi, config=CFG)
    assert out["bone_distance_mm"] == pytest.approx(gap_mm, abs=spacing[2] + 1e-6)
    assert out["bone_attached"] == float(gap_mm <= CFG.bone_attach_max_mm)


@pytest.mark.parametrize("spacing", SPACINGS)
def test_ball_size_and_shape(spacing):
    r = 10.0
    ball = ellipsoid(r, r, r, spacing=spacing)
    hu = np.where(ball, 400.0, 40.0).astype(np.float32)
    pad = [(3, 3)] * 3
    roi = roi_from_arrays(
        np.pad(hu, pad, constant_values=40.0), np.pad(ball, pad), spacing_zyx_mm=spacing, config=CFG
    )
    out = size_features(roi, config=CFG)
    assert out["size_volume_mm3"] == pytest.approx(4 / 3 * np.pi * r**3, rel=0.08)
    assert out["size_diameter_max_mm"] == pytest.approx(2 * r, abs=max(spacing))
    assert out["size_sphericity"] > 0.9
    assert out["size_elongation"] == pytest.approx(1.0, abs=0.1)


def test_margin_of_a_blurred_edge_matches_the_blur():
    spacing = (1.0, 0.5, 0.5)
    ball = ellipsoid(12, 12, 12, spacing=spacing)
    pad = [(4, 4), (12, 12), (12, 12)]
    mask = np.pad(ball, pad)
    sigma_mm = 1.0
    hu = ndi.gaussian_filter(np.where(mask, 1000.0, 0.0), [sigma_mm / s for s in spacing]).astype(
        np.float32
    )
    ref = ReferenceTissues(
        muscle_hu=0.0, fat_hu=-100.0, cortex_hu=1000.0, noise_hu=1.0, edge_width_mm=2.563 * sigma_mm
    )
    roi = roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG, reference=ref)
    out = margin_features(roi, config=CFG)
    # 10-90 % width of a Gaussian-blurred step is 2.563 sigma
    assert out["margin_width_10_90_mm"] == pytest.approx(2.563 * sigma_mm, abs=0.3)
    assert out["margin_sharpness_ratio"] == pytest.approx(1.0, abs=0.15)
    assert out["margin_irregularity"] < 0.05


def test_zonal_pattern_periphery_centre_and_central_first():
    spacing = (1.0, 1.0, 1.0)
    ball = ellipsoid(12, 12, 12, spacing=spacing)
    d = ndi.distance_transform_edt(ball)
    peripheral = np.where(ball, np.where(d <= 3, 1000.0, 60.0), 40.0).astype(np.float32)
    central = np.where(ball, np.where(d >= 8, 1000.0, 100.0), 40.0).astype(np.float32)
    ref = ReferenceTissues(
        muscle_hu=40.0, fat_hu=-100.0, cortex_hu=1400.0, noise_hu=10.0, edge_width_mm=1.0
    )
    p = zonal_features(
        roi_from_arrays(peripheral, ball, spacing_zyx_mm=spacing, config=CFG, reference=ref),
        config=CFG,
    )
    c = zonal_features(
        roi_from_arrays(central, ball, spacing_zyx_mm=spacing, config=CFG, reference=ref),
        config=CFG,
    )
    assert p["zonal_periphery_center_ratio"] > 5 and p["zonal_central_first"] == 0.0
    assert c["zonal_periphery_center_ratio"] < 0.5 and c["zonal_central_first"] == 1.0


def test_connectivity_counts_loops_of_a_lattice():
    # a 3 x 3 x 3 cubic lattice of rods: the loops are the faces' cycles
    lat = np.zeros((13, 13, 13), bool)
    idx = (1, 6, 11)
    for a in idx:
        for b in idx:
            lat[a, b, 1:12] = True
            lat[a, 1:12, b] = True
            lat[1:12, a, b] = True
    b0, b1 = connectivity(lat)
    assert b0 == 1
    # graph of 27 nodes and 54 edges: cycle rank = 54 - 27 + 1 = 28
    assert b1 == 28
