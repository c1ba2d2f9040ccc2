"""report.html and summary.html: valid, self-contained, escaped, with every figure."""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest

from hostage.enums import Resection, Stage
from hostage.report import WRITERS, write_study_outputs
from hostage.report.html import DISCLAIMER, REPORT_NAME, render_report, write_report
from hostage.report.summary import SUMMARY_NAME, write_summary
from hostage.result import StudyResult

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "wbr", "source", "path", "rect"}


class Page(HTMLParser):
    """Collects images, links, ids and text; checks that tags nest properly."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.images, self.links, self.ids, self.text = [], [], set(), []
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        if tag == "a":
            self.links.append(a.get("href", ""))
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> Page:
    p = Page()
    p.feed(text)
    p.close()
    assert p.errors == []
    assert p.stack == []
    p.text = " ".join(" ".join(p.text).split())
    return p


def decode_png(uri: str) -> np.ndarray:
    from PIL import Image

    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    data = base64.b64decode(uri[len(prefix) :], validate=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(params=["axial-anisotropic", "oblique-flipped"], scope="module")
def written(request, kit, tmp_path_factory):
    study = kit.make_study(request.param)
    out = tmp_path_factory.mktemp("out")
    ctx = kit.outputs_for(study, out)
    [path] = write_report(ctx)
    return study, path


def test_report_is_valid_and_self_contained(written):
    study, path = written
    assert path.name == REPORT_NAME
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = parse(text)
    assert page.external == []
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    assert len(page.images) == len(study.result.foci)
    for img in page.images:
        arr = decode_png(img["src"])
        assert arr.shape[0] > 200 and arr.shape[1] > 500
        assert img["alt"].startswith("Focus ")


def test_report_shows_verdict_foci_and_disclaimer(written):
    study, path = written
    page = parse(path.read_text(encoding="utf-8"))
    status = study.result.resection.status
    assert status is Resection.NOT_READY
    assert f"({status.value})" in page.text
    assert "Not ready for resection" in page.text
    for reason in study.result.resection.reasons:
        assert reason in page.text
    assert DISCLAIMER in page.text
    assert "not a medical device" in page.text.lower()
    # verdict before the foci; disclaimer before the verdict
    assert page.text.index("not a medical device") < page.text.index("Not ready for resection")
    for f in study.result.foci:
        assert f"focus-{f.id}" in page.ids
        assert f"#focus-{f.id}" in page.links
        assert f"Focus {f.id}: {f.stage.value}" in page.text
        assert f"{f.volume_mm3:.1f}" in page.text
        assert ", ".join(f"{v:.1f}" for v in f.centroid_lps_mm) in page.text
    assert "Typical ranges per stage not available" in page.text


def test_data_is_escaped(written):
    _, path = written
    text = path.read_text(encoding="utf-8")
    # the synthetic reasons contain markup: it must show as text, never as tags
    assert "<b>&</b>" not in text
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in text
    assert "<b>&</b>" in parse(text).text


def test_hostile_strings_are_escaped(kit):
    study = kit.make_study("axial-isotropic")
    evil = "<script>alert('x')</script>"
    result = replace(
        study.result,
        study_key="key<evil>",
        warnings=(evil,),
        resection=replace(study.result.resection, reasons=(evil,)),
    )
    text = render_report(result, figures={})
    assert "<script>" not in text
    assert parse(text).external == []
    assert evil in parse(text).text


def test_typical_ranges_are_shown_when_known(kit):
    study = kit.make_study("axial-isotropic")
    typical = {
        "density_p90_hu": {
            Stage.AMORPHOUS: (130.0, 450.0),
            Stage.IMMATURE: (250.0, 800.0),
            Stage.MATURE: (900.0, 1900.0),
        }
    }
    text = render_report(study.result, figures={}, typical=typical)
    page = parse(text)
    assert "Typical ranges per stage not available" not in page.text
    assert "130.0–450.0" in page.text and "900.0–1900" in page.text


def test_nan_features_show_as_not_available(kit):
    study = kit.make_study("axial-isotropic")
    f0 = study.result.foci[0]
    feats = dict(f0.features)
    feats["density_p90_hu"] = math.nan
    result = replace(study.result, foci=(replace(f0, features=feats), *study.result.foci[1:]))
    page = parse(render_report(result, figures={}))
    assert "n/a" in page.text
    assert "nan" not in page.text.lower().split()


def test_missing_matplotlib_is_a_warning(kit, tmp_path, monkeypatch):
    study = kit.make_study("axial-isotropic")
    ctx = kit.outputs_for(study, tmp_path)
    monkeypatch.setitem(WRITERS, "html", functools.partial(write_report, module="no_such_mpl"))
    result = write_study_outputs(ctx, outputs=("json", "html"))
    assert not (tmp_path / REPORT_NAME).exists()
    [warning] = result.warnings
    assert warning.startswith("output 'html' skipped: report.html figures needs")
    assert "no_such_mpl" in warning


def test_report_links_written_viewer_files(kit, tmp_path):
    study = kit.make_study("axial-isotropic")
    ctx = kit.outputs_for(study, tmp_path)
    write_study_outputs(ctx, outputs=("html", "labels", "json"))  # html asked first, written last
    page = parse((tmp_path / REPORT_NAME).read_text(encoding="utf-8"))
    files = [h for h in page.links if not h.startswith("#")]
    assert files == ["result.json", "foci.nii.gz", "foci_labels.json"]
    assert all((tmp_path / f).is_file() for f in files)


def test_summary(kit, tmp_path):
    ok = kit.make_study("axial-isotropic")
    ctx = kit.outputs_for(ok, tmp_path / ok.result.study_key)
    write_study_outputs(ctx, outputs=("json", "html"))
    ready = replace(
        ok.result,
        study_key="ready_study",
        foci=tuple(replace(f, stage=Stage.MATURE) for f in ok.result.foci),
        resection=replace(ok.result.resection, status=Resection.READY),
    )
    err = StudyResult.from_error(
        "broken.dcm: not a DICOM file <truncated & gone>", study_key="bad_1", source="in/bad"
    )
    path = write_summary(tmp_path, [ready, err, ok.result])
    assert path == tmp_path / SUMMARY_NAME
    page = parse(path.read_text(encoding="utf-8"))
    assert DISCLAIMER in page.text
    assert "3 studies: 2 staged, 1 in error" in page.text
    assert f"{ok.result.study_key}/{REPORT_NAME}" in page.links  # report exists: linked
    assert "ready_study/result.json" in page.links  # no report written: result.json
    assert "broken.dcm: not a DICOM file <truncated & gone>" in page.text
    assert "Ready for resection (ready)" in page.text
    assert "Not ready for resection (not_ready)" in page.text
    counts = {s: sum(f.stage is s for f in ok.result.foci) for s in Stage}
    row = (
        f"{ok.result.study_key} {ok.result.source} ok Not ready for resection (not_ready) "
        + " ".join(str(counts[s]) for s in Stage)
    )
    assert row in page.text


def test_report_on_a_single_real_slice(kit, tmp_path):
    """pydicom's CT_small (one real slice): no coronal/sagittal strips, just overview + axial."""
    import shutil

    from pydicom.data import get_testdata_file

    import hostage

    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "ct.dcm")
    volume = hostage.load(tmp_path / "ct.dcm")
    labels = np.zeros(volume.shape_zyx, np.int32)
    labels[0, 50:70, 40:60] = 1
    study = kit.build_study(volume, labels, {1: Stage.MATURE})
    [path] = write_report(kit.outputs_for(study, tmp_path / "out"))
    page = parse(path.read_text(encoding="utf-8"))
    [img] = page.images
    arr = decode_png(img["src"])
    assert arr.shape[1] / arr.shape[0] < 2.5  # two square panels, not four


