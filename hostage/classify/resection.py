"""The study verdict: is the HO ready for resection? (the rule of CONTRACT.md).

Resection only once the ossification is mature (DOMAIN.md; seed review 000):

1. ``no_foci`` when no focus was found.
2. ``not_ready`` when any typical focus is amorphous or immature and that call
   is firm (an atypical focus is named in the reasons too).
3. ``indeterminate`` when any focus shows an atypical pattern (central-first
   mineralisation, a uniform fill without bone structure, contact with gas:
   never simply "ready"; :func:`hostage.classify.rules.atypical_pattern`). The stage of an atypical focus is
   not an HO stage and does not count in rules 2 and 4.
4. ``indeterminate`` when the verdict hinges on a focus whose mature / not
   mature call is in doubt: more than ``readiness_max_flip_fraction`` of its
   perturbed re-measurements cross that boundary, it is uncertain (its
   confidence, lowered by every flip, is below ``min_confidence``) with the
   runner-up across the boundary, or the classifier abstained.
5. With a prior study: ``not_ready`` when a mature focus is new, grew or
   changed its mean density markedly since the prior study (it is still
   remodelling); ``indeterminate`` when no focus of the prior study can be
   matched at all (different frame of reference?).
6. ``ready`` otherwise: at least one focus and every focus mature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..config import ClassifyConfig
from ..enums import Resection, Stage, Status
from .rules import CENTRAL_FIRST
from .types import FocusStage, ResectionVerdict

if TYPE_CHECKING:  # result.py imports this package: keep the import one-way at run time
    from ..features import FocusFeatures
    from ..result import FocusResult, StudyResult
    from ..segment.foci import Focus

__all__ = ["resection"]


def _name(i: int, foci: Sequence[Focus]) -> str:
    return f"focus {foci[i].id}" if i < len(foci) else f"focus #{i + 1}"


def _call(st: FocusStage) -> str:
    return f"{st.stage.value} (score {st.scores[st.stage]:.2f})"


def _doubt(st: FocusStage) -> str:
    if st.abstained:
        return "the classifier abstained (too few signs measurable)"
    across = st.boundary_flips
    if across:
        flipped = sorted({s.value for s in across})
        return (
            f"the stage changes to {', '.join(flipped)} under {len(across)} of "
            f"{len(st.perturbed_stages)} small perturbations"
        )
    return f"the scores are close (runner-up {st.runner_up.value} {st.scores[st.runner_up]:.2f})"


def resection(
    stages: Sequence[FocusStage],
    *,
    foci: Sequence[Focus] = (),
    features: Sequence[FocusFeatures] = (),
    prior: StudyResult | None = None,
    config: ClassifyConfig | None = None,
) -> ResectionVerdict:
    """Decide resection readiness for one study (module docstring gives the rule).

    Parameters
    ----------
    stages : sequence of FocusStage
        One per focus.
    foci : sequence of Focus, optional
        The foci, same order (names them in the reasons; needed with `prior`).
    features : sequence of FocusFeatures, optional
        Their features, same order (mean density is compared with `prior`).
    prior : StudyResult, optional
        An earlier study of the same patient in the same frame of reference.
    config : ClassifyConfig, optional
        ``prior_*`` thresholds; defaults to ``ClassifyConfig()``.

    Returns
    -------
    ResectionVerdict

    Raises
    ------
    ValueError
        If `prior` is an error result, or `prior` is given without `foci`.

    Examples
    --------
    >>> from hostage.classify.types import FocusStage
    >>> from hostage.enums import Stage
    >>> m = FocusStage(stage=Stage.MATURE, confidence=0.9,
    ...                scores={Stage.AMORPHOUS: 0.02, Stage.IMMATURE: 0.08, Stage.MATURE: 0.9})
    >>> resection([m, m]).status.value
    'ready'
    >>> resection([]).status.value
    'no_foci'
    """
    config = ClassifyConfig() if config is None else config
    if not stages:
        return ResectionVerdict(
            status=Resection.NO_FOCI, reasons=("no hyperdense soft-tissue focus was found",)
        )
    atypical = [i for i, st in enumerate(stages) if st.atypical]
    # An atypical focus's stage is not an HO stage: it decides through rule 3 only.
    typical = [i for i, st in enumerate(stages) if not st.atypical]
    non_mature = [i for i in typical if stages[i].stage is not Stage.MATURE]
    flips = config.readiness_max_flip_fraction
    firm_non_mature = [
        i for i in non_mature if not stages[i].readiness_ambiguous(max_flip_fraction=flips)
    ]
    doubtful = [i for i in typical if stages[i].readiness_ambiguous(max_flip_fraction=flips)]

    atypical_notes = [
        f"{_name(i, foci)} shows atypical {stages[i].atypical_pattern or CENTRAL_FIRST}; "
        "rule out other lesions before any resection"
        for i in atypical
    ]
    if firm_non_mature:
        reasons = [
            f"{_name(i, foci)} is {_call(stages[i])}: resect only once it is mature"
            for i in firm_non_mature
        ]
        n_mature = len(stages) - len(non_mature)
        if n_mature:
            verb = "is" if n_mature == 1 else "are"
            reasons.append(f"{n_mature} of {len(stages)} foci {verb} mature")
        return ResectionVerdict(status=Resection.NOT_READY, reasons=(*reasons, *atypical_notes))

    if atypical:
        return ResectionVerdict(status=Resection.INDETERMINATE, reasons=tuple(atypical_notes))

    if doubtful:
        # every non-mature focus (if any) is doubtful, or all are mature and some are doubtful:
        # the doubtful foci decide the verdict.
        reasons = [
            f"{_name(i, foci)} is called {_call(stages[i])} but {_doubt(stages[i])}, "
            "and the verdict depends on it"
            for i in doubtful
        ]
        return ResectionVerdict(status=Resection.INDETERMINATE, reasons=tuple(reasons))

    n = len(stages)
    base = f"all {n} foci are mature" if n > 1 else "the only focus is mature"
    if prior is None:
        return ResectionVerdict(status=Resection.READY, reasons=(base,))
    return _with_prior(base, foci, features, prior, config)


def _with_prior(
    base: str,
    foci: Sequence[Focus],
    features: Sequence[FocusFeatures],
    prior: StudyResult,
    config: ClassifyConfig,
) -> ResectionVerdict:
    if prior.status is not Status.OK:
        raise ValueError(
            f"prior study {prior.study_key!r} has status {prior.status.value!r} "
            f"({prior.error}); pass a prior result that was staged successfully"
        )
    if not foci:
        raise ValueError("resection(prior=...) needs the foci to compare with the prior study")
    density = [
        float(features[i].values.get("density_mean_hu", math.nan))
        if i < len(features)
        else math.nan
        for i in range(len(foci))
    ]
    matches = [_match(f, prior.foci, config.prior_match_distance_mm) for f in foci]
    if prior.foci and all(m is None for m in matches):
        return ResectionVerdict(
            status=Resection.INDETERMINATE,
            reasons=(
                base,
                f"none of the {len(prior.foci)} foci of the prior study lies within "
                f"{config.prior_match_distance_mm:g} mm of a focus of this study: are both "
                "studies of the same patient in the same frame of reference?",
            ),
        )
    changes = []
    for focus, old, dens in zip(foci, matches, density, strict=True):
        if old is None:
            changes.append(f"focus {focus.id} is new since the prior study")
            continue
        growth = (focus.volume_mm3 - old.volume_mm3) / max(old.volume_mm3, 1e-9)
        if abs(growth) > config.prior_max_growth_fraction:
            verb = "grew" if growth > 0 else "shrank"
            changes.append(
                f"focus {focus.id} {verb} by {100 * abs(growth):.0f} % since the prior study "
                f"({old.volume_mm3:.0f} -> {focus.volume_mm3:.0f} mm³)"
            )
        old_dens = float(old.features.get("density_mean_hu", math.nan))
        if (
            math.isfinite(old_dens)
            and math.isfinite(dens)
            and abs(dens - old_dens) > config.prior_max_density_change_hu
        ):
            changes.append(
                f"focus {focus.id} changed mean density by {dens - old_dens:+.0f} HU since "
                f"the prior study ({old_dens:.0f} -> {dens:.0f} HU)"
            )
            if growth < -config.prior_max_growth_fraction and dens < old_dens:
                changes.append(
                    f"focus {focus.id} is smaller and less dense than before: partial "
                    "resorption or fragmentation can mean infection"
                )
    if changes:
        return ResectionVerdict(
            status=Resection.NOT_READY,
            reasons=(base, *changes, "mature HO that is still changing is not yet ready"),
        )
    return ResectionVerdict(
        status=Resection.READY,
        reasons=(
            base,
            f"stable since the prior study (volume within "
            f"{100 * config.prior_max_growth_fraction:.0f} %, mean density within "
            f"{config.prior_max_density_change_hu:.0f} HU)",
        ),
    )


def _match(focus: Focus, prior_foci: Sequence[FocusResult], max_mm: float) -> FocusResult | None:
    """Return the prior focus nearest to `focus` (centroid distance in LPS mm), if within `max_mm`."""
    if not prior_foci:
        return None
    here = np.asarray(focus.centroid_lps_mm, dtype=float)
    dist = [float(np.linalg.norm(np.asarray(p.centroid_lps_mm) - here)) for p in prior_foci]
    best = int(np.argmin(dist))
    return prior_foci[best] if dist[best] <= max_mm else None
