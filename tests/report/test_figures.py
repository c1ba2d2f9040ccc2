"""Figure geometry: the canonical (S, P, L) view, label painting, and the PNG itself."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest

from hostage.enums import Stage
from hostage.io.volume import Volume
from hostage.report.figures import (
    STAGE_COLOURS,
    canonical_axes,
    focus_figure_png,
    paint_labels,
)


def _signed_permutations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            d = np.zeros((3, 3))
            for col, (row, sign) in enumerate(zip(perm, signs, strict=True)):
                d[row, col] = sign
            yield d


@pytest.mark.parametrize("direction", list(_signed_permutations()), ids=lambda d: str(d.tolist()))
def test_canonical_view_runs_superior_posterior_left(direction):
    spacing = (2.0, 0.5, 0.75)
    vol = Volume(
        hu=np.zeros((3, 4, 5), np.int16),
        spacing_zyx_mm=spacing,
        origin_lps_mm=(1.0, 2.0, 3.0),
        direction_lps=direction,
    )
    canon = canonical_axes(direction)
    assert canon.oblique_deg == 0.0
    idx = np.indices(vol.shape_zyx).transpose(1, 2, 3, 0)  # (Z, Y, X, 3) index of each voxel
    view = canon.apply(idx)
    lps = vol.index_to_lps_mm(view)  # patient position of each canonical voxel
    s_sp, p_sp, l_sp = canon.spacing(spacing)
    # one step along canonical axis c moves +spacing along S, P, L respectively
    np.testing.assert_allclose(np.diff(lps[..., 2], axis=0), s_sp)
    np.testing.assert_allclose(np.diff(lps[..., 1], axis=1), p_sp)
    np.testing.assert_allclose(np.diff(lps[..., 0], axis=2), l_sp)
    # and canon.index agrees with the view
    some = (2, 1, 3)
    c = canon.index(some, vol.shape_zyx).astype(int)
    np.testing.assert_array_equal(view[tuple(c)], some)


def test_canonical_axes_reports_obliquity():
    a = np.deg2rad(20.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    canon = canonical_axes(rot @ np.eye(3)[:, ::-1])
    assert canon.perm == (0, 1, 2)
    assert canon.oblique_deg == pytest.approx(20.0, abs=1e-6)


def test_paint_labels_with_offset_clips_to_the_crop(kit):
    study = kit.make_study("axial-isotropic")
    full = paint_labels(study.seg.foci, shape_zyx=study.volume.shape_zyx)
    np.testing.assert_array_equal(full, study.seg.labels)
    crop = (slice(3, 12), slice(5, 30), slice(10, 40))
    part = paint_labels(
        study.seg.foci,
        shape_zyx=[s.stop - s.start for s in crop],
        offset_zyx=[s.start for s in crop],
    )
    np.testing.assert_array_equal(part, study.seg.labels[crop])


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _colour_pixels(img: np.ndarray, hex_colour: str, tol: int = 40) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(img - rgb).sum(axis=-1) < tol).sum())


@pytest.mark.parametrize("geometry", ["axial-anisotropic", "oblique-flipped"])
def test_figure_outlines_focus_in_its_stage_colour(kit, geometry):
    study = kit.make_study(geometry)
    stages = {f.id: study.truth[f.id] for f in study.seg.foci}
    focus = next(f for f in study.seg.foci if study.truth[f.id] is Stage.MATURE)
    only = [focus]  # no neighbours: the only outline colour is the focus's own
    png = focus_figure_png(study.volume, focus, foci=only, stages=stages)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = _decode(png)
    assert img.shape[1] > 500 and img.shape[0] > 200
    legend_rows = int(img.shape[0] * 0.85)  # the legend (bottom) shows every colour
    own = _colour_pixels(img[:legend_rows], STAGE_COLOURS[Stage.MATURE])
    others = sum(
        _colour_pixels(img[:legend_rows], STAGE_COLOURS[s]) for s in Stage if s is not Stage.MATURE
    )
    assert own > 150  # three outlines plus the overview box
    assert others < 0.05 * own


def test_paint_labels_dtype_holds_the_largest_id():
    from hostage.segment.foci import Focus

    def focus(fid):
        return Focus(
            id=fid,
            bbox_zyx=(slice(0, 1), slice(0, 1), slice(fid % 4, fid % 4 + 1)),
            mask=np.ones((1, 1, 1), bool),
            volume_mm3=1.0,
            centroid_lps_mm=(0.0, 0.0, 0.0),
        )

    assert paint_labels([focus(255)], shape_zyx=(1, 1, 4)).dtype == np.uint8
    out = paint_labels([focus(1), focus(300)], shape_zyx=(1, 1, 4))
    assert out.dtype == np.uint16
    assert out.ravel().tolist() == [300, 1, 0, 0]
