"""One DICOM study -> one CT :class:`~hostage.io.volume.Volume`.

Choice of the series (per StudyInstanceUID): image objects of Modality CT that
are not localizers / scouts, not secondary captures (dose screens) and not
non-image objects (SR, RT, SEG, ...). Among those whose slices form a valid
stack, the ORIGINAL before the DERIVED, the axial before the others, then the
thinnest slice spacing, then the most slices. ``series_uid=`` forces one.
Every series that was not chosen is listed with its reason. Series are named
by SeriesInstanceUID, SeriesNumber, Modality and ImageType only, never by a
free-text field.

HU = stored x RescaleSlope + RescaleIntercept, per frame. The result is int16
when every frame's mapping is exact in int16, else float32. Pixels equal to
PixelPaddingValue (or within PixelPaddingRangeLimit) become air (-1000 HU).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import UID
from scipy import ndimage as ndi

from ..config import LoadConfig
from ..errors import GeometryError, InputError
from ._dicom_geometry import SliceRef, StackPlan, plan_stack
from ._dicom_header import PARSE_ERRORS, DicomHeader
from ._dicom_pixels import AIR_HU, FrameReader, stored_to_hu
from .volume import LoadReport, Volume

__all__ = ["load_dicom_study"]

logger = logging.getLogger(__name__)

_CT_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT Image Storage
}
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
_MAX_LISTED = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class _Series:
    uid: str
    headers: tuple[DicomHeader, ...]

    @property
    def first(self) -> DicomHeader:
        return self.headers[0]

    @property
    def label(self) -> str:
        h = self.first
        num = "?" if h.series_number is None else str(h.series_number)
        kind = "\\".join(h.image_type) or "no ImageType"
        return (
            f"series {self.uid or '(no SeriesInstanceUID)'} (number {num}, "
            f"{h.modality or 'no Modality'}, {kind}, {len(self.headers)} file(s))"
        )

    @property
    def num_frames(self) -> int:
        return sum(max(h.num_frames, 1) for h in self.headers)


def _sop_name(uid: str) -> str:
    try:
        name = UID(uid).name
    except PARSE_ERRORS:
        name = uid
    return name or "no SOPClassUID"


def _unusable_reason(series: _Series) -> tuple[str, str] | None:
    """(code, reason) if the series cannot be the study's CT volume, from headers."""
    h = series.first
    if h.sop_class_uid in _CT_SOP_CLASSES and h.rows > 0 and not h.has_pixel_data:
        return "no_series", "CT image without pixel data (truncated file?)"
    if not any(x.has_pixel_data for x in series.headers) or h.rows <= 0 or h.columns <= 0:
        return "no_series", f"not an image ({_sop_name(h.sop_class_uid)}, no pixel data)"
    if h.sop_class_uid.startswith(_SECONDARY_CAPTURE_PREFIX):
        return "no_series", "secondary capture (e.g. a dose report screen), not a CT volume"
    if h.modality != "CT":
        return "not_ct", f"modality {h.modality or '(none)'}, not CT"
    if h.sop_class_uid and h.sop_class_uid not in _CT_SOP_CLASSES:
        return "no_series", f"not a CT image object ({_sop_name(h.sop_class_uid)})"
    if "LOCALIZER" in h.image_type or "SCOUT" in h.image_type:
        return "no_series", "localizer/scout"
    if h.samples_per_pixel != 1:
        return "no_series", f"colour image (SamplesPerPixel {h.samples_per_pixel})"
    return None


def _slice_refs(series: _Series) -> list[SliceRef]:
    refs: list[SliceRef] = []
    for h in series.headers:
        if h.num_frames > 1 and not h.multiframe:
            raise GeometryError(
                f"{series.label}: multi-frame file ({h.num_frames} frames) without per-frame "
                "positions (no functional groups); cannot place its frames",
                path=h.path,
                code="no_geometry",
            )
        if h.multiframe and len(h.frames) != h.num_frames:
            raise InputError(
                f"NumberOfFrames is {h.num_frames} but the per-frame functional groups "
                f"describe {len(h.frames)} frames",
                path=h.path,
                code="bad_header",
            )
        refs.extend(SliceRef(header=h, frame=i, geometry=g) for i, g in enumerate(h.frames))
    return refs


