"""Zonal pattern: whether mineral sits at the periphery (HO) or in the centre (atypical)."""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ..segment._grid import mask_bbox
from ._registry import FeatureFamily, FeatureSpec, only
from ._roi import FocusROI, _depth_mm

__all__ = ["FAMILY", "zonal_features"]


def zonal_features(
    roi: FocusROI, *, config: FeatureConfig, names: frozenset[str] | None = None
) -> dict[str, float]:
    """Compare mineral density in the outer and inner thirds of the focus depth.

    Each focus voxel has a relative depth r = depth / max depth (0 at the
    surface, 1 at the deepest point). The mineral *excess* of a zone is
    max(p90 − muscle HU, 0), p90 the 90th percentile of the lightly smoothed
    HU over its voxels (the dense-mineral level of the zone: a thin cortex
    sets it even when it fills only part of the outer zone).

    * ``zonal_periphery_center_ratio`` = excess(r ≤ 1/3) / max(excess(r ≥ 2/3),
      ``zonal_min_excess_hu``): >1 peripheral mineralisation (HO), ~1 uniform,
      <1 central.
    * ``zonal_central_first`` = 1 when excess(centre) ≥ ``zonal_central_factor``
      × excess(periphery) and excess(centre) ≥ ``zonal_central_min_hu``: the
      centre-first pattern of parosteal osteosarcoma, atypical for HO.

    * ``zonal_deep_periphery_center_ratio``: the same ratio over the part of
      the focus beyond the scanner's blurred skin (:func:`_blur_depth`): the
      voxels farther from the outline than the scan's edge width in-plane
      (:attr:`~hostage.segment.ReferenceTissues.edge_width_mm`) and than one
      slice along z (or the edge width, when larger), with the zones taken
      as thirds of that deeper part. The scanner's blur lowers the outer
      millimetre of any dense focus, so a compact plate of bone, uniform
      through its thickness, reads as denser at its centre on the plain ratio
      (most on thick slices); beyond the skin it reads about 1. NaN when the
      edge width is unknown or the part beyond the skin is thinner than half
      the edge width.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        Zonal settings.
    names : frozenset of str, optional
        Compute only these features (``FeatureFamily.partial``): the deep
        ratio's distance transform is skipped when it is not asked for.

    Returns
    -------
    dict of str to float
        The first two values NaN when the focus is too thin to have a centre
        zone (no voxel at r ≥ 2/3 other than the periphery itself, i.e. max
        depth below 1.5 voxels).

    Examples
    --------
    A compact bone plate 7 mm thick on 3 mm slices, blurred as a scanner
    blurs it: denser at the centre on the plain ratio, uniform beyond the skin.

    >>> from scipy import ndimage as ndi
    >>> from hostage.features import roi_from_arrays
    >>> from hostage.segment import ReferenceTissues
    >>> sp = (3.0, 0.5, 0.5)
    >>> plate = np.zeros((12, 60, 60), bool); plate[2:10, 10:50, 23:37] = True
    >>> hu = ndi.gaussian_filter(np.where(plate, 1200.0, 40.0), (0.5, 1.0, 1.0))
    >>> ref = ReferenceTissues(muscle_hu=40.0, fat_hu=-100.0, cortex_hu=1200.0,
    ...                        noise_hu=10.0, edge_width_mm=1.3)
    >>> cfg = FeatureConfig()
    >>> roi = roi_from_arrays(hu.astype(np.float32), hu > 130, spacing_zyx_mm=sp,
    ...                       config=cfg, reference=ref)
    >>> out = zonal_features(roi, config=cfg)
    >>> out["zonal_periphery_center_ratio"] < 0.8, round(out["zonal_deep_periphery_center_ratio"], 1)
    (True, 1.0)
    """
    mask = roi.mask
    nan = {
        "zonal_periphery_center_ratio": math.nan,
        "zonal_central_first": math.nan,
        "zonal_deep_periphery_center_ratio": math.nan,
    }
    muscle = roi.reference.muscle_hu
    excess = _zone_excess(roi.hu_smooth, roi.depth_mm, mask, muscle_hu=muscle)
    if excess is None:
        return only(nan, names)
    e_peri, e_centre = excess
    ratio = e_peri / max(e_centre, config.zonal_min_excess_hu)
    central = (
        e_centre >= config.zonal_central_factor * e_peri and e_centre >= config.zonal_central_min_hu
    )
    deep_ratio = math.nan
    box = mask_bbox(mask)
    wanted = names is None or "zonal_deep_periphery_center_ratio" in names
    depth_b = _blur_depth(roi, box) if wanted else None
    if depth_b is not None:
        # depth beyond the skin, in blur widths; thinner than half a width: not measurable
        deep = mask[box] & (depth_b > 1.0)
        if deep.any() and float(depth_b.max()) >= 1.5:
            deep_excess = _zone_excess(
                roi.hu_smooth[box], np.where(deep, depth_b - 1.0, 0.0), deep, muscle_hu=muscle
            )
            if deep_excess is not None:
                deep_ratio = deep_excess[0] / max(deep_excess[1], config.zonal_min_excess_hu)
    values = {
        "zonal_periphery_center_ratio": ratio,
        "zonal_central_first": float(central),
        "zonal_deep_periphery_center_ratio": deep_ratio,
    }
    return only(values, names)


