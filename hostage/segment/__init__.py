"""Find the body, the native skeleton, metal and the hyperdense soft-tissue foci.

``segment(volume, *, config) -> Segmentation`` is the entry point.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from ..config import SegmentConfig
from ._grid import (
    CoarseGrid,
    ball_structure,
    box_dilate,
    box_erode,
    gaussian_mm,
    mask_bbox,
    mm_to_half,
    sparse_zeros,
)
from .body import body_mask_coarse
from .foci import Focus, find_foci
from .metal import metal_mask_coarse
from .reference import measure_reference
from .skeleton import native_skeleton_coarse

if TYPE_CHECKING:
    from ..io.volume import Volume

__all__ = ["Focus", "ReferenceTissues", "Segmentation", "segment"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceTissues:
    """Reference tissues measured in the same scan, so features can be scanner-relative.

    Every value is NaN when the tissue could not be measured (too little of it).

    Attributes
    ----------
    muscle_hu : float
        Median HU of skeletal muscle.
    fat_hu : float
        Median HU of subcutaneous/intermuscular fat.
    cortex_hu : float
        Native cortex peak HU: median of the coarse-block maxima on the
        surface of native bone.
    noise_hu : float
        Noise standard deviation (HU) in homogeneous muscle.
    edge_width_mm : float
        10-90 % edge width (mm) of the native cortex/soft-tissue boundary: the
        scanner's own edge response (point spread plus slice thickness).
    """

    muscle_hu: float
    fat_hu: float
    cortex_hu: float
    noise_hu: float
    edge_width_mm: float


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Segmentation:
    """Masks and foci of one volume, all on the volume's (Z, Y, X) grid.

    Attributes
    ----------
    body_mask : (Z, Y, X) ndarray of bool
        The patient (air and CT table excluded).
    bone_mask : (Z, Y, X) ndarray of bool
        Native skeleton (cortex, cancellous bone and marrow cavity), foci excluded.
    metal_mask : (Z, Y, X) ndarray of bool
        Metal (implants); never part of a focus.
    labels : (Z, Y, X) ndarray of int32
        0 = background, k = focus with ``id == k``.
    foci : tuple of Focus
        The reported foci, ordered by id.
    reference : ReferenceTissues
        Reference tissues of this scan.
    warnings : tuple of str
        Warnings about the segmentation (metal streaks, no native bone found, ...).
    bone_points_zyx_mm : (N, 3) ndarray of float64
        Points on the native bone surface as index × spacing (mm, z, y, x),
        used for distances beyond a focus's crop (empty: no native bone).
    metal_points_zyx_mm : (M, 3) ndarray of float64
        Points inside metal, index × spacing (mm); empty without metal.
    focus_bone_labels : mapping of int to tuple of int
        With an external bone label map: focus id -> the labels of the
        structures it lies in or touches (empty mapping otherwise).

    Notes
    -----
    The four full-size arrays are read-only and allocated with
    :func:`~hostage.segment._grid.sparse_zeros`: memory is only taken by
    the pages written (the body, the skeleton's slices, the foci's boxes).
    """

    body_mask: np.ndarray
    bone_mask: np.ndarray
    metal_mask: np.ndarray
    labels: np.ndarray
    foci: tuple[Focus, ...]
    reference: ReferenceTissues
    warnings: tuple[str, ...] = ()
    bone_points_zyx_mm: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    metal_points_zyx_mm: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    focus_bone_labels: Mapping[int, tuple[int, ...]] = field(default_factory=dict)


def _touched_labels(
    foci: list[Focus],
    bone_labels: np.ndarray | None,
    hu: np.ndarray,
    *,
    reach: int,
    spacing_zyx_mm: tuple[float, float, float],
    smooth_mm: float,
    dense_min_hu: float,
) -> dict[int, tuple[int, ...]]:
    """Labels (> 0) of the structures each focus lies in or touches.

    A focus is cut from native bone at the coarse block size (widened by
    ``bone_labels_margin_mm``), so up to `reach` voxels lie between it and
    the labelled voxels it grew from. It touches a structure when its mask
    joins that structure's voxels through dense voxels (smoothed HU at least
    `dense_min_hu`) within that reach: HO fused to the bone, not a focus
    across a cleft of soft tissue (which is just as near).
    """
    if bone_labels is None:
        return {}
    out = {}
    full26 = np.ones((3, 3, 3), bool)
    for f in foci:
        box = tuple(
            slice(max(0, s.start - reach), min(n, s.stop + reach))
            for s, n in zip(f.bbox_zyx, bone_labels.shape, strict=True)
        )
        m = np.zeros(tuple(s.stop - s.start for s in box), bool)
        inner = tuple(
            slice(s.start - b.start, s.stop - b.start) for s, b in zip(f.bbox_zyx, box, strict=True)
        )
        m[inner] = f.mask
        labels = bone_labels[box]
        dense = gaussian_mm(hu[box], spacing_zyx_mm, smooth_mm) >= dense_min_hu
        bridge = m | (dense & box_dilate(m, (reach, reach, reach)))
        lab, _ = ndi.label(bridge, structure=full26)
        joined = np.isin(lab, np.unique(lab[m]))
        vals = np.unique(labels[box_dilate(joined, (1, 1, 1))])
        out[f.id] = tuple(int(v) for v in vals if v > 0)
    return out


def _upsample2(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Upsample a mask made on every other block back to the coarse grid `shape`."""
    out = mask.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2)
    return out[: shape[0], : shape[1], : shape[2]]


