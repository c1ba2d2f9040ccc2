"""Margin sharpness: how abruptly the focus ends, relative to the scanner's own edge."""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ._geometry import edge_width_mm, sample_profiles, shell_outside
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "margin_features", "surface_edge_profile"]


def surface_edge_profile(roi: FocusROI, *, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Mean HU profile across the focus boundary along outward normals.

    Vertices whose normal points within ``asin(margin_max_normal_z)`` of the
    axial plane are used (thick slices blur the z direction, so only in-plane
    edges compare across slice thickness); vertices whose outward segment
    meets another structure (native bone, another focus, metal) are dropped.
    When fewer than 20 vertices remain, all vertices are used.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        ``margin_inside_mm``, ``margin_outside_mm``, ``profile_step_mm``,
        ``margin_max_normal_z``.

    Returns
    -------
    offsets_mm : (S,) ndarray of float
        From −``margin_inside_mm`` to +``margin_outside_mm``.
    profile : (S,) ndarray of float
        Mean HU at each offset.
    """
    mesh = roi.mesh
    step = config.profile_step_mm
    offsets = np.arange(-config.margin_inside_mm, config.margin_outside_mm + step / 2, step)
    keep = np.abs(mesh.normals[:, 0]) <= config.margin_max_normal_z
    if roi.exclude_mask.any() and keep.any():
        # only the in-plane vertices can be kept, so only their segments are checked
        out_pts = offsets[offsets > 0]
        hits = sample_profiles(
            roi.exclude_mask.astype(np.float32),
            mesh.verts_mm[keep],
            mesh.normals[keep],
            out_pts,
            spacing_zyx_mm=roi.spacing_zyx_mm,
        )
        keep[keep] = hits.max(axis=1) < 0.5
    if keep.sum() < 20:
        keep = np.ones(len(mesh.verts_mm), dtype=bool)
    prof = sample_profiles(
        roi.hu,
        mesh.verts_mm[keep],
        mesh.normals[keep],
        offsets,
        spacing_zyx_mm=roi.spacing_zyx_mm,
    )
    weights = mesh.areas_mm2[keep]
    return offsets, (prof * weights[:, None]).sum(axis=0) / weights.sum()


def margin_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
    """Measure the boundary of the focus.

    * ``margin_width_10_90_mm``: distance between the 90 % and 10 % levels of
      the area-weighted mean profile across the boundary (see
      :func:`surface_edge_profile`), going outward from its inside maximum.
    * ``margin_gradient_hu_per_mm``: steepest outward HU decrease of that profile.
    * ``margin_sharpness_ratio`` = ReferenceTissues.edge_width_mm /
      ``margin_width_10_90_mm``: 1 means as sharp as the native cortex of the
      same scan (the scanner's own edge response), small values mean a margin
      fading into muscle. NaN when the scan's edge width was not measured.
    * ``margin_gradient_rel`` = gradient × edge_width_mm / (cortex − muscle HU):
      the gradient relative to that of the native cortex edge of the same scan.
    * ``margin_irregularity`` = 1 − V_mesh / V_convex_hull: 0 for a convex
      focus, larger for lobulated or cloudy outlines.
    * ``margin_halo_fraction`` = (median HU of the shell ``margin_halo_from_mm``
      to ``margin_halo_to_mm`` outside the focus − muscle HU) / (median HU of
      the focus − muscle HU): how much of the focus's density is still there
      just beyond its outline. An amorphous cloud fading into the muscle
      keeps some (0.1-0.4 on phantoms), a poorly or sharply defined margin
      about none. The shell leaves out native bone, other foci and metal;
      NaN when nothing of it is left or the focus is not denser than muscle.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        Margin settings.

    Returns
    -------
    dict of str to float
    """
    from scipy.spatial import ConvexHull, QhullError

    ref = roi.reference
    with np.errstate(divide="raise", invalid="raise"):
        offsets, prof = surface_edge_profile(roi, config=config)
        width, grad, _ = edge_width_mm(prof, offsets, outside_mm=config.margin_base_mm)
        edge = ref.edge_width_mm
        ratio = (
            edge / width if math.isfinite(edge) and math.isfinite(width) and width > 0 else math.nan
        )
        span = ref.cortex_hu - ref.muscle_hu
        grad_rel = grad * edge / span if math.isfinite(edge) and span > 0 else math.nan
        try:
            hull_volume = float(ConvexHull(roi.mesh.verts_mm).volume)
        except QhullError:  # a flat mesh has no hull volume: irregularity undefined
            hull_volume = math.nan
        irregular = (
            max(0.0, 1.0 - roi.mesh.volume_mm3 / hull_volume) if hull_volume > 0 else math.nan
        )
        halo = _halo_fraction(roi, config=config)
    return {
        "margin_gradient_hu_per_mm": float(grad),
        "margin_width_10_90_mm": float(width),
        "margin_sharpness_ratio": float(ratio),
        "margin_gradient_rel": float(grad_rel),
        "margin_irregularity": float(irregular),
        "margin_halo_fraction": halo,
    }


def _halo_fraction(roi: FocusROI, *, config: FeatureConfig) -> float:
    """Scan-relative density of the shell just outside the focus (see :func:`margin_features`)."""
    box, shell = shell_outside(
        roi.mask,
        roi.spacing_zyx_mm,
        from_mm=config.margin_halo_from_mm,
        to_mm=config.margin_halo_to_mm,
    )
    shell &= ~roi.exclude_mask[box]
    muscle = roi.reference.muscle_hu
    inside = float(np.median(roi.hu[roi.mask])) - muscle
    if not shell.any() or not inside > 0:
        return math.nan
    return (float(np.median(roi.hu[box][shell])) - muscle) / inside


FAMILY = FeatureFamily(
    name="margin",
    compute=margin_features,
    features=(
        FeatureSpec(
            "margin_gradient_hu_per_mm",
            "HU/mm",
            "Steepest HU fall across the boundary along outward normals (mean in-plane profile).",
        ),
        FeatureSpec(
            "margin_width_10_90_mm",
            "mm",
            "10-90 % edge width of the mean boundary profile: narrow for sharp margins, wide when the focus fades into muscle.",
        ),
        FeatureSpec(
            "margin_sharpness_ratio",
            "1",
            "Scanner edge width on native cortex ÷ focus edge width: ~1 as sharp as cortex (mature), low when ill defined; NaN if the scan's edge was not measured.",
        ),
        FeatureSpec(
            "margin_gradient_rel",
            "1",
            "Boundary gradient × scanner edge width ÷ (cortex − muscle HU): gradient relative to the native cortex edge.",
        ),
        FeatureSpec(
            "margin_irregularity",
            "1",
            "1 − mesh volume / convex hull volume: 0 convex, larger for lobulated or cloudy outlines.",
        ),
        FeatureSpec(
            "margin_halo_fraction",
            "1",
            "(median HU 1-3 mm outside the focus − muscle) / (median HU of the focus − muscle): an amorphous cloud fading into muscle keeps some density beyond its outline, a defined margin none.",
        ),
    ),
)
