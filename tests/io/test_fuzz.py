"""Fuzz hostage.load with mutated real files: the only exception that may escape is InputError.

Two generators, both deterministic (``derandomize=True``): header values set to
odd values through pydicom (wrong types, zero, negative, huge, NaN, deleted),
and raw byte edits (overwrites, truncation, insertions) of whole files, pixel
data included. Bases: pydicom's CT_small.dcm and a 3-slice series written here (uncompressed
and RLE).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import RLELossless

from hostage.config import LoadConfig
from hostage.errors import InputError
from hostage.io import load
from hostage.io.volume import Volume

CONFIG = LoadConfig(max_voxels=2_000_000)  # small: a fuzzed Rows x Columns must not allocate GBs

TAGS = [
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "SamplesPerPixel",
    "NumberOfFrames",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "RescaleSlope",
    "RescaleIntercept",
    "PixelPaddingValue",
    "Modality",
    "ImageType",
    "SOPClassUID",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "PhotometricInterpretation",
    "PixelData",
]

VALUES = st.one_of(
    st.none(),  # delete the element
    st.integers(-(2**31), 2**32),
    st.sampled_from([0, 1, -1, 8, 12, 16, 32, 3, 65535, 2**31 - 1]),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=7),
    st.text(max_size=12),
    st.sampled_from(["CT", "MR", "", "LOCALIZER", "1.2.840.10008.5.1.4.1.1.2", "1.2.3"]),
    st.binary(max_size=64),
)


@pytest.fixture(scope="module")
def bases(tmp_path_factory, dicom_writer):
    from pydicom.data import get_testdata_file

    root = tmp_path_factory.mktemp("fuzz_bases")
    paths, *_ = dicom_writer.series(root / "series", n=3, padding=30)
    rle, *_ = dicom_writer.series(root / "rle", n=3, transfer_syntax=RLELossless)
    small = get_testdata_file("CT_small.dcm", download=False)
    return {
        "series": [p.read_bytes() for p in paths],
        "series_rle": [p.read_bytes() for p in rle],
        "ct_small": [Path(small).read_bytes()],
    }


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_work")


def _load_only_input_errors(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = load(folder, config=CONFIG)
        except InputError:
            return
    assert isinstance(v, Volume)
    assert v.hu.dtype in (np.int16, np.float32)
    assert np.all(np.isfinite(v.hu))


def _set(ds: pydicom.Dataset, tag: str, value: object) -> None:
    if value is None:
        if tag in ds:
            delattr(ds, tag)
        return
    # pydicom may refuse the value for that VR: then nothing is written
    with contextlib.suppress(ValueError, TypeError, OverflowError):
        setattr(ds, tag, value)


def _write_and_load(work: Path, base: str, blobs: list[bytes]) -> None:
    """Write the (mutated) files over the base's working folder and load it."""
    folder = work / base
    folder.mkdir(exist_ok=True)
    for i, b in enumerate(blobs):
        (folder / f"f{i}").write_bytes(b)
    _load_only_input_errors(folder)


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.sampled_from(["series", "series_rle", "ct_small"]),
    which=st.integers(0, 2),
    edits=st.lists(st.tuples(st.sampled_from(TAGS), VALUES), min_size=1, max_size=3),
)
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_fuzz_header_values(bases, work_dir, base, which, edits):
    blobs = list(bases[base])
    i = which % len(blobs)
    ds = pydicom.dcmread(io.BytesIO(blobs[i]))
    for tag, value in edits:
        _set(ds, tag, value)
    out = io.BytesIO()
    old = pydicom.config.settings.writing_validation_mode
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    try:
        ds.save_as(out)
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError, OSError):
        return  # pydicom cannot write this dataset at all
    finally:
        pydicom.config.settings.writing_validation_mode = old
    blobs[i] = out.getvalue()
    _write_and_load(work_dir, base, blobs)


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=st.sampled_from(["series", "series_rle", "ct_small"]),
    which=st.integers(0, 2),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["overwrite", "truncate", "insert", "delete"]),
            st.floats(0, 1, exclude_max=True),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    ),
)
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_fuzz_raw_bytes(bases, work_dir, base, which, edits):
    blobs = list(bases[base])
    i = which % len(blobs)
    data = bytearray(blobs[i])
    for kind, where, payload in edits:
        if not data:
            break
        pos = int(where * len(data))
        if kind == "overwrite":
            data[pos : pos + len(payload)] = payload
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = payload
        else:
            del data[pos : pos + len(payload)]
    blobs[i] = bytes(data)
    _write_and_load(work_dir, base, blobs)
