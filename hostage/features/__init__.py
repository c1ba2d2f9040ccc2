"""Measure each focus: one module per feature family, an explicit ordered registry.

``measure(volume, focus, seg, *, config) -> FocusFeatures`` is the entry point.
A caller that needs only some features (the stability check re-measures only
what the stage rules read) passes ``families=families_for(names), names=names``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from ..config import FeatureConfig
from . import bone, density, lookalike, margin, metal, rim, size, texture, zonal
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI, RoiSource, build_roi, roi_from_arrays, roi_source

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
    "RoiSource",
    "build_roi",
    "families_for",
    "measure",
    "measure_roi",
    "roi_from_arrays",
    "roi_source",
]

#: The feature families, in output order.
FAMILIES: tuple[FeatureFamily, ...] = (
    size.FAMILY,
    density.FAMILY,
    rim.FAMILY,
    texture.FAMILY,
    margin.FAMILY,
    zonal.FAMILY,
    lookalike.FAMILY,
    bone.FAMILY,
    metal.FAMILY,
)


#: Families that read the study-level distances (to native bone, to metal) of the ROI.
_DISTANCE_FAMILIES: tuple[FeatureFamily, ...] = (bone.FAMILY, metal.FAMILY)


def families_for(names: Iterable[str]) -> tuple[FeatureFamily, ...]:
    """Return the families of :data:`FAMILIES` that compute any of `names`, in registry order.

    Parameters
    ----------
    names : iterable of str
        Feature names (as declared by the families).

    Returns
    -------
    tuple of FeatureFamily

    Raises
    ------
    KeyError
        If a name is not declared by any family (the message lists the close matches).

    Examples
    --------
    >>> [f.name for f in families_for(["rim_completeness", "size_volume_mm3"])]
    ['size', 'rim']
    """
    wanted = set(names)
    known = {n for f in FAMILIES for n in f.names}
    unknown = sorted(wanted - known)
    if unknown:
        from ..errors import did_you_mean

        hints = "".join(did_you_mean(n, sorted(known)) for n in unknown)
        raise KeyError(
            f"families_for: no feature family declares {unknown}{hints}; "
            "use names from hostage.features.FAMILIES"
        )
    return tuple(f for f in FAMILIES if wanted.intersection(f.names))


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


def measure_roi(
    roi: FocusROI,
    *,
    config: FeatureConfig,
    focus_id: int = 0,
    families: Sequence[FeatureFamily] = FAMILIES,
    names: Collection[str] | None = None,
) -> FocusFeatures:
    """Compute the feature families (by default all of :data:`FAMILIES`) on a prepared ROI.

    Parameters
    ----------
    roi : FocusROI
        The focus crop (see :func:`build_roi`, :func:`roi_from_arrays`).
    config : FeatureConfig
        Feature settings.
    focus_id : int
        Id recorded in the result.
    families : sequence of FeatureFamily
        The families to run, in this order (default: all, in registry order).
    names : collection of str, optional
        The features wanted. A family that can compute part of its features
        (``FeatureFamily.partial``) is asked for only these; the others return
        all theirs. Default: everything.

    Returns
    -------
    FocusFeatures

    Raises
    ------
    RuntimeError
        If a family returns names other than those asked for (a programming error).
    """
    values: dict[str, float] = {}
    with np.errstate(divide="raise", invalid="raise"):
        for family in families:
            expected = family.names
            if names is not None and family.partial:
                expected = tuple(n for n in family.names if n in names)
            if expected == family.names:
                out = family(roi, config=config)
            else:
                out = family(roi, config=config, names=frozenset(expected))
            if tuple(out) != expected:
                raise RuntimeError(
                    f"feature family {family.name!r} returned {tuple(out)}; expected {expected}"
                )
            values.update(out)
    return FocusFeatures(focus_id=focus_id, values=values)


def measure(
    volume: Volume,
    focus: Focus,
    seg: Segmentation,
    *,
    config: FeatureConfig,
    families: Sequence[FeatureFamily] = FAMILIES,
    names: Collection[str] | None = None,
    source: RoiSource | None = None,
) -> FocusFeatures:
    """Measure one focus: build its ROI once, then run the feature families.

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
    families : sequence of FeatureFamily
        The families to run (default: all; see :func:`families_for`). The
        study-level distances to native bone and metal are only looked up when
        a family that reads them is run.
    names : collection of str, optional
        The features wanted (see :func:`measure_roi`); default everything.
    source : RoiSource, optional
        The study's arrays already cut around this focus (:func:`roi_source`),
        shared by the measurements of several masks of one focus; the values
        are the same as without it.

    Returns
    -------
    FocusFeatures
        Values ordered as `families` (NaN only where a family's documented
        rule says a feature is undefined).
    """
    distances = any(f in _DISTANCE_FAMILIES for f in families)
    roi = build_roi(volume, focus, seg, config=config, distances=distances, source=source)
    return measure_roi(roi, config=config, focus_id=focus.id, families=families, names=names)
