"""Measure each focus: one module per feature family, an explicit ordered registry.

``measure(volume, focus, seg, *, config) -> FocusFeatures`` is the entry point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from ..config import FeatureConfig
from . import bone, density, margin, metal, rim, size, texture, zonal
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI, build_roi, roi_from_arrays

if TYPE_CHECKING:
    from ..io.volume import Volume
    from ..segment import Segmentation
    from ..segment.foci import Focus

__all__ = [
    "FAMILIES",
    "FeatureFamily",
    "FeatureSpec",
    "FocusFeatures",
    "FocusROI",
    "build_roi",
    "measure",
    "measure_roi",
    "roi_from_arrays",
]

#: The feature families, in output order.
FAMILIES: tuple[FeatureFamily, ...] = (
    size.FAMILY,
    density.FAMILY,
    rim.FAMILY,
    texture.FAMILY,
    margin.FAMILY,
    zonal.FAMILY,
    bone.FAMILY,
    metal.FAMILY,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FocusFeatures:
    """All feature values of one focus, ordered as :data:`FAMILIES`.

    Attributes
    ----------
    focus_id : int
    values : mapping of str to float
        Feature name -> value (NaN where a documented rule says "not defined";
        booleans as 0.0/1.0).
    """

    focus_id: int
    values: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "values", MappingProxyType({k: float(v) for k, v in self.values.items()})
        )


def measure_roi(roi: FocusROI, *, config: FeatureConfig, focus_id: int = 0) -> FocusFeatures:
    """Compute every family of :data:`FAMILIES` on a prepared ROI.

    Parameters
    ----------
    roi : FocusROI
        The focus crop (see :func:`build_roi`, :func:`roi_from_arrays`).
    config : FeatureConfig
        Feature settings.
    focus_id : int
        Id recorded in the result.

    Returns
    -------
    FocusFeatures

    Raises
    ------
    RuntimeError
        If a family returns names other than those it declares (a programming error).
    """
    values: dict[str, float] = {}
    with np.errstate(divide="raise", invalid="raise"):
        for family in FAMILIES:
            out = family(roi, config=config)
            if tuple(out) != family.names:
                raise RuntimeError(
                    f"feature family {family.name!r} returned {tuple(out)}; it declares {family.names}"
                )
            values.update(out)
    return FocusFeatures(focus_id=focus_id, values=values)


def measure(
    volume: Volume, focus: Focus, seg: Segmentation, *, config: FeatureConfig
) -> FocusFeatures:
    """Measure one focus: build its ROI once, then run every feature family.

    Parameters
    ----------
    volume : Volume
        The CT volume the segmentation was made on.
    focus : Focus
        One of ``seg.foci``.
    seg : Segmentation
        The study's segmentation (bone, metal, other foci, reference tissues).
    config : FeatureConfig
        Feature settings (``[features]`` table).

    Returns
    -------
    FocusFeatures
        Values ordered as :data:`FAMILIES` (NaN only where a family's
        documented rule says a feature is undefined).
    """
    roi = build_roi(volume, focus, seg, config=config)
    return measure_roi(roi, config=config, focus_id=focus.id)
