"""Heterotopic ossification lesions of known stage, and look-alikes that are not HO.

Each lesion is built on its own fine isotropic grid (a local box, 0.25-0.6 mm),
then placed in a muscle of the anatomy, then area-averaged onto the scanner's
internal grid. Nothing here touches a whole volume.

The three stages follow DOMAIN.md and the seed papers (seed 002, Fig. 4: amorphous
calcification with ill-defined margins and no trabecular structure; immature
ossification with poorly defined margins and an initial trabecular formation;
mature ossification outlined by cortex with a well-defined cancellous centre; seed
000: mineralisation proceeds from the periphery to the centre, central-first is
atypical):

``amorphous``
    A cloud of faint, patchy mineral (cloudy patches plus punctate specks) whose
    density fades into the muscle over 2.5-8 mm (wider for larger clouds), in a faint
    mineral haze (25-45 % of the cloud's mean excess over muscle) that thins out
    over that distance beyond its outline. No rim, no trabeculae. Mean
    140-330 HU over the lesion, specks 250-450 HU, never above 650 HU.
``immature``
    A sparse, irregular 3-D network of plates and rods of woven bone (600-1000 HU
    material, bone volume fraction 0.15-0.28) in an osteoid haze (80-200 HU above
    muscle; the lesion averages about 250-450 HU), denser at the
    periphery, with a partial faint rim (20-60 % of the surface, 0.8-1.8 mm,
    400-700 HU) and a poorly defined margin that fades over 1.0-2.5 mm: sharper
    than an amorphous cloud's fade, blurrier than a mature cortex (DOMAIN.md).
``mature``
    A continuous cortical shell (1.0-2.6 mm, 950-1500 HU, 93-100 % complete) around
    organised cancellous bone: aligned plates and rods (750-1150 HU material, bone
    volume fraction 0.24-0.38, sparser in the core) with fatty marrow (-90 to -20
    HU) between. Sharp margin.

An atypical lesion (``central_first=True``) is densest at its centre and fades
outwards with no rim, separated from bone by a lucent line.

Look-alikes (``distractors``): phleboliths (round, 2-5 mm, dense, sometimes with a
lucent centre) and vascular calcification (a thin arc of the femoral artery wall,
a few mm long).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi
from scipy.spatial.distance import pdist

from ..enums import Stage
from ._fields import SinusoidField, random_rotation
from .anatomy import SITES, Anatomy

__all__ = [
    "DISTRACTOR_KINDS",
    "SHAPES",
    "DistractorTruth",
    "LesionSpec",
    "LesionTruth",
    "parse_lesion_specs",
]

logger = logging.getLogger(__name__)

#: Lesion shapes.
SHAPES = ("ellipsoid", "lobulated", "strip", "irregular")

#: Kinds of look-alike that are not HO foci.
DISTRACTOR_KINDS = ("phlebolith", "vascular_calcification")

_MUSCLE_HU = 45.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LesionSpec:
    """What to build for one lesion; every field left as None is drawn at random.

    Attributes
    ----------
    stage : Stage or str, optional
        ``"amorphous"``, ``"immature"`` or ``"mature"``.
    size_mm : float, optional
        Target largest diameter in mm (5-80). The lesion is shrunk if it does not fit
        in the muscle where it is placed; the truth records the size as built.
    shape : str, optional
        One of ``"ellipsoid"``, ``"lobulated"``, ``"strip"``, ``"irregular"``.
    attached_to_bone : bool, optional
        Touching a native bone surface (True) or separated from it by a cleft.
    central_first : bool
        Build the atypical pattern: densest at the centre, no rim (default False).
    site : str, optional
        Muscle site: ``"iliopsoas"``, ``"gluteal"``, ``"abductor"``, ``"adductor"``
        or ``"vastus"``.
    density_hu : float, optional
        Amorphous: target mean HU; immature: trabecular material HU; mature: cortex HU.
    rim_completeness : float, optional
        Fraction 0-1 of the surface covered by a rim (immature and mature only).
    rim_thickness_mm : float, optional
        Rim thickness in mm (immature and mature only).
    cleft_mm : float, optional
        Minimum gap to native bone in mm when not attached (2-10 by default).

    Examples
    --------
    >>> LesionSpec(stage="mature", size_mm=30.0).stage
    <Stage.MATURE: 'mature'>
    >>> LesionSpec(shape="cube")
    Traceback (most recent call last):
    ...
    ValueError: LesionSpec.shape must be one of ('ellipsoid', 'lobulated', 'strip', 'irregular'); got 'cube'
    """

    stage: Stage | str | None = None
    size_mm: float | None = None
    shape: str | None = None
    attached_to_bone: bool | None = None
    central_first: bool = False
    site: str | None = None
    density_hu: float | None = None
    rim_completeness: float | None = None
    rim_thickness_mm: float | None = None
    cleft_mm: float | None = None

    def __post_init__(self) -> None:
        if self.stage is not None and not isinstance(self.stage, Stage):
            try:
                object.__setattr__(self, "stage", Stage(self.stage))
            except ValueError:
                raise ValueError(
                    f"LesionSpec.stage must be one of {[s.value for s in Stage]}; got {self.stage!r}"
                ) from None
        if self.shape is not None and self.shape not in SHAPES:
            raise ValueError(f"LesionSpec.shape must be one of {SHAPES}; got {self.shape!r}")
        if self.site is not None and self.site not in SITES:
            raise ValueError(f"LesionSpec.site must be one of {SITES}; got {self.site!r}")
        if self.size_mm is not None and not (3.0 <= self.size_mm <= 120.0):
            raise ValueError(f"LesionSpec.size_mm must be within 3-120 mm; got {self.size_mm!r}")
        if self.rim_completeness is not None and not (0.0 <= self.rim_completeness <= 1.0):
            raise ValueError(
                f"LesionSpec.rim_completeness must be within 0-1; got {self.rim_completeness!r}"
            )
        for name in ("rim_thickness_mm", "cleft_mm"):
            v = getattr(self, name)
            if v is not None and not (0.0 < v <= 30.0):
                raise ValueError(f"LesionSpec.{name} must be within (0, 30] mm; got {v!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LesionTruth:
    """Ground truth of one lesion as built (before scanner blur and noise).

    Attributes
    ----------
    id : int
        Label of the lesion in ``Phantom.lesion_labels`` (1, 2, ...).
    stage : Stage
    centre_lps_mm : tuple of 3 float
        Centroid of the lesion, DICOM LPS (x, y, z) in mm.
    size_mm : float
        Largest diameter in mm.
    volume_mm3 : float
        Volume in mm³.
    bbox_lps_mm : tuple of 2 tuple of 3 float
        ((xmin, ymin, zmin), (xmax, ymax, zmax)) in LPS mm.
    attached_to_bone : bool
        The lesion touches native bone.
    bone_distance_mm : float
        Gap between the lesion and the nearest native bone in mm (0 when attached).
    shape : str
    central_first : bool
        Atypical central-first mineralisation.
    site : str
        Muscle site.
    side : str
        ``"left"`` or ``"right"`` (patient side).
    rim_completeness : float
        Fraction of the surface with a rim (0 for amorphous).
    rim_thickness_mm : float
        Rim thickness in mm (0 without a rim).
    density_hu : float
        The stage's density parameter (see :class:`LesionSpec`).
    trabecular_fraction : float
        Bone volume fraction of the trabecular network inside (0 without one).
    """

    id: int
    stage: Stage
    centre_lps_mm: tuple[float, float, float]
    size_mm: float
    volume_mm3: float
    bbox_lps_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    attached_to_bone: bool
    bone_distance_mm: float
    shape: str
    central_first: bool = False
    site: str = ""
    side: str = ""
    rim_completeness: float = 0.0
    rim_thickness_mm: float = 0.0
    density_hu: float = 0.0
    trabecular_fraction: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (the ``truth.json`` lesion entry)."""
        return {
            "id": self.id,
            "stage": self.stage.value,
            "centre_lps_mm": [round(v, 3) for v in self.centre_lps_mm],
            "size_mm": round(self.size_mm, 3),
            "volume_mm3": round(self.volume_mm3, 3),
            "bbox_lps_mm": [[round(v, 3) for v in corner] for corner in self.bbox_lps_mm],
            "attached_to_bone": self.attached_to_bone,
            "bone_distance_mm": round(self.bone_distance_mm, 3),
            "shape": self.shape,
            "central_first": self.central_first,
            "site": self.site,
            "side": self.side,
            "rim_completeness": round(self.rim_completeness, 3),
            "rim_thickness_mm": round(self.rim_thickness_mm, 3),
            "density_hu": round(self.density_hu, 1),
            "trabecular_fraction": round(self.trabecular_fraction, 4),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DistractorTruth:
    """Ground truth of one look-alike that is not an HO focus.

    Attributes
    ----------
    id : int
        1, 2, ... (not a label in ``Phantom.lesion_labels``).
    kind : str
        ``"phlebolith"`` or ``"vascular_calcification"``.
    centre_lps_mm : tuple of 3 float
        LPS (x, y, z) in mm.
    size_mm : float
        Largest dimension in mm.
    bbox_lps_mm : tuple of 2 tuple of 3 float
    peak_hu : float
        Material density before blur, HU.
    """

    id: int
    kind: str
    centre_lps_mm: tuple[float, float, float]
    size_mm: float
    bbox_lps_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    peak_hu: float

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (the ``truth.json`` distractor entry)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "centre_lps_mm": [round(v, 3) for v in self.centre_lps_mm],
            "size_mm": round(self.size_mm, 3),
            "bbox_lps_mm": [[round(v, 3) for v in corner] for corner in self.bbox_lps_mm],
            "peak_hu": round(self.peak_hu, 1),
        }


