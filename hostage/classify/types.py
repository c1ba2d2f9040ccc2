"""The plain objects the classifier produces: a stage per focus, a verdict per study."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..enums import Resection, Stage

__all__ = ["FocusStage", "ResectionVerdict"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FocusStage:
    """The stage of one focus, with scores and reasons.

    Attributes
    ----------
    stage : Stage
        The most likely stage.
    scores : mapping of Stage to float
        One score per stage, each in [0, 1], summing to 1.
    confidence : float
        0-1; lowered when the stage is unstable under small perturbations.
    reasons : tuple of str
        Plain-language reasons citing measured values.
    atypical : bool
        True for an atypical pattern (e.g. central-first mineralisation) that
        must never be called simply "ready".
    atypical_pattern : str
        Which pattern, in words (:data:`hostage.classify.rules.CENTRAL_FIRST`,
        ``UNIFORM_FILL``, ``GAS_CONTACT``); empty when not atypical (an atypical
        focus built without one is taken as central-first).
    uncertain : bool
        True when the top score is below ``[classify] min_confidence`` or the
        classifier abstained.
    abstained : bool
        True when too few signs could be measured to stage the focus (the stage
        is then a guess and `uncertain` is True).
    perturbed_stages : tuple of Stage
        The stages found when the focus was re-measured under small
        perturbations (empty when no stability check ran).
    """

    stage: Stage
    scores: Mapping[Stage, float]
    confidence: float
    reasons: tuple[str, ...] = ()
    atypical: bool = False
    atypical_pattern: str = ""
    uncertain: bool = False
    abstained: bool = False
    perturbed_stages: tuple[Stage, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))
        scores = {Stage(k): float(v) for k, v in self.scores.items()}
        if set(scores) != set(Stage):
            raise ValueError(f"scores must have one entry per stage; got {sorted(scores)}")
        if not math.isclose(sum(scores.values()), 1.0, abs_tol=1e-6):
            raise ValueError(f"stage scores must sum to 1; got {scores}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1]; got {self.confidence}")
        object.__setattr__(self, "scores", MappingProxyType({s: scores[s] for s in Stage}))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        object.__setattr__(self, "perturbed_stages", tuple(Stage(s) for s in self.perturbed_stages))

    @property
    def unstable(self) -> bool:
        """True when a perturbation changed the stage."""
        return any(s != self.stage for s in self.perturbed_stages)

    @property
    def runner_up(self) -> Stage:
        """The second most likely stage."""
        return sorted(self.scores, key=lambda s: -self.scores[s])[1]

    @property
    def boundary_flips(self) -> tuple[Stage, ...]:
        """The perturbed stages that lie across the mature boundary from `stage`."""
        mature = self.stage is Stage.MATURE
        return tuple(s for s in self.perturbed_stages if (s is Stage.MATURE) != mature)

    @property
    def boundary_flip_fraction(self) -> float:
        """Fraction of the perturbed re-measurements whose stage lies across the mature boundary.

        0 when no stability check ran.
        """
        if not self.perturbed_stages:
            return 0.0
        return len(self.boundary_flips) / len(self.perturbed_stages)

    def readiness_ambiguous(self, *, max_flip_fraction: float) -> bool:
        """Say whether the mature / not-mature call itself is in doubt.

        That is when more than `max_flip_fraction` of the perturbations move the
        focus across the mature boundary, when it is uncertain (its confidence,
        already lowered by every flip, is below ``min_confidence``) and its
        runner-up lies across that boundary, or when the classifier abstained.

        Parameters
        ----------
        max_flip_fraction : float
            ``[classify] readiness_max_flip_fraction``; 0 makes a single flip decisive.

        Examples
        --------
        >>> m = FocusStage(stage=Stage.MATURE, confidence=0.76, scores={Stage.AMORPHOUS: 0.01,
        ...     Stage.IMMATURE: 0.04, Stage.MATURE: 0.95}, perturbed_stages=("mature",) * 3 + ("immature",))
        >>> m.readiness_ambiguous(max_flip_fraction=0.25), m.readiness_ambiguous(max_flip_fraction=0.0)
        (False, True)
        """
        if self.abstained:
            return True
        if self.boundary_flip_fraction > max_flip_fraction:
            return True
        mature = self.stage is Stage.MATURE
        return self.uncertain and ((self.runner_up is Stage.MATURE) != mature)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResectionVerdict:
    """Study-level resection readiness (CONTRACT.md) with its reasons."""

    status: Resection
    reasons: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Resection(self.status))
        object.__setattr__(self, "reasons", tuple(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        """Return the ``resection`` block of result.json."""
        return {"status": self.status.value, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResectionVerdict:
        """Read the ``resection`` block of result.json."""
        return cls(status=Resection(d["status"]), reasons=tuple(d.get("reasons", ())))
