"""DICOM SEG and SR: read back with pydicom/highdicom, right references, same geometry."""

from __future__ import annotations

import functools
import logging

import highdicom as hd
import numpy as np
import pydicom
import pytest

from hostage.report import WRITERS, write_study_outputs
from hostage.report.dicom_seg import SEG_NAME, frame_segment_numbers, segment_label, write_seg
from hostage.report.dicom_sr import CODING_SCHEME, SR_NAME, write_sr
from hostage.report.figures import paint_labels


@pytest.fixture(params=["axial-anisotropic", "oblique-flipped"], scope="module")
def dicom_study(request, kit, tmp_path_factory):
    study = kit.make_study(request.param)
    files = kit.write_dicom_series(study.volume, tmp_path_factory.mktemp("ct") / "series")
    out = tmp_path_factory.mktemp("out")
    ctx = kit.outputs_for(study, out, files)
    written = write_seg(ctx) + write_sr(ctx)
    return study, files, ctx, written


def test_files_written(dicom_study):
    _, _, ctx, written = dicom_study
    assert [p.name for p in written] == [SEG_NAME, SR_NAME]
    assert all(p.parent == ctx.out_dir for p in written)


def test_seg_references_source_series(dicom_study):
    study, files, ctx, _ = dicom_study
    seg = hd.seg.segread(ctx.out_dir / SEG_NAME)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    assert seg.SegmentationType == "BINARY"
    assert seg.StudyInstanceUID == study.volume.study_instance_uid
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    [ref_series] = seg.ReferencedSeriesSequence
    assert ref_series.SeriesInstanceUID == study.volume.series_instance_uid
    referenced = {item.ReferencedSOPInstanceUID for item in ref_series.ReferencedInstanceSequence}
    assert referenced == {s.SOPInstanceUID for s in sources}
    labels = [item.SegmentLabel for item in seg.SegmentSequence]
    assert labels == [segment_label(f.id, f.stage.value) for f in study.result.foci]
    assert labels[0].startswith("Focus 1: ")
    for item in seg.SegmentSequence:
        assert item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Ossification"
        algo = item.SegmentationAlgorithmIdentificationSequence[0]
        assert algo.AlgorithmName == "hostage"
        assert algo.AlgorithmVersion == hostage_version()


def hostage_version():
    from hostage import __version__

    return __version__


def test_seg_frames_line_up_with_source_slices(dicom_study):
    study, files, ctx, _ = dicom_study
    ds = pydicom.dcmread(ctx.out_dir / SEG_NAME)
    sources = {}
    for k, f in enumerate(files):
        s = pydicom.dcmread(f, stop_before_pixels=True)
        sources[s.SOPInstanceUID] = (k, s)
    orient = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    src0 = next(iter(sources.values()))[1]
    np.testing.assert_allclose(
        [float(v) for v in orient.ImageOrientationPatient],
        [float(v) for v in src0.ImageOrientationPatient],
        atol=1e-5,
    )
    labels = paint_labels(study.seg.foci, shape_zyx=study.volume.shape_zyx)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    counts = {}
    numbers = frame_segment_numbers(ds)
    for frame, item, number in zip(
        frames, ds.PerFrameFunctionalGroupsSequence, numbers, strict=True
    ):
        [src_ref] = item.DerivationImageSequence[0].SourceImageSequence
        k, src = sources[src_ref.ReferencedSOPInstanceUID]
        np.testing.assert_allclose(
            [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in src.ImagePositionPatient],
            atol=1e-4,
        )
        focus = study.result.foci[number - 1]
        np.testing.assert_array_equal(frame.astype(bool), labels[k] == focus.id)
        counts[number] = counts.get(number, 0) + int(frame.sum())
    for number, focus in enumerate(study.result.foci, start=1):
        assert counts[number] * study.volume.voxel_volume_mm3 == pytest.approx(focus.volume_mm3)


def test_sr_measurements_and_references(dicom_study):
    study, files, ctx, _ = dicom_study
    seg = pydicom.dcmread(ctx.out_dir / SEG_NAME)
    sr = hd.sr.srread(ctx.out_dir / SR_NAME)
    assert sr.StudyInstanceUID == study.volume.study_instance_uid
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    # evidence: the SEG and every source image
    evidence = {
        inst.ReferencedSOPInstanceUID
        for study_item in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study_item.ReferencedSeriesSequence
        for inst in series.ReferencedSOPSequence
    }
    source_uids = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    assert evidence == source_uids | {seg.SOPInstanceUID}
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(study.result.foci)
    for group, focus in zip(groups, study.result.foci, strict=True):
        assert group.tracking_identifier == f"Focus {focus.id}"
        ref = group.referenced_segment
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert ref.referenced_segment_numbers == [study.result.foci.index(focus) + 1]
        assert ref.has_source_images()
        focus_sources = {
            img.referenced_sop_instance_uid for img in ref.source_images_for_segmentation
        }
        k_lo, k_hi = study.seg.foci[study.result.foci.index(focus)].bbox_zyx[0].indices(10**6)[:2]
        assert len(focus_sources) == k_hi - k_lo  # the slices the focus lies on
        assert focus_sources <= source_uids
        [volume] = group.get_measurements(name=hd.sr.CodedConcept("118565006", "SCT", "Volume"))
        assert volume.value == pytest.approx(focus.volume_mm3, rel=1e-6)
        assert volume.unit.value == "mm3"
        [stage] = group.get_qualitative_evaluations()
        assert stage.value.scheme_designator == CODING_SCHEME
        assert stage.value.value == study.truth[focus.id].value


