"""``hostage batch``: stage every study below some folders (a thin shell over :func:`hostage.batch`)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention for Ctrl-C


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``batch`` subcommand."""
    p = subparsers.add_parser(
        "batch",
        help="stage every study below one or more folders, in parallel",
        description=(
            "Stage every study found below INPUT (DICOM of any name and depth, grouped by "
            "StudyInstanceUID; NIfTI/NRRD/MetaImage files) into OUT/<study_key>/, then write "
            "OUT/index.json, OUT/foci.csv and OUT/hostage.log. Exit status: 0 all studies "
            "staged, 1 at least one study ended in error, 2 bad command line or configuration "
            "(nothing written), 130 interrupted (Ctrl-C; what was written is kept, rerun with "
            "--resume)."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="study folders or volume files")
    p.add_argument("--out", required=True, metavar="OUT", help="output folder")
    p.add_argument("--config", metavar="FILE", help="TOML settings (see configs/default.toml)")
    p.add_argument(
        "--jobs", type=int, metavar="N", help="local worker processes (default: number of CPUs)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask distributed scheduler, e.g. tcp://host:8786 (needs hostage[dask])",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip studies whose result.json is complete (error results are retried)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output, errors only")
    p.add_argument(
        "--outputs",
        metavar="LIST",
        help="comma-separated per-study outputs: json,csv,html,labels,seg,sr "
        "(default: [batch] outputs of the config)",
    )
    p.add_argument(
        "--bone-labels-root",
        metavar="DIR",
        help="folder of bone label maps, one per study named after its study key or folder "
        "(DIR/<name>/ of per-structure masks, or DIR/<name>.nii.gz), used as --bone-labels of "
        "hostage stage; a study without one ends in error",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``hostage batch``; return the exit status."""
    from ..batch import batch
    from ..config import load_config
    from ..enums import Status

    config = load_config(args.config)
    outputs = None if args.outputs is None else [s.strip() for s in args.outputs.split(",")]
    try:
        results = batch(
            args.inputs,
            out=args.out,
            config=config,
            jobs=args.jobs,
            scheduler=args.scheduler,
            resume=args.resume,
            outputs=outputs,
            progress=not args.quiet,
            bone_labels_root=args.bone_labels_root,
        )
    except KeyboardInterrupt:
        print("hostage: interrupted; rerun with --resume to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if any(r.status is Status.ERROR for r in results) else 0