def test_figures_are_capped_largest_first(kit, tmp_path):
    study = kit.make_study("axial-isotropic")
    [path] = write_report(kit.outputs_for(study, tmp_path), max_figures=1)
    page = parse(path.read_text(encoding="utf-8"))
    [img] = page.images
    largest = max(study.result.foci, key=lambda f: f.volume_mm3)
    assert img["alt"].startswith(f"Focus {largest.id} (")
    assert f"Figures are drawn for the 1 largest of {len(study.result.foci)} foci" in page.text
    assert page.text.count("No figure for this focus") == len(study.result.foci) - 1


def test_evidence_scales_follow_the_config_used(kit):
    from hostage.classify import TERMS
    from hostage.report.html import evidence_scales

    study = kit.make_study("axial-isotropic")
    rim = next(t for t in TERMS if t.feature == "rim_completeness")
    software = dict(study.result.software)
    cfg = {k: dict(v) for k, v in software["config"].items()}
    cfg["classify"][rim.from_key] = 0.11
    cfg["classify"][rim.to_key] = 0.77
    cfg["classify"][rim.weight_key(Stage.AMORPHOUS)] = 99.0
    result = replace(study.result, software={**software, "config": cfg})
    [scale] = [s for s in evidence_scales(result) if s["feature"] == "rim_completeness"]
    assert (scale["from"], scale["to"], scale["favours"]) == (0.11, 0.77, Stage.AMORPHOUS)
    text = parse(render_report(result, figures={})).text
    assert "0 at 0.11, 1 at 0.77" in text
