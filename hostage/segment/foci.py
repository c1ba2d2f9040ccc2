"""Hyperdense soft-tissue foci: the :class:`Focus` object and :func:`find_foci`."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..config import SegmentConfig
from ._grid import CoarseGrid, box_erode, gaussian_mm, mask_bbox
from .body import fill_holes, fill_holes_per_slice

__all__ = ["Focus", "find_foci"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Focus:
    """One candidate HO focus.

    Attributes
    ----------
    id : int
        Focus id, equal to its label in :attr:`Segmentation.labels` (1, 2, ...).
    bbox_zyx : tuple of 3 slice
        Bounding box of the focus in voxel indices, (z, y, x) order.
    mask : ndarray of bool
        The focus inside its bounding box (shape = bbox shape), as skimage's
        ``RegionProperties.image``. Read-only.
    volume_mm3 : float
        Volume in mm³ (voxel count × voxel volume).
    centroid_lps_mm : tuple of 3 float
        Centroid in DICOM patient coordinates (LPS, mm).
    """

    id: int
    bbox_zyx: tuple[slice, slice, slice]
    mask: np.ndarray
    volume_mm3: float
    centroid_lps_mm: tuple[float, float, float]

    def __post_init__(self) -> None:
        shape = tuple(s.stop - s.start for s in self.bbox_zyx)
        if self.mask.dtype != bool or self.mask.shape != shape:
            raise ValueError(
                f"Focus {self.id}: mask must be bool with the bbox shape {shape}; "
                f"got {self.mask.dtype} {self.mask.shape}"
            )
        mask = self.mask.view()
        mask.flags.writeable = False
        object.__setattr__(self, "mask", mask)


def _hysteresis(low: np.ndarray, high: np.ndarray, *, min_seeds: int = 1) -> np.ndarray:
    """Return the 26-connected components of `low` holding at least `min_seeds` voxels of `high`."""
    lab, n = ndi.label(low, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return low
    keep = np.bincount(lab[high & low], minlength=n + 1) >= min_seeds
    keep[0] = False
    return keep[lab]


def _diameter_mm(mask: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """Largest extent of a voxel set: centre distance plus one voxel along that direction."""
    from scipy.spatial import ConvexHull, QhullError

    sp = np.asarray(spacing)
    pts = np.argwhere(mask) * sp
    if len(pts) == 1:
        return float(sp.min())
    if len(pts) > 8:
        with contextlib.suppress(QhullError):  # flat voxel sets: use all points
            pts = pts[ConvexHull(pts).vertices]
    d = np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=2)
    i, j = np.unravel_index(int(np.argmax(d)), d.shape)
    u = (pts[j] - pts[i]) / d[i, j]
    return float(d[i, j] + np.sqrt(np.sum((u * sp) ** 2)))


def _core_diameter_mm(
    mask: np.ndarray,
    smoothed: np.ndarray,
    spacing: tuple[float, float, float],
    muscle_hu: float,
    *,
    sub_slice_below_mm: float = 0.0,
) -> float:
    """Extent of the voxels at or above half-way from muscle to the focus's 99th percentile.

    The threshold extent of a small dense speck is inflated by the point spread;
    its half-maximum extent is its true size (a phlebolith of 5 mm stays 5 mm).

    Counted in whole voxels, the extent along a thick-slice axis is still a
    whole number of slices: a 5 mm phlebolith over three 2.5 mm slices (the
    outer two at half maximum) measures 7.5 mm. When that count is below
    `sub_slice_below_mm` and the slices are more than 1.5 times the pixel, the
    extent is measured again with the slices interpolated (linearly) at about
    the pixel size (:func:`_sub_slice`), where the half-maximum falls between
    two slices. `mask` and `smoothed` then need one slice of context above and
    below the focus (`mask` false there).
    """
    vals = smoothed[mask]
    level = 0.5 * (float(np.percentile(vals, 99)) + muscle_hu)
    d = _diameter_mm(mask & (smoothed >= level), spacing)
    if d >= sub_slice_below_mm or spacing[0] <= 1.5 * min(spacing[1:]):
        return d
    fine_mask, fine, fine_spacing = _sub_slice(mask, smoothed, spacing)
    return _diameter_mm(fine_mask & (fine >= level), fine_spacing)


def _few_specks(
    mask: np.ndarray,
    smoothed: np.ndarray,
    spacing: tuple[float, float, float],
    muscle_hu: float,
    *,
    grow_min_hu: float,
    seed_min_hu: float,
    min_diameter_mm: float,
    min_specks: int,
) -> bool:
    """Tell whether `mask` is 2 to `min_specks` - 1 separate specks that only the grouping joined.

    The parts are the 26-connected components of the mask at ``grow_min_hu``
    (the distance grouping closes the gaps between them). When there are fewer
    than `min_specks` parts (faint ones count too: haze is a sign of a cloud),
    at least two reach ``seed_min_hu`` and each of those is a speck on its own
    (half-maximum extent below `min_diameter_mm`, :func:`_core_diameter_mm`
    on that part), the group is specks side by side (two phleboliths in one
    vein), not the cloud of an amorphous focus: a cloud is many specks, and
    its haze usually joins them at ``grow_min_hu`` anyway.

    Examples
    --------
    >>> v = np.zeros((9, 9, 20), np.float32)
    >>> v[3:6, 3:6, 3:7] = 800.0
    >>> v[3:6, 3:6, 10:14] = 800.0
    >>> m = v > 0
    >>> m[3:6, 3:6, 7:10] = True  # the grouping's bridge
    >>> kw = dict(grow_min_hu=130.0, seed_min_hu=200.0, min_diameter_mm=6.0)
    >>> _few_specks(m, v, (1.0, 1.0, 1.0), 50.0, min_specks=3, **kw)
    True
    >>> _few_specks(m, v, (1.0, 1.0, 1.0), 50.0, min_specks=2, **kw)
    False
    """
    parts, n = ndi.label(mask & (smoothed >= grow_min_hu), structure=np.ones((3, 3, 3), bool))
    if n < 2 or n >= min_specks:
        return False
    seeded = 0
    for k, sl in enumerate(ndi.find_objects(parts), start=1):
        if sl is None:
            continue
        part = parts[sl] == k
        if not (smoothed[sl][part] >= seed_min_hu).any():
            continue  # a faint part: haze, not a speck
        seeded += 1
        if _core_diameter_mm(part, smoothed[sl], spacing, muscle_hu) >= min_diameter_mm:
            return False
    return seeded >= 2


def _sub_slice(
    mask: np.ndarray, values: np.ndarray, spacing: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Interpolate `values` linearly between slices at about the pixel size.

    A fine sample between slices i and i + 1 belongs to the mask when either
    slice does, so a value that falls below a level between the last slice of
    the mask and the next one places that end between them.

    Examples
    --------
    >>> m = np.zeros((3, 1, 1), bool); m[1] = True
    >>> v = np.array([0.0, 100.0, 50.0]).reshape(3, 1, 1)
    >>> fm, fv, sp = _sub_slice(m, v, (2.0, 1.0, 1.0))
    >>> sp, fv[:, 0, 0].tolist(), fm[:, 0, 0].tolist()
    ((1.0, 1.0, 1.0), [0.0, 50.0, 100.0, 75.0, 50.0], [True, True, True, True, True])
    """
    k = math.ceil(spacing[0] / min(spacing[1:]))
    n = values.shape[0]
    pos = np.arange((n - 1) * k + 1) / k
    lo = np.minimum(pos.astype(int), n - 2) if n > 1 else np.zeros(len(pos), int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo)[:, None, None]
    fine = (1.0 - w) * values[lo] + w * values[hi]
    fine_mask = mask[lo] | mask[hi]
    return fine_mask, fine, (spacing[0] / k, spacing[1], spacing[2])


