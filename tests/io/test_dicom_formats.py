"""Enhanced (multi-frame) CT and compressed transfer syntaxes, written by pydicom."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from pydicom.valuerep import DSfloat

from hostage.config import LoadConfig
from hostage.errors import InputError
from hostage.io import load


def _item(**kw):
    ds = Dataset()
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def write_enhanced_ct(path, frames, z_mm, intercepts, *, compress=None):
    """One Enhanced CT file; frame i lies at z_mm[i] with its own RescaleIntercept."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = EnhancedCTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = EnhancedCTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CT"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.SeriesNumber, ds.InstanceNumber = 7, 1
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = frames[0].shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SharedFunctionalGroupsSequence = Sequence(
        [
            _item(
                PixelMeasuresSequence=Sequence(
                    [_item(PixelSpacing=[DSfloat(0.6), DSfloat(0.7)], SliceThickness=DSfloat(1.5))]
                ),
                PlaneOrientationSequence=Sequence(
                    [_item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]
                ),
            )
        ]
    )
    ds.PerFrameFunctionalGroupsSequence = Sequence(
        [
            _item(
                PlanePositionSequence=Sequence(
                    [_item(ImagePositionPatient=[DSfloat(-30.0), DSfloat(-40.0), DSfloat(z)])]
                ),
                PixelValueTransformationSequence=Sequence(
                    [_item(RescaleSlope=DSfloat(1), RescaleIntercept=DSfloat(b), RescaleType="HU")]
                ),
            )
            for z, b in zip(z_mm, intercepts, strict=True)
        ]
    )
    arr = np.stack(frames).astype(np.uint16)
    ds.PixelData = arr.tobytes()
    if compress is not None:
        ds.compress(compress, arr)
    ds.save_as(path, enforce_file_format=True)
    return ds


def test_enhanced_ct_shuffled_frames_and_per_frame_rescale(tmp_path, dicom_writer):
    frames = [dicom_writer.pixels(z=k) for k in range(4)]
    z = [3.0, 0.0, 4.5, 1.5]  # stored out of order
    intercepts = [-1024, -1000, -1024, -1010]
    write_enhanced_ct(tmp_path / "enhanced", frames, z, intercepts)
    v = load(tmp_path / "enhanced")
    order = np.argsort(z)
    expect = np.stack([frames[i].astype(np.int32) + intercepts[i] for i in order])
    assert v.hu.dtype == np.int16
    np.testing.assert_array_equal(v.hu, expect)
    assert v.spacing_zyx_mm == pytest.approx((1.5, 0.6, 0.7))
    assert v.origin_lps_mm == pytest.approx((-30.0, -40.0, 0.0))
    assert v.source_files == (tmp_path / "enhanced",)


def test_enhanced_ct_rle_compressed(tmp_path, dicom_writer):
    frames = [dicom_writer.pixels(z=k) for k in range(3)]
    write_enhanced_ct(tmp_path / "e", frames, [0, 2, 4], [-1024] * 3, compress=RLELossless)
    assert pydicom.dcmread(tmp_path / "e").file_meta.TransferSyntaxUID == RLELossless
    v = load(tmp_path / "e")
    np.testing.assert_array_equal(v.hu, np.stack(frames).astype(np.int32) - 1024)


def test_enhanced_ct_voxel_guard(tmp_path, dicom_writer):
    frames = [dicom_writer.pixels(z=k) for k in range(3)]
    write_enhanced_ct(tmp_path / "e", frames, [0, 2, 4], [-1024] * 3)
    with pytest.raises(InputError, match=r"12x10x3 = 360 voxels exceeds") as e:
        load(tmp_path / "e", config=LoadConfig(max_voxels=359))
    assert e.value.code == "too_large"


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_series(tmp_path, dicom_writer, syntax):
    # 40x36: openjpeg needs tiles large enough for its resolution levels
    paths, _, _, stored = dicom_writer.series(
        tmp_path, n=4, rows=40, cols=36, transfer_syntax=syntax
    )
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == syntax
    v = load(tmp_path)
    np.testing.assert_array_equal(v.hu, stored.astype(np.int32) - 1024)
    assert v.hu.dtype == np.int16


@pytest.mark.parametrize(
    "syntax", [ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian]
)
def test_other_uncompressed_syntaxes(tmp_path, dicom_writer, monkeypatch, syntax):
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.WARN)
    paths, _, _, stored = dicom_writer.series(tmp_path, n=3)
    for p, px in zip(paths, stored, strict=True):
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = syntax
        if syntax == ExplicitVRBigEndian:
            ds.PixelData = px.astype(">u2").tobytes()
            pydicom.dcmwrite(p, ds, implicit_vr=False, little_endian=False, force_encoding=True)
        else:
            ds.save_as(p, enforce_file_format=True)
        np.testing.assert_array_equal(pydicom.dcmread(p).pixel_array, px)
    v = load(tmp_path)
    np.testing.assert_array_equal(v.hu, stored.astype(np.int32) - 1024)
