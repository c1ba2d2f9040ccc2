"""Relation to native bone: distance and attachment (cleft or fusion)."""

from __future__ import annotations

import math

from ..config import FeatureConfig
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "bone_features"]


def bone_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
    """Report the gap between the focus and the native skeleton.

    * ``bone_distance_mm``: the smallest centre-to-centre distance between a
      focus voxel and a native-bone voxel (``distance_transform_edt`` with
      ``sampling=spacing``), minus one voxel length along that direction, so
      touching voxels give 0. NaN when the study has no native bone.
    * ``bone_attached`` = 1 when that gap is at most ``bone_attach_max_mm``
      (no radiolucent cleft resolved), else 0; NaN without native bone.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        ``bone_attach_max_mm``.

    Returns
    -------
    dict of str to float
    """
    d = roi.bone_distance_mm
    attached = float(d <= config.bone_attach_max_mm) if math.isfinite(d) else math.nan
    return {"bone_distance_mm": float(d), "bone_attached": attached}


FAMILY = FeatureFamily(
    name="bone",
    compute=bone_features,
    features=(
        FeatureSpec(
            "bone_distance_mm",
            "mm",
            "Gap between the focus and native bone (0 = touching); NaN when the study has no native bone.",
        ),
        FeatureSpec(
            "bone_attached",
            "bool",
            "1 when attached to native bone (gap ≤ bone_attach_max_mm, no cleft), 0 when separated.",
        ),
    ),
)
