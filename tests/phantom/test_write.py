"""Phantoms written as CT DICOM series read back with pydicom, SimpleITK and hostage.load."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

import hostage
from hostage.phantom import Phantom, write_phantom
from hostage.phantom.write import stored_values


def _files(folder):
    return sorted(folder.glob("CT*.dcm"))


@pytest.fixture(scope="module")
def tiny(phantom_factory) -> Phantom:
    return phantom_factory(seed=9, shape_zyx=(8, 72, 72), spacing_zyx_mm=(3.0, 1.1, 1.1), lesions=1)


def test_series_reads_back_with_pydicom(phantom_dicom_dir, phantom_small: Phantom):
    v = phantom_small.volume
    files = _files(phantom_dicom_dir)
    assert len(files) == v.hu.shape[0]
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        assert ds.Modality == "CT"
        assert ds.SOPClassUID == pydicom.uid.CTImageStorage
        assert ds.StudyInstanceUID == v.study_instance_uid
        assert ds.SeriesInstanceUID == v.series_instance_uid
        assert ds.InstanceNumber == k + 1
        assert [float(p) for p in ds.PixelSpacing] == pytest.approx([0.8, 0.8])
        assert float(ds.SliceThickness) == pytest.approx(2.5)
        assert [float(p) for p in ds.ImagePositionPatient] == pytest.approx(
            v.index_to_lps_mm((k, 0, 0)).tolist(), abs=1e-4
        )
        assert [float(c) for c in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(hu, v.hu[k])
    truth = json.loads((phantom_dicom_dir / "truth.json").read_text())
    assert truth == json.loads(json.dumps(phantom_small.truth.to_dict()))
    assert truth["expected_resection"] == "not_ready"
    assert [les["stage"] for les in truth["lesions"]] == ["mature", "immature", "amorphous"]
    for key in ("centre_lps_mm", "size_mm", "volume_mm3", "bbox_lps_mm", "attached_to_bone"):
        assert key in truth["lesions"][0]


def test_series_reads_back_with_simpleitk(phantom_dicom_dir, phantom_small: Phantom):
    v = phantom_small.volume
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(phantom_dicom_dir)))
    img = reader.Execute()
    assert np.array_equal(sitk.GetArrayFromImage(img), v.hu)
    assert img.GetSpacing() == pytest.approx(v.spacing_zyx_mm[::-1], abs=1e-4)
    assert img.GetOrigin() == pytest.approx(v.origin_lps_mm, abs=1e-4)


def test_series_reads_back_with_hostage_load(phantom_dicom_dir, phantom_small: Phantom):
    v = hostage.load(phantom_dicom_dir)
    assert np.array_equal(np.asarray(v.hu), phantom_small.volume.hu)
    assert v.spacing_zyx_mm == pytest.approx(phantom_small.volume.spacing_zyx_mm)
    assert v.origin_lps_mm == pytest.approx(phantom_small.volume.origin_lps_mm, abs=1e-4)
    assert v.study_instance_uid == phantom_small.volume.study_instance_uid


@pytest.mark.parametrize(
    ("signed", "slope", "intercept", "compress"),
    [
        (True, 1.0, 0.0, None),
        (False, 1.0, -1024.0, None),
        (True, 0.5, -1000.0, None),
        (False, 1.0, -2048.0, "rle"),
        (True, 1.0, 0.0, "rle"),
    ],
)
def test_stored_value_conventions_give_the_same_hu(
    tmp_path, tiny, signed, slope, intercept, compress
):
    out = write_phantom(
        tiny,
        tmp_path / "s",
        signed=signed,
        rescale_slope=slope,
        rescale_intercept=intercept,
        compress=compress,
    )
    files = _files(out)
    ds = pydicom.dcmread(files[0])
    assert ds.PixelRepresentation == (1 if signed else 0)
    assert float(ds.RescaleSlope) == slope and float(ds.RescaleIntercept) == intercept
    expected_ts = pydicom.uid.RLELossless if compress else pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.TransferSyntaxUID == expected_ts
    if not signed:
        assert ds.pixel_array.dtype == np.uint16
    stack = np.stack([pydicom.dcmread(f).pixel_array for f in files])
    assert np.array_equal(stack * slope + intercept, tiny.volume.hu)
    img = sitk.ReadImage([str(f) for f in files])
    assert np.array_equal(sitk.GetArrayFromImage(img), tiny.volume.hu)


def test_rle_is_smaller(tmp_path, tiny):
    raw = write_phantom(tiny, tmp_path / "raw")
    rle = write_phantom(tiny, tmp_path / "rle", compress="rle")
    size = lambda d: sum(f.stat().st_size for f in _files(d))  # noqa: E731
    assert size(rle) < 0.8 * size(raw)


def test_bad_conventions_are_rejected_before_writing(tmp_path, tiny):
    with pytest.raises(ValueError, match="do not fit uint16"):
        write_phantom(tiny, tmp_path / "a", signed=False, rescale_intercept=0.0)
    with pytest.raises(ValueError, match="cannot represent these integer HU exactly"):
        write_phantom(tiny, tmp_path / "b", rescale_slope=3.0)
    with pytest.raises(ValueError, match="compress must be one of"):
        write_phantom(tiny, tmp_path / "c", compress="jpeg")
    with pytest.raises(ValueError, match="rescale_slope must be > 0"):
        stored_values(
            np.zeros((1, 1, 1), np.int16), signed=True, rescale_slope=0.0, rescale_intercept=0.0
        )
    assert not any((tmp_path / n).exists() for n in "abc")
