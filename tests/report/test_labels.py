"""The label map lines up with the CT and its labels are the reported foci."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from hostage.report.labels import LABEL_MAP_NAME, LABEL_TABLE_NAME, write_label_map

GEOMETRIES = ("axial-anisotropic", "axial-isotropic", "oblique-flipped")


@pytest.fixture(params=GEOMETRIES, scope="module")
def study(request, kit):
    return kit.make_study(request.param)


def test_label_map_matches_foci(study, tmp_path, kit):
    paths = write_label_map(kit.outputs_for(study, tmp_path))
    assert [p.name for p in paths] == [LABEL_MAP_NAME, LABEL_TABLE_NAME]
    img = sitk.ReadImage(str(tmp_path / LABEL_MAP_NAME))
    arr = sitk.GetArrayFromImage(img)
    assert arr.shape == study.volume.shape_zyx
    voxel_mm3 = float(np.prod(img.GetSpacing()))
    assert voxel_mm3 == pytest.approx(study.volume.voxel_volume_mm3, rel=1e-6)
    assert sorted(int(v) for v in np.unique(arr) if v) == [f.id for f in study.result.foci]
    half_voxel_mm = 0.5 * max(study.volume.spacing_zyx_mm)
    for focus in study.result.foci:
        idx_zyx = np.argwhere(arr == focus.id)
        # NIfTI stores spacing as float32, hence rel=1e-6
        assert len(idx_zyx) * voxel_mm3 == pytest.approx(focus.volume_mm3, rel=1e-6)
        # label centroid in patient space, through SimpleITK's own geometry
        centroid_xyz_index = idx_zyx.mean(axis=0)[::-1]
        lps = np.array(img.TransformContinuousIndexToPhysicalPoint(centroid_xyz_index.tolist()))
        assert np.linalg.norm(lps - np.array(focus.centroid_lps_mm)) < half_voxel_mm
        # and every voxel of the label is where hostage's Volume puts the focus voxels
        corner = idx_zyx[0]
        p_itk = img.TransformIndexToPhysicalPoint([int(v) for v in corner[::-1]])
        np.testing.assert_allclose(p_itk, study.volume.index_to_lps_mm(corner), atol=1e-4)


def test_label_map_grid_is_the_ct_grid(study, tmp_path, kit):
    write_label_map(kit.outputs_for(study, tmp_path))
    img = sitk.ReadImage(str(tmp_path / LABEL_MAP_NAME))
    v = study.volume
    np.testing.assert_allclose(img.GetOrigin(), v.origin_lps_mm, atol=1e-4)
    np.testing.assert_allclose(img.GetSpacing(), v.spacing_zyx_mm[::-1], rtol=1e-6)
    for corner in [(0, 0, 0), tuple(n - 1 for n in v.shape_zyx), (3, 7, 11)]:
        p = img.TransformIndexToPhysicalPoint([int(c) for c in corner[::-1]])
        np.testing.assert_allclose(p, v.index_to_lps_mm(corner), atol=1e-3)


def test_label_table(study, tmp_path, kit):
    write_label_map(kit.outputs_for(study, tmp_path))
    doc = json.loads((tmp_path / LABEL_TABLE_NAME).read_text())
    assert doc["schema"] == "hostage.labels/1"
    assert doc["label_map"] == LABEL_MAP_NAME
    assert set(doc["labels"]) == {str(f.id) for f in study.result.foci}
    for f in study.result.foci:
        entry = doc["labels"][str(f.id)]
        assert entry["stage"] == study.truth[f.id].value
        assert entry["confidence"] == pytest.approx(f.confidence)
        assert entry["label_volume_mm3"] == pytest.approx(f.volume_mm3, rel=1e-9)
        assert entry["num_voxels"] * study.volume.voxel_volume_mm3 == pytest.approx(f.volume_mm3)


def test_only_reported_foci_are_painted(tmp_path, kit):
    from dataclasses import replace

    study = kit.make_study("axial-anisotropic")
    kept = tuple(f for f in study.result.foci if f.id != 2)
    ctx = kit.outputs_for(study, tmp_path)
    ctx = replace(ctx, result=replace(study.result, foci=kept))
    write_label_map(ctx)
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / LABEL_MAP_NAME)))
    assert sorted(int(v) for v in np.unique(arr) if v) == [1, 3]
