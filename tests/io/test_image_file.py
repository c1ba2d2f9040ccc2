"""NIfTI / NRRD / MetaImage through SimpleITK: same HU at the same LPS point as DICOM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from hostage.config import LoadConfig
from hostage.errors import InputError
from hostage.io import load


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
@pytest.mark.parametrize("oblique", [False, True])
def test_dicom_to_volume_file_round_trip(tmp_path, dicom_writer, suffix, oblique):
    if oblique:
        a = math.radians(20)
        iop = (1.0, 0.0, 0.0, 0.0, math.cos(a), -math.sin(a))
    else:
        iop = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    normal = np.cross(iop[:3], iop[3:])
    positions = [np.array([-50.0, -60.0, 0.0]) + 2.5 * k * normal for k in range(5)]
    folder = tmp_path / "dicom"
    study, series = "1.2.3.4", "1.2.3.4.5"
    for k, ipp in enumerate(positions):
        dicom_writer.slice(
            folder / f"{k}",
            dicom_writer.pixels(z=k),
            study_uid=study,
            series_uid=series,
            ipp=tuple(ipp),
            iop=iop,
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkInt16)
    out = tmp_path / f"ct{suffix}"
    sitk.WriteImage(reader.Execute(), str(out))

    from_dicom = load(folder)
    from_file = load(out)
    assert from_file.study_instance_uid is None and from_file.source == out
    assert from_file.hu.dtype == np.int16
    np.testing.assert_array_equal(from_file.hu, from_dicom.hu)
    np.testing.assert_allclose(from_file.spacing_zyx_mm, from_dicom.spacing_zyx_mm, atol=1e-4)
    np.testing.assert_allclose(from_file.direction_lps, from_dicom.direction_lps, atol=1e-5)
    # the same LPS point has the same HU in both
    rng = np.random.default_rng(3)
    for idx in rng.integers(0, [5, 12, 10], size=(20, 3)):
        lps = from_dicom.index_to_lps_mm(idx)
        back = np.round(from_file.lps_mm_to_index(lps)).astype(int)
        np.testing.assert_array_equal(back, idx)
        assert from_file.hu[tuple(back)] == from_dicom.hu[tuple(idx)]


def test_float_volume_stays_float32(tmp_path):
    arr = np.linspace(-1000, 1500, 4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.6, 2.0))
    img.SetOrigin((10.0, 20.0, 30.0))
    sitk.WriteImage(img, str(tmp_path / "f.nrrd"))
    v = load(tmp_path / "f.nrrd")
    assert v.hu.dtype == np.float32
    np.testing.assert_array_equal(v.hu, arr)
    assert v.spacing_zyx_mm == (2.0, 0.6, 0.5)
    np.testing.assert_allclose(v.index_to_lps_mm([1, 2, 3]), [11.5, 21.2, 32.0])


def test_volume_file_errors(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InputError, match=r"broken\.nii\.gz: cannot read the volume") as e:
        load(bad)
    assert e.value.code == "bad_volume"
    img = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16))
    sitk.WriteImage(img, str(tmp_path / "big.mha"))
    with pytest.raises(InputError, match=r"5x4x3 = 60 voxels exceeds \[load\] max_voxels = 59"):
        load(tmp_path / "big.mha", config=LoadConfig(max_voxels=59))
    img2d = sitk.GetImageFromArray(np.zeros((4, 5), np.int16))
    sitk.WriteImage(img2d, str(tmp_path / "flat.nrrd"))
    with pytest.raises(InputError, match="expected a 3-D scalar volume, found 2-D"):
        load(tmp_path / "flat.nrrd")
