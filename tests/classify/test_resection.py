"""Every branch of the resection rule (CONTRACT.md)."""

import numpy as np
import pytest

from hostage.classify import resection
from hostage.classify.types import FocusStage
from hostage.config import ClassifyConfig
from hostage.enums import Resection, Stage, Status
from hostage.features import FocusFeatures
from hostage.result import FocusResult, StudyResult
from hostage.segment.foci import Focus

A, I, M = Stage.AMORPHOUS, Stage.IMMATURE, Stage.MATURE  # noqa: E741


def st(
    stage, *, p=0.9, runner=None, perturbed=(), atypical=False, uncertain=False, abstained=False
):
    others = [s for s in Stage if s is not stage]
    runner = runner or others[0]
    scores = {
        stage: p,
        runner: (1 - p) * 0.8,
        next(s for s in others if s is not runner): (1 - p) * 0.2,
    }
    return FocusStage(
        stage=stage,
        scores=scores,
        confidence=p,
        atypical=atypical,
        uncertain=uncertain,
        abstained=abstained,
        perturbed_stages=perturbed,
    )


def focus(fid, centre, volume_mm3):
    return Focus(
        id=fid,
        bbox_zyx=(slice(0, 2), slice(0, 2), slice(0, 2)),
        mask=np.ones((2, 2, 2), bool),
        volume_mm3=volume_mm3,
        centroid_lps_mm=centre,
    )


def prior_result(foci):
    return StudyResult(
        status=Status.OK,
        study_key="prior",
        source="prior",
        foci=tuple(
            FocusResult(
                id=i + 1,
                centroid_lps_mm=c,
                bbox_lps_mm=(c, c),
                volume_mm3=v,
                stage=M,
                confidence=0.9,
                scores={A: 0.05, I: 0.05, M: 0.9},
                features={"density_mean_hu": d},
            )
            for i, (c, v, d) in enumerate(foci)
        ),
    )


def test_no_foci():
    v = resection([])
    assert v.status is Resection.NO_FOCI
    assert v.reasons == ("no hyperdense soft-tissue focus was found",)


def test_all_mature_is_ready():
    v = resection([st(M), st(M, p=0.8)], foci=[focus(1, (0, 0, 0), 100), focus(2, (50, 0, 0), 100)])
    assert v.status is Resection.READY
    assert v.reasons == ("all 2 foci are mature",)
    assert resection([st(M)]).reasons == ("the only focus is mature",)


@pytest.mark.parametrize("other", [A, I])
def test_any_firm_non_mature_focus_is_not_ready(other):
    v = resection([st(M), st(other, p=0.85)], foci=[focus(1, (0, 0, 0), 1), focus(7, (9, 9, 9), 1)])
    assert v.status is Resection.NOT_READY
    assert v.reasons[0] == f"focus 7 is {other.value} (score 0.85): resect only once it is mature"
    assert v.reasons[1] == "1 of 2 foci is mature"


def test_atypical_focus_is_indeterminate_even_when_all_are_mature():
    v = resection(
        [st(M), st(M, atypical=True)], foci=[focus(1, (0, 0, 0), 1), focus(2, (9, 9, 9), 1)]
    )
    assert v.status is Resection.INDETERMINATE
    assert v.reasons[0].startswith("focus 2 shows atypical central-first mineralisation")


def test_firm_not_ready_wins_over_atypical_and_names_both():
    v = resection(
        [st(I), st(M, atypical=True)], foci=[focus(1, (0, 0, 0), 1), focus(2, (9, 9, 9), 1)]
    )
    assert v.status is Resection.NOT_READY
    assert v.reasons[0] == "focus 1 is immature (score 0.90): resect only once it is mature"
    assert v.reasons[-1].startswith("focus 2 shows atypical central-first mineralisation")


def test_unstable_mature_focus_deciding_makes_it_indeterminate():
    shaky = st(M, perturbed=(M, I, I, M))
    v = resection([st(M), shaky], foci=[focus(1, (0, 0, 0), 1), focus(2, (9, 9, 9), 1)])
    assert v.status is Resection.INDETERMINATE
    assert v.reasons == (
        "focus 2 is called mature (score 0.90) but the stage changes to immature under 2 of 4 "
        "small perturbations, and the verdict depends on it",
    )


def test_one_flip_in_four_leaves_a_firm_call_firm_unless_configured_otherwise():
    once = st(M, perturbed=(M, I, M, M))
    assert resection([st(M), once]).status is Resection.READY
    strict = ClassifyConfig(readiness_max_flip_fraction=0.0)
    v = resection([st(M), once], config=strict)
    assert v.status is Resection.INDETERMINATE
    assert "changes to immature under 1 of 4 small perturbations" in v.reasons[0]
    # a call that the flip leaves uncertain is in doubt whatever the fraction
    weak = st(M, p=0.45, runner=I, uncertain=True, perturbed=(M, I, M, M))
    assert resection([weak]).status is Resection.INDETERMINATE


