"""Synthetic CT phantoms of a paralysed patient's hips and thighs with HO of known maturity.

``make_phantom(shape_zyx, spacing_zyx_mm, *, rng, lesions=...) -> Phantom`` builds a
volume in Hounsfield units plus its ground truth; :func:`write_phantom` writes it as
a CT DICOM series with ``truth.json``. The truth is for tests only: the pipeline
reads nothing but the pixels and the standard DICOM geometry.

See ``docs/phantoms.md`` for what the anatomy, lesions and scanner model look like.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_spacing
from ..enums import Resection, Stage
from ..io.volume import Volume
from .anatomy import LAYOUTS, SITES, make_anatomy
from .lesions import (
    DISTRACTOR_KINDS,
    SHAPES,
    Built,
    DistractorTruth,
    LesionSpec,
    LesionTruth,
    Placer,
    build_distractor,
    build_lesion,
    parse_lesion_specs,
    resolve_spec,
)
from .scanner import ScannerSettings, project_mask, render_volume
from .write import write_phantom

__all__ = [
    "DISTRACTOR_KINDS",
    "LAYOUTS",
    "SHAPES",
    "SITES",
    "DistractorTruth",
    "LesionSpec",
    "LesionTruth",
    "Phantom",
    "PhantomTruth",
    "ScannerSettings",
    "expected_resection",
    "make_phantom",
    "parse_lesion_specs",
    "write_phantom",
]

logger = logging.getLogger(__name__)


def expected_resection(lesions: Sequence[LesionTruth]) -> Resection:
    """Return the study verdict that CONTRACT.md's rule gives for these lesions.

    ``no_foci`` without lesions; ``not_ready`` if any lesion is amorphous or
    immature; else ``indeterminate`` if any lesion is atypical (central-first);
    else ``ready``.

    Examples
    --------
    >>> expected_resection([])
    <Resection.NO_FOCI: 'no_foci'>
    """
    if not lesions:
        return Resection.NO_FOCI
    if any(t.stage in (Stage.AMORPHOUS, Stage.IMMATURE) for t in lesions):
        return Resection.NOT_READY
    if any(t.central_first for t in lesions):
        return Resection.INDETERMINATE
    return Resection.READY


@dataclass(frozen=True, slots=True, kw_only=True)
class PhantomTruth:
    """Ground truth of a phantom (what ``truth.json`` holds).

    Attributes
    ----------
    lesions : tuple of LesionTruth
        The HO foci, ids 1..n (labels in ``Phantom.lesion_labels``).
    distractors : tuple of DistractorTruth
        Look-alikes that are not HO foci.
    expected_resection : Resection
        The study verdict by CONTRACT.md's rule.
    seed : int
        Seed that rebuilds the same phantom (same pixels and truth; UIDs differ).
    study_instance_uid, series_instance_uid : str
    layout : str
        ``"pelvis"`` or ``"thigh"``.
    shape_zyx : tuple of 3 int
    spacing_zyx_mm : tuple of 3 float
    scanner : ScannerSettings
    """

    lesions: tuple[LesionTruth, ...]
    distractors: tuple[DistractorTruth, ...]
    expected_resection: Resection
    seed: int
    study_instance_uid: str
    series_instance_uid: str
    layout: str
    shape_zyx: tuple[int, int, int]
    spacing_zyx_mm: tuple[float, float, float]
    scanner: ScannerSettings
    tissue_hu: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Return the ``truth.json`` content (JSON-ready types)."""
        return {
            "schema": "hostage.phantom_truth/1",
            "lesions": [t.to_dict() for t in self.lesions],
            "distractors": [d.to_dict() for d in self.distractors],
            "expected_resection": self.expected_resection.value,
            "seed": self.seed,
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "layout": self.layout,
            "shape_zyx": list(self.shape_zyx),
            "spacing_zyx_mm": list(self.spacing_zyx_mm),
            "scanner": {
                "slice_thickness_mm": self.scanner.slice_thickness_mm,
                "psf_fwhm_mm": self.scanner.psf_fwhm_mm,
                "noise_hu": self.scanner.noise_hu,
                "noise_correlation": self.scanner.noise_correlation,
                "noise_grain_mm": self.scanner.noise_grain_mm,
            },
            "tissue_hu": {k: round(v, 1) for k, v in self.tissue_hu.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Phantom:
    """A synthetic CT study and its ground truth.

    Attributes
    ----------
    volume : Volume
        Hounsfield units (int16), LPS geometry, fresh UIDs, ``source=None``.
    truth : PhantomTruth
    lesion_labels : (Z, Y, X) ndarray of int32
        0 = background, else the ``LesionTruth.id`` of the lesion as built (before blur).
    bone_mask : (Z, Y, X) ndarray of bool
        Native skeleton as built (before blur).
    """

    volume: Volume
    truth: PhantomTruth
    lesion_labels: np.ndarray
    bone_mask: np.ndarray

    def __post_init__(self) -> None:
        for name in ("lesion_labels", "bone_mask"):
            arr = getattr(self, name).view()
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)


def _random_specs(rng: np.random.Generator, count: int | None) -> list[LesionSpec]:
    if count is None:
        count = int(rng.integers(2, 5))
        stages = list(rng.permutation([s for s in Stage]))[: min(count, 3)]
        while len(stages) < count:
            stages.append(Stage(rng.choice([s.value for s in Stage])))
        return [LesionSpec(stage=st) for st in stages]
    return [LesionSpec() for _ in range(count)]


def make_phantom(
    shape_zyx: Sequence[int] = (40, 160, 160),
    spacing_zyx_mm: Sequence[float] = (2.5, 0.8, 0.8),
    *,
    rng: int | np.random.Generator | None = None,
    lesions: int | Sequence[LesionSpec] | None = None,
    distractors: bool | int = True,
    noise_hu: float = 20.0,
    noise_correlation: float = 0.5,
    noise_grain_mm: float = 0.8,
    psf_fwhm_mm: float = 0.7,
    slice_thickness_mm: float | None = None,
    layout: str = "auto",
    study_instance_uid: str | None = None,
) -> Phantom:
    """Build a synthetic CT of the hips and thighs with HO lesions of known stage.

    Parameters
    ----------
    shape_zyx : sequence of 3 int
        Number of slices, rows and columns (each >= 8).
    spacing_zyx_mm : sequence of 3 float
        Voxel spacing in mm, (z, y, x) order: slice spacing, row and column spacing.
    rng : int, numpy.random.Generator or None
        Seed or generator. An int seed is recorded in the truth; otherwise a seed is
        drawn from it (so the phantom can always be rebuilt from ``truth.seed``).
    lesions : None, int or sequence of LesionSpec
        None: 2-4 lesions of mixed stages; int: that many fully random lesions; or
        one :class:`LesionSpec` per lesion (unspecified fields drawn at random).
    distractors : bool or int
        Add look-alikes (phleboliths, vascular calcification): True for 1-4 of them,
        False or 0 for none, or an exact number.
    noise_hu : float
        Noise standard deviation in HU (0-200).
    noise_correlation : float
        Share of the noise variance that is correlated in-plane (0-1).
    noise_grain_mm : float
        Grain size (Gaussian sigma) of the correlated noise in mm.
    psf_fwhm_mm : float
        Full width at half maximum of the scanner's point spread in mm (0-3).
    slice_thickness_mm : float, optional
        Reconstructed slice thickness; the slice spacing by default.
    layout : {"auto", "pelvis", "thigh"}
        Both hips or one hip and thigh (see :func:`hostage.phantom.anatomy.make_anatomy`).
    study_instance_uid : str, optional
        Use this StudyInstanceUID (for series of one study); a fresh UID by default.

    Returns
    -------
    Phantom

    Raises
    ------
    ValueError
        If an argument is out of range, or a requested lesion cannot be placed.

    Examples
    --------
    >>> ph = make_phantom((16, 96, 96), (2.0, 1.0, 1.0), rng=1, lesions=[LesionSpec(stage="mature", size_mm=14)])
    >>> ph.volume.hu.shape, ph.truth.lesions[0].stage.value, ph.truth.expected_resection.value
    ((16, 96, 96), 'mature', 'ready')
    """
    from pydicom.uid import generate_uid

    shape = tuple(int(v) for v in shape_zyx)
    if len(shape) != 3 or any(v < 8 or v > 4096 for v in shape):
        raise ValueError(
            f"shape_zyx must be 3 ints within 8-4096 (slices, rows, columns); got {tuple(shape_zyx)!r}"
        )
    spacing = check_spacing(spacing_zyx_mm)
    if any(v > 10.0 for v in spacing):
        raise ValueError(f"spacing_zyx_mm must be at most 10 mm per axis; got {spacing!r}")
    if not 0.0 <= noise_hu <= 200.0:
        raise ValueError(f"noise_hu must be within 0-200 HU; got {noise_hu!r}")
    if not 0.0 <= noise_correlation <= 1.0:
        raise ValueError(f"noise_correlation must be within 0-1; got {noise_correlation!r}")
    if not 0.0 <= psf_fwhm_mm <= 3.0:
        raise ValueError(f"psf_fwhm_mm must be within 0-3 mm; got {psf_fwhm_mm!r}")
    if not 0.05 <= noise_grain_mm <= 5.0:
        raise ValueError(f"noise_grain_mm must be within 0.05-5 mm; got {noise_grain_mm!r}")
    thickness = spacing[0] if slice_thickness_mm is None else float(slice_thickness_mm)
    if not 0.1 <= thickness <= 10.0:
        raise ValueError(f"slice_thickness_mm must be within 0.1-10 mm; got {slice_thickness_mm!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if isinstance(lesions, bool) or (isinstance(lesions, int) and not 0 <= lesions <= 12):
        raise ValueError(
            f"lesions must be None, an int within 0-12 or LesionSpec objects; got {lesions!r}"
        )
    if isinstance(distractors, bool):
        num_distractors = None if distractors else 0
    elif isinstance(distractors, int) and 0 <= distractors <= 12:
        num_distractors = distractors
    else:
        raise ValueError(f"distractors must be a bool or an int within 0-12; got {distractors!r}")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        seed = int(rng)
    else:
        seed = int(np.random.default_rng(rng).integers(2**31))
    anat_rng, lesion_rng, noise_rng, misc_rng = np.random.default_rng(seed).spawn(4)

    nz, ny, nx = shape
    dz, dy, dx = spacing
    fov_x, fov_y = nx * dx, ny * dy
    anatomy = make_anatomy(anat_rng, fov_x_mm=fov_x, fov_y_mm=fov_y, layout=layout)
    length_z = (nz - 1) * dz
    # the reference hip centre is at z = 0; the volume reaches 25-110 mm above it
    # (rounded so that every slice position is a short decimal string in DICOM)
    z_top = round(float(np.clip(0.3 * length_z, 25.0, 110.0) * misc_rng.uniform(0.9, 1.1)), 2)
    origin_anat = np.array([-(nx - 1) / 2.0 * dx, -(ny - 1) / 2.0 * dy, z_top - length_z])
    # patient coordinates: table position and a small off-centre reconstruction
    offset = np.array(
        [
            round(float(misc_rng.uniform(-15, 15)), 1),
            round(float(misc_rng.uniform(-15, 15)), 1),
            round(float(misc_rng.uniform(-700, 100)), 1),
        ]
    )
    anatomy.fit_table(
        float(origin_anat[2]),
        float(origin_anat[2] + length_z),
        press_mm=float(misc_rng.uniform(0, 6)),
    )
    lo = origin_anat - np.array([dx, dy, dz]) / 2.0
    hi = origin_anat + (np.array([nx, ny, nz]) - 0.5) * np.array([dx, dy, dz])
    placer = Placer(anatomy=anatomy, lo_mm=lo, hi_mm=hi)

    if lesions is None or isinstance(lesions, int):
        specs = _random_specs(lesion_rng, lesions)
        explicit = False
    else:
        specs = list(lesions)
        for i, sp in enumerate(specs):
            if not isinstance(sp, LesionSpec):
                raise ValueError(f"lesions[{i}] must be a LesionSpec; got {type(sp).__name__}")
        explicit = True
    # big lesions first: they need the room
    params = [resolve_spec(sp, lesion_rng, num_sides=len(anatomy.sides)) for sp in specs]
    # random sizes are drawn for a whole study; keep them within this field of view
    room_mm = 0.6 * float(min(hi - lo))
    for sp, p in zip(specs, params, strict=True):
        if sp.size_mm is None:
            p.size_mm = max(6.0, min(p.size_mm, room_mm))
    order = sorted(range(len(params)), key=lambda i: -params[i].size_mm)
    built_lesions: list[tuple[int, Built]] = []
    for i in order:
        b = build_lesion(
            params[i],
            np.random.default_rng(lesion_rng.integers(2**63)),
            anatomy=anatomy,
            placer=placer,
            spacing_zyx_mm=spacing,
            explicit=explicit,
        )
        if b is not None:
            built_lesions.append((i, b))
    built_lesions.sort(key=lambda t: t[0])

    explicit_distractors = num_distractors is not None
    if num_distractors is None:
        num_distractors = int(misc_rng.integers(1, 5))
    built_distractors: list[Built] = []
    for _ in range(num_distractors):
        kind = str(misc_rng.choice(DISTRACTOR_KINDS))
        b = build_distractor(kind, misc_rng, anatomy=anatomy, placer=placer, spacing_zyx_mm=spacing)
        if b is None and kind != "phlebolith":  # no room on the artery: a phlebolith instead
            b = build_distractor(
                "phlebolith", misc_rng, anatomy=anatomy, placer=placer, spacing_zyx_mm=spacing
            )
        if b is not None:
            built_distractors.append(b)
    if len(built_distractors) < num_distractors:
        logger.log(
            logging.WARNING if explicit_distractors else logging.DEBUG,
            "placed %d of %d look-alikes (no free room near the vessels)",
            len(built_distractors),
            num_distractors,
        )

    settings = ScannerSettings(
        slice_thickness_mm=thickness,
        psf_fwhm_mm=float(psf_fwhm_mm),
        noise_hu=float(noise_hu),
        noise_correlation=float(noise_correlation),
        noise_grain_mm=float(noise_grain_mm),
    )
    hu, bone = render_volume(
        anatomy,
        [b for _, b in built_lesions] + built_distractors,
        shape_zyx=(nz, ny, nx),
        spacing_zyx_mm=spacing,
        origin_anat_mm=origin_anat,
        settings=settings,
        rng=noise_rng,
    )
    labels = np.zeros(shape, np.int32)
    truths: list[LesionTruth] = []
    for lesion_id, (i, b) in enumerate(built_lesions, start=1):
        p = params[i]
        sl, m = project_mask(b, shape_zyx=shape, spacing_zyx_mm=spacing, origin_anat_mm=origin_anat)
        region = labels[sl]
        # a voxel shared with native bone (thick slices, attached lesions) stays bone
        region[m & (region == 0) & ~bone[sl]] = lesion_id
        t = b.truth
        lo_b, hi_b = t["bbox_anat_mm"]
        side = anatomy.sides[p.side_index].sign
        truths.append(
            LesionTruth(
                id=lesion_id,
                stage=p.stage,
                centre_lps_mm=_tuple3(np.asarray(t["centre_anat_mm"]) + offset),
                size_mm=float(t["size_mm"]),
                volume_mm3=float(t["volume_mm3"]),
                bbox_lps_mm=(_tuple3(lo_b + offset), _tuple3(hi_b + offset)),
                attached_to_bone=bool(t["attached_to_bone"]),
                bone_distance_mm=float(t["bone_distance_mm"]),
                shape=p.shape,
                central_first=p.central_first,
                site=p.site,
                side="left" if side > 0 else "right",
                rim_completeness=p.rim_completeness,
                rim_thickness_mm=p.rim_thickness_mm,
                density_hu=p.density_hu,
                trabecular_fraction=p.trabecular_fraction,
            )
        )
    dtruths = []
    for did, b in enumerate(built_distractors, start=1):
        t = b.truth
        lo_b, hi_b = t["bbox_anat_mm"]
        dtruths.append(
            DistractorTruth(
                id=did,
                kind=str(t["kind"]),
                centre_lps_mm=_tuple3(np.asarray(t["centre_anat_mm"]) + offset),
                size_mm=float(t["size_mm"]),
                bbox_lps_mm=(_tuple3(lo_b + offset), _tuple3(hi_b + offset)),
                peak_hu=float(t["peak_hu"]),
            )
        )
    study_uid = study_instance_uid or generate_uid()
    series_uid = generate_uid()
    volume = Volume(
        hu=hu,
        spacing_zyx_mm=spacing,
        origin_lps_mm=_tuple3(origin_anat + offset),
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        source=None,
    )
    truth = PhantomTruth(
        lesions=tuple(truths),
        distractors=tuple(dtruths),
        expected_resection=expected_resection(truths),
        seed=seed,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        layout=anatomy.layout,
        shape_zyx=(nz, ny, nx),
        spacing_zyx_mm=spacing,
        scanner=settings,
        tissue_hu={
            "cortex": anatomy.cortex_hu,
            "cancellous": anatomy.cancellous_hu,
            "marrow": anatomy.marrow_hu,
            "fat": anatomy.fat_hu,
        },
    )
    logger.debug("phantom seed=%d: %d lesions, %d distractors", seed, len(truths), len(dtruths))
    return Phantom(volume=volume, truth=truth, lesion_labels=labels, bone_mask=bone)


def _tuple3(v: np.ndarray | Sequence[float]) -> tuple[float, float, float]:
    a = [float(x) for x in np.asarray(v, dtype=float).ravel()]
    if len(a) != 3 or not all(math.isfinite(x) for x in a):
        raise ValueError(f"expected 3 finite coordinates; got {a!r}")
    return a[0], a[1], a[2]
