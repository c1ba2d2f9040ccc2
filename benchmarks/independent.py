"""Accuracy on phantoms built by a second, independent generator (not ``hostage.phantom``).

``benchmarks/accuracy.py`` scores hostage on the phantoms of ``hostage.phantom``,
the generator its features were developed on. This script builds its studies
with different code and different modelling choices, so that a feature or a
threshold that only fits our own generator shows up as a drop here:

* anatomy: one thigh (an elliptical body with a subcutaneous fat layer, muscle
  with fatty septa, a femoral shaft with a thick cortex and fatty marrow, tilted
  along z), a CT table plate under it, and in some studies a contrast-filled
  femoral artery (a tube of 180-320 HU) that is not HO;
* lesions: star-shaped ellipsoids (radius modulated by random low-order
  harmonics), filled by stage from DOMAIN.md's table with *other* recipes than
  ``hostage.phantom``: mature = a cortical shell (1.2-3 mm, 1000-1600 HU) around
  thresholded Gaussian-noise trabeculae (450-900 HU) in fatty marrow (-80 to
  20 HU); immature = a fainter, looser network (450-800 HU, bone fraction
  0.16-0.27) in an osteoid haze (150-260 HU) with a cap-shaped partial rim on
  25-60 % of the surface and a soft margin; amorphous = a cloud of punctate and
  patchy mineral (specks 300-550 HU over a 110-220 HU haze) fading into muscle
  over 2-6 mm;
* attachment: about a third of the lesions are pushed into the femoral cortex
  (overlapping it by 1-4 mm), the rest keep a 2-25 mm gap;
* look-alikes: phleboliths (round, 2.5-5 mm, 300-900 HU);
* scanner: the fine model (at most 0.5 mm along z and half a pixel in-plane) is
  blurred by a Gaussian point spread (FWHM 0.5-1.2 mm), box-averaged over the
  slice thickness and the pixel, given correlated noise (8-40 HU), rounded and
  written with pydicom as single-frame CT files in random order under random
  names (unsigned pixels with intercept -1024, or signed with intercept 0);
  ``--kernel-gain G`` reconstructs with a sharper (bone) kernel instead: the
  slices are unsharp-masked in-plane, ``hu + G * (hu - gaussian(hu, 0.8 mm))``,
  which adds the overshoot at edges and the stronger noise such kernels give.

Every study is then staged through the public API, ``hostage.stage(folder)``,
and scored like accuracy.py: lesions of 6 mm or more matched to foci (centroid
inside the lesion's box or the lesion centre inside the focus box, 2 mm slack),
false positives, the stage confusion matrix and the resection status (all
mature: ``ready``; any other stage: ``not_ready``; none: ``no_foci``).

Usage::

    python benchmarks/independent.py [--seeds 30] [--first-seed 0] [--jobs 2] [--keep DIR]
        [--config FILE] [--dump FILE] [--kernel-gain G]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage as ndi

STAGES = ("amorphous", "immature", "mature")
MIN_LESION_MM = 6.0


# --------------------------------------------------------------------------- scenario
def scenario(seed: int) -> dict:
    rng = np.random.default_rng([seed, 20261122])
    pixel = float(rng.uniform(0.6, 1.0))
    slice_mm = float(rng.choice([0.625, 1.0, 1.5, 2.0, 3.0]))
    fov = float(rng.uniform(170.0, 210.0))
    n_xy = round(fov / pixel)
    extent_z = float(rng.uniform(70.0, 110.0))
    kind = str(rng.choice(["mixed", "mature", "single", "none"], p=[0.45, 0.3, 0.17, 0.08]))
    return {
        "seed": seed,
        "pixel_mm": pixel,
        "slice_mm": slice_mm,
        "shape_zyx": (round(extent_z / slice_mm), n_xy, n_xy),
        "noise_hu": float(rng.uniform(8.0, 40.0)),
        "psf_fwhm_mm": float(rng.uniform(0.5, 1.2)),
        "kind": kind,
        "num": int(rng.integers(1, 5)),
        "artery": bool(rng.random() < 0.35),
        "signed": bool(rng.random() < 0.4),
    }


# --------------------------------------------------------------------------- model
@dataclass
class Lesion:
    stage: str
    centre_mm: np.ndarray  # (z, y, x) mm in the fine frame
    radii_mm: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3)
    harmonics: list[tuple[np.ndarray, float]]
    attached: bool
    size_mm: float = 0.0
    params: dict = field(default_factory=dict)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def _noise_field(
    shape: tuple[int, ...], sigma_vox: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    f = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=sigma_vox)
    return (f - f.mean()) / (f.std() + 1e-9)


def _lesion_box(les: Lesion, fine: np.ndarray, shape: tuple[int, ...], pad_mm: float):
    reach = float(les.radii_mm.max()) * 1.35 + pad_mm
    lo = np.maximum(np.floor((les.centre_mm - reach) / fine).astype(int), 0)
    hi = np.minimum(np.ceil((les.centre_mm + reach) / fine).astype(int) + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _star_distance(les: Lesion, box: tuple[slice, ...], fine: np.ndarray) -> np.ndarray:
    """Signed distance-like field (mm, negative inside) of a star-shaped ellipsoid."""
    axes = [(np.arange(s.start, s.stop) + 0.5) * d for s, d in zip(box, fine, strict=True)]
    z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
    p = np.stack(np.broadcast_arrays(z, y, x), axis=-1) - les.centre_mm
    local = p @ les.rotation
    n = np.linalg.norm(local / les.radii_mm, axis=-1)
    unit = local / (np.linalg.norm(local, axis=-1, keepdims=True) + 1e-9)
    scale = np.ones(n.shape, dtype=float)
    for direction, amp in les.harmonics:
        scale += amp * np.cos(3.0 * (unit @ direction))
    r_mean = float(np.mean(les.radii_mm))
    return ((n / scale) - 1.0) * r_mean


def _fill(
    les: Lesion,
    box: tuple[slice, ...],
    fine: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(HU values, weight 0..1) of one lesion over its box."""
    d = _star_distance(les, box, fine)
    shape = d.shape
    p = les.params
    if les.stage == "mature":
        inside = d <= 0
        shell = inside & (d > -p["cortex_mm"])
        net = _noise_field(shape, 0.55 / fine, rng)
        trab = net > p["trab_threshold"]
        hu = np.where(trab, p["trab_hu"], p["marrow_hu"]).astype(np.float32)
        hu[shell] = p["cortex_hu"]
        weight = inside.astype(np.float32)
    elif les.stage == "immature":
        edge = np.clip(0.5 - d / p["fade_mm"], 0.0, 1.0)  # soft margin
        net = _noise_field(shape, 0.8 / fine, rng)
        strands = net > p["net_threshold"]
        hu = np.where(strands, p["net_hu"], p["haze_hu"]).astype(np.float32)
        axes = [(np.arange(s.start, s.stop) + 0.5) * f for s, f in zip(box, fine, strict=True)]
        z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
        v = np.stack(np.broadcast_arrays(z, y, x), axis=-1) - les.centre_mm
        cos = (v @ p["cap_dir"]) / (np.linalg.norm(v, axis=-1) + 1e-9)
        cap = (cos > p["cap_cos"]) & (d <= 0) & (d > -p["rim_mm"])
        hu[cap] = p["rim_hu"]
        weight = edge.astype(np.float32)
    else:  # amorphous
        edge = np.clip(1.0 - (d + p["fade_mm"]) / (2 * p["fade_mm"]), 0.0, 1.0) ** 1.5
        haze = p["haze_hu"] + 40.0 * _noise_field(shape, 1.5 / fine, rng)
        specks = _noise_field(shape, 0.5 / fine, rng)
        hu = np.where(specks > p["speck_threshold"], p["speck_hu"], haze).astype(np.float32)
        weight = edge.astype(np.float32)
    return hu, weight


