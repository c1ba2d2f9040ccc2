"""Cortical rim: whether the focus is wrapped in a continuous dense shell, with marrow inside."""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ._geometry import sample_profiles
from ._registry import FeatureFamily, FeatureSpec, only
from ._roi import FocusROI

__all__ = ["FAMILY", "core_mask", "rim_features"]


def core_mask(depth_mm: np.ndarray, mask: np.ndarray, *, shell_mm: float) -> np.ndarray:
    """Focus voxels deeper than 1.5 × `shell_mm`; if none, the deeper half (by depth) of the focus.

    Parameters
    ----------
    depth_mm : (Z, Y, X) ndarray of float
        Distance to the focus surface (mm), 0 outside.
    mask : (Z, Y, X) ndarray of bool
        The focus.
    shell_mm : float
        Shell depth (mm).

    Returns
    -------
    (Z, Y, X) ndarray of bool
        Never empty when `mask` is not.

    Examples
    --------
    >>> d = np.array([[[0, 1, 2, 3, 2, 1, 0]]], float)
    >>> core_mask(d, d > 0, shell_mm=1.5).astype(int).tolist()
    [[[0, 0, 0, 1, 0, 0, 0]]]
    """
    core = mask & (depth_mm > 1.5 * shell_mm)
    if not core.any():
        core = mask & (depth_mm >= 0.5 * float(depth_mm.max()))
    return core


def rim_features(
    roi: FocusROI, *, config: FeatureConfig, names: frozenset[str] | None = None
) -> dict[str, float]:
    """Measure the dense outer shell of one focus along inward surface normals.

    For each vertex of the focus surface mesh the HU profile is sampled
    inward along the normal (trilinear, every ``profile_step_mm``).

    * ``rim_completeness`` = Σ area(v : max HU within ``rim_shell_thickness_mm``
      plus half the scan's edge width (``ReferenceTissues.edge_width_mm``: the
      outline lies that much farther outside the cortex on a blurred scan)
      inward ≥ T) / Σ area(v): the fraction of the surface covered by a
      cortical-density shell (0-1). The cortical level is scanner-relative,
      T = muscle + ``rim_cortex_rel`` × (native cortex − muscle) with the
      reference tissues of the same scan: slice averaging and the point
      spread lower the peak of a 1-2 mm cortex (a 2.5 mm slice over a 1.2 mm
      cortex of 1000 HU peaks near 500 HU where the surface faces along z),
      and they lower the measured native cortex too. On 216 lesions of the
      training and evaluation phantoms the 10th percentile of mature
      completeness on 2-3 mm slices rose from 0.59 (a fixed 600 HU) to 0.76,
      while amorphous and immature stayed below 0.21 (90th percentile).
    * ``rim_completeness_near``: the same within ``rim_shell_thickness_mm`` alone
      (read by the central-first rule: the rim right under the outline).
    * ``rim_faint_completeness``: the same with a faint shell: maximum at least
      ``rim_faint_min_hu`` and at least 100 HU above the core median (the
      partial, faint rim of immature HO; a cortical rim counts too).
    * ``rim_thickness_mm``: median, over rim vertices with an in-plane normal
      (|n_z| ≤ ``margin_max_normal_z``; all vertices if fewer than 20), of the length of the
      inward run around the profile maximum that stays above half-way between
      that maximum and the core median (full width at half maximum). NaN when
      none of those vertices has a rim (rule: no cortex, no thickness).
    * ``rim_core_contrast_hu`` = median shell maximum (in-plane normals) − median HU of the core
      (voxels deeper than 1.5 shells; the deeper half for thin foci).
    * ``rim_fat_fraction``: fraction of core voxels whose lightly smoothed HU is
      below the midpoint between the scan's fat and muscle HU (fatty marrow).

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        ``rim_shell_thickness_mm``, ``rim_cortex_rel``, ``rim_faint_min_hu``,
        ``profile_step_mm``.
    names : frozenset of str, optional
        Compute only these features (``FeatureFamily.partial``): without
        ``rim_thickness_mm`` the profiles beyond the shell are not sampled.
        Default: all.

    Returns
    -------
    dict of str to float
        The features asked for, in declaration order.
    """
    mesh = roi.mesh
    shell = config.rim_shell_thickness_mm
    step = config.profile_step_mm
    ref = roi.reference
    with np.errstate(divide="raise", invalid="raise"):
        core = core_mask(roi.depth_mm, roi.mask, shell_mm=shell)
        core_hu = float(np.median(roi.hu[core]))
        max_depth = float(roi.depth_mm.max())
        search = max(shell, min(2.5 * shell, max_depth))
        offsets = np.arange(0.0, search + step / 2, step)
        in_shell = offsets <= shell + 1e-9
        # Every vertex needs its profile within the shell (the peak); only rim vertices with
        # an in-plane normal need the rest, for the thickness: sampled for those alone
        # (samples are pointwise, so the values are those of one full sampling).
        prof_shell = sample_profiles(
            roi.hu,
            mesh.verts_mm,
            -mesh.normals,
            offsets[in_shell],
            spacing_zyx_mm=roi.spacing_zyx_mm,
        )
        peak = prof_shell.max(axis=1)
        cortex_level = ref.muscle_hu + config.rim_cortex_rel * (ref.cortex_hu - ref.muscle_hu)
        is_rim = peak >= cortex_level
        area = mesh.areas_mm2
        near = float(area[is_rim].sum() / area.sum())
        # the focus outline lies where the blurred edge falls to the grow threshold, about half
        # the scan's edge width outside the cortex: the window reaches that much deeper
        widen = 0.5 * ref.edge_width_mm if math.isfinite(ref.edge_width_mm) else 0.0
        deeper = np.arange(shell + step, shell + widen + step / 2, step)
        peak_wide = peak
        if len(deeper) and (names is None or "rim_completeness" in names):
            extra = sample_profiles(
                roi.hu, mesh.verts_mm, -mesh.normals, deeper, spacing_zyx_mm=roi.spacing_zyx_mm
            )
            peak_wide = np.maximum(peak, extra.max(axis=1))
        completeness = float(area[peak_wide >= cortex_level].sum() / area.sum())
        is_faint = (peak >= config.rim_faint_min_hu) & (peak >= core_hu + 100.0)
        faint = float(area[is_faint].sum() / area.sum())
        # in-plane normals: thick slices do not average the shell there
        planar = np.abs(mesh.normals[:, 0]) <= config.margin_max_normal_z
        if planar.sum() < 20:
            planar = np.ones(len(peak), dtype=bool)
        thick = math.nan
        rim_p = is_rim & planar
        if rim_p.any() and (names is None or "rim_thickness_mm" in names):
            prof = np.empty((int(rim_p.sum()), len(offsets)))
            prof[:, in_shell] = prof_shell[rim_p]
            if not in_shell.all():
                prof[:, ~in_shell] = sample_profiles(
                    roi.hu,
                    mesh.verts_mm[rim_p],
                    -mesh.normals[rim_p],
                    offsets[~in_shell],
                    spacing_zyx_mm=roi.spacing_zyx_mm,
                )
            ipk = np.argmax(np.where(in_shell[None, :], prof, -np.inf), axis=1)[:, None]
            # the run of samples around the peak that stay at or above half maximum
            below = prof < 0.5 * (peak[rim_p, None] + core_hu)
            pos = np.arange(len(offsets))[None, :]
            lo = np.where(below & (pos < ipk), pos, -1).max(axis=1) + 1
            hi = np.where(below & (pos > ipk), pos, len(offsets)).min(axis=1) - 1
            thick = float(np.median((hi - lo + 1) * step))
        fat_level = 0.5 * (ref.fat_hu + ref.muscle_hu)
        fat_fraction = float(np.mean(roi.hu_smooth[core] < fat_level))
    values = {
        "rim_completeness": completeness,
        "rim_completeness_near": near,
        "rim_faint_completeness": faint,
        "rim_thickness_mm": thick,
        "rim_core_contrast_hu": float(np.median(peak[planar]) - core_hu),
        "rim_fat_fraction": fat_fraction,
    }
    return only(values, names)