def _rank(series: _Series, plan: StackPlan) -> tuple[object, ...]:
    original = "ORIGINAL" in series.first.image_type[:1]
    return (
        plan.num_out_slices < 3,  # a volume before a few loose slices
        not original,
        not plan.is_axial,
        round(plan.spacing_zyx_mm[0], 3),
        -plan.num_out_slices,
        series.first.series_number if series.first.series_number is not None else 10**9,
        series.uid,
    )


def _check_size(series: _Series, plan: StackPlan | None, config: LoadConfig) -> None:
    h = series.first
    declared = h.rows * h.columns * series.num_frames
    if plan is not None:
        declared = max(declared, h.rows * h.columns * plan.num_out_slices)
    if declared > config.max_voxels:
        raise InputError(
            f"{series.label}: declared size {h.rows}x{h.columns}x{series.num_frames} "
            f"= {declared} voxels exceeds [load] max_voxels = {config.max_voxels}; raise the "
            "limit if the machine has the memory",
            path=h.path,
            code="too_large",
        )


def _group_series(headers: list[DicomHeader]) -> list[_Series]:
    by_uid: dict[str, list[DicomHeader]] = defaultdict(list)
    for h in headers:
        by_uid[h.series_instance_uid].append(h)
    return [
        _Series(uid=uid, headers=tuple(sorted(hs, key=lambda h: str(h.path))))
        for uid, hs in sorted(by_uid.items())
    ]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Choice:
    series: _Series
    plan: StackPlan
    skipped: tuple[str, ...]
    why: str


def _choose(
    all_series: list[_Series], *, series_uid: str | None, config: LoadConfig, source: Path
) -> _Choice:
    """Pick the study's CT series (or the forced one); say why and what was skipped."""
    skipped: list[str] = []
    reasons: dict[str, tuple[str, str]] = {}
    candidates: list[tuple[_Series, StackPlan]] = []
    errors: list[tuple[_Series, InputError]] = []
    if series_uid is not None:
        forced = [s for s in all_series if s.uid == series_uid]
        if not forced:
            listing = "; ".join(s.label for s in all_series[:_MAX_LISTED])
            raise InputError(
                f"no series with SeriesInstanceUID {series_uid!r}; the study has: {listing}",
                path=source,
                code="series_not_found",
            )
        why = _unusable_reason(forced[0])
        if why is not None and why[1] != "localizer/scout":
            raise InputError(
                f"{forced[0].label} cannot be loaded as CT: {why[1]}",
                path=forced[0].first.path,
                code=why[0],
            )
        to_plan = forced
    else:
        to_plan = []
        for s in all_series:
            why = _unusable_reason(s)
            if why is None:
                to_plan.append(s)
            else:
                reasons[s.uid] = why
                skipped.append(f"{s.label}: {why[1]}")
    for s in to_plan:
        try:
            candidates.append((s, plan_stack(_slice_refs(s), config=config, label=s.label)))
        except InputError as exc:
            errors.append((s, exc))
    if not candidates:
        if errors:
            raise errors[0][1]
        code = "not_ct" if {c for c, _ in reasons.values()} == {"not_ct"} else "no_series"
        listing = "; ".join(skipped[:_MAX_LISTED]) or "none"
        raise InputError(
            f"no usable CT series ({len(all_series)} series found: {listing})",
            path=source,
            code=code,
        )
    candidates.sort(key=lambda sp: _rank(*sp))
    for s, p in candidates[1:]:
        skipped.append(
            f"{s.label}: not chosen ({p.num_out_slices} slices of "
            f"{p.spacing_zyx_mm[0]:.3f} mm; {'axial' if p.is_axial else 'not axial'})"
        )
    skipped.extend(f"{s.label}: unusable ({err})" for s, err in errors)
    if series_uid is not None:
        why_text = "forced by series_uid"
    elif len(candidates) == 1:
        why_text = "the only usable CT series"
    else:
        why_text = (
            f"the first of {len(candidates)} usable CT series by: more than 2 slices, "
            "ORIGINAL, axial, thinnest slices, most slices"
        )
    chosen, plan = candidates[0]
    return _Choice(series=chosen, plan=plan, skipped=tuple(skipped), why=why_text)


