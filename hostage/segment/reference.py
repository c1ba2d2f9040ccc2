"""Reference tissues of the same scan: muscle, fat, native cortex, noise and the cortex edge width."""

from __future__ import annotations

import logging
import math

import numpy as np

from ._grid import CoarseGrid, box_dilate, box_erode

__all__ = ["cortex_edge_width_mm", "measure_reference"]

logger = logging.getLogger(__name__)


def _even_subsample(idx: np.ndarray, n: int) -> np.ndarray:
    if len(idx) <= n:
        return idx
    return idx[np.linspace(0, len(idx) - 1, n).astype(int)]


def _native_surface(native: np.ndarray) -> np.ndarray:
    nz = [np.flatnonzero(native.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    box = tuple(slice(max(0, int(n[0]) - 1), int(n[-1]) + 2) for n in nz)
    out = np.zeros_like(native)
    out[box] = native[box] & ~box_erode(native[box], (1, 1, 1))
    return out


def _outward_normals(
    native: np.ndarray, idx: np.ndarray, spacing: tuple[float, float, float]
) -> np.ndarray:
    """Outward normals (z, y, x) at coarse surface blocks: minus the centroid offset of bone nearby."""
    offs = np.argwhere(np.ones((3, 3, 3), bool)) - 1
    acc = np.zeros((len(idx), 3))
    shape = np.asarray(native.shape)
    for o in offs:
        q = idx + o
        ok = np.all((q >= 0) & (q < shape), axis=1)
        val = np.zeros(len(idx))
        val[ok] = native[q[ok, 0], q[ok, 1], q[ok, 2]]
        acc += val[:, None] * (o * np.asarray(spacing))[None, :]
    n = -acc
    norm = np.linalg.norm(n, axis=1)
    good = norm > 0
    n[good] /= norm[good, None]
    return n


def cortex_edge_width_mm(
    hu: np.ndarray,
    points_mm: np.ndarray,
    normals: np.ndarray,
    *,
    spacing_zyx_mm: tuple[float, float, float],
    cortex_min_hu: float,
    max_normal_z: float,
) -> tuple[float, int]:
    """10-90 % width of the mean native-cortex/soft-tissue edge along outward normals.

    Each profile (−8 to +8 mm, 0.25 mm steps, trilinear) must show a cortex
    peak of at least `cortex_min_hu` at or inside +2 mm, soft tissue
    (−200..200 HU) over its last 3 mm, and no second bone beyond the edge.
    Valid profiles are aligned on their half-maximum crossing and averaged;
    the width is measured on the mean (:func:`~hostage.features._geometry.edge_width_mm`).

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT values (HU), full resolution.
    points_mm : (N, 3) ndarray of float
        Points near the bone surface, index × spacing (mm).
    normals : (N, 3) ndarray of float
        Outward unit normals.
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    cortex_min_hu : float
        Minimum cortex peak (HU).
    max_normal_z : float
        Only normals with |n_z| at most this (in-plane edges) are used.

    Returns
    -------
    width_mm : float
        NaN when fewer than 20 profiles are valid.
    count : int
        Number of valid profiles.
    """
    from ..features._geometry import edge_width_mm, sample_profiles

    keep = np.abs(normals[:, 0]) <= max_normal_z
    keep &= np.linalg.norm(normals, axis=1) > 0.5
    if keep.sum() < 20:
        return math.nan, 0
    step = 0.25
    s = np.arange(-8.0, 8.0 + step / 2, step)
    prof = sample_profiles(hu, points_mm[keep], normals[keep], s, spacing_zyx_mm=spacing_zyx_mm)
    inner = s <= 2.0
    ipk = np.argmax(np.where(inner[None, :], prof, -np.inf), axis=1)
    peak = prof[np.arange(len(prof)), ipk]
    base = np.median(prof[:, s >= 5.0], axis=1)
    # the highest sample from 3 mm beyond the peak on (-inf when there is none)
    cols = np.arange(prof.shape[1])
    beyond = np.where(cols[None, :] >= ipk[:, None] + 12, prof, -np.inf).max(axis=1)
    ok = (peak >= cortex_min_hu) & (np.abs(base) <= 200) & (beyond < base + 0.3 * (peak - base))
    if ok.sum() < 20:
        return math.nan, int(ok.sum())
    # align on the half-maximum crossing after the peak
    grid = np.arange(-5.0, 5.0 + step / 2, step)
    prof, ipk = prof[ok], ipk[ok]
    halves = 0.5 * (peak[ok] + base[ok])
    # first sample at or after the peak that is at or below half maximum
    below = (cols[None, :] >= ipk[:, None]) & (prof <= halves[:, None])
    first = np.argmax(below, axis=1)
    aligned = []
    for r in np.flatnonzero(below.any(axis=1) & (first > ipk)):
        row, half, j = prof[r], halves[r], int(first[r])
        y0, y1 = row[j - 1], row[j]
        t = (y0 - half) / (y0 - y1)
        s_half = s[j - 1] + t * step
        aligned.append(np.interp(grid + s_half, s, row))
    if len(aligned) < 20:
        return math.nan, len(aligned)
    mean = np.mean(aligned, axis=0)
    width, _, _ = edge_width_mm(mean, grid, outside_mm=2.0)
    return float(width), len(aligned)


def measure_reference(
    hu: np.ndarray,
    *,
    grid: CoarseGrid,
    block_mean_hu: np.ndarray,
    block_max_hu: np.ndarray,
    body: np.ndarray,
    native: np.ndarray,
    cortex_min_hu: float,
    max_profiles: int,
    max_normal_z: float,
) -> tuple[dict[str, float], list[str]]:
    """Measure muscle, fat, native cortex, noise and the cortex edge width of one scan.

    * muscle: median block mean among body blocks between −20 and 120 HU;
    * fat: median block mean among body blocks between −200 and −40 HU;
    * noise: median standard deviation of 5 × 5 full-resolution pixels (one
      slice) at the centre of homogeneous muscle blocks (block and its 6
      neighbours within 15 HU of the muscle level, or the block alone when
      fewer than 20 qualify);
    * cortex: median block maximum over the surface blocks of native bone;
    * edge width: :func:`cortex_edge_width_mm` at those surface blocks.

    Each value is NaN when fewer than 20 blocks (profiles) qualify.

    Returns
    -------
    values : dict of str to float
        Keyword arguments of :class:`~hostage.segment.ReferenceTissues`.
    warnings : list of str
    """
    warnings: list[str] = []
    inner = body.copy()
    if native.any():
        nz = [
            np.flatnonzero(native.any(axis=tuple(a for a in range(3) if a != ax)))
            for ax in range(3)
        ]
        box = tuple(slice(max(0, int(n[0]) - 2), int(n[-1]) + 3) for n in nz)
        inner[box] &= ~box_dilate(native[box], (2, 2, 2))
    vals = block_mean_hu[inner]
    musc = vals[(vals >= -20) & (vals <= 120)]
    fat = vals[(vals >= -200) & (vals <= -40)]
    muscle_hu = float(np.median(musc)) if musc.size >= 20 else math.nan
    fat_hu = float(np.median(fat)) if fat.size >= 20 else math.nan
    noise = math.nan
    if math.isfinite(muscle_hu):
        # flat indices are in argwhere's (C) order: subsample first, then unravel
        flat = np.flatnonzero(inner & (np.abs(block_mean_hu - muscle_hu) <= 15))
        flat = _even_subsample(flat, 4000)
        cand = np.stack(np.unravel_index(flat, block_mean_hu.shape), axis=1)
        shape = np.asarray(block_mean_hu.shape)
        good = np.all((cand > 0) & (cand < shape - 1), axis=1)
        cand = cand[good]
        homog = cand
        for o in np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)]):
            q = homog + o
            homog = homog[np.abs(block_mean_hu[q[:, 0], q[:, 1], q[:, 2]] - muscle_hu) <= 15]
        # small blocks are noisy themselves: then the level test alone must do
        cand = homog if len(homog) >= 20 else cand
        cand = _even_subsample(cand, 400)
        f = np.asarray(grid.factors_zyx)
        if len(cand) >= 20:
            # a 5 x 5 pixel window of one slice at each homogeneous block's centre
            centre = cand * f + f // 2
            sds = []
            for z, y, x in centre:
                win = hu[z, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3]
                sds.append(float(np.std(win, ddof=1)))
            noise = float(np.median(sds))
    cortex_hu = math.nan
    edge = math.nan
    if native.any():
        surf = np.argwhere(_native_surface(native))
        if len(surf) >= 20:
            cortex_hu = float(np.median(block_max_hu[surf[:, 0], surf[:, 1], surf[:, 2]]))
            pick = _even_subsample(surf, max_profiles)
            normals = _outward_normals(native, pick, grid.coarse_spacing_zyx_mm)
            edge, count = cortex_edge_width_mm(
                hu,
                grid.centres_mm(pick),
                normals,
                spacing_zyx_mm=grid.spacing_zyx_mm,
                cortex_min_hu=cortex_min_hu,
                max_normal_z=max_normal_z,
            )
            logger.debug("cortex edge width %.2f mm from %d profiles", edge, count)
    else:
        warnings.append(
            "no native bone found: the scanner edge width (margin_sharpness_ratio) is not measured"
        )
    if not math.isfinite(edge) and native.any():
        warnings.append(
            "the native cortex edge could not be measured: margin_sharpness_ratio is undefined"
        )
    return (
        {
            "muscle_hu": muscle_hu,
            "fat_hu": fat_hu,
            "cortex_hu": cortex_hu,
            "noise_hu": noise,
            "edge_width_mm": edge,
        },
        warnings,
    )
