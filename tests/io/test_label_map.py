"""External bone label maps (TotalSegmentator-like NIfTI) put on the CT's grid.

Real files are written with SimpleITK: on the CT's own grid, and on another
grid (1.5 mm, RAS orientation as TotalSegmentator writes it) that must be
resampled back so that each label covers the same anatomy.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from hostage.errors import InputError
from hostage.io.image_file import to_sitk_image
from hostage.io.label_map import load_label_map


def _bone_labels(phantom) -> np.ndarray:
    """Label 1 on the patient's right half of the phantom's bone, 2 on the left."""
    vol = phantom.volume
    x_lps = vol.index_to_lps_mm(np.array([[0, 0, i] for i in range(vol.shape_zyx[2])]))[:, 0]
    right = x_lps < np.median(x_lps)  # LPS: x grows to the patient's left
    labels = np.where(phantom.bone_mask, np.where(right[None, None, :], 1, 2), 0)
    return labels.astype(np.uint8)


def _other_grid(image: sitk.Image, spacing_mm: float) -> sitk.Image:
    """`image` reoriented to RAS and resampled (nearest neighbour) to isotropic `spacing_mm`."""
    ras = sitk.DICOMOrient(image, "RAS")
    size = [round(n * s / spacing_mm) for n, s in zip(ras.GetSize(), ras.GetSpacing(), strict=True)]
    return sitk.Resample(
        ras,
        size,
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        ras.GetOrigin(),
        (spacing_mm,) * 3,
        ras.GetDirection(),
        0,
        ras.GetPixelID(),
    )


def test_label_map_on_the_ct_grid_is_taken_as_is(phantom_small, tmp_path):
    labels = _bone_labels(phantom_small)
    path = tmp_path / "bones.nii.gz"
    sitk.WriteImage(to_sitk_image(labels, phantom_small.volume), str(path))
    lm = load_label_map(path, phantom_small.volume)
    assert not lm.resampled
    assert lm.warnings == ()
    np.testing.assert_array_equal(lm.labels, labels)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_label_map_on_another_grid_is_resampled_onto_the_ct(phantom_small, tmp_path, suffix):
    vol = phantom_small.volume
    labels = _bone_labels(phantom_small)
    other = _other_grid(to_sitk_image(labels, vol), 1.5)
    assert other.GetDirection() != to_sitk_image(labels, vol).GetDirection()  # really RAS
    path = tmp_path / f"bones{suffix}"
    sitk.WriteImage(other, str(path))
    lm = load_label_map(path, vol)
    assert lm.resampled
    assert lm.labels.shape == vol.shape_zyx
    assert set(np.unique(lm.labels)) == {0, 1, 2}
    # two nearest-neighbour resamplings move the outline by up to a voxel: the labels
    # agree on the bone's inside, and no label lands on the wrong side
    inner = sitk.GetArrayFromImage(
        sitk.BinaryErode(to_sitk_image((labels > 0).astype(np.uint8), vol), (2, 2, 1))
    ).astype(bool)
    assert np.mean(lm.labels[inner] == labels[inner]) > 0.97
    # away from the plane where label 1 meets label 2, no label lands on the other's side
    split = np.flatnonzero(np.diff(np.any(labels == 1, axis=(0, 1)).astype(int)))
    far = np.ones(vol.shape_zyx[2], bool)
    for x in split:
        far[max(0, x - 2) : x + 3] = False
    swapped = ((lm.labels == 1) & (labels == 2)) | ((lm.labels == 2) & (labels == 1))
    assert not swapped[:, :, far].any()
    assert lm.warnings == ()  # it covers the CT (up to the edge voxels lost to rounding)


def test_label_map_covering_part_of_the_ct_warns(phantom_small, tmp_path):
    vol = phantom_small.volume
    labels = _bone_labels(phantom_small)
    half = to_sitk_image(labels, vol)[:, :, : vol.shape_zyx[0] // 2]
    path = tmp_path / "half.nii.gz"
    sitk.WriteImage(half, str(path))
    lm = load_label_map(path, vol)
    assert lm.coverage == pytest.approx(0.5, abs=0.05)
    assert any("covers about 50 %" in w for w in lm.warnings)
    assert not lm.labels[vol.shape_zyx[0] // 2 + 1 :].any()


def test_label_map_elsewhere_in_the_patient_is_an_error(phantom_small, tmp_path):
    img = to_sitk_image(_bone_labels(phantom_small), phantom_small.volume)
    img.SetOrigin(tuple(v + 1000.0 for v in img.GetOrigin()))
    path = tmp_path / "far.nii.gz"
    sitk.WriteImage(img, str(path))
    with pytest.raises(InputError, match="does not overlap the CT") as info:
        load_label_map(path, phantom_small.volume)
    assert info.value.path == path
    assert info.value.code == "bad_labels"


def test_probability_map_is_not_a_label_map(phantom_small, tmp_path):
    prob = _bone_labels(phantom_small).astype(np.float32) * 0.5
    path = tmp_path / "prob.nii.gz"
    sitk.WriteImage(to_sitk_image(prob, phantom_small.volume), str(path))
    with pytest.raises(InputError, match=r"whole numbers \(found 0.5\)"):
        load_label_map(path, phantom_small.volume)


def test_whole_numbered_float_labels_are_accepted(phantom_small, tmp_path):
    labels = _bone_labels(phantom_small)
    path = tmp_path / "float.nii.gz"
    sitk.WriteImage(to_sitk_image(labels.astype(np.float32), phantom_small.volume), str(path))
    lm = load_label_map(path, phantom_small.volume)
    assert lm.labels.dtype.kind == "i"
    np.testing.assert_array_equal(lm.labels, labels)


def test_two_dimensional_image_is_refused(phantom_small, tmp_path):
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.Image(16, 16, sitk.sitkUInt8), str(path))
    with pytest.raises(InputError, match="expected a 3-D label image"):
        load_label_map(path, phantom_small.volume)


def test_missing_and_unreadable_files_name_the_file(phantom_small, tmp_path):
    with pytest.raises(InputError, match="label map file not found") as info:
        load_label_map(tmp_path / "nope.nii.gz", phantom_small.volume)
    assert info.value.code == "missing"
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read the label map") as info:
        load_label_map(junk, phantom_small.volume)
    assert str(junk) in str(info.value)


def test_folder_of_structure_masks_is_one_label_per_file(phantom_small, tmp_path):
    """TotalSegmentator's default output: one binary mask per structure, named after it."""
    vol = phantom_small.volume
    labels = _bone_labels(phantom_small)
    folder = tmp_path / "segmentations"
    folder.mkdir()
    for name, k in (("hip_right", 1), ("femur_left", 2)):
        mask = to_sitk_image((labels == k).astype(np.uint8), vol)
        sitk.WriteImage(_other_grid(mask, 1.5), str(folder / f"{name}.nii.gz"))
    (folder / "notes.txt").write_text("not an image")
    lm = load_label_map(folder, vol)
    assert lm.resampled
    # files in name order: femur_left = 1, hip_right = 2
    assert dict(lm.names) == {1: "femur_left", 2: "hip_right"}
    inner = sitk.GetArrayFromImage(
        sitk.BinaryErode(to_sitk_image((labels > 0).astype(np.uint8), vol), (2, 2, 1))
    ).astype(bool)
    expected = np.select([labels == 2, labels == 1], [1, 2], 0)
    assert np.mean(lm.labels[inner] == expected[inner]) > 0.97


def test_folder_without_label_images_is_an_error(phantom_small, tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no label images") as info:
        load_label_map(tmp_path, phantom_small.volume)
    assert info.value.path == tmp_path
