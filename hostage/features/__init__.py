"""Measure each focus: one module per feature family, an explicit ordered registry.

``measure(volume, focus, seg, *, config) -> FocusFeatures`` is the entry point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ._registry import FeatureFamily, FeatureSpec

__all__ = ["FAMILIES", "FeatureFamily", "FeatureSpec", "FocusFeatures", "measure"]

#: The feature families, in output order (filled as families land).
FAMILIES: tuple[FeatureFamily, ...] = ()


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


def measure(volume, focus, seg, *, config):
    """Measure one focus (placeholder until issue 4 lands)."""
    raise NotImplementedError("features are being implemented (issue 4)")
