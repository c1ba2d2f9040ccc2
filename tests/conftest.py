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


# ----------------------------------------------------------------------------- phantoms
# Session-cached synthetic CT phantoms built with the public hostage.phantom API.
# The pipeline under test must read only pixels and DICOM geometry; the truth is for asserts.

_PHANTOM_CACHE: dict = {}


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@pytest.fixture(scope="session")
def phantom_factory():
    """Return ``make(seed=0, shape_zyx=(24, 128, 128), spacing_zyx_mm=(2.5, 0.8, 0.8), **options)``.

    Options are those of ``hostage.make_phantom``. Results are cached for the session by
    their arguments, so equal calls return the same (read-only) Phantom.
    """
    from hostage.phantom import make_phantom

    def make(seed=0, shape_zyx=(24, 128, 128), spacing_zyx_mm=(2.5, 0.8, 0.8), **options):
        key = (
            seed,
            tuple(shape_zyx),
            tuple(spacing_zyx_mm),
            tuple(sorted((k, _freeze(v)) for k, v in options.items())),
        )
        if key not in _PHANTOM_CACHE:
            _PHANTOM_CACHE[key] = make_phantom(shape_zyx, spacing_zyx_mm, rng=seed, **options)
        return _PHANTOM_CACHE[key]

    return make


@pytest.fixture(scope="session")
def phantom_small(phantom_factory):
    """A small study (24 x 128 x 128, 2.5 x 0.8 x 0.8 mm) with one lesion of each stage and look-alikes."""
    from hostage.phantom import LesionSpec

    return phantom_factory(
        seed=0,
        lesions=(
            LesionSpec(stage="mature", size_mm=16.0),
            LesionSpec(stage="immature", size_mm=16.0),
            LesionSpec(stage="amorphous", size_mm=14.0),
        ),
        distractors=2,
    )


@pytest.fixture(scope="session")
def phantom_dicom_dir(phantom_small, tmp_path_factory):
    """`phantom_small` written as a CT DICOM series (int16, slope 1, intercept 0) with truth.json."""
    from hostage.phantom import write_phantom

    return write_phantom(phantom_small, tmp_path_factory.mktemp("phantom_small") / "study")
