"""Outputs of a staged study: result.json, tables, HTML report, label map, DICOM SEG and SR.

:func:`write_study_outputs` is the one place that decides which files a study
folder gets. Each output is a plain function ``writer(ctx) -> list[Path]``
registered in :data:`WRITERS`; an output whose optional dependency is missing is
skipped and a warning is added to result.json (CONTRACT.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ConfigError, MissingDependencyError, did_you_mean
from ..io.volume import Volume
from ..io.write import atomic_write_json
from ..result import StudyResult
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

#: Output name -> writer. Writers for html, labels, seg and sr register here as they land.
WRITERS: dict[str, Writer] = {}


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
            writer = WRITERS.get(name)
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


def _register_viewer_writers() -> None:
    from .dicom_seg import write_seg
    from .dicom_sr import write_sr
    from .html import write_report
    from .labels import write_label_map

    WRITERS["html"] = write_report
    WRITERS["labels"] = write_label_map
    WRITERS["seg"] = write_seg
    WRITERS["sr"] = write_sr


_register_viewer_writers()
