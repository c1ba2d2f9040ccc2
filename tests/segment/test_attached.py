"""Foci lying against native bone are their own focus; lesion-free scans give none (issue 4).

Attached mature lesions (``LesionSpec(attached_to_bone=True)``) touch the
femur; ``native_touch_max_contact`` / ``native_touch_min_exposure`` keep a thin
dense body that only touches the thick skeleton out of it. A thick lesion fused
over a broad patch is split off by its own walled-off marrow (``native_marrow_*``,
tests/segment/test_fused.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hostage.config import Config
from hostage.phantom import LesionSpec, make_phantom
from hostage.segment import segment

CFG = Config().segment

#: (seed, shape_zyx, spacing_zyx_mm, noise_hu), thigh layout, one attached mature lesion.
ATTACHED = (
    (1, (40, 160, 160), (1.25, 0.9, 0.9), 15.0),
    (9, (28, 144, 144), (2.0, 1.0, 1.0), 20.0),
    (12, (28, 144, 144), (2.0, 1.0, 1.0), 20.0),
)

#: (seed, shape_zyx, spacing_zyx_mm, noise_hu, layout) without lesions.
EMPTY = (
    (0, (28, 144, 144), (2.0, 1.0, 1.0), 20.0, "thigh"),
    (1, (20, 160, 160), (3.0, 1.0, 1.0), 30.0, "thigh"),
    (2, (40, 256, 256), (2.0, 0.9, 0.9), 20.0, "pelvis"),
)


def _centroid_index(f):
    c = np.argwhere(f.mask).mean(axis=0) + np.array([s.start for s in f.bbox_zyx])
    return tuple(int(v) for v in np.round(c))


@pytest.mark.parametrize(("seed", "shape", "spacing", "noise"), ATTACHED)
def test_attached_mature_lesion_is_its_own_focus(seed, shape, spacing, noise):
    ph = make_phantom(
        shape,
        spacing,
        rng=seed,
        noise_hu=noise,
        layout="thigh",
        lesions=[LesionSpec(stage="mature", attached_to_bone=True)],
        distractors=False,
    )
    (les,) = ph.truth.lesions
    assert les.attached_to_bone
    assert les.bone_distance_mm == 0.0
    seg = segment(ph.volume, config=CFG)
    # one focus, its centroid inside the truth lesion; it holds far more lesion than
    # native bone (its mask also holds the blurred edge around the lesion)
    assert len(seg.foci) == 1
    (f,) = seg.foci
    assert ph.lesion_labels[_centroid_index(f)] == les.id
    in_lesion = np.count_nonzero(ph.lesion_labels[f.bbox_zyx][f.mask] == les.id)
    in_bone = np.count_nonzero(ph.bone_mask[f.bbox_zyx][f.mask])
    assert in_lesion > 3 * in_bone
    assert in_lesion / np.count_nonzero(ph.lesion_labels == les.id) > 0.3
    # the focus is not native bone in the segmentation
    assert not seg.bone_mask[f.bbox_zyx][f.mask].any()


def test_rule_off_absorbs_the_lesion():
    """Without the contact rule the same lesion is part of the skeleton (what issue 4 reports)."""
    seed, shape, spacing, noise = ATTACHED[1]
    ph = make_phantom(
        shape,
        spacing,
        rng=seed,
        noise_hu=noise,
        layout="thigh",
        lesions=[LesionSpec(stage="mature", attached_to_bone=True)],
        distractors=False,
    )
    off = dataclasses.replace(CFG, native_touch_max_contact=1.0)
    assert segment(ph.volume, config=off).foci == ()


@pytest.mark.parametrize(("seed", "shape", "spacing", "noise", "layout"), EMPTY)
def test_lesion_free_phantom_gives_no_focus(seed, shape, spacing, noise, layout):
    ph = make_phantom(
        shape, spacing, rng=seed, noise_hu=noise, layout=layout, lesions=[], distractors=False
    )
    assert ph.truth.lesions == ()
    assert ph.bone_mask.any()
    seg = segment(ph.volume, config=CFG)
    assert seg.foci == ()
    # the skeleton is still found: most truth bone voxels are in the segmented bone mask
    assert seg.bone_mask[ph.bone_mask].mean() > 0.9