# ---------------------------------------------------------------------------- built objects
@dataclass(kw_only=True, eq=False)
class Built:
    """A lesion or look-alike on its fine local grid (anatomical frame, mm).

    ``alpha`` is the fraction of the voxel whose tissue is replaced by ``value``;
    ``excess`` is HU added on top of the tissue (mineral in muscle). The rendered
    HU is ``background * (1 - alpha) + alpha * value + excess``.
    """

    origin_mm: np.ndarray  # centre of fine voxel (0, 0, 0), (x, y, z)
    voxel_mm: float
    alpha: np.ndarray  # (nz, ny, nx) float32
    value: np.ndarray  # (nz, ny, nx) float32
    excess: np.ndarray  # (nz, ny, nx) float32
    mask: np.ndarray  # (nz, ny, nx) bool: the lesion as built
    truth: dict[str, Any] = field(default_factory=dict)

    def axes_mm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fine-voxel centre coordinates along z, y, x (mm)."""
        nz, ny, nx = self.mask.shape
        o, h = self.origin_mm, self.voxel_mm
        return (o[2] + h * np.arange(nz), o[1] + h * np.arange(ny), o[0] + h * np.arange(nx))


# ---------------------------------------------------------------------------- shapes
_Sdf = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _ellipsoid_sdf(radii: np.ndarray) -> _Sdf:
    # float32 scalars keep float32 grids in float32
    a, b, c = (np.float32(1.0 / v) for v in np.asarray(radii, float))
    a2, b2, c2 = a * a, b * b, c * c

    def f(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        k0 = np.sqrt((x * a) ** 2 + (y * b) ** 2 + (z * c) ** 2)
        k1 = np.sqrt((x * a2) ** 2 + (y * b2) ** 2 + (z * c2) ** 2) + np.float32(1e-9)
        return k0 * (k0 - np.float32(1.0)) / k1

    return f


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _make_shape(rng: np.random.Generator, shape: str, size_mm: float) -> tuple[_Sdf, float]:
    """Return a local signed-distance function (mm, centred near 0) and its bounding radius."""
    r = size_mm / 2.0
    if shape == "ellipsoid":
        radii = r * np.array([1.0, rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.85)])
        base = _ellipsoid_sdf(radii)
        rot = random_rotation(rng)
    elif shape == "strip":
        w = max(rng.uniform(0.09, 0.2) * size_mm, 2.2)
        t = max(rng.uniform(0.06, 0.14) * size_mm, 1.8)
        radii = np.array([r, w / 2.0 + 0.5, t / 2.0 + 0.5])
        ell = _ellipsoid_sdf(radii)
        bend = rng.uniform(-1.0, 1.0) * 0.25 / max(r, 1.0)

        def base(x, y, z):
            return ell(x, y - bend * (x * x - r * r / 3.0), z)

        # strips follow the muscle fibres: long axis within 35 degrees of z
        long_axis = np.array([rng.normal(0, 0.4), rng.normal(0, 0.4), 1.0])
        long_axis /= np.linalg.norm(long_axis)
        other = np.cross(long_axis, rng.normal(size=3))
        other /= np.linalg.norm(other)
        rot = np.stack([long_axis, other, np.cross(long_axis, other)], axis=1)
    elif shape == "lobulated":
        main = 0.62 * r
        parts: list[tuple[np.ndarray, _Sdf]] = [
            (np.zeros(3), _ellipsoid_sdf(main * np.array([1.0, 0.85, 0.75])))
        ]
        for _ in range(int(rng.integers(2, 5))):
            rl = rng.uniform(0.3, 0.45) * r
            d = rng.normal(size=3)
            d /= np.linalg.norm(d)
            off = d * (r - rl) * rng.uniform(0.85, 1.0)
            parts.append(
                (
                    off.astype(np.float32),
                    _ellipsoid_sdf(rl * np.array([1.0, rng.uniform(0.7, 1.0), 0.8])),
                )
            )
        k = 0.25 * r

        def base(x, y, z):
            out = None
            for off, f in parts:
                v = f(x - off[0], y - off[1], z - off[2])
                out = v if out is None else _smin(out, v, k)
            return out

        rot = random_rotation(rng)
    elif shape == "irregular":
        radii = r * np.array([0.85, rng.uniform(0.55, 0.8), rng.uniform(0.45, 0.7)])
        ell = _ellipsoid_sdf(radii)
        bumps = SinusoidField.random(rng, wavelength_mm=(0.5 * r, 1.4 * r), num_waves=7)
        amp = rng.uniform(0.14, 0.22) * r

        def base(x, y, z):
            return ell(x, y, z) + amp * bumps(x, y, z)

        rot = random_rotation(rng)
    else:  # pragma: no cover - checked by LesionSpec
        raise ValueError(f"unknown shape {shape!r}")

    rot = rot.astype(np.float32)  # float32 grids stay float32

    def sdf(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        # rot columns are the local axes in the anatomical frame: local = rot.T @ p
        u = x * rot[0, 0] + y * rot[1, 0] + z * rot[2, 0]
        v = x * rot[0, 1] + y * rot[1, 1] + z * rot[2, 1]
        w = x * rot[0, 2] + y * rot[1, 2] + z * rot[2, 2]
        return base(u, v, w)

    return sdf, 1.25 * r + 1.0


# ---------------------------------------------------------------------------- random fields
def _bandpass(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    *,
    voxel_mm: float,
    wavelength_mm: float,
    rel_bandwidth: float,
    stretch_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Gaussian random field with a ring spectrum around 1/wavelength; unit std, float32."""
    white = rng.standard_normal(shape, dtype=np.float32)
    spec = sfft.rfftn(white, workers=1)
    kz = sfft.fftfreq(shape[0], d=voxel_mm)[:, None, None] * stretch_zyx[0]
    ky = sfft.fftfreq(shape[1], d=voxel_mm)[None, :, None] * stretch_zyx[1]
    kx = sfft.rfftfreq(shape[2], d=voxel_mm)[None, None, :] * stretch_zyx[2]
    k = np.sqrt(kz * kz + ky * ky + kx * kx).astype(np.float32)
    k0 = 1.0 / wavelength_mm
    filt = np.exp(-0.5 * ((k - k0) / (rel_bandwidth * k0)) ** 2).astype(np.float32)
    out = sfft.irfftn(spec * filt, s=shape, workers=1).astype(np.float32)
    out /= max(float(out.std()), 1e-6)
    return out


