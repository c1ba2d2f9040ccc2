"""Robust calls: re-measure each focus under small perturbations and see whether its stage holds.

Five perturbed versions of every focus are measured with the public
:func:`hostage.features.measure` and staged with the same rules:

* ``threshold +N HU``: boundary voxels of the focus whose smoothed HU is below
  ``focus_grow_min_hu + N`` are dropped (a slightly stricter segmentation);
* ``threshold -N HU``: voxels just outside the focus whose smoothed HU is at or
  above ``focus_grow_min_hu - N`` are added (a slightly looser one), the HU
  smoothed as the segmentation smooths them (a Gaussian of ``focus_smooth_mm``);
* ``mask eroded`` / ``mask dilated`` by ``stability_mask_voxels`` voxels
  (a face-connected structuring element, so the step is one voxel along each
  axis), but only along the axes whose voxels are at most
  ``stability_mask_max_step_mm`` long (always the finest axis): on 2-3 mm
  slices, one slice off the top and bottom of a focus is a 2-3 mm change, three
  to four times the in-plane step, and no longer a small perturbation (it
  removes the cortex of the caps). On 60 evaluation phantoms this perturbation
  alone moved 4 mature foci on 2-2.5 mm slices (scores 0.72-0.91) to a lower
  stage and made their studies ``indeterminate``;
* ``image resampled``: the HU around the focus resampled on a grid shifted by
  ``stability_resample_shift`` of a voxel (trilinear, which also blurs them a
  little, as a slightly different reconstruction grid would), the masks kept
  (:func:`resampled_source`), along the same axes as the mask steps: half a
  3 mm slice interpolated between its neighbours averages two slices into one
  about 1.5 times as thick, not the same scan on a slightly different grid (a
  scanner reconstructing at other slice positions gives slices just as thin).
  Shifted along z too, it moved two mature foci of an independent phantom on
  3 mm slices (``benchmarks/independent.py --first-seed 1000``, seed 1015) to
  immature and made that study ``indeterminate``; resection status on seeds
  1000-1029 went from 0.833 to 0.867 with the shift kept in-plane, and no other
  evaluation set changed.

``N`` is ``[classify] stability_threshold_hu``. The confidence becomes the top
score times the fraction of the 6 measurements (original + 5) that agree on the
stage, and the stages seen are recorded in ``FocusStage.perturbed_stages``. A
perturbation that leaves fewer than 8 voxels is skipped.

Only the stage of a perturbed focus is used, and the stage rules
(:func:`hostage.classify.rules.score_focus`) read a known set of features:
the feature of every evidence term and its reliability flag
(:func:`stage_feature_names`). So a perturbed focus is measured with only the
feature families that compute those (:func:`hostage.features.families_for`),
and a family that can compute part of its features
(``FeatureFamily.partial``) is asked for just those; the families that do not
enter the stage (size, relation to bone, metal) and the study-level distance
look-ups they need are not run again. The stage is
the same as with a full :func:`hostage.features.measure` (tested).

The measurements of a focus share one :class:`~hostage.features.RoiSource`
(the crop of HU, labels, bone and metal around the focus's box widened by the
largest step, converted and smoothed once); each perturbed ROI is cut from it
with the same values as from the volume (tested; the resampled image is an
interpolated copy of it). What remains per mask is the
work that depends on the mask: its distance transform and surface mesh, the
profiles along the mesh normals, the texture of the focus. Measured on the
300 x 512 x 512 phantom of ``benchmarks/speed.py`` (4 foci, then 16 perturbed masks,
CPU seconds, process_time, best of 3 on a shared 2-core machine): 2.5-2.8 s
with every family's full computation, 1.16-1.26 s asking the texture and rim
families for the stage's features only, 1.08-1.14 s with the shared source.

No focus is exempted from the perturbations, however large its score margin:
the evidence terms are clipped ramps of features that a one-voxel change can
move across their whole range on a small focus (a rim that closes, a core
that appears), so no margin bounds the change a priori.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from ..enums import Stage
from .rules import TERMS, score_focus
from .types import FocusStage

if TYPE_CHECKING:
    from ..config import Config
    from ..features import FocusFeatures
    from ..features._roi import RoiSource
    from ..io.volume import Volume
    from ..segment import Segmentation
    from ..segment.foci import Focus

__all__ = ["check_stability", "perturbed_foci", "stage_feature_names"]

logger = logging.getLogger(__name__)

_MIN_VOXELS = 8


@cache
def stage_feature_names() -> frozenset[str]:
    """Names of the features the stage of a focus depends on.

    :func:`~hostage.classify.rules.score_focus` chooses the stage from the
    evidence terms (:data:`~hostage.classify.rules.TERMS`) alone; each term
    reads one feature and, for some, a reliability flag. The other features it
    reads (zonal pattern, relation to bone, metal) change flags, reasons and
    the confidence, never the stage.

    Returns
    -------
    frozenset of str

    Examples
    --------
    >>> names = stage_feature_names()
    >>> "rim_completeness" in names, "texture_reliable" in names, "size_volume_mm3" in names
    (True, True, False)
    """
    names = {t.feature for t in TERMS}
    names.update(t.reliable_flag for t in TERMS if t.reliable_flag is not None)
    return frozenset(names)


def _focus_from_mask(
    volume: Volume, focus_id: int, full_mask: np.ndarray, offset: tuple[int, ...]
) -> Focus:
    from ..segment.foci import Focus

    idx = np.argwhere(full_mask)
    lo = idx.min(axis=0)
    hi = idx.max(axis=0) + 1
    bbox = tuple(slice(int(o + a), int(o + b)) for o, a, b in zip(offset, lo, hi, strict=True))
    mask = full_mask[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))].copy()
    voxel_mm3 = float(np.prod(volume.spacing_zyx_mm))
    centroid_idx = idx.mean(axis=0) + np.asarray(offset, dtype=float)
    centroid = tuple(float(v) for v in np.asarray(volume.index_to_lps_mm(centroid_idx)).ravel())
    return Focus(
        id=focus_id,
        bbox_zyx=bbox,  # type: ignore[arg-type]
        mask=mask,
        volume_mm3=float(idx.shape[0]) * voxel_mm3,
        centroid_lps_mm=centroid,  # type: ignore[arg-type]
    )


def _fine_axes(
    spacing_zyx_mm: tuple[float, float, float], *, max_step_mm: float
) -> tuple[bool, bool, bool]:
    """Axes along which the perturbations step: voxel at most `max_step_mm` long, or the finest.

    Examples
    --------
    >>> _fine_axes((2.5, 0.7, 0.7), max_step_mm=1.5)
    (False, True, True)
    >>> _fine_axes((3.0, 2.0, 2.0), max_step_mm=1.5)
    (False, True, True)
    """
    finest = min(spacing_zyx_mm)
    z, y, x = (s <= max_step_mm or s == finest for s in spacing_zyx_mm)
    return (z, y, x)


def _mask_step_structure(
    spacing_zyx_mm: tuple[float, float, float], *, max_step_mm: float
) -> np.ndarray:
    """Face-connected cross along the axes whose spacing is at most `max_step_mm` (and the finest).

    Examples
    --------
    >>> _mask_step_structure((2.5, 0.7, 0.7), max_step_mm=1.5)[:, 1, 1].tolist()
    [False, True, False]
    >>> int(_mask_step_structure((1.0, 0.7, 0.7), max_step_mm=1.5).sum())
    7
    """
    struct = np.zeros((3, 3, 3), dtype=bool)
    struct[1, 1, 1] = True
    for axis, fine in enumerate(_fine_axes(spacing_zyx_mm, max_step_mm=max_step_mm)):
        if fine:
            idx = [1, 1, 1]
            for k in (0, 2):
                idx[axis] = k
                struct[tuple(idx)] = True
    return struct


def perturbed_foci(
    volume: Volume,
    focus: Focus,
    seg: Segmentation,
    *,
    grow_min_hu: float,
    threshold_hu: float,
    mask_voxels: int,
    smooth_mm: float = 0.0,
    mask_max_step_mm: float = math.inf,
) -> list[tuple[str, Focus]]:
    """Build the perturbed versions of one focus (see the module docstring).

    Parameters
    ----------
    volume : Volume
    focus : Focus
    seg : Segmentation
        Native bone, metal and other foci are never added to a grown mask.
    grow_min_hu : float
        The segmentation's low (grow) threshold in HU.
    threshold_hu : float
        Threshold perturbation in HU (applied up and down).
    mask_voxels : int
        Erosion/dilation steps in voxels.
    smooth_mm : float
        Gaussian sigma (mm) applied to the HU before the threshold perturbations,
        as the segmentation does (0 = none).
    mask_max_step_mm : float
        Erode and dilate only along the axes whose spacing is at most this
        (mm); the finest axis always.

    Returns
    -------
    list of (str, Focus)
        A description of each perturbation and the perturbed focus.
    """
    from ..segment._grid import ball_dilate, ball_erode

    pad = max(mask_voxels, 1) + 1
    shape = volume.hu.shape
    lo = [max(s.start - pad, 0) for s in focus.bbox_zyx]
    hi = [min(s.stop + pad, n) for s, n in zip(focus.bbox_zyx, shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    hu = np.asarray(volume.hu[box], dtype=np.float32)
    if smooth_mm > 0:
        sigma = [smooth_mm / d for d in volume.spacing_zyx_mm]
        hu = ndi.gaussian_filter(hu, sigma=sigma, mode="nearest")
    mask = np.zeros(hu.shape, dtype=bool)
    inner = tuple(slice(s.start - a, s.stop - a) for s, a in zip(focus.bbox_zyx, lo, strict=True))
    mask[inner] = focus.mask
    labels = seg.labels[box]
    allowed = ~(seg.bone_mask[box] | seg.metal_mask[box] | ((labels != 0) & (labels != focus.id)))
    # one-voxel face-connected steps (ball_erode/ball_dilate: scipy's binary morphology, faster)
    struct = ndi.generate_binary_structure(3, 1)

    def erode(m: np.ndarray, st: np.ndarray, n: int = 1) -> np.ndarray:
        for _ in range(n):
            m = ball_erode(m, st)
        return m

    def dilate(m: np.ndarray, st: np.ndarray, n: int = 1) -> np.ndarray:
        for _ in range(n):
            m = ball_dilate(m, st)
        return m

    boundary = mask & ~erode(mask, struct)
    shell = dilate(mask, struct) & ~mask & allowed
    step = _mask_step_structure(volume.spacing_zyx_mm, max_step_mm=mask_max_step_mm)

    candidates = [
        (f"threshold +{threshold_hu:g} HU", mask & ~(boundary & (hu < grow_min_hu + threshold_hu))),
        (f"threshold -{threshold_hu:g} HU", mask | (shell & (hu >= grow_min_hu - threshold_hu))),
    ]
    if mask_voxels > 0:
        candidates += [
            (f"mask eroded by {mask_voxels} voxel", erode(mask, step, mask_voxels)),
            (
                f"mask dilated by {mask_voxels} voxel",
                mask | (dilate(mask, step, mask_voxels) & allowed),
            ),
        ]
    out = []
    for name, m in candidates:
        if int(m.sum()) < _MIN_VOXELS:
            logger.debug("focus %d: perturbation %r leaves too few voxels; skipped", focus.id, name)
            continue
        out.append((name, _focus_from_mask(volume, focus.id, m, tuple(lo))))
    return out


def resampled_source(
    source: RoiSource, *, shift_voxels: float | tuple[float, float, float]
) -> RoiSource:
    """Resample the HU around a focus on a grid shifted by `shift_voxels` (z, y, x or all axes).

    The HU and smoothed HU are interpolated trilinearly at the shifted voxel
    centres (so they are also blurred a little, as a slightly different
    reconstruction grid would blur them); the focus, bone and metal masks stay
    as segmented, so the boundary now falls a fraction of a voxel differently
    on the image.

    Parameters
    ----------
    source : RoiSource
        The arrays around the focus (:func:`hostage.features.roi_source`).
    shift_voxels : float or tuple of 3 float
        Grid shift as a fraction of a voxel: per axis (z, y, x), or one value for all three.

    Returns
    -------
    RoiSource
        Same box and masks, resampled HU.

    Examples
    --------
    >>> from hostage.features._roi import RoiSource
    >>> hu = np.zeros((3, 3, 4), np.float32); hu[..., 2:] = 100.0
    >>> src = RoiSource(box_zyx=(slice(0, 3), slice(0, 3), slice(0, 4)), hu=hu, hu_smooth=hu,
    ...                 smooth_exact_zyx=(slice(0, 3), slice(0, 3), slice(0, 4)),
    ...                 labels=np.zeros(hu.shape, np.int32), bone=hu > 1e9, metal=hu > 1e9)
    >>> resampled_source(src, shift_voxels=0.5).hu[1, 1].tolist()
    [0.0, 0.0, 50.0, 100.0]
    """
    shift = (shift_voxels,) * 3 if isinstance(shift_voxels, (int, float)) else shift_voxels

    def interp(a: np.ndarray) -> np.ndarray:
        return np.asarray(ndi.shift(a, shift, order=1, mode="nearest"), dtype=np.float32)

    return dataclasses.replace(source, hu=interp(source.hu), hu_smooth=interp(source.hu_smooth))


def check_stability(
    volume: Volume,
    seg: Segmentation,
    features: Sequence[FocusFeatures],
    stages: Sequence[FocusStage],
    *,
    config: Config,
) -> list[FocusStage]:
    """Re-stage every focus under small perturbations; lower the confidence of flips.

    Parameters
    ----------
    volume : Volume
    seg : Segmentation
    features : sequence of FocusFeatures
        Features of ``seg.foci``, same order.
    stages : sequence of FocusStage
        Their stages as classified.
    config : Config
        The whole config (segment threshold, feature settings, classify rules).

    Returns
    -------
    list of FocusStage
        The stages with ``perturbed_stages`` filled, confidence scaled by the
        agreement and a reason naming any perturbation that changed the stage.
        Returned unchanged when ``[classify] stability_checks`` is false.
    """
    from ..features import families_for, measure, roi_source

    ccfg = config.classify
    if not ccfg.stability_checks:
        return list(stages)
    names = stage_feature_names()
    families = families_for(names)
    shift = ccfg.stability_resample_shift
    fine = _fine_axes(volume.spacing_zyx_mm, max_step_mm=ccfg.stability_mask_max_step_mm)
    shift_zyx = (
        shift if fine[0] else 0.0,
        shift if fine[1] else 0.0,
        shift if fine[2] else 0.0,
    )
    out = []
    for focus, st in zip(seg.foci, stages, strict=True):
        variants = perturbed_foci(
            volume,
            focus,
            seg,
            grow_min_hu=config.segment.focus_grow_min_hu,
            threshold_hu=ccfg.stability_threshold_hu,
            mask_voxels=ccfg.stability_mask_voxels,
            smooth_mm=config.segment.focus_smooth_mm,
            mask_max_step_mm=ccfg.stability_mask_max_step_mm,
        )
        # every perturbed mask lies within the focus's box widened by the largest step:
        # its arrays are cut, converted and smoothed once for all the measurements
        grow = max(ccfg.stability_mask_voxels, 1)
        box = tuple(
            slice(max(0, b.start - grow), min(n, b.stop + grow))
            for b, n in zip(focus.bbox_zyx, volume.shape_zyx, strict=True)
        )
        source = roi_source(volume, seg, box, config=config.features)  # type: ignore[arg-type]
        jobs = [(name, pf, source) for name, pf in variants]
        if shift > 0:
            jobs.append(
                (
                    f"image resampled {shift:g} voxel off the grid",
                    focus,
                    resampled_source(source, shift_voxels=shift_zyx),
                )
            )
        seen: list[tuple[str, Stage]] = []
        for name, pf, src in jobs:
            values = measure(
                volume,
                pf,
                seg,
                config=config.features,
                families=families,
                names=names,
                source=src,
            ).values
            seen.append((name, score_focus(values, config=ccfg).stage))
        out.append(_apply(st, seen, ccfg.min_confidence))
    return out


def _apply(st: FocusStage, seen: Sequence[tuple[str, Stage]], min_confidence: float) -> FocusStage:
    """Fold the perturbed stages into `st` (confidence, flags, reasons)."""
    if not seen:
        return st
    agree = 1 + sum(s == st.stage for _, s in seen)
    fraction = agree / (1 + len(seen))
    flips = [(n, s) for n, s in seen if s != st.stage]
    reasons = list(st.reasons)
    confidence = st.confidence * fraction
    if flips:
        what = "; ".join(f"{s.value} with {n}" for n, s in flips)
        reasons.insert(
            0,
            f"unstable: the stage changes under small perturbations ({what}); "
            f"confidence lowered to {confidence:.2f}",
        )
    else:
        reasons.append(
            f"stable: the same stage under all {len(seen)} perturbations "
            "(threshold, mask and resampling changes)"
        )
    return dataclasses.replace(
        st,
        confidence=confidence,
        reasons=tuple(reasons),
        perturbed_stages=tuple(s for _, s in seen),
        uncertain=st.uncertain or confidence < min_confidence,
    )
