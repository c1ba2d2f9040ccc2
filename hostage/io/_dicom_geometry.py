"""Slice geometry of one DICOM series, from headers only.

Slices are sorted by ImagePositionPatient projected on the slice normal
(the cross product of the ImageOrientationPatient row and column cosines),
never by file name, InstanceNumber or SliceLocation. The stack is then
checked: same size, pixel spacing and orientation everywhere; no conflicting
duplicates; regular steps (tolerance ``slice_gap_atol_mm + slice_gap_rtol x
step``, as dicom2nifti's ``atol 0.1 mm / rtol 0.05``); no missing slices;
no gantry tilt. What fails a check is an error unless a named ``allow_*``
setting of :class:`~hostage.config.LoadConfig` says to resample it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import LoadConfig
from ..errors import GeometryError, InputError
from ._dicom_header import DicomHeader, FrameGeometry

__all__ = ["SliceRef", "StackPlan", "plan_stack"]

#: Two slices closer than this along the normal are at the same position (mm).
SAME_POSITION_MM = 0.01
#: Tolerance on direction cosines (unit length, orthogonality, equality between slices).
COSINE_TOL = 1e-3


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceRef:
    """One frame of one file, with its header geometry."""

    header: DicomHeader
    frame: int
    geometry: FrameGeometry


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StackPlan:
    """How to assemble a series into a regular (Z, Y, X) grid.

    Attributes
    ----------
    slices : tuple of SliceRef
        Frames in slice order (ascending along the normal), duplicates removed.
    duplicates : tuple of (SliceRef, SliceRef)
        (kept, extra) pairs at the same position with different SOP instances;
        their pixels must be compared (identical -> dropped, else an error).
    positions_mm : (N,) ndarray of float64
        Position of each slice along the normal, relative to the first.
    inplane_offsets_yx_mm : (N, 2) ndarray of float64
        Offset of each slice's first pixel from the first slice's, along the
        column (y) and row (x) directions; non-zero only for gantry tilt.
    spacing_zyx_mm : tuple of 3 float
        Output spacing.
    num_out_slices : int
        Slices of the regular output grid.
    origin_lps_mm : tuple of 3 float
        LPS position of voxel (0, 0, 0).
    direction_lps : (3, 3) ndarray of float64
        Columns: normal, column cosine, row cosine (the z, y, x index axes).
    resample_z, resample_tilt : bool
        Whether the stack must be resampled along z / shifted in-plane.
    tilt_deg : float
        Gantry tilt angle.
    rows, columns : int
    notes : tuple of str
        Corrections that will be made (also warnings).
    """

    slices: tuple[SliceRef, ...]
    duplicates: tuple[tuple[SliceRef, SliceRef], ...]
    positions_mm: np.ndarray
    inplane_offsets_yx_mm: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]
    num_out_slices: int
    origin_lps_mm: tuple[float, float, float]
    direction_lps: np.ndarray
    resample_z: bool
    resample_tilt: bool
    tilt_deg: float
    rows: int
    columns: int
    notes: tuple[str, ...]

    @property
    def is_axial(self) -> bool:
        """True when the slice normal is within 30 degrees of the patient's S axis."""
        return abs(float(self.direction_lps[2, 0])) >= math.cos(math.radians(30))


