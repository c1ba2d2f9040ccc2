"""The stage rules: scores sum to 1, evidence ramps, reasons cite values, flags."""

import dataclasses
import math
import re

import numpy as np
import pytest

from hostage.classify import TERMS, classify
from hostage.classify.rules import evidence, score_focus, stage_probabilities, weight_matrix
from hostage.config import ClassifyConfig, Config
from hostage.enums import Stage
from hostage.errors import ConfigError
from hostage.features import FocusFeatures

CFG = ClassifyConfig()

# Hand-written, textbook-like feature sets (DOMAIN.md table), not phantom measurements.
MATURE = {
    "rim_completeness": 0.93,
    "texture_connectivity_density_per_mm3": 0.9,
    "rim_fat_fraction": 0.3,
    "margin_sharpness_ratio": 0.95,
    "density_p90_rel_cortex": 0.92,
    "density_mineral_fraction": 0.7,
    "margin_irregularity": 0.05,
    "rim_faint_completeness": 0.97,
    "texture_glcm_homogeneity": 0.22,
    "zonal_periphery_center_ratio": 1.8,
    "zonal_central_first": 0.0,
    "rim_core_contrast_hu": 450.0,
    "texture_speck_density_per_cm3": 0.3,
    "texture_network_fraction": 1.0,
    "bone_attached": 0.0,
    "bone_distance_mm": 4.2,
}
IMMATURE = {
    "rim_completeness": 0.3,  # the partial rim is mostly faint, below cortical density
    "texture_connectivity_density_per_mm3": 0.2,
    "rim_fat_fraction": 0.05,
    "margin_sharpness_ratio": 0.55,
    "density_p90_rel_cortex": 0.45,
    "density_mineral_fraction": 0.65,
    "margin_irregularity": 0.12,
    "rim_faint_completeness": 0.45,
    "texture_glcm_homogeneity": 0.62,
    "texture_speck_density_per_cm3": 0.8,
    "texture_network_fraction": 0.9,
    "zonal_periphery_center_ratio": 1.3,
}
AMORPHOUS = {
    "rim_completeness": 0.02,
    "texture_connectivity_density_per_mm3": 0.0,
    "rim_fat_fraction": 0.0,
    "margin_sharpness_ratio": 0.15,
    "density_p90_rel_cortex": 0.15,
    "density_mineral_fraction": 0.3,
    "margin_irregularity": 0.45,
    "rim_faint_completeness": 0.02,
    "texture_glcm_homogeneity": 0.4,
    "texture_speck_density_per_cm3": 3.5,
    "texture_network_fraction": 0.35,
    "zonal_periphery_center_ratio": 0.7,
}


@pytest.mark.parametrize(
    ("values", "stage"),
    [(MATURE, Stage.MATURE), (IMMATURE, Stage.IMMATURE), (AMORPHOUS, Stage.AMORPHOUS)],
)
def test_textbook_foci_get_their_stage_and_scores_sum_to_one(values, stage):
    st = classify(FocusFeatures(focus_id=1, values=values), config=CFG)
    assert st.stage is stage
    assert math.isclose(sum(st.scores.values()), 1.0, abs_tol=1e-9)
    assert st.confidence == pytest.approx(st.scores[stage])
    assert st.scores[stage] == max(st.scores.values())


def test_reasons_cite_the_measured_values():
    st = score_focus(MATURE, config=CFG)
    text = " | ".join(st.reasons)
    assert "continuous cortical rim over 93 % of the surface" in text
    assert "connectivity density 0.90 /mm³" in text
    assert "90th percentile at 92 % of the way from muscle to this scan's native cortex" in text
    assert "compact, regular outline (irregularity 0.05)" in text
    assert "0.95 × the sharpness" in text
    assert "separated from the native bone by 4.2 mm" in text
    assert "peripheral (zonal) mineralisation, periphery/centre ratio 1.80" in text
    amorph = " | ".join(score_focus(AMORPHOUS, config=CFG).reasons)
    assert "no trabecular network inside (connectivity density 0.00 /mm³)" in amorph
    assert "no cortical rim (a dense shell over only 2 % of the surface)" in amorph


