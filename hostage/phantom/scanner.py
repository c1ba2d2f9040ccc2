"""The scanner model: from analytic anatomy and lesions to a noisy, blurred CT grid.

Steps, applied slab by slab so memory stays bounded for any volume size:

1. **Fine sampling in z.** Each output slice is covered by ``k`` internal planes
   (``k = ceil(spacing_z / dz_internal)``, ``dz_internal`` at most 0.6 mm and at
   most half the slice thickness), plus planes beyond it when the slice is thicker
   than the spacing. Anatomy is rendered on each plane with sub-voxel coverage;
   lesions are area-averaged from their own fine grids onto the planes.
2. **Slice sensitivity profile.** An output slice is the weighted sum of the
   internal planes under a rectangle of width ``slice_thickness_mm`` convolved
   with the point-spread Gaussian along z.
3. **In-plane point-spread blur.** A Gaussian of ``psf_fwhm_mm`` full width at
   half maximum.
4. **Noise.** Gaussian noise of standard deviation ``noise_hu``: a white part plus
   an in-plane correlated part (white noise smoothed over ``noise_grain_mm`` and
   renormalised), mixed by ``noise_correlation`` (0 = white only, 1 = correlated
   only).
5. **Quantisation.** Rounded to integer HU and clipped to [-1024, 3071].
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .anatomy import Anatomy
from .lesions import Built

__all__ = ["ScannerSettings", "project_mask", "render_volume"]

logger = logging.getLogger(__name__)

HU_MIN, HU_MAX = -1024, 3071


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannerSettings:
    """Acquisition and reconstruction settings of the simulated scanner.

    Attributes
    ----------
    slice_thickness_mm : float
        Nominal reconstructed slice thickness (width of the rectangular slice profile).
    psf_fwhm_mm : float
        Full width at half maximum of the Gaussian point-spread function, all axes.
    noise_hu : float
        Standard deviation of the image noise in HU.
    noise_correlation : float
        Share (0-1) of the noise variance that is spatially correlated in-plane.
    noise_grain_mm : float
        Smoothing length (Gaussian sigma, mm) of the correlated noise part.
    """

    slice_thickness_mm: float
    psf_fwhm_mm: float = 0.7
    noise_hu: float = 20.0
    noise_correlation: float = 0.5
    noise_grain_mm: float = 0.8


def _axis_groups(fine: np.ndarray, g0: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Map ascending fine coordinates to target cells: (starts into `fine`, cell indices)."""
    idx = np.floor((fine - g0) / step + 0.5).astype(np.int64)
    cells, starts = np.unique(idx, return_index=True)
    return starts, cells


def _reduce_mean(
    arr: np.ndarray, groups: tuple[tuple[np.ndarray, np.ndarray], ...], n_fine: tuple[int, ...]
) -> np.ndarray:
    out = arr
    for axis, (starts, _) in enumerate(groups):
        out = np.add.reduceat(out, starts, axis=axis)
    counts = [np.diff(np.append(starts, n)) for (starts, _), n in zip(groups, n_fine, strict=True)]
    denom = counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]
    return (out / denom).astype(np.float32)


@dataclass(kw_only=True, eq=False)
class _Projected:
    z0: int
    y0: int
    x0: int
    a: np.ndarray  # mean alpha
    s: np.ndarray  # mean alpha * value
    e: np.ndarray  # mean excess


def _project(
    b: Built, *, z0: float, dz: float, y0: float, dy: float, x0: float, dx: float
) -> _Projected:
    zz, yy, xx = b.axes_mm()
    groups = (_axis_groups(zz, z0, dz), _axis_groups(yy, y0, dy), _axis_groups(xx, x0, dx))
    n = b.mask.shape
    a = _reduce_mean(b.alpha, groups, n)
    s = _reduce_mean(b.alpha * b.value, groups, n)
    e = _reduce_mean(b.excess, groups, n)
    return _Projected(
        z0=int(groups[0][1][0]), y0=int(groups[1][1][0]), x0=int(groups[2][1][0]), a=a, s=s, e=e
    )


