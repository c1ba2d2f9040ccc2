"""Accuracy of hostage on a varied set of synthetic phantoms with known truth.

For every seed a phantom study is drawn with random pixel spacing, slice
thickness, noise, lesion count, stages, sizes and attachment to bone
(``hostage.phantom.make_phantom``), staged in memory with
``hostage.pipeline.analyse``, and compared with its truth:

* detection sensitivity: lesions of 6 mm or more matched to a focus;
* false-positive foci per study: foci matched to no lesion;
* the 3x3 stage confusion matrix over matched lesions, stage accuracy and macro-F1;
* resection-status accuracy against the truth's ``expected_resection``.

``--fit`` instead stages a disjoint set of training seeds and refits the stage
weights with :func:`hostage.classify.fit`, printing the ``[classify]`` table to
paste into the defaults (the evaluation seeds are never used for fitting).

Usage::

    python benchmarks/accuracy.py              # full run (the README table)
    python benchmarks/accuracy.py --quick      # a few small studies, for development
    python benchmarks/accuracy.py --fit --seeds 60 --first-seed 100000
    python benchmarks/accuracy.py --cache /tmp/acc-cache   # reuse built phantoms
    python benchmarks/accuracy.py --detect-only --cache /tmp/acc-cache   # segmentation only
    python benchmarks/accuracy.py --truth-bone --cache /tmp/acc-cache    # with a perfect bone map

``--cache DIR`` stores each built phantom (volume and truth) as one ``.npz``
per seed, keyed by the seed, the scenario and a hash of the
``hostage.phantom`` sources, so re-runs skip the phantom builds; a change to
the phantom code or the scenario draws builds afresh. ``--detect-only`` runs
the segmentation only (no features, no staging) and prints the detection rows.
``--truth-bone`` gives the pipeline the phantom's own native-bone mask as an
external bone label map (``bone_labels``), as a perfect TotalSegmentator-like
segmentation would: the upper bound of what such a map can do for detection.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import hostage
from hostage.config import Config, load_config, render_toml
from hostage.enums import Stage
from hostage.pipeline import analyse
from hostage.result import StudyResult

STAGES = tuple(Stage)
MIN_LESION_MM = 6.0


@dataclass
class Tally:
    lesions: int = 0
    detected: int = 0
    small_lesions: int = 0
    false_positives: int = 0
    studies: int = 0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((3, 3), dtype=int))
    resection_ok: int = 0
    resection_total: int = 0
    false_ready: int = 0
    not_ready_total: int = 0
    atypical_total: int = 0
    atypical_flagged: int = 0
    typical_flagged: int = 0
    skipped: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    wrong_stage: list[str] = field(default_factory=list)
    wrong_resection: list[str] = field(default_factory=list)
    fp_details: list[str] = field(default_factory=list)
    train_rows: list[dict[str, float]] = field(default_factory=list)
    train_labels: list[str] = field(default_factory=list)
    seconds: float = 0.0


def scenario(seed: int, *, quick: bool) -> dict:
    """Scanner settings of one study, drawn from the seed (lesions are drawn by the phantom)."""
    rng = np.random.default_rng([seed, 7])
    pixel = float(rng.uniform(0.6, 1.0))
    slice_mm = float(rng.choice([1.0, 1.25, 2.0, 2.5, 3.0]))
    pelvis = (not quick) and rng.random() < 0.25  # both hips in a wide field of view
    fov_mm = (
        128.0
        if quick
        else float(rng.uniform(320.0, 360.0) if pelvis else rng.uniform(140.0, 180.0))
    )
    if pelvis:
        pixel = max(pixel, 0.8)
    extent_z_mm = 80.0 if quick else float(rng.uniform(90.0, 130.0))
    return {
        "shape_zyx": (
            round(extent_z_mm / slice_mm),
            round(fov_mm / pixel),
            round(fov_mm / pixel),
        ),
        "spacing_zyx_mm": (slice_mm, pixel, pixel),
        "pixel_mm": pixel,
        "slice_mm": slice_mm,
        "noise_hu": float(rng.uniform(10.0, 35.0)),
        "psf_fwhm_mm": float(rng.uniform(0.5, 1.1)),
        "kind": str(rng.choice(KINDS, p=KIND_P)),
        "num": int(rng.integers(1, 4)),
        "single_stage": str(rng.choice(["amorphous", "immature"])),
    }


#: Study types, so that every resection status occurs: the phantom's default draw
#: (2-4 lesions of mixed stages: not_ready), all mature (ready), one non-mature
#: stage only (not_ready), mature plus an atypical central-first lesion
#: (indeterminate), and look-alikes only (no_foci).
KINDS = ("mixed", "mature", "single", "atypical", "none")
KIND_P = (0.4, 0.3, 0.12, 0.1, 0.08)


def lesion_specs(sc: dict):
    from hostage.phantom import LesionSpec

    kind, n = sc["kind"], sc["num"]
    if kind == "mixed":
        return None
    if kind == "mature":
        return [LesionSpec(stage="mature") for _ in range(n)]
    if kind == "single":
        return [LesionSpec(stage=sc["single_stage"]) for _ in range(min(n, 2))]
    if kind == "atypical":
        return [LesionSpec(stage="mature"), LesionSpec(stage="mature", central_first=True)]
    return 0


def _phantom_source_hash() -> str:
    """Hash of the hostage.phantom sources: a cached phantom is stale when they change."""
    import hostage.phantom

    h = hashlib.sha256()
    for f in sorted(Path(hostage.phantom.__file__).parent.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cache_path(cache: str, seed: int, sc: dict) -> Path:
    key = hashlib.sha256(
        json.dumps([_phantom_source_hash(), sc], sort_keys=True).encode()
    ).hexdigest()[:16]
    return Path(cache) / f"seed{seed}-{key}.npz"


def make_study(seed: int, *, quick: bool, cache: str | None = None):
    """Return (volume, truth dict, scenario) for one seed (read from / written to `cache`)."""
    volume, truth, sc, _ = _study(seed, quick=quick, cache=cache, bone=False)
    return volume, truth, sc


def _study(seed: int, *, quick: bool, cache: str | None, bone: bool):
    """(volume, truth, scenario, native-bone mask or None): the mask only when `bone` is asked for."""
    from hostage.io.volume import Volume
    from hostage.phantom import make_phantom

    sc = scenario(seed, quick=quick)
    path = _cache_path(cache, seed, sc) if cache else None
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            if not bone or "bone" in z.files:
                volume = Volume(
                    hu=z["hu"],
                    spacing_zyx_mm=tuple(float(v) for v in z["spacing"]),
                    origin_lps_mm=tuple(float(v) for v in z["origin"]),
                    direction_lps=z["direction"],
                )
                truth = json.loads(str(z["truth"]))
                mask = (
                    np.unpackbits(z["bone"], count=int(np.prod(volume.shape_zyx)))
                    .reshape(volume.shape_zyx)
                    .astype(bool)
                    if bone
                    else None
                )
                return volume, truth, sc, mask
    ph = make_phantom(
        sc["shape_zyx"],
        sc["spacing_zyx_mm"],
        rng=seed,
        noise_hu=sc["noise_hu"],
        psf_fwhm_mm=sc["psf_fwhm_mm"],
        lesions=lesion_specs(sc),
    )
    truth = ph.truth.to_dict()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        v = ph.volume
        np.savez(
            tmp,
            hu=v.hu,
            spacing=np.asarray(v.spacing_zyx_mm),
            origin=np.asarray(v.origin_lps_mm),
            direction=np.asarray(v.direction_lps),
            truth=np.asarray(json.dumps(truth)),
            bone=np.packbits(ph.bone_mask, axis=None),
        )
        os.replace(tmp, path)
    return ph.volume, truth, sc, np.asarray(ph.bone_mask, bool) if bone else None


@dataclass(frozen=True)
class _DetectFocus:
    """What scoring needs of a focus when only the segmentation runs."""

    id: int
    centroid_lps_mm: tuple[float, float, float]
    bbox_lps_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    volume_mm3: float


def _detect(volume, config: Config, bone_labels: np.ndarray | None = None) -> list[_DetectFocus]:
    """Segment only; foci with their LPS bounding boxes (as in result.json)."""
    from hostage.result import _bbox_corners_lps
    from hostage.segment import segment

    seg = segment(volume, config=config.segment, bone_labels=bone_labels)
    return [
        _DetectFocus(
            id=f.id,
            centroid_lps_mm=f.centroid_lps_mm,
            bbox_lps_mm=_bbox_corners_lps(volume, f.bbox_zyx),
            volume_mm3=f.volume_mm3,
        )
        for f in seg.foci
    ]


def run_one(job: tuple[int, bool, str | None, str | None, bool, bool]):
    """Build and stage one study; return (result, truth dict, scenario) or an error text.

    The result is a result.json dict, or with `detect_only` a list of foci. With
    `with_bone`, the phantom's native-bone mask is the external bone label map.
    """
    seed, quick, config_path, cache, detect_only, with_bone = job
    config = load_config(config_path) if config_path else Config()
    try:
        volume, truth, sc, bone = _study(seed, quick=quick, cache=cache, bone=with_bone)
    except ValueError as exc:  # a requested lesion did not fit this anatomy
        return str(exc)
    labels = None if bone is None else bone.astype(np.uint8)
    if detect_only:
        return _detect(volume, config, labels), truth, sc
    return analyse(volume, config=config, bone_labels=labels).result.to_dict(), truth, sc


def _lesion_matches(lesion: dict, focus) -> float:
    """Distance (mm) from the lesion centre to the focus centroid if they overlap, else inf."""
    lo, hi = (np.asarray(c, dtype=float) for c in lesion["bbox_lps_mm"])
    c = np.asarray(focus.centroid_lps_mm, dtype=float)
    flo, fhi = (np.asarray(v, dtype=float) for v in focus.bbox_lps_mm)
    centre = np.asarray(lesion["centre_lps_mm"], dtype=float)
    pad = 2.0
    inside = bool(np.all(c >= lo - pad) and np.all(c <= hi + pad))
    covers = bool(np.all(centre >= flo - pad) and np.all(centre <= fhi + pad))
    return float(np.linalg.norm(c - centre)) if (inside or covers) else math.inf


def score_study(
    seed: int, result, truth: dict, sc: dict, t: Tally, *, detect_only: bool = False
) -> None:
    """Match lesions to foci (greedy by distance) and update the tally.

    `result` is a StudyResult, or with `detect_only` a list of foci
    (only detection is scored).
    """
    lesions = [les for les in truth["lesions"]]
    foci = list(result) if detect_only else list(result.foci)
    pairs = sorted(
        (d, i, j)
        for i, les in enumerate(lesions)
        for j, f in enumerate(foci)
        if math.isfinite(d := _lesion_matches(les, f))
    )
    used_l: dict[int, int] = {}
    used_f: set[int] = set()
    for _, i, j in pairs:
        if i in used_l or j in used_f:
            continue
        used_l[i] = j
        used_f.add(j)
    where = f"seed {seed} (pixel {sc['pixel_mm']:.2f} mm, slice {sc['slice_mm']} mm, noise {sc['noise_hu']:.0f} HU)"
    for i, les in enumerate(lesions):
        size = float(les["size_mm"])
        kind = (
            f"{les['stage']} lesion {les['id']} ({size:.0f} mm {les['shape']}, "
            f"{'attached' if les['attached_to_bone'] else 'separate'}"
            f"{', central-first' if les.get('central_first') else ''})"
        )
        big = size >= MIN_LESION_MM
        if not big:
            t.small_lesions += 1
        else:
            t.lesions += 1
        if i not in used_l:
            if big:
                t.misses.append(f"{where}: {kind} not found")
            continue
        if big:
            t.detected += 1
        if detect_only:
            continue
        f = foci[used_l[i]]
        if les.get("central_first"):
            # the phantom labels central-first lesions "mature"; what matters is the flag
            t.atypical_total += 1
            t.atypical_flagged += int(f.atypical)
            if not f.atypical:
                t.wrong_stage.append(f"{where}: {kind} not flagged atypical")
            continue
        t.typical_flagged += int(f.atypical)
        if f.atypical:
            t.wrong_stage.append(f"{where}: {kind} wrongly flagged atypical")
        truth_stage = STAGES.index(Stage(les["stage"]))
        pred = STAGES.index(f.stage)
        t.confusion[truth_stage, pred] += 1
        t.train_rows.append(dict(f.features))
        t.train_labels.append(les["stage"])
        if pred != truth_stage:
            top = "; ".join(f.reasons[:3])
            t.wrong_stage.append(
                f"{where}: {kind} staged {f.stage.value} ({f.confidence:.2f}): {top}"
            )
    for j, f in enumerate(foci):
        if j not in used_f:
            t.false_positives += 1
            stage = "" if detect_only else f", {f.stage.value}"
            t.fp_details.append(
                f"{where}: focus {f.id} at {tuple(round(v) for v in f.centroid_lps_mm)} "
                f"({f.volume_mm3:.0f} mm³{stage}) matches no lesion"
            )
    t.studies += 1
    if detect_only:
        return
    expected = truth.get("expected_resection")
    if expected is not None:
        t.resection_total += 1
        got = result.resection.status.value
        t.not_ready_total += int(expected != "ready")
        t.false_ready += int(got == "ready" and expected != "ready")
        if got == expected:
            t.resection_ok += 1
        else:
            t.wrong_resection.append(
                f"{where}: expected {expected}, got {got}: {'; '.join(result.resection.reasons)}"
            )


def macro_f1(confusion: np.ndarray) -> float:
    f1 = []
    for k in range(3):
        tp = confusion[k, k]
        prec = tp / confusion[:, k].sum() if confusion[:, k].sum() else 0.0
        rec = tp / confusion[k, :].sum() if confusion[k, :].sum() else 0.0
        f1.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
    return float(np.mean(f1))


def report(t: Tally, command: str, *, detect_only: bool = False) -> str:
    sens = t.detected / t.lesions if t.lesions else math.nan
    fp = t.false_positives / t.studies if t.studies else math.nan
    acc = np.trace(t.confusion) / t.confusion.sum() if t.confusion.sum() else math.nan
    res = t.resection_ok / t.resection_total if t.resection_total else math.nan
    names = [s.value for s in STAGES]
    lines = [
        f"command: {command}",
        f"hostage {hostage.__version__}; {t.studies} studies, {t.lesions} lesions >= {MIN_LESION_MM:g} mm "
        f"(+{t.small_lesions} smaller), {t.seconds:.0f} s",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| detection sensitivity (lesions >= 6 mm) | {sens:.3f} ({t.detected}/{t.lesions}) | >= 0.97 |",
        f"| false-positive foci per study | {fp:.2f} ({t.false_positives}/{t.studies}) | <= 0.3 |",
        f"| stage accuracy | {acc:.3f} ({np.trace(t.confusion)}/{t.confusion.sum()}) | >= 0.95 |",
        f"| stage macro-F1 | {macro_f1(t.confusion):.3f} | |",
        f"| resection-status accuracy | {res:.3f} ({t.resection_ok}/{t.resection_total}) | >= 0.95 |",
        f"| studies called ready that are not (false 'ready') | {t.false_ready}/{t.not_ready_total} | 0 |",
        f"| central-first lesions flagged atypical | {t.atypical_flagged}/{t.atypical_total} | all |",
        f"| typical lesions wrongly flagged atypical | {t.typical_flagged}/{int(t.confusion.sum())} | 0 |",
        "",
        "stage confusion over matched typical lesions (rows: truth, columns: hostage)",
        "",
        "| truth \\ hostage | " + " | ".join(names) + " |",
        "|---|" + "---|" * 3,
    ]
    for n, row in zip(names, t.confusion, strict=True):
        lines.append(f"| {n} | " + " | ".join(str(int(v)) for v in row) + " |")
    if detect_only:  # the segmentation alone: detection rows only
        lines = lines[:7]
    for title, items in (
        ("skipped seeds", t.skipped),
        ("missed lesions", t.misses),
        ("false-positive foci", t.fp_details),
        ("wrong stage", t.wrong_stage),
        ("wrong resection status", t.wrong_resection),
    ):
        if items:
            lines += ["", f"{title}:"] + [f"  - {s}" for s in items]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few small studies (development)")
    p.add_argument(
        "--seeds", type=int, default=None, help="number of studies (default 60, quick 8)"
    )
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--config", help="TOML config to evaluate")
    p.add_argument("--fit", action="store_true", help="refit the stage weights on these seeds")
    p.add_argument("--dump", help="write per-focus features and truth stages to this JSON file")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument(
        "--cache", help="folder of built phantoms (one .npz per seed), reused across runs"
    )
    p.add_argument(
        "--detect-only",
        action="store_true",
        help="segmentation only: detection sensitivity and false positives (no staging)",
    )
    p.add_argument(
        "--truth-bone",
        action="store_true",
        help="give the pipeline the phantom's native-bone mask as its bone label map",
    )
    args = p.parse_args(argv)
    command = "python benchmarks/accuracy.py " + " ".join(sys.argv[1:] if argv is None else argv)
    n = args.seeds if args.seeds is not None else (8 if args.quick else 60)
    config = load_config(args.config) if args.config else Config()  # fail early on a bad file
    t = Tally()
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + n)
    if args.detect_only and (args.fit or args.dump):
        p.error("--detect-only cannot be combined with --fit or --dump (they need the features)")
    jobs = [
        (seed, args.quick, args.config, args.cache, args.detect_only, args.truth_bone)
        for seed in seeds
    ]
    pool = None
    if args.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.jobs)
    outcomes = pool.map(run_one, jobs) if pool is not None else map(run_one, jobs)
    for seed, outcome in zip(seeds, outcomes, strict=True):
        if isinstance(outcome, str):
            t.skipped.append(f"seed {seed}: phantom not built ({outcome})")
            continue
        doc, truth, sc = outcome
        if args.detect_only:
            score_study(seed, doc, truth, sc, t, detect_only=True)
            print(
                f"seed {seed}: {len(truth['lesions'])} lesions, {len(doc)} foci",
                file=sys.stderr,
                flush=True,
            )
            continue
        result = StudyResult.from_dict(doc)
        score_study(seed, result, truth, sc, t)
        print(
            f"seed {seed}: {len(truth['lesions'])} lesions, {len(result.foci)} foci, "
            f"{result.resection.status.value} (expected {truth.get('expected_resection')})",
            file=sys.stderr,
            flush=True,
        )
    if pool is not None:
        pool.shutdown()
    t.seconds = time.perf_counter() - t0
    if args.dump:
        Path(args.dump).write_text(json.dumps({"rows": t.train_rows, "labels": t.train_labels}))
    if args.fit:
        from hostage.classify import fit

        res = fit(t.train_rows, t.train_labels, rng=0, folds=5, base=config.classify)
        # stability checks only cost time when dumping features; keep them on in the output
        refit = dataclasses.replace(res.config, stability_checks=True)
        text = render_toml(Config(classify=refit))
        start = text.index("[classify]")
        print(text[start : text.index("[batch]")])
        return 0
    print(report(t, command, detect_only=args.detect_only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