def test_first_reason_supports_the_chosen_stage():
    mature_signs = ("continuous cortical", "dense, cortical", "sharp", "compact", "heterogeneous")
    assert score_focus(MATURE, config=CFG).reasons[0].startswith(mature_signs)
    assert (
        score_focus(AMORPHOUS, config=CFG)
        .reasons[0]
        .startswith(("no ", "faint", "ill-defined", "cloudy", "low"))
    )


@pytest.mark.parametrize("term", TERMS, ids=lambda t: t.name)
def test_evidence_is_a_clipped_linear_ramp(term):
    lo, hi = getattr(CFG, term.from_key), getattr(CFG, term.to_key)
    for x, expected in [
        (lo - (hi - lo), 0.0),
        (lo, 0.0),
        ((lo + hi) / 2, 0.5),
        (hi, 1.0),
        (hi + (hi - lo), 1.0),
    ]:
        assert evidence({term.feature: x}, config=CFG)[term.name] == pytest.approx(expected)
    assert math.isnan(evidence({}, config=CFG)[term.name])


def _at(e):
    """Feature values putting every term at evidence `e` (0 or 1)."""
    return {t.feature: getattr(CFG, t.to_key if e else t.from_key) for t in TERMS}


def test_no_sign_is_amorphous_every_sign_is_mature():
    assert score_focus(_at(0), config=CFG).stage is Stage.AMORPHOUS
    assert score_focus(_at(1), config=CFG).stage is Stage.MATURE


MATURITY_SIGNS = [t for t in TERMS if t.ordinal]


@pytest.mark.parametrize("term", MATURITY_SIGNS, ids=lambda t: t.name)
def test_each_sign_raises_mature_over_amorphous(term):
    """Each sign of maturity moves the odds of mature against amorphous upwards."""
    base = dict(IMMATURE)
    lo, hi = getattr(CFG, term.from_key), getattr(CFG, term.to_key)
    p_lo = score_focus({**base, term.feature: lo}, config=CFG).scores
    p_hi = score_focus({**base, term.feature: hi}, config=CFG).scores
    ratio_hi = p_hi[Stage.MATURE] / p_hi[Stage.AMORPHOUS]
    ratio_lo = p_lo[Stage.MATURE] / p_lo[Stage.AMORPHOUS]
    if term.name in ("rim", "density", "margin"):  # the signs that carry weight on phantoms
        assert ratio_hi > 1.5 * ratio_lo
    else:  # never the wrong way (fit keeps sign weights ordinal)
        assert ratio_hi >= ratio_lo * (1 - 1e-12)


def test_weights_are_read_from_the_config():
    w, b = weight_matrix(CFG)
    assert w.shape == (3, len(TERMS))
    assert w[2, 0] == CFG.weight_rim_mature
    assert b[1] == CFG.bias_immature
    p = stage_probabilities(np.zeros(len(TERMS)), w, b)
    np.testing.assert_allclose(p, np.exp(b) / np.exp(b).sum())


def test_a_user_config_changes_the_call():
    strict = Config.from_dict({"classify": {"bias_mature": -40.0}}).classify
    assert score_focus(MATURE, config=strict).stage is not Stage.MATURE


def test_central_first_mineralisation_is_atypical_and_said_first():
    dense_centre = {**MATURE, "rim_completeness": 0.1, "rim_fat_fraction": 0.0}
    st = score_focus(
        {**dense_centre, "zonal_central_first": 1.0, "zonal_periphery_center_ratio": 0.6},
        config=CFG,
    )
    assert st.atypical
    assert st.reasons[0].startswith(
        "atypical central-first mineralisation (dense centre, periphery/centre density ratio 0.60)"
    )


