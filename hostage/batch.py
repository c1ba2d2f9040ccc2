"""Stage many studies: discovery, local worker processes or a Dask cluster, resume.

:func:`batch` finds every study below its inputs, stages each one in a worker
(:func:`run_study`, the same function locally and on Dask), writes
``OUT/<study_key>/`` for each, then rebuilds ``OUT/index.json`` and
``OUT/foci.csv`` from the result files. It is the only place in hostage that
turns a failure into an error result (STYLE.md rule 8):

- a :class:`~hostage.errors.HostageError` becomes ``status = "error"`` with its message;
- any other exception also becomes ``"error"``, and its traceback goes to
  ``OUT/hostage.log`` at ERROR level;
- a worker process that dies (segfault, ``os._exit``, the out-of-memory killer)
  costs only its study: the pool is rebuilt, the studies that were running
  with it are run again one at a time, and a study that kills its worker
  ``batch.max_worker_crashes`` times (default twice) gets an error result
  saying so.

Resume (``resume=True``): a study is skipped when ``OUT/<study_key>/result.json``
exists, parses as a ``hostage.result/1`` document for the same study key and
was made with the same analysis settings (every config table except
``[batch]``). Error results are staged again by default
(``batch.retry_errors_on_resume``): the cause is often fixed between runs (a
decoder installed, a setting relaxed). Because the tables are rebuilt from the
result files, an interrupted batch resumed to the end gives the same output as
an uninterrupted one. See ``docs/batch.md``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._batchlog import capture_logs, log_to_file
from ._malloc import study_heap
from ._progress import Progress
from ._version import __version__
from .config import Config
from .enums import Status
from .errors import ConfigError, HostageError, InputError
from .io.write import study_key as make_study_key
from .result import StudyResult

__all__ = ["CRASH_TEST_ENV", "StudyOutcome", "StudyTask", "batch", "find_bone_labels", "run_study"]

logger = logging.getLogger(__name__)

#: Test-only hook: a comma-separated list of study keys whose worker process is
#: ended with ``os._exit`` before staging, to test crash isolation with a real
#: dying process. Read once by :func:`batch` in the calling process; nothing else
#: reads it, and no configuration key or input data can trigger it.
CRASH_TEST_ENV = "HOSTAGE_TEST_CRASH_STUDY"
_CRASH_EXIT_CODE = 86

LOG_NAME = "hostage.log"

#: Modules the fork server imports once, so that each worker does not import them again
#: for its first study (about 1 s of CPU per worker, measured): hostage's lazily imported
#: readers and writers, the pixel decoder plugins pydicom loads on the first decode, and
#: the parts of scikit-image and SciPy the features import on first use. A module missing
#: here is only imported later, per worker; one that cannot be imported is skipped.
WORKER_PRELOAD: tuple[str, ...] = (
    "hostage.batch",
    "hostage.pipeline",
    "hostage.io.dicom",
    "hostage.io.image_file",
    "hostage.report.html",
    "hostage.report.labels",
    "hostage.report.dicom_sr",
    *(f"pydicom.pixels.decoders.{p}" for p in ("pylibjpeg", "pillow", "pyjpegls", "rle", "gdcm")),
    "scipy.spatial",
    "skimage.measure._marching_cubes_lewiner",
    "skimage.measure._regionprops",
    "skimage.filters.thresholding",
)


# --------------------------------------------------------------------------- per study
@dataclass(frozen=True, slots=True, kw_only=True)
class StudyTask:
    """One study to stage: what the worker needs, all picklable.

    Attributes
    ----------
    study_key : str
        Unique, filesystem-safe key; the study's folder is ``OUT/<study_key>/``.
    source : object
        What :func:`hostage.io.load` accepts: a discovered study or a path.
    source_path : str
        The folder or file of the study (kept in error results).
    study_instance_uid : str or None
        Known from the headers, kept in error results.
    crash_for_test : bool
        Set only through :data:`CRASH_TEST_ENV`: end the worker with ``os._exit``.
    bone_labels : str or None
        The study's bone label map (file or folder, :func:`find_bone_labels`).
    bone_labels_missing : str or None
        With ``bone_labels_root`` but no map found: the message of the study's
        error result.
    """

    study_key: str
    source: Any
    source_path: str
    study_instance_uid: str | None = None
    crash_for_test: bool = False
    bone_labels: str | None = None
    bone_labels_missing: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyOutcome:
    """What a worker sends back: the result document and the study's log records.

    Attributes
    ----------
    study_key : str
    result : dict
        The result.json document as written (plain JSON types, cheap to pickle).
    log : tuple of (str, int, str)
        ``(logger name, level, message)`` of the records logged while staging.
    elapsed_s : float
        Wall time of the study in the worker, in seconds.
    cpu_s : float
        CPU time (user + system) of the worker process for the study, in seconds; well
        below `elapsed_s` when the machine is busy with other work.
    """

    study_key: str
    result: dict[str, Any]
    log: tuple[tuple[str, int, str], ...] = ()
    elapsed_s: float = 0.0
    cpu_s: float = 0.0


def _write_error(
    task: StudyTask, message: str, *, out: Path, config: Config | None
) -> dict[str, Any]:
    """Write an error result.json for `task` and return its document."""
    from .report import StudyOutputs, write_study_outputs

    result = StudyResult.from_error(
        message,
        study_key=task.study_key,
        source=task.source_path,
        study_instance_uid=task.study_instance_uid,
        config=config,
    )
    ctx = StudyOutputs(result=result, volume=None, seg=None, out_dir=out / task.study_key)
    return write_study_outputs(ctx, outputs=("json",)).to_dict()


def _clear_study_folder(folder: Path) -> None:
    """Remove a stale result.json and temporary files left by a killed writer."""
    (folder / "result.json").unlink(missing_ok=True)
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)


def run_study(
    task: StudyTask,
    *,
    out: str | Path,
    config: Config | Mapping[str, Any],
    outputs: Sequence[str],
) -> StudyOutcome:
    """Stage one study into ``OUT/<study_key>/`` and never raise for a bad study.

    This is the per-study function of every backend (local processes and Dask).

    Parameters
    ----------
    task : StudyTask
        The study.
    out : str or Path
        The batch output folder (shared by all workers).
    config : Config or mapping
        Settings, or their ``Config.to_dict()`` form (what the backends send: plain
        data, checked again here, so that a worker running another version of
        hostage reports a clear error instead of failing to unpickle).
    outputs : sequence of str
        Output names (see :data:`hostage.report.OUTPUTS`).

    Returns
    -------
    StudyOutcome
        The result as written (``status`` ``"ok"`` or ``"error"``) and the log records.
    """
    from .pipeline import stage_to_folder

    t0, c0 = time.perf_counter(), time.process_time()
    out = Path(out)
    with capture_logs() as captured:
        if task.crash_for_test:
            os._exit(_CRASH_EXIT_CODE)  # test hook, see CRASH_TEST_ENV
        _clear_study_folder(out / task.study_key)
        try:
            if not isinstance(config, Config):
                config = Config.from_dict(config, source="the settings sent by hostage batch")
        except ConfigError as exc:
            msg = (
                f"this worker's hostage {__version__} cannot use the batch's settings ({exc}); "
                "install the same hostage version on every worker"
            )
            doc = _write_error(task, msg, out=out, config=None)
            return StudyOutcome(study_key=task.study_key, result=doc)
        try:
            if task.bone_labels_missing is not None:
                raise InputError(task.bone_labels_missing, code="missing")
            with study_heap():  # undoes a Dask worker's fixed mmap threshold (hostage._malloc)
                doc = stage_to_folder(
                    task.source,
                    out=out,
                    config=config,
                    study_key=task.study_key,
                    outputs=outputs,
                    bone_labels=task.bone_labels,
                ).to_dict()
        except HostageError as exc:
            doc = _write_error(task, str(exc), out=out, config=config)
        except Exception as exc:  # the study boundary: isolate, log the traceback
            logger.error(
                "%s: unexpected %s while staging", task.study_key, type(exc).__name__, exc_info=True
            )
            msg = f"unexpected {type(exc).__name__}: {exc} (traceback in {LOG_NAME})"
            doc = _write_error(task, msg, out=out, config=config)
    return StudyOutcome(
        study_key=task.study_key,
        result=doc,
        log=tuple(captured.records),
        elapsed_s=time.perf_counter() - t0,
        cpu_s=time.process_time() - c0,
    )


# --------------------------------------------------------------------------- backends
OnOutcome = Callable[[StudyOutcome], None]


def _failed_outcome(task: StudyTask, message: str, *, out: Path, config: Config) -> StudyOutcome:
    """Write an error result from the coordinating process (the worker could not)."""
    return StudyOutcome(
        study_key=task.study_key, result=_write_error(task, message, out=out, config=config)
    )


def _worker_init() -> None:
    """Worker processes ignore Ctrl-C (the parent coordinates) and log at INFO."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("hostage").setLevel(logging.INFO)