def test_sr_carries_the_verdict(dicom_study):
    study, _, ctx, _ = dicom_study
    sr = hd.sr.srread(ctx.out_dir / SR_NAME)
    [group] = sr.content.get_image_measurement_groups()
    [ev] = group.get_qualitative_evaluations()
    assert ev.value.value == study.result.resection.status.value


def test_sr_alone_writes_its_seg(kit, tmp_path):
    study = kit.make_study("axial-isotropic")
    files = kit.write_dicom_series(study.volume, tmp_path / "series")
    ctx = kit.outputs_for(study, tmp_path / "out", files)
    written = write_sr(ctx)
    assert [p.name for p in written] == [SEG_NAME, SR_NAME]
    # a second SR run reuses the SEG it matches
    before = pydicom.dcmread(tmp_path / "out" / SEG_NAME).SOPInstanceUID
    assert [p.name for p in write_sr(ctx)] == [SR_NAME]
    sr = hd.sr.srread(tmp_path / "out" / SR_NAME)
    ref = sr.content.get_volumetric_roi_measurement_groups()[0].referenced_segment
    assert ref.referenced_sop_instance_uid == before


def test_no_dicom_source_writes_nothing(kit, tmp_path):
    study = kit.make_study("axial-isotropic")
    ctx = kit.outputs_for(study, tmp_path)
    assert write_seg(ctx) == []
    assert write_sr(ctx) == []
    assert list(tmp_path.iterdir()) == []


def test_missing_highdicom_is_a_warning(kit, tmp_path, monkeypatch, caplog):
    study = kit.make_study("axial-isotropic")
    files = kit.write_dicom_series(study.volume, tmp_path / "series")
    ctx = kit.outputs_for(study, tmp_path / "out", files)
    monkeypatch.setitem(WRITERS, "seg", functools.partial(write_seg, module="no_such_highdicom"))
    monkeypatch.setitem(WRITERS, "sr", functools.partial(write_sr, module="no_such_highdicom"))
    with caplog.at_level(logging.WARNING, logger="hostage.report"):
        result = write_study_outputs(ctx, outputs=("json", "labels", "seg", "sr"))
    names = sorted(p.name for p in ctx.out_dir.iterdir())
    assert names == ["foci.nii.gz", "foci_labels.json", "result.json"]
    skipped = [w for w in result.warnings if "skipped" in w]
    assert len(skipped) == 2
    assert all("no_such_highdicom" in w and "pip install" in w for w in skipped)
    assert "output 'seg' skipped" in skipped[0]
    assert kit.PATIENT_NAME not in caplog.text


def test_writers_never_log_patient_name(kit, tmp_path, caplog):
    study = kit.make_study("axial-isotropic")
    files = kit.write_dicom_series(study.volume, tmp_path / "series")
    ctx = kit.outputs_for(study, tmp_path / "out", files)
    with caplog.at_level(logging.DEBUG, logger="hostage"):
        write_study_outputs(ctx)
    assert caplog.text  # debug lines were emitted ...
    assert kit.PATIENT_NAME not in caplog.text  # ... without the name
    for path in ctx.out_dir.rglob("*"):
        assert "Secret" not in path.name
    # the derived objects carry the patient module, as DICOM requires
    assert str(pydicom.dcmread(ctx.out_dir / SEG_NAME).PatientName) == kit.PATIENT_NAME
    html = (ctx.out_dir / "report.html").read_text()
    assert "Secret" not in html


def test_seg_on_a_resampled_grid_keeps_its_own_geometry(kit, tmp_path):
    """A loader-resampled grid (half the slice step, shifted) still gives a valid SEG and SR."""
    source = kit.make_study("axial-anisotropic")
    files = kit.write_dicom_series(source.volume, tmp_path / "series")
    volume, labels, truth = kit.make_volume(
        shape_zyx=(40, 44, 52),
        spacing_zyx_mm=(1.25, 0.8, 0.7),
        origin_lps_mm=(-20.0, -30.0, 100.3),
        study_uid=source.volume.study_instance_uid,
        series_uid=source.volume.series_instance_uid,
    )
    study = kit.build_study(volume, labels, truth)
    ctx = kit.outputs_for(study, tmp_path / "out", files)
    assert [p.name for p in write_seg(ctx) + write_sr(ctx)] == [SEG_NAME, SR_NAME]
    ds = pydicom.dcmread(ctx.out_dir / SEG_NAME)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == source.volume.series_instance_uid
    painted = paint_labels(study.seg.foci, shape_zyx=volume.shape_zyx)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    numbers = frame_segment_numbers(ds)
    for frame, item, number in zip(
        frames, ds.PerFrameFunctionalGroupsSequence, numbers, strict=True
    ):
        ipp = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        k = volume.lps_mm_to_index(ipp)  # the frame sits exactly on a slice of our grid
        np.testing.assert_allclose(k, np.round(k), atol=1e-4)
        assert k[1] == pytest.approx(0) and k[2] == pytest.approx(0)
        focus_id = study.result.foci[number - 1].id
        np.testing.assert_array_equal(frame.astype(bool), painted[round(k[0])] == focus_id)
    sr = hd.sr.srread(ctx.out_dir / SR_NAME)
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [f"Focus {f.id}" for f in study.result.foci]
    ref = groups[0].referenced_segment
    assert not ref.has_source_images()  # no slice of ours is a source slice ...
    assert (
        ref.source_series_for_segmentation.value == source.volume.series_instance_uid
    )  # ... the series is


