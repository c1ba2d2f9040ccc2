"""Perturbed foci (threshold ±N HU, mask ±1 voxel) and how flips lower the confidence."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from hostage.classify.stability import _apply, _fine_axes, perturbed_foci
from hostage.classify.types import FocusStage
from hostage.enums import Stage
from hostage.io.volume import Volume
from hostage.segment import ReferenceTissues, Segmentation
from hostage.segment.foci import Focus

A, IM, M = Stage.AMORPHOUS, Stage.IMMATURE, Stage.MATURE


def _world(spacing):
    hu = np.zeros((12, 12, 12), np.float32)
    hu[4:8, 4:8, 4:8] = 400.0  # the focus: a 4-voxel cube
    hu[4:8, 4:8, 3] = 145.0  # faint layer just outside one face: joins at -20 HU only
    hu[4:8, 4:8, 8] = 100.0  # too faint on the other side
    hu[4, 4:8, 4:8] = 140.0  # faint boundary face inside the focus: leaves at +20 HU
    vol = Volume(hu=hu, spacing_zyx_mm=spacing)
    mask = np.zeros(hu.shape, bool)
    mask[4:8, 4:8, 4:8] = True
    labels = mask.astype(np.int32)
    focus = Focus(
        id=1,
        bbox_zyx=(slice(4, 8),) * 3,
        mask=np.ones((4, 4, 4), bool),
        volume_mm3=64 * float(np.prod(spacing)),
        centroid_lps_mm=tuple(vol.index_to_lps_mm([5.5, 5.5, 5.5]).tolist()),
    )
    nan = float("nan")
    seg = Segmentation(
        body_mask=np.ones(hu.shape, bool),
        bone_mask=np.zeros(hu.shape, bool),
        metal_mask=np.zeros(hu.shape, bool),
        labels=labels,
        foci=(focus,),
        reference=ReferenceTissues(
            muscle_hu=50.0, fat_hu=-100.0, cortex_hu=nan, noise_hu=nan, edge_width_mm=nan
        ),
    )
    return vol, seg, focus


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.7, 0.7)])
def test_perturbed_masks_are_the_documented_ones(spacing):
    vol, seg, focus = _world(spacing)
    out = dict(perturbed_foci(vol, focus, seg, grow_min_hu=130.0, threshold_hu=20.0, mask_voxels=1))
    assert list(out) == [
        "threshold +20 HU",
        "threshold -20 HU",
        "mask eroded by 1 voxel",
        "mask dilated by 1 voxel",
    ]
    voxel = float(np.prod(spacing))
    assert out["threshold +20 HU"].mask.sum() == 64 - 16  # the 140 HU face leaves
    assert out["threshold +20 HU"].bbox_zyx[0] == slice(5, 8)
    assert out["threshold -20 HU"].mask.sum() == 64 + 16  # the 145 HU layer joins, 100 HU does not
    assert out["threshold -20 HU"].bbox_zyx[2] == slice(3, 8)
    assert out["mask eroded by 1 voxel"].mask.sum() == 8
    assert out["mask dilated by 1 voxel"].mask.sum() == 64 + 6 * 16
    for f in out.values():
        assert f.id == 1
        assert f.volume_mm3 == pytest.approx(f.mask.sum() * voxel)
    # the centroid of the dilated cube stays at the cube centre, in LPS mm
    np.testing.assert_allclose(
        out["mask dilated by 1 voxel"].centroid_lps_mm, focus.centroid_lps_mm
    )


@pytest.mark.parametrize(
    ("spacing", "eroded", "dilated"),
    [
        ((1.0, 0.7, 0.7), 8, 64 + 6 * 16),  # every axis at most 1.5 mm: the full cross
        ((2.5, 0.7, 0.7), 4 * 4, 64 + 4 * 16),  # 2.5 mm slices: in-plane only
        ((2.5, 2.0, 2.0), 4 * 4, 64 + 4 * 16),  # nothing fine enough: the finest axes still
    ],
)
def test_the_mask_step_skips_axes_with_long_voxels(spacing, eroded, dilated):
    vol, seg, focus = _world(spacing)
    out = dict(
        perturbed_foci(
            vol,
            focus,
            seg,
            grow_min_hu=130.0,
            threshold_hu=20.0,
            mask_voxels=1,
            mask_max_step_mm=1.5,
        )
    )
    assert out["mask eroded by 1 voxel"].mask.sum() == eroded
    assert out["mask dilated by 1 voxel"].mask.sum() == dilated
    if spacing[0] > 1.5:  # the slices the focus spans are kept
        assert out["mask eroded by 1 voxel"].bbox_zyx[0] == slice(4, 8)


def test_dilation_never_takes_native_bone_or_other_foci():
    vol, seg, focus = _world((1.0, 1.0, 1.0))
    bone = np.zeros(vol.hu.shape, bool)
    bone[8, :, :] = True
    labels = seg.labels.copy()
    labels[4:8, 4:8, 8] = 2
    seg2 = Segmentation(
        body_mask=seg.body_mask,
        bone_mask=bone,
        metal_mask=seg.metal_mask,
        labels=labels,
        foci=seg.foci,
        reference=seg.reference,
    )
    out = dict(
        perturbed_foci(vol, focus, seg2, grow_min_hu=130.0, threshold_hu=20.0, mask_voxels=1)
    )
    assert (
        out["mask dilated by 1 voxel"].mask.sum() == 64 + 4 * 16
    )  # +z face is bone, +x face focus 2
    assert out["mask dilated by 1 voxel"].bbox_zyx[0] == slice(3, 8)


def _stage(stage, p):
    rest = (1 - p) / 2
    return FocusStage(
        stage=stage, scores={s: (p if s is stage else rest) for s in Stage}, confidence=p
    )


def test_flip_lowers_confidence_and_is_said_first():
    st = _apply(
        _stage(M, 0.9),
        [
            ("threshold +20 HU", M),
            ("mask eroded by 1 voxel", IM),
            ("mask dilated by 1 voxel", M),
            ("threshold -20 HU", M),
        ],
        0.5,
    )
    assert st.confidence == pytest.approx(0.9 * 4 / 5)
    assert st.unstable and st.readiness_ambiguous(max_flip_fraction=0.0)
    assert st.boundary_flip_fraction == 0.25
    assert not st.readiness_ambiguous(max_flip_fraction=0.25)
    assert st.reasons[0] == (
        "unstable: the stage changes under small perturbations "
        "(immature with mask eroded by 1 voxel); confidence lowered to 0.72"
    )


def test_stable_focus_keeps_its_confidence():
    st = _apply(_stage(IM, 0.8), [("a", IM), ("b", IM)], 0.5)
    assert st.confidence == pytest.approx(0.8)
    assert not st.unstable and not st.readiness_ambiguous(max_flip_fraction=0.0)
    assert (
        st.reasons[-1]
        == "stable: the same stage under all 2 perturbations (threshold, mask and resampling changes)"
    )
    # immature <-> amorphous flips lower the confidence but do not touch readiness
    st = _apply(_stage(IM, 0.8), [("a", A), ("b", IM)], 0.5)
    assert st.unstable and not st.readiness_ambiguous(max_flip_fraction=0.0)


def test_stage_reads_only_the_stage_feature_names(phantom_small):
    """Features outside stage_feature_names() never move the stage, whatever their value."""
    from hostage.classify.rules import score_focus
    from hostage.classify.stability import stage_feature_names
    from hostage.config import ClassifyConfig, Config
    from hostage.features import FAMILIES, measure
    from hostage.segment import segment

    cfg = Config()
    vol = phantom_small.volume
    seg = segment(vol, config=cfg.segment)
    names = stage_feature_names()
    all_names = {n for f in FAMILIES for n in f.names}
    assert names <= all_names
    assert {"rim_completeness", "texture_reliable", "margin_sharpness_ratio"} <= names
    assert not names & {"size_volume_mm3", "bone_distance_mm", "metal_streak_zone"}
    rng = np.random.default_rng(0)
    ccfg = ClassifyConfig()
    stages = set()
    for focus in seg.foci:
        values = dict(measure(vol, focus, seg, config=cfg.features).values)
        stage = score_focus(values, config=ccfg).stage
        stages.add(stage)
        for _ in range(20):
            junk = {
                k: (v if k in names else float(rng.uniform(-1e3, 1e3))) for k, v in values.items()
            }
            assert score_focus(junk, config=ccfg).stage is stage
            only = {k: v for k, v in values.items() if k in names}
            assert score_focus(only, config=ccfg).stage is stage
    assert len(stages) >= 2  # the phantom's foci are not all one stage: the check has teeth


def _perturbed_as_configured(vol, focus, seg, cfg):
    """perturbed_foci with the perturbations of `cfg` (what check_stability measures)."""
    return perturbed_foci(
        vol,
        focus,
        seg,
        grow_min_hu=cfg.segment.focus_grow_min_hu,
        threshold_hu=cfg.classify.stability_threshold_hu,
        mask_voxels=cfg.classify.stability_mask_voxels,
        smooth_mm=cfg.segment.focus_smooth_mm,
        mask_max_step_mm=cfg.classify.stability_mask_max_step_mm,
    )


def test_fast_path_gives_the_full_remeasure_answer(phantom_small):
    """check_stability (only the stage families) agrees with a full measure of every perturbation."""
    from hostage.classify import check_stability, classify
    from hostage.classify.rules import score_focus
    from hostage.config import Config
    from hostage.features import FAMILIES, families_for, measure
    from hostage.segment import segment

    cfg = Config()
    vol = phantom_small.volume
    seg = segment(vol, config=cfg.segment)
    features = [measure(vol, f, seg, config=cfg.features) for f in seg.foci]
    stages = [classify(f, config=cfg.classify) for f in features]
    fast = check_stability(vol, seg, features, stages, config=cfg)
    assert len(fast) == len(seg.foci) >= 3
    from hostage.classify.stability import stage_feature_names

    fams = families_for(stage_feature_names())
    assert 0 < len(fams) < len(FAMILIES)
    shift = cfg.classify.stability_resample_shift
    assert shift > 0
    # shifted along the axes the mask steps along (not along thick slices)
    axes = _fine_axes(vol.spacing_zyx_mm, max_step_mm=cfg.classify.stability_mask_max_step_mm)
    shifted = dataclasses.replace(
        vol,
        hu=ndi.shift(
            vol.hu.astype(np.float32),
            tuple(shift if a else 0.0 for a in axes),
            order=1,
            mode="nearest",
        ),
    )
    for focus, st in zip(seg.foci, fast, strict=True):
        full = []
        for _, pf in _perturbed_as_configured(vol, focus, seg, cfg):
            everything = measure(vol, pf, seg, config=cfg.features).values
            subset = measure(
                vol, pf, seg, config=cfg.features, families=fams, names=stage_feature_names()
            ).values
            assert stage_feature_names() <= set(subset)
            # the families that run give the very same values as in a full measure
            assert all(
                everything[k] == v or (v != v and everything[k] != everything[k])
                for k, v in subset.items()
            )
            full.append(score_focus(everything, config=cfg.classify).stage)
        # the resampled image: the whole volume shifted half a voxel, then measured in full
        everything = measure(shifted, focus, seg, config=cfg.features).values
        full.append(score_focus(everything, config=cfg.classify).stage)
        assert st.perturbed_stages == tuple(full)
        assert len(full) >= 4  # a perturbation that leaves < 8 voxels is skipped


def test_shared_roi_source_gives_the_same_features(phantom_small):
    """A perturbed focus measured from its focus's RoiSource equals a measure from the volume."""
    from hostage.config import Config
    from hostage.features import build_roi, measure, roi_source
    from hostage.features._geometry import smooth
    from hostage.segment import segment

    cfg = Config()
    vol = phantom_small.volume
    seg = segment(vol, config=cfg.segment)
    assert seg.foci
    for focus in seg.foci:
        box = tuple(
            slice(max(0, b.start - 1), min(n, b.stop + 1))
            for b, n in zip(focus.bbox_zyx, vol.shape_zyx, strict=True)
        )
        src = roi_source(vol, seg, box, config=cfg.features)
        variants = _perturbed_as_configured(vol, focus, seg, cfg)
        for _, pf in [("original", focus), *variants]:
            a = measure(vol, pf, seg, config=cfg.features).values
            b = measure(vol, pf, seg, config=cfg.features, source=src).values
            assert list(a) == list(b)
            assert all(a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a)
            # the ROI arrays themselves: equal, and the smoothing equal inside the focus
            ra = build_roi(vol, pf, seg, config=cfg.features)
            rb = build_roi(vol, pf, seg, config=cfg.features, source=src)
            for name in ("hu", "mask", "bone_mask", "exclude_mask", "depth_mm"):
                np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
            np.testing.assert_array_equal(ra.hu_smooth, rb.hu_smooth)
            assert ra.offset_zyx == rb.offset_zyx
            # inside the focus (all the features read) it is the smoothing of the crop itself
            own = smooth(
                ra.hu, spacing_zyx_mm=vol.spacing_zyx_mm, sigma_mm=cfg.features.texture_smooth_mm
            )
            np.testing.assert_array_equal(ra.hu_smooth[ra.mask], own[ra.mask])
