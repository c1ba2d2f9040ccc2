"""Start-up: ``import hostage`` and ``hostage --version`` stay light, the public names still work.

Each check runs a fresh interpreter, because this test session has long since
imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import hostage

#: Heavy packages that only staging, loading or the reports need.
HEAVY = ("pydicom", "SimpleITK", "scipy", "skimage", "matplotlib", "highdicom", "distributed")
#: hostage modules that pull those in.
HEAVY_HOSTAGE = ("hostage.pipeline", "hostage.segment", "hostage.features", "hostage.io.dicom")


def _modules_after(code: str) -> dict:
    """Run `code` in a fresh interpreter; return its output and the modules it imported."""
    script = (
        "import io, json, sys, contextlib\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "print(json.dumps({'out': buf.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(proc.stdout.splitlines()[-1])


def test_import_hostage_does_not_import_the_heavy_parts():
    got = _modules_after("import hostage")
    loaded = set(got["modules"])
    assert "hostage.batch" in loaded  # the function hostage.batch is imported eagerly
    assert sorted(loaded & {*HEAVY, *HEAVY_HOSTAGE}) == []


def test_version_and_help_do_not_import_the_heavy_parts():
    got = _modules_after(
        "from hostage.cli import main\n"
        "assert main(['--version']) == 0\n"
        "assert main(['--help']) == 0\n"
    )
    assert got["out"].startswith(f"hostage {hostage.__version__}\n")
    for command in ("batch", "stage", "phantom"):
        assert command in got["out"]
    assert sorted(set(got["modules"]) & {*HEAVY, *HEAVY_HOSTAGE}) == []


def test_public_names_are_the_functions_whatever_is_imported_first():
    # Importing a submodule binds its name on the package; hostage.batch (module and function)
    # and hostage.classify.fit (module and function) must still give the functions.
    got = _modules_after(
        "import hostage.batch\n"
        "import hostage\n"
        "from hostage.classify import fit\n"
        "import hostage.classify\n"
        "import hostage.io.discover\n"
        "from hostage.io import discover\n"
        "print(hostage.batch.__module__, hostage.batch.__name__)\n"
        "print(hostage.load.__module__, hostage.stage.__module__, hostage.make_phantom.__module__)\n"
        "print(hostage.classify.fit.__module__, fit.__name__, discover.__name__)\n"
        "print(hostage.Volume.__name__, hostage.StudyResult.__name__, hostage.Phantom.__name__)\n"
    )
    assert got["out"].splitlines() == [
        "hostage.batch batch",
        "hostage.io hostage.pipeline hostage.phantom",
        "hostage.classify.fit fit discover",
        "Volume StudyResult Phantom",
    ]


def test_every_public_name_resolves_and_unknown_names_raise():
    for name in (n for n in hostage.__all__ if n != "__version__"):
        obj = getattr(hostage, name)
        assert (obj.__name__, obj.__module__.split(".")[0]) == (name, "hostage")
    assert set(hostage.__all__) <= set(dir(hostage))
    from hostage.io import load
    from hostage.pipeline import stage

    assert hostage.load is load
    assert hostage.stage is stage
    with pytest.raises(AttributeError, match="module 'hostage' has no attribute 'stag'"):
        _ = hostage.stag  # type: ignore[attr-defined]


def test_report_writers_are_registered_on_first_use():
    from hostage import report
    from hostage.report.dicom_seg import write_seg
    from hostage.report.dicom_sr import write_sr
    from hostage.report.html import write_report
    from hostage.report.labels import write_label_map

    writers = report.WRITERS
    assert dict(writers) == {
        "html": write_report,
        "labels": write_label_map,
        "seg": write_seg,
        "sr": write_sr,
    }
    assert report.WRITERS is writers  # one registry, so tests can patch it
    with pytest.raises(AttributeError, match="has no attribute 'WRITER'"):
        _ = report.WRITER  # type: ignore[attr-defined]
