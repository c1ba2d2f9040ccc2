"""Write a phantom as a CT DICOM series (one file per slice) plus ``truth.json``.

Every file is a valid CT Image Storage object (checked by pydicom's writing
validation when it is set to raise) with the attributes a CT reader needs: patient,
study, series, frame of reference and equipment modules, image plane geometry
(ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness) and
the stored-value convention (PixelRepresentation, RescaleSlope/Intercept). Patient
fields hold fixed anonymous placeholders, never anything else.
"""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io.write import atomic_path, atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from . import Phantom

__all__ = ["COMPRESSIONS", "stored_values", "write_phantom"]

logger = logging.getLogger(__name__)

#: Accepted values of ``compress``.
COMPRESSIONS = (None, "rle")


def stored_values(
    hu: np.ndarray, *, signed: bool, rescale_slope: float, rescale_intercept: float
) -> np.ndarray:
    """Convert Hounsfield units to stored pixel values, exactly.

    Parameters
    ----------
    hu : ndarray of int16
        Hounsfield units.
    signed : bool
        int16 (PixelRepresentation 1) or uint16 (PixelRepresentation 0) storage.
    rescale_slope, rescale_intercept : float
        ``HU = stored * slope + intercept``.

    Returns
    -------
    stored : ndarray of int16 or uint16

    Raises
    ------
    ValueError
        If the slope is not positive, or the HU cannot be represented exactly in the
        chosen type (for example negative stored values with unsigned storage).

    Examples
    --------
    >>> stored_values(np.array([-1000, 0, 40], np.int16), signed=False,
    ...               rescale_slope=1.0, rescale_intercept=-1024.0).tolist()
    [24, 1024, 1064]
    """
    if not rescale_slope > 0:
        raise ValueError(f"rescale_slope must be > 0; got {rescale_slope!r}")
    raw = (hu.astype(np.float64) - rescale_intercept) / rescale_slope
    stored = np.rint(raw)
    if not np.allclose(stored * rescale_slope + rescale_intercept, hu, atol=1e-6):
        raise ValueError(
            f"rescale_slope={rescale_slope} and rescale_intercept={rescale_intercept} cannot "
            "represent these integer HU exactly; use a slope of 1 or 1/n and an integer intercept"
        )
    info = np.iinfo(np.int16 if signed else np.uint16)
    lo, hi = float(stored.min()), float(stored.max())
    if lo < info.min or hi > info.max:
        raise ValueError(
            f"stored values {lo:.0f}..{hi:.0f} do not fit {'int16' if signed else 'uint16'} "
            f"(signed={signed}, rescale_intercept={rescale_intercept}); for unsigned storage "
            "use rescale_intercept=-1024 or lower"
        )
    return stored.astype(np.int16 if signed else np.uint16)


def write_phantom(
    phantom: Phantom,
    out_dir: str | Path,
    *,
    signed: bool = True,
    rescale_slope: float = 1.0,
    rescale_intercept: float = 0.0,
    compress: str | None = None,
) -> Path:
    """Write `phantom` as a CT DICOM series plus ``truth.json`` into `out_dir`.

    Parameters
    ----------
    phantom : Phantom
    out_dir : str or Path
        Created if missing. Files ``CT000001.dcm``... and ``truth.json`` are written
        atomically.
    signed : bool
        Store int16 (PixelRepresentation 1) or uint16 (0).
    rescale_slope, rescale_intercept : float
        Stored-value convention, ``HU = stored * slope + intercept``. Unsigned storage
        needs an intercept of -1024 or lower.
    compress : {None, "rle"}
        Write uncompressed (Explicit VR Little Endian) or RLE Lossless.

    Returns
    -------
    Path
        `out_dir`.

    Raises
    ------
    ValueError
        If `compress` is unknown or the stored-value convention cannot hold the HU.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        CTImageStorage,
        ExplicitVRLittleEndian,
        RLELossless,
        generate_uid,
    )

    if compress not in COMPRESSIONS:
        raise ValueError(f"compress must be one of {COMPRESSIONS}; got {compress!r}")
    out = Path(out_dir)
    vol = phantom.volume
    truth = phantom.truth
    stored = stored_values(
        np.asarray(vol.hu),
        signed=signed,
        rescale_slope=rescale_slope,
        rescale_intercept=rescale_intercept,
    )
    out.mkdir(parents=True, exist_ok=True)
    nz, ny, nx = vol.shape_zyx
    dz, dy, dx = vol.spacing_zyx_mm
    now = _dt.datetime(2026, 1, 1, 12, 0, 0)
    frame_uid = generate_uid()
    row_dir = vol.direction_lps[:, 2]  # direction of increasing column index (x)
    col_dir = vol.direction_lps[:, 1]  # direction of increasing row index (y)
    iop = [float(v) for v in (*row_dir, *col_dir)]
    window = (500.0, 2000.0)
    for k in range(nz):
        ds = pydicom.Dataset()
        meta = FileMetaDataset()
        sop_uid = generate_uid()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = now.strftime("%H%M%S")
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "hostage phantom"
        ds.ManufacturerModelName = "synthetic"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "synthetic HO phantom"
        ds.SeriesDescription = "synthetic HO phantom, axial"
        ds.PatientName = "Phantom^HO"
        ds.PatientID = f"PHANTOM{truth.seed}"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.BodyPartExamined = "HIP"
        ds.SliceThickness = _ds(truth.scanner.slice_thickness_mm)
        ds.SpacingBetweenSlices = _ds(dz)
        ds.KVP = "120"
        ds.ConvolutionKernel = "B30f"
        ds.PatientPosition = "FFS"
        ds.StudyInstanceUID = truth.study_instance_uid
        ds.SeriesInstanceUID = truth.series_instance_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.StudyID = "1"
        ds.SeriesNumber = 2
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = k + 1
        pos = vol.index_to_lps_mm((k, 0, 0))
        ds.ImagePositionPatient = [_ds(v) for v in pos]
        ds.ImageOrientationPatient = [_ds(v) for v in iop]
        ds.SliceLocation = _ds(pos[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        ds.PixelSpacing = [_ds(dy), _ds(dx)]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.WindowCenter = _ds(window[0])
        ds.WindowWidth = _ds(window[1])
        ds.RescaleIntercept = _ds(rescale_intercept)
        ds.RescaleSlope = _ds(rescale_slope)
        ds.RescaleType = "HU"
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds["PixelData"].VR = "OW"
        if compress == "rle":
            ds.compress(RLELossless, encoding_plugin="pydicom")
        with atomic_path(out / f"CT{k + 1:06d}.dcm") as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    atomic_write_json(out / "truth.json", truth.to_dict())
    logger.info("wrote %d slices and truth.json to %s", nz, out)
    return out


def _ds(v: float) -> str:
    """Format a number as a DICOM decimal string (at most 16 characters).

    Examples
    --------
    >>> _ds(-547.3779999999), _ds(0.8), _ds(-0.0)
    ('-547.378', '0.8', '0')
    """
    x = round(float(v), 6)
    for digits in range(12, 5, -1):
        s = f"{x:.{digits}g}"
        if len(s) <= 16:
            break
    return "0" if s in ("-0", "0") else s
