"""Configuration: a frozen dataclass tree, loaded from TOML and checked strictly.

The dataclass defaults below are the single source of truth.
``configs/default.toml`` is a documented copy generated from them
(``python -m hostage.config > configs/default.toml``), and a test asserts that
the two agree. A user's TOML file may set any subset of keys; everything else
keeps its default. Unknown tables or keys, wrong types and out-of-range values
raise :class:`~hostage.errors.ConfigError` naming the file, table, key and
allowed range.

To add a setting: add a field with :func:`param` to the right sub-config
(with its documentation, unit in the name and range), then regenerate
``configs/default.toml``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "BatchConfig",
    "ClassifyConfig",
    "Config",
    "FeatureConfig",
    "LoadConfig",
    "SegmentConfig",
    "load_config",
    "param",
    "render_toml",
]


def param(
    default: Any,
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_exclusive: bool = False,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare one documented, range-checked setting of a sub-config.

    Parameters
    ----------
    default : bool, int, float, str or tuple
        The default value (the source of truth).
    doc : str
        One-line documentation, written into ``configs/default.toml``.
    min, max : float, optional
        Allowed range (inclusive unless `min_exclusive`).
    min_exclusive : bool
        If True, the value must be strictly greater than `min`.
    choices : tuple of str, optional
        Allowed values of a string setting.

    Returns
    -------
    dataclasses.Field
    """
    meta = {"doc": doc, "min": min, "max": max, "min_exclusive": min_exclusive, "choices": choices}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


_FROZEN = {"frozen": True, "slots": True, "kw_only": True}


@dataclass(**_FROZEN)
class LoadConfig:
    """How studies are read (``[load]`` table)."""

    max_voxels: int = param(
        1_200_000_000,
        "Refuse a series whose declared size exceeds this many voxels, before allocating.",
        min=1,
    )
    slice_gap_rtol: float = param(
        0.05,
        "Relative tolerance on slice-to-slice spacing before the stack counts as non-uniform.",
        min=0,
        max=1,
    )
    slice_gap_atol_mm: float = param(
        0.1,
        "Absolute tolerance (mm) on slice-to-slice spacing before the stack counts as non-uniform.",
        min=0,
    )
    allow_missing_slices: bool = param(
        False,
        "Resample across gaps (one or more missing slices) instead of raising an error.",
    )
    allow_nonuniform_spacing: bool = param(
        True,
        "Resample a stack with slightly non-uniform slice spacing to a regular grid (with a warning).",
    )
    max_nonuniform_ratio: float = param(
        1.5,
        "Largest/smallest slice step ratio still resampled; beyond it the stack is an error.",
        min=1,
    )
    allow_gantry_tilt: bool = param(
        True,
        "Resample a gantry-tilted (sheared) stack onto an orthogonal grid (with a warning).",
    )
    max_gantry_tilt_deg: float = param(
        30.0,
        "Largest gantry tilt (degrees) that is resampled; beyond it the stack is an error.",
        min=0,
        max=89,
    )


