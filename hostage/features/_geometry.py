"""Shared geometry helpers for the feature families: surface mesh, profiles, edges, EDT.

Everything here works in millimetres on a crop: points are (z, y, x) mm
coordinates relative to the centre of the crop's voxel (0, 0, 0), i.e.
``index * spacing_zyx_mm``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .._checks import check_spacing
from ..segment._grid import ball_dilate, ball_structure, mask_bbox

__all__ = [
    "SurfaceMesh",
    "ball_structure",
    "edge_width_mm",
    "max_pairwise_distance_mm",
    "sample_profiles",
    "shell_outside",
    "smooth",
    "surface_mesh",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SurfaceMesh:
    """A triangulated focus surface with outward normals and per-vertex areas.

    Attributes
    ----------
    verts_mm : (N, 3) ndarray of float64
        Vertex positions, (z, y, x) mm from the centre of crop voxel (0, 0, 0).
    normals : (N, 3) ndarray of float64
        Outward unit normals, (z, y, x) components.
    areas_mm2 : (N,) ndarray of float64
        Surface area attributed to each vertex (a third of each adjacent face).
    faces : (M, 3) ndarray of int
        Triangles (vertex indices).
    area_mm2 : float
        Total surface area.
    volume_mm3 : float
        Volume enclosed by the mesh.
    """

    verts_mm: np.ndarray
    normals: np.ndarray
    areas_mm2: np.ndarray
    faces: np.ndarray
    area_mm2: float
    volume_mm3: float


def smooth(
    arr: np.ndarray, *, spacing_zyx_mm: tuple[float, float, float], sigma_mm: float
) -> np.ndarray:
    """Gaussian smoothing with a physical width (mm), converted to voxels per axis.

    Parameters
    ----------
    arr : (Z, Y, X) ndarray
        Values to smooth (converted to float32).
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    sigma_mm : float
        Standard deviation of the Gaussian in mm (0 returns a float32 copy).

    Returns
    -------
    (Z, Y, X) ndarray of float32

    Examples
    --------
    >>> a = np.zeros((9, 9, 9), np.float32); a[4, 4, 4] = 1
    >>> round(float(smooth(a, spacing_zyx_mm=(1, 1, 1), sigma_mm=1.0).sum()), 3)
    1.0
    """
    spacing = check_spacing(spacing_zyx_mm)
    out = np.asarray(arr, dtype=np.float32)
    if sigma_mm <= 0:
        return out.copy()
    sigma = [sigma_mm / s for s in spacing]
    return ndi.gaussian_filter(out, sigma=sigma, mode="nearest", truncate=3.0)


def surface_mesh(
    mask: np.ndarray, *, spacing_zyx_mm: tuple[float, float, float], smooth_mm: float
) -> SurfaceMesh:
    """Triangulate the boundary of `mask` after light smoothing, with outward normals.

    The mask is padded by one voxel, smoothed with a Gaussian of `smooth_mm`
    (so that staircase artefacts of thick slices do not inflate the area), and
    the 0.5 iso-surface is extracted by marching cubes with ``spacing``.

    Parameters
    ----------
    mask : (Z, Y, X) ndarray of bool
        The object; must hold at least one voxel.
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    smooth_mm : float
        Gaussian smoothing of the mask in mm before triangulation.

    Returns
    -------
    SurfaceMesh

    Raises
    ------
    ValueError
        If `mask` is empty.

    Examples
    --------
    >>> from skimage.draw import ellipsoid
    >>> ball = ellipsoid(10, 10, 10, spacing=(1.0, 1.0, 1.0))
    >>> m = surface_mesh(ball, spacing_zyx_mm=(1.0, 1.0, 1.0), smooth_mm=0.7)
    >>> abs(m.volume_mm3 / (4 / 3 * np.pi * 1000) - 1) < 0.05
    True
    """
    from skimage.measure import marching_cubes

    spacing = check_spacing(spacing_zyx_mm)
    if not mask.any():
        raise ValueError("surface_mesh: mask is empty; a focus needs at least one voxel")
    pad = [max(2, math.ceil(3 * smooth_mm / s) + 1) for s in spacing]
    shape = tuple(n + 2 * p for n, p in zip(mask.shape, pad, strict=True))
    # The smoothed field is zero beyond the Gaussian's reach from the mask's bounding box,
    # so it is computed (and triangulated) on that box only, on the grid of the whole padded
    # crop: the vertex coordinates, and with them every feature, do not depend on how much
    # empty crop surrounds the focus, and the time does not grow with it.
    reach = [int(3.0 * max(smooth_mm, 0.0) / s + 0.5) + 3 for s in spacing]
    box = []
    for ax in range(3):
        nz = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))
        lo = max(0, int(nz[0]) + pad[ax] - reach[ax])
        hi = min(shape[ax], int(nz[-1]) + 1 + pad[ax] + reach[ax])
        box.append(slice(lo, hi))
    sub = tuple(box)
    padded = np.zeros(shape, dtype=np.float32)
    padded[tuple(slice(p, p + n) for p, n in zip(pad, mask.shape, strict=True))] = mask
    field = np.zeros(shape, dtype=np.float32)
    field[sub] = smooth(padded[sub], spacing_zyx_mm=spacing, sigma_mm=smooth_mm)
    in_box = np.zeros(shape, dtype=bool)
    in_box[sub] = True
    level = 0.5 if field.max() > 0.5 else 0.5 * float(field.max())
    verts, faces, _, _ = marching_cubes(field, level=level, spacing=spacing, mask=in_box)
    verts = verts.astype(np.float64) - np.asarray(pad) * np.asarray(spacing)
    tri = verts[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    face_area = 0.5 * np.linalg.norm(cross, axis=1)
    areas = np.bincount(faces.ravel(), weights=np.repeat(face_area / 3.0, 3), minlength=len(verts))
    volume = abs(
        float(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()) / 6.0
    )
    # Outward normals: minus the gradient of the smoothed mask at each vertex.
    grads = np.gradient(field[sub], *spacing)
    idx = (verts + np.asarray(pad) * np.asarray(spacing)) / np.asarray(spacing)
    idx = idx - np.array([b.start for b in sub], dtype=np.float64)
    g = np.stack([ndi.map_coordinates(gr, idx.T, order=1, mode="nearest") for gr in grads], axis=1)
    norm = np.linalg.norm(g, axis=1)
    ok = norm > 0
    normals = np.zeros_like(g)
    normals[ok] = -g[ok] / norm[ok, None]
    return SurfaceMesh(
        verts_mm=verts,
        normals=normals,
        areas_mm2=areas,
        faces=faces,
        area_mm2=float(face_area.sum()),
        volume_mm3=volume,
    )


def sample_profiles(
    image: np.ndarray,
    points_mm: np.ndarray,
    directions: np.ndarray,
    offsets_mm: np.ndarray,
    *,
    spacing_zyx_mm: tuple[float, float, float],
) -> np.ndarray:
    """Sample `image` along lines ``point + offset * direction`` (trilinear, in mm).

    Parameters
    ----------
    image : (Z, Y, X) ndarray
        Values on the crop grid.
    points_mm : (N, 3) ndarray of float
        Line origins, (z, y, x) mm from the centre of voxel (0, 0, 0).
    directions : (N, 3) ndarray of float
        Unit directions.
    offsets_mm : (S,) ndarray of float
        Signed distances along each line in mm.
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.

    Returns
    -------
    (N, S) ndarray of float64
        Profiles; points outside the crop take the nearest edge value.

    Examples
    --------
    >>> img = np.arange(10, dtype=float)[None, None, :].repeat(3, 0).repeat(3, 1)
    >>> sample_profiles(img, np.array([[1.0, 1.0, 4.0]]), np.array([[0.0, 0.0, 1.0]]),
    ...                 np.array([-1.0, 0.0, 2.0]), spacing_zyx_mm=(1.0, 1.0, 2.0))
    array([[1.5, 2. , 3. ]])
    """
    spacing = check_spacing(spacing_zyx_mm)
    grid = np.empty((3, len(points_mm), len(offsets_mm)), dtype=np.float64)
    for ax in range(3):  # (point + offset * direction) / spacing, one axis at a time
        np.multiply(offsets_mm[None, :], directions[:, ax, None], out=grid[ax])
        grid[ax] += points_mm[:, ax, None]
        grid[ax] /= spacing[ax]
    idx = grid.reshape(3, -1)
    img = image if image.dtype in (np.int16, np.float32, np.float64) else image.astype(np.float32)
    vals = ndi.map_coordinates(img, idx, order=1, mode="nearest", output=np.float64)
    return vals.reshape(len(points_mm), len(offsets_mm))


def edge_width_mm(
    profile: np.ndarray, offsets_mm: np.ndarray, *, outside_mm: float
) -> tuple[float, float, float]:
    """10-90 % width and steepest slope of a falling edge (inside high, outside low).

    The inside level is the maximum of the profile at offsets <= +0.5 mm, the
    outside level the median over the last `outside_mm` of the profile. The
    edge runs outward from the inside maximum; its 90 % and 10 % crossings are
    located by linear interpolation.

    Parameters
    ----------
    profile : (S,) ndarray of float
        Mean HU profile along the outward normal.
    offsets_mm : (S,) ndarray of float
        Increasing offsets (mm), 0 at the surface, negative inside.
    outside_mm : float
        Length (mm) at the outer end of the profile taken as the outside level.

    Returns
    -------
    width_mm : float
        Distance between the 90 % and 10 % crossings (NaN when the edge
        amplitude is not positive or a crossing is missing).
    gradient_hu_per_mm : float
        Largest outward decrease of HU per mm between the maximum and the 10 % crossing.
    amplitude_hu : float
        Inside level minus outside level.

    Examples
    --------
    >>> s = np.linspace(-4, 6, 41)
    >>> p = np.where(s < 0, 1000.0, 0.0)
    >>> w, g, a = edge_width_mm(np.convolve(p, np.ones(5) / 5, "same"), s, outside_mm=2)
    >>> round(w, 2), a
    (1.0, 1000.0)
    """
    inside = offsets_mm <= 0.5
    i_peak = int(np.argmax(np.where(inside, profile, -np.inf)))
    outer = offsets_mm >= offsets_mm[-1] - outside_mm
    peak = float(profile[i_peak])
    base = float(np.median(profile[outer]))
    amp = peak - base
    if not amp > 0:
        return math.nan, math.nan, amp
    tail = profile[i_peak:]
    s_tail = offsets_mm[i_peak:]

    def crossing(level: float) -> float:
        below = np.nonzero(tail <= level)[0]
        if below.size == 0:
            return math.nan
        j = int(below[0])
        if j == 0:
            return float(s_tail[0])
        y0, y1 = tail[j - 1], tail[j]
        t = (y0 - level) / (y0 - y1) if y0 != y1 else 0.0
        return float(s_tail[j - 1] + t * (s_tail[j] - s_tail[j - 1]))

    s90 = crossing(base + 0.9 * amp)
    s10 = crossing(base + 0.1 * amp)
    width = s10 - s90 if math.isfinite(s10) and math.isfinite(s90) else math.nan
    stop = int(np.searchsorted(s_tail, s10)) + 1 if math.isfinite(s10) else len(tail)
    seg = tail[: max(stop, 2)]
    slope = -np.diff(seg) / np.diff(s_tail[: max(stop, 2)])
    grad = float(slope.max()) if slope.size else math.nan
    return width, grad, amp


def max_pairwise_distance_mm(points_mm: np.ndarray) -> float:
    """Largest distance between any two points (via their convex hull).

    Parameters
    ----------
    points_mm : (N, 3) ndarray of float
        Points in mm.

    Returns
    -------
    float
        The diameter of the point set in mm (0 for fewer than two points).

    Examples
    --------
    >>> max_pairwise_distance_mm(np.array([[0, 0, 0], [0, 3, 4], [0, 1, 1], [1, 1, 1.]]))
    5.0
    """
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import cdist

    pts = np.asarray(points_mm, dtype=np.float64)
    if len(pts) < 2:
        return 0.0
    if len(pts) > 8:
        with contextlib.suppress(QhullError):  # coplanar or degenerate point sets: use all points
            pts = pts[ConvexHull(pts).vertices]
    # Prune: a pair longer than a known pair length `best` needs |p - c| + |q - c| >= best
    # (c the centroid, triangle inequality), so only points with |p - c| >= best - max|q - c|
    # can be an end of the diameter. The kept pairs are compared exactly as before.
    best = _farthest_pair_mm(pts)
    r = np.linalg.norm(pts - pts.mean(axis=0), axis=1)
    pts = pts[r >= (best - float(r.max())) * (1.0 - 1e-9) - 1e-9]
    for start in range(0, len(pts), 1024):  # rows against the rows from `start` on
        best = max(best, float(cdist(pts[start : start + 1024], pts[start:]).max()))
    return best


def _farthest_pair_mm(pts: np.ndarray) -> float:
    """Length of one long pair (a lower bound of the diameter): farthest-point hops."""
    i = int(np.argmax(np.linalg.norm(pts - pts.mean(axis=0), axis=1)))
    best = 0.0
    for _ in range(3):
        d = np.linalg.norm(pts[i][None, :] - pts, axis=1)
        j = int(np.argmax(d))
        if float(d[j]) <= best:
            break
        best, i = float(d[j]), j
    return best


def shell_outside(
    mask: np.ndarray,
    spacing_zyx_mm: tuple[float, float, float],
    *,
    from_mm: float,
    to_mm: float,
) -> tuple[tuple[slice, ...], np.ndarray]:
    """Return the voxels more than `from_mm` and at most `to_mm` from a non-empty mask, in a crop.

    The voxels within r mm of the mask are its dilation by a ball of r mm: the
    same set as a distance transform's <= r, about three times faster on focus
    crops. The distance is only needed out to the shell's far side, so the work
    runs on the mask's box widened by `to_mm` (plus a voxel). With `from_mm`
    0 the shell starts right outside the mask.

    Returns
    -------
    box : tuple of slice
        The crop of `mask`'s array the shell lies in.
    shell : ndarray of bool
        The shell, on that crop.

    Examples
    --------
    >>> m = np.zeros((1, 1, 9), bool); m[0, 0, 4] = True
    >>> box, shell = shell_outside(m, (1.0, 1.0, 1.0), from_mm=1.0, to_mm=2.0)
    >>> box[2], shell[0, 0].astype(int).tolist()
    (slice(1, 8, None), [0, 1, 0, 0, 0, 1, 0])
    """
    reach = tuple(math.ceil(to_mm / s) + 1 for s in spacing_zyx_mm)
    box = mask_bbox(mask, reach)
    crop = mask[box]
    far = ball_dilate(crop, ball_structure(to_mm, spacing_zyx_mm=spacing_zyx_mm))
    near = (
        ball_dilate(crop, ball_structure(from_mm, spacing_zyx_mm=spacing_zyx_mm))
        if from_mm > 0
        else crop
    )
    return box, far & ~near
