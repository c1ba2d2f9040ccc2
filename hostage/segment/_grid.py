"""The coarse grid: block means/maxima of the volume, so whole-volume steps stay cheap.

Whole-volume work (body, skeleton, metal, candidate search) runs on blocks of
about ``coarse_voxel_mm``; only the crops around candidates are revisited at
full resolution. Blocks are ``factors_zyx`` voxels; the last incomplete block
of each axis is dropped on the coarse grid and re-attached by edge
replication when upsampling.
"""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .._checks import check_spacing

__all__ = [
    "CoarseGrid",
    "ball_dilate",
    "ball_erode",
    "ball_structure",
    "box_dilate",
    "box_erode",
    "gaussian_mm",
    "mask_bbox",
    "mm_to_half",
    "sparse_zeros",
]


def _part(a: np.ndarray, k: int, f: int, axis: int) -> np.ndarray:
    sl = [slice(None)] * a.ndim
    sl[axis] = slice(k, None, f)
    return a[tuple(sl)]


def _fold_sum(a: np.ndarray, f: int, axis: int) -> np.ndarray:
    """Sum (int32) of the `f` voxels of each block along `axis` (``a`` is an integer array)."""
    if f == 1:
        return a.astype(np.int32)
    out = np.add(_part(a, 0, f, axis), _part(a, 1, f, axis), dtype=np.int32)
    for k in range(2, f):
        np.add(out, _part(a, k, f, axis), out=out)
    return out


def _fold_max(a: np.ndarray, f: int, axis: int) -> np.ndarray:
    """Maximum of the `f` voxels of each block along `axis`."""
    if f == 1:
        return a.copy()
    out = np.maximum(_part(a, 0, f, axis), _part(a, 1, f, axis))
    for k in range(2, f):
        np.maximum(out, _part(a, k, f, axis), out=out)
    return out


