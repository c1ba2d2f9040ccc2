"""Refitting the weights from labelled foci."""

import numpy as np
import pytest

from hostage.classify import fit
from hostage.classify.rules import score_focus
from hostage.config import Config, load_config, render_toml
from hostage.enums import Stage
from hostage.features import FocusFeatures

CENTRES = {  # per stage: (rim, connectivity, fat, margin ratio, p90 rel. cortex, irregularity)
    Stage.AMORPHOUS: (0.05, 0.0, 0.0, 0.2, 0.2, 0.4),
    Stage.IMMATURE: (0.5, 0.02, 0.06, 0.55, 0.5, 0.15),
    Stage.MATURE: (0.92, 0.05, 0.25, 0.9, 0.9, 0.08),
}
NAMES = (
    "rim_completeness",
    "texture_connectivity_density_per_mm3",
    "rim_fat_fraction",
    "margin_sharpness_ratio",
    "density_p90_rel_cortex",
    "margin_irregularity",
)
SCALE = (0.12, 0.01, 0.04, 0.12, 0.1, 0.05)


def labelled(n_per_stage, rng):
    rows, labels = [], []
    for stage, centre in CENTRES.items():
        for _ in range(n_per_stage):
            rows.append(
                {
                    f"feature_{k}": float(c + s * rng.standard_normal())
                    for k, c, s in zip(NAMES, centre, SCALE, strict=True)
                }
            )
            labels.append(stage.value)
    return rows, labels


def test_fit_recovers_separable_stages_and_reports_cv(capsys):
    rows, labels = labelled(30, np.random.default_rng(1))
    res = fit(rows, labels, rng=3, folds=5)
    assert res.cv_accuracy >= 0.95
    assert res.confusion.sum() == 90 and res.confusion.shape == (3, 3)
    assert np.trace(res.confusion) == round(res.cv_accuracy * 90)
    assert (
        f"cross-validated accuracy {res.cv_accuracy:.3f} (5-fold, 90 foci)"
        in capsys.readouterr().out
    )
    # the refit config stages new foci from the same distribution
    test_rows, test_labels = labelled(20, np.random.default_rng(2))
    pred = [
        score_focus({k[8:]: v for k, v in r.items()}, config=res.config).stage.value
        for r in test_rows
    ]
    assert np.mean(np.array(pred) == np.array(test_labels)) >= 0.95


def test_fit_is_deterministic_for_a_seed_and_saves_as_toml(tmp_path):
    rows, labels = labelled(10, np.random.default_rng(5))
    a = fit(rows, labels, rng=7, verbose=False)
    b = fit(rows, labels, rng=7, verbose=False)
    assert a.config == b.config and a.cv_accuracy == b.cv_accuracy
    path = tmp_path / "refit.toml"
    path.write_text(render_toml(Config(classify=a.config)))
    assert load_config(path).classify == a.config
    assert a.config.rim_from == Config().classify.rim_from  # ramps are kept


def test_fit_accepts_focus_features_and_columns():
    rows, labels = labelled(6, np.random.default_rng(0))
    plain = [{k[8:]: v for k, v in r.items()} for r in rows]
    ff = [FocusFeatures(focus_id=i, values=r) for i, r in enumerate(plain)]
    cols = {k: [r[k] for r in plain] for k in plain[0]}
    a = fit(ff, labels, rng=0, folds=3, verbose=False)
    b = fit(cols, labels, rng=0, folds=3, verbose=False)
    c = fit(rows, [Stage(x) for x in labels], rng=0, folds=3, verbose=False)
    assert a.config == b.config == c.config


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": ["mature"]}, r"features_table has 3 foci but labels has 1"),
        (
            {"labels": ["mature", "old", "mature"]},
            r"labels\[1\] = 'old' is not a stage; use one of amorphous, immature, mature",
        ),
        ({"folds": 1}, r"folds must be >= 2; got 1"),
        ({"folds": 4}, r"need at least folds=4 labelled foci; got 3"),
    ],
)
def test_fit_rejects_bad_input(kwargs, match):
    rows = [{"rim_completeness": 0.5}] * 3
    args = {"labels": ["mature", "immature", "amorphous"], **kwargs}
    with pytest.raises(ValueError, match=match):
        fit(rows, args.pop("labels"), verbose=False, **args)
