"""``hostage phantom``: write a synthetic CT study with ground truth (a thin shell over the library)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``phantom`` subcommand."""
    p = subparsers.add_parser(
        "phantom",
        help="write a synthetic CT study of the hips with HO of known stage, plus truth.json",
        description=(
            "Write a synthetic CT DICOM series (one file per slice) of a paralysed patient's "
            "hips and thighs with heterotopic ossification of known stage into OUT, plus "
            "OUT/truth.json (per lesion: stage, centre and bounding box in LPS mm, size, bone "
            "attachment; the expected resection verdict). Deterministic for a seed (UIDs are "
            "fresh). Exit status: 0 written, 2 bad arguments (nothing written)."
        ),
    )
    p.add_argument("out", metavar="OUT", help="output folder (created)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=(40, 160, 160),
        metavar=("Z", "Y", "X"),
        help="slices, rows, columns (default 40 160 160)",
    )
    p.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        default=(2.5, 0.8, 0.8),
        metavar=("Z", "Y", "X"),
        help="voxel spacing in mm, slice then row then column (default 2.5 0.8 0.8)",
    )
    p.add_argument(
        "--thickness",
        type=float,
        metavar="MM",
        help="slice thickness in mm (default: the slice spacing)",
    )
    p.add_argument("--noise", type=float, default=20.0, metavar="HU", help="noise SD (default 20)")
    p.add_argument(
        "--noise-correlation",
        type=float,
        default=0.5,
        metavar="F",
        help="share of correlated noise, 0-1 (default 0.5)",
    )
    p.add_argument(
        "--psf", type=float, default=0.7, metavar="MM", help="point-spread FWHM in mm (default 0.7)"
    )
    p.add_argument(
        "--lesions",
        metavar="LIST",
        help="comma-separated stages amorphous,immature,mature,atypical, each optionally with "
        ":SIZE_MM, :SHAPE (ellipsoid/lobulated/strip/irregular), :SITE (iliopsoas/gluteal/"
        "abductor/adductor/vastus), :attached or :apart, e.g. mature:30:lobulated:apart; "
        "or a number of random lesions, or 'none' (default: 2-4 of mixed stages)",
    )
    p.add_argument(
        "--distractors",
        type=int,
        metavar="N",
        help="number of look-alikes (phleboliths, vascular calcification); default 1-4",
    )
    p.add_argument(
        "--layout",
        choices=("auto", "pelvis", "thigh"),
        default="auto",
        help="both hips, one hip and thigh, or chosen by field of view (default auto)",
    )
    p.add_argument(
        "--unsigned",
        action="store_true",
        help="store uint16 pixels (default int16); sets the intercept to -1024 unless given",
    )
    p.add_argument("--slope", type=float, default=1.0, help="RescaleSlope (default 1)")
    p.add_argument(
        "--intercept", type=float, help="RescaleIntercept (default 0, or -1024 unsigned)"
    )
    p.add_argument("--compress", choices=("rle",), help="RLE Lossless transfer syntax")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``hostage phantom``; return the exit status."""
    from ..phantom import LesionSpec, make_phantom, parse_lesion_specs, write_phantom

    intercept = (
        args.intercept if args.intercept is not None else (-1024.0 if args.unsigned else 0.0)
    )
    try:
        lesions: int | list[LesionSpec] | None
        if args.lesions is None:
            lesions = None
        elif args.lesions.strip().isdigit():
            lesions = int(args.lesions)
        else:
            lesions = parse_lesion_specs(args.lesions)
        phantom = make_phantom(
            tuple(args.shape),
            tuple(args.spacing),
            rng=args.seed,
            lesions=lesions,
            distractors=True if args.distractors is None else args.distractors,
            noise_hu=args.noise,
            noise_correlation=args.noise_correlation,
            psf_fwhm_mm=args.psf,
            slice_thickness_mm=args.thickness,
            layout=args.layout,
        )
        out = write_phantom(
            phantom,
            args.out,
            signed=not args.unsigned,
            rescale_slope=args.slope,
            rescale_intercept=intercept,
            compress=args.compress,
        )
    except ValueError as exc:
        print(f"hostage phantom: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    t = phantom.truth
    stages = ", ".join(
        f"{les.stage.value}{' (atypical)' if les.central_first else ''} {les.size_mm:.0f} mm"
        for les in t.lesions
    )
    z, y, x = t.shape_zyx
    print(
        f"wrote {z} slices ({z}x{y}x{x}, {t.layout}) and truth.json to {out}: "
        f"{len(t.lesions)} lesions [{stages}], {len(t.distractors)} look-alikes, "
        f"expected resection {t.expected_resection.value}, seed {t.seed}"
    )
    return EXIT_OK
