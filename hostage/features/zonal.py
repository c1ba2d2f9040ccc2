"""Zonal pattern: whether mineral sits at the periphery (HO) or in the centre (atypical)."""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "zonal_features"]


def zonal_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
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

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        Zonal settings.

    Returns
    -------
    dict of str to float
        Both values NaN when the focus is too thin to have a centre zone
        (no voxel at r ≥ 2/3 other than the periphery itself, i.e. max depth
        below 1.5 voxels).
    """
    depth = roi.depth_mm
    mask = roi.mask
    with np.errstate(divide="raise", invalid="raise"):
        dmax = float(depth.max())
        r = np.where(mask, depth / dmax, 0.0)
        peri = mask & (r <= 1 / 3)
        centre = mask & (r >= 2 / 3)
        if not peri.any() or not centre.any() or (peri & centre).any():
            return {"zonal_periphery_center_ratio": math.nan, "zonal_central_first": math.nan}
        muscle = roi.reference.muscle_hu
        e_peri = max(float(np.percentile(roi.hu_smooth[peri], 90)) - muscle, 0.0)
        e_centre = max(float(np.percentile(roi.hu_smooth[centre], 90)) - muscle, 0.0)
        ratio = e_peri / max(e_centre, config.zonal_min_excess_hu)
        central = (
            e_centre >= config.zonal_central_factor * e_peri
            and e_centre >= config.zonal_central_min_hu
        )
    return {"zonal_periphery_center_ratio": ratio, "zonal_central_first": float(central)}


FAMILY = FeatureFamily(
    name="zonal",
    compute=zonal_features,
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
    ),
)