def load_dicom_study(
    headers: list[DicomHeader],
    *,
    source: Path,
    series_uid: str | None,
    config: LoadConfig,
    num_files: int,
    num_non_dicom: int,
    skipped_files: tuple[str, ...] = (),
) -> Volume:
    """Choose the CT series of one study and read it into a Volume.

    Parameters
    ----------
    headers : list of DicomHeader
        Headers of every DICOM file of the study (one StudyInstanceUID).
    source : Path
        The study folder (or file), recorded in the Volume.
    series_uid : str or None
        Force this SeriesInstanceUID.
    config : LoadConfig
        Limits and tolerances.
    num_files, num_non_dicom : int
        Counts from discovery, for the load report.
    skipped_files : tuple of str
        Discovery's skip lines (unreadable files), for the load report.

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        ``"no_series"``, ``"not_ct"``, ``"series_not_found"``, ``"too_large"``,
        pixel errors (``"truncated"``, ``"bad_pixel_length"``, ``"undecodable"``).
    GeometryError
        When the chosen series does not form a valid stack.
    """
    if not headers:
        raise InputError(
            f"no DICOM files found ({num_files} file(s) looked at, {num_non_dicom} not DICOM)",
            path=source,
            code="no_series",
        )
    choice = _choose(_group_series(headers), series_uid=series_uid, config=config, source=source)
    chosen, plan, skipped = choice.series, choice.plan, list(choice.skipped)
    _check_size(chosen, plan, config)
    h = chosen.first
    chosen_text = (
        f"{chosen.label}: {plan.num_out_slices} slices of {plan.spacing_zyx_mm[0]:.3f} mm, "
        f"{plan.rows}x{plan.columns} pixels of {plan.spacing_zyx_mm[1]:.3f}x"
        f"{plan.spacing_zyx_mm[2]:.3f} mm; {choice.why}"
    )
    if "ORIGINAL" not in h.image_type[:1]:
        kind = "\\".join(h.image_type) or "no ImageType"
        chosen_text += f" (note: not an ORIGINAL series, ImageType {kind})"
    hu, corrections = _assemble(plan)
    corrections = [*plan.notes, *corrections]
    extra_files = list(skipped_files[:_MAX_LISTED])
    if len(skipped_files) > _MAX_LISTED:
        extra_files.append(f"... and {len(skipped_files) - _MAX_LISTED} more unreadable files")
    report = LoadReport(
        chosen=chosen_text,
        num_files=num_files,
        num_non_dicom=num_non_dicom,
        skipped=tuple([*skipped, *extra_files]),
        corrections=tuple(corrections),
    )
    # padding mapped to air is routine: a correction in the report, not a warning
    warnings = tuple(
        [f"skipped {line}" for line in skipped]
        + [c for c in corrections if not c.startswith("mapped ")]
        + [f"skipped file {line}" for line in extra_files]
    )
    for w in warnings:
        logger.warning("%s: %s", source, w)
    try:
        return Volume(
            hu=hu,
            spacing_zyx_mm=plan.spacing_zyx_mm,
            origin_lps_mm=plan.origin_lps_mm,
            direction_lps=plan.direction_lps,
            study_instance_uid=h.study_instance_uid or None,
            series_instance_uid=chosen.uid or None,
            source=source,
            warnings=warnings,
            load_report=report,
            source_files=tuple(dict.fromkeys(s.header.path for s in plan.slices)),
        )
    except ValueError as exc:
        raise GeometryError(f"{chosen.label}: invalid geometry ({exc})", path=source) from exc


def _padding(header: DicomHeader) -> tuple[int, int] | None:
    if header.padding_value is None:
        return None
    limit = header.padding_limit if header.padding_limit is not None else header.padding_value
    return (header.padding_value, limit)


