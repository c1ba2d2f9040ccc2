"""Outputs of a staged study: result.json, tables, HTML report, label map, DICOM SEG and SR.

:func:`write_study_outputs` is the one place that decides which files a study
folder gets. Each output is a plain function ``writer(ctx) -> list[Path]``
registered in :data:`WRITERS`; an output whose optional dependency is missing is
skipped and a warning is added to result.json (CONTRACT.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MissingDependencyError, did_you_mean
from ..io.write import atomic_write_json
from ..result import StudyResult

if TYPE_CHECKING:
    from ..io.volume import Volume
    from ..segment import Segmentation

__all__ = ["OUTPUTS", "WRITERS", "StudyOutputs", "check_outputs", "write_study_outputs"]

logger = logging.getLogger(__name__)

#: Every per-study output name, in the order they are written. ``csv`` is the batch-level
#: foci.csv (see :mod:`hostage.report.tables`); ``json`` is result.json and is always written.
OUTPUTS: tuple[str, ...] = ("json", "csv", "html", "labels", "seg", "sr")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StudyOutputs:
    """Everything a per-study writer may use.

    Attributes
    ----------
    result : StudyResult
    volume : Volume or None
        None for error results.
    seg : Segmentation or None
        None for error results.
    out_dir : Path
        ``OUT/<study_key>/``.
    dicom_files : tuple of Path
        The source DICOM files of the staged series (for SEG/SR references), if any.
    """

    result: StudyResult
    volume: Volume | None
    seg: Segmentation | None
    out_dir: Path
    dicom_files: tuple[Path, ...] = ()


Writer = Callable[[StudyOutputs], list[Path]]


@functools.cache
def _writers() -> dict[str, Writer]:
    """Return :data:`WRITERS`, importing the viewer writers on first use.

    They pull in the segmentation, figure and DICOM code; the batch coordinator
    and ``import hostage`` only need the tables, so the import waits until a
    study's files are written (or ``WRITERS`` is read).
    """
    from .dicom_seg import write_seg
    from .dicom_sr import write_sr
    from .html import write_report
    from .labels import write_label_map

    return {"html": write_report, "labels": write_label_map, "seg": write_seg, "sr": write_sr}


def __getattr__(name: str) -> Any:
    # WRITERS: output name -> writer (html, labels, seg, sr), one dict built on first access.
    if name == "WRITERS":
        return _writers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_outputs(outputs: Sequence[str]) -> tuple[str, ...]:
    """Validate output names (``--outputs json,csv,...``).

    Raises
    ------
    ConfigError
        For an unknown name, with a did-you-mean suggestion.
    """
    for name in outputs:
        if name not in OUTPUTS:
            raise ConfigError(
                f"unknown output {name!r}{did_you_mean(name, OUTPUTS)}; "
                f"choose from {', '.join(OUTPUTS)}"
            )
    return tuple(dict.fromkeys(outputs))


def write_study_outputs(ctx: StudyOutputs, *, outputs: Sequence[str] = OUTPUTS) -> StudyResult:
    """Write the study's files into ``ctx.out_dir``; result.json is written last.

    Parameters
    ----------
    ctx : StudyOutputs
    outputs : sequence of str
        Names from :data:`OUTPUTS`. result.json is always written.

    Returns
    -------
    StudyResult
        The result as written (with a warning for each output skipped because an
        optional dependency is missing).
    """
    outputs = check_outputs(outputs)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    skipped: list[str] = []
    if ctx.volume is not None and ctx.seg is not None:
        # report.html last: it links the viewer files that were written
        for name in sorted(outputs, key=lambda n: n == "html"):
            if name in ("json", "csv"):
                continue  # result.json is written below; foci.csv is a batch table
            writer = _writers().get(name)
            if writer is None:
                continue
            try:
                writer(ctx)
            except MissingDependencyError as exc:
                msg = f"output {name!r} skipped: {exc}"
                logger.warning("%s: %s", ctx.result.study_key, msg)
                skipped.append(msg)
    result = ctx.result
    if skipped:
        result = replace(result, warnings=(*result.warnings, *skipped))
    # result.json last: its presence marks the study folder as complete (used by --resume).
    atomic_write_json(ctx.out_dir / "result.json", result.to_dict())
    return result