@dataclass(**_FROZEN)
class SegmentConfig:
    """How foci, native bone and the body are found (``[segment]`` table)."""

    body_min_hu: float = param(-500.0, "Voxels above this HU may belong to the body (vs. air).")
    body_margin_mm: float = param(
        5.0,
        "Foci are searched at least this deep (mm) below the body surface (skin, fat; away from the table).",
        min=0,
    )
    bone_min_hu: float = param(
        200.0, "Native bone: seed threshold (HU) for the skeleton mask.", min=-1000, max=3000
    )
    focus_seed_min_hu: float = param(
        200.0, "Hysteresis high threshold (HU): a focus must contain voxels at least this dense."
    )
    focus_grow_min_hu: float = param(
        130.0, "Hysteresis low threshold (HU): voxels this dense join a seeded focus."
    )
    group_distance_mm: float = param(
        4.0, "Mineral specks closer than this (mm) are grouped into one focus.", min=0
    )
    group_min_specks: int = param(
        3,
        "A group of separate dense specks (joined only by group_distance_mm, each below min_focus_diameter_mm "
        "at half maximum) is a focus (an amorphous cloud) only when it holds at least this many: two "
        "phleboliths side by side are not HO.",
        min=2,
    )
    min_focus_volume_mm3: float = param(
        100.0, "Foci smaller than this (mm³) are not reported (phleboliths, specks).", min=0
    )
    faint_focus_min_volume_mm3: float = param(
        50.0,
        "A focus smaller than min_focus_volume_mm3 but at least this (mm³) is reported when it is a faint "
        "mineral cloud (faint_focus_max_hu) on at least two slices, not cut by the scan's first or last "
        "slice: an amorphous cloud of 6 mm or more has little mineral above focus_grow_min_hu, while "
        "phleboliths and vascular calcifications of that volume are dense; set it to "
        "min_focus_volume_mm3 to turn this off.",
        min=0,
    )
    faint_focus_max_hu: float = param(
        370.0,
        "Such a focus is faint when the 90th percentile of its HU (unsmoothed), less the 1.28 noise SDs "
        "that the scan's noise adds to it, is at most this: the low, patchy mineral of amorphous HO "
        "(about 130-450 HU), below the dense core of a vascular calcification or phlebolith.",
    )
    min_focus_diameter_mm: float = param(
        6.0, "Foci whose largest diameter is below this (mm) are not reported.", min=0
    )
    min_focus_thickness_mm: float = param(
        3.0,
        "Foci thinner than this (mm; twice the deepest inside distance) are not reported (vascular plaques).",
        min=0,
    )
    focus_bone_envelope_mm: float = param(
        5.0,
        "Near a focus, dense native bone standing beyond the bone's smooth envelope (its opening by a ball of "
        "this radius, mm), within this distance of it and connected to the focus's dense soft-tissue voxels, "
        "is given back to the focus (HO swallowed by the coarse skeleton); 0 turns this off.",
        min=0,
    )
    metal_min_hu: float = param(
        2500.0, "Voxels above this HU are metal (implants) and never part of a focus.", min=0
    )
    coarse_voxel_mm: float = param(
        2.0,
        "Whole-volume steps run on block means of about this size (mm); foci are refined at full resolution.",
        min=0,
        min_exclusive=True,
    )
    focus_smooth_mm: float = param(
        0.7, "Gaussian smoothing (mm) of each candidate crop before thresholding.", min=0
    )
    native_cortex_min_hu: float = param(
        450.0,
        "Native skeleton: coarse blocks whose maximum reaches this HU hold cortex or dense bone.",
        min=0,
    )
    edge_max_normal_z: float = param(
        0.5,
        "Scanner edge width: cortex profiles use outward normals with |n_z| at most this (in-plane).",
        min=0,
        max=1,
    )
    native_min_length_mm: float = param(
        90.0,
        "A dense structure spanning at least this many mm in z (or the whole scan) is native skeleton.",
        min=0,
    )
    native_erode_mm: float = param(
        5.0,
        "Erosion (mm) that separates foci fused to bone from the native skeleton's core.",
        min=0,
    )
    native_max_hole_mm2: float = param(
        2500.0,
        "Largest in-slice hole (mm²) of the skeleton filled as marrow (the pelvic cavity is not).",
        min=0,
    )
    native_min_exposure: float = param(
        0.5,
        "A dense body off the long skeleton is a focus if at least this fraction of its outer neighbours is soft tissue.",
        min=0,
        max=1,
    )
    native_touch_max_contact: float = param(
        0.5,
        "A thin dense body (no core after native_erode_mm) touching the thick skeleton with at most this "
        "fraction of its blocks is a focus against the bone, not a plate rim or spur (1 turns this off).",
        min=0,
        max=1,
    )
    native_touch_min_exposure: float = param(
        0.72,
        "Such a body is a focus only if at least this fraction of its outer neighbours is soft tissue.",
        min=0,
        max=1,
    )
    native_marrow_shell_mm: float = param(
        4.0,
        "A dense body with its own interior (marrow, cancellous bone) walled off from the bone's by cortex is "
        "a focus fused to the bone, not native bone: its interior plus the wall within this distance (mm); "
        "0 turns this off.",
        min=0,
    )
    native_marrow_wall_min_hu: float = param(
        800.0,
        "Coarse blocks whose maximum reaches this HU are cortical walls between bone interiors "
        "(native_marrow_shell_mm); cancellous bone and marrow stay below it.",
        min=0,
    )
    native_marrow_min_exposure: float = param(
        0.65,
        "Such a body is a focus only if at least this fraction of its outer neighbours is soft tissue "
        "(it lies outside the bone's outline; a trochanter is a broad-based part of the bone).",
        min=0,
        max=1,
    )
    native_marrow_partial_min_exposure: float = param(
        0.4,
        "A body with its own walled-off interior that is less exposed than native_marrow_min_exposure "
        "(partly buried between bone surfaces) is a focus if at least this fraction of its outer neighbours "
        "is soft tissue and its interior is coarser than the host bone's (native_marrow_texture_min_hu).",
        min=0,
        max=1,
    )
    native_marrow_texture_min_hu: float = param(
        60.0,
        "Least excess (HU) of such an interior's within-block contrast (block maximum minus mean, median) "
        "over the host bone's own interior: trabeculae with fatty marrow between, not the host's cancellous bone.",
        min=0,
    )
    native_marrow_fullres_min_exposure: float = param(
        0.1,
        "A body with its own interior that fails the two tests above but is at least this exposed on the coarse "
        "grid is looked at at full resolution (the blocks of a small focus fused to the bone take in part of the "
        "host's cortex, so its coarse exposure reads low): if its interior is walled off there (no voxel below "
        "native_cortex_min_hu joins it to the crop's edge), the soft-tissue share of a ring native_marrow_shell_mm "
        "beyond it is held to native_marrow_min_exposure, or with a coarse interior to "
        "native_marrow_fullres_partial_min_exposure; 1 turns this off.",
        min=0,
        max=1,
    )
    native_marrow_fullres_partial_min_exposure: float = param(
        0.3,
        "A body whose interior is walled off at full resolution (native_marrow_fullres_min_exposure) and "
        "coarser than the host bone's (native_marrow_texture_min_hu) is a focus when at least this share of "
        "the ring just outside its own cortex is soft tissue: its own cortex, measured at full resolution, "
        "settles that it is not part of the bone, and a focus pressed side by side along a shaft has a third of "
        "that ring against the shaft's cortex and marrow.",
        min=0,
        max=1,
    )
    bone_labels_margin_mm: float = param(
        2.0,
        "An external bone label map (--bone-labels) is widened by this (mm, at least one coarse block "
        "along each axis when above 0) before it is taken for native bone: the scanner's blur spreads "
        "bone a little beyond the outline the labelling tool drew, and that edge is not a focus; 0 uses "
        "the labelled blocks as they are.",
        min=0,
    )
    native_protrusion_min_mm: float = param(
        4.0,
        "A thin dense body lying on the bone (no core after native_erode_mm) whose blocks stand at least this far "
        "(mm) outside the bone's local cortical envelope (its interior plus the cortical thickness around) is a "
        "focus, not bone; 0 turns this off.",
        min=0,
    )
    native_protrusion_reference_mm: float = param(
        15.0,
        "The local cortical thickness for native_protrusion_min_mm is the median over the bone's surface within "
        "this distance (mm) of the body.",
        min=0,
        min_exclusive=True,
    )
    native_protrusion_min_share: float = param(
        0.4,
        "Such a body must be at least this share of the thin bone within native_protrusion_reference_mm "
        "(the edge of a plate, unresolved at the block size, is a small part of the plate), unless it "
        "stands out at least twice native_protrusion_min_mm.",
        min=0,
        max=1,
    )
    tubular_min_elongation: float = param(
        4.0,
        "Candidates with sqrt(λ1/λ2) at least this, long and thin (tubular_*), are vessels, not foci.",
        min=1,
    )
    tubular_min_length_mm: float = param(
        80.0,
        "Tubular candidates (vessels) are at least this long (mm), or 80 % of a shorter scan.",
        min=0,
    )
    tubular_max_diameter_mm: float = param(
        14.0, "Largest thickness (mm) of a tubular candidate rejected as a vessel.", min=0
    )
    metal_min_volume_mm3: float = param(
        20.0, "Metal components smaller than this (mm³) are ignored (noise, dense specks).", min=0
    )
    metal_exclusion_mm: float = param(
        5.0, "Candidates within this distance (mm) of metal are dropped (blooming, streaks).", min=0
    )
    edge_max_profiles: int = param(
        1500, "Most cortex boundary profiles sampled for the scanner edge width.", min=10
    )
    fallback_noise_hu: float = param(
        20.0,
        "Noise SD (HU) assumed for the focus seed threshold when the scan has too little "
        "homogeneous muscle to measure it (a warning is logged).",
        min=0,
    )


