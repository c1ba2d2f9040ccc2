"""``hostage phantom``: a thin shell over make_phantom/write_phantom."""

from __future__ import annotations

import json

import pydicom
import pytest

from hostage.cli import main


def test_phantom_command_writes_series_and_truth(tmp_path, capsys):
    out = tmp_path / "study"
    code = main(
        [
            "phantom", str(out), "--seed", "3", "--shape", "10", "80", "80",
            "--spacing", "2", "1", "1", "--lesions", "mature:12,amorphous:10",
            "--distractors", "1", "--unsigned", "--compress", "rle", "--noise", "15",
        ]
    )  # fmt: skip
    assert code == 0
    line = capsys.readouterr().out.strip()
    assert "2 lesions" in line and "expected resection not_ready" in line and "seed 3" in line
    assert len(line.splitlines()) == 1
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 10
    ds = pydicom.dcmread(files[0])
    assert ds.PixelRepresentation == 0 and float(ds.RescaleIntercept) == -1024.0
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    truth = json.loads((out / "truth.json").read_text())
    assert [les["stage"] for les in truth["lesions"]] == ["mature", "amorphous"]
    assert truth["seed"] == 3 and truth["scanner"]["noise_hu"] == 15.0
    assert truth["study_instance_uid"] == ds.StudyInstanceUID


def test_phantom_command_atypical_is_indeterminate(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["phantom", str(out), "--shape", "10", "80", "80", "--spacing", "2", "1", "1"]
    assert main([*args, "--lesions", "atypical:12", "--distractors", "0"]) == 0
    assert "(atypical)" in capsys.readouterr().out
    truth = json.loads((out / "truth.json").read_text())
    assert truth["expected_resection"] == "indeterminate"
    assert truth["lesions"][0]["central_first"] is True


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lesions", "matur"], "did you mean 'mature'"),
        (["--noise", "-5"], "noise_hu must be within"),
        (["--unsigned", "--intercept", "0", "--shape", "8", "64", "64"], "do not fit uint16"),
        (["--spacing", "0", "1", "1"], "spacing_zyx_mm must be 3 finite values"),
        (["--shape", "10", "80"], "expected 3 arguments"),
        (["--compress", "jpeg"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "never"
    assert main(["phantom", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
