"""Header-only reading of one DICOM file into a small, picklable :class:`DicomHeader`.

Only the fields the loader needs are kept (UIDs, Modality, ImageType, size,
bit depth, geometry, rescale, padding, and the byte offset of native pixel
data); never PatientName or other free-text fields.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.tag import BaseTag

from ..errors import InputError

#: Media Storage Directory Storage (DICOMDIR files).
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

__all__ = [
    "DICOMDIR_SOP_CLASS",
    "PARSE_ERRORS",
    "DicomHeader",
    "FrameGeometry",
    "read_header",
    "read_headers",
]

#: Exceptions third-party parsers raise on malformed input. Caught only at the
#: file boundary and turned into an :class:`InputError` (or a skip reason).
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    InvalidDicomError,
    BytesLengthException,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    struct.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ZeroDivisionError,
    LookupError,
)

_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_PIXEL_TAG_BE = b"\x7f\xe0\x00\x10"
_DEFLATED = "1.2.840.10008.1.2.1.99"
_LONG_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}
_FAST_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_TOP_TAGS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "ImageType",
    "SeriesNumber",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "RescaleSlope",
    "RescaleIntercept",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
)


#: Value representation of each of :data:`_TOP_TAGS` that :func:`_raw_value` converts
#: itself (PixelPaddingValue and PixelPaddingRangeLimit are US or SS: left to pydicom).
_TOP_VRS = {
    "SOPClassUID": "UI",
    "SOPInstanceUID": "UI",
    "StudyInstanceUID": "UI",
    "SeriesInstanceUID": "UI",
    "Modality": "CS",
    "ImageType": "CS",
    "SeriesNumber": "IS",
    "InstanceNumber": "IS",
    "Rows": "US",
    "Columns": "US",
    "NumberOfFrames": "IS",
    "SamplesPerPixel": "US",
    "BitsAllocated": "US",
    "BitsStored": "US",
    "PixelRepresentation": "US",
    "PhotometricInterpretation": "CS",
    "ImagePositionPatient": "DS",
    "ImageOrientationPatient": "DS",
    "PixelSpacing": "DS",
    "SliceThickness": "DS",
    "SpacingBetweenSlices": "DS",
    "RescaleSlope": "DS",
    "RescaleIntercept": "DS",
}
#: Keyword -> tag of each of :data:`_TOP_TAGS`.
_TOP_TAG_NUMBERS = {
    name: BaseTag(pydicom.datadict.tag_for_keyword(name) or 0) for name in _TOP_TAGS
}
#: One value of each VR, in the plain form only (anything else is converted by pydicom).
_RAW_FORMS = {
    "UI": re.compile(r"[0-9.]+"),
    "CS": re.compile(r"[A-Z0-9_ ]*"),
    "IS": re.compile(r" *[+-]?[0-9]{1,12} *"),
    "DS": re.compile(r" *[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})? *"),
}
_MULTI_VALUED = {"ImageType", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"}
#: :func:`_raw_value` could not convert the element: ask pydicom.
_ASK_PYDICOM = object()


def _raw_value(name: str, raw: object) -> object:
    """Convert a still-raw element of a plain, well-formed value; else :data:`_ASK_PYDICOM`.

    pydicom converts each element through its hooks and value classes (about
    10 µs each; 27 per file, 0.09 s of CPU for a 300-slice series). The values
    here are plain ASCII numbers, UIDs and code strings: split at backslashes,
    padding stripped, each value checked against the strict form of its VR,
    they give the loader the same fields as pydicom's values (tested on every
    file of pydicom's test data). Anything else (other VR, empty, non-ASCII,
    unexpected form or multiplicity) is left to pydicom.
    """
    vr = _TOP_VRS.get(name)
    if vr is None or not isinstance(raw, RawDataElement):
        return _ASK_PYDICOM
    value = raw.value
    if raw.VR not in (None, vr) or not isinstance(value, bytes) or not value:
        return _ASK_PYDICOM
    if vr == "US":
        if len(value) != 2:
            return _ASK_PYDICOM
        return int.from_bytes(value, "little" if raw.is_little_endian else "big")
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return _ASK_PYDICOM
    parts = text.rstrip("\0 ").split("\\")
    form = _RAW_FORMS[vr]
    if not parts[0] or not all(form.fullmatch(p) for p in parts):
        return _ASK_PYDICOM
    if len(parts) > 1:
        return parts if name in _MULTI_VALUED else _ASK_PYDICOM
    return parts[0]


def _top_values(ds: pydicom.Dataset) -> dict[str, object]:
    """Return the :data:`_TOP_TAGS` of `ds` (None when absent); plain values skip pydicom."""
    elems = ds._dict
    out: dict[str, object] = {}
    for name in _TOP_TAGS:
        raw = elems.get(_TOP_TAG_NUMBERS[name])
        if raw is None:
            out[name] = None
            continue
        value = _raw_value(name, raw)
        out[name] = ds.get(name) if value is _ASK_PYDICOM else value
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameGeometry:
    """Position and value mapping of one image frame (a slice), from its header.

    Attributes
    ----------
    ipp_lps_mm : tuple of 3 float or None
        ImagePositionPatient: LPS position (mm) of the centre of the first pixel.
    iop : tuple of 6 float or None
        ImageOrientationPatient: row then column direction cosines (LPS).
    pixel_spacing_mm : tuple of 2 float or None
        PixelSpacing: (between rows, between columns) in mm.
    slope, intercept : float
        RescaleSlope / RescaleIntercept (HU = stored x slope + intercept).
    thickness_mm : float or None
        SliceThickness (or SpacingBetweenSlices), used only for single slices.
    """

    ipp_lps_mm: tuple[float, float, float] | None
    iop: tuple[float, float, float, float, float, float] | None
    pixel_spacing_mm: tuple[float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    thickness_mm: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DicomHeader:
    """What the loader needs from one DICOM file's header. No free-text fields.

    ``pixel_offset`` is the byte offset of the (native, little-endian) pixel
    data value in the file, so that pixels can later be read without parsing
    the header again; None when the data must be decoded by pydicom.
    """

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    modality: str
    image_type: tuple[str, ...]
    series_number: int | None
    instance_number: int | None
    rows: int
    columns: int
    num_frames: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    transfer_syntax: str
    has_pixel_data: bool
    pixel_offset: int | None
    pixel_length: int | None
    padding_value: int | None
    padding_limit: int | None
    multiframe: bool
    frames: tuple[FrameGeometry, ...]


def _looks_like_dicom(head: bytes) -> bool:
    """Preamble + DICM, or a file starting with a group 0002/0008 element (no preamble)."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[3] == 0