def test_a_focus_wrapped_in_cortex_is_not_atypical():
    st = score_focus(
        {**MATURE, "zonal_central_first": 1.0, "zonal_periphery_center_ratio": 0.3}, config=CFG
    )
    assert not st.atypical and st.stage is Stage.MATURE


def test_an_apparent_rim_over_a_denser_core_is_still_atypical():
    """A dense mass cut by the segmentation shows a 'rim' at its edge, but its core is denser."""
    edge_of_a_mass = {
        **MATURE,
        "zonal_central_first": 1.0,
        "zonal_periphery_center_ratio": 0.3,
        "rim_core_contrast_hu": CFG.atypical_max_rim_core_contrast_hu - 100.0,
    }
    assert score_focus(edge_of_a_mass, config=CFG).atypical
    shell_over_lighter_core = {**edge_of_a_mass, "rim_core_contrast_hu": 50.0}
    assert not score_focus(shell_over_lighter_core, config=CFG).atypical


def test_a_centre_denser_only_within_the_blurred_skin_is_compact_bone_not_atypical():
    """Compact bone on thick slices: the blur darkens its outer millimetre (a 'denser core'),
    but beyond the skin the centre is no denser; only a measured deep ratio can veto."""
    edge_of_a_mass = {
        **MATURE,
        "zonal_central_first": 1.0,
        "zonal_periphery_center_ratio": 0.3,
        "rim_core_contrast_hu": CFG.atypical_max_rim_core_contrast_hu - 100.0,
    }
    limit = CFG.atypical_max_deep_ratio
    compact = {**edge_of_a_mass, "zonal_deep_periphery_center_ratio": limit + 0.05}
    st = score_focus(compact, config=CFG)
    assert not st.atypical
    assert any(r.startswith("denser centre only within the scanner's blur") for r in st.reasons)
    central = {**edge_of_a_mass, "zonal_deep_periphery_center_ratio": limit - 0.05}
    assert score_focus(central, config=CFG).atypical
    too_thin = {**edge_of_a_mass, "zonal_deep_periphery_center_ratio": float("nan")}
    assert score_focus(too_thin, config=CFG).atypical


def test_punctate_specks_favour_amorphous_and_a_connected_network_immature():
    few = score_focus({**IMMATURE, "texture_speck_density_per_cm3": 0.5}, config=CFG)
    many = score_focus({**IMMATURE, "texture_speck_density_per_cm3": 4.0}, config=CFG)
    odds = lambda st: st.scores[Stage.IMMATURE] / st.scores[Stage.AMORPHOUS]  # noqa: E731
    # the refit leaves the speck term little weight (the halo and the network carry the
    # same sign on the training phantoms); its ordinal weights never let few specks favour
    # amorphous, and a config that weights it moves the odds
    assert odds(few) >= odds(many)
    weighted = dataclasses.replace(CFG, weight_specks_immature=1.0, weight_specks_mature=1.0)
    few_w = score_focus({**IMMATURE, "texture_speck_density_per_cm3": 0.5}, config=weighted)
    many_w = score_focus({**IMMATURE, "texture_speck_density_per_cm3": 4.0}, config=weighted)
    assert odds(few_w) > 2.0 * odds(many_w)
    assert (
        "punctate: many separate mineral specks (4.0 bone-density specks per cm³)" in many.reasons
    )
    assert (
        "mineral in few separate pieces, not punctate (0.5 bone-density specks per cm³)"
        in few.reasons
    )
    joined = score_focus({**IMMATURE, "texture_network_fraction": 1.0}, config=CFG)
    scattered = score_focus({**IMMATURE, "texture_network_fraction": 0.3}, config=CFG)
    assert odds(joined) > 1.2 * odds(scattered)
    assert (
        "the mineral is scattered, not a connected network (30 % of it in the largest piece)"
        in scattered.reasons
    )
    none = score_focus({**IMMATURE, "texture_network_fraction": 0.0}, config=CFG)
    assert "no mineral at bone density inside, so no connected network" in none.reasons