@dataclass(**_FROZEN)
class FeatureConfig:
    """How each focus is measured (``[features]`` table)."""

    roi_margin_mm: float = param(
        6.0, "Margin (mm) around each focus's bounding box in the feature crop.", min=0
    )
    cortex_min_hu: float = param(
        600.0, "density_cortical_fraction counts focus voxels at or above this HU.", min=0
    )
    rim_cortex_rel: float = param(
        0.4,
        "rim_completeness: a surface point has a cortical rim when its shell reaches muscle + this × "
        "(native cortex − muscle) HU of the same scan (scanner-relative, so thick slices and soft kernels, "
        "which lower a thin cortex and the native cortex alike, do not erase the rim).",
        min=0,
        max=1,
        min_exclusive=True,
    )
    rim_shell_thickness_mm: float = param(
        2.0,
        "Depth (mm) below the focus surface that counts as its rim shell.",
        min=0,
        min_exclusive=True,
    )
    texture_bin_width_hu: float = param(
        50.0, "Fixed HU bin width for co-occurrence texture.", min=0, min_exclusive=True
    )
    rim_faint_min_hu: float = param(
        300.0,
        "rim_faint_completeness: a shell at least this dense (HU) and 100 HU above the core counts as a faint rim.",
        min=-1000,
    )
    mineral_min_hu: float = param(
        200.0, "density_mineral_fraction counts focus voxels at or above this HU.", min=-1000
    )
    mesh_smooth_mm: float = param(
        0.7,
        "Gaussian smoothing (mm) of the focus mask before its surface is triangulated.",
        min=0,
    )
    profile_step_mm: float = param(
        0.25, "Sampling step (mm) of HU profiles along surface normals.", min=0, min_exclusive=True
    )
    margin_inside_mm: float = param(
        3.0, "Margin profiles start this far (mm) inside the focus surface.", min=0
    )
    margin_outside_mm: float = param(
        6.0,
        "Margin profiles end this far (mm) outside the focus surface.",
        min=0,
        min_exclusive=True,
    )
    margin_base_mm: float = param(
        2.0,
        "The last this-many mm of a margin profile give the outside (soft tissue) level.",
        min=0,
        min_exclusive=True,
    )
    margin_halo_from_mm: float = param(
        1.0,
        "margin_halo_fraction: the shell outside the focus starts this far (mm) from it (beyond the scanner's blur of a sharp edge).",
        min=0,
    )
    margin_halo_to_mm: float = param(
        3.0,
        "margin_halo_fraction: the shell ends this far (mm) from the focus.",
        min=0,
        min_exclusive=True,
    )
    margin_max_normal_z: float = param(
        0.5,
        "Margin profiles use surface normals with |n_z| at most this (in-plane edges; thick slices blur z).",
        min=0,
        max=1,
    )
    texture_smooth_mm: float = param(
        0.5,
        "Gaussian smoothing (mm) before the bone/marrow phases, fat fraction and zonal excess.",
        min=0,
    )
    texture_bone_min_hu: float = param(
        250.0,
        "Lowest bone/marrow threshold of the trabecular texture (the focus's Otsu threshold is used above it).",
        min=-1000,
    )
    texture_grid_mm: float = param(
        1.0,
        "Isotropic grid (mm) the crop is resampled to for co-occurrence texture and anisotropy.",
        min=0,
        min_exclusive=True,
    )
    glcm_min_hu: float = param(-200.0, "Lowest HU of the co-occurrence bins (lower values clip).")
    glcm_max_hu: float = param(2000.0, "Highest HU of the co-occurrence bins (higher values clip).")
    texture_mineral_rel_cortex: float = param(
        0.2,
        "Bone-density mineral for texture_speck_density_per_cm3 / texture_network_fraction: "
        "smoothed HU at least muscle + this × (native cortex − muscle) of the same scan.",
        min=0,
        max=1,
    )
    texture_mineral_smooth_mm: float = param(
        0.8,
        "Gaussian sigma (mm) on the isotropic texture grid before the mineral threshold.",
        min=0,
    )
    texture_max_reliable_spacing_mm: float = param(
        1.0,
        "texture_reliable is 1 only when the largest voxel dimension (mm) is at most this.",
        min=0,
        min_exclusive=True,
    )
    zonal_min_excess_hu: float = param(
        20.0,
        "Floor (HU) of the centre's mineral excess in zonal_periphery_center_ratio.",
        min=0,
        min_exclusive=True,
    )
    zonal_central_factor: float = param(
        1.5, "zonal_central_first: centre excess must be at least this × periphery excess.", min=1
    )
    zonal_central_min_hu: float = param(
        450.0,
        "zonal_central_first: the centre's dense-mineral excess over muscle must also be at least this (HU).",
        min=0,
    )
    lookalike_min_depth_mm: float = param(
        1.5,
        "lookalike_fill_*: the interior is the focus deeper than the scan's edge width and at least this (mm).",
        min=0,
    )
    lookalike_min_fill_depth_mm: float = param(
        5.0,
        "lookalike_fill_*: measured only on a focus whose deepest point is at least this deep (mm): a "
        "thinner strip or plate may be compact bone through and through, as uniform as a pool.",
        min=0,
    )
    lookalike_gas_shell_mm: float = param(
        3.0,
        "lookalike_gas_contact: the shell just outside the focus outline is this thick (mm; the outline of "
        "contrast against gas lies a blurred edge width inside the interface).",
        min=0,
        min_exclusive=True,
    )
    lookalike_gas_max_hu: float = param(
        -400.0,
        "lookalike_gas_contact: shell voxels below this HU are gas (fat stays near -100 HU).",
        max=0,
    )
    bone_attach_max_mm: float = param(
        1.5, "A focus is attached to native bone when the gap is at most this (mm).", min=0
    )
    metal_streak_mm: float = param(
        30.0, "Foci within this distance (mm) of metal are flagged as in its streak zone.", min=0
    )