def project_mask(
    b: Built,
    *,
    shape_zyx: tuple[int, int, int],
    spacing_zyx_mm: tuple[float, float, float],
    origin_anat_mm: np.ndarray,
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Resample a built object's mask onto the output grid (a voxel is in if >= half covered).

    Returns
    -------
    bbox_zyx : tuple of 3 slice
        Where the returned mask goes in the output grid (clipped to it).
    mask : (z, y, x) ndarray of bool
    """
    dz, dy, dx = spacing_zyx_mm
    ox, oy, oz = origin_anat_mm
    zz, yy, xx = b.axes_mm()
    groups = (_axis_groups(zz, oz, dz), _axis_groups(yy, oy, dy), _axis_groups(xx, ox, dx))
    frac = _reduce_mean(b.mask.astype(np.float32), groups, b.mask.shape)
    m = frac >= 0.5
    sl = []
    crop = []
    for (_, cells), n in zip(groups, shape_zyx, strict=True):
        lo, hi = int(cells[0]), int(cells[-1]) + 1
        clo, chi = max(lo, 0), min(hi, n)
        sl.append(slice(clo, max(chi, clo)))
        crop.append(slice(clo - lo, max(chi, clo) - lo))
    return (sl[0], sl[1], sl[2]), m[crop[0], crop[1], crop[2]]


def _z_kernel(
    offsets_mm: np.ndarray, *, thickness_mm: float, sigma_mm: float, dz_mm: float
) -> np.ndarray:
    """Weights of internal planes at `offsets_mm` from the slice centre (rect ⊛ Gaussian)."""
    half = thickness_mm / 2.0
    if sigma_mm <= 1e-6:
        w = np.clip(
            np.minimum(offsets_mm + dz_mm / 2, half) - np.maximum(offsets_mm - dz_mm / 2, -half),
            0,
            None,
        )
    else:
        s2 = sigma_mm * math.sqrt(2.0)
        from scipy.special import erf

        w = 0.5 * (erf((offsets_mm + half) / s2) - erf((offsets_mm - half) / s2))
    total = w.sum()
    return w / total if total > 0 else w


def render_volume(
    anatomy: Anatomy,
    objects: list[Built],
    *,
    shape_zyx: tuple[int, int, int],
    spacing_zyx_mm: tuple[float, float, float],
    origin_anat_mm: np.ndarray,
    settings: ScannerSettings,
    rng: np.random.Generator,
    slab_slices: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Render the CT volume and the native-bone truth mask.

    Parameters
    ----------
    anatomy : Anatomy
    objects : list of Built
        Lesions and look-alikes on their fine grids.
    shape_zyx : tuple of 3 int
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    origin_anat_mm : (3,) ndarray
        Anatomical-frame position (x, y, z) mm of voxel (0, 0, 0).
    settings : ScannerSettings
    rng : numpy.random.Generator
        Used for the noise only.
    slab_slices : int
        Output slices rendered together.

    Returns
    -------
    hu : (Z, Y, X) ndarray of int16
        Hounsfield units.
    bone : (Z, Y, X) ndarray of bool
        Native bone as built (at least half of the voxel), before blur.
    """
    nz, ny, nx = shape_zyx
    dz, dy, dx = spacing_zyx_mm
    ox, oy, oz = (float(v) for v in origin_anat_mm)
    thick = settings.slice_thickness_mm
    sigma = settings.psf_fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    dz_target = min(0.6, max(thick / 2.0, 0.25))
    k = max(1, math.ceil(dz / dz_target - 1e-9))
    dzi = dz / k
    reach = max(thick / 2.0 + 3.0 * sigma, dz / 2.0)
    pad = math.ceil(reach / dzi)
    # internal plane u sits at z = oz + (u - pad - (k - 1) / 2) * dzi; output slice j at u = pad + j*k + (k-1)/2
    zi0 = oz - (pad + (k - 1) / 2.0) * dzi
    xs = ox + dx * np.arange(nx)
    ys = oy + dy * np.arange(ny)
    vox = float(min(dx, dy))
    projected = [_project(b, z0=zi0, dz=dzi, y0=oy, dy=dy, x0=ox, dx=dx) for b in objects]
    hu_out = np.empty(shape_zyx, np.int16)
    bone_out = np.zeros(shape_zyx, bool)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    psf_px = (sigma / dy, sigma / dx)
    grain_px = (settings.noise_grain_mm / dy, settings.noise_grain_mm / dx)
    # std of white noise after the grain filter, to renormalise it
    probe = np.zeros((65, 65), np.float32)
    probe[32, 32] = 1.0
    grain_norm = float(np.sqrt((ndi.gaussian_filter(probe, grain_px, mode="constant") ** 2).sum()))
    wc = math.sqrt(min(max(settings.noise_correlation, 0.0), 1.0))
    ww = math.sqrt(1.0 - wc * wc)

    def plane(u: int) -> tuple[np.ndarray, np.ndarray]:
        if u not in cache:
            z = zi0 + u * dzi
            hu, bone = anatomy.render_plane(xs, ys, z, voxel_mm=vox)
            for p in projected:
                iu = u - p.z0
                if 0 <= iu < p.a.shape[0]:
                    y0, x0 = p.y0, p.x0
                    ys0, xs0 = max(y0, 0), max(x0, 0)
                    ys1, xs1 = min(y0 + p.a.shape[1], ny), min(x0 + p.a.shape[2], nx)
                    if ys1 <= ys0 or xs1 <= xs0:
                        continue
                    sl = (slice(ys0 - y0, ys1 - y0), slice(xs0 - x0, xs1 - x0))
                    a, s, e = p.a[iu][sl], p.s[iu][sl], p.e[iu][sl]
                    region = hu[ys0:ys1, xs0:xs1]
                    region *= 1.0 - a
                    region += s + e
            cache[u] = (hu, bone)
        return cache[u]

    for j0 in range(0, nz, slab_slices):
        j1 = min(nz, j0 + slab_slices)
        for j in range(j0, j1):
            centre_u = pad + j * k + (k - 1) / 2.0
            u_lo = math.floor(centre_u - reach / dzi - 1)
            u_hi = math.ceil(centre_u + reach / dzi + 1)
            us = np.arange(max(u_lo, 0), u_hi + 1)
            w = _z_kernel((us - centre_u) * dzi, thickness_mm=thick, sigma_mm=sigma, dz_mm=dzi)
            acc = np.zeros((ny, nx), np.float32)
            for u, wu in zip(us, w, strict=True):
                if wu < 1e-6:
                    continue
                acc += np.float32(wu) * plane(int(u))[0]
            # bone truth: (up to 3) planes inside the voxel's own z extent
            own = [
                pad + j * k + int(m) for m in np.unique(np.round(np.linspace(0, k - 1, min(k, 3))))
            ]
            bone_frac = np.mean([plane(u)[1] for u in own], axis=0)
            bone_out[j] = bone_frac >= 0.5
            if sigma > 0:
                acc = ndi.gaussian_filter(acc, psf_px, mode="nearest", truncate=3.0)
            if settings.noise_hu > 0:
                white = rng.standard_normal((ny, nx), dtype=np.float32)
                corr = rng.standard_normal((ny, nx), dtype=np.float32)
                corr = ndi.gaussian_filter(corr, grain_px, mode="wrap") / np.float32(grain_norm)
                acc += np.float32(settings.noise_hu) * (
                    np.float32(ww) * white + np.float32(wc) * corr
                )
            np.rint(acc, out=acc)
            np.clip(acc, HU_MIN, HU_MAX, out=acc)
            hu_out[j] = acc.astype(np.int16)
            # drop planes no longer needed
            keep_from: int = math.floor(pad + (j + 1) * k + (k - 1) / 2.0 - reach / dzi - 1)
            for old in [u for u in cache if u < keep_from]:
                del cache[old]
    return hu_out, bone_out