def test_unstable_focus_that_does_not_decide_leaves_not_ready():
    # a firm immature focus decides: the unstable mature one does not matter
    v = resection([st(I), st(M, perturbed=(I, I, M, M))])
    assert v.status is Resection.NOT_READY
    # an immature focus flipping to amorphous stays not mature: still a firm "not ready"
    v = resection([st(I, perturbed=(A, A, I, A)), st(M)])
    assert v.status is Resection.NOT_READY


def test_only_non_mature_focus_unstable_towards_mature_is_indeterminate():
    v = resection([st(M), st(I, perturbed=(M, M, I, I))])
    assert v.status is Resection.INDETERMINATE
    v = resection([st(M), st(I, perturbed=(M, I, I, I))])
    assert v.status is Resection.NOT_READY


def test_uncertain_focus_with_runner_up_across_the_boundary_is_indeterminate():
    v = resection([st(M, p=0.45, runner=I, uncertain=True)])
    assert v.status is Resection.INDETERMINATE
    assert "the scores are close (runner-up immature 0.44)" in v.reasons[0]
    # uncertain between amorphous and immature: not ready either way
    v = resection([st(I, p=0.45, runner=A, uncertain=True)])
    assert v.status is Resection.NOT_READY


def test_abstained_focus_is_indeterminate():
    v = resection([st(M, abstained=True, uncertain=True)])
    assert v.status is Resection.INDETERMINATE
    assert "abstained" in v.reasons[0]


def test_prior_stable_mature_focus_stays_ready():
    prior = prior_result([((0.0, 0.0, 0.0), 1000.0, 700.0)])
    feats = [FocusFeatures(focus_id=1, values={"density_mean_hu": 720.0})]
    v = resection([st(M)], foci=[focus(1, (3, 0, 0), 1100.0)], features=feats, prior=prior)
    assert v.status is Resection.READY
    assert (
        v.reasons[1]
        == "stable since the prior study (volume within 20 %, mean density within 100 HU)"
    )


def test_prior_growth_or_density_change_is_not_ready():
    prior = prior_result([((0.0, 0.0, 0.0), 1000.0, 500.0)])
    feats = [FocusFeatures(focus_id=1, values={"density_mean_hu": 750.0})]
    v = resection([st(M)], foci=[focus(1, (3, 0, 0), 1500.0)], features=feats, prior=prior)
    assert v.status is Resection.NOT_READY
    assert "focus 1 grew by 50 % since the prior study (1000 -> 1500 mm³)" in v.reasons
    assert (
        "focus 1 changed mean density by +250 HU since the prior study (500 -> 750 HU)" in v.reasons
    )


def test_prior_new_focus_is_not_ready_and_unmatched_prior_is_indeterminate():
    prior = prior_result([((0.0, 0.0, 0.0), 1000.0, 500.0)])
    foci = [focus(1, (0, 0, 0), 1000.0), focus(2, (80, 0, 0), 300.0)]
    feats = [FocusFeatures(focus_id=i, values={"density_mean_hu": 500.0}) for i in (1, 2)]
    v = resection([st(M), st(M)], foci=foci, features=feats, prior=prior)
    assert v.status is Resection.NOT_READY
    assert "focus 2 is new since the prior study" in v.reasons
    far = [focus(1, (200, 0, 0), 1000.0)]
    v = resection(
        [st(M)],
        foci=far,
        features=feats[:1],
        prior=prior,
        config=ClassifyConfig(prior_match_distance_mm=20),
    )
    assert v.status is Resection.INDETERMINATE
    assert "none of the 1 foci of the prior study lies within 20 mm" in v.reasons[1]


def test_prior_error_result_is_refused():
    bad = StudyResult.from_error("unreadable", study_key="p", source="p")
    with pytest.raises(ValueError, match=r"prior study 'p' has status 'error' \(unreadable\)"):
        resection([st(M)], foci=[focus(1, (0, 0, 0), 1)], prior=bad)


def test_prior_resorption_mentions_infection():
    prior = prior_result([((0.0, 0.0, 0.0), 1000.0, 700.0)])
    feats = [FocusFeatures(focus_id=1, values={"density_mean_hu": 450.0})]
    v = resection([st(M)], foci=[focus(1, (1, 0, 0), 600.0)], features=feats, prior=prior)
    assert v.status is Resection.NOT_READY
    assert "focus 1 shrank by 40 % since the prior study (1000 -> 600 mm³)" in v.reasons
    assert (
        "focus 1 is smaller and less dense than before: partial resorption or fragmentation "
        "can mean infection"
    ) in v.reasons


def test_atypical_focus_stage_does_not_count_as_not_ready():
    # central-first foci have no rim, so they often score as immature: still indeterminate
    v = resection(
        [st(M), st(I, atypical=True)], foci=[focus(1, (0, 0, 0), 1), focus(2, (9, 9, 9), 1)]
    )
    assert v.status is Resection.INDETERMINATE
    assert len(v.reasons) == 1 and v.reasons[0].startswith("focus 2 shows atypical")