FAMILY = FeatureFamily(
    name="rim",
    compute=rim_features,
    partial=True,
    features=(
        FeatureSpec(
            "rim_completeness",
            "1",
            "Fraction of the focus surface (area-weighted) whose inward shell (rim_shell_thickness_mm plus half the scan's edge width) reaches the scan's cortical level (muscle + rim_cortex_rel × (native cortex − muscle)): the continuous cortical outline of mature HO.",
        ),
        FeatureSpec(
            "rim_completeness_near",
            "1",
            "rim_completeness with the shell window alone (rim_shell_thickness_mm, not widened by half the scan's edge width): the rim right under the outline, for the central-first rule.",
        ),
        FeatureSpec(
            "rim_faint_completeness",
            "1",
            "Fraction of the surface with a shell at least rim_faint_min_hu and 100 HU above the core: the partial, faint rim of immature HO (cortical rims count too).",
        ),
        FeatureSpec(
            "rim_thickness_mm",
            "mm",
            "Median half-maximum thickness of the cortical shell where present; NaN when there is no rim.",
        ),
        FeatureSpec(
            "rim_core_contrast_hu",
            "HU",
            "Median shell maximum minus median core HU: dense outside, lighter inside (zonal maturation).",
        ),
        FeatureSpec(
            "rim_fat_fraction",
            "1",
            "Fraction of the core below the fat/muscle HU midpoint: fatty marrow inside mature HO.",
        ),
    ),
)
