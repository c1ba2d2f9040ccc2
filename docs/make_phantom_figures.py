"""Make the figures of docs/phantoms.md from seeded phantoms.

Run from the repository root (needs matplotlib, the ``report`` extra):

    python docs/make_phantom_figures.py

Writes docs/figures/phantom_overview.png, phantom_stages.png and phantom_scanner.png.
Everything is seeded, so the figures are reproducible.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from hostage.phantom import LesionSpec, Phantom, make_phantom

OUT = Path(__file__).resolve().parent / "figures"
BONE = {"vmin": 500 - 1000, "vmax": 500 + 1000}  # W 2000 / L 500
SOFT = {"vmin": 40 - 200, "vmax": 40 + 200}  # W 400 / L 40


def _crop_views(ph: Phantom, lesion_id: int, margin_mm: float = 8.0):
    """Axial, coronal and sagittal slices through the centre of one lesion, cropped."""
    hu = np.asarray(ph.volume.hu)
    les = ph.truth.lesions[lesion_id - 1]
    sp = np.asarray(ph.volume.spacing_zyx_mm)
    c = np.round(ph.volume.lps_mm_to_index(les.centre_lps_mm)).astype(int)
    lo = ph.volume.lps_mm_to_index(les.bbox_lps_mm[0])
    hi = ph.volume.lps_mm_to_index(les.bbox_lps_mm[1])
    m = margin_mm / sp
    a = np.maximum(np.floor(np.minimum(lo, hi) - m).astype(int), 0)
    b = np.minimum(np.ceil(np.maximum(lo, hi) + m).astype(int) + 1, hu.shape)
    z, y, x = c
    axial = hu[z, a[1] : b[1], a[2] : b[2]]
    coronal = hu[a[0] : b[0], y, a[2] : b[2]][::-1]
    sagittal = hu[a[0] : b[0], a[1] : b[1], x][::-1]
    aspect_zx = sp[0] / sp[2]
    aspect_zy = sp[0] / sp[1]
    return (axial, 1.0), (coronal, aspect_zx), (sagittal, aspect_zy)


def _outline(ax, mask, aspect):
    ax.contour(mask, [0.5], colors="tab:red", linewidths=0.6)


def stages_figure() -> Path:
    rows = [
        ("amorphous", LesionSpec(stage="amorphous", size_mm=26.0, shape="irregular")),
        ("immature", LesionSpec(stage="immature", size_mm=26.0, shape="ellipsoid")),
        ("mature", LesionSpec(stage="mature", size_mm=26.0, shape="lobulated")),
        ("mature, attached", LesionSpec(stage="mature", size_mm=22.0, attached_to_bone=True)),
        (
            "atypical (central-first)",
            LesionSpec(stage="mature", size_mm=22.0, shape="ellipsoid", central_first=True),
        ),
    ]
    fig, axs = plt.subplots(len(rows), 4, figsize=(12, 3.1 * len(rows)))
    for r, (name, spec) in enumerate(rows):
        ph = make_phantom(
            (90, 256, 256), (0.8, 0.6, 0.6), rng=100 + r, lesions=[spec], distractors=0,
            noise_hu=15.0,
        )  # fmt: skip
        les = ph.truth.lesions[0]
        views = _crop_views(ph, 1)
        labels = np.asarray(ph.lesion_labels) == 1
        lab_views = _crop_views(
            Phantom(
                volume=ph.volume.__class__(
                    hu=labels.astype(np.int16), spacing_zyx_mm=ph.volume.spacing_zyx_mm,
                    origin_lps_mm=ph.volume.origin_lps_mm,
                ),
                truth=ph.truth, lesion_labels=ph.lesion_labels, bone_mask=ph.bone_mask,
            ),
            1,
        )  # fmt: skip
        for col, ((img, aspect), (_lab, _), title) in enumerate(
            zip(views, lab_views, ("axial", "coronal", "sagittal"), strict=True)
        ):
            ax = axs[r, col]
            ax.imshow(img, cmap="gray", aspect=aspect, interpolation="nearest", **BONE)
            ax.set_title(f"{name}: {title}" if col == 0 else title, fontsize=9)
            ax.axis("off")
        ax = axs[r, 3]
        ax.imshow(views[0][0], cmap="gray", interpolation="nearest", **BONE)
        _outline(ax, lab_views[0][0], 1.0)
        ax.set_title(
            f"truth outline; {les.size_mm:.0f} mm, {les.shape},\n"
            f"rim {les.rim_completeness:.0%}, bone gap {les.bone_distance_mm:.1f} mm",
            fontsize=8,
        )
        ax.axis("off")
    fig.suptitle(
        "Phantom HO lesions by stage (0.6 x 0.6 x 0.8 mm, noise 15 HU, bone window W2000/L500)",
        fontsize=11,
    )
    fig.tight_layout()
    path = OUT / "phantom_stages.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def overview_figure() -> Path:
    ph = make_phantom(
        (48, 512, 512), (5.0, 0.78, 0.78), rng=7,
        lesions=[
            LesionSpec(stage="mature", size_mm=35.0, site="gluteal"),
            LesionSpec(stage="immature", size_mm=30.0, site="iliopsoas"),
            LesionSpec(stage="amorphous", size_mm=30.0, site="adductor"),
        ],
    )  # fmt: skip
    hu = np.asarray(ph.volume.hu)
    labels = np.asarray(ph.lesion_labels)
    zs = [int(np.median(np.nonzero(labels == les.id)[0])) for les in ph.truth.lesions]
    fig, axs = plt.subplots(2, 3, figsize=(15, 9.5))
    for col, (z, les) in enumerate(zip(zs, ph.truth.lesions, strict=True)):
        for row, (win, wname) in enumerate(((SOFT, "W400/L40"), (BONE, "W2000/L500"))):
            ax = axs[row, col]
            ax.imshow(hu[z], cmap="gray", interpolation="nearest", **win)
            if row == 1:
                ax.contour(labels[z] == les.id, [0.5], colors="tab:red", linewidths=0.6)
            ax.set_title(f"slice {z}, {wname}: {les.stage.value} lesion ({les.site})", fontsize=9)
            ax.axis("off")
    fig.suptitle(
        f"Pelvis layout, 512 x 512 x 48, 0.78 x 0.78 x 5 mm, seed 7 "
        f"(expected resection: {ph.truth.expected_resection.value}); red: truth outline",
        fontsize=11,
    )
    fig.tight_layout()
    path = OUT / "phantom_overview.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def scanner_figure() -> Path:
    spec = [LesionSpec(stage="mature", size_mm=24.0, shape="ellipsoid")]
    settings = [
        ("0.6 mm, 0.5 mm slices, PSF 0.5, noise 10", (0.5, 0.6, 0.6), {"psf_fwhm_mm": 0.5, "noise_hu": 10.0}),
        ("0.8 mm, 2.5 mm slices, PSF 0.8, noise 25", (2.5, 0.8, 0.8), {"psf_fwhm_mm": 0.8, "noise_hu": 25.0}),
        ("0.98 mm, 5 mm slices, PSF 1.0, noise 45", (5.0, 0.98, 0.98), {"psf_fwhm_mm": 1.0, "noise_hu": 45.0, "noise_correlation": 0.8}),
    ]  # fmt: skip
    fig, axs = plt.subplots(2, len(settings), figsize=(12, 8))
    for col, (title, spacing, kw) in enumerate(settings):
        fov = 150.0
        shape = (max(8, round(60 / spacing[0])), int(fov / spacing[1]), int(fov / spacing[2]))
        ph = make_phantom(shape, spacing, rng=3, lesions=spec, distractors=0, **kw)
        (axial, _), (coronal, aspect), _ = _crop_views(ph, 1, margin_mm=10.0)
        axs[0, col].imshow(axial, cmap="gray", interpolation="nearest", **BONE)
        axs[0, col].set_title(title, fontsize=9)
        axs[1, col].imshow(coronal, cmap="gray", aspect=aspect, interpolation="nearest", **BONE)
        axs[1, col].set_title("coronal", fontsize=9)
        for ax in axs[:, col]:
            ax.axis("off")
    fig.suptitle("The same kind of mature lesion under three scanner settings (W2000/L500)")
    fig.tight_layout()
    path = OUT / "phantom_scanner.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for make in (stages_figure, overview_figure, scanner_figure):
        t0 = time.perf_counter()
        path = make()
        print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
