"""Discovery: any names, any depth, header-only, one StudySource per study or volume file."""

from __future__ import annotations

import pickle

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from hostage.errors import InputError
from hostage.io import discover
from hostage.io.discover import StudySource, read_header


def test_discover_groups_studies_and_counts_junk(tmp_path, dicom_writer):
    a_paths, a_uid, _, _ = dicom_writer.series(tmp_path / "p1" / "x", n=3, names=["1", "2", "3"])
    _b_paths, b_uid, _, _ = dicom_writer.series(tmp_path / "p2", n=2)
    dicom_writer.series(tmp_path / "p2" / "loc", n=1, study_uid=b_uid)  # second series, same study
    (tmp_path / "p1" / "notes.txt").write_text("hello")
    (tmp_path / "empty").write_bytes(b"")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), np.int16)), str(tmp_path / "v.nrrd"))
    found = discover([tmp_path])
    assert found.num_files == 3 + 2 + 1 + 2 + 1
    assert found.num_non_dicom == 2
    by_key = {s.key_hint: s for s in found.studies}
    assert [s.key_hint for s in found.studies] == sorted(by_key)
    a, b, v = by_key[a_uid], by_key[b_uid], by_key["v.nrrd"]
    assert a == StudySource(
        key_hint=a_uid,
        path=tmp_path / "p1" / "x",
        kind="dicom",
        files=tuple(sorted(a_paths)),
        study_instance_uid=a_uid,
    )
    assert b.path == tmp_path / "p2" and len(b.files) == 3
    assert v.kind == "volume" and v.files == (tmp_path / "v.nrrd",) and v.study_instance_uid is None
    assert sorted(found.skipped) == [
        f"{tmp_path / 'empty'}: not DICOM",
        f"{tmp_path / 'p1' / 'notes.txt'}: not DICOM",
    ]
    assert pickle.loads(pickle.dumps(found)) == found


def test_parallel_discovery_matches_serial(tmp_path, dicom_writer):
    for i in range(3):
        dicom_writer.series(tmp_path / f"s{i}", n=25)
    serial = discover([tmp_path])
    assert discover([tmp_path], jobs=2) == serial
    assert len(serial.studies) == 3


def test_header_only_and_pixel_offset(series_dir):
    _, paths, study, series, stored = series_dir
    h = read_header(paths[0])
    assert (h.study_instance_uid, h.series_instance_uid, h.modality) == (study, series, "CT")
    assert h.rows == 12 and h.columns == 10 and h.has_pixel_data
    raw = paths[0].read_bytes()
    assert (
        raw[h.pixel_offset : h.pixel_offset + h.pixel_length] == stored[0].astype("<u2").tobytes()
    )
    assert not hasattr(h, "patient_name")
    assert "Doe" not in repr(h)


def test_missing_path_and_single_file(tmp_path, series_dir):
    with pytest.raises(InputError, match="path does not exist"):
        discover([tmp_path / "absent"])
    _, paths, study, _, _ = series_dir
    found = discover([paths[0]])
    assert [s.key_hint for s in found.studies] == [study]


def test_file_without_preamble_is_read(tmp_path, series_dir):
    _, paths, study, _, _ = series_dir
    ds = pydicom.dcmread(paths[0])
    # write the dataset without preamble and file meta (older archives do this)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.preamble = None
    ds.save_as(tmp_path / "nometa", implicit_vr=True, little_endian=True)
    raw = (tmp_path / "nometa").read_bytes()
    if raw[128:132] == b"DICM":
        pytest.skip("pydicom wrote a preamble")
    assert read_header(tmp_path / "nometa").study_instance_uid == study


def test_metaimage_with_detached_data_is_one_volume(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "ct.mhd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.mhd", "ct.raw"]
    found = discover([tmp_path])
    assert [s.key_hint for s in found.studies] == ["ct.mhd"]
    assert found.num_non_dicom == 0 and found.skipped == ()
    from hostage.io import load

    np.testing.assert_array_equal(load(tmp_path).hu, arr)


def test_discovery_does_not_read_pixel_data(series_dir):
    folder, paths, study, _, _ = series_dir
    for p in paths:  # pixel data cut short: only a pixel read would notice
        p.write_bytes(p.read_bytes()[:-100])
    found = discover([folder])
    assert [s.key_hint for s in found.studies] == [study]
    assert found.studies[0].files == tuple(paths) and found.skipped == ()
