"""External label maps (for example TotalSegmentator's bones) on a CT's voxel grid.

A label map made by another tool is an integer image on its own grid (often a
resampled 1.5 mm copy of the CT, or the CT's grid in NIfTI's RAS order). It is
read with SimpleITK and, unless it already has the CT's grid, resampled onto
it by nearest neighbour in patient (LPS) coordinates, so that label k covers
the same anatomy in both. Voxels of the CT outside the label map get label 0.
A folder of per-structure masks (TotalSegmentator's default output: one
``femur_left.nii.gz`` per structure) is read as one label per file, named
after it; give it only the bones (``--roi_subset``), since every mask in the
folder is taken for bone and each one is resampled.

:func:`load_label_map` is what ``hostage stage --bone-labels FILE|DIR`` and
``hostage.stage(..., bone_labels=FILE)`` use; :func:`hostage.segment.segment`
then takes every voxel with a label above 0 as native bone and records which
labelled structures each focus lies in or touches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..config import LoadConfig
from ..errors import InputError
from .image_file import checked_reader, sitk_geometry_to_zyx
from .volume import Volume

__all__ = ["LABEL_SUFFIXES", "LabelMap", "load_label_map", "strip_image_suffix"]

logger = logging.getLogger(__name__)

#: Geometry that differs by less than this (mm, or direction cosine) is the same grid.
_SAME_GRID_TOL = 1e-3

#: Below this share of the CT's extent a label map gets a warning (a map resampled to
#: another spacing loses up to a voxel at its edges: 1-3 % of a small CT).
_MIN_COVERAGE = 0.95


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LabelMap:
    """An external label map on a CT's grid.

    Attributes
    ----------
    labels : (Z, Y, X) ndarray of int
        Labels on the CT's grid (0 = background), the file's integer type
        (int32 for whole-numbered floats).
    source : Path
        The label map file, or the folder of masks.
    resampled : bool
        False when the file already had the CT's grid.
    coverage : float
        Approximate share (0-1) of the CT's extent that the label map covers
        (the least of a folder's images).
    names : mapping of int to str
        Label -> structure name, for a folder of per-structure masks (empty
        for a single label image, whose numbers are the labelling tool's own).
    warnings : tuple of str
        Problems worth a look (partial coverage, no label inside the CT).
    """

    labels: np.ndarray
    source: Path
    resampled: bool
    coverage: float
    names: Mapping[int, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def _integer_image(image: sitk.Image, path: Path) -> sitk.Image:
    """Return `image` with an integer pixel type; whole-numbered floats are cast to int32."""
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.integer):
        return image
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if finite.all() and np.array_equal(arr, np.round(arr)) and np.abs(arr).max() < 2**31:
            return sitk.Cast(image, sitk.sitkInt32)
        bad = arr[~finite | (arr != np.round(arr))]
        example = float(bad.flat[0]) if bad.size else float(np.abs(arr).max())
        raise InputError(
            f"label map values must be whole numbers (found {example:g}); give a label image, "
            "not a probability or intensity map",
            path=path,
            code="bad_labels",
        )
    raise InputError(
        f"label map pixel type {image.GetPixelIDTypeAsString()} is not a scalar label",
        path=path,
        code="bad_labels",
    )


def _same_grid(image: sitk.Image, volume: Volume) -> bool:
    spacing, origin, direction = sitk_geometry_to_zyx(image)
    return (
        tuple(int(v) for v in image.GetSize()[::-1]) == volume.shape_zyx
        and np.allclose(spacing, volume.spacing_zyx_mm, atol=_SAME_GRID_TOL)
        and np.allclose(origin, volume.origin_lps_mm, atol=_SAME_GRID_TOL)
        and np.allclose(direction, volume.direction_lps, atol=_SAME_GRID_TOL)
    )


def _coverage(image: sitk.Image, volume: Volume) -> float:
    """Share of the CT's box that lies inside the label map's box, in the map's index space.

    Exact when the two grids are parallel; an approximation (of the boxes'
    overlap) when they are rotated against each other.
    """
    shape = np.asarray(volume.shape_zyx, dtype=float)
    corners_zyx = np.array(
        [
            [z, y, x]
            for z in (-0.5, shape[0] - 0.5)
            for y in (-0.5, shape[1] - 0.5)
            for x in (-0.5, shape[2] - 0.5)
        ]
    )
    lps = volume.index_to_lps_mm(corners_zyx)
    idx = np.array(
        [image.TransformPhysicalPointToContinuousIndex(tuple(map(float, p))) for p in lps]
    )
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    size = np.asarray(image.GetSize(), dtype=float)
    inter = np.clip(np.minimum(hi, size - 0.5) - np.maximum(lo, -0.5), 0.0, None)
    return float(np.prod(inter) / np.prod(np.maximum(hi - lo, 1e-9)))


def _on_grid(image: sitk.Image, volume: Volume) -> sitk.Image:
    """`image` resampled (nearest neighbour, 0 outside it) onto `volume`'s grid."""
    resample = sitk.ResampleImageFilter()
    resample.SetSize(tuple(int(n) for n in volume.shape_zyx[::-1]))
    resample.SetOutputSpacing(tuple(float(s) for s in volume.spacing_zyx_mm[::-1]))
    resample.SetOutputOrigin(tuple(float(v) for v in volume.origin_lps_mm))
    resample.SetOutputDirection(
        tuple(float(v) for v in np.asarray(volume.direction_lps)[:, ::-1].ravel())
    )
    resample.SetInterpolator(sitk.sitkNearestNeighbor)
    resample.SetDefaultPixelValue(0)
    resample.SetOutputPixelType(image.GetPixelID())
    return resample.Execute(image)


#: File names taken as label images in a folder of per-structure masks.
LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


def strip_image_suffix(name: str) -> str:
    """Return `name` without its image suffix: ``femur_left.nii.gz`` -> ``femur_left``.

    Examples
    --------
    >>> strip_image_suffix("femur_left.nii.gz"), strip_image_suffix("case_07")
    ('femur_left', 'case_07')
    """
    for suffix in LABEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read_label_image(path: Path, config: LoadConfig) -> sitk.Image:
    """One label image, checked (readable, 3-D scalar, within max_voxels, whole-numbered)."""
    reader = checked_reader(
        path, config=config, kind="label map", what="label image", code="bad_labels"
    )
    try:
        return _integer_image(reader.Execute(), path)
    except RuntimeError as exc:
        raise InputError(
            "cannot read the label map's pixels; the file may be truncated",
            path=path,
            code="bad_labels",
        ) from exc


def _labels_on_grid(
    image: sitk.Image, volume: Volume, path: Path
) -> tuple[np.ndarray, float, bool]:
    """Put `image` on `volume`'s grid: labels, share of the CT covered, whether resampled."""
    if _same_grid(image, volume):
        return sitk.GetArrayFromImage(image), 1.0, False
    coverage = _coverage(image, volume)
    if coverage <= 0.0:
        raise InputError(
            "the label map does not overlap the CT in patient coordinates (check that it was "
            "made from this series)",
            path=path,
            code="bad_labels",
        )
    return sitk.GetArrayFromImage(_on_grid(image, volume)), coverage, True


def load_label_map(
    path: str | Path, volume: Volume, *, config: LoadConfig | None = None
) -> LabelMap:
    """Read a label image, or a folder of per-structure masks, and put it on `volume`'s grid.

    Parameters
    ----------
    path : str or Path
        A label image (NIfTI, NRRD, MetaImage; any integer pixel type,
        whole-numbered floats accepted), or a folder of such images, one
        mask per structure named after it (as TotalSegmentator writes them:
        ``femur_left.nii.gz``, ``hip_left.nii.gz``, ...). In a folder, every
        image is one structure: its voxels above 0 get label k (the k-th
        file in name order) and :attr:`LabelMap.names` maps k to the file
        name without its suffix. Any grid that overlaps the CT.
    volume : Volume
        The CT whose grid the labels are resampled onto.
    config : LoadConfig, optional
        ``max_voxels`` is checked before the pixels are read.

    Returns
    -------
    LabelMap

    Raises
    ------
    InputError
        Missing or unreadable file, a folder without label images, not a
        3-D scalar image, non-integer values, too large, or no overlap with
        the CT (``code="bad_labels"`` for most).
    """
    config = LoadConfig() if config is None else config
    path = Path(path)
    names: dict[int, str] = {}
    if path.is_dir():
        files = sorted(
            f for f in path.iterdir() if f.is_file() and f.name.lower().endswith(LABEL_SUFFIXES)
        )
        if not files:
            raise InputError(
                "no label images (" + ", ".join(LABEL_SUFFIXES) + ") in the label map folder",
                path=path,
                code="bad_labels",
            )
        if len(files) > np.iinfo(np.uint16).max:
            raise InputError("too many label images in the folder", path=path, code="bad_labels")
        labels = np.zeros(volume.shape_zyx, np.uint16)
        coverage, resampled = 1.0, False
        for k, f in enumerate(files, start=1):
            mask, cov, moved = _labels_on_grid(_read_label_image(f, config), volume, f)
            labels[(mask > 0) & (labels == 0)] = k  # the first structure keeps a shared voxel
            coverage, resampled = min(coverage, cov), resampled or moved
            names[k] = strip_image_suffix(f.name)
    else:
        if not path.is_file():
            raise InputError("label map file not found", path=path, code="missing")
        labels, coverage, resampled = _labels_on_grid(_read_label_image(path, config), volume, path)
    warnings: list[str] = []
    if coverage < _MIN_COVERAGE:
        warnings.append(
            f"the bone label map {path.name} covers about {100 * coverage:.0f} % of the CT; "
            "outside it no voxel is taken for native bone"
        )
    if not (labels > 0).any():
        warnings.append(
            f"the bone label map {path.name} holds no structure (label above 0) inside the CT"
        )
    logger.info(
        "label map %s%s: %d labels inside the CT, coverage %.2f",
        path.name,
        " resampled onto the CT grid" if resampled else "",
        int(np.unique(labels[labels > 0]).size),
        coverage,
    )
    return LabelMap(
        labels=labels,
        source=path,
        resampled=resampled,
        coverage=coverage,
        names=names,
        warnings=tuple(warnings),
    )