def _quantile(a: np.ndarray, q: float, rng: np.random.Generator) -> float:
    flat = a.ravel()
    if flat.size > 200_000:
        flat = flat[rng.integers(0, flat.size, 200_000)]
    return float(np.quantile(flat, q))


def _network(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    *,
    voxel_mm: float,
    wavelength_mm: float,
    rel_bandwidth: float,
    bone_fraction: float,
    plate_share: float,
    stretch_zyx: tuple[float, float, float],
    density_scale: np.ndarray | None = None,
) -> np.ndarray:
    """Build a 3-D trabecular network of plates (iso-sheets of one field) and rods (sheet crossings).

    Returns a bool array; about `bone_fraction` of the voxels are bone where
    `density_scale` (0-1.5, thins the trabeculae) is 1.
    """
    n1 = _bandpass(
        rng,
        shape,
        voxel_mm=voxel_mm,
        wavelength_mm=wavelength_mm,
        rel_bandwidth=rel_bandwidth,
        stretch_zyx=stretch_zyx,
    )
    n2 = _bandpass(
        rng,
        shape,
        voxel_mm=voxel_mm,
        wavelength_mm=wavelength_mm * 1.1,
        rel_bandwidth=rel_bandwidth,
        stretch_zyx=stretch_zyx[::-1],
    )
    a1, a2 = np.abs(n1), np.abs(n2)
    tp = _quantile(a1, bone_fraction * plate_share, rng)
    band = _quantile(a1, 0.4, rng)
    tr = _quantile(a2, min(bone_fraction * (1 - plate_share) / 0.4, 0.9), rng)
    if density_scale is None:
        return (a1 < tp) | ((a2 < tr) & (a1 < band))
    return (a1 < tp * density_scale) | ((a2 < tr * density_scale) & (a1 < band))


