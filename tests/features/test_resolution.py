"""The same lesion imaged at different slice thickness and pixel size keeps its features.

A scene is rendered on a 0.5 mm grid (blurred by a 0.6 mm Gaussian point
spread), then block-averaged to 1 x 0.5 x 0.5 mm, 3 x 0.5 x 0.5 mm and
1 x 1 x 1 mm (partial volume as a scanner's slice/pixel integration) with
15 HU noise; the focus is found by ``segment`` and measured by ``measure``.
Stated tolerances (absolute, against the 1 x 0.5 x 0.5 mm reference):
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hostage.config import Config
from hostage.features import measure
from hostage.segment import segment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "segment"))
from conftest import make_scene

CFG = Config()

#: feature -> absolute tolerance between spacings (relative ones are scaled by the reference value)
TOLERANCE = {
    "size_volume_mm3": ("rel", 0.25),
    "size_diameter_max_mm": ("rel", 0.15),
    "size_sphericity": ("abs", 0.12),
    "size_elongation": ("abs", 0.25),
    "density_p90_hu": ("rel", 0.20),
    "density_p90_rel_cortex": ("abs", 0.20),
    "rim_completeness": ("abs", 0.20),
    "rim_core_contrast_hu": ("rel", 0.35),
    "margin_width_10_90_mm": ("abs", 0.8),
    "margin_sharpness_ratio": ("abs", 0.30),
    "margin_irregularity": ("abs", 0.10),
    "zonal_periphery_center_ratio": ("rel", 0.5),
    "zonal_deep_periphery_center_ratio": ("rel", 0.5),
    "texture_network_fraction": ("abs", 0.15),
    "texture_speck_density_per_cm3": ("abs", 0.5),
    "bone_distance_mm": ("abs", 3.0),
}
__doc__ += "\n".join(
    f"* ``{k}``: {'±' if m == 'abs' else '±' + str(int(t * 100)) + ' % of'} {t if m == 'abs' else 'the reference'}"
    for k, (m, t) in TOLERANCE.items()
)


def _features(factors):
    vol, _ = make_scene(
        shape_zyx=(96, 200, 200),
        spacing_zyx_mm=(0.5, 0.5, 0.5),
        noise_hu=15.0,
        lesions=[("mature", (24, 40, 40), 11)],
        rng=5,
        femur=True,
        supersample=factors,
    )
    seg = segment(vol, config=CFG.segment)
    centres = [
        np.asarray(vol.lps_mm_to_index(f.centroid_lps_mm)) * vol.spacing_zyx_mm for f in seg.foci
    ]
    (k,) = [i for i, c in enumerate(centres) if np.linalg.norm(c - np.array([24, 40, 40])) < 8]
    return measure(vol, seg.foci[k], seg, config=CFG.features).values


@pytest.fixture(scope="module")
def reference():
    return _features((2, 1, 1))


@pytest.mark.parametrize("factors", [(6, 1, 1), (2, 2, 2)], ids=["3mm-slices", "1mm-pixels"])
def test_features_agree_across_spacing(reference, factors):
    other = _features(factors)
    bad = {}
    for name, (mode, tol) in TOLERANCE.items():
        a, b = reference[name], other[name]
        limit = tol * abs(a) if mode == "rel" else tol
        if not abs(a - b) <= limit:
            bad[name] = (round(a, 3), round(b, 3), round(limit, 3))
    assert not bad, bad
