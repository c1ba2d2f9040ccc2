"""Pictures of the truth lesions of one accuracy.py study, to see why a lesion is missed.

For every lesion of the study built by ``benchmarks/accuracy.py`` for SEED,
writes one PNG with the axial, coronal and sagittal slices through the
lesion's centre (bone window, pixel aspect from the spacing), and on them the
native-bone mask (red), the reported foci (green) and the lesion's truth
bounding box (yellow, dashed); with ``--foci`` also one PNG per reported focus
(its bounding box in yellow), to see what a false positive is. A lesion lying wholly inside the red outline
was taken for native bone by :func:`hostage.segment.skeleton.native_skeleton_coarse`.

Usage::

    python benchmarks/show_lesions.py SEED [--out DIR] [--cache DIR] [--foci]

Needs matplotlib (the ``report`` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import make_study

from hostage.config import Config
from hostage.segment import segment

#: Context drawn around the lesion's box (mm).
PAD_MM = 40.0


def _picture(plt, volume, seg, centre_zyx, box_zyx, title: str, path: Path) -> None:
    """Axial, coronal and sagittal slices through `centre_zyx` with the masks and `box_zyx`."""
    hu, sp = volume.hu, volume.spacing_zyx_mm
    c = np.clip(np.round(centre_zyx).astype(int), 0, np.array(hu.shape) - 1)
    lo, hi = box_zyx
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    for ax, axis, name in zip(axes, range(3), ("axial", "coronal", "sagittal"), strict=True):
        cut: list[slice | int] = [slice(None)] * 3
        cut[axis] = int(c[axis])
        sl = tuple(cut)
        r, q = (a for a in range(3) if a != axis)
        ax.imshow(np.clip(hu[sl], -200, 1600), cmap="gray", aspect=sp[r] / sp[q])
        if seg.bone_mask[sl].any():
            ax.contour(seg.bone_mask[sl], [0.5], colors="r", linewidths=0.7)
        if (seg.labels[sl] > 0).any():
            ax.contour(seg.labels[sl] > 0, [0.5], colors="lime", linewidths=0.7)
        ax.plot(
            [lo[q], hi[q], hi[q], lo[q], lo[q]],
            [lo[r], lo[r], hi[r], hi[r], lo[r]],
            "y--",
            lw=0.7,
        )
        ax.set_xlim(max(0.0, lo[q] - PAD_MM / sp[q]), min(hu.shape[q], hi[q] + PAD_MM / sp[q]))
        ax.set_ylim(min(hu.shape[r], hi[r] + PAD_MM / sp[r]), max(0.0, lo[r] - PAD_MM / sp[r]))
        ax.set_title(f"{name} slice {c[axis]}")
    fig.suptitle(f"{title}, spacing {tuple(round(s, 2) for s in sp)} mm")
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    print(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("seed", type=int)
    p.add_argument("--out", default="lesion-pictures", help="folder for the PNGs")
    p.add_argument("--cache", help="accuracy.py phantom cache folder")
    p.add_argument(
        "--foci",
        action="store_true",
        help="also one picture per reported focus, its bounding box in yellow (false positives)",
    )
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    volume, truth, _ = make_study(args.seed, quick=False, cache=args.cache)
    seg = segment(volume, config=Config().segment)
    to_index = np.linalg.inv(volume.affine_lps)  # homogeneous LPS mm -> (z, y, x) index

    def index_of(lps_mm: list[float]) -> np.ndarray:
        return (to_index @ np.append(lps_mm, 1.0))[:3]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for lesion in truth["lesions"]:
        corners = np.array([index_of(q) for q in lesion["bbox_lps_mm"]])
        title = (
            f"seed {args.seed} lesion {lesion['id']}: {lesion['stage']} {lesion['shape']} "
            f"{lesion['size_mm']:.0f} mm, attached {lesion['attached_to_bone']}"
        )
        box = (corners.min(axis=0), corners.max(axis=0))
        centre = index_of(lesion["centre_lps_mm"])
        _picture(
            plt, volume, seg, centre, box, title, out / f"seed{args.seed}-lesion{lesion['id']}.png"
        )
    if args.foci:
        for f in seg.foci:
            box = (
                np.array([s.start for s in f.bbox_zyx], dtype=float),
                np.array([s.stop - 1 for s in f.bbox_zyx], dtype=float),
            )
            centre = index_of(list(f.centroid_lps_mm))
            title = f"seed {args.seed} focus {f.id}: {f.volume_mm3:.0f} mm³"
            _picture(plt, volume, seg, centre, box, title, out / f"seed{args.seed}-focus{f.id}.png")
    print(f"{len(seg.foci)} foci reported: red = native bone, green = foci, yellow = box")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
