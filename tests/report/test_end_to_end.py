"""The whole pipeline on a phantom written as DICOM: every viewer output, checked against the result."""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from hostage.pipeline import stage_to_folder
from hostage.report.dicom_seg import frame_segment_numbers, segment_label

pytestmark = pytest.mark.slow  # the full pipeline: a few seconds


@pytest.fixture(scope="module")
def staged(phantom_dicom_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = stage_to_folder(phantom_dicom_dir, out=out)
    assert result.status.value == "ok"
    assert len(result.foci) >= 1
    return result, out / result.study_key, phantom_dicom_dir


def test_all_viewer_files_are_written(staged):
    result, folder, _ = staged
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        ["result.json", "report.html", "foci.nii.gz", "foci_labels.json", "seg.dcm", "sr.dcm"]
    )
    assert not [w for w in result.warnings if "skipped" in w]  # no output was skipped
    doc = json.loads((folder / "result.json").read_text())
    assert [f["id"] for f in doc["foci"]] == [f.id for f in result.foci]


def test_report_shows_every_focus(staged):
    result, folder, _ = staged
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == len(result.foci)
    assert f"({result.resection.status.value})" in text
    for f in result.foci:
        assert f"id='focus-{f.id}'" in text


def test_label_map_matches_result(staged):
    result, folder, _ = staged
    img = sitk.ReadImage(str(folder / "foci.nii.gz"))
    arr = sitk.GetArrayFromImage(img)
    assert arr.shape == tuple(result.study.shape_zyx)
    voxel_mm3 = float(np.prod(img.GetSpacing()))
    spacing_mm = np.array(result.study.spacing_zyx_mm)
    for f in result.foci:
        idx = np.argwhere(arr == f.id)
        assert len(idx) * voxel_mm3 == pytest.approx(f.volume_mm3, rel=1e-5)
        lps = img.TransformContinuousIndexToPhysicalPoint(idx.mean(axis=0)[::-1].tolist())
        assert np.linalg.norm(np.subtract(lps, f.centroid_lps_mm)) < 0.5 * spacing_mm.max()


def test_seg_and_sr_reference_the_phantom_series(staged):
    result, folder, dicom_dir = staged
    sources = {}
    for path in sorted(dicom_dir.glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        sources[ds.SOPInstanceUID] = ds
    series_uid = next(iter(sources.values())).SeriesInstanceUID
    assert result.study.series_instance_uid == series_uid

    seg = pydicom.dcmread(folder / "seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert {
        i.ReferencedSOPInstanceUID
        for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    } == set(sources)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [
        segment_label(f.id, f.stage.value) for f in result.foci
    ]
    frames = seg.pixel_array.reshape(int(seg.NumberOfFrames), int(seg.Rows), int(seg.Columns))
    counts = np.zeros(len(result.foci) + 1)
    for frame, item, number in zip(
        frames, seg.PerFrameFunctionalGroupsSequence, frame_segment_numbers(seg), strict=True
    ):
        [ref] = item.DerivationImageSequence[0].SourceImageSequence
        src = sources[ref.ReferencedSOPInstanceUID]
        np.testing.assert_allclose(
            [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in src.ImagePositionPatient],
            atol=1e-3,
        )
        counts[number] += frame.sum()
    voxel_mm3 = float(np.prod(result.study.spacing_zyx_mm))
    for number, f in enumerate(result.foci, start=1):
        assert counts[number] * voxel_mm3 == pytest.approx(f.volume_mm3, rel=1e-5)

    sr = hd.sr.srread(folder / "sr.dcm")
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [f"Focus {f.id}" for f in result.foci]
    for g, f in zip(groups, result.foci, strict=True):
        assert g.referenced_segment.referenced_sop_instance_uid == seg.SOPInstanceUID
        [vol] = g.get_measurements()
        assert vol.value == pytest.approx(f.volume_mm3, rel=1e-6)
        [stage] = g.get_qualitative_evaluations()
        assert stage.value.value == f.stage.value


def test_nifti_input_gives_an_aligned_label_map_and_no_dicom_objects(phantom_small, tmp_path):
    """A NIfTI CT -> foci.nii.gz on exactly the CT grid, and no SEG or SR."""
    from hostage.io.image_file import to_sitk_image

    ct_path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(
        to_sitk_image(np.asarray(phantom_small.volume.hu), phantom_small.volume), str(ct_path)
    )
    result = stage_to_folder(ct_path, out=tmp_path / "out")
    folder = tmp_path / "out" / result.study_key
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["foci.nii.gz", "foci_labels.json", "report.html", "result.json"]
    ct = sitk.ReadImage(str(ct_path))
    lab = sitk.ReadImage(str(folder / "foci.nii.gz"))
    assert lab.GetSize() == ct.GetSize()
    np.testing.assert_allclose(lab.GetOrigin(), ct.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(lab.GetSpacing(), ct.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(lab.GetDirection(), ct.GetDirection(), atol=1e-6)
    arr = sitk.GetArrayFromImage(lab)
    hu = sitk.GetArrayFromImage(ct)
    for f in result.foci:
        inside = hu[arr == f.id]
        assert inside.size * float(np.prod(lab.GetSpacing())) == pytest.approx(
            f.volume_mm3, rel=1e-5
        )
        # foci are hyperdense: the label sits on dense voxels of the CT it overlays
        assert np.median(inside) > 100
