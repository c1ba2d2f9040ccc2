"""FocusROI: the padded crop around one focus, built once and shared by every family."""

from __future__ import annotations

import logging
import math
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from .._checks import check_mask_like, check_spacing, check_volume_array
from ..config import FeatureConfig
from ..segment import ReferenceTissues
from ..segment._grid import mask_bbox
from ._geometry import SurfaceMesh, smooth, surface_mesh

if TYPE_CHECKING:
    from ..io.volume import Volume
    from ..segment import Segmentation
    from ..segment.foci import Focus

__all__ = ["FocusROI", "RoiSource", "build_roi", "roi_from_arrays", "roi_source"]

logger = logging.getLogger(__name__)

#: Reference tissues used when a study has none measured (DOMAIN.md typical values).
DEFAULT_REFERENCE = ReferenceTissues(
    muscle_hu=50.0, fat_hu=-100.0, cortex_hu=1400.0, noise_hu=20.0, edge_width_mm=math.nan
)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FocusROI:
    """Everything a feature family needs about one focus, on one padded crop.

    Attributes
    ----------
    hu : (Z, Y, X) ndarray of float32
        CT values (HU) of the crop.
    hu_smooth : (Z, Y, X) ndarray of float32
        `hu` smoothed with a Gaussian of ``FeatureConfig.texture_smooth_mm``.
    mask : (Z, Y, X) ndarray of bool
        The focus.
    bone_mask : (Z, Y, X) ndarray of bool
        Native bone in the crop.
    exclude_mask : (Z, Y, X) ndarray of bool
        Voxels that belong to something else (native bone, other foci, metal):
        surface profiles that run into them are not used for the margin.
    depth_mm : (Z, Y, X) ndarray of float32
        Distance (mm) from each focus voxel to the nearest non-focus voxel
        centre (0 outside the focus).
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    mesh : SurfaceMesh
        The focus surface (outward normals, per-vertex areas), in crop mm.
    reference : ReferenceTissues
        Reference tissues of the scan (defaults where the scan had none).
    bone_distance_mm : float
        Gap (mm) between the focus and the nearest native bone; NaN when the
        study has no native bone.
    metal_distance_mm : float
        Distance (mm) from the focus to the nearest metal; NaN when the study has no metal.
    offset_zyx : tuple of 3 int
        Index of the crop's first voxel in the volume.
    """

    hu: np.ndarray
    hu_smooth: np.ndarray
    mask: np.ndarray
    bone_mask: np.ndarray
    exclude_mask: np.ndarray
    depth_mm: np.ndarray
    spacing_zyx_mm: tuple[float, float, float]
    mesh: SurfaceMesh
    reference: ReferenceTissues
    bone_distance_mm: float
    metal_distance_mm: float
    offset_zyx: tuple[int, int, int] = (0, 0, 0)

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm³."""
        return float(np.prod(self.spacing_zyx_mm))


def _with_defaults(reference: ReferenceTissues | None) -> ReferenceTissues:
    if reference is None:
        return DEFAULT_REFERENCE
    vals = {}
    for name in ("muscle_hu", "fat_hu", "cortex_hu", "noise_hu", "edge_width_mm"):
        v = float(getattr(reference, name))
        vals[name] = (
            v if math.isfinite(v) or name == "edge_width_mm" else getattr(DEFAULT_REFERENCE, name)
        )
    return ReferenceTissues(**vals)


def _gap_to_bone_mm(
    mask: np.ndarray, bone: np.ndarray, spacing: tuple[float, float, float]
) -> float:
    """Gap (mm) between two voxel sets: centre distance minus one voxel along that direction."""
    dist, idx = ndi.distance_transform_edt(~bone, sampling=spacing, return_indices=True)
    d_in = np.where(mask, dist, np.inf)
    flat = int(np.argmin(d_in))
    d = float(d_in.flat[flat])
    if d == 0:
        return 0.0
    p = np.array(np.unravel_index(flat, mask.shape))
    q = np.array([i.flat[flat] for i in idx])
    u = (q - p) * np.asarray(spacing)
    u = u / np.linalg.norm(u)
    step = float(np.sqrt(np.sum((u * np.asarray(spacing)) ** 2)))
    return max(0.0, d - step)


def _depth_mm(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """Distance (mm) from each mask voxel to the nearest non-mask voxel centre; 0 outside.

    Computed on the mask's bounding box plus one voxel: that layer is all
    background, and for a voxel inside the box the nearest background voxel
    beyond the box is never nearer than its projection onto the layer, so the
    result is that of the whole crop at a fraction of the cost.
    """
    box = mask_bbox(mask, 1)
    depth = np.zeros(mask.shape, dtype=np.float32)
    depth[box] = ndi.distance_transform_edt(mask[box], sampling=spacing)
    return depth


def roi_from_arrays(
    hu: np.ndarray,
    mask: np.ndarray,
    *,
    spacing_zyx_mm: tuple[float, float, float],
    config: FeatureConfig,
    reference: ReferenceTissues | None = None,
    bone_mask: np.ndarray | None = None,
    exclude_mask: np.ndarray | None = None,
    bone_distance_mm: float | None = None,
    metal_distance_mm: float = math.nan,
    offset_zyx: tuple[int, int, int] = (0, 0, 0),
    hu_smooth: np.ndarray | None = None,
) -> FocusROI:
    """Build a :class:`FocusROI` from plain arrays (the crop is taken as given).

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT values (HU) of the crop; should leave a margin around the focus.
    mask : (Z, Y, X) ndarray of bool
        The focus; at least one voxel.
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    config : FeatureConfig
        Feature settings (smoothing widths).
    reference : ReferenceTissues, optional
        Reference tissues of the scan; NaN entries (and None) take DOMAIN.md
        typical values, except ``edge_width_mm`` which stays NaN.
    bone_mask : (Z, Y, X) ndarray of bool, optional
        Native bone in the crop (none if omitted).
    exclude_mask : (Z, Y, X) ndarray of bool, optional
        Other structures; defaults to `bone_mask`.
    bone_distance_mm : float, optional
        Gap to native bone measured elsewhere; by default measured in the crop
        (NaN when the crop has no bone).
    metal_distance_mm : float
        Distance to the nearest metal (NaN: no metal).
    offset_zyx : tuple of 3 int
        Index of the crop's first voxel in the volume.
    hu_smooth : (Z, Y, X) ndarray of float32, optional
        `hu` already smoothed with ``texture_smooth_mm`` (:func:`build_roi`
        smooths a larger window of the volume); by default `hu` is smoothed
        here, the crop's edges replicated.

    Returns
    -------
    FocusROI

    Raises
    ------
    ValueError
        If shapes disagree, the mask is empty or the spacing is invalid.
    """
    spacing = check_spacing(spacing_zyx_mm)
    hu = check_volume_array(np.asarray(hu), name="hu").astype(np.float32, copy=False)
    check_mask_like(mask, hu, name="mask")
    if not mask.any():
        raise ValueError("mask is empty: a focus needs at least one voxel")
    bone = (
        np.zeros_like(mask)
        if bone_mask is None
        else check_mask_like(bone_mask, hu, name="bone_mask")
    )
    bone = bone & ~mask
    excl = (
        bone
        if exclude_mask is None
        else (check_mask_like(exclude_mask, hu, name="exclude_mask") | bone)
    )
    excl = excl & ~mask
    with np.errstate(divide="raise", invalid="raise"):
        depth = _depth_mm(mask, spacing)
        if bone_distance_mm is None:
            bone_distance_mm = _gap_to_bone_mm(mask, bone, spacing) if bone.any() else math.nan
        mesh = surface_mesh(mask, spacing_zyx_mm=spacing, smooth_mm=config.mesh_smooth_mm)
        if hu_smooth is None:
            hu_s = smooth(hu, spacing_zyx_mm=spacing, sigma_mm=config.texture_smooth_mm)
        elif np.shape(hu_smooth) != hu.shape:
            raise ValueError(
                f"hu_smooth shape {np.shape(hu_smooth)} differs from the image shape {hu.shape}"
            )
        else:
            hu_s = np.asarray(hu_smooth, dtype=np.float32)
    for a in (hu, hu_s, mask, bone, excl, depth):
        a.flags.writeable = False
    return FocusROI(
        hu=hu,
        hu_smooth=hu_s,
        mask=mask,
        bone_mask=bone,
        exclude_mask=excl,
        depth_mm=depth,
        spacing_zyx_mm=spacing,
        mesh=mesh,
        reference=_with_defaults(reference),
        bone_distance_mm=float(bone_distance_mm),
        metal_distance_mm=float(metal_distance_mm),
        offset_zyx=offset_zyx,
    )


#: k-d trees of the study-level point sets (bone, metal), one per array while it lives:
#: every focus of a study queries the same points, so the tree is built once.
_TREES: dict[int, tuple[weakref.ref[np.ndarray], object]] = {}
_TREES_LOCK = threading.Lock()


def _tree(points_zyx_mm: np.ndarray) -> object:
    from scipy.spatial import cKDTree

    key = id(points_zyx_mm)
    with _TREES_LOCK:
        hit = _TREES.get(key)
        if hit is not None and hit[0]() is points_zyx_mm:
            return hit[1]
    # the tree keeps its data array: give it a copy, so that it does not keep the points alive
    tree = cKDTree(np.array(points_zyx_mm, dtype=np.float64, copy=True))

    def forget(_ref: weakref.ref[np.ndarray], k: int = key) -> None:
        _TREES.pop(k, None)

    try:
        ref = weakref.ref(points_zyx_mm, forget)
    except TypeError:  # not weak-referenceable (a view of a foreign buffer): do not cache
        return tree
    with _TREES_LOCK:
        _TREES[key] = (ref, tree)
    return tree


def _nearest_mm(points_zyx_mm: np.ndarray, query_zyx_mm: np.ndarray) -> float:
    if len(points_zyx_mm) == 0:
        return math.nan
    d, _ = _tree(points_zyx_mm).query(query_zyx_mm, k=1)  # type: ignore[attr-defined]
    return float(np.min(d))


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RoiSource:
    """The study's arrays around one focus, cut, converted and smoothed once for several ROIs.

    The stability check measures five perturbed versions of every focus; each
    ROI is cut from these arrays (:func:`build_roi` with ``source=``) rather
    than from the volume and segmentation again. Every array covers
    :attr:`box_zyx` of the volume.

    Attributes
    ----------
    box_zyx : tuple of 3 slice
        The region of the volume held, in voxel indices.
    hu : (Z, Y, X) ndarray of float32
        CT values (HU) of the region.
    hu_smooth : (Z, Y, X) ndarray of float32
        The volume smoothed with ``texture_smooth_mm``: exact (equal to
        smoothing the whole volume) within :attr:`smooth_exact_zyx`.
    smooth_exact_zyx : tuple of 3 slice
        Where `hu_smooth` is exact: `box_zyx` less the Gaussian's reach, except
        at the volume's own edges.
    labels : (Z, Y, X) ndarray of int32
        Focus labels of the region.
    bone : (Z, Y, X) ndarray of bool
        Native bone.
    metal : (Z, Y, X) ndarray of bool
        Metal.
    """

    box_zyx: tuple[slice, slice, slice]
    hu: np.ndarray
    hu_smooth: np.ndarray
    smooth_exact_zyx: tuple[slice, slice, slice]
    labels: np.ndarray
    bone: np.ndarray
    metal: np.ndarray


def _smooth_reach(spacing: tuple[float, float, float], sigma_mm: float) -> tuple[int, ...]:
    """Voxels each side that :func:`~._geometry.smooth` reads (its Gaussian is truncated at 3 SD)."""
    if sigma_mm <= 0:
        return (0, 0, 0)
    return tuple(int(3.0 * sigma_mm / s + 0.5) + 1 for s in spacing)


def _widen(
    box: tuple[slice, ...], by: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[slice, slice, slice]:
    z, y, x = (
        slice(max(0, b.start - w), min(n, b.stop + w))
        for b, w, n in zip(box, by, shape, strict=True)
    )
    return (z, y, x)


def _roi_crop(
    bbox_zyx: tuple[slice, ...],
    *,
    spacing: tuple[float, ...],
    shape: tuple[int, ...],
    margin_mm: float,
) -> tuple[slice, slice, slice]:
    """Return the feature crop of a focus: its bounding box + ``roi_margin_mm`` + one voxel."""
    pad = tuple(math.ceil(margin_mm / s) + 1 for s in spacing)
    return _widen(bbox_zyx, pad, shape)


def roi_source(
    volume: Volume,
    seg: Segmentation,
    bbox_zyx: tuple[slice, slice, slice],
    *,
    config: FeatureConfig,
) -> RoiSource:
    """Cut, convert and smooth the region every ROI of a mask inside `bbox_zyx` needs.

    Parameters
    ----------
    volume : Volume
        The CT volume.
    seg : Segmentation
        Its segmentation.
    bbox_zyx : tuple of 3 slice
        A box holding every mask that will be measured (for the stability
        check: the focus's box widened by the largest perturbation).
    config : FeatureConfig
        Feature settings (``roi_margin_mm``, ``texture_smooth_mm``).

    Returns
    -------
    RoiSource
    """
    spacing, shape = volume.spacing_zyx_mm, volume.shape_zyx
    crop = _roi_crop(bbox_zyx, spacing=spacing, shape=shape, margin_mm=config.roi_margin_mm)
    reach = _smooth_reach(spacing, config.texture_smooth_mm)
    box = _widen(crop, reach, shape)
    hu = np.asarray(volume.hu[box], dtype=np.float32)
    hu_s = smooth(hu, spacing_zyx_mm=spacing, sigma_mm=config.texture_smooth_mm)
    z, y, x = (
        slice(b.start + (w if b.start > 0 else 0), b.stop - (w if b.stop < n else 0))
        for b, w, n in zip(box, reach, shape, strict=True)
    )
    for a in (hu, hu_s):
        a.flags.writeable = False
    return RoiSource(
        box_zyx=box,
        hu=hu,
        hu_smooth=hu_s,
        smooth_exact_zyx=(z, y, x),
        labels=seg.labels[box],
        bone=np.asarray(seg.bone_mask[box], dtype=bool),
        metal=np.asarray(seg.metal_mask[box], dtype=bool),
    )


def _inside(inner: tuple[slice, ...], outer: tuple[slice, ...]) -> bool:
    return all(o.start <= i.start and i.stop <= o.stop for i, o in zip(inner, outer, strict=True))


def build_roi(
    volume: Volume,
    focus: Focus,
    seg: Segmentation,
    *,
    config: FeatureConfig,
    distances: bool = True,
    source: RoiSource | None = None,
) -> FocusROI:
    """Crop the volume around `focus` (bbox + ``roi_margin_mm``) and build its ROI.

    ``hu_smooth`` is the volume smoothed with ``texture_smooth_mm`` and then
    cropped (a window wider than the crop by the Gaussian's reach is smoothed),
    so it does not depend on where the crop ends; the features read it inside
    the focus only, where this equals smoothing the crop itself.

    Parameters
    ----------
    volume : Volume
        The CT volume.
    focus : Focus
        The focus to measure.
    seg : Segmentation
        The segmentation `focus` belongs to.
    config : FeatureConfig
        Feature settings.
    distances : bool
        Measure the distances to native bone and metal (the ``bone`` and
        ``metal`` families read them). False leaves both NaN, for callers that
        run neither family.
    source : RoiSource, optional
        Arrays already cut around the focus (:func:`roi_source`); used when
        they hold the whole crop, giving the same ROI as the volume would.

    Returns
    -------
    FocusROI
    """
    spacing = volume.spacing_zyx_mm
    shape = volume.shape_zyx
    crop = _roi_crop(focus.bbox_zyx, spacing=spacing, shape=shape, margin_mm=config.roi_margin_mm)
    offset = (crop[0].start, crop[1].start, crop[2].start)
    if source is None or not _inside(crop, source.smooth_exact_zyx):
        source = roi_source(volume, seg, focus.bbox_zyx, config=config)
    rel = tuple(
        slice(c.start - b.start, c.stop - b.start)
        for c, b in zip(crop, source.box_zyx, strict=True)
    )
    hu = np.ascontiguousarray(source.hu[rel])
    hu_s = np.ascontiguousarray(source.hu_smooth[rel])
    mask = np.zeros(hu.shape, dtype=bool)
    inner = tuple(
        slice(b.start - c.start, b.stop - c.start)
        for b, c in zip(focus.bbox_zyx, crop, strict=True)
    )
    mask[inner] = focus.mask
    labels = source.labels[rel]
    others = (labels != 0) & (labels != focus.id)
    bone = source.bone[rel]
    metal = source.metal[rel]
    bone_d: float | None = math.nan
    metal_d = math.nan
    if distances:
        # Distances to bone and metal beyond the crop come from the study-level point sets.
        idx = np.argwhere(mask)
        sub = idx[:: max(1, len(idx) // 2000)]
        query = (sub + np.asarray(offset)) * np.asarray(spacing)
        bone_d = None  # measured in the crop by roi_from_arrays
        if not (bone & ~mask).any():
            bone_d = _nearest_mm(seg.bone_points_zyx_mm, query)
        metal_d = _nearest_mm(seg.metal_points_zyx_mm, query)
    return roi_from_arrays(
        hu,
        mask,
        spacing_zyx_mm=spacing,
        config=config,
        reference=seg.reference,
        bone_mask=bone,
        exclude_mask=others | metal,
        bone_distance_mm=bone_d,
        metal_distance_mm=metal_d,
        offset_zyx=offset,
        hu_smooth=hu_s,
    )
