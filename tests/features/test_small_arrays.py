"""Hand-checkable arrays: distances, sizes, margins, zonal pattern, connectivity."""

from __future__ import annotations

import dataclasses

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
    # beyond the 1 mm skin the pattern holds: the dense shell and the dense core are 3-4 mm deep
    assert p["zonal_deep_periphery_center_ratio"] > 5
    assert c["zonal_deep_periphery_center_ratio"] < 0.5


@pytest.mark.parametrize("slice_mm", [1.0, 3.0])
def test_a_compact_plate_blurred_by_the_scanner_is_uniform_beyond_its_skin(slice_mm):
    """Bone uniform through its 6 mm thickness reads denser at the centre on the plain ratio
    (the blur lowers its outer millimetre), but not beyond the blurred skin."""
    spacing = (slice_mm, 0.5, 0.5)
    plate = np.zeros((int(36 / slice_mm), 60, 60), bool)
    plate[int(6 / slice_mm) : int(30 / slice_mm), 10:50, 24:36] = True
    sigma = (0.6 / slice_mm + 0.4 * (slice_mm > 1), 1.0, 1.0)  # thick slices blur z more
    hu = ndi.gaussian_filter(np.where(plate, 1200.0, 40.0), sigma).astype(np.float32)
    ref = ReferenceTissues(
        muscle_hu=40.0, fat_hu=-100.0, cortex_hu=1200.0, noise_hu=10.0, edge_width_mm=1.3
    )
    roi = roi_from_arrays(hu, hu > 130, spacing_zyx_mm=spacing, config=CFG, reference=ref)
    out = zonal_features(roi, config=CFG)
    assert out["zonal_periphery_center_ratio"] < 0.9
    assert out["zonal_deep_periphery_center_ratio"] == pytest.approx(1.0, abs=0.05)
    # without a measured edge width the skin is unknown: not measured
    unknown = dataclasses.replace(ref, edge_width_mm=float("nan"))
    roi = roi_from_arrays(hu, hu > 130, spacing_zyx_mm=spacing, config=CFG, reference=unknown)
    assert np.isnan(zonal_features(roi, config=CFG)["zonal_deep_periphery_center_ratio"])


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


def test_families_for_picks_the_declaring_families_in_registry_order():
    from hostage.features import FAMILIES, families_for

    fams = families_for(["zonal_central_first", "rim_completeness", "rim_fat_fraction"])
    assert [f.name for f in fams] == ["rim", "zonal"]
    assert families_for([]) == ()
    assert families_for(n for f in FAMILIES for n in f.names) == FAMILIES
    with pytest.raises(KeyError, match="did you mean 'rim_completeness'"):
        families_for(["rim_completness"])


def _surface_mesh_whole_crop(mask, spacing, smooth_mm):
    """The straightforward surface mesh: smooth and triangulate the whole padded crop."""
    import math

    from skimage.measure import marching_cubes

    from hostage.features._geometry import smooth

    pad = [max(2, math.ceil(3 * smooth_mm / s) + 1) for s in spacing]
    field = smooth(
        np.pad(mask.astype(np.float32), [(p, p) for p in pad]),
        spacing_zyx_mm=spacing,
        sigma_mm=smooth_mm,
    )
    level = 0.5 if field.max() > 0.5 else 0.5 * float(field.max())
    verts, faces, _, _ = marching_cubes(field, level=level, spacing=spacing)
    verts = verts.astype(np.float64) - np.asarray(pad) * np.asarray(spacing)
    grads = np.gradient(field, *spacing)
    idx = (verts + np.asarray(pad) * np.asarray(spacing)) / np.asarray(spacing)
    g = np.stack([ndi.map_coordinates(gr, idx.T, order=1, mode="nearest") for gr in grads], 1)
    return verts, faces, -g / np.linalg.norm(g, axis=1)[:, None]


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("where", ["middle", "corner"])
def test_surface_mesh_and_depth_on_the_focus_box_equal_the_whole_crop(spacing, where):
    from hostage.features._geometry import surface_mesh
    from hostage.features._roi import _depth_mm

    rng = np.random.default_rng(3)
    mask = np.zeros((20, 40, 44), bool)
    # a lumpy blob: an ellipsoid with random bumps, so the mesh has no symmetry to hide behind
    blob = ellipsoid(3, 6, 5)[1:-1, 1:-1, 1:-1][:, :, :12]  # (7, 13, 11)
    blob = np.pad(blob, ((0, 1), (0, 1), (0, 1))) | (rng.random((8, 14, 12)) > 0.8)
    at = (6, 13, 20) if where == "middle" else (0, 0, 0)
    mask[at[0] : at[0] + 8, at[1] : at[1] + 14, at[2] : at[2] + 12] = blob
    mesh = surface_mesh(mask, spacing_zyx_mm=spacing, smooth_mm=CFG.mesh_smooth_mm)
    verts, faces, normals = _surface_mesh_whole_crop(mask, spacing, CFG.mesh_smooth_mm)
    np.testing.assert_array_equal(mesh.verts_mm, verts)
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_array_equal(mesh.normals, normals)
    np.testing.assert_array_equal(
        _depth_mm(mask, spacing),
        ndi.distance_transform_edt(mask, sampling=spacing).astype(np.float32),
    )


