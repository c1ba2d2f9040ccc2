"""The DICOM loader on series written by pydicom: choice, geometry, values, errors."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import generate_uid

import hostage
from hostage.config import LoadConfig
from hostage.errors import GeometryError, InputError
from hostage.io import discover, load


def hu_of(stored, intercept=-1024.0, slope=1.0):
    return stored.astype(np.float64) * slope + intercept


def assert_no_free_text(volume):
    text = repr(volume.load_report) + repr(volume.warnings) + repr(volume)
    assert "Doe" not in text and "SECRET" not in text


# ----------------------------------------------------------------------------- layout and order
def test_shuffled_extensionless_nested_names(tmp_path, dicom_writer):
    names = ["b/zz", "a/deep/er/1", "q", "a/x.bin", "b/aa", "c/9"]
    paths, study, series, stored = dicom_writer.series(tmp_path, n=6, names=names)
    (tmp_path / "README.txt").write_text("junk that is not DICOM")
    v = load(tmp_path)
    assert v.hu.dtype == np.int16
    np.testing.assert_array_equal(v.hu, hu_of(stored))
    assert v.spacing_zyx_mm == pytest.approx((2.0, 0.7, 0.8))
    assert v.origin_lps_mm == pytest.approx((-50.0, -60.0, -40.0))
    np.testing.assert_allclose(v.direction_lps, np.eye(3)[:, ::-1])
    assert v.source_files == tuple(paths)
    assert v.study_instance_uid == study and v.series_instance_uid == series
    assert v.source == tmp_path
    assert v.load_report.num_files == 7 and v.load_report.num_non_dicom == 1
    assert "the only usable CT series" in v.load_report.chosen
    assert_no_free_text(v)


def test_descending_positions_are_sorted_by_position_not_name(tmp_path, dicom_writer):
    zs = [10.0 - 2.5 * k for k in range(5)]  # file IM0000 is the top slice
    paths, *_, stored = dicom_writer.series(tmp_path, positions=zs)
    v = load(tmp_path)
    np.testing.assert_array_equal(v.hu, hu_of(stored[::-1]))
    assert v.spacing_zyx_mm[0] == pytest.approx(2.5)
    assert v.origin_lps_mm[2] == pytest.approx(0.0)
    assert v.source_files == tuple(paths[::-1])
    np.testing.assert_allclose(v.index_to_lps_mm([4, 0, 0]), [-50.0, -60.0, 10.0])


def test_values_match_pydicom_modality_lut(series_dir):
    folder, paths, *_ = series_dir
    v = load(folder)
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        np.testing.assert_array_equal(v.hu[k], apply_modality_lut(ds.pixel_array, ds))


# ----------------------------------------------------------------------------- series choice
def test_localizer_second_series_and_non_images_are_skipped_with_reasons(tmp_path, dicom_writer):
    study = generate_uid()
    _, _, thin, stored = dicom_writer.series(
        tmp_path / "thin", n=8, spacing_z=1.0, study_uid=study, series_number=3
    )
    _, _, thick, _ = dicom_writer.series(
        tmp_path / "thick", n=4, spacing_z=3.0, study_uid=study, series_number=2
    )
    _, _, scout, _ = dicom_writer.series(
        tmp_path / "scout",
        n=1,
        study_uid=study,
        series_number=1,
        image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        iop=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
    )
    _, _, mr, _ = dicom_writer.series(tmp_path / "mr", n=2, study_uid=study, modality="MR")
    sr = pydicom.Dataset()
    sr.file_meta = pydicom.dataset.FileMetaDataset()
    sr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"  # dose SR
    sr.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    sr.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    sr.SOPClassUID = sr.file_meta.MediaStorageSOPClassUID
    sr.SOPInstanceUID = sr.file_meta.MediaStorageSOPInstanceUID
    sr.StudyInstanceUID, sr.SeriesInstanceUID, sr.Modality = study, generate_uid(), "SR"
    sr.save_as(tmp_path / "dose_report", enforce_file_format=True)
    v = load(tmp_path)
    assert v.series_instance_uid == thin
    np.testing.assert_array_equal(v.hu, hu_of(stored))
    skipped = "\n".join(v.load_report.skipped)
    assert f"series {scout} (number 1, CT, ORIGINAL\\PRIMARY\\LOCALIZER" in skipped
    assert "localizer/scout" in skipped
    assert f"series {thick}" in skipped and "not chosen (4 slices of 3.000 mm" in skipped
    assert f"series {mr}" in skipped and "modality MR, not CT" in skipped
    assert "X-Ray Radiation Dose SR Storage, no pixel data" in skipped
    assert len(v.warnings) == 4 and all(w.startswith("skipped series") for w in v.warnings)
    assert "first of 2 usable CT series" in v.load_report.chosen
    forced = load(tmp_path, series_uid=thick)
    assert forced.series_instance_uid == thick and forced.hu.shape == (4, 12, 10)
    assert "forced by series_uid" in forced.load_report.chosen
    with pytest.raises(InputError, match="modality MR, not CT") as err:
        load(tmp_path, series_uid=mr)
    assert err.value.code == "not_ct"
    with pytest.raises(InputError, match=r"no series with SeriesInstanceUID '1\.2\.3'"):
        load(tmp_path, series_uid="1.2.3")


def test_secondary_capture_and_loose_thin_slice_are_not_chosen(tmp_path, dicom_writer):
    study = generate_uid()
    _, _, volume_uid, _ = dicom_writer.series(tmp_path / "v", n=6, spacing_z=2.0, study_uid=study)
    _, _, single_uid, _ = dicom_writer.series(
        tmp_path / "one", n=1, study_uid=study, slice_thickness=0.5
    )
    sc = pydicom.dcmread(dicom_writer.series(tmp_path / "sc", n=1, study_uid=study)[0][0])
    sc.SOPClassUID = sc.file_meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    sc.save_as(tmp_path / "sc" / "IM0000.dcm", enforce_file_format=True)
    v = load(tmp_path)
    assert v.series_instance_uid == volume_uid
    skipped = "\n".join(v.load_report.skipped)
    assert "secondary capture (e.g. a dose report screen), not a CT volume" in skipped
    assert f"series {single_uid}" in skipped and "not chosen (1 slices of 0.500 mm" in skipped


def test_original_preferred_over_thinner_derived(tmp_path, dicom_writer):
    study = generate_uid()
    _, _, original, _ = dicom_writer.series(tmp_path / "o", n=4, spacing_z=3.0, study_uid=study)
    dicom_writer.series(
        tmp_path / "d",
        n=8,
        spacing_z=1.0,
        study_uid=study,
        image_type=("DERIVED", "SECONDARY", "AXIAL"),
    )
    assert load(tmp_path).series_instance_uid == original


def test_multiple_studies_in_one_folder_is_an_error(tmp_path, dicom_writer):
    _, s1, _, _ = dicom_writer.series(tmp_path / "a", n=2)
    _, s2, _, _ = dicom_writer.series(tmp_path / "b", n=2)
    with pytest.raises(InputError, match=r"holds 2 studies .*hostage batch") as err:
        load(tmp_path)
    assert err.value.code == "multiple_studies"
    assert s1 in str(err.value) and s2 in str(err.value)
    # a StudySource from discover() loads only its own files
    found = discover([tmp_path])
    assert [s.key_hint for s in found.studies] == sorted([s1, s2])
    v = load(found.studies[0])
    assert v.study_instance_uid == found.studies[0].study_instance_uid
    assert v.hu.shape == (2, 12, 10)


# ----------------------------------------------------------------------------- values
def test_per_slice_rescale_exact_gives_int16(tmp_path, dicom_writer):
    study, series = generate_uid(), generate_uid()
    stored = []
    for k, intercept in enumerate([-1024.0, -1000.0, 0.0]):
        px = dicom_writer.pixels(z=k)
        stored.append(hu_of(px, intercept))
        dicom_writer.slice(
            tmp_path / f"s{k}",
            px,
            study_uid=study,
            series_uid=series,
            ipp=(0, 0, 2.0 * k),
            intercept=intercept,
        )
    v = load(tmp_path)
    assert v.hu.dtype == np.int16
    np.testing.assert_array_equal(v.hu, np.stack(stored))


def test_per_slice_fractional_slope_gives_float32(tmp_path, dicom_writer):
    study, series = generate_uid(), generate_uid()
    expect = []
    for k, (slope, intercept) in enumerate([(1.0, -1024.0), (0.5, -512.0), (2.0, -1024.0)]):
        px = dicom_writer.pixels(z=k)
        expect.append(hu_of(px, intercept, slope))
        dicom_writer.slice(
            tmp_path / f"s{k}",
            px,
            study_uid=study,
            series_uid=series,
            ipp=(0, 0, 2.0 * k),
            slope=slope,
            intercept=intercept,
        )
    v = load(tmp_path)
    assert v.hu.dtype == np.float32
    np.testing.assert_allclose(v.hu, np.stack(expect), rtol=0, atol=1e-3)


def test_signed_pixels_and_padding_to_air(tmp_path, dicom_writer):
    study, series = generate_uid(), generate_uid()
    stored = []
    for k in range(3):
        px = (dicom_writer.pixels(z=k).astype(np.int32) - 1024).astype(np.int16)
        px[0, :] = -2000  # padding outside the field of view
        stored.append(px)
        dicom_writer.slice(
            tmp_path / f"s{k}",
            px,
            study_uid=study,
            series_uid=series,
            ipp=(0, 0, 3.0 * k),
            intercept=0.0,
            padding=-2000,
        )
    v = load(tmp_path)
    expect = np.stack(stored).astype(np.int16)
    expect[:, 0, :] = -1000
    assert v.hu.dtype == np.int16
    np.testing.assert_array_equal(v.hu, expect)
    assert v.load_report.corrections == (
        "mapped 30 padding pixels (PixelPaddingValue) to air (-1000 HU)",
    )
    assert int(v.hu.min()) == -1000  # no stored value below the padding survived


def test_padding_range_to_air(tmp_path, dicom_writer):
    px = (dicom_writer.pixels().astype(np.int32) - 1024).astype(np.int16)
    px[0, :5] = [-2000, -1900, -1800, -1500, -1499]  # range -2000..-1500 is padding
    p = dicom_writer.slice(
        tmp_path / "a",
        px,
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        ipp=(0, 0, 0),
        intercept=0.0,
        padding=-2000,
    )
    ds = pydicom.dcmread(p)
    ds.add_new(0x00280121, "SS", -1500)  # PixelPaddingRangeLimit
    ds.save_as(p, enforce_file_format=True)
    v = load(p)
    np.testing.assert_array_equal(v.hu[0, 0, :5], [-1000, -1000, -1000, -1000, -1499])
    np.testing.assert_array_equal(v.hu[0, 1:], px[1:])
    assert v.load_report.corrections == (
        "mapped 4 padding pixels (PixelPaddingValue) to air (-1000 HU)",
    )


def test_unsigned_values_beyond_int16_give_float32(tmp_path, dicom_writer):
    study, series = generate_uid(), generate_uid()
    px = dicom_writer.pixels()
    px[0, 0] = 40000  # 40000 - 1024 does not fit int16
    dicom_writer.slice(tmp_path / "a", px, study_uid=study, series_uid=series, ipp=(0, 0, 0))
    v = load(tmp_path)
    assert v.hu.dtype == np.float32 and v.hu[0, 0, 0] == 40000 - 1024


@pytest.mark.parametrize("signed", [False, True])
def test_bits_above_bits_stored_are_ignored_like_pydicom(tmp_path, dicom_writer, signed):
    """12-bit data in 16-bit words: unused high bits set (unsigned) or not sign-extended."""
    study, series = generate_uid(), generate_uid()
    values = (dicom_writer.pixels().astype(np.int32) - 1024).clip(-2048, 2047)
    for k in range(2):
        p = dicom_writer.slice(
            tmp_path / f"s{k}",
            values.astype(np.int16) if signed else dicom_writer.pixels(),
            study_uid=study,
            series_uid=series,
            ipp=(0, 0, 2.0 * k),
            intercept=0.0 if signed else -1024.0,
        )
        ds = pydicom.dcmread(p)
        ds.BitsStored, ds.HighBit = 12, 11
        raw = (
            values.astype(np.int16).view(np.uint16) & 0x0FFF if signed else ds.pixel_array | 0xF000
        )
        ds.PixelData = raw.astype("<u2").tobytes()
        ds.save_as(p, enforce_file_format=True)
    v = load(tmp_path)
    for k in range(2):
        ds = pydicom.dcmread(tmp_path / f"s{k}")
        np.testing.assert_array_equal(v.hu[k], apply_modality_lut(ds.pixel_array, ds))
    expect = values if signed else dicom_writer.pixels().astype(np.int32) - 1024
    np.testing.assert_array_equal(v.hu[0], expect)


# ----------------------------------------------------------------------------- geometry
def test_missing_slice_is_an_error_by_default_and_resampled_when_allowed(tmp_path, dicom_writer):
    zs = [0.0, 2.0, 4.0, 8.0, 10.0]  # 6.0 is missing
    _, *_, stored = dicom_writer.series(tmp_path, positions=zs)
    with pytest.raises(
        GeometryError, match=r"about 1 slice\(s\) missing after position\(s\) 4\.00 mm"
    ) as e:
        load(tmp_path)
    assert e.value.code == "missing_slices"
    v = load(tmp_path, config=LoadConfig(allow_missing_slices=True))
    assert v.hu.shape == (6, 12, 10) and v.hu.dtype == np.float32
    hu = hu_of(stored)
    np.testing.assert_allclose(v.hu[[0, 1, 2, 4, 5]], hu, atol=1e-3)
    np.testing.assert_allclose(v.hu[3], (hu[2] + hu[3]) / 2, atol=1e-3)
    assert any("interpolated across the gap" in w for w in v.warnings)


def test_bundled_ct2_gap_is_reported(pydicom_file):
    folder = pydicom_file("dicomdirtests/77654033/CT2/17106").parent
    with pytest.raises(GeometryError, match=r"slice\(s\) missing") as e:
        load(folder)
    assert e.value.code == "missing_slices"


def test_nonuniform_spacing_resampled_within_tolerance_else_error(tmp_path, dicom_writer):
    zs = [0.0, 2.0, 4.0, 6.6, 8.6]  # one 2.6 mm step among 2.0 mm steps
    _, *_, stored = dicom_writer.series(tmp_path, positions=zs)
    v = load(tmp_path)
    assert v.spacing_zyx_mm[0] == pytest.approx(2.0)
    assert v.hu.shape[0] == 5  # 0, 2, 4, 6, 8 mm
    assert any("non-uniform slice spacing" in w for w in v.warnings)
    hu = hu_of(stored)
    np.testing.assert_allclose(v.hu[3], hu[2] + (hu[3] - hu[2]) * (2.0 / 2.6), atol=1e-2)
    with pytest.raises(GeometryError, match="non-uniform slice spacing") as e:
        load(tmp_path, config=LoadConfig(allow_nonuniform_spacing=False))
    assert e.value.code == "nonuniform_spacing"
    with pytest.raises(GeometryError, match=r"ratio 1\.30 is beyond max_nonuniform_ratio = 1\.2"):
        load(tmp_path, config=LoadConfig(max_nonuniform_ratio=1.2))


def test_small_jitter_within_tolerance_is_not_resampled(tmp_path, dicom_writer):
    dicom_writer.series(tmp_path, positions=[0.0, 2.02, 3.98, 6.05, 8.0])
    v = load(tmp_path)
    assert v.warnings == () and v.hu.dtype == np.int16
    assert v.spacing_zyx_mm[0] == pytest.approx(2.0)


def test_exact_duplicates_dropped_conflicting_duplicates_rejected(tmp_path, dicom_writer):
    paths, study, series, stored = dicom_writer.series(tmp_path / "s", n=4)
    shutil.copy(paths[1], tmp_path / "s" / "copy_of_1")  # same SOP instance
    dicom_writer.slice(  # a new SOP instance with identical pixels
        tmp_path / "s" / "resent_2",
        stored[2],
        study_uid=study,
        series_uid=series,
        ipp=(-50.0, -60.0, -36.0),
    )
    v = load(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, hu_of(stored))
    assert (
        "dropped 1 duplicate file(s) of the same SOP instance (copies of one slice)" in v.warnings
    )
    assert any("dropped 1 exact duplicate slice" in c for c in v.load_report.corrections)
    dicom_writer.slice(
        tmp_path / "s" / "other_3",
        stored[3] + 5,
        study_uid=study,
        series_uid=series,
        ipp=(-50.0, -60.0, -34.0),
    )
    with pytest.raises(GeometryError, match="two different slices at the same position") as e:
        load(tmp_path / "s")
    assert e.value.code == "conflicting_duplicates"


@pytest.mark.parametrize("tilt_deg", [8.0, 20.0])
def test_gantry_tilt_is_resampled_onto_an_orthogonal_grid(tmp_path, dicom_writer, tilt_deg):
    spacing_z = 2.0
    dy = spacing_z * math.tan(math.radians(tilt_deg))  # posterior shift per slice, mm
    dicom_writer.series(
        tmp_path,
        n=5,
        rows=20,
        spacing_z=spacing_z,
        shift_per_slice_mm=(dy, 0.0),
        pixel_spacing=(0.5, 0.5),
    )
    v = load(tmp_path)
    assert v.hu.dtype == np.float32
    assert any(f"gantry tilt of {tilt_deg:.2f} degrees" in w for w in v.warnings)
    np.testing.assert_allclose(v.direction_lps, np.eye(3)[:, ::-1], atol=1e-9)
    np.testing.assert_allclose(v.origin_lps_mm, (-50.0, -60.0, -40.0))
    for k in range(5):
        # the bone square (rows 4-6, cols 3-5 of each slice) lies dy*k mm further posterior
        bone = np.clip(v.hu[k] - 500.0, 0, None)
        rows, cols = np.indices(bone.shape)
        centre = (float((bone * rows).sum() / bone.sum()), float((bone * cols).sum() / bone.sum()))
        assert centre == pytest.approx((5.0 + dy * k / 0.5, 4.0), abs=0.1)  # pixels
        lps = v.index_to_lps_mm([k, *centre])
        np.testing.assert_allclose(lps, [-48.0, -57.5 + dy * k, -40.0 + 2.0 * k], atol=0.05)


def test_gantry_tilt_beyond_limit_is_an_error(tmp_path, dicom_writer):
    dicom_writer.series(tmp_path, n=4, shift_per_slice_mm=(2.0 * math.tan(math.radians(40)), 0))
    with pytest.raises(GeometryError, match=r"gantry tilt of 40\.00 degrees is beyond") as e:
        load(tmp_path)
    assert e.value.code == "gantry_tilt"
    with pytest.raises(GeometryError, match="allow_gantry_tilt is false"):
        load(tmp_path, config=LoadConfig(allow_gantry_tilt=False, max_gantry_tilt_deg=60))


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("pixel_spacing", (0.9, 0.8), "inconsistent_pixel_spacing"),
        ("iop", (1.0, 0.0, 0.0, 0.0, 0.8, -0.6), "inconsistent_orientation"),
    ],
)
def test_mismatched_slices_are_errors(tmp_path, dicom_writer, field, value, code):
    paths, study, series, stored = dicom_writer.series(tmp_path, n=3)
    dicom_writer.slice(
        paths[1],
        stored[1],
        study_uid=study,
        series_uid=series,
        ipp=(-50, -60, -38),
        **{field: value},
    )
    with pytest.raises(GeometryError, match="slices differ in") as e:
        load(tmp_path)
    assert e.value.code == code


def test_mismatched_rows_is_an_error(tmp_path, dicom_writer):
    paths, study, series, _ = dicom_writer.series(tmp_path, n=3)
    dicom_writer.slice(
        paths[1],
        dicom_writer.pixels(14, 10),
        study_uid=study,
        series_uid=series,
        ipp=(-50, -60, -38),
    )
    with pytest.raises(GeometryError, match="slices differ in size: 14x10 here, 12x10") as e:
        load(tmp_path)
    assert e.value.code == "inconsistent_size"


def test_oblique_orientation_keeps_its_direction(tmp_path, dicom_writer):
    a = math.radians(25)
    row = (1.0, 0.0, 0.0)
    col = (0.0, math.cos(a), -math.sin(a))
    normal = np.cross(row, col)
    study, series = generate_uid(), generate_uid()
    start = np.array([-40.0, -50.0, 20.0])
    for k in range(4):
        ipp = start + 3.0 * k * normal
        dicom_writer.slice(
            tmp_path / f"o{k}",
            dicom_writer.pixels(z=k),
            study_uid=study,
            series_uid=series,
            ipp=tuple(ipp),
            iop=(*row, *col),
        )
    v = load(tmp_path)
    np.testing.assert_allclose(v.direction_lps, np.stack([normal, col, row], axis=1), atol=1e-6)
    assert v.spacing_zyx_mm[0] == pytest.approx(3.0, abs=1e-3)
    np.testing.assert_allclose(v.index_to_lps_mm([3, 0, 0]), start + 9.0 * normal, atol=1e-3)
    np.testing.assert_allclose(
        v.index_to_lps_mm([0, 2, 1]),
        start + 2 * 0.7 * np.array(col) + 0.8 * np.array(row),
        atol=1e-4,
    )
    assert v.warnings == ()


# ----------------------------------------------------------------------------- bad input
def test_path_missing(tmp_path):
    with pytest.raises(InputError, match="path does not exist") as e:
        load(tmp_path / "nope")
    assert e.value.code == "missing_path"


def test_not_dicom_file(tmp_path):
    p = tmp_path / "notes.dcm"
    p.write_bytes(b"hello, I am not a DICOM file" * 20)
    with pytest.raises(InputError, match=r"notes\.dcm: not a DICOM file") as e:
        load(p)
    assert e.value.code == "not_dicom"
    with pytest.raises(
        InputError, match=r"no DICOM files or volumes found \(1 file\(s\), 1 not DICOM"
    ):
        load(tmp_path)


def test_mr_series_is_not_ct(tmp_path, dicom_writer):
    dicom_writer.series(tmp_path, n=3, modality="MR")
    with pytest.raises(InputError, match="modality MR, not CT") as e:
        load(tmp_path)
    assert e.value.code == "not_ct"


def test_only_a_localizer_is_no_usable_series(tmp_path, dicom_writer):
    dicom_writer.series(tmp_path, n=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    with pytest.raises(InputError, match=r"no usable CT series .*localizer/scout") as e:
        load(tmp_path)
    assert e.value.code == "no_series"


def test_truncated_pixel_data_names_the_file(series_dir):
    folder, paths, *_ = series_dir
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[:-50])
    with pytest.raises(
        InputError, match=r"IM0002.dcm: truncated file: pixel data has 190 of 240 bytes"
    ) as e:
        load(folder)
    assert e.value.code == "truncated"


def test_truncated_header_single_file(series_dir):
    _, paths, *_ = series_dir
    paths[0].write_bytes(paths[0].read_bytes()[:300])
    with pytest.raises(InputError, match=r"IM0000\.dcm: truncated file") as e:
        load(paths[0])
    assert e.value.code == "truncated"


def test_pixel_data_of_the_wrong_length(tmp_path, dicom_writer):
    p = dicom_writer.slice(
        tmp_path / "short",
        dicom_writer.pixels(),
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        ipp=(0, 0, 0),
    )
    ds = pydicom.dcmread(p)
    ds.PixelData = ds.PixelData[:-20]
    ds.save_as(p, enforce_file_format=True)
    with pytest.raises(
        InputError, match="short: pixel data of the wrong length: the file declares 220 bytes"
    ) as e:
        load(p)
    assert e.value.code == "bad_pixel_length"


def test_memory_guard_refuses_before_reading_pixels(series_dir):
    folder, paths, *_ = series_dir
    for p in paths:  # pixel data is unreadable: the guard must trigger before it is read
        p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(
        InputError, match=r"12x10x6 = 720 voxels exceeds \[load\] max_voxels = 500"
    ) as e:
        load(folder, config=LoadConfig(max_voxels=500))
    assert e.value.code == "too_large"


def test_public_api_exposes_load():
    assert hostage.load is load


def test_unreadable_rescale_is_an_error(series_dir):
    folder, paths, *_ = series_dir
    raw = paths[1].read_bytes()
    tag = b"\x28\x00\x53\x10DS"  # (0028,1053) RescaleSlope, explicit VR
    at = raw.index(tag) + len(tag)
    n = int.from_bytes(raw[at : at + 2], "little")
    bad = b"abc".ljust(n, b" ")  # not a decimal string; same length
    paths[1].write_bytes(raw[: at + 2] + bad + raw[at + 2 + n :])
    with pytest.raises(InputError, match=r"invalid RescaleSlope nan") as e:
        load(folder)
    assert e.value.code == "bad_rescale"