@dataclass(**_FROZEN)
class ClassifyConfig:
    """Stage scoring (``[classify]`` table)."""

    min_confidence: float = param(
        0.5, "A focus whose top score is below this is reported as uncertain.", min=0, max=1
    )
    readiness_max_flip_fraction: float = param(
        0.25,
        "Resection verdict: a focus's mature / not-mature call stays firm when at most this fraction "
        "of its perturbed re-measurements cross that boundary (each flip still lowers its confidence, "
        "and a call left below min_confidence is in doubt anyway); 0 makes a single flip decisive.",
        min=0,
        max=1,
    )
    rim_from: float = param(
        0.25,
        "Evidence 'rim' is 0 at this value of rim_completeness (fraction of the surface with a dense cortical shell).",
    )
    rim_to: float = param(
        0.85,
        "Evidence 'rim' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    trabecular_from_per_mm3: float = param(
        0.0,
        "Evidence 'trabecular' is 0 at this value of texture_connectivity_density_per_mm3 (3-D trabecular network connectivity).",
    )
    trabecular_to_per_mm3: float = param(
        0.05,
        "Evidence 'trabecular' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    marrow_from: float = param(
        0.02,
        "Evidence 'marrow' is 0 at this value of rim_fat_fraction (fatty-marrow fraction of the inside).",
    )
    marrow_to: float = param(
        0.2,
        "Evidence 'marrow' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    margin_from: float = param(
        0.35,
        "Evidence 'margin' is 0 at this value of margin_sharpness_ratio (boundary sharpness relative to the scan's own cortex edge).",
    )
    margin_to: float = param(
        0.75,
        "Evidence 'margin' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    density_from: float = param(
        0.25,
        "Evidence 'density' is 0 at this value of density_p90_rel_cortex (90th-percentile HU of the focus on the scale muscle = 0, this scan's native cortex = 1).",
    )
    density_to: float = param(
        0.75,
        "Evidence 'density' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    mineral_from: float = param(
        0.35,
        "Evidence 'mineral' is 0 at this value of density_mineral_fraction (share of the focus at mineral density, at least [features] mineral_min_hu: DOMAIN's typical density, low and patchy in amorphous calcification, intermediate in immature ossification).",
    )
    mineral_to: float = param(
        0.65,
        "Evidence 'mineral' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    outline_from: float = param(
        0.35,
        "Evidence 'outline' is 0 at this value of margin_irregularity (1 - volume / convex-hull volume; the ramp falls: a compact outline is the mature sign).",
    )
    outline_to: float = param(
        0.1,
        "Evidence 'outline' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    faint_rim_from: float = param(
        0.05,
        "Evidence 'faint_rim' is 0 at this value of rim_faint_completeness (fraction of the surface with at least a faint shell denser than the core; cortical rims count too).",
    )
    faint_rim_to: float = param(
        0.4,
        "Evidence 'faint_rim' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    zonal_from: float = param(
        0.7,
        "Evidence 'zonal' is 0 at this value of zonal_periphery_center_ratio (dense-mineral level of the outer third of the depth / inner third).",
    )
    zonal_to: float = param(
        1.3,
        "Evidence 'zonal' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    specks_from_per_cm3: float = param(
        3.0,
        "Evidence 'specks' is 0 at this value of texture_speck_density_per_cm3 (separate bone-density mineral specks per cm³; the ramp falls: few pieces is the sign of organised mineral).",
    )
    specks_to_per_cm3: float = param(
        0.5,
        "Evidence 'specks' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    network_from: float = param(
        0.5,
        "Evidence 'network' is 0 at this value of texture_network_fraction (share of the bone-density mineral in its largest connected piece).",
    )
    network_to: float = param(
        0.95,
        "Evidence 'network' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    halo_from: float = param(
        0.15,
        "Evidence 'halo' is 0 at this value of margin_halo_fraction (share of the focus's density still present 1-3 mm outside its outline; the ramp falls: no haze beyond the outline is the sign of a defined margin).",
    )
    halo_to: float = param(
        0.02,
        "Evidence 'halo' reaches 1 at this value (linear in between, clipped to 0-1).",
    )
    weight_rim_amorphous: float = param(
        0.0, "Weight of evidence 'rim' in the amorphous score (log-odds per unit evidence)."
    )
    weight_rim_immature: float = param(
        0.0, "Weight of evidence 'rim' in the immature score (log-odds per unit evidence)."
    )
    weight_rim_mature: float = param(
        2.7708, "Weight of evidence 'rim' in the mature score (log-odds per unit evidence)."
    )
    weight_trabecular_amorphous: float = param(
        0.0, "Weight of evidence 'trabecular' in the amorphous score (log-odds per unit evidence)."
    )
    weight_trabecular_immature: float = param(
        0.0, "Weight of evidence 'trabecular' in the immature score (log-odds per unit evidence)."
    )
    weight_trabecular_mature: float = param(
        0.0178, "Weight of evidence 'trabecular' in the mature score (log-odds per unit evidence)."
    )
    weight_marrow_amorphous: float = param(
        0.0, "Weight of evidence 'marrow' in the amorphous score (log-odds per unit evidence)."
    )
    weight_marrow_immature: float = param(
        0.0, "Weight of evidence 'marrow' in the immature score (log-odds per unit evidence)."
    )
    weight_marrow_mature: float = param(
        0.0235, "Weight of evidence 'marrow' in the mature score (log-odds per unit evidence)."
    )
    weight_margin_amorphous: float = param(
        0.0, "Weight of evidence 'margin' in the amorphous score (log-odds per unit evidence)."
    )
    weight_margin_immature: float = param(
        0.0, "Weight of evidence 'margin' in the immature score (log-odds per unit evidence)."
    )
    weight_margin_mature: float = param(
        1.3699, "Weight of evidence 'margin' in the mature score (log-odds per unit evidence)."
    )
    weight_density_amorphous: float = param(
        0.0, "Weight of evidence 'density' in the amorphous score (log-odds per unit evidence)."
    )
    weight_density_immature: float = param(
        0.0, "Weight of evidence 'density' in the immature score (log-odds per unit evidence)."
    )
    weight_density_mature: float = param(
        1.9833, "Weight of evidence 'density' in the mature score (log-odds per unit evidence)."
    )
    weight_mineral_amorphous: float = param(
        0.0, "Weight of evidence 'mineral' in the amorphous score (log-odds per unit evidence)."
    )
    weight_mineral_immature: float = param(
        1.2021, "Weight of evidence 'mineral' in the immature score (log-odds per unit evidence)."
    )
    weight_mineral_mature: float = param(
        1.2021, "Weight of evidence 'mineral' in the mature score (log-odds per unit evidence)."
    )
    weight_outline_amorphous: float = param(
        0.0, "Weight of evidence 'outline' in the amorphous score (log-odds per unit evidence)."
    )
    weight_outline_immature: float = param(
        0.7709, "Weight of evidence 'outline' in the immature score (log-odds per unit evidence)."
    )
    weight_outline_mature: float = param(
        0.7709, "Weight of evidence 'outline' in the mature score (log-odds per unit evidence)."
    )
    weight_faint_rim_amorphous: float = param(
        0.0, "Weight of evidence 'faint_rim' in the amorphous score (log-odds per unit evidence)."
    )
    weight_faint_rim_immature: float = param(
        0.0, "Weight of evidence 'faint_rim' in the immature score (log-odds per unit evidence)."
    )
    weight_faint_rim_mature: float = param(
        0.3922, "Weight of evidence 'faint_rim' in the mature score (log-odds per unit evidence)."
    )
    weight_zonal_amorphous: float = param(
        0.0, "Weight of evidence 'zonal' in the amorphous score (log-odds per unit evidence)."
    )
    weight_zonal_immature: float = param(
        1.0358, "Weight of evidence 'zonal' in the immature score (log-odds per unit evidence)."
    )
    weight_zonal_mature: float = param(
        1.0358, "Weight of evidence 'zonal' in the mature score (log-odds per unit evidence)."
    )
    weight_specks_amorphous: float = param(
        0.0, "Weight of evidence 'specks' in the amorphous score (log-odds per unit evidence)."
    )
    weight_specks_immature: float = param(
        0.0, "Weight of evidence 'specks' in the immature score (log-odds per unit evidence)."
    )
    weight_specks_mature: float = param(
        0.0406, "Weight of evidence 'specks' in the mature score (log-odds per unit evidence)."
    )
    weight_network_amorphous: float = param(
        0.0, "Weight of evidence 'network' in the amorphous score (log-odds per unit evidence)."
    )
    weight_network_immature: float = param(
        0.2794, "Weight of evidence 'network' in the immature score (log-odds per unit evidence)."
    )
    weight_network_mature: float = param(
        0.2794, "Weight of evidence 'network' in the mature score (log-odds per unit evidence)."
    )
    weight_halo_amorphous: float = param(
        0.0, "Weight of evidence 'halo' in the amorphous score (log-odds per unit evidence)."
    )
    weight_halo_immature: float = param(
        1.3454, "Weight of evidence 'halo' in the immature score (log-odds per unit evidence)."
    )
    weight_halo_mature: float = param(
        1.3454, "Weight of evidence 'halo' in the mature score (log-odds per unit evidence)."
    )
    bias_amorphous: float = param(0.0, "Baseline log-odds of the amorphous stage.")
    bias_immature: float = param(-2.2081, "Baseline log-odds of the immature stage.")
    bias_mature: float = param(-5.3359, "Baseline log-odds of the mature stage.")
    atypical_min_density: float = param(
        0.55,
        "Central-first mineralisation is flagged atypical only when the focus is this dense "
        "(density_p90_rel_cortex): a faint cloud denser in its middle is not the osteosarcoma pattern.",
        min=0,
    )
    atypical_max_rim: float = param(
        0.5,
        "Central-first mineralisation is flagged atypical only when the cortical rim covers less "
        "than this fraction of the surface: a focus wrapped in cortex is mineralised at its periphery.",
        min=0,
        max=1,
    )
    atypical_max_rim_core_contrast_hu: float = param(
        -150.0,
        "...or when its core is denser than its surface shell by more than this (rim_core_contrast_hu "
        "at most this): an apparent rim over a denser core is the edge of a central mass, not a cortex.",
    )
    atypical_max_deep_ratio: float = param(
        0.87,
        "Either way, the centre must also be denser beyond the scanner's blurred skin: central-first is "
        "not flagged when zonal_deep_periphery_center_ratio (measured beyond the edge width in-plane and "
        "one slice along z) is above this. The blur lowers the outer millimetre of any dense focus, so a "
        "compact plate of bone on thick slices reads as a denser centre and a darker 'rim'; when the ratio "
        "cannot be measured (too thin, edge width unknown) it does not veto.",
        min=0,
    )
    atypical_uniform_min_excess_hu: float = param(
        300.0,
        "A focus is atypical (a uniform fill, not HO) when its interior is at least this dense (HU above "
        "muscle, lookalike_fill_excess_hu: denser than amorphous mineral)...",
        min=0,
    )
    atypical_uniform_max_spread: float = param(
        2.5,
        "...and that interior is at most this spread (lookalike_fill_spread, in units of the scan's noise): "
        "a pool of contrast or fluid, where HO holds specks, a network or trabeculae and marrow.",
        min=0,
    )
    atypical_min_gas_contact: float = param(
        0.05,
        "A focus is atypical (bowel content, not HO in muscle) when at least this fraction of the shell just "
        "outside it is gas (lookalike_gas_contact); 1 turns this off.",
        min=0,
        max=1,
    )
    metal_confidence_factor: float = param(
        0.8,
        "Confidence of a focus inside a metal streak zone is multiplied by this.",
        min=0,
        max=1,
    )
    stability_checks: bool = param(
        True,
        "Re-measure each focus under small perturbations (threshold, mask) and lower the "
        "confidence of a stage that flips.",
    )
    stability_threshold_hu: float = param(
        20.0, "Threshold perturbation (HU) applied up and down to each focus mask.", min=0
    )
    stability_mask_voxels: int = param(
        1, "Mask perturbation: erosion and dilation by this many voxels.", min=0, max=3
    )
    stability_resample_shift: float = param(
        0.5,
        "Resampling perturbation: the HU around each focus are resampled (trilinear) on a grid shifted "
        "by this fraction of a voxel along the axes of stability_mask_max_step_mm, the masks kept; "
        "0 turns it off.",
        min=0,
        max=0.5,
    )
    stability_mask_max_step_mm: float = param(
        1.5,
        "The mask and resampling perturbations step along an axis only where one voxel is at most this "
        "long (mm; always along the finest axis): one 2.5 mm slice is not a small change of a boundary "
        "that the in-plane pixels place within 0.6-1 mm, and half of it interpolated averages two "
        "slices into a thicker one.",
        min=0,
        min_exclusive=True,
    )
    prior_match_distance_mm: float = param(
        20.0,
        "With a prior study: foci whose centroids are closer than this (mm, LPS) are the same focus.",
        min=0,
        min_exclusive=True,
    )
    prior_max_growth_fraction: float = param(
        0.2,
        "With a prior study: a mature focus whose volume changed by more than this fraction is not yet ready.",
        min=0,
    )
    prior_max_density_change_hu: float = param(
        100.0,
        "With a prior study: a mature focus whose mean density changed by more than this (HU) is not yet ready.",
        min=0,
    )


