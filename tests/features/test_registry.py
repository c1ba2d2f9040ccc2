"""Registry-driven checks: every family returns exactly what it declares, and is documented."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from skimage.draw import ellipsoid

from hostage.config import FeatureConfig
from hostage.features import FAMILIES, measure_roi, roi_from_arrays

DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"
UNITS = {"mm", "mm3", "HU", "HU/mm", "1/mm3", "1/cm3", "1", "bool", "bits", "bins2"}


def _roi(spacing=(1.0, 0.8, 0.8)):
    ball = ellipsoid(8, 8, 8, spacing=spacing)
    hu = np.where(ball, 400.0, 40.0).astype(np.float32)
    pad = [(4, 4)] * 3
    return roi_from_arrays(
        np.pad(hu, pad, constant_values=40.0),
        np.pad(ball, pad),
        spacing_zyx_mm=spacing,
        config=FeatureConfig(),
    )


def test_families_have_unique_prefixed_names():
    names = [f.name for fam in FAMILIES for f in fam.features]
    assert len(names) == len(set(names))
    for fam in FAMILIES:
        for spec in fam.features:
            assert spec.name.startswith(fam.name + "_"), spec.name
            assert re.fullmatch(r"[a-z0-9_]+", spec.name)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_every_spec_has_unit_and_doc(fam):
    for spec in fam.features:
        assert spec.unit in UNITS, (spec.name, spec.unit)
        assert len(spec.doc) > 20, spec.name
    assert fam.compute.__doc__ and "Parameters" in fam.compute.__doc__


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_family_returns_exactly_its_declared_names(fam):
    out = fam(_roi(), config=FeatureConfig())
    assert tuple(out) == fam.names
    assert all(isinstance(v, float) for v in out.values())


def test_measure_roi_orders_values_as_families():
    feats = measure_roi(_roi(), config=FeatureConfig(), focus_id=3)
    assert feats.focus_id == 3
    assert tuple(feats.values) == tuple(n for fam in FAMILIES for n in fam.names)
    # a uniform 400 HU ball: no rim, no fat, no loops, sharp-ish margin, no bone
    v = feats.values
    assert v["rim_completeness"] == 0.0
    assert math.isnan(v["rim_thickness_mm"])
    assert v["rim_fat_fraction"] == 0.0
    assert v["texture_connectivity_density_per_mm3"] == 0.0
    # all of it is one piece of bone-density mineral: one "speck", a fully connected network
    assert v["texture_network_fraction"] == 1.0
    assert v["texture_speck_density_per_cm3"] == pytest.approx(
        1000.0 / v["size_volume_mm3"], rel=0.15
    )
    assert math.isnan(v["bone_distance_mm"]) and math.isnan(v["bone_attached"])
    assert v["density_p50_hu"] == pytest.approx(400.0, abs=1)


def test_docs_list_every_feature():
    text = DOCS.read_text(encoding="utf-8")
    for fam in FAMILIES:
        for spec in fam.features:
            assert f"`{spec.name}`" in text, f"{spec.name} missing from docs/features.md"
