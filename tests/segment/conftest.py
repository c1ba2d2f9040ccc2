"""Small synthetic scenes for segmentation tests (independent of hostage.phantom)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from hostage.io.volume import Volume


def _grid(shape, spacing):
    zz, yy, xx = np.meshgrid(
        *(np.arange(n) * s for n, s in zip(shape, spacing, strict=True)), indexing="ij", sparse=True
    )
    return zz, yy, xx


def make_scene(
    *,
    shape_zyx=(60, 160, 160),
    spacing_zyx_mm=(1.0, 0.8, 0.8),
    noise_hu=20.0,
    lesions=(),
    rng=0,
    femur=True,
    blur_mm=0.6,
    supersample=None,
):
    """A thigh-like scene: body of muscle, a fat layer, a femur tube and lesions.

    lesions: sequence of (kind, centre_zyx_mm, radius_mm) with kind in
    {"mature", "immature", "amorphous", "phlebolith", "metal", "vessel", "pool", "gas"}.
    supersample: optional (kz, ky, kx): the scene is rendered and blurred on the
    given (fine) grid, then block-averaged by these factors (partial volume).
    Returns (Volume, truth list of dicts).
    """
    rng = np.random.default_rng(rng)
    shape = tuple(shape_zyx)
    spacing = tuple(float(s) for s in spacing_zyx_mm)
    zz, yy, xx = _grid(shape, spacing)
    cy, cx = shape[1] * spacing[1] / 2, shape[2] * spacing[2] / 2
    r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    hu = np.full(np.broadcast_shapes(zz.shape, r.shape), -1000.0, np.float32)
    body_r = min(cy, cx) * 0.9
    hu[:] = np.where(r < body_r, -100.0, -1000.0)
    hu = np.where(r < body_r - 8, 50.0, hu)
    # a table slab under the patient
    table = (yy > cy + body_r + 2) & (yy < cy + body_r + 4.5)
    hu = np.where(np.broadcast_to(table, hu.shape), 250.0, hu)
    if femur:
        fr = np.sqrt((yy - (cy + 10)) ** 2 + (xx - (cx + 15)) ** 2)
        hu = np.where(fr < 13, 1400.0, hu)
        hu = np.where(fr < 8.5, -60.0, hu)
    truth = []
    for kind, centre, radius in lesions:
        d = np.sqrt((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) / radius
        inside = d <= 1.0
        if kind == "mature":
            val = np.where(d > 1 - 2.0 / radius, 1300.0, -60.0)
            lattice = (np.sin(zz * 2.1) * np.sin(yy * 2.1) * np.sin(xx * 2.1)) > 0.45
            val = np.where((d <= 1 - 2.0 / radius) & lattice, 700.0, val)
        elif kind == "immature":
            shell = (d > 1 - 2.0 / radius) & ((np.sin(xx * 0.7) + np.cos(zz * 0.5)) > 0.0)
            lattice = (np.sin(zz * 1.3) * np.sin(yy * 1.3) * np.sin(xx * 1.3)) > 0.5
            val = np.where(shell, 650.0, np.where(lattice, 450.0, 180.0))
        elif kind == "amorphous":
            specks = rng.random(np.broadcast_shapes(zz.shape, yy.shape, xx.shape)) < 0.03
            specks = ndi.binary_dilation(specks, iterations=1)
            val = np.where(specks, 380.0, 110.0) * (1 - 0.3 * d)
        elif kind == "vessel":
            # contrast-filled vessel along z through the whole scan (radius_mm = lumen radius)
            inside = np.broadcast_to(
                (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= radius**2, d.shape
            )
            val = np.full(1, 320.0, np.float32)
        elif kind == "phlebolith":
            val = np.full(1, 800.0, np.float32)
        elif kind == "pool":
            # a uniform pool of contrast (an opacified bladder or bowel loop), 650 HU
            val = np.full(1, 650.0, np.float32)
        elif kind == "gas":
            # a pocket of bowel gas (drawn after the pool it lies against)
            val = np.full(1, -950.0, np.float32)
        elif kind == "metal":
            val = np.full(1, 8000.0, np.float32)
        else:
            raise ValueError(kind)
        hu = np.where(inside, val, hu)
        truth.append({"kind": kind, "centre_zyx_mm": centre, "radius_mm": radius})
    hu = ndi.gaussian_filter(hu.astype(np.float32), [blur_mm / s for s in spacing])
    if supersample is not None:
        # block-average the fine grid to the target grid (slice thickness, pixel size)
        f = supersample
        z, y, x = (n // k for n, k in zip(hu.shape, f, strict=True))
        hu = (
            hu[: z * f[0], : y * f[1], : x * f[2]]
            .reshape(z, f[0], y, f[1], x, f[2])
            .mean(axis=(1, 3, 5))
        )
        spacing = tuple(s * k for s, k in zip(spacing, f, strict=True))
    hu = hu + rng.normal(0, noise_hu, hu.shape).astype(np.float32)
    vol = Volume(hu=np.clip(np.rint(hu), -1024, 30000).astype(np.int16), spacing_zyx_mm=spacing)
    return vol, truth


@pytest.fixture(scope="session")
def scene_factory():
    return make_scene