def _draw_lesion(stage: str, rng: np.random.Generator) -> Lesion:
    size = float(rng.uniform(8.0, 34.0))
    radii = size / 2 * rng.uniform(0.7, 1.0, size=3)
    radii[rng.integers(3)] = size / 2
    harm = [(_unit(rng), float(rng.uniform(0.0, 0.12))) for _ in range(2)]
    params: dict = {}
    if stage == "mature":
        params = {
            "cortex_mm": float(rng.uniform(1.2, 3.0)),
            "cortex_hu": float(rng.uniform(1000.0, 1600.0)),
            "trab_hu": float(rng.uniform(450.0, 900.0)),
            "marrow_hu": float(rng.uniform(-80.0, 20.0)),
            "trab_threshold": float(rng.uniform(0.2, 0.6)),
        }
    elif stage == "immature":
        params = {
            "net_hu": float(rng.uniform(450.0, 800.0)),
            "haze_hu": float(rng.uniform(150.0, 260.0)),
            "net_threshold": float(rng.uniform(0.6, 1.0)),
            "fade_mm": float(rng.uniform(1.5, 3.5)),
            "cap_dir": _unit(rng),
            "cap_cos": float(rng.uniform(-0.2, 0.5)),  # 25-60 % of the surface
            "rim_mm": float(rng.uniform(0.8, 1.6)),
            "rim_hu": float(rng.uniform(380.0, 650.0)),
        }
    else:
        params = {
            "haze_hu": float(rng.uniform(110.0, 220.0)),
            "speck_hu": float(rng.uniform(300.0, 550.0)),
            "speck_threshold": float(rng.uniform(0.6, 1.2)),
            "fade_mm": float(rng.uniform(2.0, 6.0)),
        }
    return Lesion(
        stage=stage,
        centre_mm=np.zeros(3),
        radii_mm=radii,
        rotation=_rotation(rng),
        harmonics=harm,
        attached=False,
        size_mm=size,
        params=params,
    )


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def build(sc: dict) -> tuple[np.ndarray, list[Lesion], list[tuple[np.ndarray, np.ndarray]]]:
    """Return (HU volume int16 (z, y, x), lesions, truth boxes in index space (lo, hi))."""
    rng = np.random.default_rng([sc["seed"], 1])
    nz, ny, nx = sc["shape_zyx"]
    pix, sl = sc["pixel_mm"], sc["slice_mm"]
    sub_z = max(1, math.ceil(sl / 0.5))
    fz, fxy = sl / sub_z, pix / 2
    fine = np.array([fz, fxy, fxy])
    fshape = (nz * sub_z, ny * 2, nx * 2)
    ext = np.array(fshape) * fine
    zc = (np.arange(fshape[0]) + 0.5) * fz
    yc = (np.arange(fshape[1]) + 0.5) * fxy
    xc = (np.arange(fshape[2]) + 0.5) * fxy

    # body: an ellipse in every slice with a fat layer, muscle and fatty septa
    cy, cx = ext[1] * 0.5, ext[2] * 0.5
    ry, rx = ext[1] * rng.uniform(0.36, 0.42), ext[2] * rng.uniform(0.40, 0.46)
    fat_mm = float(rng.uniform(6.0, 18.0))
    yy, xx = np.meshgrid(yc - cy, xc - cx, indexing="ij")
    rr = np.sqrt((yy / ry) ** 2 + (xx / rx) ** 2)
    body2d = rr <= 1.0
    muscle2d = rr <= 1.0 - fat_mm / min(ry, rx)
    septa = np.abs(_noise_field((fshape[1], fshape[2]), np.array([6.0, 6.0]) / fxy, rng)) < 0.06
    slice2d = np.full((fshape[1], fshape[2]), -1000.0, np.float32)
    slice2d[body2d] = float(rng.uniform(-110.0, -85.0))
    slice2d[muscle2d] = float(rng.uniform(40.0, 60.0))
    slice2d[muscle2d & septa] = -60.0
    # table: a plate under the body
    table_y = cy + ry + 12.0
    slice2d[(yc > table_y) & (yc < table_y + 6.0), :] = 250.0
    vol = np.repeat(slice2d[None], fshape[0], axis=0)

    # femur: a tilted tube with a thick cortex and fatty marrow
    r_out = float(rng.uniform(12.0, 15.0))
    cortex = float(rng.uniform(4.0, 7.0))
    fy0 = cy + rng.uniform(-0.15, 0.15) * ry
    fx0 = cx + rng.uniform(-0.2, 0.2) * rx
    tilt = rng.uniform(-0.12, 0.12, size=2)
    cort_hu = float(rng.uniform(1300.0, 1800.0))
    marrow_hu = float(rng.uniform(-60.0, 40.0))
    femur_axis = lambda z: (fy0 + tilt[0] * (z - ext[0] / 2), fx0 + tilt[1] * (z - ext[0] / 2))  # noqa: E731
    for k, z in enumerate(zc):
        ay, ax = femur_axis(z)
        r = np.hypot(yc[:, None] - ay, xc[None, :] - ax)
        vol[k][r <= r_out] = cort_hu
        vol[k][r <= r_out - cortex] = marrow_hu

    # optional contrast-filled artery: a tube beside the femur
    if sc["artery"]:
        ang = rng.uniform(0, 2 * np.pi)
        off = r_out + rng.uniform(15.0, 30.0)
        art_hu, r_art = float(rng.uniform(180.0, 320.0)), float(rng.uniform(2.5, 4.0))
        for k, z in enumerate(zc):
            ay, ax = femur_axis(z)
            r = np.hypot(
                yc[:, None] - (ay + off * np.sin(ang)), xc[None, :] - (ax + off * np.cos(ang))
            )
            vol[k][r <= r_art] = art_hu

    # lesions
    kind, num = sc["kind"], sc["num"]
    if kind == "none":
        stages: list[str] = []
    elif kind == "mature":
        stages = ["mature"] * num
    elif kind == "single":
        stages = [str(rng.choice(["amorphous", "immature"]))] * min(num, 2)
    else:
        stages = [str(s) for s in rng.choice(STAGES, size=max(num, 2))]
    lesions: list[Lesion] = []
    occupied = np.zeros(fshape, dtype=bool)
    for stage in stages:
        for _attempt in range(40):
            les = _draw_lesion(stage, rng)
            attach = rng.random() < 0.35
            z = rng.uniform(0.25, 0.75) * ext[0]
            ay, ax = femur_axis(z)
            ang = rng.uniform(0, 2 * np.pi)
            # the lesion's reach from its centre towards the femur (star-shaped surface)
            local_u = les.rotation.T @ np.array([0.0, -np.sin(ang), -np.cos(ang)])
            scale = 1.0 + sum(a * np.cos(3.0 * (local_u @ d)) for d, a in les.harmonics)
            rad = float(scale / np.linalg.norm(local_u / les.radii_mm))
            gap = -rng.uniform(1.0, 4.0) if attach else rng.uniform(2.0, 25.0)
            dist = r_out + rad + gap
            les.centre_mm = np.array([z, ay + dist * np.sin(ang), ax + dist * np.cos(ang)])
            les.attached = bool(attach)
            # inside the muscle with a margin, not overlapping another lesion
            ly, lx = les.centre_mm[1] - cy, les.centre_mm[2] - cx
            if np.hypot(ly / ry, lx / rx) > 1.0 - (fat_mm + les.radii_mm.max() * 1.3) / min(ry, rx):
                continue
            if (
                les.centre_mm[0] - les.radii_mm.max() * 1.4 < 3
                or les.centre_mm[0] + les.radii_mm.max() * 1.4 > ext[0] - 3
            ):
                continue
            box = _lesion_box(les, fine, fshape, 6.0)
            if occupied[box].any():
                continue
            hu, w = _fill(les, box, fine, rng)
            region = vol[box]
            bone_here = region > 600.0
            blend = region * (1 - w) + hu * w
            region[:] = np.where(bone_here & (blend < region), region, blend)
            occupied[box] = True
            lesions.append(les)
            break

    # phleboliths (not HO)
    for _ in range(int(rng.integers(0, 3))):
        c = np.array(
            [
                rng.uniform(0.2, 0.8) * ext[0],
                cy + rng.uniform(-0.5, 0.5) * ry,
                cx + rng.uniform(-0.5, 0.5) * rx,
            ]
        )
        rad = float(rng.uniform(1.25, 2.5))
        box = tuple(
            slice(
                max(int((c[i] - rad - 2) / fine[i]), 0),
                min(int((c[i] + rad + 2) / fine[i]) + 1, fshape[i]),
            )
            for i in range(3)
        )
        axes = [
            (np.arange(s.start, s.stop) + 0.5) * f - ci
            for s, f, ci in zip(box, fine, c, strict=True)
        ]
        z, y, x = np.meshgrid(*axes, indexing="ij", sparse=True)
        inside = z**2 + y**2 + x**2 <= rad**2
        region = vol[box]
        ok = (region > 0) & (region < 100) & inside
        region[ok] = float(rng.uniform(300.0, 900.0))

    # scanner: point spread, slice and pixel integration, noise
    sigma = sc["psf_fwhm_mm"] / 2.355 / fine
    vol = ndi.gaussian_filter(vol, sigma=sigma, mode="nearest")
    vol = vol.reshape(nz, sub_z, ny, 2, nx, 2).mean(axis=(1, 3, 5))
    noise = rng.normal(size=vol.shape).astype(np.float32)
    noise = ndi.gaussian_filter(noise, sigma=(0.0, 0.6, 0.6))
    noise *= sc["noise_hu"] / noise.std()
    vol = vol + noise
    boxes = []
    for les in lesions:
        lo = np.floor((les.centre_mm - les.radii_mm.max() * 1.3) / (fine * [sub_z, 2, 2])).astype(
            int
        )
        hi = np.ceil((les.centre_mm + les.radii_mm.max() * 1.3) / (fine * [sub_z, 2, 2])).astype(
            int
        )
        boxes.append((lo, hi))
    return np.clip(np.rint(vol), -1024, 3071).astype(np.int16), lesions, boxes


