"""Turn features into stage scores with reasons, and foci into a study verdict."""

from __future__ import annotations

from .types import FocusStage, ResectionVerdict

__all__ = ["FocusStage", "ResectionVerdict", "classify", "resection"]


def classify(features, *, config):
    """Stage one focus (placeholder until issue 5 lands)."""
    raise NotImplementedError("the classifier is being implemented (issue 5)")


def resection(stages, *, foci=(), prior=None):
    """Study verdict (placeholder until issue 5 lands)."""
    raise NotImplementedError("the resection rule is being implemented (issue 5)")
