"""DICOM Structured Report (``sr.dcm``): a TID 1500 measurement report of the foci.

One TID 1411 volumetric measurement group per focus: the focus volume (mm³)
as a measurement and its stage as a qualitative evaluation, referencing the
focus's segment in ``seg.dcm`` (and, through it, the source CT images). A TID
1501 group at study level carries the resection-readiness verdict. Built with
highdicom's ``Comprehensive3DSR`` and ``MeasurementReport``.

The SR references the SEG, so writing ``sr`` also writes ``seg.dcm`` when the
study folder does not already hold a SEG of the same foci from this run.

Stage and verdict values have no standard codes; they use the private coding
scheme ``99HOSTAGE`` (DICOM PS3.16 allows "99"-prefixed local schemes).
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
from .dicom_seg import (
    DEVICE_NAME,
    SEG_NAME,
    SEG_SERIES_NUMBER,
    build_segmentation,
    frame_segment_numbers,
    read_source_headers,
    segment_label,
    strip_optional_identifying,
)

if TYPE_CHECKING:
    from . import StudyOutputs

__all__ = ["CODING_SCHEME", "SR_NAME", "build_sr", "write_sr"]

logger = logging.getLogger(__name__)

SR_NAME = "sr.dcm"
SR_SERIES_NUMBER = SEG_SERIES_NUMBER + 1
#: Private coding scheme of hostage's stage and verdict concepts.
CODING_SCHEME = "99HOSTAGE"


def _stage_concept(hd: Any, stage: str) -> Any:
    return hd.sr.CodedConcept(
        value=stage, scheme_designator=CODING_SCHEME, meaning=f"{stage} heterotopic ossification"
    )


def _matching_seg(path: Path, ctx: StudyOutputs, *, series_instance_uid: str) -> Any | None:
    """Return the SEG at `path` if it encodes exactly this result's foci on this series, else None."""
    import pydicom

    if not path.is_file():
        return None
    try:
        ds = pydicom.dcmread(path)
    except (OSError, pydicom.errors.InvalidDicomError):
        return None
    try:
        series = {item.SeriesInstanceUID for item in ds.ReferencedSeriesSequence}
        labels = [item.SegmentLabel for item in ds.SegmentSequence]
    except AttributeError:
        return None
    wanted = [segment_label(f.id, f.stage.value) for f in ctx.result.foci]
    if series != {series_instance_uid} or labels != wanted:
        return None
    # same labels from an earlier run are not enough: the masks must match too
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    counts = np.zeros(len(wanted) + 1, dtype=np.int64)
    for frame, number in zip(frames, frame_segment_numbers(ds), strict=True):
        counts[number] += int(np.count_nonzero(frame))
    voxel_mm3 = ctx.volume.voxel_volume_mm3 if ctx.volume is not None else float("nan")
    expected = [round(f.volume_mm3 / voxel_mm3) for f in ctx.result.foci]
    if counts[1:].tolist() != expected:
        return None
    return ds


def _referenced_segment(hd: Any, seg: Any, number: int) -> Any:
    """Build the reference to segment `number` of `seg` and the images its frames derive from.

    Written out rather than ``ReferencedSegment.from_segmentation``, which in
    highdicom 0.28 fails on a single-segment SEG (its Segment Identification
    Sequence is then in the shared functional groups). A grid that was
    resampled by the loader has no frame-level source images; the source series
    is referenced instead.
    """
    sources: dict[str, str] = {}
    for item, n in zip(
        seg.PerFrameFunctionalGroupsSequence, frame_segment_numbers(seg), strict=True
    ):
        if n != number:
            continue
        for derivation in item.get("DerivationImageSequence", ()):
            for src in derivation.get("SourceImageSequence", ()):
                sources.setdefault(src.ReferencedSOPInstanceUID, src.ReferencedSOPClassUID)
    if sources:
        return hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=number,
            source_images=[
                hd.sr.SourceImageForSegmentation(
                    referenced_sop_class_uid=cls, referenced_sop_instance_uid=uid
                )
                for uid, cls in sources.items()
            ],
        )
    return hd.sr.ReferencedSegment(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        segment_number=number,
        source_series=hd.sr.SourceSeriesForSegmentation(
            referenced_series_instance_uid=seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        ),
    )


