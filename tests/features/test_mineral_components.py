"""Punctate specks vs a connected network: texture_speck_density_per_cm3, texture_network_fraction.

Two 30 mm foci are rendered on a 0.5 mm grid (a 120 HU-over-muscle osteoid haze
in muscle, blurred by a 0.8 mm FWHM point spread), then block-averaged to
1 x 0.5 x 0.5, 3 x 0.5 x 0.5, 1 x 1 x 1 and 3 x 1 x 1 mm (slice and pixel
integration) with 15 HU noise:

* *specks*: 60 separate 3 mm balls of mineral at 800 HU (amorphous, punctate);
* *network*: a lattice of 1.2 mm rods at 800 HU every 5 mm (an initial
  trabecular network: one connected piece).

Stated tolerances across those spacings: the speck density within ±40 % of its
1 x 0.5 x 0.5 mm value (3 mm slices average about a third of the 3 mm specks
below the bone threshold), the network fraction within ±0.15; and at every spacing
the specks give at least 10× the speck density of the network, a network
fraction at most 0.3 against at least 0.9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from hostage.config import Config
from hostage.features import roi_from_arrays
from hostage.features.texture import mineral_components, texture_features
from hostage.segment import ReferenceTissues

CFG = Config().features
REF = ReferenceTissues(
    muscle_hu=50.0, fat_hu=-100.0, cortex_hu=1400.0, noise_hu=15.0, edge_width_mm=1.0
)
FINE_MM = 0.5
PSF_FWHM_MM = 0.8
N = 84
FACTORS = {"1x0.5mm": (2, 1, 1), "3x0.5mm": (6, 1, 1), "1mm": (2, 2, 2), "3x1mm": (6, 2, 2)}


def _scene(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.meshgrid(*(np.arange(N) * FINE_MM for _ in range(3)), indexing="ij")
    c = N * FINE_MM / 2
    inside = np.sqrt((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2) <= 15.0
    hu = np.full((N, N, N), 50.0, np.float32) + 120.0 * inside
    if kind == "specks":
        pts = rng.uniform(c - 13, c + 13, size=(400, 3))
        pts = pts[np.linalg.norm(pts - c, axis=1) < 13][:60]
        spot = np.zeros(hu.shape, bool)
        spot[tuple(np.round(pts / FINE_MM).astype(int).T)] = True
        mineral = ndi.binary_dilation(spot, iterations=3)  # 3 mm balls
    else:
        on = [np.abs(((a - c) % 5.0) - 2.5) < 0.6 for a in (z, y, x)]
        mineral = (on[0].astype(int) + on[1] + on[2]) >= 2  # rods along every axis
    hu = np.where(mineral & inside, 800.0, hu)
    return ndi.gaussian_filter(hu, PSF_FWHM_MM / 2.355 / FINE_MM), inside


def _measure(kind: str, factors: tuple[int, int, int]) -> dict[str, float]:
    rng = np.random.default_rng(3)
    hu, inside = _scene(kind, rng)
    shape = [n // k * k for n, k in zip(hu.shape, factors, strict=True)]

    def block(a):
        a = a[: shape[0], : shape[1], : shape[2]].astype(np.float32)
        kz, ky, kx = factors
        return a.reshape(shape[0] // kz, kz, shape[1] // ky, ky, shape[2] // kx, kx).mean(
            axis=(1, 3, 5)
        )

    coarse = block(hu) + rng.normal(0.0, 15.0, block(hu).shape).astype(np.float32)
    roi = roi_from_arrays(
        coarse,
        block(inside) >= 0.5,
        spacing_zyx_mm=tuple(FINE_MM * k for k in factors),
        config=CFG,
        reference=REF,
    )
    return texture_features(roi, config=CFG)


@pytest.fixture(scope="module")
def values():
    return {
        (kind, name): _measure(kind, f)
        for kind in ("specks", "network")
        for name, f in FACTORS.items()
    }


@pytest.mark.parametrize("spacing", list(FACTORS))
def test_specks_and_network_are_told_apart_at_every_spacing(values, spacing):
    specks, network = values["specks", spacing], values["network", spacing]
    assert specks["texture_speck_density_per_cm3"] >= 10 * network["texture_speck_density_per_cm3"]
    assert specks["texture_network_fraction"] <= 0.3
    assert network["texture_network_fraction"] >= 0.9


@pytest.mark.parametrize("kind", ["specks", "network"])
def test_mineral_components_keep_their_value_across_spacing(values, kind):
    ref = values[kind, "1x0.5mm"]
    for spacing in FACTORS:
        v = values[kind, spacing]
        d_ref = ref["texture_speck_density_per_cm3"]
        assert abs(v["texture_speck_density_per_cm3"] - d_ref) <= 0.4 * d_ref, spacing
        assert abs(v["texture_network_fraction"] - ref["texture_network_fraction"]) <= 0.15, spacing


def test_no_mineral_means_no_speck_density_and_no_network():
    hu = np.full((12, 12, 12), 120.0)
    d, f = mineral_components(
        hu, np.ones(hu.shape, bool), grid_mm=1.0, threshold_hu=320.0, smooth_mm=0.8
    )
    assert math.isnan(d) and f == 0.0


def test_speck_density_is_per_cm3_of_focus():
    """Eight separate dense voxels in a 20 mm cube on a 2 mm grid: 8 specks per 8 cm³."""
    hu = np.zeros((10, 10, 10))
    hu[1::4, 1::4, 1::4][:2, :2, :2] = 2000.0
    d, f = mineral_components(
        hu, np.ones(hu.shape, bool), grid_mm=2.0, threshold_hu=300.0, smooth_mm=0.0
    )
    assert d == pytest.approx(1.0)
    assert f == pytest.approx(1 / 8)
