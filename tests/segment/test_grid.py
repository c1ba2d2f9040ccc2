"""The coarse-grid primitives against plain (slow) numpy/scipy definitions."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy import ndimage as ndi

from hostage.config import SegmentConfig
from hostage.segment import segment
from hostage.segment._grid import (
    CoarseGrid,
    ball_dilate,
    ball_erode,
    ball_structure,
    box_dilate,
    box_erode,
    sparse_zeros,
)

#: (shape, spacing, block_mm): divisible and non-divisible shapes, anisotropic, factor 1.
GRIDS = [
    ((12, 30, 31), (1.0, 0.7, 0.7), 2.0),
    ((7, 17, 40), (2.5, 0.8, 1.3), 2.0),
    ((9, 9, 9), (3.0, 3.0, 3.0), 2.0),
    ((20, 11, 13), (0.5, 0.6, 0.9), 3.1),
]


def _naive_blocks(a: np.ndarray, f: tuple[int, int, int]) -> np.ndarray:
    """Complete blocks as a (cz, cy, cx, fz*fy*fx) array (incomplete tail blocks dropped)."""
    c = [n // k for n, k in zip(a.shape, f, strict=True)]
    t = a[: c[0] * f[0], : c[1] * f[1], : c[2] * f[2]]
    t = t.reshape(c[0], f[0], c[1], f[1], c[2], f[2]).transpose(0, 2, 4, 1, 3, 5)
    return t.reshape(c[0], c[1], c[2], -1)


def _naive_upsample(c: np.ndarray, g: CoarseGrid) -> np.ndarray:
    idx = np.ix_(
        *(
            np.minimum(np.arange(n) // f, k - 1)
            for n, f, k in zip(g.shape_zyx, g.factors_zyx, c.shape, strict=True)
        )
    )
    return c[idx]


@pytest.mark.parametrize(("shape", "spacing", "block"), GRIDS)
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_block_stats_equal_block_mean_and_max(shape, spacing, block, dtype):
    rng = np.random.default_rng(7)
    hu = rng.normal(0, 900, shape).astype(dtype)
    g = CoarseGrid.for_volume(shape, spacing_zyx_mm=spacing, block_mm=block)
    mean, mx = g.block_stats(hu)
    # float input: the mean is of integer-rounded HU (the grid's documented rule)
    ints = np.rint(hu).astype(np.int64) if dtype == np.float32 else hu.astype(np.int64)
    blocks = _naive_blocks(ints, g.factors_zyx)
    assert mean.dtype == np.float32 and mx.dtype == hu.dtype
    assert mean.shape == g.coarse_shape_zyx
    np.testing.assert_array_equal(mean, (blocks.sum(axis=-1) / blocks.shape[-1]).astype(np.float32))
    np.testing.assert_array_equal(mx, _naive_blocks(hu, g.factors_zyx).max(axis=-1))
    np.testing.assert_array_equal(g.block_mean(hu), mean)
    np.testing.assert_array_equal(g.block_max(hu), mx)


def test_block_max_of_a_bool_mask_is_any():
    g = CoarseGrid.for_volume((6, 10, 10), spacing_zyx_mm=(1.0, 1.0, 1.0), block_mm=2.0)
    m = np.zeros((6, 10, 10), bool)
    m[5, 9, 9] = True  # inside the last complete block
    m[1, 0, 3] = True
    out = g.block_max(m)
    assert out.dtype == bool
    assert sorted(map(tuple, np.argwhere(out).tolist())) == [(0, 0, 1), (2, 4, 4)]


@pytest.mark.parametrize(("shape", "spacing", "block"), GRIDS)
def test_upsample_whole_box_and_into_agree_with_index_mapping(shape, spacing, block):
    rng = np.random.default_rng(3)
    g = CoarseGrid.for_volume(shape, spacing_zyx_mm=spacing, block_mm=block)
    c = rng.random(g.coarse_shape_zyx) < 0.3
    c[-1, -1, -1] = True  # the replicated tail must follow the last block
    ref = _naive_upsample(c, g)
    np.testing.assert_array_equal(g.upsample(c), ref)
    np.testing.assert_array_equal(g.upsample_into(c, sparse_zeros(shape, bool)), ref)
    labels = rng.integers(0, 50, g.coarse_shape_zyx).astype(np.int32)
    np.testing.assert_array_equal(g.upsample(labels), _naive_upsample(labels, g))
    for _ in range(10):
        box = []
        for n in shape:
            a = int(rng.integers(0, n))
            box.append(slice(a, int(rng.integers(a + 1, n + 1))))
        np.testing.assert_array_equal(g.upsample(c, tuple(box)), ref[tuple(box)])


@pytest.mark.parametrize(
    "half", [(1, 1, 1), (0, 1, 2), (3, 0, 1), (2, 2, 2), (0, 0, 0), (1, 18, 0)]
)
def test_box_filters_equal_scipy_binary_morphology(half):
    rng = np.random.default_rng(11)
    m = rng.random((9, 40, 23)) < 0.4
    box = np.ones(tuple(2 * h + 1 for h in half), bool)
    np.testing.assert_array_equal(box_dilate(m, half), ndi.binary_dilation(m, structure=box))
    for border in (True, False):
        np.testing.assert_array_equal(
            box_erode(m, half, border_value=border),
            ndi.binary_erosion(m, structure=box, border_value=int(border)),
        )
    # new arrays: the input is never modified or returned
    before = m.copy()
    assert box_dilate(m, half) is not m and box_erode(m, half) is not m
    np.testing.assert_array_equal(m, before)


@pytest.mark.parametrize(
    ("radius", "spacing"),
    [
        (2.0, (1.0, 0.78, 0.78)),
        (2.0, (1.0, 0.6, 0.6)),
        (2.0, (3.0, 0.7, 0.7)),
        (3.5, (2.0, 1.0, 0.5)),
        (1.0, (1.0, 1.0, 1.0)),
        (0.1, (1.0, 1.0, 1.0)),
    ],
)
@pytest.mark.parametrize("density", [0.05, 0.5, 0.95])
def test_ball_filters_equal_scipy_binary_morphology(radius, spacing, density):
    rng = np.random.default_rng(5)
    m = rng.random((11, 30, 17)) < density
    m[0, 0, :] = True  # masks touching the border: the border counts as 0 for both
    ball = ball_structure(radius, spacing_zyx_mm=spacing)
    np.testing.assert_array_equal(ball_dilate(m, ball), ndi.binary_dilation(m, structure=ball))
    np.testing.assert_array_equal(ball_erode(m, ball), ndi.binary_erosion(m, structure=ball))
    closed = ball_erode(ball_dilate(m, ball), ball)
    np.testing.assert_array_equal(closed, ndi.binary_closing(m, structure=ball))


@pytest.mark.parametrize("shape", [(3, 2, 9), (1, 12, 12), (12, 1, 4), (2, 3, 1)])
@pytest.mark.parametrize("fill", [0.6, 1.0])
def test_ball_filters_on_arrays_smaller_than_the_ball(shape, fill):
    """Crops thinner than the structure (a few voxels of bone): rows shifted wholly
    outside the array add nothing to a dilation and empty an erosion."""
    m = np.random.default_rng(2).random(shape) < fill
    ball = ball_structure(5.0, spacing_zyx_mm=(1.0, 0.78, 0.78))
    np.testing.assert_array_equal(ball_dilate(m, ball), ndi.binary_dilation(m, structure=ball))
    np.testing.assert_array_equal(ball_erode(m, ball), ndi.binary_erosion(m, structure=ball))


def test_ball_filters_reject_structures_that_are_not_centred_runs():
    m = np.zeros((5, 5, 5), bool)
    with pytest.raises(ValueError, match="symmetric"):
        ball_dilate(m, np.array([[[1, 1, 0]]], bool))
    ring = np.ones((1, 1, 5), bool)
    ring[0, 0, 2] = False
    with pytest.raises(ValueError, match="not one run centred"):
        ball_erode(m, ring)
    with pytest.raises(ValueError, match="odd sides"):
        ball_dilate(m, np.ones((1, 2, 3), bool))


def test_sparse_zeros_is_a_writable_zero_array():
    a = sparse_zeros((3, 4, 5), np.int32)
    assert a.dtype == np.int32 and a.shape == (3, 4, 5) and a.flags.c_contiguous
    assert int(np.count_nonzero(a)) == 0
    a[2, 3, 4] = 9
    assert int(a.sum()) == 9


def test_fallback_noise_is_used_and_logged_when_noise_cannot_be_measured(caplog):
    # no muscle at all: fat and air only, so the noise cannot be measured
    hu = np.full((12, 64, 64), -1000, np.int16)
    hu[:, 8:56, 8:56] = -100
    from hostage.io.volume import Volume

    vol = Volume(hu=hu, spacing_zyx_mm=(2.0, 1.0, 1.0))
    with caplog.at_level(logging.WARNING, logger="hostage.segment"):
        seg = segment(vol, config=SegmentConfig(fallback_noise_hu=33.0))
    assert np.isnan(seg.reference.noise_hu)
    assert any("fallback_noise_hu = 33 HU" in r.getMessage() for r in caplog.records)
    assert seg.foci == ()