def _clip_index(start: int, stop: int, f: int, n_coarse: int) -> np.ndarray:
    """Coarse index of full-resolution voxels ``start..stop-1``; the incomplete last block repeats the last one."""
    return np.minimum(np.arange(start, stop) // f, n_coarse - 1)


def sparse_zeros(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """Make a zero array whose memory is only materialised where it is written.

    Backed by an anonymous memory map (freed with the last view): untouched
    pages are never allocated and written ones are 4 KiB pages. Large
    :func:`numpy.zeros` arrays are marked for transparent huge pages, so one
    voxel written per slice zeroes (and may compact memory for) a whole
    2 MiB page per slice; a full-volume label map with a few small foci, or
    a mask written inside a bounding box, is several times cheaper this way.

    Parameters
    ----------
    shape : tuple of int
        Array shape.
    dtype : numpy dtype
        Element type.

    Returns
    -------
    ndarray
        Writable, C-contiguous, all zeros.

    Examples
    --------
    >>> a = sparse_zeros((2, 3), np.int32)
    >>> a[1, 2] = 7
    >>> a.tolist(), a.dtype.name
    ([[0, 0, 0], [0, 0, 7]], 'int32')
    """
    dt = np.dtype(dtype)
    count = math.prod(shape)
    buf = mmap.mmap(-1, max(1, count * dt.itemsize))
    return np.frombuffer(buf, dtype=dt, count=count).reshape(shape)


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

    def block_stats(self, hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and maximum HU of each block, in one pass over the volume.

        Each slab of one block's slices is reduced along z first (whole
        contiguous planes), then y, then x, so the strided steps run on
        arrays already ``fz × fy`` times smaller. Float input is rounded to
        integer HU for the mean (sums are exact in int32), as in
        :meth:`block_mean`.

        Parameters
        ----------
        hu : (Z, Y, X) ndarray
            CT values (HU), integer or float.

        Returns
        -------
        mean : (cz, cy, cx) ndarray of float32
            Block means (HU).
        max : (cz, cy, cx) ndarray
            Block maxima (HU), dtype of `hu`.

        Examples
        --------
        >>> g = CoarseGrid.for_volume((4, 4, 5), spacing_zyx_mm=(1.0, 1.0, 1.0), block_mm=2.0)
        >>> hu = np.arange(80, dtype=np.int16).reshape(4, 4, 5)
        >>> mean, mx = g.block_stats(hu)
        >>> mean.shape, float(mean[0, 0, 0]), int(mx[1, 1, 1])
        ((2, 2, 2), 13.0, 78)
        """
        cz, cy, cx = self.coarse_shape_zyx
        fz, fy, fx = self.factors_zyx
        a = self._trim(hu)
        mean = np.empty((cz, cy, cx), np.float32)
        mx = np.empty((cz, cy, cx), hu.dtype)
        scale = 1.0 / float(fz * fy * fx)
        for c in range(cz):
            slab = a[c * fz : (c + 1) * fz]
            m = _fold_max(slab, fz, 0)
            if slab.dtype.kind == "f":
                slab = np.rint(slab).astype(np.int32)
            s = _fold_sum(slab, fz, 0)
            s = _fold_sum(_fold_sum(s, fy, 1), fx, 2)
            m = _fold_max(_fold_max(m, fy, 1), fx, 2)
            mean[c] = s[0] * scale
            mx[c] = m[0]
        return mean, mx

    def block_mean(self, hu: np.ndarray) -> np.ndarray:
        """Mean HU of each block, (cz, cy, cx) float32 (see :meth:`block_stats`)."""
        return self.block_stats(hu)[0]

    def block_max(self, hu: np.ndarray) -> np.ndarray:
        """Maximum of each block, (cz, cy, cx), dtype of `hu`.

        Examples
        --------
        >>> g = CoarseGrid.for_volume((2, 4, 4), spacing_zyx_mm=(1.0, 1.0, 1.0), block_mm=2.0)
        >>> m = np.zeros((2, 4, 4), bool); m[1, 3, 0] = True
        >>> g.block_max(m).astype(int).tolist()
        [[[0, 0], [1, 0]]]
        """
        cz = self.coarse_shape_zyx[0]
        fz, fy, fx = self.factors_zyx
        a = self._trim(hu)
        if a.dtype == bool:
            a = a.view(np.uint8)
        out = np.empty(self.coarse_shape_zyx, a.dtype)
        for c in range(cz):
            m = _fold_max(a[c * fz : (c + 1) * fz], fz, 0)
            out[c] = _fold_max(_fold_max(m, fy, 1), fx, 2)[0]
        return out.view(bool) if hu.dtype == bool else out

    def upsample(
        self,
        coarse: np.ndarray,
        bbox_zyx: tuple[slice, ...] | None = None,
        *,
        origin_zyx: tuple[int, int, int] = (0, 0, 0),
    ) -> np.ndarray:
        """Nearest-neighbour upsampling of a coarse array to full resolution.

        Voxels beyond the last complete block take the last block's value.
        Computed by three gathers (x, then y, then whole planes along z), so
        the largest step copies contiguous planes.

        Parameters
        ----------
        coarse : (cz, cy, cx) ndarray
            Values on the coarse grid.
        bbox_zyx : tuple of 3 slice, optional
            Full-resolution region to return (default: the whole volume).
        origin_zyx : tuple of 3 int
            Block index of ``coarse[0, 0, 0]`` when `coarse` is a crop of the
            coarse grid (the region must lie within the crop's blocks).

        Returns
        -------
        ndarray
            Same dtype as `coarse`, shape of the region.

        Examples
        --------
        >>> g = CoarseGrid.for_volume((3, 5, 5), spacing_zyx_mm=(1.0, 1.0, 1.0), block_mm=2.0)
        >>> c = np.arange(4).reshape(1, 2, 2)
        >>> g.upsample(c)[2].tolist()
        [[0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [2, 2, 3, 3, 3], [2, 2, 3, 3, 3], [2, 2, 3, 3, 3]]
        >>> g.upsample(c, (slice(0, 1), slice(1, 3), slice(3, 5))).tolist()
        [[[1, 1], [3, 3]]]
        >>> g.upsample(c[:, 1:], (slice(0, 1), slice(2, 5), slice(0, 2)), origin_zyx=(0, 1, 0)).tolist()
        [[[2, 2], [2, 2], [2, 2]]]
        """
        if bbox_zyx is None:
            bbox_zyx = (slice(None),) * 3
        idx = []
        for sl, f, n, c, o in zip(
            bbox_zyx, self.factors_zyx, self.shape_zyx, coarse.shape, origin_zyx, strict=True
        ):
            start, stop, _ = sl.indices(n)
            idx.append(_clip_index(start, stop, f, o + c) - o)
        iz, iy, ix = idx
        # gather only the coarse range needed, smallest array first
        sub = coarse[
            int(iz[0]) : int(iz[-1]) + 1 if iz.size else 0,
            int(iy[0]) : int(iy[-1]) + 1 if iy.size else 0,
            int(ix[0]) : int(ix[-1]) + 1 if ix.size else 0,
        ]
        out = np.take(sub, ix - (ix[0] if ix.size else 0), axis=2)
        out = np.take(out, iy - (iy[0] if iy.size else 0), axis=1)
        return np.take(out, iz - (iz[0] if iz.size else 0), axis=0)

    def upsample_into(self, coarse: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Write the nearest-neighbour upsampling of a coarse mask into a zeroed full array.

        Only the blocks' bounding rectangle of each coarse slice that holds a
        True block is written, so the pages of a :func:`sparse_zeros` array
        outside the mask are never touched. The result equals
        :meth:`upsample` of `coarse`.

        Parameters
        ----------
        coarse : (cz, cy, cx) ndarray of bool
            Mask on the coarse grid.
        out : (Z, Y, X) ndarray of bool
            All False on entry (for example :func:`sparse_zeros`).

        Returns
        -------
        (Z, Y, X) ndarray of bool
            `out`.

        Examples
        --------
        >>> g = CoarseGrid.for_volume((3, 5, 5), spacing_zyx_mm=(1.0, 1.0, 1.0), block_mm=2.0)
        >>> c = np.zeros((1, 2, 2), bool); c[0, 1, 1] = True
        >>> full = g.upsample_into(c, np.zeros((3, 5, 5), bool))
        >>> bool((full == g.upsample(c)).all()), int(full.sum())
        (True, 27)
        """
        (cz, cy, cx), (fz, fy, fx) = self.coarse_shape_zyx, self.factors_zyx
        z_n, y_n, x_n = self.shape_zyx
        for k in np.flatnonzero(coarse.any(axis=(1, 2))):
            plane = coarse[k]
            rows = np.flatnonzero(plane.any(axis=1))
            cols = np.flatnonzero(plane.any(axis=0))
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            y0, y1 = r0 * fy, y_n if r1 == cy else r1 * fy
            x0, x1 = c0 * fx, x_n if c1 == cx else c1 * fx
            iy = _clip_index(y0, y1, fy, cy) - r0
            ix = _clip_index(x0, x1, fx, cx) - c0
            full_plane = np.take(np.take(plane[r0:r1, c0:c1], ix, axis=1), iy, axis=0)
            z0, z1 = int(k) * fz, z_n if k == cz - 1 else (int(k) + 1) * fz
            out[z0:z1, y0:y1, x0:x1] = full_plane
        return out

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


def gaussian_mm(
    arr: np.ndarray, spacing: tuple[float, float, float], sigma_mm: float
) -> np.ndarray:
    """Gaussian smoothing with a width in mm (per-axis sigma from the spacing), as float32.

    ``sigma_mm <= 0`` returns the values unsmoothed. Edges repeat the border
    values (``mode="nearest"``), so a crop is not darkened at its faces.
    """
    out = np.asarray(arr, dtype=np.float32)
    if sigma_mm <= 0:
        return out
    return ndi.gaussian_filter(
        out, sigma=[sigma_mm / s for s in spacing], mode="nearest", truncate=3.0
    )


def mask_bbox(mask: np.ndarray, pad: int | tuple[int, ...] = 0) -> tuple[slice, ...]:
    """Bounding box of a non-empty mask, widened by `pad` voxels (one for all axes, or per axis), clipped.

    Examples
    --------
    >>> m = np.zeros((4, 6), bool); m[1, 2:4] = True
    >>> mask_bbox(m, pad=(0, 1))
    (slice(1, 2, None), slice(1, 5, None))
    """
    pads = (pad,) * mask.ndim if isinstance(pad, int) else pad
    box = []
    for ax, p in enumerate(pads):
        nz = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        box.append(slice(max(0, int(nz[0]) - p), min(mask.shape[ax], int(nz[-1]) + 1 + p)))
    return tuple(box)


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


#: Above this half-width, the 1-D box filters of :mod:`scipy.ndimage` are faster than shifts.
_SHIFT_MAX_HALF = 16


def _axis_slice(axis: int, sl: slice, ndim: int = 3) -> tuple[slice, ...]:
    out = [slice(None)] * ndim
    out[axis] = sl
    return tuple(out)


def _box_1d(out: np.ndarray, h: int, axis: int, *, dilate: bool) -> None:
    """In place: OR (dilate) / AND (erode) of each voxel with its `h` neighbours each side along `axis`.

    Out-of-range neighbours are ignored (dilation: 0 border; erosion: 1 border).
    """
    op = np.logical_or if dilate else np.logical_and
    src = out.copy()
    for d in range(1, min(h, out.shape[axis] - 1) + 1):
        hi = _axis_slice(axis, slice(d, None), out.ndim)
        lo = _axis_slice(axis, slice(None, -d), out.ndim)
        op(out[hi], src[lo], out=out[hi])
        op(out[lo], src[hi], out=out[lo])


def box_erode(
    mask: np.ndarray, half_zyx: tuple[int, int, int], *, border_value: bool = True
) -> np.ndarray:
    """Erosion by a (2h+1)-box, separable along each axis.

    Small half-widths use logical ANDs of shifted views (a few fast passes);
    large ones the 1-D minimum filter of :mod:`scipy.ndimage`.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        Mask to erode (not modified).
    half_zyx : tuple of 3 int
        Half-width of the box (voxels) per axis; 0 leaves that axis alone.
    border_value : bool
        Value assumed outside the array.

    Returns
    -------
    (Z, Y, X) ndarray of bool
        A new array.

    Examples
    --------
    >>> m = np.zeros((1, 7, 7), bool); m[0, 1:6, 1:6] = True
    >>> int(box_erode(m, (0, 1, 1), border_value=False).sum())
    9
    """
    out = np.array(mask, dtype=bool, copy=True)
    for axis, h in enumerate(half_zyx):
        if h <= 0:
            continue
        if h > _SHIFT_MAX_HALF:
            out = ndi.minimum_filter1d(
                out.view(np.uint8), 2 * h + 1, axis=axis, mode="constant", cval=int(border_value)
            ).view(bool)
            continue
        _box_1d(out, h, axis, dilate=False)
        if not border_value:
            n = out.shape[axis]
            out[_axis_slice(axis, slice(None, h), out.ndim)] = False
            out[_axis_slice(axis, slice(max(0, n - h), None), out.ndim)] = False
    return out


def box_dilate(mask: np.ndarray, half_zyx: tuple[int, int, int]) -> np.ndarray:
    """Dilation by a (2h+1)-box, separable along each axis (0 outside the array).

    Small half-widths use logical ORs of shifted views; large ones the 1-D
    maximum filter of :mod:`scipy.ndimage`.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        Mask to dilate (not modified).
    half_zyx : tuple of 3 int
        Half-width of the box (voxels) per axis; 0 leaves that axis alone.

    Returns
    -------
    (Z, Y, X) ndarray of bool
        A new array.

    Examples
    --------
    >>> m = np.zeros((1, 7, 7), bool); m[0, 3, 3] = True
    >>> int(box_dilate(m, (0, 1, 1)).sum())
    9
    """
    out = np.array(mask, dtype=bool, copy=True)
    for axis, h in enumerate(half_zyx):
        if h <= 0:
            continue
        if h > _SHIFT_MAX_HALF:
            out = ndi.maximum_filter1d(
                out.view(np.uint8), 2 * h + 1, axis=axis, mode="constant", cval=0
            ).view(bool)
            continue
        _box_1d(out, h, axis, dilate=True)
    return out


def _centred_runs(structure: np.ndarray) -> list[tuple[int, int, int]]:
    """Split a structure into (dz, dy, half-width along x) runs centred on its middle column.

    Raises
    ------
    ValueError
        If `structure` has an even side, is not symmetric, or a (z, y) row of it
        is not one run centred on the middle column.
    """
    st = np.asarray(structure, dtype=bool)
    if st.ndim != 3 or any(n % 2 == 0 for n in st.shape):
        raise ValueError(f"structure must be 3-D with odd sides; got shape {st.shape}")
    if not np.array_equal(st, st[::-1, ::-1, ::-1]):
        raise ValueError("structure must be symmetric about its centre (a ball, a box, a cross)")
    cz, cy, cx = (n // 2 for n in st.shape)
    runs = []
    for iz in range(st.shape[0]):
        for iy in range(st.shape[1]):
            nz = np.flatnonzero(st[iz, iy])
            if nz.size == 0:
                continue
            h = cx - int(nz[0])
            if int(nz[-1]) - cx != h or nz.size != 2 * h + 1:
                raise ValueError(
                    f"structure row ({iz}, {iy}) is not one run centred on the middle column"
                )
            runs.append((iz - cz, iy - cy, h))
    return runs


def _runs_morphology(mask: np.ndarray, structure: np.ndarray, *, dilate: bool) -> np.ndarray:
    m = np.ascontiguousarray(mask, dtype=bool)
    runs = _centred_runs(structure)
    filt = ndi.maximum_filter1d if dilate else ndi.minimum_filter1d
    along_x = {
        h: filt(m.view(np.uint8), 2 * h + 1, axis=2, mode="constant", cval=0).view(bool)
        for h in {h for _, _, h in runs}
    }
    out = np.zeros(m.shape, bool) if dilate else np.ones(m.shape, bool)
    nz, ny = m.shape[:2]
    for dz, dy, h in runs:
        # dilation: out[p] |= row[p - d]; erosion: out[p] &= row[p + d] (0 outside the array)
        sz, sy = (dz, dy) if dilate else (-dz, -dy)
        if abs(sz) >= nz or abs(sy) >= ny:
            # the shifted row lies wholly outside the array
            if dilate:
                continue
            out[:] = False
            break
        dst = (slice(max(0, sz), nz + min(0, sz)), slice(max(0, sy), ny + min(0, sy)))
        src = (slice(max(0, -sz), nz + min(0, -sz)), slice(max(0, -sy), ny + min(0, -sy)))
        if dilate:
            out[dst] |= along_x[h][src]
            continue
        out[dst] &= along_x[h][src]
        out[: max(0, sz)] = False
        out[nz + min(0, sz) :] = False
        out[:, : max(0, sy)] = False
        out[:, ny + min(0, sy) :] = False
    return out


def ball_dilate(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary dilation by a ball (:func:`ball_structure`), as x-runs: 1-D maxima, then shifted ORs.

    The same result as ``ndi.binary_dilation(mask, structure)`` (0 outside
    the array) for any symmetric structure whose (z, y) rows are runs centred
    on its middle column (balls, ellipsoids, boxes, crosses). A ball of 2 mm
    on 1 x 0.78 x 0.78 mm voxels has 49 elements but 13 runs of 3 widths, so
    this is about 4 times faster than SciPy's element-by-element loop
    (measured on the focus crops of ``benchmarks/speed.py``).

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        Mask to dilate (not modified).
    structure : (2a+1, 2b+1, 2c+1) ndarray of bool
        The structuring element.

    Returns
    -------
    (Z, Y, X) ndarray of bool

    Raises
    ------
    ValueError
        If `structure` is not symmetric or a row is not a centred run.

    Examples
    --------
    >>> m = np.zeros((5, 7, 7), bool); m[2, 3, 3] = True
    >>> b = ball_structure(2.0, spacing_zyx_mm=(2.0, 1.0, 1.0))
    >>> bool((ball_dilate(m, b) == ndi.binary_dilation(m, b)).all())
    True
    """
    return _runs_morphology(mask, structure, dilate=True)


def ball_erode(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary erosion by a ball, as x-runs (see :func:`ball_dilate`); 0 outside the array.

    The same result as ``ndi.binary_erosion(mask, structure)`` (``border_value=0``).

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        Mask to erode (not modified).
    structure : (2a+1, 2b+1, 2c+1) ndarray of bool
        The structuring element.

    Returns
    -------
    (Z, Y, X) ndarray of bool

    Raises
    ------
    ValueError
        If `structure` is not symmetric or a row is not a centred run.

    Examples
    --------
    >>> m = np.ones((5, 7, 7), bool)
    >>> b = ball_structure(1.0, spacing_zyx_mm=(1.0, 1.0, 1.0))
    >>> int(ball_erode(m, b).sum())
    75
    """
    return _runs_morphology(mask, structure, dilate=False)