@pytest.mark.parametrize("seed", range(6))
def test_max_pairwise_distance_is_the_brute_force_maximum(seed):
    from hostage.features._geometry import max_pairwise_distance_mm

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 700))
    pts = rng.normal(size=(n, 3)) * rng.uniform(0.2, 30.0, size=3) + rng.uniform(-50, 50, 3)
    if seed == 5:
        pts[:, 0] = 4.0  # coplanar: no 3-D hull, every point is compared
    brute = float(np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=2).max())
    assert max_pairwise_distance_mm(pts) == brute


def test_study_point_trees_are_built_once_and_forgotten_with_their_points():
    from scipy.spatial import cKDTree

    from hostage.features import _roi

    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 100, (500, 3))
    query = rng.uniform(0, 100, (40, 3))
    assert _roi._tree(pts) is _roi._tree(pts)
    assert _roi._nearest_mm(pts, query) == float(np.min(cKDTree(pts).query(query)[0]))
    key = id(pts)
    assert key in _roi._TREES
    del pts
    assert key not in _roi._TREES
    assert np.isnan(_roi._nearest_mm(np.zeros((0, 3)), query))


def test_measure_roi_asks_a_partial_family_for_only_the_wanted_names():
    from hostage.features import FeatureFamily, FeatureSpec, measure_roi

    calls = []

    def compute(roi, *, config, names=None):
        calls.append(names)
        out = {"toy_a": float(roi.mask.sum()), "toy_b": 2.0}
        return out if names is None else {k: v for k, v in out.items() if k in names}

    specs = (FeatureSpec("toy_a", "1", "voxel count"), FeatureSpec("toy_b", "1", "two"))
    toy = FeatureFamily(name="toy", compute=compute, features=specs, partial=True)
    mask = np.zeros((6, 6, 6), bool)
    mask[2:4, 2:4, 2:4] = True
    roi = roi_from_arrays(np.where(mask, 400.0, 40.0), mask, spacing_zyx_mm=(1, 1, 1), config=CFG)
    got = measure_roi(roi, config=CFG, families=(toy,), names={"toy_b", "rim_completeness"})
    assert dict(got.values) == {"toy_b": 2.0}
    assert calls[-1] == frozenset({"toy_b"})
    assert dict(measure_roi(roi, config=CFG, families=(toy,)).values) == {
        "toy_a": 8.0,
        "toy_b": 2.0,
    }
    assert calls[-1] is None
    # a family that is not partial is always asked for everything
    whole = FeatureFamily(name="toy", compute=compute, features=specs)
    got = measure_roi(roi, config=CFG, families=(whole,), names={"toy_b"})
    assert dict(got.values) == {"toy_a": 8.0, "toy_b": 2.0}
    assert calls[-1] is None

    def ignores_names(roi, *, config, names=None):
        return {"toy_a": 1.0, "toy_b": 2.0}

    sloppy = FeatureFamily(name="toy", compute=ignores_names, features=specs, partial=True)
    with pytest.raises(RuntimeError, match=r"returned \('toy_a', 'toy_b'\); expected \('toy_b',\)"):
        measure_roi(roi, config=CFG, families=(sloppy,), names={"toy_b"})


@pytest.mark.parametrize("spacing", SPACINGS)
def test_halo_fraction_is_the_density_left_beyond_the_outline(spacing):
    # a ball 400 HU above muscle; around it a haze 100 HU above muscle out to 4 mm, or nothing
    ball = ellipsoid(10, 10, 10, spacing=spacing)
    pad = [(int(8 / s) + 1,) * 2 for s in spacing]
    mask = np.pad(ball, pad)
    out_mm = ndi.distance_transform_edt(~mask, sampling=spacing)
    ref = ReferenceTissues(
        muscle_hu=40.0, fat_hu=-100.0, cortex_hu=1400.0, noise_hu=10.0, edge_width_mm=1.0
    )
    values = {}
    for name, haze in (("hazy", 100.0), ("clean", 0.0)):
        hu = np.where(mask, 440.0, np.where(out_mm <= 4.0, 40.0 + haze, 40.0)).astype(np.float32)
        roi = roi_from_arrays(hu, mask, spacing_zyx_mm=spacing, config=CFG, reference=ref)
        values[name] = margin_features(roi, config=CFG)["margin_halo_fraction"]
    assert values["hazy"] == pytest.approx(100.0 / 400.0, abs=1e-6)
    assert values["clean"] == pytest.approx(0.0, abs=1e-6)