def _faint_cloud(
    mask: np.ndarray,
    hu: np.ndarray,
    *,
    z_range: tuple[int, int],
    num_slices: int,
    max_hu: float,
    noise_hu: float = 0.0,
) -> bool:
    """Tell whether a small focus is a faint mineral cloud (kept below ``min_focus_volume_mm3``).

    An amorphous cloud of 6 mm or more holds little mineral above the grow
    threshold, so its mask is small; phleboliths and vascular calcifications of
    that volume are dense. Faint: the 90th percentile of `hu` over `mask`, less
    the 1.28 noise SDs (`noise_hu`) that noise alone adds to a 90th percentile,
    is at most `max_hu`. Unsmoothed, because smoothing spreads a small dense
    plaque into the range of a cloud; less the noise, because a sharp kernel's
    noise lifts a cloud's 90th percentile by as much as 80 HU. A focus on the
    scan's first or last slice (`z_range`, stop exclusive, of `num_slices`) is
    not faint: there the blurred tip of a bone beyond the scan looks the same.
    Nor is a focus on a single slice (`z_range` one slice long): averaged over a
    thick slice, a phlebolith reads as faint (a 5 mm one on 5 mm slices did).

    >>> m = np.ones((3, 4, 4), bool)
    >>> _faint_cloud(m, np.full(m.shape, 220.0), z_range=(5, 8), num_slices=20, max_hu=350.0)
    True
    >>> _faint_cloud(m, np.full(m.shape, 700.0), z_range=(5, 8), num_slices=20, max_hu=350.0)
    False
    >>> _faint_cloud(m, np.full(m.shape, 220.0), z_range=(17, 20), num_slices=20, max_hu=350.0)
    False
    >>> one = np.ones((1, 4, 4), bool)
    >>> _faint_cloud(one, np.full(one.shape, 220.0), z_range=(5, 6), num_slices=20, max_hu=350.0)
    False
    >>> noisy = np.full(m.shape, 220.0) + np.linspace(-130.0, 130.0, m.size).reshape(m.shape)
    >>> _faint_cloud(m, noisy, z_range=(5, 8), num_slices=20, max_hu=300.0)
    False
    >>> _faint_cloud(m, noisy, z_range=(5, 8), num_slices=20, max_hu=300.0, noise_hu=75.0)
    True
    """
    if z_range[0] <= 0 or z_range[1] >= num_slices or z_range[1] - z_range[0] < 2:
        return False
    return float(np.percentile(hu[mask], 90)) - 1.2816 * noise_hu <= max_hu


