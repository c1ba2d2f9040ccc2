"""Real DICOM from pydicom and pydicom-data: HU must equal pydicom's own modality LUT."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import CTImageStorage

from hostage.errors import InputError
from hostage.io import load


def reference_hu(path):
    ds = pydicom.dcmread(path)
    hu = apply_modality_lut(ds.pixel_array, ds)
    pad = ds.get("PixelPaddingValue")
    padding = None if pad is None else ds.pixel_array == pad
    return ds, hu, padding


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",  # explicit VR little endian, 128x128
        "J2K_pixelrep_mismatch.dcm",  # JPEG 2000, signed data with a stream/header mismatch
        "693_UNCR.dcm",  # pydicom-data: head CT, uncompressed, with PixelPaddingValue
        "693_J2KR.dcm",  # the same slice, JPEG 2000 lossless
        "693_J2KI.dcm",  # the same slice, JPEG 2000 lossy (padding values only partly exact)
        "bad_sequence.dcm",  # JPEG lossless (process 14, SV1)
        "explicit_VR-UN.dcm",  # JPEG 2000 with UN elements
    ],
)
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # bad_sequence.dcm has hex UIDs
def test_single_slices_equal_pydicom_hu(pydicom_file, name):
    path = pydicom_file(name)
    ds, hu, padding = reference_hu(path)
    v = load(path)
    assert v.hu.shape == (1, ds.Rows, ds.Columns)
    assert v.series_instance_uid == ds.SeriesInstanceUID
    if padding is None or not padding.any():
        np.testing.assert_array_equal(v.hu[0], hu)
        assert not any("padding" in c for c in v.load_report.corrections)
    else:  # padding goes to air, everything else is pydicom's HU
        np.testing.assert_array_equal(v.hu[0][~padding], hu[~padding])
        assert np.all(v.hu[0][padding] == -1000)
        assert v.load_report.corrections == (
            f"mapped {int(padding.sum())} padding pixels (PixelPaddingValue) to air (-1000 HU)",
        )
    ps = [float(x) for x in ds.PixelSpacing]
    assert v.spacing_zyx_mm[1:] == pytest.approx(ps)
    np.testing.assert_allclose(v.origin_lps_mm, [float(x) for x in ds.ImagePositionPatient])


def test_ct5n_series_sorted_by_position(pydicom_file):
    folder = pydicom_file("dicomdirtests/98892001/CT5N/2062").parent
    v = load(folder)
    refs = sorted((float(pydicom.dcmread(p).ImagePositionPatient[2]), p) for p in folder.iterdir())
    assert v.hu.shape == (5, 16, 16)
    assert v.spacing_zyx_mm[0] == pytest.approx(2.5)
    for k, (_, p) in enumerate(refs):
        np.testing.assert_array_equal(v.hu[k], reference_hu(p)[1])
    assert v.source_files == tuple(p for _, p in refs)


def test_ct2n_holds_only_localizers(pydicom_file):
    folder = pydicom_file("dicomdirtests/98892001/CT2N/6293").parent
    with pytest.raises(InputError, match="localizer/scout") as e:
        load(folder)
    assert e.value.code == "no_series"


def test_enhanced_ct_frames_equal_pydicom(pydicom_file):
    path = pydicom_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    v = load(path)
    arr = ds.pixel_array
    frames = ds.PerFrameFunctionalGroupsSequence
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in frames]
    iop = [
        float(x)
        for x in ds.SharedFunctionalGroupsSequence[0]
        .PlaneOrientationSequence[0]
        .ImageOrientationPatient
    ]
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(np.array(z) * normal[2])
    for k, i in enumerate(order):
        item = frames[int(i)]
        trans = (
            item.get("PixelValueTransformationSequence")
            or ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence
        )[0]
        expect = arr[int(i)] * float(trans.RescaleSlope) + float(trans.RescaleIntercept)
        np.testing.assert_array_equal(v.hu[k], expect)
    np.testing.assert_allclose(v.direction_lps[:, 0], normal)
    assert v.spacing_zyx_mm[0] == pytest.approx(abs(z[1] - z[0]))


@pytest.mark.parametrize(("name", "code"), [("MR_small.dcm", "not_ct"), ("rtdose.dcm", "not_ct")])
def test_non_ct_objects_are_refused(pydicom_file, name, code):
    with pytest.raises(InputError, match="not CT") as e:
        load(pydicom_file(name))
    assert e.value.code == code


def test_undecodable_jpeg_gives_a_clean_error(pydicom_file, tmp_path, monkeypatch):
    """JPEG-lossy.dcm (12-bit JPEG Extended) decodes with none of pydicom's plugins."""
    ds = pydicom.dcmread(pydicom_file("JPEG-lossy.dcm"))
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.WARN)
    ds.Modality = "CT"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    out = tmp_path / "lossy12"
    ds.save_as(out)
    with pytest.raises(
        InputError,
        match=r"lossy12: cannot decode pixel data compressed with transfer syntax "
        r"JPEG Extended \(Process 2 and 4\) \(1\.2\.840\.10008\.1\.2\.4\.51\)",
    ) as e:
        load(out)
    assert e.value.code in ("undecodable", "missing_decoder")
    assert "pip install -U 'hostage[jpeg]'" in str(e.value)


def test_copied_real_series_with_junk(pydicom_file, tmp_path):
    src = pydicom_file("dicomdirtests/98892001/CT5N/2062").parent
    for i, p in enumerate(sorted(src.iterdir())):
        (tmp_path / f"n{i}" / "x").mkdir(parents=True)
        shutil.copy(p, tmp_path / f"n{i}" / "x" / f"{9 - i}")
    (tmp_path / "Thumbs.db").write_bytes(b"\x00" * 300)
    v = load(tmp_path)
    assert v.hu.shape == (5, 16, 16)
    assert v.load_report.num_files == 6 and v.load_report.num_non_dicom == 1


def test_dicomdir_and_loose_files_do_not_count_as_studies(pydicom_file, tmp_path):
    src = pydicom_file("dicomdirtests/98892001/CT5N/2062").parent
    shutil.copytree(src, tmp_path / "CT5N")
    shutil.copy(pydicom_file("dicomdirtests/DICOMDIR"), tmp_path / "DICOMDIR")
    v = load(tmp_path)
    assert v.hu.shape == (5, 16, 16)
    assert any("DICOMDIR (a directory index, not an image)" in s for s in v.load_report.skipped)
