"""Shared fixtures. Phantom fixtures live here too, cached per session."""

from __future__ import annotations

import pydicom
import pytest


@pytest.fixture(autouse=True, scope="session")
def _strict_dicom_writing():
    """Every DICOM file written by the tests or the phantoms must be valid."""
    old = pydicom.config.settings.writing_validation_mode
    pydicom.config.settings.writing_validation_mode = pydicom.config.RAISE
    yield
    pydicom.config.settings.writing_validation_mode = old