def _start_forkserver() -> Any:
    """Start the fork server that imports hostage once and forks the workers.

    Called before discovery, so that the server's imports overlap with it. A fork
    server rather than plain ``fork``: the calling process may run threads (a
    notebook, a Dask client), and forking a threaded process can deadlock.
    """
    from multiprocessing import forkserver

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(WORKER_PRELOAD))
    forkserver.ensure_running()
    return ctx


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    # The executor has no public "terminate now"; its process table is the only handle.
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError):
            proc.kill()


def _run_local(
    tasks: Sequence[StudyTask],
    *,
    jobs: int,
    out: Path,
    config: Config,
    outputs: Sequence[str],
    on_outcome: OnOutcome,
) -> None:
    """Run `tasks` in `jobs` worker processes; rebuild the pool when a worker dies.

    At most `jobs` studies are in flight, so when a worker dies the suspects are
    exactly the studies that were running. Each suspect is then run alone: a
    study that kills its worker while alone is the cause beyond doubt.
    """
    ctx = _start_forkserver()
    max_crashes = config.batch.max_worker_crashes
    settings = config.to_dict()
    pending: deque[StudyTask] = deque(tasks)
    suspects: deque[StudyTask] = deque()
    crashes: dict[str, int] = {}
    inflight: dict[Future[StudyOutcome], StudyTask] = {}
    executor: ProcessPoolExecutor | None = None

    def submit(task: StudyTask) -> None:
        assert executor is not None
        fut = executor.submit(run_study, task, out=out, config=settings, outputs=outputs)
        inflight[fut] = task

    def collect(futures: Sequence[Future[StudyOutcome]]) -> list[StudyTask]:
        died = []
        for fut in futures:
            task = inflight.pop(fut)
            try:
                outcome = fut.result()
            except BrokenProcessPool:
                died.append(task)
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                logger.error("%s: the worker failed: %r", task.study_key, exc)
                outcome = _failed_outcome(
                    task, f"the worker failed: {type(exc).__name__}: {exc}", out=out, config=config
                )
            on_outcome(outcome)
        return died

    try:
        while pending or suspects or inflight:
            if executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=jobs, mp_context=ctx, initializer=_worker_init
                )
            if suspects:
                if not inflight:
                    submit(suspects.popleft())
            else:
                while pending and len(inflight) < jobs:
                    submit(pending.popleft())
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            died = collect(list(done))
            if not died:
                continue
            # The pool is broken: every other in-flight future fails too (or has just finished).
            wait(list(inflight))
            died += collect(list(inflight))
            executor.shutdown(wait=True, cancel_futures=True)
            executor = None
            for task in died:
                n = crashes[task.study_key] = crashes.get(task.study_key, 0) + 1
                if n >= max_crashes:
                    msg = (
                        f"the worker process died {n} times while staging this study (a crash, "
                        "os._exit or the out-of-memory killer); it was given up"
                    )
                    logger.error("%s: %s", task.study_key, msg)
                    on_outcome(_failed_outcome(task, msg, out=out, config=config))
                else:
                    logger.warning(
                        "%s: a worker process died while this study was running; "
                        "it will be staged again on its own",
                        task.study_key,
                    )
                    suspects.append(task)
    except KeyboardInterrupt:
        pending.clear()
        suspects.clear()
        if inflight and executor is not None:
            logger.warning(
                "interrupted: finishing the %d running studies (Ctrl-C again to abort them)",
                len(inflight),
            )
            try:
                wait(list(inflight))
                collect(list(inflight))
            except KeyboardInterrupt:
                _kill_workers(executor)
        raise
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _connect(scheduler: str, *, timeout_s: float) -> Any:
    """Connect to a Dask scheduler, or raise ConfigError before anything is written."""
    from ._optional import import_optional

    distributed = import_optional("distributed", feature="hostage batch --scheduler")
    try:
        return distributed.Client(scheduler, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"--scheduler {scheduler!r}: cannot connect to a Dask scheduler ({exc}); start one "
            "with `dask scheduler` and workers with `dask worker ADDRESS` (docs/batch.md)"
        ) from None


