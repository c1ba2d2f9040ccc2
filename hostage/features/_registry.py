"""Feature metadata: every feature is declared once, with its unit and meaning."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FeatureFamily", "FeatureSpec", "only"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature: its name (family prefix, quantity, qualifier, unit), unit and meaning.

    Attributes
    ----------
    name : str
        e.g. ``"rim_completeness"``; begins with the family name.
    unit : str
        ``"mm"``, ``"mm3"``, ``"HU"``, ``"HU/mm"``, ``"1/mm3"``, ``"1"`` (unitless), ``"bool"``.
    doc : str
        What it measures and the imaging sign behind it (DOMAIN.md).
    """

    name: str
    unit: str
    doc: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureFamily:
    """A family of features computed together by one pure function.

    Attributes
    ----------
    name : str
        Family name, the prefix of each feature name.
    compute : callable
        ``compute(roi, *, config) -> Mapping[str, float]`` returning exactly the
        names in `features`.
    features : tuple of FeatureSpec
    partial : bool
        True when `compute` also accepts ``names=`` (a frozenset of some of its
        feature names) and then returns exactly those, in declaration order,
        skipping the work the others need. A caller that needs only some
        features (the stability check) asks for just those.
    """

    name: str
    compute: Callable[..., Mapping[str, float]]
    features: tuple[FeatureSpec, ...]
    partial: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in declaration order."""
        return tuple(f.name for f in self.features)

    def __call__(self, *args: Any, **kwargs: Any) -> Mapping[str, float]:
        """Compute the family's features."""
        return self.compute(*args, **kwargs)


def only(values: dict[str, float], names: frozenset[str] | None) -> dict[str, float]:
    """Return the features of `values` a partial family was asked for (all when `names` is None).

    Examples
    --------
    >>> only({"a_x": 1.0, "a_y": 2.0}, frozenset({"a_y"}))
    {'a_y': 2.0}
    """
    return values if names is None else {k: v for k, v in values.items() if k in names}