@dataclass(**_FROZEN)
class BatchConfig:
    """Batch runs (``[batch]`` table)."""

    outputs: tuple[str, ...] = param(
        ("json", "csv", "html", "labels", "seg", "sr"),
        "Per-study outputs to write in batch runs (json, csv, html, labels, seg, sr).",
    )
    retry_errors_on_resume: bool = param(
        True,
        "With --resume, stage studies whose earlier result was an error again (ok results are kept).",
    )
    max_worker_crashes: int = param(
        2,
        "A study whose worker process dies this many times (crash, out of memory) gets an error "
        "result; after a death, the studies that were running are rerun one at a time.",
        min=2,
    )
    scheduler_timeout_s: float = param(
        10.0,
        "Seconds to wait for a Dask scheduler (--scheduler) to answer before giving up.",
        min=0,
        min_exclusive=True,
    )


@dataclass(**_FROZEN)
class Config:
    """All settings, one frozen sub-config per stage.

    Examples
    --------
    >>> cfg = Config()
    >>> cfg.segment.min_focus_volume_mm3
    100.0
    >>> Config.from_dict({"segment": {"min_focus_volume_mm3": 50}}).segment.min_focus_volume_mm3
    50.0
    """

    load: LoadConfig = field(default_factory=LoadConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Return the settings as nested plain dicts (tuples become lists), as echoed in results."""
        out: dict[str, dict[str, Any]] = {}
        for table in dataclasses.fields(self):
            sub = getattr(self, table.name)
            out[table.name] = {
                f.name: list(v) if isinstance(v := getattr(sub, f.name), tuple) else v
                for f in dataclasses.fields(sub)
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>") -> Config:
        """Build a config from nested mappings; missing keys keep their defaults.

        Raises
        ------
        ConfigError
            Unknown table or key, wrong type or out-of-range value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: the configuration must be a table, got {data!r}")
        tables = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for table_name, values in data.items():
            if table_name not in tables:
                raise ConfigError(
                    f"{source}: unknown table [{table_name}]{did_you_mean(table_name, tables)}; "
                    f"known tables: {', '.join(tables)}"
                )
            sub_cls = typing.get_type_hints(cls)[table_name]
            if not isinstance(values, Mapping):
                raise ConfigError(f"{source}: [{table_name}] must be a table, got {values!r}")
            kwargs[table_name] = _build_sub(sub_cls, table_name, values, source)
        return cls(**kwargs)


def _build_sub(sub_cls: type, table: str, values: Mapping[str, Any], source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(sub_cls)}
    hints = typing.get_type_hints(sub_cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"{source}: unknown key {key!r} in [{table}]{did_you_mean(key, fields)}; "
                f"known keys: {', '.join(fields)}"
            )
        kwargs[key] = _check_value(
            value, hints[key], fields[key].metadata, f"[{table}] {key}", source
        )
    return sub_cls(**kwargs)


def _check_value(value: Any, hint: Any, meta: Mapping[str, Any], where: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: {where} must be a list of strings, got {value!r}")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - not used yet
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {where} must be an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {where} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{source}: {where} must be finite, got {value!r}")
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {where} must be a string, got {value!r}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(
                f"{source}: {where} = {value!r} is not one of {', '.join(choices)}"
                f"{did_you_mean(value, choices)}"
            )
        return value
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("min_exclusive") and value == lo)):
        op = ">" if meta.get("min_exclusive") else ">="
        raise ConfigError(f"{source}: {where} = {value!r} is out of range; it must be {op} {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{source}: {where} = {value!r} is out of range; it must be <= {hi}")
    return value


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML configuration file; keys it does not set keep their defaults.

    Parameters
    ----------
    path : str or Path, optional
        The TOML file. ``None`` returns the defaults.

    Returns
    -------
    config : Config

    Raises
    ------
    ConfigError
        If the file cannot be read or parsed, or holds an unknown table or key,
        a value of the wrong type or out of range.
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return Config.from_dict(data, source=str(path))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return f"{value:_}"
    return repr(float(value))


