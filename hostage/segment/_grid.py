"""The coarse grid: block means/maxima of the volume, so whole-volume steps stay cheap.

Whole-volume work (body, skeleton, metal, candidate search) runs on blocks of
about ``coarse_voxel_mm``; only the crops around candidates are revisited at
full resolution. Blocks are ``factors_zyx`` voxels; the last incomplete block
of each axis is dropped on the coarse grid and re-attached by edge
replication when upsampling.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .._checks import check_spacing

__all__ = ["CoarseGrid", "ball_structure", "box_dilate", "box_erode", "mm_to_half"]


def _reduce(a: np.ndarray, f: int, axis: int, op: str) -> np.ndarray:
    sl = [slice(None)] * 3
    parts = []
    for k in range(f):
        sl[axis] = slice(k, None, f)
        parts.append(a[tuple(sl)])
    if op == "sum":
        out = parts[0].astype(np.int32) if parts[0].dtype != np.int32 else parts[0].copy()
        for p in parts[1:]:
            out += p
        return out
    if len(parts) == 1:
        return parts[0].copy()
    out = np.maximum(parts[0], parts[1])
    for p in parts[2:]:
        np.maximum(out, p, out=out)
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CoarseGrid:
    """Block geometry of a coarse grid over a (Z, Y, X) volume.

    Attributes
    ----------
    shape_zyx : tuple of 3 int
        Full-resolution shape.
    factors_zyx : tuple of 3 int
        Block size in voxels per axis.
    spacing_zyx_mm : tuple of 3 float
        Full-resolution spacing.

    Examples
    --------
    >>> g = CoarseGrid.for_volume((10, 64, 64), spacing_zyx_mm=(1.0, 0.7, 0.7), block_mm=2.0)
    >>> g.factors_zyx, g.coarse_shape_zyx, g.coarse_spacing_zyx_mm
    ((2, 3, 3), (5, 21, 21), (2.0, 2.1, 2.1))
    """

    shape_zyx: tuple[int, int, int]
    factors_zyx: tuple[int, int, int]
    spacing_zyx_mm: tuple[float, float, float]

    @classmethod
    def for_volume(
        cls,
        shape_zyx: tuple[int, int, int],
        *,
        spacing_zyx_mm: tuple[float, float, float],
        block_mm: float,
    ) -> CoarseGrid:
        """Choose block factors so that blocks are about `block_mm` on each axis."""
        spacing = check_spacing(spacing_zyx_mm)
        f = tuple(
            max(1, min(n, round(block_mm / s))) for s, n in zip(spacing, shape_zyx, strict=True)
        )
        return cls(shape_zyx=tuple(shape_zyx), factors_zyx=f, spacing_zyx_mm=spacing)  # type: ignore[arg-type]

    @property
    def coarse_shape_zyx(self) -> tuple[int, int, int]:
        """Number of complete blocks per axis."""
        z, y, x = (n // f for n, f in zip(self.shape_zyx, self.factors_zyx, strict=True))
        return (z, y, x)

    @property
    def coarse_spacing_zyx_mm(self) -> tuple[float, float, float]:
        """Block size in mm."""
        z, y, x = (
            round(s * f, 6) for s, f in zip(self.spacing_zyx_mm, self.factors_zyx, strict=True)
        )
        return (z, y, x)

    def _trim(self, hu: np.ndarray) -> np.ndarray:
        cz, cy, cx = self.coarse_shape_zyx
        fz, fy, fx = self.factors_zyx
        return hu[: cz * fz, : cy * fy, : cx * fx]

    def _chunks(self, hu: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        # slabs of whole blocks: small, reused intermediates
        a = self._trim(hu)
        fz = self.factors_zyx[0]
        step = fz * max(1, 16 // fz)
        for z0 in range(0, a.shape[0], step):
            yield z0 // fz, a[z0 : z0 + step]

    def block_mean(self, hu: np.ndarray) -> np.ndarray:
        """Mean HU of each block, (cz, cy, cx) float32."""
        out = np.empty(self.coarse_shape_zyx, np.float32)
        scale = 1.0 / float(np.prod(self.factors_zyx))
        for c0, a in self._chunks(hu):
            if a.dtype.kind == "f":
                a = np.rint(a).astype(np.int32)
            for axis in (2, 1, 0):
                a = _reduce(a, self.factors_zyx[axis], axis, "sum")
            out[c0 : c0 + a.shape[0]] = a * scale
        return out

    def block_max(self, hu: np.ndarray) -> np.ndarray:
        """Maximum HU of each block, (cz, cy, cx), dtype of `hu`."""
        out = np.empty(self.coarse_shape_zyx, hu.dtype)
        for c0, a in self._chunks(hu):
            for axis in (2, 1, 0):
                a = _reduce(a, self.factors_zyx[axis], axis, "max")
            out[c0 : c0 + a.shape[0]] = a
        return out

    def upsample(self, coarse: np.ndarray, bbox_zyx: tuple[slice, ...] | None = None) -> np.ndarray:
        """Nearest-neighbour upsampling of a coarse array to full resolution.

        Parameters
        ----------
        coarse : (cz, cy, cx) ndarray
            Values on the coarse grid.
        bbox_zyx : tuple of 3 slice, optional
            Full-resolution region to return (default: the whole volume).

        Returns
        -------
        ndarray
            Same dtype as `coarse`, shape of the region.
        """
        if bbox_zyx is None:
            # whole volume: one write pass through a 6-D view of a padded array
            c = np.pad(coarse, [(0, 1)] * 3, mode="edge")
            (cz, cy, cx), (fz, fy, fx) = c.shape, self.factors_zyx
            full = np.empty((cz * fz, cy * fy, cx * fx), dtype=coarse.dtype)
            full.reshape(cz, fz, cy, fy, cx, fx)[...] = c[:, None, :, None, :, None]
            z, y, x = self.shape_zyx
            return full[:z, :y, :x]
        ranges = []
        sub_sl = []
        for sl, f, n, c in zip(
            bbox_zyx, self.factors_zyx, self.shape_zyx, coarse.shape, strict=True
        ):
            start, stop, _ = sl.indices(n)
            c0 = min(start // f, c - 1)
            c1 = min((stop - 1) // f, c - 1) + 1
            sub_sl.append(slice(c0, c1))
            ranges.append((start - c0 * f, stop - c0 * f))
        out = coarse[tuple(sub_sl)]
        for axis, f in enumerate(self.factors_zyx):
            if f > 1:
                out = np.repeat(out, f, axis=axis)
        pads = [(0, max(0, hi - out.shape[a])) for a, (_, hi) in enumerate(ranges)]
        if any(p[1] for p in pads):
            out = np.pad(out, pads, mode="edge")
        return out[tuple(slice(lo, hi) for lo, hi in ranges)]

    def to_full_bbox(
        self, coarse_bbox: tuple[slice, ...], *, pad_mm: float = 0.0
    ) -> tuple[slice, slice, slice]:
        """Full-resolution bbox covering coarse blocks `coarse_bbox`, padded by `pad_mm`."""
        out = []
        for sl, f, n, s, c in zip(
            coarse_bbox,
            self.factors_zyx,
            self.shape_zyx,
            self.spacing_zyx_mm,
            self.coarse_shape_zyx,
            strict=True,
        ):
            p = int(np.ceil(pad_mm / s))
            start = sl.start * f
            stop = n if sl.stop >= c else sl.stop * f
            out.append(slice(max(0, start - p), min(n, stop + p)))
        return (out[0], out[1], out[2])

    def centres_mm(self, idx_zyx: np.ndarray) -> np.ndarray:
        """Full-resolution index-mm coordinates ((index) × spacing) of coarse block centres."""
        f = np.asarray(self.factors_zyx)
        return (np.asarray(idx_zyx) * f + (f - 1) / 2.0) * np.asarray(self.spacing_zyx_mm)


def ball_structure(radius_mm: float, *, spacing_zyx_mm: tuple[float, float, float]) -> np.ndarray:
    """Ellipsoidal structuring element covering a ball of `radius_mm` on an anisotropic grid.

    Parameters
    ----------
    radius_mm : float
        Ball radius in mm (at least the centre voxel is always included).
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.

    Returns
    -------
    (2a+1, 2b+1, 2c+1) ndarray of bool

    Examples
    --------
    >>> ball_structure(2.0, spacing_zyx_mm=(2.0, 1.0, 1.0)).shape
    (3, 5, 5)
    """
    spacing = check_spacing(spacing_zyx_mm)
    half = [math.floor(radius_mm / s + 1e-9) for s in spacing]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    d2 = sum((g * s) ** 2 for g, s in zip(grids, spacing, strict=True))
    return np.asarray(d2 <= radius_mm**2 + 1e-9)


def mm_to_half(
    radius_mm: float, spacing_zyx_mm: tuple[float, float, float]
) -> tuple[int, int, int]:
    """Half-widths (voxels) of a box covering `radius_mm` on each axis (at least 1).

    Examples
    --------
    >>> mm_to_half(5.0, (2.0, 2.5, 2.5))
    (2, 2, 2)
    """
    z, y, x = (max(1, round(radius_mm / s)) for s in spacing_zyx_mm)
    return (z, y, x)


def box_erode(
    mask: np.ndarray, half_zyx: tuple[int, int, int], *, border_value: bool = True
) -> np.ndarray:
    """Erosion by a (2h+1)-box, as separable 1-D minimum filters (fast on large grids).

    Examples
    --------
    >>> m = np.zeros((1, 7, 7), bool); m[0, 1:6, 1:6] = True
    >>> int(box_erode(m, (0, 1, 1), border_value=False).sum())
    9
    """
    out = mask.astype(np.uint8)
    for axis, h in enumerate(half_zyx):
        if h > 0:
            out = ndi.minimum_filter1d(
                out, 2 * h + 1, axis=axis, mode="constant", cval=int(border_value)
            )
    return out.astype(bool)


def box_dilate(mask: np.ndarray, half_zyx: tuple[int, int, int]) -> np.ndarray:
    """Dilation by a (2h+1)-box, as separable 1-D maximum filters.

    Examples
    --------
    >>> m = np.zeros((1, 7, 7), bool); m[0, 3, 3] = True
    >>> int(box_dilate(m, (0, 1, 1)).sum())
    9
    """
    out = mask.astype(np.uint8)
    for axis, h in enumerate(half_zyx):
        if h > 0:
            out = ndi.maximum_filter1d(out, 2 * h + 1, axis=axis, mode="constant", cval=0)
    return out.astype(bool)