def _run_dask(
    tasks: Sequence[StudyTask],
    *,
    client: Any,
    out: Path,
    config: Config,
    outputs: Sequence[str],
    on_outcome: OnOutcome,
) -> None:
    """Run `tasks` on a Dask distributed cluster with the same per-study function.

    A worker that dies is restarted by its nanny and the study is rescheduled by
    the scheduler; after ``distributed.scheduler.allowed-failures`` deaths the
    future raises ``KilledWorker`` and the study gets an error result.
    """
    import distributed

    run_id = f"{os.getpid()}-{time.time_ns()}"
    settings = config.to_dict()
    by_key: dict[str, StudyTask] = {}
    futures = []
    for task in tasks:
        fut = client.submit(
            run_study,
            task,
            out=str(out),
            config=settings,
            outputs=tuple(outputs),
            key=f"hostage-study-{task.study_key}-{run_id}",
            pure=False,
        )
        by_key[fut.key] = task
        futures.append(fut)
    try:
        for fut in distributed.as_completed(futures, loop=client.loop):
            task = by_key[fut.key]
            try:
                outcome = fut.result()
            except distributed.KilledWorker as exc:
                msg = f"the Dask worker died while staging this study and it was given up ({exc})"
                logger.error("%s: %s", task.study_key, msg)
                outcome = _failed_outcome(task, msg, out=out, config=config)
            except Exception as exc:  # noqa: BLE001 - the study boundary, on the cluster side
                logger.error("%s: the Dask task failed: %r", task.study_key, exc)
                outcome = _failed_outcome(
                    task,
                    f"the Dask task failed: {type(exc).__name__}: {exc}",
                    out=out,
                    config=config,
                )
            on_outcome(outcome)
    except KeyboardInterrupt:
        client.cancel(futures)
        raise


