"""Fixtures for the loader tests: real CT / MR DICOM files written with pydicom."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from dicom_files import ct_pixels, write_series, write_slice


@pytest.fixture
def series_dir(tmp_path):
    """A plain 6-slice axial CT series in tmp_path/'series'."""
    folder = tmp_path / "series"
    paths, study, series, stored = write_series(folder)
    return folder, paths, study, series, stored


@pytest.fixture(scope="session")
def pydicom_file():
    """Path of a bundled pydicom test file, offline only."""

    def get(name):
        from pydicom.data import get_testdata_file

        try:
            path = get_testdata_file(name, download=False)
        except TypeError:  # older pydicom without the `download` argument
            path = get_testdata_file(name)
        if path is None:
            pytest.skip(f"pydicom test file {name} is not installed (pydicom-data)")
        return Path(path)

    return get


@pytest.fixture(scope="session")
def dicom_writer():
    """The writers above, for tests: ``dicom_writer.series(folder, n=...)``."""
    return SimpleNamespace(slice=write_slice, series=write_series, pixels=ct_pixels)