def _thinner_than(mask: np.ndarray, spacing: tuple[float, float, float], min_mm: float) -> bool:
    """Whether twice the largest inside distance (EDT, outside the array is outside) is below `min_mm`.

    A voxel that survives erosion by a box holding the ball of radius
    ``min_mm / 2`` (plus a relative 1e-6, far above rounding) is farther than
    that from every outside voxel, so the mask is not thinner: this cheap test
    (separable box erosion) settles most foci; the others take the distance
    transform. The answer is that of the distance transform alone.
    """
    half_mm = 0.5 * min_mm * (1.0 + 1e-6)
    half = tuple(math.floor(half_mm / s) for s in spacing)
    if box_erode(mask, half, border_value=False).any():  # type: ignore[arg-type]
        return False
    thick = 2.0 * float(ndi.distance_transform_edt(np.pad(mask, 1), sampling=spacing).max())
    return thick < min_mm


def _is_tubular(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    min_elongation: float,
    max_diameter_mm: float,
    min_length_mm: float,
) -> bool:
    """Long thin tube: sqrt(λ1/λ2) ≥ min_elongation, length sqrt(12 λ1) ≥ min_length, thin."""
    pts = np.argwhere(mask) * np.asarray(spacing)
    if len(pts) < 4:
        return False
    cov = np.cov(pts.T, bias=True) + np.diag(np.asarray(spacing) ** 2 / 12.0)
    ev = np.sort(np.linalg.eigvalsh(cov))
    elong = float(np.sqrt(ev[2] / ev[1]))
    length = float(np.sqrt(12.0 * ev[2]))
    if elong < min_elongation or length < min_length_mm:
        return False
    thick = 2.0 * float(ndi.distance_transform_edt(mask, sampling=spacing).max())
    return thick <= max_diameter_mm


def _without_vessels(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    config: SegmentConfig,
    min_length_mm: float,
) -> np.ndarray:
    """Return `mask` without the vessels in it (:func:`_vessel_part`).

    Run on the hysteresis mask of a crop before the distance grouping: a
    contrast-filled vessel passing a few millimetres from a focus would
    otherwise be closed onto it and the two dropped together as one tube.
    Only components at least `min_length_mm` long (bounding-box diagonal) are
    tested. A vessel is found by its typical cross-section along its axis,
    which a focus against it does not change, and only the tube itself is
    removed (:func:`_vessel_part`): the focus, a bulge on it, stays.
    """
    lab, _ = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    out = mask
    sp = np.asarray(spacing)
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        extent = float(
            np.linalg.norm([(q.stop - q.start) * d for q, d in zip(sl, sp, strict=True)])
        )
        if extent < min_length_mm:
            continue
        comp = lab[sl] == k
        tube = _vessel_part(
            comp,
            spacing,
            min_elongation=config.tubular_min_elongation,
            max_diameter_mm=config.tubular_max_diameter_mm,
            min_length_mm=min_length_mm,
        )
        if tube is not None:
            if out is mask:
                out = mask.copy()
            out[sl] &= ~tube
            logger.debug(
                "removed a vessel (%d of %d voxels) at %s before grouping",
                int(tube.sum()),
                int(comp.sum()),
                sl,
            )
    return out


