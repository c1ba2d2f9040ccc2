"""``hostage stage``: command-line and config errors exit 2 and write nothing."""

import re

import pytest

from hostage.cli import main


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "[classify]\nrim_form = 0.3\n",
            r"unknown key 'rim_form' in \[classify\] \(did you mean 'rim_from'\?\)",
        ),
        (
            "[classify]\nweight_rim_mature = 'high'\n",
            r"\[classify\] weight_rim_mature must be a number",
        ),
        (
            "[classify]\nmin_confidence = 1.5\n",
            r"\[classify\] min_confidence = 1.5 is out of range; it must be <= 1",
        ),
        (
            "[classify]\nstability_checks = 1\n",
            r"\[classify\] stability_checks must be true or false",
        ),
        ("[clasify]\n", r"unknown table \[clasify\] \(did you mean 'classify'\?\)"),
    ],
)
def test_bad_config_exits_2_and_writes_nothing(tmp_path, capsys, text, match):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    assert main(["stage", str(tmp_path), "--out", str(out), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert str(cfg) in err

    assert re.search(match, err)
    assert not out.exists()


def test_unknown_output_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["stage", str(tmp_path), "--out", str(out), "--outputs", "json,htm"]) == 2
    assert "unknown output 'htm' (did you mean 'html'?)" in capsys.readouterr().err
    assert not out.exists()


def test_missing_out_is_a_usage_error(tmp_path, capsys):
    assert main(["stage", str(tmp_path)]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err


def test_bad_prior_exits_2(tmp_path, capsys):
    out = tmp_path / "out"
    prior = tmp_path / "prior.json"
    prior.write_text('{"schema": "something/else"}')
    assert main(["stage", str(tmp_path), "--out", str(out), "--prior", str(prior)]) == 2
    assert "bad --prior" in capsys.readouterr().err
    assert not out.exists()
    assert main(["stage", str(tmp_path), "--out", str(out), "--prior", str(tmp_path / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def _result():
    import numpy as np

    from hostage.classify import classify, resection
    from hostage.config import Config
    from hostage.features import FocusFeatures
    from hostage.io.volume import Volume
    from hostage.result import StudyResult
    from hostage.segment.foci import Focus

    vol = Volume(
        hu=np.zeros((4, 4, 4), np.int16),
        spacing_zyx_mm=(2.0, 0.5, 0.5),
        origin_lps_mm=(-10.0, 20.0, 30.0),
        study_instance_uid="1.2.3",
    )
    focus = Focus(
        id=3,
        bbox_zyx=(slice(0, 2),) * 3,
        mask=np.ones((2, 2, 2), bool),
        volume_mm3=1234.4,
        centroid_lps_mm=(1.25, -2.5, 40.0),
    )
    feats = FocusFeatures(
        focus_id=3,
        values={
            "rim_completeness": 0.91,
            "texture_connectivity_density_per_mm3": 0.9,
            "rim_fat_fraction": 0.3,
            "margin_sharpness_ratio": 0.9,
            "density_p90_rel_cortex": 0.95,
            "margin_irregularity": 0.05,
        },
    )
    st = classify(feats, config=Config().classify)
    return StudyResult.from_parts(
        vol, [focus], [feats], [st], resection([st], foci=[focus]), config=Config()
    )


def test_summary_has_one_line_per_focus_the_verdict_and_the_disclaimer():
    from hostage.cli.stage import DISCLAIMER, summarize

    result = _result()
    lines = summarize(result).splitlines()
    assert lines[0] == "study 1.2.3: 1 focus"
    top = re.escape(result.foci[0].reasons[0])
    assert re.fullmatch(
        r"  focus  3  mature     confidence 0\.\d\d      1234 mm³  at LPS \(1\.2, -2\.5, 40\.0\) mm  "
        + top,
        lines[1],
    ), lines[1]
    assert lines[2:4] == ["resection: ready", "  - the only focus is mature"]
    assert lines[-1] == DISCLAIMER


def test_stage_a_dicom_study_end_to_end(phantom_dicom_dir, tmp_path, capsys):
    import json

    from hostage.cli.stage import DISCLAIMER

    out = tmp_path / "out"
    assert main(["stage", str(phantom_dicom_dir), "--out", str(out), "--outputs", "json,csv"]) == 0
    printed = capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    (entry,) = index["studies"]
    doc = json.loads((out / entry["result"]).read_text())
    assert doc["schema"] == "hostage.result/1" and doc["status"] == "ok"
    assert doc["source"] == str(phantom_dicom_dir)
    focus_lines = [ln for ln in printed.splitlines() if ln.startswith("  focus ")]
    assert len(focus_lines) == len(doc["foci"]) >= 1
    assert f"resection: {doc['resection']['status']}" in printed
    assert DISCLAIMER in printed
    header = (out / "foci.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["study_key", "focus_id", "stage"]
    assert "feature_rim_completeness" in header
    # the same study again, with the first run as its prior
    out2 = tmp_path / "out2"
    prior = out / entry["study_key"]
    assert (
        main(
            [
                "stage",
                str(phantom_dicom_dir),
                "--out",
                str(out2),
                "--prior",
                str(prior),
                "--outputs",
                "json",
            ]
        )
        == 0
    )
    doc2 = json.loads((out2 / entry["result"]).read_text())
    assert doc2["foci"] == doc["foci"]


def test_unreadable_study_exits_1_with_an_error_result(tmp_path, capsys):
    import json

    study = tmp_path / "junk"
    study.mkdir()
    (study / "notes.txt").write_text("not a CT")
    out = tmp_path / "out"
    assert main(["stage", str(study), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "hostage: error:" in err
    (path,) = out.glob("*/result.json")
    doc = json.loads(path.read_text())
    assert doc["status"] == "error" and doc["source"] == str(study)
    assert doc["error"] in err
    assert json.loads((out / "index.json").read_text())["studies"][0]["status"] == "error"


def test_missing_bone_label_file_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        ["stage", str(tmp_path), "--out", str(out), "--bone-labels", str(tmp_path / "x.nii")]
    )
    assert code == 2
    assert "bad --bone-labels" in capsys.readouterr().err
    assert not out.exists()


def test_stage_with_a_bone_label_map(phantom_small, phantom_dicom_dir, tmp_path, capsys):
    import csv
    import json

    import numpy as np
    import SimpleITK as sitk

    from hostage.io.image_file import to_sitk_image

    labels = tmp_path / "bones.nii.gz"
    bone = 3 * np.asarray(phantom_small.bone_mask, np.uint8)
    sitk.WriteImage(to_sitk_image(bone, phantom_small.volume), str(labels))
    out = tmp_path / "out"
    argv = ["stage", str(phantom_dicom_dir), "--out", str(out), "--outputs", "json,csv"]
    assert main([*argv, "--bone-labels", str(labels)]) == 0
    (result_json,) = out.glob("*/result.json")
    doc = json.loads(result_json.read_text())
    assert doc["study"]["bone_label_map"] == "bones.nii.gz"
    assert doc["foci"] and all(set(f["bone_labels"]) <= {3} for f in doc["foci"])
    with (out / "foci.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["bone_labels"] for r in rows] == [
        ";".join(map(str, f["bone_labels"])) for f in doc["foci"]
    ]
