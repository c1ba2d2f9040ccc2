"""Write real CT / MR DICOM files with pydicom, for any test (on the test path via pyproject)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat

PATIENT_NAME = "Doe^Jane"  # written into every file; must never reach a Volume, a log or a report
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _ds(values):
    return [DSfloat(float(v), auto_format=True) for v in values]


def ct_pixels(rows=12, cols=10, *, z=0, rng=0):
    """Stored values (uint16, intercept -1024): air border, soft tissue, a bone square."""
    r = np.random.default_rng([rng, z])
    a = np.full((rows, cols), 24, np.uint16)  # -1000 HU with intercept -1024
    a[2:-2, 2:-2] = 1064 + r.integers(-20, 20, size=(rows - 4, cols - 4))
    a[4:7, 3:6] = 2024 + 10 * z  # bone, varies with z so that order matters
    return a


def write_slice(
    path,
    pixels,
    *,
    study_uid,
    series_uid,
    ipp,
    iop=AXIAL,
    pixel_spacing=(0.7, 0.8),
    slope=1.0,
    intercept=-1024.0,
    modality="CT",
    image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
    series_number=1,
    instance_number=1,
    sop_uid=None,
    padding=None,
    slice_thickness=2.0,
    transfer_syntax=ExplicitVRLittleEndian,
):
    """Write one single-frame CT (or MR) image; `pixels` dtype sets PixelRepresentation."""
    pixels = np.asarray(pixels)
    signed = pixels.dtype.kind == "i"
    meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.PatientName = PATIENT_NAME
    ds.SeriesDescription = "SECRET free text"
    ds.ImageType = list(image_type)
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = _ds(ipp)
    ds.ImageOrientationPatient = _ds(iop)
    ds.PixelSpacing = _ds(pixel_spacing)
    ds.SliceThickness = DSfloat(slice_thickness, auto_format=True)
    ds.RescaleSlope = DSfloat(slope, auto_format=True)
    ds.RescaleIntercept = DSfloat(intercept, auto_format=True)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    if padding is not None:
        ds.PixelPaddingValue = int(padding)
    ds.PixelData = pixels.astype("<i2" if signed else "<u2").tobytes()
    if transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(transfer_syntax, pixels.astype(np.int16 if signed else np.uint16))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder,
    *,
    n=6,
    spacing_z=2.0,
    z0=-40.0,
    names=None,
    study_uid=None,
    series_uid=None,
    positions=None,
    rows=12,
    cols=10,
    rng=0,
    shift_per_slice_mm=(0.0, 0.0),
    **kw,
):
    """Write an axial series; returns (paths in ascending z, study_uid, series_uid, stored)."""
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    zs = positions if positions is not None else [z0 + k * spacing_z for k in range(n)]
    paths, stored = [], []
    for k, z in enumerate(zs):
        pixels = ct_pixels(rows, cols, z=k, rng=rng)
        name = names[k] if names is not None else f"IM{k:04d}.dcm"
        ipp = (-50.0 + shift_per_slice_mm[1] * k, -60.0 + shift_per_slice_mm[0] * k, z)
        p = write_slice(
            Path(folder) / name,
            pixels,
            study_uid=study_uid,
            series_uid=series_uid,
            ipp=ipp,
            instance_number=k + 1,
            **kw,
        )
        paths.append(p)
        stored.append(pixels)
    return paths, study_uid, series_uid, np.stack(stored)
