"""OUT/index.json and OUT/foci.csv: rebuilt from result files, values checkable by hand."""

from __future__ import annotations

import csv
import json
import math

from hostage.classify.types import ResectionVerdict
from hostage.enums import Resection, Stage
from hostage.report.tables import FOCI_BASE_COLUMNS, read_results, write_tables
from hostage.result import FocusResult, StudyResult


def _ok() -> StudyResult:
    focus = FocusResult(
        id=1,
        centroid_lps_mm=(10.5, -20.25, 30.0),
        bbox_lps_mm=((0.0, -30.0, 20.0), (21.0, -10.5, 40.0)),
        volume_mm3=1234.5,
        stage=Stage.MATURE,
        confidence=0.87,
        scores={Stage.AMORPHOUS: 0.03, Stage.IMMATURE: 0.1, Stage.MATURE: 0.87},
        features={"rim_completeness": 0.93, "texture_tb_th_mm": math.nan},
        reasons=("continuous cortical rim over 93% of the surface", "fatty marrow"),
    )
    return StudyResult(
        status="ok",
        study_key="b.2",
        source="/data/b",
        foci=(focus,),
        resection=ResectionVerdict(status=Resection.READY, reasons=("all 1 foci are mature",)),
    )


def _error() -> StudyResult:
    return StudyResult.from_error("no usable CT series", study_key="a.1", source="/data/a")


def test_index_and_foci_csv_values(tmp_path):
    index_path, foci_path = write_tables(tmp_path, [_ok(), _error()])
    assert json.loads(index_path.read_text()) == {
        "studies": [
            {
                "study_key": "a.1",
                "source": "/data/a",
                "status": "error",
                "result": "a.1/result.json",
                "resection": None,
                "num_foci": 0,
                "error": "no usable CT series",
            },
            {
                "study_key": "b.2",
                "source": "/data/b",
                "status": "ok",
                "result": "b.2/result.json",
                "resection": "ready",
                "num_foci": 1,
                "error": None,
            },
        ]
    }
    assert foci_path is not None
    rows = list(csv.reader(foci_path.open()))
    assert rows[0] == [
        *FOCI_BASE_COLUMNS,
        "feature_rim_completeness",
        "feature_texture_tb_th_mm",
        "reasons",
    ]
    assert rows[1:] == [
        [
            "b.2", "1", "mature", "0.87", "0.03", "0.1", "0.87", "1234.5", "10.5", "-20.25",
            "30.0", "false", "",  # no bone label map: empty bone_labels
            "0.93", "",  # NaN (not defined) is an empty cell
            "continuous cortical rim over 93% of the surface | fatty marrow",
        ]
    ]  # fmt: skip


def test_tables_rebuilt_from_result_files_skip_unreadable_ones(tmp_path):
    for r in (_ok(), _error()):
        (tmp_path / r.study_key).mkdir()
        (tmp_path / r.study_key / "result.json").write_text(json.dumps(r.to_dict()))
    (tmp_path / "c.3").mkdir()
    (tmp_path / "c.3" / "result.json").write_text('{"schema": "hostage.result/1", "sta')
    (tmp_path / "d.4").mkdir()
    (tmp_path / "d.4" / "result.json").write_text('{"schema": "other/9"}')
    results = read_results(tmp_path)
    assert [r.study_key for r in results] == ["a.1", "b.2"]
    assert results[1].foci[0].features["rim_completeness"] == 0.93
    assert math.isnan(results[1].foci[0].features["texture_tb_th_mm"])
    # The same tables whether written from the objects or from the files read back.
    direct = tmp_path / "direct"
    direct.mkdir()
    write_tables(direct, [_error(), _ok()])
    write_tables(tmp_path, results)
    for name in ("index.json", "foci.csv"):
        assert (tmp_path / name).read_bytes() == (direct / name).read_bytes()


def test_foci_csv_is_optional(tmp_path):
    index_path, foci_path = write_tables(tmp_path, [_ok()], foci_csv=False)
    assert foci_path is None
    assert index_path.is_file()
    assert not (tmp_path / "foci.csv").exists()
