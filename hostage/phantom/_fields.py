"""Small numerical helpers shared by the phantom modules: smooth random fields and SDF primitives.

All coordinates are millimetres in the phantom's anatomical frame, whose axes are
parallel to LPS (x = patient left, y = posterior, z = superior). Signed distances are
negative inside a shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Capsule",
    "Carved",
    "Ellipsoid",
    "ShellCap",
    "SinusoidField",
    "coverage",
    "random_rotation",
]


def coverage(sdf_mm: np.ndarray, *, voxel_mm: float) -> np.ndarray:
    """Approximate fraction of a voxel inside a shape from its signed distance.

    Parameters
    ----------
    sdf_mm : ndarray of float
        Signed distance in mm (negative inside).
    voxel_mm : float
        Voxel edge length in mm; the ramp from 0 to 1 is one voxel wide.

    Returns
    -------
    fraction : ndarray of float32
        Values in [0, 1].

    Examples
    --------
    >>> coverage(np.array([-1.0, 0.0, 1.0]), voxel_mm=1.0).tolist()
    [1.0, 0.5, 0.0]
    """
    return np.clip(0.5 - np.asarray(sdf_mm, dtype=np.float32) / np.float32(voxel_mm), 0.0, 1.0)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Return a uniformly random 3x3 rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SinusoidField:
    """A smooth random 3-D field: a normalised sum of random plane waves.

    Evaluates at any points, so the same field is consistent across grids and
    resolutions. Unit variance, zero mean (over space).

    Attributes
    ----------
    wavevectors_per_mm : (K, 3) ndarray of float64
        Angular wave vectors (rad/mm), (x, y, z) order.
    phases : (K,) ndarray of float64
        Phase of each wave in radians.
    """

    wavevectors_per_mm: np.ndarray
    phases: np.ndarray

    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        *,
        wavelength_mm: tuple[float, float],
        num_waves: int = 10,
        stretch_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> SinusoidField:
        """Draw a field whose waves have wavelengths in `wavelength_mm` (min, max).

        `stretch_xyz` > 1 along an axis makes the field vary more slowly along it.
        """
        dirs = rng.normal(size=(num_waves, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        dirs /= np.asarray(stretch_xyz, dtype=float)[None, :]
        lam = rng.uniform(wavelength_mm[0], wavelength_mm[1], size=num_waves)
        k = dirs * (2.0 * np.pi / lam)[:, None]
        return cls(wavevectors_per_mm=k, phases=rng.uniform(0, 2 * np.pi, size=num_waves))

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Evaluate at broadcastable coordinate arrays (mm); returns float32."""
        shape = np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z))
        out = np.zeros(shape, dtype=np.float32)
        amp = np.float32(np.sqrt(2.0 / len(self.phases)))
        for (kx, ky, kz), ph in zip(self.wavevectors_per_mm, self.phases, strict=True):
            arg = np.float32(kx) * x + np.float32(ky) * y + (np.float32(kz) * z + np.float32(ph))
            out += np.cos(arg, dtype=np.float32)
        out *= amp
        return out


class _Primitive:
    """Base of the SDF primitives: `sdf(x, y, z)` and an axis-aligned bounding box."""

    bbox_min: np.ndarray
    bbox_max: np.ndarray

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class Capsule(_Primitive):
    """A tapered capsule around the segment a-b (radius ra at a, rb at b), mm."""

    def __init__(self, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> None:
        self.a = np.asarray(a, float)
        self.b = np.asarray(b, float)
        self.ra, self.rb = float(ra), float(rb)
        r = max(self.ra, self.rb)
        self.bbox_min = np.minimum(self.a, self.b) - r
        self.bbox_max = np.maximum(self.a, self.b) + r
        ab = self.b - self.a
        self._ab = ab
        self._len2 = float(ab @ ab)

    def param(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Return the position along the axis, 0 at a and 1 at b (clipped)."""
        t = ((x - self.a[0]) * self._ab[0] + (y - self.a[1]) * self._ab[1]) + (
            z - self.a[2]
        ) * self._ab[2]
        return np.clip(t / self._len2, 0.0, 1.0)

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance in mm (negative inside)."""
        t = self.param(x, y, z)
        dx = x - (self.a[0] + t * self._ab[0])
        dy = y - (self.a[1] + t * self._ab[1])
        dz = z - (self.a[2] + t * self._ab[2])
        return np.sqrt(dx * dx + dy * dy + dz * dz) - (self.ra + t * (self.rb - self.ra))


class Ellipsoid(_Primitive):
    """A rotated ellipsoid: centre (mm), rotation (columns = local axes in xyz), radii (mm)."""

    def __init__(self, centre: np.ndarray, radii: np.ndarray, rotation: np.ndarray) -> None:
        self.centre = np.asarray(centre, float)
        self.radii = np.asarray(radii, float)
        self.rotation = np.asarray(rotation, float)
        ext = np.sqrt(((self.rotation * self.radii[None, :]) ** 2).sum(axis=1))
        self.bbox_min = self.centre - ext
        self.bbox_max = self.centre + ext

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance in mm (exact on the surface and at the centre)."""
        px, py, pz = x - self.centre[0], y - self.centre[1], z - self.centre[2]
        r = self.rotation
        k0 = np.zeros(np.broadcast_shapes(np.shape(px), np.shape(py), np.shape(pz)), np.float64)
        k1 = np.zeros_like(k0)
        for i in range(3):
            u = px * r[0, i] + py * r[1, i] + pz * r[2, i]
            k0 += (u / self.radii[i]) ** 2
            k1 += (u / self.radii[i] ** 2) ** 2
        k0 = np.sqrt(k0)
        k1 = np.sqrt(k1) + 1e-12
        return k0 * (k0 - 1.0) / k1


class ShellCap(_Primitive):
    """Part of a spherical shell (r_in..r_out around centre) within a cone around `axis`."""

    def __init__(
        self, centre: np.ndarray, r_in: float, r_out: float, axis: np.ndarray, cos_min: float
    ) -> None:
        self.centre = np.asarray(centre, float)
        self.r_in, self.r_out = float(r_in), float(r_out)
        self.axis = np.asarray(axis, float) / np.linalg.norm(axis)
        self.cos_min = float(cos_min)
        self.bbox_min = self.centre - self.r_out
        self.bbox_max = self.centre + self.r_out

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance in mm."""
        px, py, pz = x - self.centre[0], y - self.centre[1], z - self.centre[2]
        rho = np.sqrt(px * px + py * py + pz * pz) + 1e-9
        cosang = (px * self.axis[0] + py * self.axis[1] + pz * self.axis[2]) / rho
        shell = np.maximum(rho - self.r_out, self.r_in - rho)
        cut = (self.cos_min - cosang) * rho
        return np.maximum(shell, cut)


class Carved(_Primitive):
    """A shape with a ball removed from it (e.g. the ilium kept clear of the femoral head)."""

    def __init__(self, shape: _Primitive, centre: np.ndarray, radius: float) -> None:
        self.shape = shape
        self.centre = np.asarray(centre, float)
        self.radius = float(radius)
        self.bbox_min = shape.bbox_min
        self.bbox_max = shape.bbox_max

    def sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Approximate signed distance in mm."""
        c = self.centre
        rho = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
        return np.maximum(self.shape.sdf(x, y, z), self.radius - rho)
