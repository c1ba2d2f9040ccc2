"""The CT volume: Hounsfield units plus patient geometry, checked once when built."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .._checks import check_spacing, check_volume_array

__all__ = ["LoadReport", "Volume"]

#: Direction of a standard axial image: z index -> +S, y -> +P, x -> +L.
_AXIAL: np.ndarray = np.eye(3)[:, ::-1].copy()
_AXIAL.flags.writeable = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    """What the loader found, chose, skipped and corrected. No free-text DICOM fields.

    Attributes
    ----------
    chosen : str
        Which series was chosen and why (UIDs and counts only).
    num_files : int
        Files looked at below the input path.
    num_non_dicom : int
        Files skipped because they are not DICOM.
    skipped : tuple of str
        One line per skipped series or object, with the reason.
    corrections : tuple of str
        What was corrected (duplicate slices dropped, resampling, padding to air, ...).
    """

    chosen: str = ""
    num_files: int = 0
    num_non_dicom: int = 0
    skipped: tuple[str, ...] = ()
    corrections: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Return the report as plain JSON-ready types."""
        return {
            "chosen": self.chosen,
            "num_files": self.num_files,
            "num_non_dicom": self.num_non_dicom,
            "skipped": list(self.skipped),
            "corrections": list(self.corrections),
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Volume:
    """A CT volume in Hounsfield units with its position in the patient.

    Attributes
    ----------
    hu : (Z, Y, X) ndarray of int16 or float32
        CT values in Hounsfield units (int16 when exact, else float32). Read-only.
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    origin_lps_mm : tuple of 3 float
        Patient position (DICOM LPS, mm) of the centre of voxel (0, 0, 0).
    direction_lps : (3, 3) ndarray of float64
        Columns are the LPS unit vectors of the z, y and x index axes.
        Must be orthonormal.
    study_instance_uid, series_instance_uid : str or None
        DICOM UIDs; None for non-DICOM files.
    source : Path or None
        The folder holding the study's files, or the volume file.
    warnings : tuple of str
        Warnings about the data (skipped series, resampling, ...).
    load_report : LoadReport
        What the loader chose, skipped and corrected.
    source_files : tuple of Path
        The DICOM files of the chosen series in slice order (empty for volume
        files); used to reference the source in DICOM SEG and SR outputs.

    Notes
    -----
    The volume never holds PatientName or any other free-text identifying field.

    Examples
    --------
    >>> import numpy as np
    >>> v = Volume(hu=np.zeros((2, 3, 4), np.int16), spacing_zyx_mm=(2.0, 0.5, 0.5),
    ...            origin_lps_mm=(-10.0, -20.0, 30.0))
    >>> v.index_to_lps_mm((1, 2, 3))
    array([ -8.5, -19. ,  32. ])
    >>> v.lps_mm_to_index((-8.5, -19.0, 32.0))
    array([1., 2., 3.])
    """

    hu: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]
    origin_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction_lps: np.ndarray = field(default_factory=lambda: _AXIAL.copy())
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    source: Path | None = None
    warnings: tuple[str, ...] = ()
    load_report: LoadReport = field(default_factory=LoadReport)
    source_files: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        hu = check_volume_array(self.hu, name="Volume.hu")
        if hu.dtype not in (np.int16, np.float32):
            raise ValueError(
                f"Volume.hu must be int16 or float32 Hounsfield units; got {hu.dtype}. "
                "Convert explicitly (HU stay HU: no rescaling is done for you)."
            )
        hu = hu.view()
        hu.flags.writeable = False
        object.__setattr__(self, "hu", hu)
        object.__setattr__(self, "spacing_zyx_mm", check_spacing(self.spacing_zyx_mm))
        origin = np.asarray(self.origin_lps_mm, dtype=float).ravel()
        if origin.shape != (3,) or not np.all(np.isfinite(origin)):
            raise ValueError(
                f"Volume.origin_lps_mm must be 3 finite LPS coordinates in mm; got {self.origin_lps_mm!r}"
            )
        object.__setattr__(self, "origin_lps_mm", tuple(float(v) for v in origin))
        direction = np.array(self.direction_lps, dtype=np.float64)
        if direction.shape != (3, 3) or not np.all(np.isfinite(direction)):
            raise ValueError(f"Volume.direction_lps must be a finite 3x3 matrix; got {direction!r}")
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise ValueError(
                "Volume.direction_lps must be an orthonormal matrix (columns = LPS unit vectors "
                f"of the z, y, x index axes); got {direction.tolist()}"
            )
        direction.flags.writeable = False
        object.__setattr__(self, "direction_lps", direction)
        if self.source is not None:
            object.__setattr__(self, "source", Path(self.source))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "source_files", tuple(Path(p) for p in self.source_files))

    # ------------------------------------------------------------------ geometry
    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Array shape, (z, y, x) order."""
        z, y, x = self.hu.shape
        return (z, y, x)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³."""
        return float(np.prod(self.spacing_zyx_mm))

    @property
    def affine_lps(self) -> np.ndarray:
        """(4, 4) matrix mapping homogeneous (z, y, x, 1) indices to (x, y, z, 1) LPS mm."""
        a = np.eye(4)
        a[:3, :3] = self.direction_lps * np.asarray(self.spacing_zyx_mm)[None, :]
        a[:3, 3] = self.origin_lps_mm
        return a

    def index_to_lps_mm(self, idx_zyx: np.typing.ArrayLike) -> np.ndarray:
        """Map voxel indices to patient coordinates.

        Parameters
        ----------
        idx_zyx : (..., 3) array_like of float
            Voxel indices in (z, y, x) order; fractions allowed.

        Returns
        -------
        lps_mm : (..., 3) ndarray of float64
            DICOM patient coordinates (x, y, z) = (L, P, S) in mm.
        """
        idx = np.asarray(idx_zyx, dtype=np.float64)
        scaled = idx * np.asarray(self.spacing_zyx_mm)
        return np.asarray(self.origin_lps_mm) + scaled @ self.direction_lps.T

    def lps_mm_to_index(self, lps_mm: np.typing.ArrayLike) -> np.ndarray:
        """Map patient coordinates (LPS, mm) to fractional voxel indices (z, y, x).

        Parameters
        ----------
        lps_mm : (..., 3) array_like of float
            DICOM patient coordinates (x, y, z) in mm.

        Returns
        -------
        idx_zyx : (..., 3) ndarray of float64
        """
        p = np.asarray(lps_mm, dtype=np.float64) - np.asarray(self.origin_lps_mm)
        return (p @ self.direction_lps) / np.asarray(self.spacing_zyx_mm)

    def crop(self, bbox_zyx: tuple[slice, slice, slice]) -> Volume:
        """Return the sub-volume inside `bbox_zyx` (slices with step 1) with matching geometry.

        Parameters
        ----------
        bbox_zyx : tuple of 3 slice
            Index ranges in (z, y, x) order; clipped to the volume.

        Returns
        -------
        Volume
            A view of the same data with its origin moved to the crop's first voxel.
        """
        if len(bbox_zyx) != 3 or any(s.step not in (None, 1) for s in bbox_zyx):
            raise ValueError(f"bbox_zyx must be 3 slices with step 1; got {bbox_zyx!r}")
        starts = [s.indices(n)[0] for s, n in zip(bbox_zyx, self.hu.shape, strict=True)]
        return replace(
            self,
            hu=self.hu[bbox_zyx],
            origin_lps_mm=tuple(self.index_to_lps_mm(starts)),
        )

    def with_warnings(self, *more: str) -> Volume:
        """Return a copy with `more` warnings appended."""
        return replace(self, warnings=(*self.warnings, *more))