# --------------------------------------------------------------------------- planning
def _check_inputs(inputs: Sequence[str | Path] | str | Path) -> list[Path]:
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    # Absolute, so that workers (on other machines, or with another working folder) find
    # the files, and sources in the results do not depend on where the batch was started.
    paths = [Path(p).resolve() for p in inputs]
    if not paths:
        raise ConfigError("batch: no INPUT given; pass one or more study folders or volume files")
    for p in paths:
        if not p.exists():
            raise ConfigError(f"INPUT {str(p)!r} does not exist; check the path")
    # An INPUT given twice, or inside another INPUT, would make discovery see its files twice.
    resolved = [p.resolve() for p in paths]
    return [
        p
        for i, (p, rp) in enumerate(zip(paths, resolved, strict=True))
        if not any(
            (other == rp and j < i) or (other != rp and other in rp.parents)
            for j, other in enumerate(resolved)
        )
    ]


def _check_jobs(jobs: int | None) -> int:
    if jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs {jobs!r} is invalid; give a whole number of processes >= 1")
    return jobs


def _check_out(out: Path, inputs: Sequence[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder (it is created if needed)")
    res = out.resolve()
    for p in inputs:
        rp = p.resolve()
        if rp == res:
            raise ConfigError(
                f"--out {str(out)!r} is also an INPUT; write the results to another folder"
            )
        if rp in res.parents:
            # Discovery would find the DICOM SEG/SR outputs of earlier runs among the inputs.
            raise ConfigError(
                f"--out {str(out)!r} is inside INPUT {str(p)!r}; write the results to a "
                "folder outside the inputs"
            )


def _discover(
    paths: Sequence[Path], *, jobs: int, notes: list[str]
) -> list[tuple[str, Any, str, str | None]]:
    """``(key hint, load source, source path, StudyInstanceUID)`` per study, in a stable order.

    An INPUT in which discovery finds no study is still passed on as one
    source, so that it gets an error result with the loader's own explanation.
    What discovery skipped is appended to `notes` (logged once the log file is open).
    """
    from .io.discover import discover

    found = discover(paths, jobs=jobs)
    notes.append(
        f"discovery: {found.num_files} files, {len(found.studies)} studies, "
        f"{found.num_non_dicom} files not DICOM, "
        f"{len(found.skipped) - found.num_non_dicom} other files skipped"
    )
    # Files that are simply not DICOM are counted above; other reasons are worth a line.
    notes.extend(f"discovery skipped {s}" for s in found.skipped if not s.endswith(": not DICOM"))
    studies: list[tuple[str, Any, str, str | None]] = [
        (s.key_hint, s, str(s.path), s.study_instance_uid) for s in found.studies
    ]
    roots = [Path(s.path).resolve() for s in found.studies]
    for p in paths:
        rp = p.resolve()
        if not any(r == rp or rp in r.parents or r in rp.parents for r in roots):
            studies.append((p.name or str(p), p, str(p), None))
    studies.sort(key=lambda s: (s[0], s[2]))
    return studies


def find_bone_labels(root: Path, *, study_key: str, source_path: str) -> Path | None:
    """Find the bone label map of one study under `root` (None when there is none).

    Looked up by the study key, then by the name of the study's folder (or of
    its volume file, without the suffix): ``ROOT/<name>`` as a folder of
    per-structure masks, or ``ROOT/<name>.nii.gz`` (any suffix of
    :data:`hostage.io.label_map.LABEL_SUFFIXES`) as one label image. This is
    the layout of ``TotalSegmentator -i cases/<name> -o ROOT/<name>`` run over
    a folder of cases.
    """
    from .io.label_map import LABEL_SUFFIXES, strip_image_suffix

    src = Path(source_path).name
    for name in dict.fromkeys(n for n in (study_key, src, strip_image_suffix(src)) if n):
        if (root / name).is_dir():
            return root / name
        for suffix in LABEL_SUFFIXES:
            if (root / f"{name}{suffix}").is_file():
                return root / f"{name}{suffix}"
    return None


def _plan(
    paths: Sequence[Path], *, jobs: int, notes: list[str], bone_labels_root: Path | None = None
) -> list[StudyTask]:
    """Discover the studies and give each a unique key (stable from run to run)."""
    crash_keys = {k for k in os.environ.get(CRASH_TEST_ENV, "").split(",") if k}
    taken: set[str] = set()
    tasks = []
    for hint, source, source_path, uid in _discover(paths, jobs=jobs, notes=notes):
        key = make_study_key(hint, taken=taken)
        taken.add(key)
        labels = missing = None
        if bone_labels_root is not None:
            found = find_bone_labels(bone_labels_root, study_key=key, source_path=source_path)
            if found is None:
                missing = (
                    f"no bone label map for this study under --bone-labels-root "
                    f"{bone_labels_root}: expected a folder or label image named after the study "
                    f"key ({key}) or the study's folder"
                )
            labels = None if found is None else str(found)
        tasks.append(
            StudyTask(
                study_key=key,
                source=source,
                source_path=source_path,
                study_instance_uid=uid,
                crash_for_test=key in crash_keys,
                bone_labels=labels,
                bone_labels_missing=missing,
            )
        )
    return tasks


def _analysis_settings(config: Any) -> Any:
    if not isinstance(config, dict):
        return None
    return {k: v for k, v in config.items() if k != "batch"}


def complete_result(
    out: Path, task: StudyTask, *, config: Config, retry_errors: bool
) -> StudyResult | None:
    """Return the existing result of `task` if it is complete for ``--resume``, else None."""
    path = out / task.study_key / "result.json"
    try:
        result = StudyResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.info(
            "%s: existing result.json is unreadable (%s); staging again", task.study_key, exc
        )
        return None
    if result.study_key != task.study_key:
        return None
    if result.status is Status.ERROR and retry_errors:
        return None
    if _analysis_settings(result.software.get("config")) != _analysis_settings(config.to_dict()):
        logger.info("%s: existing result used other settings; staging again", task.study_key)
        return None
    wanted = None if task.bone_labels is None else Path(task.bone_labels).name
    if result.status is Status.OK and result.study.bone_label_map != wanted:
        logger.info(
            "%s: existing result used another bone label map; staging again", task.study_key
        )
        return None
    return result


_SUMMARY_MODULE = "hostage.report.summary"


def _warm_import(name: str) -> None:
    """Import `name` ahead of use, in a background thread; a failure is left to the real use."""
    with contextlib.suppress(Exception):
        importlib.import_module(name)


def _write_summary(out: Path, results: Sequence[StudyResult]) -> None:
    """Write ``OUT/summary.html`` when the summary writer is available."""
    try:
        summary = importlib.import_module(_SUMMARY_MODULE)
    except ImportError:
        return
    write_summary = getattr(summary, "write_summary", None)
    if write_summary is None:
        return
    from .errors import MissingDependencyError

    try:
        write_summary(out, results)
    except MissingDependencyError as exc:
        logger.warning("summary.html skipped: %s", exc)


# --------------------------------------------------------------------------- entry point
def batch(
    inputs: Sequence[str | Path],
    *,
    out: str | Path,
    config: Config | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    outputs: Sequence[str] | None = None,
    progress: bool | None = None,
    bone_labels_root: str | Path | None = None,
) -> list[StudyResult]:
    """Stage every study found below `inputs` into `out`, in parallel, surviving bad studies.

    Parameters
    ----------
    inputs : sequence of str or Path
        Folders (searched at any depth; DICOM grouped by StudyInstanceUID, one CT
        series chosen per study) and volume files (NIfTI, NRRD, MetaImage).
    out : str or Path
        Output folder: ``OUT/<study_key>/`` per study, ``index.json``,
        ``foci.csv``, ``hostage.log`` (and ``summary.html`` when available).
    config : Config, optional
        Settings; defaults to ``Config()``.
    jobs : int, optional
        Local worker processes (default: the number of CPUs available). Also used
        for parallel header reading during discovery.
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:port``); studies run
        there instead of in local processes. `out` must be reachable from every worker.
    resume : bool
        Skip studies whose result.json is complete (see the module docstring).
    outputs : sequence of str, optional
        Per-study outputs (``json, csv, html, labels, seg, sr``); default
        ``config.batch.outputs``.
    progress : bool, optional
        True: a progress bar on a terminal, else one line per study on stderr.
        False: nothing. None (default): the bar on a terminal, else nothing.
    bone_labels_root : str or Path, optional
        A folder holding one bone label map per study (:func:`find_bone_labels`:
        named after the study key or the study's folder), used as in
        ``hostage stage --bone-labels``. A study without one gets an error
        result. On Dask it must be reachable from every worker.

    Returns
    -------
    list of StudyResult
        One per study found in `inputs` (resumed ones included), sorted by study
        key; ``status`` is ``"ok"`` or ``"error"``.

    Raises
    ------
    ConfigError
        A bad argument (missing INPUT, ``jobs < 1``, unknown output, unreachable
        scheduler, `bone_labels_root` not a folder); raised before anything is
        written.
    KeyboardInterrupt
        On Ctrl-C, after the running studies finished and the tables were rebuilt.
    """
    from .report import check_outputs

    config = Config() if config is None else config
    paths = _check_inputs(inputs)
    out = Path(out).resolve()
    _check_out(out, paths)
    outputs = check_outputs(config.batch.outputs if outputs is None else outputs)
    jobs = _check_jobs(jobs)
    labels_root = None if bone_labels_root is None else Path(bone_labels_root).resolve()
    if labels_root is not None and not labels_root.is_dir():
        raise ConfigError(f"--bone-labels-root {bone_labels_root}: no such folder")
    client = _connect(scheduler, timeout_s=config.batch.scheduler_timeout_s) if scheduler else None
    if client is None:
        _start_forkserver()  # its imports overlap with discovery
    try:
        notes: list[str] = []
        tasks = _plan(paths, jobs=jobs, notes=notes, bone_labels_root=labels_root)
        out.mkdir(parents=True, exist_ok=True)
        with log_to_file(out / LOG_NAME):
            for note in notes:
                logger.info("%s", note)
            return _batch(
                tasks,
                out=out,
                config=config,
                jobs=jobs,
                client=client,
                resume=resume,
                outputs=outputs,
                progress=progress,
            )
    finally:
        if client is not None:
            client.close()


def _batch(
    tasks: Sequence[StudyTask],
    *,
    out: Path,
    config: Config,
    jobs: int,
    client: Any,
    resume: bool,
    outputs: Sequence[str],
    progress: bool | None,
) -> list[StudyResult]:
    from .report.tables import read_results, write_tables

    t0 = time.monotonic()
    results: dict[str, StudyResult] = {}
    todo = []
    for task in tasks:
        done = (
            complete_result(
                out, task, config=config, retry_errors=config.batch.retry_errors_on_resume
            )
            if resume
            else None
        )
        if done is None:
            todo.append(task)
        else:
            results[task.study_key] = done
    backend = (
        f"Dask scheduler {client.scheduler.address}"
        if client is not None
        else f"{jobs} local processes"
    )
    logger.info(
        "batch: %d studies found, %d already complete, %d to stage on %s",
        len(tasks),
        len(results),
        len(todo),
        backend,
    )
    tty = sys.stderr.isatty()
    mode = "none" if progress is False else ("bar" if tty else ("lines" if progress else "none"))
    bar = Progress(len(todo), mode=mode)

    def on_outcome(outcome: StudyOutcome) -> None:
        bar.clear()  # log lines may go to the same terminal; the bar is redrawn below
        for name, level, message in outcome.log:
            logging.getLogger(name).log(level, "%s", message)
        result = StudyResult.from_dict(outcome.result)
        results[result.study_key] = result
        if result.status is Status.ERROR:
            logger.info("%s: error: %s", result.study_key, result.error)
        else:
            logger.info(
                "%s: ok, %d foci, resection %s (%.1f s, %.1f s CPU)",
                result.study_key,
                len(result.foci),
                None if result.resection is None else result.resection.status.value,
                outcome.elapsed_s,
                outcome.cpu_s,
            )
        bar.update(result, elapsed_s=outcome.elapsed_s)

    interrupted = False
    # summary.html needs the report modules (about 0.25 s of imports, measured): import them
    # while the studies run instead of after the last one.
    warm = threading.Thread(target=_warm_import, args=(_SUMMARY_MODULE,), daemon=True)
    warm.start()
    try:
        if client is not None:
            _run_dask(
                todo, client=client, out=out, config=config, outputs=outputs, on_outcome=on_outcome
            )
        elif todo:
            _run_local(
                todo,
                jobs=min(jobs, len(todo)),
                out=out,
                config=config,
                outputs=outputs,
                on_outcome=on_outcome,
            )
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        everything = read_results(out)  # every result in OUT, this run's and earlier ones
        write_tables(out, everything, foci_csv="csv" in outputs)
        warm.join()
        _write_summary(out, everything)
        num_err = sum(r.status is Status.ERROR for r in results.values())
        logger.info(
            "batch %s: %d of %d studies have results (%d errors) in %.1f s "
            "(coordinating process: %.1f s CPU since it started)",
            "interrupted" if interrupted else "finished",
            len(results),
            len(tasks),
            num_err,
            time.monotonic() - t0,
            time.process_time(),
        )
        if num_err:
            logger.warning("%d studies ended in error; see %s", num_err, out / "index.json")
    return [results[t.study_key] for t in sorted(tasks, key=lambda t: t.study_key)]
