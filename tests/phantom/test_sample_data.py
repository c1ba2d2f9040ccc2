"""sample_data/study is exactly what its documented command makes."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pydicom

from hostage.phantom import make_phantom, parse_lesion_specs

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "sample_data" / "study"


def _documented_command() -> list[str]:
    text = (ROOT / "sample_data" / "README.md").read_text()
    start = text.index("hostage phantom sample_data/study")
    cmd = text[start : text.index("\n\n", start)].replace("\\\n", " ")
    return shlex.split(cmd)


def test_sample_study_matches_its_documented_command():
    args = _documented_command()
    opt = {a: args[i + 1 : i + 4] for i, a in enumerate(args) if a.startswith("--")}
    ph = make_phantom(
        tuple(int(v) for v in opt["--shape"]),
        tuple(float(v) for v in opt["--spacing"]),
        rng=int(opt["--seed"][0]),
        lesions=parse_lesion_specs(opt["--lesions"][0]),
        distractors=int(opt["--distractors"][0]),
    )
    files = sorted(STUDY.glob("CT*.dcm"))
    assert len(files) == ph.volume.hu.shape[0] == 48
    first = pydicom.dcmread(files[0])
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    stack = np.stack(
        [
            pydicom.dcmread(f).pixel_array * float(first.RescaleSlope)
            + float(first.RescaleIntercept)
            for f in files
        ]
    )
    assert np.array_equal(stack, ph.volume.hu)
    truth = json.loads((STUDY / "truth.json").read_text())
    assert truth["lesions"] == json.loads(json.dumps(ph.truth.to_dict()["lesions"]))
    assert truth["expected_resection"] == "not_ready"
    assert sorted(les["stage"] for les in truth["lesions"]) == ["amorphous", "immature", "mature"]
    assert truth["study_instance_uid"] == first.StudyInstanceUID
    assert sum(f.stat().st_size for f in STUDY.iterdir()) < 6_000_000
