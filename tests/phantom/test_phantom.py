"""The phantom's own statistics: tissues, noise, lesion truth, determinism, API checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.spatial.distance import pdist

from hostage.enums import Resection, Stage
from hostage.phantom import (
    LesionSpec,
    LesionTruth,
    Phantom,
    expected_resection,
    make_phantom,
    parse_lesion_specs,
)

MIXED = (
    LesionSpec(stage="mature", size_mm=16.0),
    LesionSpec(stage="immature", size_mm=16.0),
    LesionSpec(stage="amorphous", size_mm=14.0),
)


@pytest.fixture(scope="module")
def clean(phantom_factory) -> Phantom:
    """`phantom_small` without noise (same seed, so same anatomy and lesions)."""
    return phantom_factory(seed=0, lesions=MIXED, distractors=2, noise_hu=0.0)


def _lesion_mask(ph: Phantom, les: LesionTruth) -> np.ndarray:
    return np.asarray(ph.lesion_labels) == les.id


def _bone_distance_mm(ph: Phantom) -> np.ndarray:
    return ndi.distance_transform_edt(~ph.bone_mask, sampling=ph.volume.spacing_zyx_mm)


# ----------------------------------------------------------------------------- API and truth
def test_shapes_dtypes_and_geometry(phantom_small: Phantom):
    v = phantom_small.volume
    assert v.hu.shape == (24, 128, 128)
    assert v.hu.dtype == np.int16
    assert v.spacing_zyx_mm == (2.5, 0.8, 0.8)
    assert v.source is None
    assert v.study_instance_uid != v.series_instance_uid
    assert phantom_small.lesion_labels.shape == v.hu.shape
    assert phantom_small.lesion_labels.dtype == np.int32
    assert phantom_small.bone_mask.dtype == bool
    assert not phantom_small.lesion_labels.flags.writeable
    assert not phantom_small.bone_mask.flags.writeable


def test_truth_lists_every_requested_lesion(phantom_small: Phantom):
    t = phantom_small.truth
    assert [les.stage for les in t.lesions] == [Stage.MATURE, Stage.IMMATURE, Stage.AMORPHOUS]
    assert [les.id for les in t.lesions] == [1, 2, 3]
    assert sorted(np.unique(phantom_small.lesion_labels).tolist()) == [0, 1, 2, 3]
    assert t.expected_resection is Resection.NOT_READY
    assert len(t.distractors) == 2
    assert t.seed == 0
    d = t.to_dict()
    assert d["expected_resection"] == "not_ready"
    assert [les["stage"] for les in d["lesions"]] == ["mature", "immature", "amorphous"]
    assert d["study_instance_uid"] == phantom_small.volume.study_instance_uid


@pytest.mark.parametrize(
    ("stages", "central", "expected"),
    [
        ((), (), Resection.NO_FOCI),
        ((Stage.MATURE, Stage.MATURE), (False, False), Resection.READY),
        ((Stage.MATURE, Stage.IMMATURE), (False, False), Resection.NOT_READY),
        ((Stage.AMORPHOUS,), (False,), Resection.NOT_READY),
        ((Stage.MATURE, Stage.MATURE), (False, True), Resection.INDETERMINATE),
        ((Stage.IMMATURE, Stage.MATURE), (False, True), Resection.NOT_READY),
    ],
)
def test_expected_resection_rule(stages, central, expected):
    truths = [
        LesionTruth(
            id=i + 1,
            stage=s,
            centre_lps_mm=(0.0, 0.0, 0.0),
            size_mm=10.0,
            volume_mm3=100.0,
            bbox_lps_mm=((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
            attached_to_bone=False,
            bone_distance_mm=5.0,
            shape="ellipsoid",
            central_first=c,
        )
        for i, (s, c) in enumerate(zip(stages, central, strict=True))
    ]
    assert expected_resection(truths) is expected


def test_bad_arguments_are_rejected_with_a_fix():
    with pytest.raises(ValueError, match="shape_zyx must be 3 ints"):
        make_phantom((4, 64, 64), (1.0, 1.0, 1.0), rng=0)
    with pytest.raises(ValueError, match="spacing_zyx_mm must be 3 finite values"):
        make_phantom((16, 64, 64), (1.0, 0.0, 1.0), rng=0)
    with pytest.raises(ValueError, match="noise_hu must be within"):
        make_phantom((16, 64, 64), (1.0, 1.0, 1.0), rng=0, noise_hu=-1)
    with pytest.raises(ValueError, match="layout must be one of"):
        make_phantom((16, 64, 64), (1.0, 1.0, 1.0), rng=0, layout="knee")
    with pytest.raises(ValueError, match="lesions must be None, an int"):
        make_phantom((16, 64, 64), (1.0, 1.0, 1.0), rng=0, lesions=99)
    with pytest.raises(ValueError, match=r"lesions\[0\] must be a LesionSpec"):
        make_phantom((16, 64, 64), (1.0, 1.0, 1.0), rng=0, lesions=["mature"])
    with pytest.raises(ValueError, match=r"LesionSpec\.stage must be one of"):
        LesionSpec(stage="ripe")
    with pytest.raises(ValueError, match=r"LesionSpec\.size_mm must be within"):
        LesionSpec(size_mm=500.0)
    with pytest.raises(ValueError, match=r"LesionSpec\.shape must be one of"):
        LesionSpec(shape="cube")


def test_parse_lesion_specs():
    specs = parse_lesion_specs("amorphous, mature:25,atypical")
    assert [(s.stage, s.size_mm, s.central_first) for s in specs] == [
        (Stage.AMORPHOUS, None, False),
        (Stage.MATURE, 25.0, False),
        (Stage.MATURE, None, True),
    ]
    assert parse_lesion_specs("none") == []
    with pytest.raises(ValueError, match="did you mean 'immature'"):
        parse_lesion_specs("imature")
    with pytest.raises(ValueError, match="bad qualifier 'big'"):
        parse_lesion_specs("mature:big")
    with pytest.raises(ValueError, match="did you mean 'lobulated'"):
        parse_lesion_specs("mature:lobulatd")
    (spec,) = parse_lesion_specs("immature:18:strip:vastus:attached")
    assert (spec.size_mm, spec.shape, spec.site, spec.attached_to_bone) == (
        18.0,
        "strip",
        "vastus",
        True,
    )


# ----------------------------------------------------------------------------- tissues
def test_air_and_table(clean: Phantom):
    hu = np.asarray(clean.volume.hu)
    assert np.all(hu[:, :3, :3] == -1000)  # air in the corner, noise-free
    # the CT table: a dense carbon-fibre skin (about 250 HU) below the patient
    rows = np.nonzero((hu[:, :, 60:68] > 150).all(axis=(0, 2)))[0]
    assert len(rows) > 0 and rows.min() > 80


def test_bone_cortex_cancellous_and_marrow(phantom_factory):
    # 5 mm slices reach from above the hip down into the femoral shaft
    clean = phantom_factory(
        seed=0, spacing_zyx_mm=(5.0, 0.8, 0.8), lesions=0, distractors=0, noise_hu=0.0
    )
    hu = np.asarray(clean.volume.hu, dtype=float)
    bone = clean.bone_mask
    vals = hu[bone]
    assert bone.sum() > 5000
    t = clean.truth.tissue_hu
    # the thick shaft cortex reaches its nominal density despite blur and partial volume
    assert np.percentile(vals, 99.5) == pytest.approx(t["cortex"], rel=0.1)
    assert np.mean((vals >= 1000) & (vals <= 1900)) > 0.08
    assert vals.max() <= 1950
    # inside: cancellous bone (150-450 HU) and fatty marrow (< 50 HU), nothing fatter than fat
    cancellous = np.mean((vals >= 150) & (vals <= 450))
    fatty = np.mean(vals < 50)
    assert cancellous > 0.1 and fatty > 0.01, (cancellous, fatty)
    assert np.percentile(vals, 0.5) > -130
    assert 1000 <= t["cortex"] <= 1900 and 150 <= t["cancellous"] <= 400 and t["marrow"] < 0


def test_muscle_and_fat_modes(clean: Phantom):
    hu = np.asarray(clean.volume.hu)
    far = _bone_distance_mm(clean) > 8.0
    soft = hu[far & (np.asarray(clean.lesion_labels) == 0) & (hu > -300) & (hu < 300)]
    counts = np.bincount(soft - soft.min())
    centres = np.arange(len(counts)) + soft.min()

    def mode(lo, hi):
        sel = (centres >= lo) & (centres <= hi)
        return centres[sel][np.argmax(counts[sel])]

    assert 35 <= mode(0, 120) <= 62  # muscle
    assert -115 <= mode(-160, -40) <= -80  # fat
    # muscle is the bulk of the soft tissue
    assert np.mean((soft > 20) & (soft < 80)) > 0.35


# ----------------------------------------------------------------------------- noise
@pytest.mark.parametrize("correlation", [0.0, 1.0])
def test_noise_level_matches_request(phantom_factory, correlation):
    kw = {"seed": 4, "shape_zyx": (10, 96, 96), "spacing_zyx_mm": (2.0, 1.0, 1.0), "lesions": 0}
    clean = phantom_factory(noise_hu=0.0, **kw)
    noisy = phantom_factory(noise_hu=30.0, noise_correlation=correlation, **kw)
    a = np.asarray(clean.volume.hu, dtype=float)
    b = np.asarray(noisy.volume.hu, dtype=float)
    ok = (a > -900) & (a < 2000)  # away from the -1024 clip
    diff = (b - a)[ok]
    assert abs(diff.mean()) < 1.0
    assert diff.std() == pytest.approx(30.0, rel=0.05)
    # neighbouring pixels: white noise is uncorrelated, correlated noise is not
    d = b - a
    r = np.corrcoef(d[:, :, :-1][ok[:, :, :-1]], d[:, :, 1:][ok[:, :, :-1]])[0, 1]
    assert (r < 0.1) if correlation == 0.0 else (r > 0.4), r


def test_noise_measured_in_fat(phantom_small: Phantom, clean: Phantom):
    """Noise SD in homogeneous fat of the noisy study, found from the clean twin."""
    a = np.asarray(clean.volume.hu, dtype=float)
    b = np.asarray(phantom_small.volume.hu, dtype=float)
    fat = (a < -80) & (a > -125)
    fat = ndi.binary_erosion(fat, structure=np.ones((1, 5, 5)))
    assert fat.sum() > 2000
    assert b[fat].std() == pytest.approx(20.0, rel=0.15)


# ----------------------------------------------------------------------------- lesions
def test_lesion_truth_matches_the_labels(phantom_small: Phantom):
    v = phantom_small.volume
    voxel_mm3 = float(np.prod(v.spacing_zyx_mm))
    for les in phantom_small.truth.lesions:
        m = _lesion_mask(phantom_small, les)
        assert m.any()
        assert m.sum() * voxel_mm3 == pytest.approx(les.volume_mm3, rel=0.3)
        centroid = v.index_to_lps_mm(np.argwhere(m).mean(axis=0))
        assert np.linalg.norm(centroid - np.asarray(les.centre_lps_mm)) < 2.0
        lo, hi = np.asarray(les.bbox_lps_mm)
        idx = np.argwhere(m)
        pts = v.index_to_lps_mm(idx)
        tol = np.asarray(v.spacing_zyx_mm)[::-1]
        assert np.all(pts.min(axis=0) >= lo - tol) and np.all(pts.max(axis=0) <= hi + tol)
        assert 5.0 <= les.size_mm <= 80.0
        # largest diameter of the labelled voxels agrees with the truth within a voxel diagonal
        feret = pdist(pts[:: max(1, len(pts) // 3000)]).max()
        assert abs(feret - les.size_mm) <= float(np.linalg.norm(v.spacing_zyx_mm)) + 1.0
        extent = hi - lo
        assert les.size_mm == pytest.approx(float(np.linalg.norm(extent)), rel=0.5)
        assert les.size_mm >= float(extent.max()) - 0.5


def test_lesions_are_hyperdense_by_stage(phantom_small: Phantom):
    hu = np.asarray(phantom_small.volume.hu, dtype=float)
    floor = {Stage.AMORPHOUS: 130.0, Stage.IMMATURE: 250.0, Stage.MATURE: 700.0}
    for les in phantom_small.truth.lesions:
        m = _lesion_mask(phantom_small, les)
        assert np.percentile(hu[m], 95) > floor[les.stage], les.stage
        # the truth centre lies in or right next to the lesion
        idx = np.round(phantom_small.volume.lps_mm_to_index(les.centre_lps_mm)).astype(int)
        z, y, x = idx
        near = np.asarray(phantom_small.lesion_labels)[z, y - 3 : y + 4, x - 3 : x + 4]
        assert (near == les.id).any()


def test_stage_appearance_differs_as_described(phantom_factory):
    """Noise-free lesions: rims, marrow and density follow DOMAIN.md per stage."""
    ph = phantom_factory(
        seed=11,
        shape_zyx=(40, 160, 160),
        spacing_zyx_mm=(1.0, 0.7, 0.7),
        lesions=(
            LesionSpec(stage="mature", size_mm=22.0, shape="ellipsoid", rim_completeness=1.0),
            LesionSpec(stage="immature", size_mm=22.0, shape="ellipsoid"),
            LesionSpec(stage="amorphous", size_mm=22.0, shape="ellipsoid"),
        ),
        distractors=0,
        noise_hu=0.0,
    )
    hu = np.asarray(ph.volume.hu, dtype=float)
    sp = ph.volume.spacing_zyx_mm
    stats = {}
    for les in ph.truth.lesions:
        m = _lesion_mask(ph, les)
        depth = ndi.distance_transform_edt(m, sampling=sp)
        shell = hu[m & (depth <= 1.5)]
        core = hu[m & (depth > 3.0)]
        stats[les.stage] = (
            np.median(shell),
            np.percentile(core, 5),
            np.percentile(hu[m], 99),
            np.median(core),
        )
    mat, imm, amo = stats[Stage.MATURE], stats[Stage.IMMATURE], stats[Stage.AMORPHOUS]
    assert mat[0] > 600  # continuous cortical rim
    assert mat[1] < 0  # fatty marrow between the trabeculae
    assert imm[0] < mat[0] - 200  # faint, partial rim
    assert amo[2] < 900  # no cortical-density bone in amorphous
    assert imm[3] > 60 and amo[3] > 60  # mineral in muscle, no fatty marrow yet
    assert mat[2] > imm[2] > 250


def test_attachment_and_bone_distance(phantom_factory):
    ph = phantom_factory(
        seed=2,
        shape_zyx=(32, 160, 160),
        spacing_zyx_mm=(2.0, 0.8, 0.8),
        lesions=(
            LesionSpec(stage="mature", size_mm=16.0, attached_to_bone=True),
            LesionSpec(stage="immature", size_mm=14.0, attached_to_bone=False, cleft_mm=5.0),
        ),
        distractors=0,
    )
    dist = _bone_distance_mm(ph)
    attached, apart = ph.truth.lesions
    assert attached.attached_to_bone and attached.bone_distance_mm == 0.0
    assert dist[_lesion_mask(ph, attached)].min() <= 2.0
    assert not apart.attached_to_bone and apart.bone_distance_mm >= 5.0
    assert dist[_lesion_mask(ph, apart)].min() >= apart.bone_distance_mm - 2.0
    # lesions never overlap native bone
    assert not np.any(ph.bone_mask & (np.asarray(ph.lesion_labels) > 0))


def test_distractors_are_small_dense_and_not_lesions(phantom_small: Phantom):
    v = phantom_small.volume
    hu = np.asarray(v.hu, dtype=float)
    for d in phantom_small.truth.distractors:
        assert d.kind in ("phlebolith", "vascular_calcification")
        assert d.size_mm <= (5.5 if d.kind == "phlebolith" else 10.0)
        z, y, x = np.round(v.lps_mm_to_index(d.centre_lps_mm)).astype(int)
        gap = ndi.distance_transform_edt(
            np.asarray(phantom_small.lesion_labels) == 0, sampling=v.spacing_zyx_mm
        )[z, y, x]
        assert gap >= 3.0
        assert hu[max(z - 1, 0) : z + 2, y - 4 : y + 5, x - 4 : x + 5].max() > 150


def test_atypical_lesion_is_central_first(phantom_factory):
    ph = phantom_factory(
        seed=5,
        shape_zyx=(32, 160, 160),
        spacing_zyx_mm=(1.5, 0.8, 0.8),
        lesions=(LesionSpec(stage="mature", size_mm=20.0, shape="ellipsoid", central_first=True),),
        distractors=0,
        noise_hu=0.0,
    )
    (les,) = ph.truth.lesions
    assert les.central_first and les.rim_completeness == 0.0
    assert ph.truth.expected_resection is Resection.INDETERMINATE
    m = _lesion_mask(ph, les)
    depth = ndi.distance_transform_edt(m, sampling=ph.volume.spacing_zyx_mm)
    hu = np.asarray(ph.volume.hu, dtype=float)
    assert np.median(hu[m & (depth > 4)]) > np.median(hu[m & (depth <= 1.5)]) + 200


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.7, 0.7)])
def test_lesion_volume_is_independent_of_spacing(phantom_factory, spacing):
    shape = (int(60 / spacing[0]), int(120 / spacing[1]), int(120 / spacing[2]))
    ph = phantom_factory(
        seed=8,
        shape_zyx=shape,
        spacing_zyx_mm=spacing,
        lesions=(LesionSpec(stage="mature", size_mm=18.0, shape="ellipsoid"),),
        distractors=0,
        noise_hu=0.0,
    )
    (les,) = ph.truth.lesions
    m = _lesion_mask(ph, les)
    assert m.sum() * np.prod(spacing) == pytest.approx(les.volume_mm3, rel=0.2)
    # an 18 mm ellipsoid with axes ratios >= 0.45 has 0.45..1 x (pi/6) 18^3 mm3
    assert 0.2 * np.pi / 6 * 18**3 < les.volume_mm3 < np.pi / 6 * 18**3


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_phantom(phantom_small: Phantom):
    again = make_phantom((24, 128, 128), (2.5, 0.8, 0.8), rng=0, lesions=MIXED, distractors=2)
    assert np.array_equal(again.volume.hu, phantom_small.volume.hu)
    assert np.array_equal(again.lesion_labels, phantom_small.lesion_labels)
    a, b = again.truth.to_dict(), phantom_small.truth.to_dict()
    for key in ("study_instance_uid", "series_instance_uid"):
        assert a.pop(key) != b.pop(key)  # fresh UIDs every time
    assert a == b


RANDOM = {"shape_zyx": (12, 96, 96), "spacing_zyx_mm": (2.5, 1.0, 1.0), "noise_hu": 0.0}


def test_different_seeds_differ(phantom_factory):
    a = phantom_factory(seed=21, **RANDOM)
    b = phantom_factory(seed=22, **RANDOM)
    assert not np.array_equal(a.volume.hu, b.volume.hu)
    assert a.truth.to_dict()["lesions"] != b.truth.to_dict()["lesions"]


def test_generator_rng_records_a_seed_that_rebuilds_it():
    ph = make_phantom((10, 72, 72), (2.0, 1.2, 1.2), rng=np.random.default_rng(3), lesions=1)
    again = make_phantom((10, 72, 72), (2.0, 1.2, 1.2), rng=ph.truth.seed, lesions=1)
    assert np.array_equal(ph.volume.hu, again.volume.hu)


def test_random_mix_has_mixed_stages(phantom_factory):
    stages = set()
    for seed in (21, 22, 23):
        ph = phantom_factory(seed=seed, **RANDOM)
        n = len(ph.truth.lesions)
        assert 1 <= n <= 4
        stages |= {les.stage for les in ph.truth.lesions}
        if n >= 2:
            assert len({les.stage for les in ph.truth.lesions}) >= 2
    assert stages == set(Stage)


# ----------------------------------------------------------------------------- scanner and layouts
def _mean_abs_diff(hu: np.ndarray, axis: int) -> float:
    return float(np.abs(np.diff(np.asarray(hu, dtype=float), axis=axis)).mean())


def test_thicker_slices_and_wider_psf_blur_more(phantom_factory):
    kw = {"seed": 6, "shape_zyx": (16, 96, 96), "spacing_zyx_mm": (1.5, 1.0, 1.0), "noise_hu": 0.0}
    thin = phantom_factory(slice_thickness_mm=1.5, psf_fwhm_mm=0.5, **kw)
    thick = phantom_factory(slice_thickness_mm=4.5, psf_fwhm_mm=0.5, **kw)
    wide = phantom_factory(slice_thickness_mm=1.5, psf_fwhm_mm=1.6, **kw)
    assert _mean_abs_diff(thick.volume.hu, 0) < 0.8 * _mean_abs_diff(thin.volume.hu, 0)
    assert _mean_abs_diff(wide.volume.hu, 2) < 0.9 * _mean_abs_diff(thin.volume.hu, 2)
    # the truth does not depend on the scanner
    assert np.array_equal(thin.lesion_labels, thick.lesion_labels)
    assert np.array_equal(thin.bone_mask, wide.bone_mask)
    assert thick.truth.scanner.slice_thickness_mm == 4.5


def test_pelvis_layout_has_both_hips(phantom_factory):
    ph = phantom_factory(
        seed=1,
        shape_zyx=(12, 384, 384),
        spacing_zyx_mm=(6.0, 1.0, 1.0),
        slice_thickness_mm=1.0,
        lesions=0,
        noise_hu=0.0,
    )
    assert ph.truth.layout == "pelvis"
    bone = ph.bone_mask
    left, right = bone[:, :, 192:].sum(), bone[:, :, :192].sum()
    assert left > 1000 and right > 1000
    assert 0.6 < left / right < 1.6  # two similar hips
    hu = np.asarray(ph.volume.hu)
    assert np.all(hu[:, :4, :4] == -1000)  # air around the patient
    # the patient lies on the table: the lowest body rows touch it
    body_rows = np.nonzero((hu[:, :, 150:234] > -300).any(axis=(0, 2)))[0]
    assert body_rows.max() > 300


@pytest.mark.slow
def test_full_size_pelvis_study():
    """A 512 x 512 study (fewer, thicker slices than a real one to stay fast)."""
    ph = make_phantom(
        (10, 512, 512),
        (8.0, 0.78, 0.78),
        rng=5,
        lesions=[LesionSpec(stage=s, size_mm=18.0) for s in ("mature", "immature", "amorphous")],
        noise_hu=15.0,
        slice_thickness_mm=1.0,
    )
    assert ph.truth.layout == "pelvis"
    assert ph.volume.hu.shape == (10, 512, 512)
    hu = np.asarray(ph.volume.hu, dtype=float)
    labels = np.asarray(ph.lesion_labels)
    assert len(ph.truth.lesions) == 3
    for les in ph.truth.lesions:
        m = labels == les.id
        assert m.any()
        assert np.percentile(hu[m], 95) > 130
        idx = ph.volume.lps_mm_to_index(les.centre_lps_mm)
        assert np.all(idx >= -0.5) and np.all(idx <= np.asarray(hu.shape) - 0.5)
    assert not np.any(ph.bone_mask & (labels > 0))
