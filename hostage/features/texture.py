"""Trabecular texture: whether the inside is organised cancellous bone, and whether the scan can tell.

Clinical voxels (0.6-1 mm, slices up to 5 mm) are larger than real trabeculae
(0.1-0.3 mm), so every measure here is *apparent*: it describes the structure
as the scan resolves it. ``texture_reliable`` says when the voxels are too
coarse for the structure measures to mean much.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from ..config import FeatureConfig
from ._registry import FeatureFamily, FeatureSpec, only
from ._roi import FocusROI

__all__ = [
    "FAMILY",
    "bone_threshold_hu",
    "connectivity",
    "glcm_features",
    "mineral_components",
    "texture_features",
]

#: The 13 unique 3-D neighbour directions (the other 13 are their opposites).
_DIRECTIONS = tuple(
    (dz, dy, dx)
    for dz in (-1, 0, 1)
    for dy in (-1, 0, 1)
    for dx in (-1, 0, 1)
    if (dz, dy, dx) > (0, 0, 0)
)


def connectivity(bone: np.ndarray) -> tuple[int, int]:
    """Count the components and independent loops (β0, β1) of a 3-D binary structure.

    β1 = β0 + β2 − χ, with χ the Euler characteristic (26-connected
    foreground), β0 the number of foreground components and β2 the number of
    enclosed cavities (6-connected background components that do not reach the
    border). β1 is the trabecular connectivity of BoneJ (Odgaard & Gundersen).

    Parameters
    ----------
    bone : (Z, Y, X) ndarray of bool
        The structure.

    Returns
    -------
    beta0, beta1 : int

    Examples
    --------
    >>> ring = np.zeros((3, 7, 7), bool); ring[1, 1:6, 1:6] = True; ring[1, 2:5, 2:5] = False
    >>> connectivity(ring)
    (1, 1)
    """
    from skimage.measure import euler_number

    if not bone.any():
        return 0, 0
    padded = np.pad(bone, 1)
    chi = int(euler_number(padded, connectivity=3))
    _, b0 = ndi.label(padded, structure=np.ones((3, 3, 3), bool))
    _, nbg = ndi.label(~padded)
    b2 = nbg - 1 if nbg else 0  # the border-touching background is one component (padding)
    return int(b0), int(max(b0 + b2 - chi, 0))


def _ridge_thickness_mm(
    phase: np.ndarray, edt: np.ndarray, spacing: tuple[float, float, float]
) -> float:
    """Mean apparent thickness 2·EDT − s/2 at the local maxima of the EDT (the medial ridge)."""
    ridge = phase & (edt >= ndi.maximum_filter(edt, size=3)) & (edt > 0)
    if not ridge.any():
        return math.nan
    return float(np.mean(2.0 * edt[ridge] - 0.5 * min(spacing)))


def glcm_features(q: np.ndarray, mask: np.ndarray, *, levels: int) -> tuple[float, float, float]:
    """Homogeneity, contrast and entropy of the 3-D co-occurrence matrix (13 directions, averaged).

    Parameters
    ----------
    q : (Z, Y, X) ndarray of int
        Grey levels 0..levels-1.
    mask : (Z, Y, X) ndarray of bool
        Voxels that count (both voxels of a pair must be inside).
    levels : int
        Number of grey levels.

    Returns
    -------
    homogeneity, contrast, entropy : float
        Σ p/(1+(i−j)²), Σ p (i−j)² (in bins²) and −Σ p log2 p (bits), each the
        mean over the directions with at least one pair; NaN when no direction
        has a pair.

    Examples
    --------
    >>> q = np.zeros((3, 3, 3), int); m = np.ones((3, 3, 3), bool)
    >>> glcm_features(q, m, levels=4)
    (1.0, 0.0, 0.0)
    """
    i, j = np.meshgrid(np.arange(levels), np.arange(levels), indexing="ij")
    d2 = (i - j) ** 2
    out = []
    shape = q.shape
    for d in _DIRECTIONS:
        src = tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(d, shape, strict=True))
        dst = tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(d, shape, strict=True))
        both = mask[src] & mask[dst]
        if not both.any():
            continue
        a = q[src][both]
        b = q[dst][both]
        p = (
            np.bincount(a * levels + b, minlength=levels * levels)
            .reshape(levels, levels)
            .astype(np.float64)
        )
        p = p + p.T
        p /= p.sum()
        nz = p[p > 0]
        out.append(
            (float((p / (1.0 + d2)).sum()), float((p * d2).sum()), float(-(nz * np.log2(nz)).sum()))
        )
    if not out:
        return math.nan, math.nan, math.nan
    arr = np.asarray(out)
    h, c, e = arr.mean(axis=0)
    return float(h), float(c), float(e)


def _isotropic(
    arr: np.ndarray, spacing: tuple[float, float, float], grid_mm: float, order: int
) -> np.ndarray:
    factors = [s / grid_mm for s in spacing]
    return ndi.zoom(arr, factors, order=order, mode="nearest", grid_mode=False)


def bone_threshold_hu(values: np.ndarray, *, floor_hu: float) -> float:
    """Bone/marrow threshold inside a focus: Otsu's threshold of its HU, at least `floor_hu`.

    Parameters
    ----------
    values : (N,) ndarray of float
        Smoothed HU of the focus voxels.
    floor_hu : float
        Lowest allowed threshold (faint clouds get no bone phase from noise).

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = np.r_[rng.normal(0.0, 60.0, 500), rng.normal(900.0, 60.0, 500)]
    >>> 100 < bone_threshold_hu(v, floor_hu=-1000) < 800
    True
    >>> bone_threshold_hu(np.linspace(40.0, 60.0, 10), floor_hu=250)
    250
    """
    from skimage.filters import threshold_otsu

    if values.size < 2 or float(values.max()) == float(values.min()):
        return floor_hu
    return max(float(threshold_otsu(values)), floor_hu)


def mineral_components(
    hu_iso: np.ndarray,
    mask_iso: np.ndarray,
    *,
    grid_mm: float,
    threshold_hu: float,
    smooth_mm: float,
) -> tuple[float, float]:
    """Speck density and network fraction of the bone-density mineral inside a focus.

    The *mineral* is the focus voxels whose HU, smoothed with a Gaussian of
    `smooth_mm`, is at least `threshold_hu`, on an isotropic grid (so the
    count does not depend on the scan's voxel size). Its 26-connected
    components are counted.

    Parameters
    ----------
    hu_iso : (Z, Y, X) ndarray of float
        HU on an isotropic grid of `grid_mm`.
    mask_iso : (Z, Y, X) ndarray of bool
        The focus on the same grid.
    grid_mm : float
        Grid spacing (mm).
    threshold_hu : float
        Bone-density threshold (HU).
    smooth_mm : float
        Gaussian sigma (mm) applied before thresholding.

    Returns
    -------
    speck_density_per_cm3 : float
        Number of separate mineral components per cm³ of focus; NaN when the
        focus holds no mineral at all (nothing to call punctate or organised)
        or the mask is empty.
    network_fraction : float
        Fraction of the mineral voxels in the largest component (0 without mineral).

    Examples
    --------
    >>> hu = np.zeros((10, 10, 10)); m = np.ones_like(hu, bool)
    >>> hu[2, 2, 2] = hu[7, 7, 7] = 1000.0
    >>> d, f = mineral_components(hu, m, grid_mm=1.0, threshold_hu=300.0, smooth_mm=0.0)
    >>> round(d, 1), f
    (2.0, 0.5)
    """
    n_vox = int(mask_iso.sum())
    if n_vox == 0:
        return math.nan, math.nan
    sm = ndi.gaussian_filter(hu_iso, sigma=smooth_mm / grid_mm) if smooth_mm > 0 else hu_iso
    mineral = mask_iso & (sm >= threshold_hu)
    labels, n = ndi.label(mineral, structure=np.ones((3, 3, 3), bool))
    focus_cm3 = n_vox * grid_mm**3 / 1000.0
    if n == 0:
        return math.nan, 0.0
    sizes = np.bincount(labels.ravel())[1:]
    return float(n / focus_cm3), float(sizes.max() / sizes.sum())


def texture_features(
    roi: FocusROI, *, config: FeatureConfig, names: frozenset[str] | None = None
) -> dict[str, float]:
    """Measure the apparent trabecular organisation inside the focus.

    The *bone phase* is the focus voxels whose smoothed HU
    (``texture_smooth_mm``) is at least Otsu's threshold of the focus (and at
    least ``texture_bone_min_hu``, :func:`bone_threshold_hu`); the *marrow
    phase* is the rest of the focus.

    * ``texture_connectivity_density_per_mm3`` = β1 / V: independent loops of
      the bone phase (Euler characteristic, BoneJ's Conn.D) per mm³ of focus.
    * ``texture_tb_th_mm``: mean of 2·EDT − s_min/2 over the medial ridge (local
      maxima of the Euclidean distance transform, ``sampling=spacing``) of the
      bone phase; NaN without bone phase.
    * ``texture_tb_sp_mm``: the same for the marrow phase, with distances
      measured to the bone phase; NaN without marrow phase or bone phase.
    * ``texture_glcm_homogeneity``, ``texture_glcm_contrast`` (bins²),
      ``texture_glcm_entropy`` (bits): 3-D co-occurrence over 13 directions on
      the crop resampled to an isotropic ``texture_grid_mm`` grid, HU binned
      with the fixed width ``texture_bin_width_hu`` from ``glcm_min_hu`` to
      ``glcm_max_hu``.
    * ``texture_anisotropy`` = 1 − λmin/λmax of the gradient structure tensor
      over the core (at least ``rim_shell_thickness_mm`` deep) on the isotropic
      grid; NaN when the core has fewer than 27 voxels.
    * ``texture_speck_density_per_cm3`` and ``texture_network_fraction``
      (:func:`mineral_components`): on the same isotropic grid, the *mineral*
      is the focus voxels at bone density relative to this scan, smoothed HU
      (``texture_mineral_smooth_mm``) at least muscle + ``texture_mineral_rel_cortex``
      × (native cortex − muscle). The speck density is its number of separate
      26-connected components per cm³ of focus (punctate, amorphous mineral:
      many specks; NaN without any mineral); the network fraction is the share of the mineral in the
      largest component (an initial trabecular network or a cortex: one
      connected structure, near 1; no mineral: 0). Both are measured at a fixed
      mm scale, above the voxel size of clinical scans, so they keep their
      meaning from 0.6 to 3 mm voxels.
    * ``texture_reliable`` = 1 when the largest voxel dimension is at most
      ``texture_max_reliable_spacing_mm``, else 0.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        Texture settings.
    names : frozenset of str, optional
        Compute only these features (``FeatureFamily.partial``; the stability
        check needs 4 of the 10, and skips the three distance transforms, the
        co-occurrence matrix and the structure tensor that the others cost).
        Default: all.

    Returns
    -------
    dict of str to float
        The features asked for, in declaration order.
    """

    def wanted(*which: str) -> bool:
        return names is None or not names.isdisjoint(which)

    spacing = roi.spacing_zyx_mm
    # work on the focus's bounding box plus 2 voxels (the crop's margin is for other families)
    nz = [
        np.flatnonzero(roi.mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)
    ]
    box = tuple(
        slice(max(0, int(n[0]) - 2), min(roi.mask.shape[ax], int(n[-1]) + 3))
        for ax, n in enumerate(nz)
    )
    mask = roi.mask[box]
    hu = roi.hu[box]
    hu_smooth = roi.hu_smooth[box]
    nan = math.nan
    conn_d = tb_th = tb_sp = homog = contrast = entropy = aniso = specks = network = nan
    with np.errstate(divide="raise", invalid="raise"):
        if wanted("texture_connectivity_density_per_mm3", "texture_tb_th_mm", "texture_tb_sp_mm"):
            volume = float(mask.sum()) * roi.voxel_volume_mm3
            bone = mask & (
                hu_smooth >= bone_threshold_hu(hu_smooth[mask], floor_hu=config.texture_bone_min_hu)
            )
            marrow = mask & ~bone
            if wanted("texture_connectivity_density_per_mm3"):
                _, beta1 = connectivity(bone)
                conn_d = beta1 / volume
            if wanted("texture_tb_th_mm", "texture_tb_sp_mm") and bone.any():
                tb_th = _ridge_thickness_mm(
                    bone, ndi.distance_transform_edt(bone, sampling=spacing), spacing
                )
                if marrow.any():
                    tb_sp = _ridge_thickness_mm(
                        marrow, ndi.distance_transform_edt(~bone, sampling=spacing), spacing
                    )
        g = config.texture_grid_mm
        hu_iso = _isotropic(hu, spacing, g, order=1)
        mask_iso = _isotropic(mask.astype(np.uint8), spacing, g, order=0).astype(bool)
        if wanted("texture_glcm_homogeneity", "texture_glcm_contrast", "texture_glcm_entropy"):
            levels = math.ceil(
                (config.glcm_max_hu - config.glcm_min_hu) / config.texture_bin_width_hu
            )
            q = np.clip(
                np.floor((hu_iso - config.glcm_min_hu) / config.texture_bin_width_hu),
                0,
                levels - 1,
            ).astype(np.int64)
            homog, contrast, entropy = glcm_features(q, mask_iso, levels=levels)
        if wanted("texture_anisotropy"):
            depth_iso = ndi.distance_transform_edt(mask_iso, sampling=(g, g, g))
            core = depth_iso > config.rim_shell_thickness_mm
            if core.sum() >= 27:
                sm = ndi.gaussian_filter(hu_iso, sigma=max(config.texture_smooth_mm / g, 0.5))
                grads = np.gradient(sm, g)
                gv = np.stack([gr[core] for gr in grads], axis=1).astype(np.float64)
                tensor = gv.T @ gv / len(gv)
                ev = np.linalg.eigvalsh(tensor)
                aniso = float(1.0 - ev[0] / ev[-1]) if ev[-1] > 0 else 0.0
        if wanted("texture_speck_density_per_cm3", "texture_network_fraction"):
            ref = roi.reference
            specks, network = mineral_components(
                hu_iso,
                mask_iso,
                grid_mm=g,
                threshold_hu=ref.muscle_hu
                + config.texture_mineral_rel_cortex * (ref.cortex_hu - ref.muscle_hu),
                smooth_mm=config.texture_mineral_smooth_mm,
            )
    values = {
        "texture_connectivity_density_per_mm3": float(conn_d),
        "texture_tb_th_mm": float(tb_th),
        "texture_tb_sp_mm": float(tb_sp),
        "texture_glcm_homogeneity": homog,
        "texture_glcm_contrast": contrast,
        "texture_glcm_entropy": entropy,
        "texture_anisotropy": aniso,
        "texture_speck_density_per_cm3": specks,
        "texture_network_fraction": network,
        "texture_reliable": float(max(spacing) <= config.texture_max_reliable_spacing_mm),
    }
    return only(values, names)


FAMILY = FeatureFamily(
    name="texture",
    compute=texture_features,
    partial=True,
    features=(
        FeatureSpec(
            "texture_connectivity_density_per_mm3",
            "1/mm3",
            "Apparent trabecular connectivity density: independent loops (β1 from the Euler characteristic) of the bone phase per mm³ of focus.",
        ),
        FeatureSpec(
            "texture_tb_th_mm",
            "mm",
            "Apparent trabecular thickness: mean 2×EDT on the medial ridge of the bone phase; NaN without bone phase.",
        ),
        FeatureSpec(
            "texture_tb_sp_mm",
            "mm",
            "Apparent trabecular spacing: the same on the marrow phase; NaN without bone or marrow phase.",
        ),
        FeatureSpec(
            "texture_glcm_homogeneity",
            "1",
            "3-D co-occurrence homogeneity Σp/(1+(i−j)²) at fixed HU bin width on an isotropic grid.",
        ),
        FeatureSpec(
            "texture_glcm_contrast",
            "bins2",
            "3-D co-occurrence contrast Σp(i−j)² (in HU bins²): bone/marrow alternation.",
        ),
        FeatureSpec("texture_glcm_entropy", "bits", "3-D co-occurrence entropy −Σp·log2(p)."),
        FeatureSpec(
            "texture_anisotropy",
            "1",
            "1 − λmin/λmax of the gradient structure tensor in the core: 0 isotropic, toward 1 oriented; NaN for a tiny core.",
        ),
        FeatureSpec(
            "texture_speck_density_per_cm3",
            "1/cm3",
            "Separate components of bone-density mineral (relative to this scan's muscle and cortex, 1 mm isotropic grid) per cm³ of focus: punctate specks of amorphous HO; NaN without any such mineral.",
        ),
        FeatureSpec(
            "texture_network_fraction",
            "1",
            "Share of the bone-density mineral in its largest connected component: one connected network (initial trabeculae, cortex) near 1, scattered specks low; 0 without mineral.",
        ),
        FeatureSpec(
            "texture_reliable",
            "bool",
            "1 when the largest voxel dimension is at most texture_max_reliable_spacing_mm, so the apparent structure measures are meaningful.",
        ),
    ),
)