def test_a_mineralised_matrix_favours_immature_over_low_patchy_mineral():
    """DOMAIN: amorphous mineral is low and patchy, immature ossification intermediate."""
    odds = lambda st: st.scores[Stage.IMMATURE] / st.scores[Stage.AMORPHOUS]  # noqa: E731
    solid = score_focus({**IMMATURE, "density_mineral_fraction": 0.7}, config=CFG)
    patchy = score_focus({**IMMATURE, "density_mineral_fraction": 0.3}, config=CFG)
    assert odds(solid) > 2.0 * odds(patchy)
    assert "solidly mineralised matrix (70 % of the focus at mineral density)" in solid.reasons
    assert "low, patchy mineral (30 % of the focus at mineral density)" in patchy.reasons
    # three even bands of the ramp: barely past its start still reads as low
    for share, words in ((0.37, "low, patchy mineral"), (0.5, "partly mineralised matrix")):
        st = score_focus({**IMMATURE, "density_mineral_fraction": share}, config=CFG)
        assert f"{words} ({100 * share:.0f} % of the focus at mineral density)" in st.reasons


def test_a_focus_without_bone_density_mineral_has_no_speck_evidence():
    """No mineral at all is neither punctate nor organised: the term is not measurable."""
    st = score_focus({**AMORPHOUS, "texture_speck_density_per_cm3": math.nan}, config=CFG)
    assert math.isnan(evidence({"texture_speck_density_per_cm3": math.nan}, config=CFG)["specks"])
    assert (
        "mineral gathered in few pieces rather than punctate specks (a falling ramp) not measurable "
        "on this focus (texture_speck_density_per_cm3 undefined)"
    ) in st.reasons


def test_a_faint_cloud_denser_in_its_middle_is_not_atypical():
    faint = {**AMORPHOUS, "zonal_central_first": 1.0, "zonal_periphery_center_ratio": 0.6}
    st = score_focus(faint, config=CFG)
    assert not st.atypical
    assert "no peripheral (zonal) mineralisation, periphery/centre ratio 0.60" in st.reasons


def test_missing_features_drop_out_and_too_few_abstain():
    partial = {k: v for k, v in MATURE.items() if k != "rim_fat_fraction"}
    st = score_focus(partial, config=CFG)
    assert not st.abstained
    assert (
        "fatty marrow between the trabeculae not measurable on this focus (rim_fat_fraction undefined)"
        in st.reasons
    )
    few = {
        "density_p90_rel_cortex": 0.9,
        "margin_irregularity": 0.05,
        "rim_completeness": float("nan"),
    }
    st = score_focus(few, config=CFG)
    assert st.abstained and st.uncertain and st.readiness_ambiguous(max_flip_fraction=1.0)
    assert (
        st.reasons[0]
        == f"abstains: only 2 of {len(TERMS)} signs could be measured, so the stage is a guess"
    )


def test_low_top_score_is_uncertain_and_says_so():
    cfg = ClassifyConfig(min_confidence=0.99)
    st = score_focus(IMMATURE, config=cfg)
    assert st.uncertain
    assert re.match(
        r"uncertain: top score 0\.\d\d is below min_confidence 0\.99 \(runner-up \w+ 0\.\d\d\)",
        st.reasons[0],
    )


def test_equal_ramp_ends_are_a_config_error():
    with pytest.raises(ConfigError, match=r"rim_from and rim_to are both 0\.5"):
        score_focus(MATURE, config=ClassifyConfig(rim_from=0.5, rim_to=0.5))