def _surface_points(mask: np.ndarray, grid: CoarseGrid) -> np.ndarray:
    if not mask.any():
        return np.zeros((0, 3))
    # one block of margin, so the box's edge is not mistaken for more bone
    box = mask_bbox(mask, 1)
    surf = mask[box] & ~box_erode(mask[box], (1, 1, 1))
    return grid.centres_mm(np.argwhere(surf) + np.array([s.start for s in box]))


def segment(
    volume: Volume, *, config: SegmentConfig, bone_labels: np.ndarray | None = None
) -> Segmentation:
    """Find the body, native skeleton, metal, reference tissues and HO foci of one volume.

    Whole-volume steps run on block means and maxima of about
    ``coarse_voxel_mm`` (:class:`~hostage.segment._grid.CoarseGrid`); foci are
    refined at full resolution in crops (:func:`~hostage.segment.foci.find_foci`).

    1. Body: :func:`~hostage.segment.body.body_mask_coarse` (air and CT table out).
    2. Metal: block maxima ≥ ``metal_min_hu`` (:mod:`~hostage.segment.metal`);
       never a focus; candidates within ``metal_exclusion_mm`` are dropped.
    3. Native skeleton: :func:`~hostage.segment.skeleton.native_skeleton_coarse`
       (long cortical structures; fused foci are cut off at their neck).
    4. Reference tissues: :func:`~hostage.segment.reference.measure_reference`.
    5. Foci: hysteresis, distance grouping and full-resolution refinement
       outside the skeleton; dense bone standing out of the skeleton's smooth
       envelope next to a focus is given back to it
       (``focus_bone_envelope_mm``, halo = the measured edge width); then the
       size and vessel filters.

    Parameters
    ----------
    volume : Volume
        The CT volume (HU).
    config : SegmentConfig
        Thresholds (HU) and sizes (mm, mm³); converted to voxels here.
    bone_labels : (Z, Y, X) ndarray of int, optional
        An external label map on the volume's grid (for example a
        TotalSegmentator output resampled to the CT): labels > 0 are native
        bone and replace step 3; each focus records the labels it lies in or
        touches (:attr:`Segmentation.focus_bone_labels`).

    Raises
    ------
    ValueError
        If `bone_labels` is not an integer array of the volume's shape.

    Returns
    -------
    Segmentation
        Masks on the full grid (the bone mask has the coarse block resolution),
        foci ordered by id (scan order), reference tissues and warnings.
    """
    t0 = time.perf_counter()
    hu = volume.hu
    spacing = volume.spacing_zyx_mm
    grid = CoarseGrid.for_volume(
        volume.shape_zyx, spacing_zyx_mm=spacing, block_mm=config.coarse_voxel_mm
    )
    cs = grid.coarse_spacing_zyx_mm
    warnings: list[str] = []
    cmean, cmax = grid.block_stats(hu)
    # the body is a large-scale shape: find it on every other block, then upsample
    half_grid = tuple(2 * c for c in cs)
    body2 = body_mask_coarse(cmean[::2, ::2, ::2], body_min_hu=config.body_min_hu)
    inner2 = box_erode(body2, mm_to_half(config.body_margin_mm, half_grid))  # type: ignore[arg-type]
    body = _upsample2(body2, cmean.shape)
    inner_body = _upsample2(inner2, cmean.shape)
    metal = metal_mask_coarse(
        cmax,
        grid=grid,
        metal_min_hu=config.metal_min_hu,
        min_volume_mm3=config.metal_min_volume_mm3,
    )
    metal_zone = metal
    if metal.any():
        metal_zone = ndi.binary_dilation(
            metal, structure=ball_structure(config.metal_exclusion_mm, spacing_zyx_mm=cs)
        )
        warnings.append(
            f"metal found ({float(metal.sum()) * float(np.prod(cs)):.0f} mm³ of blocks): foci near it "
            "are flagged (metal_streak_zone) and candidates within "
            f"{config.metal_exclusion_mm:g} mm are ignored"
        )
    if bone_labels is not None:
        bone_labels = np.asarray(bone_labels)
        if bone_labels.shape != volume.shape_zyx or bone_labels.dtype.kind not in "iub":
            raise ValueError(
                f"bone_labels must be an integer label array of the volume's shape {volume.shape_zyx}; "
                f"got {bone_labels.dtype} {bone_labels.shape}. Resample the label map to the CT grid first."
            )
        # a block holds bone when its largest label is > 0 (no full-size temporary)
        native = grid.block_max(bone_labels) > 0
    else:
        native = native_skeleton_coarse(
            cmax,
            grid=grid,
            body=body,
            exclude=metal_zone,
            cortex_min_hu=config.native_cortex_min_hu,
            erode_mm=config.native_erode_mm,
            min_length_mm=config.native_min_length_mm,
            min_exposure=config.native_min_exposure,
            max_hole_mm2=config.native_max_hole_mm2,
            thin_max_contact=config.native_touch_max_contact,
            thin_min_exposure=config.native_touch_min_exposure,
            thin_min_volume_mm3=0.5 * config.min_focus_volume_mm3,
            marrow_shell_mm=config.native_marrow_shell_mm,
            marrow_min_exposure=config.native_marrow_min_exposure,
            marrow_wall_min_hu=config.native_marrow_wall_min_hu,
            marrow_partial_min_exposure=config.native_marrow_partial_min_exposure,
            marrow_texture_min_hu=config.native_marrow_texture_min_hu,
            protrusion_min_mm=config.native_protrusion_min_mm,
            protrusion_reference_mm=config.native_protrusion_reference_mm,
            protrusion_min_share=config.native_protrusion_min_share,
            block_mean_hu=cmean,
            hu=hu,
            fullres_min_exposure=config.native_marrow_fullres_min_exposure,
            fullres_partial_min_exposure=config.native_marrow_fullres_partial_min_exposure,
            fullres_smooth_mm=config.focus_smooth_mm,
            soft_max_hu=config.bone_min_hu,
        )
    ref_values, ref_warnings = measure_reference(
        hu,
        grid=grid,
        block_mean_hu=cmean,
        block_max_hu=cmax,
        body=body,
        native=native,
        cortex_min_hu=config.native_cortex_min_hu,
        max_profiles=config.edge_max_profiles,
        max_normal_z=config.edge_max_normal_z,
    )
    warnings += ref_warnings
    label_reach = max(grid.factors_zyx) + 1
    if bone_labels is not None and config.bone_labels_margin_mm > 0:
        # the scanner's blur spreads bone beyond the outline drawn on it (the reference
        # tissues above are measured on the outline itself)
        native = box_dilate(native, mm_to_half(config.bone_labels_margin_mm, cs))
        label_reach += math.ceil(config.bone_labels_margin_mm / min(volume.spacing_zyx_mm))
    # foci lie in muscle, under skin and subcutaneous fat (and off the table)
    candidates = inner_body & ~native & ~metal_zone
    noise = ref_values["noise_hu"]
    if not np.isfinite(noise):
        noise = config.fallback_noise_hu
        logger.warning(
            "the noise of %s could not be measured (too little homogeneous muscle): "
            "seed thresholds use [segment] fallback_noise_hu = %g HU",
            volume.shape_zyx,
            noise,
        )
    found = find_foci(
        hu,
        grid=grid,
        block_mean_hu=cmean,
        block_max_hu=cmax,
        noise_hu=noise,
        muscle_hu=ref_values["muscle_hu"] if np.isfinite(ref_values["muscle_hu"]) else 50.0,
        candidates=candidates,
        native=native,
        config=config,
        edge_width_mm=ref_values["edge_width_mm"],
    )
    # full-size outputs: only the pages that are written get memory
    labels = sparse_zeros(volume.shape_zyx, np.int32)
    foci = []
    voxel_mm3 = volume.voxel_volume_mm3
    for k, (bbox, mask) in enumerate(found, start=1):
        labels[bbox][mask] = k
        centroid = np.argwhere(mask).mean(axis=0) + np.array([b.start for b in bbox])
        foci.append(
            Focus(
                id=k,
                bbox_zyx=bbox,
                mask=mask,
                volume_mm3=float(mask.sum()) * voxel_mm3,
                centroid_lps_mm=tuple(float(v) for v in volume.index_to_lps_mm(centroid)),  # type: ignore[arg-type]
            )
        )
    body_full = grid.upsample_into(body, sparse_zeros(volume.shape_zyx, bool))
    bone_full = grid.upsample_into(native, sparse_zeros(volume.shape_zyx, bool))
    for f in foci:
        bone_full[f.bbox_zyx] &= ~f.mask
    metal_full = sparse_zeros(volume.shape_zyx, bool)
    if metal.any():
        for sl in ndi.find_objects(ndi.label(metal)[0]):
            if sl is None:
                continue
            box = grid.to_full_bbox(sl, pad_mm=max(cs))
            metal_full[box] |= hu[box] >= config.metal_min_hu
    metal_points = grid.centres_mm(np.argwhere(metal))
    for a in (body_full, bone_full, metal_full, labels):
        a.flags.writeable = False
    logger.info(
        "segmented %s: %d foci, %d native-bone blocks, metal=%s in %.2f s",
        volume.shape_zyx,
        len(foci),
        int(native.sum()),
        bool(metal.any()),
        time.perf_counter() - t0,
    )
    return Segmentation(
        body_mask=body_full,
        bone_mask=bone_full,
        metal_mask=metal_full,
        labels=labels,
        foci=tuple(foci),
        reference=ReferenceTissues(**ref_values),
        warnings=tuple(warnings),
        bone_points_zyx_mm=_surface_points(native, grid),
        focus_bone_labels=_touched_labels(
            foci,
            bone_labels,
            hu,
            reach=label_reach,
            spacing_zyx_mm=volume.spacing_zyx_mm,
            smooth_mm=config.focus_smooth_mm,
            dense_min_hu=config.focus_grow_min_hu,
        ),
        metal_points_zyx_mm=metal_points,
    )
