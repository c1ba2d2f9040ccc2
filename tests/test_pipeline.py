"""End to end on phantoms: every stage, mixed studies, no foci; results match CONTRACT.md."""

import json
import math
import re

import numpy as np
import pytest

import hostage
from hostage.enums import Resection, Stage
from hostage.phantom import LesionSpec
from hostage.pipeline import analyse
from hostage.result import StudyResult

RESULT_KEYS = {
    "schema",
    "status",
    "error",
    "study_key",
    "source",
    "study",
    "foci",
    "resection",
    "warnings",
    "software",
}
FOCUS_KEYS = {
    "id",
    "centroid_lps_mm",
    "bbox_lps_mm",
    "volume_mm3",
    "stage",
    "confidence",
    "scores",
    "features",
    "reasons",
}


def _match(result, lesion):
    """The focus whose centroid is nearest the lesion centre (mm), with the distance."""
    c = np.asarray(lesion.centre_lps_mm)
    d = [float(np.linalg.norm(np.asarray(f.centroid_lps_mm) - c)) for f in result.foci]
    i = int(np.argmin(d))
    return result.foci[i], d[i]


def _check_contract(result):
    d = result.to_dict()
    assert set(d) >= RESULT_KEYS
    assert d["schema"] == "hostage.result/1"
    for f in d["foci"]:
        assert set(f) >= FOCUS_KEYS
        assert set(f["scores"]) == {"amorphous", "immature", "mature"}
        assert math.isclose(sum(f["scores"].values()), 1.0, abs_tol=1e-9)
        assert 0.0 <= f["confidence"] <= 1.0
        assert any(re.search(r"\d", r) for r in f["reasons"])  # reasons cite measured values
        lo, hi = f["bbox_lps_mm"]
        assert all(a <= c <= b for a, c, b in zip(lo, f["centroid_lps_mm"], hi, strict=True))
    assert d["software"]["config"]["classify"]["weight_rim_mature"] == (
        hostage.Config().classify.weight_rim_mature
    )
    text = json.dumps(d, allow_nan=False)
    back = StudyResult.from_dict(json.loads(text))
    assert json.loads(json.dumps(back.to_dict(), allow_nan=False)) == json.loads(text)


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_one_lesion_of_each_stage(phantom_factory, stage):
    ph = phantom_factory(seed=11, lesions=(LesionSpec(stage=stage, size_mm=22.0),), distractors=0)
    result = analyse(ph.volume).result
    (lesion,) = ph.truth.lesions
    assert len(result.foci) == 1
    focus, dist = _match(result, lesion)
    assert dist < 0.25 * lesion.size_mm
    assert focus.stage is stage, focus.reasons
    assert result.resection.status is ph.truth.expected_resection
    _check_contract(result)


def test_mixed_study_finds_every_lesion_and_is_not_ready(phantom_small):
    result = analyse(phantom_small.volume).result
    assert len(result.foci) == len(phantom_small.truth.lesions)
    staged = {}
    for lesion in phantom_small.truth.lesions:
        focus, dist = _match(result, lesion)
        assert dist < 0.3 * lesion.size_mm
        staged[lesion.stage] = focus.stage
    assert staged == {s: s for s in Stage}
    assert result.resection.status is Resection.NOT_READY
    assert any(r.startswith("focus ") and "immature" in r for r in result.resection.reasons)
    _check_contract(result)


def test_only_look_alikes_is_no_foci(phantom_factory):
    ph = phantom_factory(seed=5, lesions=0, distractors=3)
    result = analyse(ph.volume).result
    assert result.foci == ()
    assert result.resection.status is Resection.NO_FOCI
    _check_contract(result)


def test_prior_study_stable_or_grown(phantom_factory):
    import dataclasses

    ph = phantom_factory(
        seed=11, lesions=(LesionSpec(stage="mature", size_mm=22.0),), distractors=0
    )
    first = analyse(ph.volume).result
    again = analyse(ph.volume, prior=first).result
    assert again.resection.status is first.resection.status
    if first.resection.status is Resection.READY:
        assert any(r.startswith("stable since the prior study") for r in again.resection.reasons)
    smaller = dataclasses.replace(
        first, foci=tuple(dataclasses.replace(f, volume_mm3=f.volume_mm3 / 2) for f in first.foci)
    )
    grown = analyse(ph.volume, prior=smaller).result
    if first.resection.status is Resection.READY:
        assert grown.resection.status is Resection.NOT_READY
        assert any("grew by 100 % since the prior study" in r for r in grown.resection.reasons)