def _assemble(plan: StackPlan) -> tuple[np.ndarray, list[str]]:
    """Read every frame into a (Z, Y, X) HU array, then resample if the plan says so."""
    corrections: list[str] = []
    exact = all(
        s.geometry.slope == int(s.geometry.slope)
        and s.geometry.intercept == int(s.geometry.intercept)
        for s in plan.slices
    )
    shape = (len(plan.slices), plan.rows, plan.columns)
    for s in plan.slices:  # cheap header checks before the volume is allocated
        h = s.header
        need = h.rows * h.columns * max(h.num_frames, 1) * max(h.bits_allocated, 0) // 8
        if h.pixel_offset is not None and h.pixel_length not in (need, need + 1):
            raise InputError(
                f"pixel data of the wrong length: the file declares {h.pixel_length} bytes, "
                f"{h.num_frames} frame(s) of {h.rows}x{h.columns} pixels of {h.bits_allocated} bits "
                f"need {need}",
                path=h.path,
                code="bad_pixel_length",
            )
    hu = np.empty(shape, dtype=np.int16 if exact else np.float32)
    reader = FrameReader(rows=plan.rows, columns=plan.columns)
    num_padding = 0
    for k, s in enumerate(plan.slices):
        stored = reader.read(s.header, s.frame)
        g = s.geometry
        fits, npad = stored_to_hu(
            stored, slope=g.slope, intercept=g.intercept, padding=_padding(s.header), out=hu[k]
        )
        if not fits:  # out of int16 range: continue in float32
            hu = hu.astype(np.float32)
            fits, npad = stored_to_hu(
                stored, slope=g.slope, intercept=g.intercept, padding=_padding(s.header), out=hu[k]
            )
        num_padding += npad
    if num_padding:
        corrections.append(
            f"mapped {num_padding} padding pixels (PixelPaddingValue) to air ({AIR_HU} HU)"
        )
    if plan.duplicates:
        index = {id(s): k for k, s in enumerate(plan.slices)}
        for kept, extra in plan.duplicates:
            other = np.empty(shape[1:], dtype=hu.dtype)
            ok, _ = stored_to_hu(
                reader.read(extra.header, extra.frame),
                slope=extra.geometry.slope,
                intercept=extra.geometry.intercept,
                padding=_padding(extra.header),
                out=other,
            )
            if not ok or not np.array_equal(other, hu[index[id(kept)]]):
                raise GeometryError(
                    f"two different slices at the same position: {extra.header.path} and "
                    f"{kept.header.path} (frames {extra.frame}, {kept.frame}) differ in "
                    "their pixels; remove one of them (the series mixes two acquisitions?)",
                    path=extra.header.path,
                    code="conflicting_duplicates",
                )
        corrections.append(
            f"dropped {len(plan.duplicates)} exact duplicate slice(s) (same position, "
            "identical pixels)"
        )
    if plan.resample_tilt:
        hu = _shift_inplane(hu, plan)
    if plan.resample_z:
        hu = _resample_z(hu, plan)
    return hu, corrections


def _shift_inplane(hu: np.ndarray, plan: StackPlan) -> np.ndarray:
    """Undo gantry tilt: shift each slice so that all share the first slice's grid."""
    out = hu.astype(np.float32)
    spacing_yx = np.asarray(plan.spacing_zyx_mm[1:])
    for k in range(out.shape[0]):
        shift_px = plan.inplane_offsets_yx_mm[k] / spacing_yx
        if np.any(np.abs(shift_px) > 1e-3):
            out[k] = ndi.shift(out[k], shift_px, order=1, mode="constant", cval=AIR_HU)
    return out


def _resample_z(hu: np.ndarray, plan: StackPlan) -> np.ndarray:
    """Linear interpolation along the normal onto a regular grid of the plan's spacing."""
    target = np.arange(plan.num_out_slices) * plan.spacing_zyx_mm[0]
    pos = plan.positions_mm
    out = np.empty((plan.num_out_slices, *hu.shape[1:]), dtype=np.float32)
    upper = np.clip(np.searchsorted(pos, target, side="right"), 1, len(pos) - 1)
    for k, t in enumerate(target):
        j = int(upper[k])
        z0, z1 = pos[j - 1], pos[j]
        w = float(np.clip((t - z0) / (z1 - z0), 0.0, 1.0))
        np.multiply(hu[j - 1], np.float32(1.0 - w), out=out[k], casting="unsafe")
        out[k] += np.float32(w) * hu[j]
    return out