def build_sr(ctx: StudyOutputs, *, hd: Any, seg: Any, sources: Sequence[Any]) -> Any:
    """Build the TID 1500 measurement report of a study.

    Parameters
    ----------
    ctx : StudyOutputs
        A successful study.
    hd : module
        The imported ``highdicom`` package.
    seg : pydicom.Dataset
        The study's SEG (segment ``i`` = ``ctx.result.foci[i - 1]``).
    sources : sequence of pydicom.Dataset
        Headers of the source CT images (evidence).

    Returns
    -------
    highdicom.sr.Comprehensive3DSR
    """
    from pydicom.sr.codedict import codes

    algo = hd.sr.AlgorithmIdentification(name=DEVICE_NAME, version=__version__)
    groups: list[Any] = []
    for number, focus in enumerate(ctx.result.foci, start=1):
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=hd.UID(), identifier=f"Focus {focus.id}"
                ),
                referenced_segment=_referenced_segment(hd, seg, number),
                finding_type=codes.SCT.Ossification,
                algorithm_id=algo,
                measurements=[
                    hd.sr.Measurement(
                        name=codes.SCT.Volume,
                        value=float(focus.volume_mm3),
                        unit=codes.UCUM.CubicMillimeter,
                        algorithm_id=algo,
                    )
                ],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        name=codes.SCT.Stage, value=_stage_concept(hd, focus.stage.value)
                    )
                ],
            )
        )
    if ctx.result.resection is not None:
        status = ctx.result.resection.status.value
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=hd.UID(), identifier="Resection readiness"
                ),
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(
                        name=hd.sr.CodedConcept(
                            value="resection",
                            scheme_designator=CODING_SCHEME,
                            meaning="Resection readiness of heterotopic ossification",
                        ),
                        value=hd.sr.CodedConcept(
                            value=status,
                            scheme_designator=CODING_SCHEME,
                            meaning=f"resection {status.replace('_', ' ')}",
                        ),
                    )
                ],
            )
        )
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=DEVICE_NAME, manufacturer_name=DEVICE_NAME, model_name=DEVICE_NAME
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.cid100.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[seg, *sources],
        content=report,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=DEVICE_NAME,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description="hostage HO measurements",
    )
    return strip_optional_identifying(sr)


def write_sr(ctx: StudyOutputs, *, module: str = "highdicom") -> list[Path]:
    """Write ``sr.dcm`` (and ``seg.dcm`` if this run has not written it yet).

    Parameters
    ----------
    ctx : StudyOutputs
    module : str
        Name of the highdicom package to import (a test seam for the
        missing-dependency path).

    Returns
    -------
    list of Path
        The files written: ``[sr.dcm]`` or ``[seg.dcm, sr.dcm]``; ``[]`` for
        non-DICOM input or a study without foci.

    Raises
    ------
    MissingDependencyError
        If highdicom is not installed.
    """
    hd = import_optional(module, feature="DICOM SR output")
    if ctx.volume is None or not ctx.dicom_files or not ctx.result.foci:
        logger.debug("%s: no DICOM SR (no DICOM source or no foci)", ctx.result.study_key)
        return []
    sources = read_source_headers(ctx.dicom_files)
    written: list[Path] = []
    seg_path = ctx.out_dir / SEG_NAME
    seg = _matching_seg(seg_path, ctx, series_instance_uid=sources[0].SeriesInstanceUID)
    if seg is None:
        built = build_segmentation(ctx, hd=hd, sources=sources)
        if built is None:  # unreachable: checked above that there are foci and a DICOM source
            return []
        with atomic_path(seg_path) as tmp:
            built.save_as(tmp, enforce_file_format=True)
        written.append(seg_path)
        seg = built
    sr = build_sr(ctx, hd=hd, seg=seg, sources=sources)
    path = ctx.out_dir / SR_NAME
    with atomic_path(path) as tmp:
        sr.save_as(tmp, enforce_file_format=True)
    written.append(path)
    logger.debug("%s: wrote %s", ctx.result.study_key, path.name)
    return written