def _orientation(iop: tuple[float, ...], where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(iop, dtype=np.float64)
    r, c = v[:3], v[3:]
    nr, nc = float(np.linalg.norm(r)), float(np.linalg.norm(c))
    if (
        not np.all(np.isfinite(v))
        or abs(nr - 1) > 10 * COSINE_TOL
        or abs(nc - 1) > 10 * COSINE_TOL
        or abs(float(r @ c)) > 10 * COSINE_TOL
    ):
        raise GeometryError(
            f"ImageOrientationPatient {list(iop)} is not two orthogonal unit vectors; "
            "the file's geometry is corrupt",
            path=where,
            code="bad_orientation",
        )
    r = r / nr
    c = c - (c @ r) * r
    c = c / np.linalg.norm(c)
    return r, c, np.cross(r, c)


def plan_stack(slices: list[SliceRef], *, config: LoadConfig, label: str) -> StackPlan:
    """Sort a series' frames and check that they form a regular grid.

    Parameters
    ----------
    slices : list of SliceRef
        Every frame of the series, in any order.
    config : LoadConfig
        Tolerances and ``allow_*`` switches.
    label : str
        How to name the series in messages (UID and number; no free text).

    Returns
    -------
    StackPlan

    Raises
    ------
    GeometryError
        With ``code`` ``"no_geometry"``, ``"inconsistent_size"``,
        ``"inconsistent_pixel_spacing"``, ``"inconsistent_orientation"``,
        ``"bad_orientation"``, ``"missing_slices"``, ``"nonuniform_spacing"``,
        ``"gantry_tilt"`` or ``"inconsistent_positions"``.
    """
    first = slices[0]
    where = str(first.header.path)
    for s in slices:
        g = s.geometry
        if g.ipp_lps_mm is None or g.iop is None or g.pixel_spacing_mm is None:
            missing = [
                name
                for name, v in (
                    ("ImagePositionPatient", g.ipp_lps_mm),
                    ("ImageOrientationPatient", g.iop),
                    ("PixelSpacing", g.pixel_spacing_mm),
                )
                if v is None
            ]
            raise GeometryError(
                f"{label}: frame {s.frame} lacks {', '.join(missing)}; cannot place it in "
                "the patient",
                path=s.header.path,
                code="no_geometry",
            )
        if (
            not all(math.isfinite(x) for x in (*g.ipp_lps_mm, *g.pixel_spacing_mm))
            or min(g.pixel_spacing_mm) <= 0
        ):
            raise GeometryError(
                f"{label}: invalid PixelSpacing {list(g.pixel_spacing_mm)} or "
                f"ImagePositionPatient {list(g.ipp_lps_mm)}",
                path=s.header.path,
                code="no_geometry",
            )
        if not (math.isfinite(g.slope) and math.isfinite(g.intercept)) or g.slope == 0:
            raise InputError(
                f"{label}: invalid RescaleSlope {g.slope} / RescaleIntercept {g.intercept} "
                f"(frame {s.frame}); HU cannot be computed",
                path=s.header.path,
                code="bad_rescale",
            )
        if (s.header.rows, s.header.columns) != (first.header.rows, first.header.columns):
            raise GeometryError(
                f"{label}: slices differ in size: {s.header.rows}x{s.header.columns} here, "
                f"{first.header.rows}x{first.header.columns} in {first.header.path}",
                path=s.header.path,
                code="inconsistent_size",
            )
    g0 = first.geometry
    assert g0.iop is not None and g0.pixel_spacing_mm is not None and g0.ipp_lps_mm is not None
    r, c, n = _orientation(g0.iop, where)
    ps = np.asarray(g0.pixel_spacing_mm)
    for s in slices:
        g = s.geometry
        assert g.iop is not None and g.pixel_spacing_mm is not None
        if np.max(np.abs(np.asarray(g.iop) - np.asarray(g0.iop))) > COSINE_TOL:
            raise GeometryError(
                f"{label}: slices differ in ImageOrientationPatient: {list(g.iop)} here, "
                f"{list(g0.iop)} in {first.header.path}; a series must be one stack",
                path=s.header.path,
                code="inconsistent_orientation",
            )
        if np.max(np.abs(np.asarray(g.pixel_spacing_mm) - ps)) > COSINE_TOL * max(1.0, ps.max()):
            raise GeometryError(
                f"{label}: slices differ in PixelSpacing: {list(g.pixel_spacing_mm)} here, "
                f"{ps.tolist()} in {first.header.path}",
                path=s.header.path,
                code="inconsistent_pixel_spacing",
            )

    ipp = np.array([s.geometry.ipp_lps_mm for s in slices], dtype=np.float64)
    d = ipp @ n
    inst = [s.header.instance_number or 0 for s in slices]
    order = sorted(range(len(slices)), key=lambda i: (d[i], inst[i], str(slices[i].header.path)))
    notes: list[str] = []
    kept: list[int] = []
    duplicates: list[tuple[SliceRef, SliceRef]] = []
    num_same_instance = 0
    for i in order:
        if kept and abs(d[i] - d[kept[-1]]) < SAME_POSITION_MM:
            k = kept[-1]
            if (
                slices[i].header.sop_instance_uid == slices[k].header.sop_instance_uid
                and slices[i].frame == slices[k].frame
            ):
                num_same_instance += 1
            else:
                duplicates.append((slices[k], slices[i]))
            continue
        kept.append(i)
    if num_same_instance:
        notes.append(
            f"dropped {num_same_instance} duplicate file(s) of the same SOP instance "
            "(copies of one slice)"
        )
    ss = [slices[i] for i in kept]
    dd = d[kept] - d[kept[0]]
    origin = ipp[kept[0]]
    offsets3 = (ipp[kept] - origin) - np.outer(dd, n)
    offsets_yx = np.stack([offsets3 @ c, offsets3 @ r], axis=1)
    direction = np.stack([n, c, r], axis=1)
    atol, rtol = config.slice_gap_atol_mm, config.slice_gap_rtol
    resample_z = resample_tilt = False
    tilt_deg = 0.0
    if len(ss) == 1:
        thick = g0.thickness_mm
        if thick is None or not math.isfinite(thick) or thick <= 0:
            notes.append("single slice without SliceThickness: slice spacing set to 1 mm")
            thick = 1.0
        spacing_z = float(thick)
        num_out = 1
    else:
        steps = np.diff(dd)
        nominal = float(np.median(steps))
        tol = atol + rtol * nominal
        gap = steps > 1.5 * nominal
        if np.any(gap):
            where_mm = ", ".join(f"{dd[i] + origin @ n:.2f}" for i in np.flatnonzero(gap)[:5])
            num_missing = sum(round(float(s) / nominal) - 1 for s in steps[gap])
            msg = (
                f"{label}: about {num_missing} slice(s) missing after position(s) {where_mm} mm "
                f"along the slice normal (steps {np.round(steps[gap], 3).tolist()} mm vs "
                f"{nominal:.3f} mm)"
            )
            if not config.allow_missing_slices:
                raise GeometryError(
                    msg + "; add the missing files, or set [load] allow_missing_slices = true "
                    "to interpolate across the gap",
                    path=first.header.path.parent,
                    code="missing_slices",
                )
            notes.append(msg + "; interpolated across the gap (allow_missing_slices)")
            resample_z = True
        irregular = ~gap & (np.abs(steps - nominal) > tol)
        if np.any(irregular):
            ratio = float(steps[~gap].max() / steps[~gap].min())
            msg = (
                f"{label}: non-uniform slice spacing (steps {float(steps[~gap].min()):.3f} to "
                f"{float(steps[~gap].max()):.3f} mm, tolerance {atol} mm + {rtol} x step)"
            )
            if not config.allow_nonuniform_spacing or ratio > config.max_nonuniform_ratio:
                raise GeometryError(
                    msg + f"; the largest/smallest step ratio {ratio:.2f} is beyond "
                    f"max_nonuniform_ratio = {config.max_nonuniform_ratio} (or "
                    "allow_nonuniform_spacing is false)",
                    path=first.header.path.parent,
                    code="nonuniform_spacing",
                )
            notes.append(msg + f"; resampled to a regular {nominal:.3f} mm grid")
            resample_z = True
        if resample_z:
            spacing_z = nominal
            num_out = round(float(dd[-1]) / nominal) + 1
        else:
            spacing_z = float(dd[-1]) / (len(ss) - 1)
            num_out = len(ss)
        # gantry tilt: slices shifted in-plane in proportion to their position
        shift = np.linalg.norm(offsets_yx, axis=1)
        if float(shift.max()) > atol:
            slope_yx = (offsets_yx.T @ dd) / float(dd @ dd)
            resid = offsets_yx - np.outer(dd, slope_yx)
            if float(np.abs(resid).max()) > max(atol, 0.5 * float(ps.min())):
                raise GeometryError(
                    f"{label}: slice positions jump in-plane irregularly (up to "
                    f"{float(np.abs(resid).max()):.2f} mm); the series is not one stack",
                    path=first.header.path.parent,
                    code="inconsistent_positions",
                )
            tilt_deg = math.degrees(math.atan(float(np.linalg.norm(slope_yx))))
            msg = f"{label}: gantry tilt of {tilt_deg:.2f} degrees"
            if not config.allow_gantry_tilt or tilt_deg > config.max_gantry_tilt_deg:
                raise GeometryError(
                    msg + f" is beyond max_gantry_tilt_deg = {config.max_gantry_tilt_deg} (or "
                    "allow_gantry_tilt is false); the stack is sheared",
                    path=first.header.path.parent,
                    code="gantry_tilt",
                )
            notes.append(msg + "; slices shifted in-plane onto an orthogonal grid")
            resample_tilt = True
    return StackPlan(
        slices=tuple(ss),
        duplicates=tuple(duplicates),
        positions_mm=dd,
        inplane_offsets_yx_mm=offsets_yx,
        spacing_zyx_mm=(spacing_z, float(ps[0]), float(ps[1])),
        num_out_slices=num_out,
        origin_lps_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
        direction_lps=direction,
        resample_z=resample_z,
        resample_tilt=resample_tilt,
        tilt_deg=tilt_deg,
        rows=first.header.rows,
        columns=first.header.columns,
        notes=tuple(notes),
    )