def _floats(value: object, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        seq = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "__iter__") else []
        if isinstance(value, (str, bytes)):
            return None
        out = tuple(float(v) for v in seq)
    except (TypeError, ValueError):
        return None
    if len(out) != n:
        return None
    return out


def _float(value: object, default: float | None) -> float | None:
    if value is None or value == "":
        return default
    try:
        if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
            value = next(iter(value))
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, StopIteration):
        return default


def _rescale(value: object, default: float) -> float:
    """RescaleSlope/Intercept: `default` when absent, NaN when present but unreadable."""
    if value is None or value == "":
        return default
    parsed = _float(value, None)
    return math.nan if parsed is None else parsed


def _int(value: object, default: int | None) -> int | None:
    f = _float(value, None)
    if f is None or f != f or abs(f) > 2**40:
        return default
    return int(f)


def _str(value: object) -> str:
    return "" if value is None else str(value).strip()


def _strs(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return (_str(value).upper(),)
    return tuple(_str(v).upper() for v in value)


def _item(seq: object) -> object | None:
    try:
        return seq[0] if seq else None  # type: ignore[index]
    except (TypeError, IndexError):
        return None


def _frame_from(groups: Iterable[object | None], top: FrameGeometry) -> FrameGeometry:
    """Merge per-frame, shared and top-level values (first found wins)."""
    ipp, iop, ps, slope, intercept, thick = None, None, None, None, None, None
    for g in groups:
        if g is None:
            continue
        pos = _item(getattr(g, "PlanePositionSequence", None))
        if ipp is None and pos is not None:
            ipp = _floats(getattr(pos, "ImagePositionPatient", None), 3)
        ori = _item(getattr(g, "PlaneOrientationSequence", None))
        if iop is None and ori is not None:
            iop = _floats(getattr(ori, "ImageOrientationPatient", None), 6)
        meas = _item(getattr(g, "PixelMeasuresSequence", None))
        if meas is not None:
            if ps is None:
                ps = _floats(getattr(meas, "PixelSpacing", None), 2)
            if thick is None:
                thick = _float(getattr(meas, "SliceThickness", None), None)
        trans = _item(getattr(g, "PixelValueTransformationSequence", None))
        if trans is not None and slope is None:
            slope = _rescale(getattr(trans, "RescaleSlope", None), top.slope)
            intercept = _rescale(getattr(trans, "RescaleIntercept", None), top.intercept)
    return FrameGeometry(
        ipp_lps_mm=ipp if ipp is not None else top.ipp_lps_mm,  # type: ignore[arg-type]
        iop=iop if iop is not None else top.iop,  # type: ignore[arg-type]
        pixel_spacing_mm=ps if ps is not None else top.pixel_spacing_mm,  # type: ignore[arg-type]
        slope=slope if slope is not None else top.slope,
        intercept=intercept if intercept is not None else top.intercept,
        thickness_mm=thick if thick is not None else top.thickness_mm,
    )


def read_header(path: str | Path) -> DicomHeader:
    """Read the header of one DICOM file (no pixel data).

    Parameters
    ----------
    path : str or Path
        Any file; it need not have a ``.dcm`` name.

    Returns
    -------
    DicomHeader

    Raises
    ------
    InputError
        ``code="not_dicom"`` if the file is not DICOM, ``"truncated"`` or
        ``"bad_header"`` if its header cannot be parsed.
    """
    path = Path(path)
    try:
        with path.open("rb") as fp:
            head = fp.read(132)
            if not _looks_like_dicom(head):
                raise InputError(
                    "not a DICOM file (no 'DICM' marker or DICOM element at the start) and "
                    "not a NIfTI/NRRD/MetaImage volume name",
                    path=path,
                    code="not_dicom",
                )
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            tag_offset = fp.tell()
            after = fp.read(12)
            file_size = os.fstat(fp.fileno()).st_size
    except InputError:
        raise
    except (EOFError, struct.error) as exc:
        raise InputError(
            f"truncated DICOM header ({type(exc).__name__}: {exc})", path=path, code="truncated"
        ) from exc
    except PARSE_ERRORS as exc:
        raise InputError(
            f"unreadable DICOM header ({type(exc).__name__}: {exc})", path=path, code="bad_header"
        ) from exc
    try:
        _check_complete(ds, path, at_eof=len(after) == 0, file_size=file_size)
        return _header_from_dataset(ds, path, tag_offset, after)
    except InputError:
        raise
    except PARSE_ERRORS as exc:
        raise InputError(
            f"invalid DICOM header value ({type(exc).__name__}: {exc})",
            path=path,
            code="bad_header",
        ) from exc


def _check_complete(ds: pydicom.Dataset, path: Path, *, at_eof: bool, file_size: int) -> None:
    """Raise if the header ends early: pydicom reads truncated files without complaint."""
    # the raw elements, not converted: no free-text value is ever decoded here
    for elem in ds._dict.values():
        length = getattr(elem, "length", None)
        value = getattr(elem, "value", None)
        if (
            isinstance(value, bytes)
            and isinstance(length, int)
            and length != 0xFFFFFFFF
            and len(value) < length
        ):
            raise InputError(
                f"truncated file: element {elem.tag} declares {length} bytes, the file "
                f"holds {len(value)} ({file_size} bytes in all)",
                path=path,
                code="truncated",
            )
    meta = getattr(ds, "file_meta", None)
    is_dicomdir = meta is not None and meta.get("MediaStorageSOPClassUID") == DICOMDIR_SOP_CLASS
    if at_eof and "SOPClassUID" not in ds and not is_dicomdir:
        raise InputError(
            f"truncated file: it ends after {file_size} bytes, inside the DICOM header "
            "(no SOPClassUID found)",
            path=path,
            code="truncated",
        )


def _header_from_dataset(
    ds: pydicom.Dataset, path: Path, tag_offset: int, after: bytes
) -> DicomHeader:
    meta = getattr(ds, "file_meta", None)
    ts = _str(getattr(meta, "TransferSyntaxUID", None)) if meta is not None else ""
    if not ts:
        implicit, little = getattr(ds, "original_encoding", (True, True))
        ts = "1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1"
        if not little:
            ts = "1.2.840.10008.1.2.2"
    values = _top_values(ds)
    # pixel data element: where its value starts and how long it says it is.
    # A deflated file's position says nothing about the inflated stream: assume pixels,
    # pydicom will tell when they are decoded
    has_pixels = ts == _DEFLATED or after[:4] in (_PIXEL_TAG_LE, _PIXEL_TAG_BE)
    offset: int | None = None
    length: int | None = None
    if has_pixels and len(after) >= 8:
        implicit = ts == "1.2.840.10008.1.2"
        if implicit:
            length = struct.unpack("<I", after[4:8])[0]
            offset = tag_offset + 8
        elif after[4:6] in _LONG_VRS and len(after) >= 12:
            length = struct.unpack("<I", after[8:12])[0]
            offset = tag_offset + 12
        else:
            length = struct.unpack("<H", after[6:8])[0]
            offset = tag_offset + 8
        if length == 0xFFFFFFFF or ts not in _FAST_SYNTAXES:
            offset = None  # encapsulated / big endian / deflated: pydicom decodes it
        if length == 0xFFFFFFFF:
            length = None
    top = FrameGeometry(
        ipp_lps_mm=_floats(values["ImagePositionPatient"], 3),  # type: ignore[arg-type]
        iop=_floats(values["ImageOrientationPatient"], 6),  # type: ignore[arg-type]
        pixel_spacing_mm=_floats(values["PixelSpacing"], 2),  # type: ignore[arg-type]
        slope=_rescale(values["RescaleSlope"], 1.0),
        intercept=_rescale(values["RescaleIntercept"], 0.0),
        thickness_mm=_float(values["SpacingBetweenSlices"], None)
        or _float(values["SliceThickness"], None),
    )
    num_frames = _int(values["NumberOfFrames"], 1) or 1
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = _item(ds.get("SharedFunctionalGroupsSequence"))
    multiframe = per_frame is not None or shared is not None
    if multiframe:
        per = list(per_frame) if per_frame is not None else []
        if per:
            frames = tuple(_frame_from((g, shared), top) for g in per[:num_frames])
        else:
            frames = (_frame_from((shared,), top),)
    else:
        frames = (top,)
    padding_value = values["PixelPaddingValue"]
    padding_limit = values["PixelPaddingRangeLimit"]
    return DicomHeader(
        path=path,
        sop_class_uid=_str(values["SOPClassUID"])
        or _str(getattr(meta, "MediaStorageSOPClassUID", None) if meta is not None else None),
        sop_instance_uid=_str(values["SOPInstanceUID"]),
        study_instance_uid=_str(values["StudyInstanceUID"]),
        series_instance_uid=_str(values["SeriesInstanceUID"]),
        modality=_str(values["Modality"]).upper(),
        image_type=_strs(values["ImageType"]),
        series_number=_int(values["SeriesNumber"], None),
        instance_number=_int(values["InstanceNumber"], None),
        rows=_int(values["Rows"], 0) or 0,
        columns=_int(values["Columns"], 0) or 0,
        num_frames=num_frames,
        samples_per_pixel=_int(values["SamplesPerPixel"], 1) or 1,
        bits_allocated=_int(values["BitsAllocated"], 0) or 0,
        bits_stored=_int(values["BitsStored"], None) or _int(values["BitsAllocated"], 0) or 0,
        pixel_representation=_int(values["PixelRepresentation"], 0) or 0,
        photometric=_str(values["PhotometricInterpretation"]).upper(),
        transfer_syntax=ts,
        has_pixel_data=has_pixels,
        pixel_offset=offset,
        pixel_length=length,
        padding_value=_int(padding_value, None),
        padding_limit=_int(padding_limit, None),
        multiframe=multiframe,
        frames=frames,
    )


def _read_one(path: Path) -> DicomHeader | str:
    """Header of `path`, or a skip reason ``"not_dicom"`` / ``"<reason>"``."""
    try:
        return read_header(path)
    except InputError as exc:
        return "not_dicom" if exc.code == "not_dicom" else str(exc)


def read_headers(paths: Sequence[Path], *, jobs: int = 1) -> list[DicomHeader | str]:
    """Read many headers, in order, on `jobs` workers (processes for large sets).

    Parameters
    ----------
    paths : sequence of Path
        Files to read.
    jobs : int
        Parallel workers; 1 reads in this thread.

    Returns
    -------
    list of DicomHeader or str
        A header, or ``"not_dicom"``, or another skip reason, per path.
    """
    if jobs <= 1 or len(paths) < 64:
        return [_read_one(p) for p in paths]
    if len(paths) >= 2000:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            return list(ex.map(_read_one, paths, chunksize=256))
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(_read_one, paths))
