"""DICOM Segmentation (``seg.dcm``): one binary segment per focus, on the source CT's grid.

The object is built with highdicom (``hd.seg.Segmentation``, BINARY), from the
focus label map placed in patient space with the volume's affine, so its frames
line up with the source slices even when the loader sorted or flipped them.
It references the source series' instances (frame-level source image
references are derived by highdicom from the shared geometry).

highdicom copies the patient and study modules of the source images into the
derived object, as the DICOM standard expects for an object of the same study;
hostage then removes the optional free-text and identifying attributes among
them (:data:`OPTIONAL_IDENTIFYING`: study description, patient comments,
institution, ...), and never logs the remaining ones nor puts them in file names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._optional import import_optional
from .._version import __version__
from ..io.write import atomic_path
from .labels import focus_label_map

if TYPE_CHECKING:
    from . import StudyOutputs

__all__ = [
    "SEG_NAME",
    "SEG_SERIES_NUMBER",
    "build_segmentation",
    "frame_segment_numbers",
    "read_source_headers",
    "segment_label",
    "strip_optional_identifying",
    "write_seg",
]

logger = logging.getLogger(__name__)

SEG_NAME = "seg.dcm"
#: Series number given to the SEG series (the SR series gets the next one).
SEG_SERIES_NUMBER = 9801
#: Manufacturer / model name written into derived objects.
DEVICE_NAME = "hostage"


#: Optional (type 3) free-text or identifying attributes that highdicom may copy from the
#: source into a derived object; hostage removes them. The patient and study attributes
#: that DICOM requires of a derived object of the same study (PatientName, PatientID,
#: PatientBirthDate, PatientSex, StudyDate, StudyTime, AccessionNumber, StudyID,
#: ReferringPhysicianName) stay, as the standard asks.
OPTIONAL_IDENTIFYING: tuple[str, ...] = (
    "StudyDescription", "PatientComments", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "OperatorsName", "PerformingPhysicianName",
    "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "MilitaryRank", "BranchOfService",
    "EthnicGroup", "Occupation", "AdditionalPatientHistory", "MedicalAlerts", "Allergies",
    "AdmittingDiagnosesDescription", "ReasonForStudy", "RequestedProcedureDescription",
    "PatientAge", "PatientSize", "PatientWeight", "StationName", "IssuerOfPatientID",
)  # fmt: skip


def strip_optional_identifying(ds: Any) -> Any:
    """Remove :data:`OPTIONAL_IDENTIFYING` attributes from `ds` (in place).

    They are removed from the top level and from the items of the Contributing
    Equipment Sequence (where highdicom records the source scanner's site).

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds = Dataset(); ds.PatientName = "A^B"; ds.StudyDescription = "hip"
    >>> "StudyDescription" in strip_optional_identifying(ds), "PatientName" in ds
    (False, True)
    """
    items = [ds, *ds.get("ContributingEquipmentSequence", ())]
    for item in items:
        for keyword in OPTIONAL_IDENTIFYING:
            if keyword in item:
                delattr(item, keyword)
    return ds


def segment_label(focus_id: int, stage: str) -> str:
    """Segment label of a focus, e.g. ``'Focus 1: mature HO'`` (DICOM LO, max 64 chars).

    Examples
    --------
    >>> segment_label(3, "immature")
    'Focus 3: immature HO'
    """
    return f"Focus {focus_id}: {stage} HO"[:64]


def algorithm_identification(hd: Any) -> Any:
    """Return the Algorithm Identification Sequence of hostage (name, version, family)."""
    from pydicom.sr.codedict import codes

    return hd.AlgorithmIdentificationSequence(
        name=DEVICE_NAME,
        version=__version__,
        family=codes.cid7162.MorphologicalOperations,
    )


def frame_segment_numbers(ds: Any) -> list[int]:
    """Segment number of each frame of a SEG dataset (per-frame or shared functional groups).

    highdicom moves the Segment Identification Sequence into the shared
    functional groups when the SEG has a single segment.
    """
    shared = ds.SharedFunctionalGroupsSequence[0]
    if "SegmentIdentificationSequence" in shared:
        number = int(shared.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        return [number] * int(ds.NumberOfFrames)
    return [
        int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        for item in ds.PerFrameFunctionalGroupsSequence
    ]


#: Type 2 attributes of the Patient and General Study modules that highdicom copies from
#: the source images into a derived SEG or SR. De-identified and research exports often
#: drop them altogether; a derived object then carries them empty, as the standard allows.
PATIENT_STUDY_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def read_source_headers(files: Sequence[Path]) -> list[Any]:
    """Read the source series' headers (no pixel data) in the given order.

    Type 2 patient and study attributes missing from a header
    (:data:`PATIENT_STUDY_TYPE2`) are added empty, so a series without, say,
    a PatientName still gets its SEG and SR.

    Raises
    ------
    InputError
        If a file cannot be read as DICOM.
    """
    import pydicom

    from ..errors import InputError

    out = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            raise InputError(
                f"cannot re-read a source DICOM file for the SEG/SR outputs ({exc}); "
                "was the input changed while the batch ran?",
                path=path,
                code="source_changed",
            ) from exc
        for keyword in PATIENT_STUDY_TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, "")
        out.append(ds)
    return out


def build_segmentation(
    ctx: StudyOutputs, *, hd: Any, sources: Sequence[Any] | None = None
) -> Any | None:
    """Build the SEG dataset for a study, or None when there is nothing to encode.

    Parameters
    ----------
    ctx : StudyOutputs
        A successful study read from DICOM (``ctx.dicom_files`` non-empty).
    hd : module
        The imported ``highdicom`` package.
    sources : sequence of pydicom.Dataset, optional
        The source headers (read from ``ctx.dicom_files`` when not given).

    Returns
    -------
    highdicom.seg.Segmentation or None
        None when the study has no foci or no DICOM source.
    """
    from pydicom.sr.codedict import codes

    if ctx.volume is None or ctx.seg is None or not ctx.dicom_files or not ctx.result.foci:
        return None
    if sources is None:
        sources = read_source_headers(ctx.dicom_files)
    labels = focus_label_map(ctx)
    # focus ids -> consecutive segment numbers 1..N (BINARY SEG requires them)
    numbers = {f.id: i for i, f in enumerate(ctx.result.foci, start=1)}
    lut = np.zeros(int(labels.max()) + 1, dtype=np.uint8 if len(numbers) <= 255 else np.uint16)
    for fid, num in numbers.items():
        lut[fid] = num
    seg_numbers = lut[labels]
    volume = ctx.volume
    hd_volume = hd.Volume(
        seg_numbers,
        affine=volume.affine_lps,
        coordinate_system="PATIENT",
        frame_of_reference_uid=sources[0].FrameOfReferenceUID,
    )
    algo = algorithm_identification(hd)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=numbers[f.id],
            segment_label=segment_label(f.id, f.stage.value),
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Ossification,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
            tracking_uid=hd.UID(),
            tracking_id=f"Focus {f.id}",
        )
        for f in ctx.result.foci
    ]
    seg = hd.seg.Segmentation(
        source_images=list(sources),
        pixel_array=hd_volume,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=DEVICE_NAME,
        manufacturer_model_name=DEVICE_NAME,
        software_versions=__version__,
        device_serial_number="0",
        content_label="HO_FOCI",
        content_description="HO foci staged by hostage (research use, not a medical device)",
        series_description="hostage HO foci",
    )
    return strip_optional_identifying(seg)


def write_seg(ctx: StudyOutputs, *, module: str = "highdicom") -> list[Path]:
    """Write ``seg.dcm`` for a DICOM study with at least one focus.

    Parameters
    ----------
    ctx : StudyOutputs
    module : str
        Name of the highdicom package to import (a test seam for the
        missing-dependency path).

    Returns
    -------
    list of Path
        ``[OUT/<key>/seg.dcm]``, or ``[]`` for non-DICOM input or a study without foci.

    Raises
    ------
    MissingDependencyError
        If highdicom is not installed.
    """
    hd = import_optional(module, feature="DICOM SEG output")
    seg = build_segmentation(ctx, hd=hd)
    if seg is None:
        logger.debug("%s: no DICOM SEG (no DICOM source or no foci)", ctx.result.study_key)
        return []
    path = ctx.out_dir / SEG_NAME
    with atomic_path(path) as tmp:
        seg.save_as(tmp, enforce_file_format=True)
    logger.debug(
        "%s: wrote %s (%d segments)", ctx.result.study_key, path.name, len(ctx.result.foci)
    )
    return [path]
