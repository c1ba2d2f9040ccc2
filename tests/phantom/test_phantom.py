"""The phantom's own statistics: tissues, noise, lesion truth, determinism, API checks."""

from __future__ import annotations

import numpy as np
import pytest

from hostage.enums import Resection, Stage
from hostage.phantom import LesionSpec, Phantom, expected_resection, make_phantom


def test_shapes_dtypes_and_geometry(phantom_small: Phantom):
    v = phantom_small.volume
    assert v.hu.shape == (24, 128, 128)
    assert v.hu.dtype == np.int16
    assert v.spacing_zyx_mm == (2.5, 0.8, 0.8)
    assert v.source is None
    assert v.study_instance_uid.startswith("1.2.826.0.1.3680043")
    assert v.study_instance_uid != v.series_instance_uid
    assert phantom_small.lesion_labels.shape == v.hu.shape
    assert phantom_small.lesion_labels.dtype == np.int32
    assert phantom_small.bone_mask.dtype == bool
    assert not phantom_small.lesion_labels.flags.writeable


def test_truth_lists_every_requested_lesion(phantom_small: Phantom):
    t = phantom_small.truth
    assert [les.stage for les in t.lesions] == [Stage.MATURE, Stage.IMMATURE, Stage.AMORPHOUS]
    assert [les.id for les in t.lesions] == [1, 2, 3]
    assert sorted(np.unique(phantom_small.lesion_labels).tolist()) == [0, 1, 2, 3]
    assert t.expected_resection is Resection.NOT_READY
    assert len(t.distractors) == 2


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
    from hostage.phantom import LesionTruth

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
    with pytest.raises(ValueError, match=r"LesionSpec\.stage must be one of"):
        LesionSpec(stage="ripe")
    with pytest.raises(ValueError, match=r"LesionSpec\.size_mm must be within"):
        LesionSpec(size_mm=500.0)