def _zone_excess(
    hu_smooth: np.ndarray, depth: np.ndarray, mask: np.ndarray, *, muscle_hu: float
) -> tuple[float, float] | None:
    """Mineral excess (p90 − muscle, floored at 0) of the outer and inner thirds of `depth` in `mask`.

    None when the two zones are not both present and disjoint.
    """
    with np.errstate(divide="raise", invalid="raise"):
        dmax = float(depth[mask].max())
        if dmax <= 0:
            return None
        r = np.where(mask, depth / dmax, 0.0)
        peri = mask & (r <= 1 / 3)
        centre = mask & (r >= 2 / 3)
        if not peri.any() or not centre.any() or (peri & centre).any():
            return None
        e_peri = max(float(np.percentile(hu_smooth[peri], 90)) - muscle_hu, 0.0)
        e_centre = max(float(np.percentile(hu_smooth[centre], 90)) - muscle_hu, 0.0)
    return e_peri, e_centre


def _blur_depth(roi: FocusROI, box: tuple[slice, ...]) -> np.ndarray | None:
    """Depth below the outline in units of the scanner's blur width along each axis, in `box`.

    The blur width is the scan's edge width in-plane and the larger of the edge
    width and the slice spacing along z; a voxel at more than 1 lies beyond the
    blurred skin. `box` holds the whole focus. None when the edge width is unknown.
    """
    w = roi.reference.edge_width_mm
    if not (math.isfinite(w) and w > 0):
        return None
    sz, sy, sx = roi.spacing_zyx_mm
    if sz <= w:  # one blur width along every axis: the ROI's depth, rescaled
        return np.asarray(roi.depth_mm[box], dtype=np.float64) / w
    # one slice along z (sz > w): the ROI's depth on a grid of blur widths
    depth = _depth_mm(roi.mask, (1.0, sy / w, sx / w))
    return np.asarray(depth[box], dtype=np.float64)


FAMILY = FeatureFamily(
    name="zonal",
    compute=zonal_features,
    partial=True,
    features=(
        FeatureSpec(
            "zonal_periphery_center_ratio",
            "1",
            "Dense-mineral level (p90 − muscle HU) of the outer third of the depth ÷ that of the inner third (floored): >1 peripheral (zonal) mineralisation.",
        ),
        FeatureSpec(
            "zonal_central_first",
            "bool",
            "1 when the centre is clearly denser than the periphery: central-first mineralisation, atypical for HO.",
        ),
        FeatureSpec(
            "zonal_deep_periphery_center_ratio",
            "1",
            "zonal_periphery_center_ratio over the part of the focus beyond the scanner's blurred skin (edge width in-plane, one slice along z): about 1 for bone uniform through its thickness, <1 only when the centre is denser beyond the blur.",
        ),
    ),
)