def render_toml(config: Config | None = None) -> str:
    """Render a config as documented TOML (the text of ``configs/default.toml``)."""
    config = Config() if config is None else config
    lines = [
        "# hostage configuration: every setting with its default value.",
        "# Generated from hostage/config.py by `python -m hostage.config > configs/default.toml`.",
        "# A user's file may set any subset; unknown keys are an error.",
        "# Units are the last part of each name (_hu, _mm, _mm3, _deg); ratios and fractions are 0-1.",
    ]
    for table in dataclasses.fields(config):
        sub = getattr(config, table.name)
        lines += ["", f"[{table.name}]"]
        doc = (type(sub).__doc__ or "").strip().splitlines()[0]
        lines.append(f"# {doc}")
        for f in dataclasses.fields(sub):
            meta = f.metadata
            rng = []
            if meta.get("min") is not None:
                rng.append(f"{'>' if meta.get('min_exclusive') else '>='} {meta['min']}")
            if meta.get("max") is not None:
                rng.append(f"<= {meta['max']}")
            if meta.get("choices"):
                rng.append("one of " + ", ".join(meta["choices"]))
            suffix = f" [{'; '.join(rng)}]" if rng else ""
            lines.append(f"# {meta.get('doc', '')}{suffix}")
            lines.append(f"{f.name} = {_toml_value(getattr(sub, f.name))}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render_toml())