def test_seg_and_sr_reference_a_real_series(kit, tmp_path):
    """pydicom's real 5-slice CT series (CT5N): SEG frames land on its slices."""
    from pydicom.data import get_testdata_file

    import hostage

    folder = get_testdata_file("CT5N")
    volume = hostage.load(folder)
    labels = np.zeros(volume.shape_zyx, np.int32)
    labels[1:4, 4:9, 6:12] = 1
    study = kit.build_study(volume, labels, {1: kit.Stage.IMMATURE})
    ctx = kit.outputs_for(study, tmp_path, volume.source_files)
    assert [p.name for p in write_seg(ctx) + write_sr(ctx)] == [SEG_NAME, SR_NAME]
    ds = pydicom.dcmread(tmp_path / SEG_NAME)
    by_uid = {}
    for k, path in enumerate(volume.source_files):
        src = pydicom.dcmread(path, stop_before_pixels=True)
        by_uid[src.SOPInstanceUID] = (k, src)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.series_instance_uid
    assert int(ds.NumberOfFrames) == 3
    frames = ds.pixel_array.reshape(3, int(ds.Rows), int(ds.Columns))
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence, strict=True):
        [ref] = item.DerivationImageSequence[0].SourceImageSequence
        k, src = by_uid[ref.ReferencedSOPInstanceUID]
        np.testing.assert_allclose(
            [float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
            [float(v) for v in src.ImagePositionPatient],
            atol=1e-3,
        )
        np.testing.assert_array_equal(frame.astype(bool), labels[k] == 1)
    sr = hd.sr.srread(tmp_path / SR_NAME)
    [group] = sr.content.get_volumetric_roi_measurement_groups()
    [vol] = group.get_measurements()
    assert vol.value == pytest.approx(3 * 5 * 6 * volume.voxel_volume_mm3, rel=1e-6)


OPTIONAL_FREE_TEXT = {
    "InstitutionName": "SECRET-HOSPITAL",
    "StudyDescription": "SECRET-STUDY",
    "OperatorsName": "SECRET^OPERATOR",
    "PatientComments": "SECRET-COMMENT",
    "PerformingPhysicianName": "SECRET^PHYSICIAN",
    "OtherPatientIDs": "SECRET-OTHER-ID",
    "PatientAddress": "SECRET-ADDRESS",
}


def _seg_and_sr_of_edited_series(kit, tmp_path, edit):
    """Write a study's series, apply `edit(ds)` to every header, write SEG and SR; return them."""
    study = kit.make_study("axial-isotropic")
    files = kit.write_dicom_series(study.volume, tmp_path / "series")
    for path in files:
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path)
    ctx = kit.outputs_for(study, tmp_path / "out", files)
    write_seg(ctx)
    write_sr(ctx)
    assert hd.seg.segread(ctx.out_dir / SEG_NAME).number_of_segments == len(study.result.foci)
    return [pydicom.dcmread(ctx.out_dir / name) for name in (SEG_NAME, SR_NAME)]


def test_optional_free_text_is_not_copied(kit, tmp_path):
    def add_free_text(ds):
        for keyword, value in OPTIONAL_FREE_TEXT.items():
            setattr(ds, keyword, value)

    for ds in _seg_and_sr_of_edited_series(kit, tmp_path, add_free_text):
        leaked = [e.keyword for e in ds.iterall() if e.VR != "SQ" and "SECRET" in str(e.value)]
        assert leaked == []
        # what a derived object of the same patient and study must carry stays
        assert ds.PatientID == "TEST-ID-1"
        assert ds.AccessionNumber == "ACC1"


def test_series_without_patient_and_study_type2_attributes_gets_seg_and_sr(kit, tmp_path):
    # de-identified exports often drop PatientName and friends; the outputs must still be written
    def drop_type2(ds):
        for keyword in ("PatientName", "PatientBirthDate", "ReferringPhysicianName", "StudyID"):
            if keyword in ds:
                delattr(ds, keyword)

    for ds in _seg_and_sr_of_edited_series(kit, tmp_path, drop_type2):
        assert ds.PatientName == "" and ds.StudyID == ""
        assert ds.PatientID == "TEST-ID-1"
