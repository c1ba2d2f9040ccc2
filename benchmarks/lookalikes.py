"""Contrast-filled bladder and bowel: look-alikes of HO on a phantom pelvis.

Usage::

    python benchmarks/lookalikes.py [--seed 3] [--mode bladder|bowel|both|none]

A pelvis phantom (``make_phantom(..., layout="pelvis")``, one mature lesion) is
changed in memory: ``bladder`` fills the dependent half of its bladder with 650
HU of excreted contrast (a fluid-fluid level), ``bowel`` adds a loop of bowel
above the bladder holding 380 HU of oral contrast with gas in its non-dependent
part. The study is staged and every focus printed with its stage, atypical flag
and first reason, then the verdict. With only the mature lesion the verdict
is ``ready``; a pool of contrast or bowel content must not make it ``ready``
(or ``not_ready``): each is flagged atypical (``lookalike_*`` features,
docs/classifier.md) and the verdict is ``indeterminate``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy import ndimage as ndi


def build(seed: int, mode: str):
    from hostage.io.volume import Volume
    from hostage.phantom import LesionSpec, make_phantom

    ph = make_phantom(
        (70, 340, 340),
        (2.0, 1.0, 1.0),
        rng=seed,
        lesions=[LesionSpec(stage="mature")],
        layout="pelvis",
        noise_hu=20,
    )
    hu = ph.volume.hu.astype(np.float32)
    rng = np.random.default_rng(seed)
    # the bladder: the largest compact near-water (about 10 HU) region near the midline
    s = ndi.gaussian_filter(hu, (0.75, 1.5, 1.5))
    lab, n = ndi.label(ndi.binary_erosion((s > -10) & (s < 22), iterations=2))
    sizes = ndi.sum(np.ones_like(hu), lab, range(1, n + 1))
    x_mid = hu.shape[2] / 2
    bladder = None
    for k in np.argsort(-sizes) + 1:
        if sizes[k - 1] < 5000:
            break
        zz, yy, xx = np.nonzero(lab == k)
        if abs(xx.mean() - x_mid) < 25 and max(np.ptp(zz) * 2.0, np.ptp(yy), np.ptp(xx)) < 110:
            bladder = ndi.binary_dilation(lab == k, iterations=1)
            break
    if bladder is None:
        raise SystemExit(f"seed {seed}: no bladder found in this phantom; try another seed")
    zz, yy, xx = np.nonzero(bladder)
    if mode in ("bladder", "both"):
        dep = bladder.copy()
        dep[:, : int(np.percentile(yy, 45)), :] = False  # contrast layers posteriorly (supine)
        hu[dep] = 650 + rng.normal(0, 20, int(dep.sum()))
    if mode in ("bowel", "both"):
        from scipy.spatial import cKDTree

        cz, cy, cx = int(zz.max()) + 6, int(yy.mean()) - 10, int(xx.mean())
        t = np.linspace(0, 2 * np.pi, 400)
        path = np.stack([cz + 4 * np.sin(2 * t), cy + 25 * np.sin(t), cx + 35 * np.cos(t)], 1)
        box = (
            slice(max(cz - 12, 0), min(cz + 12, hu.shape[0])),
            slice(max(cy - 40, 0), cy + 40),
            slice(cx - 50, cx + 50),
        )
        zg, yg, xg = np.mgrid[box]
        pts = np.stack([zg * 2.0, yg * 1.0, xg * 1.0], -1)
        d = cKDTree(path * np.array([2.0, 1.0, 1.0])).query(pts.reshape(-1, 3))[0]
        d = d.reshape(pts.shape[:3])
        sub = hu[box]
        sub[d < 9] = 60.0  # the bowel wall
        lumen = d < 7
        sub[lumen] = 380 + rng.normal(0, 20, int(lumen.sum()))
        sub[lumen & (pts[..., 1] < cy - 20)] = -950  # gas in the non-dependent part
        hu[box] = sub
    v = ph.volume
    return Volume(
        hu=np.round(hu).astype(np.int16),
        spacing_zyx_mm=v.spacing_zyx_mm,
        origin_lps_mm=v.origin_lps_mm,
        direction_lps=v.direction_lps,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--mode", choices=("bladder", "bowel", "both", "none"), default="both")
    args = p.parse_args(argv)
    print("command: python benchmarks/lookalikes.py " + " ".join(sys.argv[1:]))
    from hostage.pipeline import analyse

    result = analyse(build(args.seed, args.mode)).result
    for f in result.foci:
        flag = " atypical" if f.atypical else ""
        print(f"focus {f.id}: {f.stage.value}{flag}, {f.volume_mm3:.0f} mm3: {f.reasons[0]}")
    assert result.resection is not None
    print(f"verdict: {result.resection.status.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
