"""Metal nearby: implants and their streaks lower the trust in a focus's measures."""

from __future__ import annotations

import math

from ..config import FeatureConfig
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "metal_features"]


def metal_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
    """Report the distance to the nearest metal and whether the focus is in its streak zone.

    * ``metal_distance_mm``: smallest distance (mm) from a focus voxel centre
      to a metal voxel centre; NaN when the study has no metal.
    * ``metal_streak_zone`` = 1 when that distance is at most
      ``metal_streak_mm`` (streak artefacts likely bias density, rim and
      margin), else 0 (also 0 without metal).

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        ``metal_streak_mm``.

    Returns
    -------
    dict of str to float
    """
    d = roi.metal_distance_mm
    near = math.isfinite(d) and d <= config.metal_streak_mm
    return {"metal_distance_mm": float(d), "metal_streak_zone": float(near)}


FAMILY = FeatureFamily(
    name="metal",
    compute=metal_features,
    features=(
        FeatureSpec(
            "metal_distance_mm",
            "mm",
            "Distance to the nearest metal (implant); NaN when the study has no metal.",
        ),
        FeatureSpec(
            "metal_streak_zone",
            "bool",
            "1 when within metal_streak_mm of metal: streaks may bias this focus's measures (lower confidence).",
        ),
    ),
)