# --------------------------------------------------------------------------- DICOM
def write_series(hu: np.ndarray, sc: dict, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write single-frame CT files; return (origin_lps_mm, spacing_xyz_mm)."""
    rng = np.random.default_rng([sc["seed"], 2])
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pix, sl = sc["pixel_mm"], sc["slice_mm"]
    origin = np.array([-hu.shape[2] * pix / 2, -hu.shape[1] * pix / 2, -400.0])
    order = rng.permutation(hu.shape[0])
    for k in order:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientID = f"IND{sc['seed']:05d}"
        ds.SeriesNumber, ds.InstanceNumber = 3, int(k) + 1
        ds.ImagePositionPatient = [
            f"{origin[0]:.4f}",
            f"{origin[1]:.4f}",
            f"{origin[2] + k * sl:.4f}",
        ]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [f"{pix:.6f}", f"{pix:.6f}"]
        ds.SliceThickness = f"{sl:.4f}"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.RescaleSlope = 1
        if sc["signed"]:
            ds.PixelRepresentation, ds.RescaleIntercept = 1, 0
            ds.PixelData = hu[k].astype("<i2").tobytes()
        else:
            ds.PixelRepresentation, ds.RescaleIntercept = 0, -1024
            ds.PixelData = (hu[k].astype(np.int32) + 1024).astype("<u2").tobytes()
        ds.save_as(folder / f"{rng.integers(1 << 40):x}", enforce_file_format=True)
    return origin, np.array([pix, pix, sl])


# --------------------------------------------------------------------------- scoring
@dataclass
class Tally:
    studies: int = 0
    lesions: int = 0
    detected: int = 0
    false_positives: int = 0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((3, 3), dtype=int))
    resection_ok: int = 0
    false_ready: int = 0
    not_ready_total: int = 0
    notes: list[str] = field(default_factory=list)
    rows: list[dict[str, float]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def sharpen(hu: np.ndarray, pixel_mm: float, gain: float) -> np.ndarray:
    """A sharper reconstruction kernel: in-plane unsharp masking (0.8 mm Gaussian), clipped, rounded."""
    f = hu.astype(np.float32)
    low = ndi.gaussian_filter(f, (0.0, 0.8 / pixel_mm, 0.8 / pixel_mm))
    return np.clip(np.rint(f + gain * (f - low)), -1024, 3071).astype(hu.dtype)


def run_one(job: tuple[int, str | None, str | None, float]) -> dict:
    import hostage
    from hostage.config import load_config

    seed, keep, config_path, kernel_gain = job
    sc = scenario(seed)
    hu, lesions, boxes = build(sc)
    if kernel_gain:
        hu = sharpen(hu, sc["pixel_mm"], kernel_gain)
    tmp = Path(keep) / f"ind{seed:05d}" if keep else Path(tempfile.mkdtemp(prefix="hostage-ind-"))
    try:
        origin, spacing_xyz = write_series(hu, sc, tmp)
        result = hostage.stage(tmp, config=load_config(config_path) if config_path else None)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    truth = []
    for les, (lo, hi) in zip(lesions, boxes, strict=True):
        # index (z, y, x) -> LPS (x, y, z)
        lo_lps = origin + lo[::-1] * spacing_xyz
        hi_lps = origin + hi[::-1] * spacing_xyz
        c_idx = les.centre_mm / np.array([sc["slice_mm"], sc["pixel_mm"], sc["pixel_mm"]]) - 0.5
        truth.append(
            {
                "stage": les.stage,
                "size_mm": les.size_mm,
                "attached": les.attached,
                "bbox": (lo_lps.tolist(), hi_lps.tolist()),
                "centre": (origin + c_idx[::-1] * spacing_xyz).tolist(),
            }
        )
    foci = [
        {
            "centroid": list(f.centroid_lps_mm),
            "bbox": [list(b) for b in f.bbox_lps_mm],
            "stage": f.stage.value,
            "atypical": f.atypical,
            "reasons": list(f.reasons[:2]),
            "features": dict(f.features),
        }
        for f in result.foci
    ]
    stages = {t["stage"] for t in truth}
    expected = "no_foci" if not truth else ("ready" if stages == {"mature"} else "not_ready")
    status = None if result.resection is None else result.resection.status.value
    return {"scenario": sc, "truth": truth, "foci": foci, "expected": expected, "got": status}


def score(rec: dict, t: Tally) -> None:
    sc = rec["scenario"]
    where = (
        f"seed {sc['seed']} ({sc['pixel_mm']:.2f} mm px, {sc['slice_mm']} mm slices, "
        f"noise {sc['noise_hu']:.0f} HU{', artery' if sc['artery'] else ''})"
    )
    pairs = []
    for i, les in enumerate(rec["truth"]):
        lo, hi = (np.asarray(v) for v in les["bbox"])
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        centre = np.asarray(les["centre"])
        for j, f in enumerate(rec["foci"]):
            c = np.asarray(f["centroid"])
            flo, fhi = (np.asarray(v) for v in f["bbox"])
            inside = bool(np.all(c >= lo - 2) and np.all(c <= hi + 2))
            covers = bool(np.all(centre >= flo - 2) and np.all(centre <= fhi + 2))
            if inside or covers:
                pairs.append((float(np.linalg.norm(c - centre)), i, j))
    used_l: dict[int, int] = {}
    used_f: set[int] = set()
    for _, i, j in sorted(pairs):
        if i not in used_l and j not in used_f:
            used_l[i] = j
            used_f.add(j)
    for i, les in enumerate(rec["truth"]):
        if les["size_mm"] < MIN_LESION_MM:
            continue
        t.lesions += 1
        what = f"{les['stage']} {les['size_mm']:.0f} mm {'attached' if les['attached'] else 'separate'}"
        if i not in used_l:
            t.notes.append(f"{where}: missed {what}")
            continue
        t.detected += 1
        f = rec["foci"][used_l[i]]
        t.confusion[STAGES.index(les["stage"]), STAGES.index(f["stage"])] += 1
        t.rows.append(f["features"])
        t.labels.append(les["stage"])
        if f["stage"] != les["stage"]:
            t.notes.append(f"{where}: {what} staged {f['stage']}: {'; '.join(f['reasons'])}")
    for j, f in enumerate(rec["foci"]):
        if j not in used_f:
            t.false_positives += 1
            t.notes.append(
                f"{where}: false focus at {[round(v) for v in f['centroid']]} ({f['stage']})"
            )
    t.studies += 1
    t.resection_ok += int(rec["got"] == rec["expected"])
    t.not_ready_total += int(rec["expected"] != "ready")
    t.false_ready += int(rec["got"] == "ready" and rec["expected"] != "ready")
    if rec["got"] != rec["expected"]:
        t.notes.append(f"{where}: resection expected {rec['expected']}, got {rec['got']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--keep", help="keep the DICOM studies in this folder")
    p.add_argument("--config", help="TOML config to evaluate")
    p.add_argument(
        "--kernel-gain",
        type=float,
        default=0.0,
        help="reconstruct with a sharper kernel: in-plane unsharp masking of this gain (0: none)",
    )
    p.add_argument(
        "--dump", help="write the features and truth stages of matched lesions to this JSON file"
    )
    args = p.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    t0 = time.perf_counter()
    jobs = [(s, args.keep, args.config, args.kernel_gain) for s in seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            records = list(ex.map(run_one, jobs))
    else:
        records = [run_one(j) for j in jobs]
    t = Tally()
    for rec in records:
        score(rec, t)
    if args.dump:
        Path(args.dump).write_text(json.dumps({"rows": t.rows, "labels": t.labels}))
    sens = t.detected / t.lesions if t.lesions else math.nan
    acc = np.trace(t.confusion) / t.confusion.sum() if t.confusion.sum() else math.nan
    print(f"command: python benchmarks/independent.py {' '.join(argv or sys.argv[1:])}")
    print(
        f"{t.studies} studies, {t.lesions} lesions >= {MIN_LESION_MM:g} mm, {time.perf_counter() - t0:.0f} s"
    )
    print()
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| detection sensitivity | {sens:.3f} ({t.detected}/{t.lesions}) | >= 0.97 |")
    print(
        f"| false-positive foci per study | {t.false_positives / t.studies:.2f} ({t.false_positives}/{t.studies}) | <= 0.3 |"
    )
    print(f"| stage accuracy | {acc:.3f} ({np.trace(t.confusion)}/{t.confusion.sum()}) | >= 0.95 |")
    print(
        f"| resection-status accuracy | {t.resection_ok / t.studies:.3f} ({t.resection_ok}/{t.studies}) | >= 0.95 |"
    )
    print(
        f"| studies called ready that are not (false 'ready') | {t.false_ready}/{t.not_ready_total} | 0 |"
    )
    print()
    print("| truth \\ hostage | " + " | ".join(STAGES) + " |")
    print("|---|---|---|---|")
    for name, row in zip(STAGES, t.confusion, strict=True):
        print(f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |")
    if t.notes:
        print("\ndetails:")
        for n in t.notes:
            print(f"  - {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
