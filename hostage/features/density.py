"""Density of a focus: HU mean, percentiles, robust maximum, mineral fraction."""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "density_features"]


def density_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
    """Measure the HU distribution inside the focus.

    * ``density_mean_hu``, ``density_p10_hu``, ``density_p50_hu``,
      ``density_p90_hu``: mean and percentiles of HU over the focus voxels.
    * ``density_p99_hu``: the 99th percentile (a robust maximum: a single noisy
      voxel does not set it).
    * ``density_mineral_fraction``: fraction of focus voxels at or above
      ``mineral_min_hu``.
    * ``density_cortical_fraction``: fraction at or above ``cortex_min_hu``.
    * ``density_p90_rel_cortex``: (p90 − muscle) / (cortex − muscle), with the
      muscle and native-cortex HU of the same scan (1 = as dense as the
      patient's own cortex), so it does not depend on the scanner's calibration.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        ``mineral_min_hu``, ``cortex_min_hu``.

    Returns
    -------
    dict of str to float
    """
    vals = roi.hu[roi.mask].astype(np.float64)
    ref = roi.reference
    with np.errstate(divide="raise", invalid="raise"):
        p10, p50, p90, p99 = np.percentile(vals, [10, 50, 90, 99])
        span = ref.cortex_hu - ref.muscle_hu
        rel = (p90 - ref.muscle_hu) / span if span > 0 else math.nan
        return {
            "density_mean_hu": float(vals.mean()),
            "density_p10_hu": float(p10),
            "density_p50_hu": float(p50),
            "density_p90_hu": float(p90),
            "density_p99_hu": float(p99),
            "density_mineral_fraction": float(np.mean(vals >= config.mineral_min_hu)),
            "density_cortical_fraction": float(np.mean(vals >= config.cortex_min_hu)),
            "density_p90_rel_cortex": float(rel),
        }


FAMILY = FeatureFamily(
    name="density",
    compute=density_features,
    features=(
        FeatureSpec(
            "density_mean_hu", "HU", "Mean HU over the focus (mineral and marrow together)."
        ),
        FeatureSpec(
            "density_p10_hu", "HU", "10th percentile of HU: low for fatty marrow or faint cloud."
        ),
        FeatureSpec("density_p50_hu", "HU", "Median HU over the focus."),
        FeatureSpec(
            "density_p90_hu",
            "HU",
            "90th percentile of HU: the dense-mineral level (cortex in mature HO).",
        ),
        FeatureSpec(
            "density_p99_hu", "HU", "Robust maximum: 99th percentile of HU over the focus."
        ),
        FeatureSpec(
            "density_mineral_fraction", "1", "Fraction of focus voxels at or above mineral_min_hu."
        ),
        FeatureSpec(
            "density_cortical_fraction",
            "1",
            "Fraction of focus voxels at or above cortex_min_hu (cortical-bone density).",
        ),
        FeatureSpec(
            "density_p90_rel_cortex",
            "1",
            "(p90 − muscle HU)/(native cortex HU − muscle HU) of the same scan; NaN if cortex ≤ muscle.",
        ),
    ),
)