# ---------------------------------------------------------------------------- stages
@dataclass(kw_only=True)
class _Params:
    stage: Stage
    size_mm: float
    shape: str
    attached: bool
    central_first: bool
    density_hu: float
    rim_completeness: float
    rim_thickness_mm: float
    cleft_mm: float
    site: str
    side_index: int
    trabecular_fraction: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def draw_size_mm(rng: np.random.Generator) -> float:
    """Draw a lesion diameter in mm: 5-80, small lesions rarer (5 + 75 * Beta(2, 3))."""
    return float(5.0 + 75.0 * rng.beta(2.0, 3.0))


def resolve_spec(spec: LesionSpec, rng: np.random.Generator, *, num_sides: int) -> _Params:
    """Fill every unspecified field of `spec` from `rng`."""
    stage = (
        Stage(spec.stage) if spec.stage is not None else Stage(rng.choice([s.value for s in Stage]))
    )
    if spec.central_first and spec.stage is None:
        stage = Stage.MATURE
    size = spec.size_mm if spec.size_mm is not None else draw_size_mm(rng)
    shape = (
        spec.shape if spec.shape is not None else str(rng.choice(SHAPES, p=[0.3, 0.25, 0.2, 0.25]))
    )
    attached = (
        spec.attached_to_bone
        if spec.attached_to_bone is not None
        else bool(rng.random() < (0.45 if stage is Stage.MATURE else 0.25))
    )
    if spec.central_first:
        attached = False
    if stage is Stage.AMORPHOUS:
        density = spec.density_hu if spec.density_hu is not None else rng.uniform(140.0, 330.0)
        rim_c, rim_t = 0.0, 0.0
    elif stage is Stage.IMMATURE:
        density = spec.density_hu if spec.density_hu is not None else rng.uniform(600.0, 1000.0)
        rim_c = (
            spec.rim_completeness if spec.rim_completeness is not None else rng.uniform(0.2, 0.6)
        )
        rim_t = (
            spec.rim_thickness_mm if spec.rim_thickness_mm is not None else rng.uniform(0.8, 1.8)
        )
    else:
        density = spec.density_hu if spec.density_hu is not None else rng.uniform(950.0, 1500.0)
        rim_c = (
            spec.rim_completeness if spec.rim_completeness is not None else rng.uniform(0.93, 1.0)
        )
        rim_t = (
            spec.rim_thickness_mm if spec.rim_thickness_mm is not None else rng.uniform(1.0, 2.6)
        )
    if spec.central_first:
        rim_c, rim_t = 0.0, 0.0
    cleft = spec.cleft_mm if spec.cleft_mm is not None else 2.0 + rng.exponential(2.5)
    if spec.central_first:
        cleft = min(cleft, rng.uniform(1.5, 3.0))
    site = spec.site if spec.site is not None else str(rng.choice(SITES))
    return _Params(
        stage=stage,
        size_mm=float(size),
        shape=shape,
        attached=attached,
        central_first=spec.central_first,
        density_hu=float(density),
        rim_completeness=float(rim_c),
        rim_thickness_mm=float(rim_t),
        cleft_mm=float(cleft),
        site=site,
        side_index=int(rng.integers(num_sides)),
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _rim_cover(
    rng: np.random.Generator, grids: tuple[np.ndarray, ...], completeness: float, size_mm: float
) -> np.ndarray:
    """Bool field that is True on about `completeness` of space (smooth patches)."""
    if completeness >= 0.999:
        return np.ones(np.broadcast_shapes(*(g.shape for g in grids)), bool)
    fld = SinusoidField.random(rng, wavelength_mm=(0.4 * size_mm, 1.2 * size_mm), num_waves=6)
    z, y, x = grids
    v = fld(x, y, z)
    return v > _quantile(v, 1.0 - completeness, rng)


def _amorphous_fade_mm(size_mm: float) -> float:
    """How far (mm) an amorphous cloud fades into the muscle: drawn with it, and kept clear when placed."""
    return float(np.clip(0.3 * size_mm / 2.0, 2.5, 8.0))


def _fill_stage(
    p: _Params,
    rng: np.random.Generator,
    d: np.ndarray,
    grids: tuple[np.ndarray, np.ndarray, np.ndarray],
    voxel_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (alpha, value, excess) for one lesion given its signed distance `d` (mm)."""
    shape = d.shape
    zero = np.zeros(shape, np.float32)
    inside = d <= 0
    # exact depth below the surface (the signed distances of blended shapes are approximate)
    depth = ndi.distance_transform_edt(inside, sampling=voxel_mm).astype(np.float32)
    max_depth = np.float32(max(float(depth.max()), voxel_mm))
    if p.central_first:
        rho = depth / max_depth
        core = p.density_hu if p.density_hu > 500 else rng.uniform(650.0, 1100.0)
        p.density_hu = float(core)
        prof = np.clip((rho - 0.1) / 0.5, 0.0, 1.0) ** 1.5
        tex = _bandpass(rng, shape, voxel_mm=voxel_mm, wavelength_mm=3.0, rel_bandwidth=0.6)
        exc = (core - _MUSCLE_HU) * prof * (1.0 + 0.06 * tex) + 60.0 * (rho > 0)
        exc = np.where(inside, exc, 0.0).astype(np.float32) * _sigmoid(-d / 0.4)
        return zero, zero, exc.astype(np.float32)

    if p.stage is Stage.AMORPHOUS:
        fade = _amorphous_fade_mm(p.size_mm)
        env = _sigmoid(-d / (fade / 3.0))
        lam_c = float(np.clip(0.25 * p.size_mm, 2.5, 8.0))
        cloud = _bandpass(rng, shape, voxel_mm=voxel_mm, wavelength_mm=lam_c, rel_bandwidth=0.8)
        cloud = np.clip(cloud + rng.uniform(-0.3, 0.4), 0.0, None) ** 1.3
        specks_f = _bandpass(rng, shape, voxel_mm=voxel_mm, wavelength_mm=1.6, rel_bandwidth=0.5)
        q = _quantile(specks_f, rng.uniform(0.94, 0.975), rng)
        specks = _sigmoid((specks_f - q) * 6.0)
        speck_hu = rng.uniform(250.0, 450.0)
        raw = env * (cloud + (speck_hu / 150.0) * specks)
        m = float(raw[inside].mean()) if inside.any() else 1.0
        gain = (p.density_hu - _MUSCLE_HU) / max(m, 1e-3)
        exc = np.minimum(raw * gain, 650.0 - _MUSCLE_HU).astype(np.float32)
        # ill defined, fading into the muscle (DOMAIN.md): faint mineral haze that
        # thins out over `fade` mm beyond the cloud's outline
        haze = (p.density_hu - _MUSCLE_HU) * rng.uniform(0.25, 0.45)
        exc = np.maximum(exc, haze * _sigmoid(-(d - 0.3 * fade) / (fade / 5.0)))
        p.extra["speck_hu"] = float(speck_hu)
        return zero, zero, exc

    if p.stage is Stage.IMMATURE:
        margin = rng.uniform(1.0, 2.5)
        periph = np.clip(1.0 - depth / (0.45 * p.size_mm / 2.0), 0.0, 1.0)
        bvtv = rng.uniform(0.15, 0.28)
        net = _network(
            rng,
            shape,
            voxel_mm=voxel_mm,
            wavelength_mm=rng.uniform(2.5, 4.0),
            rel_bandwidth=rng.uniform(0.45, 0.7),
            bone_fraction=bvtv,
            plate_share=0.35,
            stretch_zyx=(1.0, 1.0, 1.0),
            density_scale=(0.55 + 0.6 * periph).astype(np.float32),
        )
        p.trabecular_fraction = float(net[inside].mean()) if inside.any() else 0.0
        fuzz = SinusoidField.random(rng, wavelength_mm=(2.0, 6.0), num_waves=6)
        z, y, x = grids
        dd = d - margin * 0.5 * (1.0 + fuzz(x, y, z))
        taper = _sigmoid(-dd / (margin / 3.0))
        exc = (p.density_hu - _MUSCLE_HU) * net.astype(np.float32) * taper
        # osteoid haze: together with the network the lesion averages about 250-450 HU,
        # DOMAIN.md's intermediate density, clearly above an amorphous cloud's
        haze = rng.uniform(80.0, 200.0)
        exc += haze * _sigmoid(-d / 0.8) * taper
        cover = _rim_cover(rng, grids, p.rim_completeness, p.size_mm)
        rim = inside & (depth <= p.rim_thickness_mm) & cover
        rim_hu = rng.uniform(400.0, 700.0)
        exc = np.where(rim, np.maximum(exc, rim_hu - _MUSCLE_HU), exc)
        p.extra["rim_hu"] = float(rim_hu)
        return zero, zero, exc.astype(np.float32)

    # mature
    t_c = float(min(p.rim_thickness_mm, max(0.8, 0.15 * p.size_mm)))
    p.rim_thickness_mm = t_c
    bvtv = rng.uniform(0.24, 0.38)
    axis = int(rng.integers(3))
    stretch = [1.0, 1.0, 1.0]
    stretch[axis] = 1.6
    # trabeculae are densest under the cortex; the core holds more fatty marrow
    periph = np.clip(1.0 - (depth - t_c) / (0.35 * p.size_mm / 2.0), 0.0, 1.0)
    net = _network(
        rng,
        shape,
        voxel_mm=voxel_mm,
        wavelength_mm=rng.uniform(2.4, 4.0),
        rel_bandwidth=rng.uniform(0.18, 0.28),
        bone_fraction=bvtv,
        plate_share=0.7,
        stretch_zyx=(stretch[0], stretch[1], stretch[2]),
        density_scale=(0.75 + 0.3 * periph).astype(np.float32),
    )
    inner = depth > t_c
    p.trabecular_fraction = float(net[inner].mean()) if inner.any() else 0.0
    tb_hu = rng.uniform(750.0, 1150.0)
    marrow_hu = rng.uniform(-90.0, -20.0)
    value = np.where(net, tb_hu, marrow_hu).astype(np.float32)
    cover = _rim_cover(rng, grids, p.rim_completeness, p.size_mm)
    cortex = inside & (depth <= t_c) & cover
    var = _bandpass(rng, shape, voxel_mm=voxel_mm, wavelength_mm=4.0, rel_bandwidth=0.6)
    value = np.where(cortex, p.density_hu * (1.0 + 0.04 * var), value).astype(np.float32)
    alpha = inside.astype(np.float32)
    p.extra["trabecular_hu"] = float(tb_hu)
    p.extra["marrow_hu"] = float(marrow_hu)
    return alpha, value, zero


# ---------------------------------------------------------------------------- placement
def _point_cloud(sdf: _Sdf, bound_mm: float, size_mm: float) -> np.ndarray:
    step = max(size_mm / 14.0, 0.7)
    ax = np.arange(-bound_mm, bound_mm + step, step)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    d = sdf(x, y, z)
    # the surface layer and the centre are enough to test where the lesion fits
    keep = (d <= 0) & (d > -1.5 * step)
    pts = np.stack([x[keep], y[keep], z[keep]], axis=1)
    if len(pts) > 600:
        pts = pts[:: int(np.ceil(len(pts) / 600))]
    return np.concatenate([pts, np.zeros((1, 3))])


@dataclass(kw_only=True)
class Placer:
    """Finds room for lesions: inside muscle, inside the field of view, apart from each other."""

    anatomy: Anatomy
    lo_mm: np.ndarray  # (x, y, z) min of usable space (anatomical frame)
    hi_mm: np.ndarray
    taken: list[tuple[np.ndarray, float]] = field(default_factory=list)  # (centre, radius)
    # lesions as (centre, local signed distance, margin mm): exact clearance for small objects
    shapes: list[tuple[np.ndarray, _Sdf, float]] = field(default_factory=list)

    def clearance_mm(self, c: np.ndarray) -> float:
        """Distance (mm, approximate) from point `c` to the nearest lesion, margins included."""
        best = float("inf")
        for centre, sdf, margin in self.shapes:
            q = c - centre
            best = min(best, float(sdf(np.array(q[0]), np.array(q[1]), np.array(q[2]))) - margin)
        return best

    def fits(
        self,
        pts: np.ndarray,
        centre: np.ndarray,
        *,
        attached: bool,
        cleft_mm: float,
        margin_mm: float,
    ) -> bool:
        """Return True if the cloud `pts` (local, mm) placed at `centre` satisfies every constraint."""
        q = pts + centre[None, :]
        if np.any(q.min(axis=0) < self.lo_mm + margin_mm) or np.any(
            q.max(axis=0) > self.hi_mm - margin_mm
        ):
            return False
        rad = float(np.sqrt((pts**2).sum(axis=1)).max()) + margin_mm
        for c, r in self.taken:
            if np.linalg.norm(c - centre) < r + rad + 3.0:
                return False
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        b = self.anatomy.bone_sdf(x, y, z)
        if np.any(self.anatomy.muscle_sdf(x, y, z, bone_sdf_mm=b) > -1.0 - 0.5 * margin_mm):
            return False
        if attached:
            extent = float(np.sqrt((pts**2).sum(axis=1)).max())
            return bool(-0.2 * extent - 0.5 <= b.min() <= -0.3)
        return bool(b.min() >= cleft_mm + 0.5 * margin_mm)

    def place(
        self,
        rng: np.random.Generator,
        pts: np.ndarray,
        *,
        site: str,
        side_index: int,
        attached: bool,
        cleft_mm: float,
        margin_mm: float,
        tries: int = 80,
    ) -> np.ndarray | None:
        """Return a centre (mm) that fits, or None after `tries` attempts.

        Candidates are random points deep enough in muscle (and far enough from, or
        close enough to, bone) for the lesion's inscribed sphere; they are tried
        nearest to the requested site first, with jitter, then anywhere.
        """
        anat = self.anatomy
        radii = np.sqrt((pts**2).sum(axis=1))
        extent = float(radii.max())
        r_in = float(np.sort(radii)[1]) if len(radii) > 2 else extent  # [0] is the centre
        lo = self.lo_mm + np.minimum(extent, 0.45 * (self.hi_mm - self.lo_mm))
        hi = self.hi_mm - np.minimum(extent, 0.45 * (self.hi_mm - self.lo_mm))
        cand = lo + (hi - lo) * rng.random((4000, 3))
        b = anat.bone_sdf(cand[:, 0], cand[:, 1], cand[:, 2])
        mus = anat.muscle_sdf(cand[:, 0], cand[:, 1], cand[:, 2], bone_sdf_mm=b)
        ok = mus <= -(0.8 * r_in + 1.0)
        if attached:
            ok &= (b > 0.3 * r_in) & (b < extent + 8.0)
        else:
            ok &= b >= r_in + cleft_mm
        cand = cand[ok]
        if len(cand) == 0:
            return None
        c0, spread = anat.site_centre(site, side_index)
        score = np.linalg.norm(cand - c0, axis=1) + rng.normal(0.0, spread + 5.0, len(cand))
        order = np.argsort(score)
        for i in order[: tries // 2 if attached else tries]:
            c = cand[i]
            if attached:
                c = _slide_to_bone(anat, c, pts)
                if c is None:
                    continue
            if self.fits(pts, c, attached=attached, cleft_mm=cleft_mm, margin_mm=margin_mm):
                return c
        return None


def _slide_to_bone(anat: Anatomy, c: np.ndarray, pts: np.ndarray) -> np.ndarray | None:
    """Move `c` along the bone-distance gradient so the cloud just touches the bone."""
    e = 0.5
    probe = np.array([[0.0, 0.0, 0.0], [e, 0.0, 0.0], [0.0, e, 0.0], [0.0, 0.0, e]])
    for _ in range(3):
        q = c[None, :] + probe
        v = anat.bone_sdf(q[:, 0], q[:, 1], q[:, 2])
        d0 = float(v[0])
        if d0 > 200:
            return None
        g = v[1:] - d0
        n = np.linalg.norm(g)
        if n < 1e-6:
            return None
        g /= n
        reach = float((pts @ -g).max())  # extent of the lesion towards the bone
        c = c - g * (d0 - 0.85 * reach)
    return c


# ---------------------------------------------------------------------------- building
def fine_voxel_mm(spacing_zyx_mm: tuple[float, float, float], bound_mm: float) -> float:
    """Fine-grid step for a lesion: half the finest output spacing, 0.25-0.6 mm, <= 4 M voxels."""
    h = float(np.clip(min(spacing_zyx_mm) / 2.0, 0.25, 0.6))
    return max(h, 2.0 * bound_mm / 160.0)


def build_lesion(
    p: _Params,
    rng: np.random.Generator,
    *,
    anatomy: Anatomy,
    placer: Placer,
    spacing_zyx_mm: tuple[float, float, float],
    explicit: bool,
) -> Built | None:
    """Build and place one lesion; returns None if no room was found (random lesions only).

    Raises
    ------
    ValueError
        If an explicitly requested lesion cannot be placed even at 6 mm.
    """
    requested = p.size_mm
    size = p.size_mm
    while True:
        sdf, bound = _make_shape(rng, p.shape, size)
        pts = _point_cloud(sdf, bound, size)
        fade = 0.0
        if p.stage is Stage.AMORPHOUS:
            fade = _amorphous_fade_mm(size)
        elif p.stage is Stage.IMMATURE:
            fade = 3.5
        centre = placer.place(
            rng,
            pts,
            site=p.site,
            side_index=p.side_index,
            attached=p.attached,
            cleft_mm=p.cleft_mm + fade,
            margin_mm=1.0 + fade,
        )
        if centre is not None:
            break
        if size <= 6.0:
            if explicit:
                raise ValueError(
                    f"cannot place a {p.stage.value} lesion of {requested:.1f} mm "
                    f"(tried down to {size:.1f} mm): no room in the muscle of this field of view; "
                    "use a larger shape_zyx/spacing_zyx_mm, fewer lesions or smaller size_mm"
                )
            logger.debug("no room for a random %s lesion; skipped", p.stage.value)
            return None
        size = max(6.0, size * 0.85)
    if size < requested - 1e-6:
        logger.info("lesion shrunk from %.1f to %.1f mm to fit", requested, size)
    p.size_mm = size
    h = fine_voxel_mm(spacing_zyx_mm, bound + fade)
    half = bound + fade + 2.0 * h
    n = math.ceil(2 * half / h) + 1
    origin = centre - half
    ax = np.arange(n) * h - half
    z = ax[:, None, None].astype(np.float32)
    y = ax[None, :, None].astype(np.float32)
    x = ax[None, None, :].astype(np.float32)
    d = sdf(x, y, z).astype(np.float32)
    grids = (z, y, x)
    alpha, value, excess = _fill_stage(p, rng, d, grids, h)
    mask = d <= 0
    # clip by native bone (attached lesions are carved to the bone surface)
    active = mask | (excess > 1.0) | (alpha > 0)
    if p.attached or float(anatomy.bone_sdf(*centre)) < half * 1.8:
        idx = np.nonzero(active)
        bz, by, bx = centre[2] + ax[idx[0]], centre[1] + ax[idx[1]], centre[0] + ax[idx[2]]
        b = anatomy.bone_sdf(bx, by, bz)
        inbone = b < 0
        if np.any(inbone):
            sel = tuple(i[inbone] for i in idx)
            alpha[sel] = 0.0
            excess[sel] = 0.0
            mask[sel] = False
        bone_gap = float(max(b[mask[idx]].min(), 0.0)) if mask.any() else float("nan")
    else:
        bone_gap = float("nan")
    if not mask.any():
        return None
    built = Built(
        origin_mm=origin.astype(float),
        voxel_mm=h,
        alpha=alpha,
        value=value,
        excess=excess,
        mask=mask,
    )
    zz, yy, xx = built.axes_mm()
    iz, iy, ix = np.nonzero(mask)
    pts_mm = np.stack([xx[ix], yy[iy], zz[iz]], axis=1)
    if not np.isfinite(bone_gap):
        bone_gap = float(max(anatomy.bone_sdf(pts_mm[:, 0], pts_mm[:, 1], pts_mm[:, 2]).min(), 0.0))
    surf = _surface_points(mask, pts_mm, rng)
    diam = float(pdist(surf).max()) + h if len(surf) > 1 else h
    placer.taken.append((centre, float(np.sqrt((pts**2).sum(axis=1)).max()) + fade))
    placer.shapes.append((centre, sdf, fade))
    built.truth = {
        "centre_anat_mm": pts_mm.mean(axis=0),
        "bbox_anat_mm": (pts_mm.min(axis=0) - h / 2, pts_mm.max(axis=0) + h / 2),
        "size_mm": diam,
        "volume_mm3": float(mask.sum()) * h**3,
        "bone_distance_mm": bone_gap if bone_gap > h else 0.0,
        "attached_to_bone": bone_gap <= h,
    }
    return built


def _surface_points(mask: np.ndarray, pts_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    inner = ndi.binary_erosion(mask)
    surf = mask & ~inner
    sel = surf[mask]
    s = pts_mm[sel]
    if len(s) > 2500:
        s = s[rng.choice(len(s), 2500, replace=False)]
    return s


def build_distractor(
    kind: str,
    rng: np.random.Generator,
    *,
    anatomy: Anatomy,
    placer: Placer,
    spacing_zyx_mm: tuple[float, float, float],
) -> Built | None:
    """Build a phlebolith or a vascular calcification near the femoral/pelvic vessels."""
    h = float(np.clip(min(spacing_zyx_mm) / 3.0, 0.15, 0.3))
    s = anatomy.scale
    for attempt in range(300):
        side = int(rng.integers(len(anatomy.sides)))
        z0 = round(float(rng.uniform(placer.lo_mm[2] + 8.0, placer.hi_mm[2] - 8.0)), 1)
        vx, vy, _ = anatomy.vessel_point(side, z0)
        if kind == "phlebolith":
            diam = rng.uniform(2.0, 5.0)
            if anatomy.pelvis_ellipse is not None and rng.random() < 0.5 and z0 > -20 * s:
                sg = anatomy.sides[side].sign
                c = np.array(
                    [
                        sg * rng.uniform(30, 55) * s,
                        anatomy.pelvis_ellipse[1] - rng.uniform(-10, 30) * s,
                        z0,
                    ]
                )
            elif attempt < 150:
                c = np.array([vx - anatomy.sides[side].sign * 8.5 * s, vy, z0]) + rng.normal(
                    0, 2.0, 3
                )
            else:  # in a small intramuscular vein anywhere
                c = placer.lo_mm + (placer.hi_mm - placer.lo_mm) * rng.random(3)
                if float(anatomy.muscle_sdf(*c)) > -3.0:
                    continue
            half = diam / 2.0 + 2 * h
        else:
            length = rng.uniform(3.0, 6.0)
            diam = length
            c = np.array([vx, vy, z0])
            half = anatomy.vessel_radius_mm() + 1.5 + length / 2.0
        if np.any(c - half < placer.lo_mm + 2) or np.any(c + half > placer.hi_mm - 2):
            continue
        reach = max(diam / 2.0, anatomy.vessel_radius_mm() + 0.6)
        if placer.clearance_mm(c) < reach + 4.0:
            continue
        if any(
            np.linalg.norm(c - tc) < tr + reach + 3.0
            for tc, tr in placer.taken[len(placer.shapes) :]
        ):
            continue
        if float(anatomy.bone_sdf(*c)) < reach + 1.5 or float(anatomy.body_sdf(*c)) > -reach - 3.0:
            continue
        break
    else:
        return None
    n = math.ceil(2 * half / h) + 1
    ax = np.arange(n) * h - half
    z = ax[:, None, None]
    y = ax[None, :, None]
    x = ax[None, None, :]
    peak = rng.uniform(350.0, 950.0)
    if kind == "phlebolith":
        r = np.sqrt(x * x + y * y + z * z)
        mask = np.broadcast_to(r <= diam / 2.0, (n, n, n)).copy()
        value = np.full((n, n, n), peak, np.float32)
        if rng.random() < 0.3 and diam > 3.0:
            value[np.broadcast_to(r < diam / 5.0, (n, n, n))] = rng.uniform(60.0, 150.0)
    else:
        rv = anatomy.vessel_radius_mm()
        wall = rng.uniform(0.6, 1.1)
        start = rng.uniform(0, 2 * np.pi)
        arc = rng.uniform(np.pi / 3, np.pi)
        ang = np.mod(np.arctan2(y, x) - start, 2 * np.pi)
        r = np.sqrt(x * x + y * y)
        mask = (np.abs(r - rv) <= wall / 2.0) & (ang <= arc) & (np.abs(z) <= length / 2.0)
        mask = np.broadcast_to(mask, (n, n, n)).copy()
        value = np.full((n, n, n), peak, np.float32)
    origin = c - half
    built = Built(
        origin_mm=origin,
        voxel_mm=h,
        alpha=mask.astype(np.float32),
        value=value,
        excess=np.zeros((n, n, n), np.float32),
        mask=mask,
    )
    zz, yy, xx = built.axes_mm()
    iz, iy, ix = np.nonzero(mask)
    pts = np.stack([xx[ix], yy[iy], zz[iz]], axis=1)
    placer.taken.append((c, half))
    built.truth = {
        "kind": kind,
        "centre_anat_mm": pts.mean(axis=0),
        "bbox_anat_mm": (pts.min(axis=0) - h / 2, pts.max(axis=0) + h / 2),
        "size_mm": float(pdist(pts[:: max(1, len(pts) // 1500)]).max()) + h if len(pts) > 1 else h,
        "peak_hu": float(peak),
    }
    return built


def parse_lesion_specs(text: str) -> list[LesionSpec]:
    """Parse a comma-separated lesion list such as ``"amorphous,mature:30:apart,atypical"``.

    Each item is a stage (``amorphous``, ``immature``, ``mature``) or ``atypical`` (a
    central-first lesion), optionally followed by ``:``-separated qualifiers in any
    order: a size in mm, a shape (``ellipsoid``, ``lobulated``, ``strip``,
    ``irregular``), a site (``iliopsoas``, ``gluteal``, ``abductor``, ``adductor``,
    ``vastus``) and ``attached`` or ``apart``. ``"none"`` gives no lesion.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of LesionSpec

    Raises
    ------
    ValueError
        On an unknown stage or qualifier (with a suggestion) or a bad size.

    Examples
    --------
    >>> [(s.stage.value, s.size_mm, s.shape) for s in parse_lesion_specs("mature:30:strip, amorphous")]
    [('mature', 30.0, 'strip'), ('amorphous', None, None)]
    >>> parse_lesion_specs("matur")
    Traceback (most recent call last):
    ...
    ValueError: unknown lesion stage 'matur' in --lesions (did you mean 'mature'?); use amorphous, immature, mature or atypical, optionally with :SIZE_MM
    """
    from ..errors import did_you_mean

    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["none"]:
        return []
    names = ("amorphous", "immature", "mature", "atypical")
    qualifiers = (*SHAPES, *SITES, "attached", "apart")
    specs = []
    for item in items:
        name, *rest = (part.strip().lower() for part in item.split(":"))
        if name not in names:
            raise ValueError(
                f"unknown lesion stage {name!r} in --lesions{did_you_mean(name, names)}; "
                "use amorphous, immature, mature or atypical, optionally with :SIZE_MM"
            )
        fields: dict[str, Any] = {}
        for q in rest:
            if q in SHAPES:
                fields["shape"] = q
            elif q in SITES:
                fields["site"] = q
            elif q in ("attached", "apart"):
                fields["attached_to_bone"] = q == "attached"
            else:
                try:
                    fields["size_mm"] = float(q)
                except ValueError:
                    raise ValueError(
                        f"bad qualifier {q!r} in --lesions item {item!r}{did_you_mean(q, qualifiers)}; "
                        "write e.g. mature:30:lobulated:apart (size mm, shape, site, attached/apart)"
                    ) from None
        if name == "atypical":
            specs.append(LesionSpec(stage=Stage.MATURE, central_first=True, **fields))
        else:
            specs.append(LesionSpec(stage=Stage(name), **fields))
    return specs
