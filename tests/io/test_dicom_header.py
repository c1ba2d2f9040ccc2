"""Header fast path: plain values converted without pydicom give the same headers as pydicom's values."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pydicom
import pytest

from hostage.errors import InputError
from hostage.io import _dicom_header as dh


def _offline_test_files() -> list[Path]:
    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    spec = importlib.util.find_spec("data_store")  # pydicom-data
    if spec is not None and spec.origin is not None:
        roots.append(Path(spec.origin).parent / "data")
    return sorted(p for r in roots if r.is_dir() for p in r.rglob("*") if p.is_file())


def _headers(paths):
    out = []
    for p in paths:
        try:
            out.append(dh.read_header(p))
        except InputError as exc:
            out.append(f"{exc.code}: {exc}")
    return out


def test_fast_values_give_pydicom_headers_on_every_test_file(monkeypatch, dicom_writer, tmp_path):
    paths = _offline_test_files()
    dicom_writer.series(tmp_path / "s", n=3)
    paths += sorted((tmp_path / "s").iterdir())
    assert len(paths) > 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings about odd values in its test files
        fast = _headers(paths)
        monkeypatch.setattr(
            dh, "_top_values", lambda ds: {name: ds.get(name) for name in dh._TOP_TAGS}
        )
        slow = _headers(paths)
    assert sum(isinstance(h, dh.DicomHeader) for h in fast) > 100
    for p, a, b in zip(paths, fast, slow, strict=True):
        assert a == b, p


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("InstanceNumber", b" 12 ", " 12"),
        ("InstanceNumber", b"1.5 ", dh._ASK_PYDICOM),  # not the plain IS form
        ("SeriesNumber", b"1\\2", dh._ASK_PYDICOM),  # multi-valued where one is expected
        ("PixelSpacing", b"0.7\\0.7 ", ["0.7", "0.7"]),
        ("ImagePositionPatient", b"-1.5e2\\.5\\3.", ["-1.5e2", ".5", "3."]),
        ("RescaleSlope", b"", dh._ASK_PYDICOM),  # empty: pydicom's rule
        ("SOPInstanceUID", b"1.2.3\x00", "1.2.3"),
        ("Modality", b"CT", "CT"),
        ("Modality", b"c\xe9", dh._ASK_PYDICOM),  # not ASCII
        ("ImageType", b"ORIGINAL\\PRIMARY\\AXIAL ", ["ORIGINAL", "PRIMARY", "AXIAL"]),
        ("Rows", b"\x00\x02", 512),
        ("PixelPaddingValue", b"\x00\x80", dh._ASK_PYDICOM),  # US or SS: pydicom decides
    ],
)
def test_raw_value_forms(name, raw, expected):
    from pydicom.dataelem import RawDataElement

    tag = pydicom.datadict.tag_for_keyword(name)
    elem = RawDataElement(tag, None, len(raw), raw, 0, True, True)
    assert dh._raw_value(name, elem) == expected