def _vessel_part(
    mask: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    min_elongation: float,
    max_diameter_mm: float,
    min_length_mm: float,
    bin_mm: float = 4.0,
) -> np.ndarray | None:
    """Return the voxels of a component that form a vessel, or None when it holds no vessel.

    The voxels are binned by their position along the main (first principal)
    axis in steps of `bin_mm`. The typical cross-section is the median count
    of the inner bins (the two end bins, cut by the crop or the tube's ends,
    left out), which a focus against the vessel does not move: its diameter
    ``d`` (of a disc of that area) must be at most `max_diameter_mm`, the
    length along the axis at least `min_length_mm`, and the elongation
    ``(2 / √3) · length / d`` (sqrt(λ1 / λ2) of a cylinder, as
    :func:`_is_tubular`) at least `min_elongation`.

    A bin holding more than 1.5 times the median count carries something
    beside the tube (a focus touching the vessel). The tube's centre line
    runs through the centroids of the other bins (interpolated along the axis
    across the crowded ones); the vessel is every voxel within the median
    radius plus one voxel of that line, the whole component when no bin is
    crowded.

    Examples
    --------
    >>> tube = np.zeros((60, 16, 16), bool); tube[:, 6:10, 6:10] = True
    >>> kw = dict(min_elongation=4.0, max_diameter_mm=14.0, min_length_mm=48.0)
    >>> bool((_vessel_part(tube, (1.0, 1.0, 1.0), **kw) == tube).all())
    True
    >>> tube[28:40, 1:16, 9:16] = True  # a focus against the vessel
    >>> part = _vessel_part(tube, (1.0, 1.0, 1.0), **kw)
    >>> bool(part[:, 6:10, 6:10].all()), bool(part[30, 1:4, 13:16].any())
    (True, False)
    >>> _vessel_part(tube[20:50], (1.0, 1.0, 1.0), **kw) is None  # too short
    True
    """
    sp = np.asarray(spacing)
    idx = np.argwhere(mask)
    pts = idx * sp
    mean = pts.mean(axis=0)
    _, _, vt = np.linalg.svd((pts - mean)[:: max(1, len(pts) // 20000)], full_matrices=False)
    u = vt[0]
    t = (pts - mean) @ u
    length = float(t.max() - t.min()) + float(np.sqrt(np.sum((u * sp) ** 2)))
    b = ((t - t.min()) // bin_mm).astype(int)
    counts = np.bincount(b)
    if length < min_length_mm or counts.size < 5:
        return None
    median = float(np.median(counts[1:-1]))
    diameter = 2.0 * math.sqrt(median * float(np.prod(sp)) / (bin_mm * math.pi))
    if diameter > max_diameter_mm or 2.0 / math.sqrt(3.0) * length < min_elongation * diameter:
        return None
    crowded = counts > 1.5 * median
    crowded[0] = crowded[-1] = False
    if not crowded.any():
        return mask
    normal = np.flatnonzero(~crowded & (counts > 0))
    centres = np.array([pts[b == k].mean(axis=0) for k in normal])
    tc = (centres - mean) @ u
    line = np.stack([np.interp(t, tc, centres[:, a]) for a in range(3)], axis=1)
    off = pts - line
    off -= np.outer(off @ u, u)
    keep = np.linalg.norm(off, axis=1) <= 0.5 * diameter + float(sp.max())
    out = np.zeros_like(mask)
    out[tuple(idx[keep].T)] = True
    return out


def _bone_give_back(
    hu: np.ndarray,
    *,
    grid: CoarseGrid,
    native: np.ndarray,
    box: tuple[slice, slice, slice],
    smoothed: np.ndarray,
    focus: np.ndarray,
    near_bone: np.ndarray,
    dense_min_hu: float,
    envelope_mm: float,
    edge_width_mm: float,
    smooth_mm: float,
) -> np.ndarray:
    """Dense native-bone voxels of one crop that belong to a focus: HO the coarse skeleton swallowed.

    Everything happens on the region of the crop within `envelope_mm` (along
    each axis) of both the focus's dense voxels and the native blocks, widened
    by the halo. There the bone is rebuilt at full resolution, with the three
    radii of context its opening and the distances need (beyond the scan's
    edges the bone is continued by edge replication): the voxels of
    native-bone blocks whose smoothed HU reach `dense_min_hu`, with the bone's
    interior (per-slice holes, and voxels at least one block inside the native
    blocks). Its opening by a ball of
    `envelope_mm` is the bone's smooth envelope (shaft, cortex, head); d is
    the distance (mm) beyond it. The halo is the blur halo of normal cortex:
    `edge_width_mm` plus one voxel step (the largest spacing).

    * *Seeds*: dense voxels of `focus` farther than the halo beyond the
      envelope (growth never starts from bone alone, nor from the bone's own
      halo).
    * *Candidates*: dense bone with 0 < d ≤ `envelope_mm`, within
      `envelope_mm` of the focus's dense voxels, never in the first or last
      slice of the scan (a shaft cut by the scan's end stands out of its
      envelope). The dense voxels of the one-voxel ring `near_bone` keeps out
      of the focus (near it) connect them.
    * A connected piece (26-neighbourhood) of candidates and dense focus
      voxels is given back when it holds at least one coarse block's worth
      of seeds (a fleck of the bone's halo outside the native blocks holds
      less); of it, the part farther than the halo beyond the envelope (the
      corners the ball rounds off normal cortex stay within it) and what
      lies within the halo plus one voxel of that part (its base), as far
      as it stays connected to those seeds.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT values (HU) of the whole volume.
    grid : CoarseGrid
        The coarse grid.
    native : (cz, cy, cx) ndarray of bool
        Native bone blocks.
    box : tuple of 3 slice
        The focus crop (full-resolution indices).
    smoothed : ndarray of float32
        Smoothed HU of the crop.
    focus : ndarray of bool
        The focus's soft-tissue voxels in the crop.
    near_bone : ndarray of bool
        Native blocks of the crop dilated by one voxel (kept out of `focus`).
    dense_min_hu : float
        Dense voxels (bone and focus) reach this smoothed HU.
    envelope_mm : float
        Radius (mm) of the ball that opens the bone; also how far beyond the
        envelope bone may be given back.
    edge_width_mm : float
        The scanner's 10-90 % edge width on native cortex (mm).
    smooth_mm : float
        Gaussian smoothing (mm) of the widened crop.

    Returns
    -------
    ndarray of bool
        The voxels of the crop given back to the focus (crop shape).
    """
    from ._grid import ball_dilate, ball_structure, box_dilate

    spacing = grid.spacing_zyx_mm
    empty = np.zeros(focus.shape, bool)
    dense = smoothed >= dense_min_hu
    focus_dense = focus & dense
    if not focus_dense.any():
        return empty
    ball = ball_structure(envelope_mm, spacing_zyx_mm=spacing)
    half = tuple(n // 2 for n in ball.shape)
    # bone can only be given back near both the focus and the native blocks
    roi = box_dilate(focus_dense, half) & box_dilate(grid.upsample(native, box), (1, 1, 1))
    if not roi.any():
        return empty
    # the blur halo of normal cortex: the scanner's edge width plus one voxel step
    halo_mm = edge_width_mm + max(spacing)
    # the region, widened so that it holds every focus voxel within the halo of the bone
    area = _pad_box(
        mask_bbox(roi),
        tuple(math.ceil(halo_mm / s) + 1 for s in spacing),
        focus.shape,
    )
    full = tuple(slice(b.start + a.start, b.start + a.stop) for b, a in zip(box, area, strict=True))
    # the envelope within envelope_mm of the region depends on bone three radii away
    want = [(f.start - 3 * h, f.stop + 3 * h) for f, h in zip(full, half, strict=True)]
    big = tuple(slice(max(0, lo), min(n, hi)) for (lo, hi), n in zip(want, hu.shape, strict=True))
    nat = grid.upsample(native, big)
    s_big = gaussian_mm(hu[big], spacing, smooth_mm)
    deep = box_erode(nat, grid.factors_zyx)
    bone = nat & fill_holes_per_slice((nat & (s_big >= dense_min_hu)) | deep)
    # missing context beyond the scan's edges: the bone continues (edge replication)
    ext = [(b.start - lo, hi - b.stop) for (lo, hi), b in zip(want, big, strict=True)]
    # the envelope on the region widened by one radius (the erosion on two radii), and
    # what lies within envelope_mm and within the halo of it on the region
    inner = tuple(slice(h, -h if h else None) for h in half)
    eroded = _morph_in_bbox(np.pad(bone, ext, mode="edge"), ball, dilate=False)[inner]
    env_ctx = _morph_in_bbox(eroded, ball, dilate=True)[inner]
    env = env_ctx[inner]
    within_r = _morph_in_bbox(env_ctx, ball, dilate=True)[inner]
    within_halo = _morph_in_bbox(
        env_ctx, ball_structure(halo_mm, spacing_zyx_mm=spacing), dilate=True
    )[inner]
    around = _pad_box(area, half, focus.shape)
    near = np.zeros(focus.shape, bool)
    near[around] = _morph_in_bbox(focus_dense[around], ball, dilate=True)
    bone_a = bone[
        tuple(slice(f.start - g.start, f.stop - g.start) for f, g in zip(full, big, strict=True))
    ]
    # the focus's own dense voxels: beyond the blur halo of the bone's envelope (outside
    # the region they are farther than the halo from native blocks)
    beyond_halo = np.ones(focus.shape, bool)
    beyond_halo[area] = ~within_halo
    seeds = focus_dense & beyond_halo
    if not seeds.any():
        return empty
    # dense bone beyond the envelope, within envelope_mm of it and of the focus's dense voxels
    give = np.zeros(focus.shape, bool)
    give[area] = bone_a & within_r & ~env
    give &= dense
    # no bone is given back at the scan's first or last slice (cut ends of a shaft)
    for z in (0, hu.shape[0] - 1):
        if box[0].start <= z < box[0].stop:
            give[z - box[0].start] = False
    give &= near
    if not give.any():
        return empty
    bone_box = np.zeros(focus.shape, bool)
    bone_box[area] = bone_a
    bridge = dense & near_bone & ~bone_box & near
    # growth starts from at least one coarse block of the focus's own dense voxels
    # (a fleck of the bone's halo outside the native blocks is smaller)
    block = int(np.prod(grid.factors_zyx))
    grown = _hysteresis(give | bridge | focus_dense, seeds, min_seeds=block) & (give | bridge)
    # the part beyond the halo, and its base: what lies within the halo (plus a voxel) of it
    core = grown & give & beyond_halo
    if not core.any():
        return empty
    base = ball_structure(halo_mm + max(spacing), spacing_zyx_mm=spacing)
    around = _pad_box(mask_bbox(core), tuple(n // 2 for n in base.shape), focus.shape)
    out = np.zeros(focus.shape, bool)
    out[around] = grown[around] & ball_dilate(core[around], base)
    # what is given back stays connected to those seeds
    return out & _hysteresis(out | focus_dense, seeds, min_seeds=block)


def _morph_in_bbox(mask: np.ndarray, structure: np.ndarray, *, dilate: bool) -> np.ndarray:
    """Ball dilation (0 outside the array) or erosion of `mask`, computed on its bounding box only.

    The same result as :func:`~hostage.segment._grid.ball_dilate` /
    :func:`~hostage.segment._grid.ball_erode` on the whole array: outside
    the box (widened by the structure's half-widths for a dilation) the
    answer is False either way.
    """
    from ._grid import ball_dilate, ball_erode

    out = np.zeros(mask.shape, bool)
    if not mask.any():
        return out
    pad = tuple(n // 2 for n in structure.shape) if dilate else (0,) * mask.ndim
    box = mask_bbox(mask, pad)
    out[box] = (ball_dilate if dilate else ball_erode)(mask[box], structure)
    return out


def _pad_box(
    box: tuple[slice, ...], pad: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[slice, ...]:
    """`box` widened by `pad` voxels per axis, clipped to `shape`."""
    return tuple(
        slice(max(0, b.start - p), min(n, b.stop + p))
        for b, p, n in zip(box, pad, shape, strict=True)
    )


def find_foci(
    hu: np.ndarray,
    *,
    grid: CoarseGrid,
    block_mean_hu: np.ndarray,
    block_max_hu: np.ndarray,
    noise_hu: float,
    muscle_hu: float,
    candidates: np.ndarray,
    native: np.ndarray,
    config: SegmentConfig,
    edge_width_mm: float = math.nan,
) -> list[tuple[tuple[slice, slice, slice], np.ndarray]]:
    """Find hyperdense soft-tissue foci: coarse hysteresis + grouping, refined per crop.

    On the coarse grid, blocks of `candidates` whose mean is at least
    ``focus_grow_min_hu`` form components; those holding a seed block (mean at
    least ``focus_seed_min_hu``, or maximum at least that plus three noise SDs)
    are kept (hysteresis) and grouped when closer than
    ``group_distance_mm`` (dilation by half of it). Each group is refined at
    full resolution in its own crop: Gaussian ``focus_smooth_mm``, hysteresis
    with the same thresholds, vessels taken out (:func:`_without_vessels`: a
    tube by the tubular limits below, measured on its typical cross-section,
    so a focus against it stays), closing by a ball of ``group_distance_mm / 2``
    (one cloud of specks becomes one focus), hole filling (marrow belongs to
    the focus), native bone (plus one voxel) removed. Dense native bone that
    stands out of the bone's smooth envelope next to the focus is given back to
    it (``focus_bone_envelope_mm``, :func:`_bone_give_back`: HO the coarse
    skeleton swallowed). Each resulting component is kept if its volume is at
    least ``min_focus_volume_mm3`` (or ``faint_focus_min_volume_mm3`` for a faint
    cloud, :func:`_faint_cloud`), its largest diameter at half maximum (between
    muscle and its 99th percentile) at least ``min_focus_diameter_mm``, its
    thickness (twice the largest distance from inside to outside) at least
    ``min_focus_thickness_mm`` (not a vascular plaque), and it is not tubular (a
    vessel: sqrt(λ1/λ2) of its position covariance ≥ ``tubular_min_elongation``,
    length sqrt(12 λ1) ≥ ``tubular_min_length_mm`` (or 80 % of a shorter
    scan) and thickness ≤
    ``tubular_max_diameter_mm``).

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT values (HU).
    grid : CoarseGrid
        The coarse grid.
    block_mean_hu : (cz, cy, cx) ndarray of float32
        Block means.
    block_max_hu : (cz, cy, cx) ndarray
        Block maxima.
    noise_hu : float
        Noise SD of the scan (HU).
    muscle_hu : float
        Muscle HU of the scan (the half-maximum size of small specks).
    candidates : (cz, cy, cx) ndarray of bool
        Blocks where foci may lie (inside the body, not metal, not native bone).
    native : (cz, cy, cx) ndarray of bool
        Native bone blocks.
    config : SegmentConfig
        Thresholds and sizes.
    edge_width_mm : float
        The scan's 10-90 % edge width on native cortex
        (:attr:`ReferenceTissues.edge_width_mm`); the blur halo of the envelope
        rule. NaN (not measured) skips that rule.

    Returns
    -------
    list of (bbox_zyx, mask)
        Full-resolution bounding box and the focus mask inside it, in scan order.
    """
    from ._grid import ball_dilate, ball_erode, ball_structure, box_dilate, mm_to_half

    spacing = grid.spacing_zyx_mm
    cs = grid.coarse_spacing_zyx_mm
    low = candidates & (block_mean_hu >= config.focus_grow_min_hu)
    if not low.any():
        return []
    # The coarse hysteresis and grouping only reach `half` blocks beyond `low`: they run
    # on its bounding box widened by that much (about 1 % of the grid on a 512 x 512 x 300
    # scan). ndi.label numbers components in scan order, which a crop keeps, so the group
    # labels are the same as on the whole grid.
    half = mm_to_half(config.group_distance_mm / 2.0, cs)
    sub = mask_bbox(low, tuple(h + 1 for h in half))
    low = low[sub]
    # a seed block holds a voxel clearly above the seed level (3 noise SDs above it), or its mean is
    seeds = low & (
        (block_mean_hu[sub] >= config.focus_seed_min_hu)
        | (block_max_hu[sub] >= config.focus_seed_min_hu + 3.0 * noise_hu)
    )
    kept_sub = _hysteresis(low, seeds)
    if not kept_sub.any():
        return []
    glab_sub, _ = ndi.label(box_dilate(kept_sub, half), structure=np.ones((3, 3, 3), bool))
    glab = np.zeros(block_mean_hu.shape, np.int32)
    glab[sub] = glab_sub
    offset = [b.start for b in sub]
    pad_mm = config.group_distance_mm + 3.0 * max(config.focus_smooth_mm, 1.0) + max(spacing)
    close_ball = ball_structure(config.group_distance_mm / 2.0, spacing_zyx_mm=spacing)
    voxel_mm3 = float(np.prod(spacing))
    envelope_on = config.focus_bone_envelope_mm > 0 and math.isfinite(edge_width_mm)
    # a vessel runs through the scan: long, or most of a short scan
    vessel_min_mm = min(config.tubular_min_length_mm, 0.8 * hu.shape[0] * spacing[0])
    found: list[tuple[tuple[slice, slice, slice], np.ndarray]] = []
    # coarse pre-filter: a group must be able to hold a reportable focus
    block_mm3 = float(np.prod(cs))
    min_mm3 = min(config.min_focus_volume_mm3, config.faint_focus_min_volume_mm3)
    group_mm3 = np.bincount(glab_sub[kept_sub], minlength=glab_sub.max() + 1) * block_mm3
    for g, sl_sub in enumerate(ndi.find_objects(glab_sub), start=1):
        if sl_sub is None:
            continue
        sl = tuple(slice(o + b.start, o + b.stop) for o, b in zip(offset, sl_sub, strict=True))
        if group_mm3[g] < 0.25 * min_mm3:
            continue
        ext = max((s.stop - s.start) * c for s, c in zip(sl, cs, strict=True))
        if ext < 0.5 * config.min_focus_diameter_mm:
            continue
        box = grid.to_full_bbox(sl, pad_mm=pad_mm)
        # the group's blocks, hole-filled so that a focus's marrow belongs to it
        csl = tuple(
            slice(b.start // f, -(-b.stop // f)) for b, f in zip(box, grid.factors_zyx, strict=True)
        )
        region_c = np.zeros(glab.shape, bool)
        region_c[csl] = fill_holes(glab[csl] == g)
        region = grid.upsample(region_c, box)
        nat = grid.upsample(native, box)
        nat = ball_dilate(nat, ndi.generate_binary_structure(3, 1)) if nat.any() else nat
        s = gaussian_mm(hu[box], spacing, config.focus_smooth_mm)
        low_f = (s >= config.focus_grow_min_hu) & region & ~nat
        m = _hysteresis(low_f, low_f & (s >= config.focus_seed_min_hu))
        # a vessel goes before the distance grouping, which would join it to a focus beside it
        m = _without_vessels(m, spacing, config=config, min_length_mm=vessel_min_mm)
        if not m.any():
            continue
        m = ball_erode(
            ball_dilate(np.pad(m, 1 + max(close_ball.shape) // 2), close_ball), close_ball
        )  # ndi.binary_closing, 4 times faster
        p = 1 + max(close_ball.shape) // 2
        m = m[p:-p, p:-p, p:-p]
        m = fill_holes(m)
        m = fill_holes_per_slice(m) & region & ~nat
        if envelope_on and nat.any():
            give = _bone_give_back(
                hu,
                grid=grid,
                native=native,
                box=box,
                smoothed=s,
                focus=m,
                near_bone=nat,
                dense_min_hu=config.focus_seed_min_hu,
                envelope_mm=config.focus_bone_envelope_mm,
                edge_width_mm=edge_width_mm,
                smooth_mm=config.focus_smooth_mm,
            )
            if give.any():
                m = fill_holes(m | give)
        lab, _ = ndi.label(m, structure=np.ones((3, 3, 3), bool))
        for k, csl in enumerate(ndi.find_objects(lab), start=1):
            if csl is None:
                continue
            cm = lab[csl] == k
            where = tuple(
                (b.start + c.start, b.start + c.stop) for b, c in zip(box, csl, strict=True)
            )
            mm3 = cm.sum() * voxel_mm3
            if mm3 < config.min_focus_volume_mm3 and not (
                mm3 >= config.faint_focus_min_volume_mm3
                and _faint_cloud(
                    cm,
                    hu[box][csl],
                    z_range=(where[0][0], where[0][1]),
                    num_slices=hu.shape[0],
                    max_hu=config.faint_focus_max_hu,
                    noise_hu=noise_hu,
                )
            ):
                logger.debug("dropped %.0f mm3 at %s: below min_focus_volume_mm3", mm3, where)
                continue
            # one slice of context above and below for the sub-slice extent
            z0, z1 = max(csl[0].start - 1, 0), min(csl[0].stop + 1, s.shape[0])
            cz = np.zeros((z1 - z0, *cm.shape[1:]), bool)
            cz[csl[0].start - z0 : csl[0].start - z0 + cm.shape[0]] = cm
            core_mm = _core_diameter_mm(
                cz,
                s[slice(z0, z1), csl[1], csl[2]],
                spacing,
                muscle_hu,
                sub_slice_below_mm=config.min_focus_diameter_mm + spacing[0],
            )
            if core_mm < config.min_focus_diameter_mm:
                logger.debug("dropped a speck at %s: %.1f mm at half maximum", where, core_mm)
                continue
            if _few_specks(
                cm,
                s[csl],
                spacing,
                muscle_hu,
                grow_min_hu=config.focus_grow_min_hu,
                seed_min_hu=config.focus_seed_min_hu,
                min_diameter_mm=config.min_focus_diameter_mm,
                min_specks=config.group_min_specks,
            ):
                logger.debug(
                    "dropped a group of fewer than %d specks at %s", config.group_min_specks, csl
                )
                continue
            # a thin shell of mineral (a plaque on a vessel wall) is not a focus
            if _thinner_than(cm, spacing, config.min_focus_thickness_mm):
                logger.debug("dropped a thin shell (plaque) at %s", where)
                continue
            if _is_tubular(
                cm,
                spacing,
                min_elongation=config.tubular_min_elongation,
                max_diameter_mm=config.tubular_max_diameter_mm,
                min_length_mm=vessel_min_mm,
            ):
                logger.debug("dropped a tubular candidate (vessel) at %s", csl)
                continue
            full = tuple(
                slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, csl, strict=True)
            )
            found.append((full, cm))  # type: ignore[arg-type]
    return found
