"""hostage.batch and ``hostage batch``: statuses, exit codes, crash isolation, resume, Dask.

Every study here is a real DICOM series written with pydicom (or a real junk
file), staged by real worker processes. The worker-crash test uses the
documented test-only hook ``HOSTAGE_TEST_CRASH_STUDY`` (hostage.batch.CRASH_TEST_ENV),
which makes the worker process of the named study end itself with ``os._exit``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_files import write_slice
from pydicom.uid import generate_uid

import hostage
from hostage._progress import fmt_duration
from hostage.batch import (
    CRASH_TEST_ENV,
    Progress,
    StudyTask,
    _check_inputs,
    _check_jobs,
    run_study,
)
from hostage.cli import main
from hostage.config import Config
from hostage.enums import Status
from hostage.result import StudyResult

OUTPUTS = "json,csv"  # keep the tests fast: no html/labels/seg/sr


@pytest.fixture(autouse=True)
def _fresh_cli_logging():
    """main() binds a stderr handler to the test's captured stream; drop it afterwards."""
    yield
    lg = logging.getLogger("hostage")
    lg.handlers[:] = []
    lg.setLevel(logging.NOTSET)
    lg.propagate = True


# --------------------------------------------------------------------------- real DICOM
def _volume_hu(shape_zyx: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A small CT-like volume: air, a soft-tissue cylinder, a bone rod, one dense focus."""
    nz, ny, nx = shape_zyx
    yy, xx = np.mgrid[:ny, :nx]
    r_body = np.hypot(yy - ny / 2, xx - nx / 2)
    hu = np.full(shape_zyx, -1000.0)
    hu[:, r_body < nx * 0.42] = 40.0
    hu[:, np.hypot(yy - ny / 2, xx - nx * 0.35) < nx * 0.08] = 1100.0  # bone rod
    zz = np.arange(nz)[:, None, None]
    focus = np.hypot(np.hypot(zz - nz / 2, yy - ny / 2) / 1.0, xx - nx * 0.68) < nx * 0.1
    hu[focus] = 700.0
    hu += rng.normal(0, 8, shape_zyx)
    return np.round(hu).astype(np.int16)


def write_series(
    folder: Path,
    *,
    seed: int,
    study_uid: str | None = None,
    modality: str = "CT",
    shape_zyx: tuple[int, int, int] = (12, 48, 48),
    spacing_zyx_mm: tuple[float, float, float] = (2.0, 1.0, 1.0),
    skip_slice: int | None = None,
) -> str:
    """Write one axial series, one file per slice (shuffled, extension-less names)."""
    rng = np.random.default_rng(seed)
    hu = _volume_hu(shape_zyx, rng)
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    dz, dy, dx = spacing_zyx_mm
    order = rng.permutation(shape_zyx[0])
    for z in range(shape_zyx[0]):
        if z == skip_slice:
            continue
        write_slice(
            folder / f"im{order[z]:04d}",
            hu[z],
            study_uid=study_uid,
            series_uid=series_uid,
            ipp=(-24.0, -24.0, z * dz),
            pixel_spacing=(dy, dx),
            slope=1.0,
            intercept=0.0,
            modality=modality,
            instance_number=z + 1,
            slice_thickness=dz,
        )
    return study_uid


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory, phantom_dicom_dir: Path) -> dict[str, Path]:
    """Good and bad study folders, each its own INPUT; keys are the expected study keys.

    The good ones are two small series and a NIfTI volume written here, and the
    session's hip/thigh phantom (``hostage.phantom``, three lesions and look-alikes).
    """
    root = tmp_path_factory.mktemp("studies")
    first = next(p for p in sorted(phantom_dicom_dir.iterdir()) if p.suffix == ".dcm")
    paths: dict[str, Path] = {
        str(pydicom.dcmread(first, stop_before_pixels=True).StudyInstanceUID): phantom_dicom_dir
    }
    for i in range(2):
        uid = write_series(root / f"good{i}", seed=i, study_uid=f"1.2.826.0.1.3680043.99.{i + 1}")
        paths[uid] = root / f"good{i}"
    vol = root / "vol" / NIFTI
    vol.parent.mkdir()
    img = sitk.GetImageFromArray(_volume_hu((12, 48, 48), np.random.default_rng(5)))
    img.SetSpacing((1.0, 1.0, 2.0))  # SimpleITK's (x, y, z) order
    sitk.WriteImage(img, str(vol))
    paths[NIFTI] = vol
    uid = write_series(root / "trunc", seed=10, study_uid="1.2.826.0.1.3680043.99.10")
    victim = sorted((root / "trunc").iterdir())[3]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    paths[uid] = root / "trunc"
    uid = write_series(root / "mr", seed=11, modality="MR", study_uid="1.2.826.0.1.3680043.99.11")
    paths[uid] = root / "mr"
    uid = write_series(root / "gap", seed=12, skip_slice=5, study_uid="1.2.826.0.1.3680043.99.12")
    paths[uid] = root / "gap"
    junk = root / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not an image\n")
    (junk / "IM0001").write_bytes(b"\x00" * 300)
    paths["junk"] = junk
    return paths


SMALL = ("1.2.826.0.1.3680043.99.1", "1.2.826.0.1.3680043.99.2")
NIFTI = "small.nii.gz"
BAD = (
    "1.2.826.0.1.3680043.99.10",
    "1.2.826.0.1.3680043.99.11",
    "1.2.826.0.1.3680043.99.12",
    "junk",
)


#: What each bad study's error message must say (truncated file, MR series, gap, junk).
BAD_REASONS = ("truncated", r"\bMR\b.*not CT", "missing", "no DICOM")


def _good(studies: dict[str, Path]) -> list[str]:
    return sorted(k for k in studies if k not in BAD)


def _results(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))}


def _table_bytes(out: Path) -> tuple[bytes, bytes]:
    return (out / "index.json").read_bytes(), (out / "foci.csv").read_bytes()


# --------------------------------------------------------------------------- statuses
def test_mixed_batch_gives_expected_statuses_and_exit_1(studies, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", *map(str, studies.values()), "--out", str(out), "--jobs", "2"]
    rc = main([*argv, "--outputs", OUTPUTS])
    assert rc == 1
    results = _results(out)
    assert set(results) == set(studies)
    for key in _good(studies):
        assert results[key]["status"] == "ok", results[key]["error"]
        assert results[key]["study"]["shape_zyx"] == (
            [12, 48, 48] if key in (*SMALL, NIFTI) else [24, 128, 128]
        )
    for key, reason in zip(BAD, BAD_REASONS, strict=True):
        assert results[key]["status"] == "error"
        # Bad input is explained by the loader (InputError), never an unexpected crash.
        assert not results[key]["error"].startswith("unexpected"), results[key]["error"]
        assert re.search(reason, results[key]["error"], re.I), results[key]["error"]
    assert results["1.2.826.0.1.3680043.99.11"]["study"]["study_instance_uid"] == (
        "1.2.826.0.1.3680043.99.11"
    )
    index = json.loads((out / "index.json").read_text())
    assert [e["study_key"] for e in index["studies"]] == sorted(studies)
    assert {e["study_key"]: e["status"] for e in index["studies"]} == {
        k: v["status"] for k, v in results.items()
    }
    header = (out / "foci.csv").read_text().splitlines()[0]
    assert header.startswith("study_key,focus_id,stage,")
    log = (out / "hostage.log").read_text()
    assert "batch finished: 8 of 8 studies have results (4 errors)" in log
    assert "Doe" not in log and "Janet" not in log
    err = capsys.readouterr().err
    assert "[8/8]" in err  # plain progress lines: stderr is not a terminal under pytest
    assert "INFO" not in err  # the console keeps its level; INFO goes to hostage.log only
    assert "1.2.826.0.1.3680043.99.1: ok," in log


def test_all_good_exits_0_and_python_api_returns_results(studies, tmp_path):
    out = tmp_path / "out"
    good = [studies[k] for k in _good(studies)]
    rc = main(
        [
            "batch",
            *map(str, good),
            "--out",
            str(out),
            "--jobs",
            "1",
            "--quiet",
            "--outputs",
            OUTPUTS,
        ]
    )
    assert rc == 0
    lg = logging.getLogger("hostage")
    before = (list(lg.handlers), lg.level, lg.propagate)
    results = hostage.batch(good, out=tmp_path / "api", jobs=1, outputs=["json"], progress=False)
    assert (list(lg.handlers), lg.level, lg.propagate) == before  # logging left as it was
    assert [r.study_key for r in results] == _good(studies)
    assert (tmp_path / "api" / "index.json").is_file()
    assert not (tmp_path / "api" / "foci.csv").exists()  # "csv" was not among the outputs
    assert all(r.status is Status.OK for r in results)
    for r in results:  # the API and the CLI stage identically
        assert r.to_dict() == json.loads((out / r.study_key / "result.json").read_text())


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--jobs", "0"], "--jobs 0 is invalid"),
        (["--outputs", "json,htlm"], "did you mean 'html'"),
        (["--config", "/nonexistent/hostage.toml"], "configuration file not found"),
        (["--scheduler", "tcp://127.0.0.1:9", "--config", "{fast}"], "cannot connect to a Dask"),
    ],
)
def test_bad_command_line_exits_2_and_writes_nothing(studies, tmp_path, capsys, extra, match):
    fast = tmp_path / "fast.toml"
    fast.write_text("[batch]\nscheduler_timeout_s = 0.5\n")
    extra = [a.format(fast=fast) for a in extra]
    out = tmp_path / "out"
    rc = main(["batch", str(studies[SMALL[0]]), "--out", str(out), *extra])
    assert rc == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_missing_input_exits_2(tmp_path, capsys):
    rc = main(["batch", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main(["batch", "--out", str(tmp_path / "out")]) == 2  # no INPUT at all


def test_inputs_given_twice_or_nested_count_once(studies, tmp_path):
    root = studies[SMALL[0]].parent
    inputs = [
        studies[SMALL[0]],
        root / "good0" / ".." / "good0",
        studies[SMALL[1]],
        root / "good1" / "im0000",
    ]
    assert _check_inputs(inputs) == [studies[SMALL[0]], studies[SMALL[1]]]
    results = hostage.batch(inputs, out=tmp_path / "out", jobs=1, outputs=["json"], progress=False)
    assert [(r.study_key, r.status) for r in results] == [(k, Status.OK) for k in SMALL]


def test_default_jobs_is_the_cpus_available():
    assert _check_jobs(None) == len(os.sched_getaffinity(0))
    assert _check_jobs(3) == 3


def test_api_rejects_bad_arguments_before_writing(studies, tmp_path):
    with pytest.raises(hostage.ConfigError, match="is also an INPUT"):
        hostage.batch([studies["junk"]], out=studies["junk"])
    with pytest.raises(hostage.ConfigError, match="is inside INPUT"):
        hostage.batch([studies["junk"].parent], out=studies["junk"] / "results")
    assert not (studies["junk"] / "results").exists()
    with pytest.raises(hostage.ConfigError, match="--jobs -3 is invalid"):
        hostage.batch([studies["junk"]], out=tmp_path / "o", jobs=-3)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- isolation
def test_unexpected_exception_becomes_error_with_traceback_in_log(tmp_path):
    # A source that load() cannot even interpret: not a HostageError but a bug-class error.
    task = StudyTask(study_key="odd", source=object(), source_path="somewhere")
    outcome = run_study(task, out=tmp_path, config=Config(), outputs=("json",))
    written = json.loads((tmp_path / "odd" / "result.json").read_text())
    assert outcome.result == written
    assert written["status"] == "error"
    assert written["source"] == "somewhere"
    assert written["error"].startswith("unexpected TypeError: "), written["error"]
    assert written["error"].endswith("(traceback in hostage.log)")
    errors = [msg for name, level, msg in outcome.log if level == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("odd: unexpected TypeError while staging\nTraceback")


def test_worker_that_cannot_read_the_settings_writes_an_error(studies, tmp_path):
    # What a worker running another hostage version sees: a setting it does not know.
    settings = Config().to_dict()
    settings["segment"]["focus_seed_min_hux"] = 200.0
    task = StudyTask(
        study_key="k", source=studies[SMALL[0]], source_path="src", study_instance_uid="1.2"
    )
    outcome = run_study(task, out=tmp_path, config=settings, outputs=("json",))
    doc = json.loads((tmp_path / "k" / "result.json").read_text())
    assert outcome.result == doc
    assert doc["status"] == "error"
    assert "cannot use the batch's settings" in doc["error"]
    assert "unknown key 'focus_seed_min_hux' in [segment]" in doc["error"]
    assert doc["study"]["study_instance_uid"] == "1.2"
    # The same plain settings, unchanged, stage normally.
    good = run_study(task, out=tmp_path, config=Config().to_dict(), outputs=("json",))
    assert good.result["status"] == "ok"


def test_killed_worker_costs_only_its_study(studies, tmp_path, monkeypatch):
    inputs = [studies[k] for k in (*_good(studies), "1.2.826.0.1.3680043.99.11", "junk")]
    ref = hostage.batch(inputs, out=tmp_path / "ref", jobs=2, outputs=["json"], progress=False)
    victim = SMALL[1]
    monkeypatch.setenv(CRASH_TEST_ENV, victim)
    got = hostage.batch(inputs, out=tmp_path / "out", jobs=2, outputs=["json"], progress=False)
    by_key = {r.study_key: r for r in got}
    assert by_key[victim].status is Status.ERROR
    assert "worker process died 2 times" in by_key[victim].error
    assert by_key[victim].study.study_instance_uid == victim
    for r in ref:
        if r.study_key != victim:
            assert by_key[r.study_key] == r
    log = (tmp_path / "out" / "hostage.log").read_text()
    assert f"{victim}: a worker process died while this study was running" in log


# --------------------------------------------------------------------------- resume
def test_resume_repairs_damaged_output_to_the_uninterrupted_one(studies, tmp_path):
    inputs = list(studies.values())
    ref_out = tmp_path / "ref"
    hostage.batch(inputs, out=ref_out, jobs=2, outputs=["json", "csv"], progress=False)
    ref = _results(ref_out)
    out = tmp_path / "out"
    hostage.batch(inputs, out=out, jobs=2, outputs=["json", "csv"], progress=False)
    # What a killed machine leaves: one study never finished, one result half written,
    # a stray temporary file, stale tables.
    phantom_key = next(k for k in _good(studies) if k not in (*SMALL, NIFTI))
    (out / phantom_key / "result.json").unlink()
    half = out / BAD[0] / "result.json"
    half.write_bytes(half.read_bytes()[:100])
    (out / BAD[0] / ".result.json.abc123.tmp.json").write_text("{")
    (out / "index.json").unlink()
    (out / "foci.csv").write_text("stale\n")
    kept = (out / SMALL[1] / "result.json").stat().st_mtime_ns
    retried = (out / "junk" / "result.json").stat().st_mtime_ns
    resumed = hostage.batch(
        inputs, out=out, jobs=2, outputs=["json", "csv"], progress=False, resume=True
    )
    assert _results(out) == ref
    assert _table_bytes(out) == _table_bytes(ref_out)
    assert not list((out / BAD[0]).glob(".*tmp*"))
    assert [r.study_key for r in resumed] == sorted(studies)
    assert [r.to_dict() for r in resumed] == [ref[k] for k in sorted(studies)]
    # The intact ok result is kept; error results are retried (batch.retry_errors_on_resume).
    assert (out / SMALL[1] / "result.json").stat().st_mtime_ns == kept
    assert (out / "junk" / "result.json").stat().st_mtime_ns != retried
    assert "8 studies found, 3 already complete, 5 to stage" in (out / "hostage.log").read_text()


def test_resume_keeps_ok_and_can_keep_errors(studies, tmp_path):
    inputs = [studies[SMALL[0]], studies["junk"]]
    out = tmp_path / "out"
    hostage.batch(inputs, out=out, jobs=1, outputs=["json"], progress=False)
    mtimes = {k: (out / k / "result.json").stat().st_mtime_ns for k in (SMALL[0], "junk")}
    keep_errors = Config.from_dict({"batch": {"retry_errors_on_resume": False}})
    res = hostage.batch(
        inputs, out=out, jobs=1, outputs=["json"], progress=False, resume=True, config=keep_errors
    )
    assert [r.status for r in res] == [Status.OK, Status.ERROR]
    assert {k: (out / k / "result.json").stat().st_mtime_ns for k in mtimes} == mtimes
    # Other analysis settings: the old ok result does not count as complete.
    other = Config.from_dict({"segment": {"min_focus_volume_mm3": 50.0}})
    hostage.batch(
        inputs, out=out, jobs=1, outputs=["json"], progress=False, resume=True, config=other
    )
    doc = json.loads((out / SMALL[0] / "result.json").read_text())
    assert doc["software"]["config"]["segment"]["min_focus_volume_mm3"] == 50.0


def test_bone_label_maps_found_by_study_folder_or_key(studies, phantom_small, tmp_path):
    """--bone-labels-root: one map per study, by folder name or study key; none is an error."""
    from hostage.io.image_file import to_sitk_image

    root = tmp_path / "totalseg"
    phantom_dir = studies[next(k for k in _good(studies) if k not in (*SMALL, NIFTI))]
    masks = root / phantom_dir.name  # TotalSegmentator -i <case> -o ROOT/<case>
    masks.mkdir(parents=True)
    bone = np.asarray(phantom_small.bone_mask, np.uint8)
    sitk.WriteImage(to_sitk_image(bone, phantom_small.volume), str(masks / "femur.nii.gz"))
    small = hostage.load(studies[SMALL[0]])
    empty = np.zeros(small.shape_zyx, np.uint8)
    sitk.WriteImage(to_sitk_image(empty, small), str(root / f"{SMALL[0]}.nii.gz"))
    inputs = [phantom_dir, studies[SMALL[0]], studies[SMALL[1]]]
    out = tmp_path / "out"
    argv = ["batch", *map(str, inputs), "--out", str(out), "--jobs", "2", "--quiet"]
    assert main([*argv, "--outputs", "json", "--bone-labels-root", str(root)]) == 1
    results = _results(out)
    phantom_key = next(k for k in results if k not in SMALL)
    ph = results[phantom_key]
    assert ph["status"] == "ok"
    assert ph["study"]["bone_label_map"] == phantom_dir.name
    assert ph["study"]["bone_label_names"] == {"1": "femur"}
    assert all(f["bone_labels"] is not None for f in ph["foci"])
    assert results[SMALL[0]]["study"]["bone_label_map"] == f"{SMALL[0]}.nii.gz"
    assert any("holds no structure" in w for w in results[SMALL[0]]["warnings"])
    assert results[SMALL[1]]["status"] == "error"
    assert "no bone label map for this study" in results[SMALL[1]]["error"]
    # resumed with the same maps, the ok studies are complete; without them, restaged
    mtime = (out / phantom_key / "result.json").stat().st_mtime_ns
    hostage.batch(
        inputs, out=out, jobs=1, outputs=["json"], progress=False, resume=True,
        bone_labels_root=root,
    )  # fmt: skip
    assert (out / phantom_key / "result.json").stat().st_mtime_ns == mtime
    hostage.batch(inputs, out=out, jobs=1, outputs=["json"], progress=False, resume=True)
    again = _results(out)
    assert "bone_label_map" not in again[phantom_key]["study"]
    assert again[SMALL[1]]["status"] == "ok"
    assert "another bone label map" in (out / "hostage.log").read_text()


def test_missing_bone_labels_root_exits_2_and_writes_nothing(studies, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["batch", str(studies[SMALL[0]]), "--out", str(out)]
    assert main([*argv, "--bone-labels-root", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert not out.exists()


def _cli_subprocess(inputs, out, *extra):
    code = "import sys; from hostage.cli import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, "batch", *map(str, inputs), "--out", str(out), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_batch_resumes_to_the_same_output(studies, tmp_path, sig):
    """A real interruption: the batch is killed (machine dies) or gets Ctrl-C mid-way."""
    root = tmp_path / "many"
    inputs = []
    n = 12  # enough studies that a poller slowed by a busy machine still catches the batch mid-way
    for i in range(n):
        write_series(root / f"s{i}", seed=100 + i, study_uid=f"1.2.826.0.1.3680043.98.{i + 1}")
        inputs.append(root / f"s{i}")
    ref_out = tmp_path / "ref"
    hostage.batch(inputs, out=ref_out, jobs=1, outputs=["json", "csv"], progress=False)

    # The interruption must land mid-way. It is sent as soon as the first result appears,
    # but in 2 of 4 full local runs on 2026-12-06 (never when this test ran alone) the Ctrl-C
    # variant finished all the studies first; so up to three tries, each seen in the message.
    tries = []
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        proc = _cli_subprocess(inputs, out, "--jobs", "1", "--outputs", "json,csv")
        deadline = time.monotonic() + 60
        while not list(out.glob("*/result.json")) and time.monotonic() < deadline:
            time.sleep(0.01)
        # The whole process group: a machine going down, or Ctrl-C reaching the foreground group.
        os.killpg(proc.pid, sig)
        rc = proc.wait(timeout=60)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        done_before = len(list(out.glob("*/result.json")))
        tries.append((done_before, rc, stderr[-300:]))
        if 1 <= done_before < n:
            break
    assert 1 <= done_before < n, f"the interruption came too late to test anything: {tries}"
    if sig == signal.SIGINT:
        assert rc == 130, stderr
        assert "rerun with --resume" in stderr
        # Ctrl-C keeps what was written and leaves consistent tables behind.
        index = json.loads((out / "index.json").read_text())
        assert len(index["studies"]) == done_before
    else:
        assert rc == -signal.SIGKILL
    assert (
        main(
            [
                "batch",
                *map(str, inputs),
                "--out",
                str(out),
                "--jobs",
                "2",
                "--resume",
                "--quiet",
                "--outputs",
                "json,csv",
            ]
        )
        == 0
    )
    assert _results(out) == _results(ref_out)
    assert _table_bytes(out) == _table_bytes(ref_out)


# --------------------------------------------------------------------------- Dask
@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results_as_local_processes(
    studies, tmp_path, monkeypatch
):
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    inputs = list(studies.values())
    local = hostage.batch(
        inputs, out=tmp_path / "local", jobs=2, outputs=["json", "csv"], progress=False
    )
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
    ):
        rc = main(
            ["batch", *map(str, inputs), "--out", str(tmp_path / "dask"), "--scheduler",
             cluster.scheduler_address, "--quiet", "--outputs", "json,csv"]
        )  # fmt: skip
        # A study whose Dask worker dies: the nanny restarts the worker, the scheduler gives
        # the study up after allowed-failures + 1 deaths, and only that study is lost.
        monkeypatch.setenv(CRASH_TEST_ENV, SMALL[0])
        crashed = hostage.batch(
            [studies[k] for k in (SMALL[0], "junk")],
            out=tmp_path / "dask_crash",
            scheduler=cluster.scheduler_address,
            outputs=["json"],
            progress=False,
        )
    assert [r.study_key for r in crashed] == [SMALL[0], "junk"]
    assert crashed[0].status is Status.ERROR
    assert crashed[0].error.startswith("the Dask worker died while staging this study")
    assert crashed[1].to_dict() == _results(tmp_path / "local")["junk"]
    assert rc == 1
    assert _results(tmp_path / "dask") == _results(tmp_path / "local")
    assert _table_bytes(tmp_path / "dask") == _table_bytes(tmp_path / "local")
    assert {r.study_key: r.status for r in local} == {
        k: Status(v["status"]) for k, v in _results(tmp_path / "dask").items()
    }
    log = (tmp_path / "dask" / "hostage.log").read_text()
    assert f"to stage on Dask scheduler {cluster.scheduler_address}" in log


# --------------------------------------------------------------------------- progress
def test_progress_bar_and_lines():
    ok = StudyResult(status=Status.OK, study_key="a", source="x")
    bad = StudyResult.from_error("broken", study_key="b", source="y")
    buf = io.StringIO()
    p = Progress(4, mode="lines", stream=buf)
    p.update(ok, elapsed_s=1.25)
    p.update(bad, elapsed_s=0.5)
    assert buf.getvalue().splitlines() == [
        "[1/4] a: ok, 0 foci, - (1.2 s)",
        "[2/4] b: error: broken (0.5 s)",
    ]
    assert p.text(now=p.t0 + 4.0) == "2/4 done, 1 failed, 0.50 studies/s, ETA 4s"
    bar = io.StringIO()
    p = Progress(2, mode="bar", stream=bar)
    p.update(ok, elapsed_s=1.0)
    p.update(bad, elapsed_s=1.0)
    p.close()
    assert bar.getvalue().endswith("\n")
    assert "[########################] 2/2 done, 1 failed" in bar.getvalue()
    bar = io.StringIO()
    p = Progress(4, mode="bar", stream=bar)
    p.update(ok, elapsed_s=1.0)
    p.update(ok, elapsed_s=1.0)  # within 0.1 s of the last draw: not redrawn
    assert bar.getvalue().count("done") == 1
    p.clear()  # a log line is about to be printed: erase, and redraw on the next update
    p.update(bad, elapsed_s=1.0)
    assert bar.getvalue().count("\r\x1b[K") == 3
    assert (
        bar.getvalue()
        .rsplit("\r\x1b[K", 1)[1]
        .startswith("[##################......] 3/4 done, 1 failed,")
    )
    silent = io.StringIO()
    p = Progress(1, mode="none", stream=silent)
    p.update(ok, elapsed_s=1.0)
    p.close()
    assert silent.getvalue() == ""
    assert (fmt_duration(59.4), fmt_duration(61), fmt_duration(3600)) == ("59s", "1m01s", "1h00m")


# --------------------------------------------------------------------------- speed plumbing
_HEAP_SCRIPT = """
import ctypes, json
import numpy as np
from hostage._malloc import study_heap

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mapped():
    # Is an 8 MB array (a study allocates and frees many) given its own mmap?
    before = libc.mallinfo2().hblks
    a = np.ones(1_000_000)
    during = libc.mallinfo2().hblks
    del a
    return during > before

outside = mapped()
with study_heap() as changed:
    inside = [mapped() for _ in range(3)]
after = mapped()
print(json.dumps({"changed": changed, "outside": outside, "inside": inside, "after": after}))
"""


def _heap(env_update: dict[str, str]) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    proc = subprocess.run(
        [sys.executable, "-c", _HEAP_SCRIPT],
        env={**env, **env_update},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(proc.stdout)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc malloc only",
)
def test_study_heap_undoes_a_fixed_mmap_threshold_as_dask_sets_it():
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, which fixes glibc's mmap threshold at
    # 128 KiB: every 8 MB array is mapped, faulted in and unmapped again. Inside study_heap
    # the heap serves (and reuses) them; afterwards the environment's settings are back.
    assert _heap({"MALLOC_TRIM_THRESHOLD_": "65536"}) == {
        "changed": True,
        "outside": True,
        "inside": [False, False, False],
        "after": True,
    }
    # Left alone: the adaptive threshold (the first 8 MB block is mapped, then the threshold
    # adapts), or a threshold the user chose.
    assert _heap({}) == {"changed": False, "outside": True, "inside": [False] * 3, "after": False}
    chosen = {"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"}
    assert _heap(chosen) == {"changed": False, "outside": True, "inside": [True] * 3, "after": True}


def test_worker_preload_modules_exist():
    import importlib.util

    from hostage.batch import WORKER_PRELOAD

    for name in WORKER_PRELOAD:
        top = name.split(".")[0]
        if top in ("hostage", "scipy", "skimage", "pydicom"):  # required dependencies
            assert importlib.util.find_spec(name) is not None, name


def test_discovered_headers_are_reused_and_load_the_same_volume(studies):
    import dataclasses

    from hostage.io import discover, load

    found = discover([studies[SMALL[0]]])
    (source,) = found.studies
    assert [h.path for h in source.headers] == list(source.files)
    assert len(source.files) == 12
    assert "headers" not in repr(source)
    reused = load(source)
    reread = load(dataclasses.replace(source, headers=()))
    assert np.array_equal(reused.hu, reread.hu)
    assert reused.load_report == reread.load_report
    assert reused.spacing_zyx_mm == reread.spacing_zyx_mm
    assert reused.origin_lps_mm == reread.origin_lps_mm