def test_unreliable_texture_is_not_read_as_absent_trabeculae():
    coarse = {**MATURE, "texture_reliable": 0.0, "texture_connectivity_density_per_mm3": 0.0}
    st = score_focus(coarse, config=CFG)
    assert evidence(coarse, config=CFG)["trabecular"] != evidence(coarse, config=CFG)["trabecular"]
    assert st.stage is Stage.MATURE
    # not assessable sits between "absent" and "present"
    absent = score_focus({**MATURE, "texture_connectivity_density_per_mm3": 0.0}, config=CFG)
    present = score_focus(MATURE, config=CFG).scores[Stage.MATURE]
    assert absent.scores[Stage.MATURE] <= st.scores[Stage.MATURE] <= present
    assert (
        "organised cancellous bone (trabecular network) not assessed: the voxels of this scan "
        "are too large for it (texture_reliable = 0)"
    ) in st.reasons


def test_metal_streak_zone_lowers_confidence_and_says_why():
    plain = score_focus(MATURE, config=CFG)
    near = score_focus({**MATURE, "metal_streak_zone": 1.0, "metal_distance_mm": 12.4}, config=CFG)
    assert near.confidence == pytest.approx(plain.confidence * CFG.metal_confidence_factor)
    assert near.scores == plain.scores
    assert (
        "near metal (12 mm): implant streaks may bias these measures, confidence × 0.80"
        in near.reasons
    )


def test_a_haze_beyond_the_outline_favours_amorphous():
    """DOMAIN: amorphous mineral has ill-defined margins, fading into the muscle."""
    odds = lambda st: st.scores[Stage.IMMATURE] / st.scores[Stage.AMORPHOUS]  # noqa: E731
    clean = score_focus({**IMMATURE, "margin_halo_fraction": 0.01}, config=CFG)
    hazy = score_focus({**IMMATURE, "margin_halo_fraction": 0.25}, config=CFG)
    assert odds(clean) > 2.0 * odds(hazy)
    assert (
        "fades into the muscle: a mineral haze around it (25 % of its density still present "
        "1-3 mm beyond its outline)" in hazy.reasons
    )
    assert (
        "clean outline, no mineral haze around it (1 % of its density still present "
        "1-3 mm beyond its outline)" in clean.reasons
    )


def test_a_dense_uniform_fill_and_contact_with_gas_are_atypical_look_alikes():
    from hostage.classify.rules import CENTRAL_FIRST, GAS_CONTACT, UNIFORM_FILL

    pool = {**MATURE, "lookalike_fill_excess_hu": 600.0, "lookalike_fill_spread": 1.2}
    st = score_focus(pool, config=CFG)
    assert st.atypical and st.atypical_pattern == UNIFORM_FILL
    assert st.reasons[0].startswith("atypical uniform fill: 600 HU above muscle")
    # trabeculae and marrow: the same density with structure is HO
    assert not score_focus({**pool, "lookalike_fill_spread": 8.0}, config=CFG).atypical
    # a faint uniform haze (amorphous) is below the density floor
    haze = {**pool, "lookalike_fill_excess_hu": 150.0}
    assert not score_focus(haze, config=CFG).atypical
    gas = score_focus({**MATURE, "lookalike_gas_contact": 0.2}, config=CFG)
    assert gas.atypical and gas.atypical_pattern == GAS_CONTACT
    assert "touches gas over 20 %" in gas.reasons[0]
    # NaN (not measured) never flags; central-first takes precedence
    assert not score_focus({**MATURE, "lookalike_fill_spread": float("nan")}, config=CFG).atypical
    both = {
        **pool,
        "rim_completeness_near": 0.1,
        "zonal_central_first": 1.0,
        "zonal_periphery_center_ratio": 0.5,
    }
    assert score_focus(both, config=CFG).atypical_pattern == CENTRAL_FIRST
    off = Config.from_dict({"classify": {"atypical_min_gas_contact": 1.0}}).classify
    assert not score_focus({**MATURE, "lookalike_gas_contact": 0.2}, config=off).atypical
