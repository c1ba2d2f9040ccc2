"""``hostage stage STUDY --out OUT [--config FILE] [--prior PRIOR] [--outputs LIST] [--bone-labels FILE]``.

Stages one study, writes ``OUT/<study_key>/result.json`` (plus the viewer
outputs), ``OUT/index.json`` and ``OUT/foci.csv``, and prints a short human
summary. Exit 0 when staged; 1 when the study could not be staged (an error
result.json is written); 2 for a bad command line, config or prior (nothing
written).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..result import StudyResult

__all__ = ["DISCLAIMER", "add_parser", "read_prior", "run", "summarize"]

logger = logging.getLogger(__name__)

DISCLAIMER = "Research measurement, not a medical device: not for clinical decisions."


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``stage`` subcommand."""
    p = subparsers.add_parser(
        "stage",
        help="stage every HO focus of one study and decide resection readiness",
        description=(
            "Stage every heterotopic-ossification focus of one CT study (amorphous / immature / "
            "mature) with reasons, and decide resection readiness. Writes OUT/<study_key>/"
            "result.json, OUT/index.json and OUT/foci.csv and prints a summary."
        ),
    )
    p.add_argument("study", metavar="STUDY", help="study folder (DICOM) or volume file")
    p.add_argument("--out", required=True, metavar="OUT", help="output folder")
    p.add_argument("--config", metavar="FILE", help="TOML config (any subset of the defaults)")
    p.add_argument(
        "--prior",
        metavar="PRIOR_STUDY",
        help="an earlier study of the same patient: its folder, an output folder holding "
        "result.json, or a result.json",
    )
    p.add_argument(
        "--outputs",
        metavar="LIST",
        help="comma-separated per-study outputs (json,csv,html,labels,seg,sr); default: all",
    )
    p.add_argument(
        "--bone-labels",
        metavar="FILE",
        help="label map of the bones (NIfTI/NRRD/MetaImage file, or a folder of per-structure masks "
        "as TotalSegmentator writes them), used as the native bone mask instead of the built-in "
        "skeleton; resampled onto the CT if needed",
    )
    p.set_defaults(run=run)


def read_prior(path: str | Path, *, config: Config) -> StudyResult:
    """Read (or stage) the prior study given to ``--prior``.

    Parameters
    ----------
    path : str or Path
        A result.json, a folder holding result.json, or a study to stage.
    config : Config
        Used when the prior study has to be staged.

    Returns
    -------
    StudyResult

    Raises
    ------
    InputError
        If the path does not exist, the result.json is not a successful
        ``hostage.result/1`` document, or the study cannot be read.
    """
    from ..enums import Status
    from ..errors import InputError
    from ..pipeline import stage
    from ..result import StudyResult

    path = Path(path)
    if not path.exists():
        raise InputError("--prior: no such file or folder; give the prior study", path=path)
    doc = path if path.is_file() and path.suffix == ".json" else path / "result.json"
    if doc.is_file():
        try:
            result = StudyResult.from_dict(json.loads(doc.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"--prior: not a readable hostage result ({exc})", path=doc, code="bad_prior"
            ) from None
        if result.status is not Status.OK:
            raise InputError(
                f"--prior: the prior result has status {result.status.value!r} ({result.error}); "
                "give a prior study that was staged successfully",
                path=doc,
                code="bad_prior",
            )
        return result
    return stage(path, config=config)


def summarize(result: StudyResult) -> str:
    """Return a short human summary: one line per focus, the verdict with its reasons, a disclaimer.

    Parameters
    ----------
    result : StudyResult

    Returns
    -------
    str
    """
    lines = []
    if result.error is not None:
        lines.append(f"study {result.study_key}: could not be staged: {result.error}")
        lines.append(DISCLAIMER)
        return "\n".join(lines)
    n = len(result.foci)
    lines.append(f"study {result.study_key}: {n} " + ("focus" if n == 1 else "foci"))
    for f in result.foci:
        x, y, z = f.centroid_lps_mm
        top = f.reasons[0] if f.reasons else ""
        touches = result.bone_label_text(f)
        lines.append(
            f"  focus {f.id:>2}  {f.stage.value:<9}  confidence {f.confidence:.2f}  "
            f"{f.volume_mm3:>8.0f} mm³  at LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm  {top}"
            + (f"  [touches {touches.replace(';', ', ')}]" if touches else "")
        )
    if result.resection is not None:
        lines.append(f"resection: {result.resection.status.value}")
        lines += [f"  - {r}" for r in result.resection.reasons]
    lines += [f"warning: {w}" for w in result.warnings]
    lines.append(DISCLAIMER)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``hostage stage``; return the exit status (0, 1 or 2)."""
    from ..config import load_config
    from ..errors import HostageError, InputError
    from ..io.write import study_key
    from ..pipeline import stage_to_folder
    from ..report import check_outputs
    from ..report.tables import write_tables
    from ..result import StudyResult

    config = load_config(args.config)  # ConfigError -> exit 2 in main, nothing written
    outputs = None if args.outputs is None else check_outputs(args.outputs.split(","))
    prior = None
    if args.prior is not None:
        try:
            prior = read_prior(args.prior, config=config)
        except InputError as exc:
            print(f"hostage: bad --prior: {exc}", file=sys.stderr)
            return 2
    bone_labels = None if args.bone_labels is None else Path(args.bone_labels)
    if bone_labels is not None and not bone_labels.exists():
        print(f"hostage: bad --bone-labels: {bone_labels}: no such file or folder", file=sys.stderr)
        return 2
    out = Path(args.out)
    source = Path(args.study)
    try:
        result = stage_to_folder(
            source, out=out, config=config, prior=prior, outputs=outputs, bone_labels=bone_labels
        )
        status = 0
    except Exception as exc:  # the study boundary: every failure becomes an error result
        if not isinstance(exc, HostageError):
            logger.error("staging %s failed", source, exc_info=exc)
        key = study_key(source.name or "study")
        result = StudyResult.from_error(
            f"{type(exc).__name__}: {exc}" if not isinstance(exc, HostageError) else str(exc),
            study_key=key,
            source=source,
            config=config,
        )
        from ..io.write import atomic_write_json

        atomic_write_json(out / key / "result.json", result.to_dict())
        print(f"hostage: error: {result.error}", file=sys.stderr)
        status = 1
    write_tables(out, [result])
    print(summarize(result))
    if status == 0:
        print(f"results: {out / result.study_key / 'result.json'}")
    return status
