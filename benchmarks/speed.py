"""Benchmark: end-to-end ``hostage.stage`` on a 512x512x300 phantom vs SimpleITK reading it.

Usage::

    python benchmarks/speed.py [--dir DIR] [--shape 300 512 512] [--repeat 2] [--seed 7]

Writes a phantom CT series once (``hostage.phantom``: hips and thighs with HO
lesions, to DIR or a temporary folder), then, each in a fresh subprocess so that
no run warms another's imports or allocations:

* SimpleITK ``ImageSeriesReader`` on the same files (int16 output): the I/O floor;
* ``hostage.stage(DIR)``: discovery, load, segmentation, features, classification
  (in memory, no files written), best of ``--repeat``; its time includes the
  imports hostage makes on first use (pydicom, SciPy, scikit-image), SimpleITK's
  does not include ``import SimpleITK``;
* the ratio of the two, of wall and of CPU time (target <= 2.0; on a machine
  shared with other work, the CPU ratio is the steadier one);
* CPU time of each step (load, segment, features, classify, stability), the
  steps called twice in one process: the first call as a user's first study
  sees it, the second without the imports;
* peak memory of ``hostage.stage``: tracemalloc peak of Python/numpy allocations
  and the growth of the process' peak RSS (``VmHWM`` of /proc/self/status), against the size of the
  int16 volume (target <= 4x);
* a cProfile run of ``hostage.pipeline.stage_to_folder`` (result.json only) that
  says where the time goes: load / segment / features / classify / stability
  (the classifier re-measuring each focus under small perturbations) / write.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = (300, 512, 512)
SPACING = (1.0, 0.78, 0.78)

SITK_RUN = r"""
import json, sys, time
import numpy as np
import SimpleITK as sitk
folder = sys.argv[1]
t0 = time.perf_counter()
c0 = time.process_time()
reader = sitk.ImageSeriesReader()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
reader.SetOutputPixelType(sitk.sitkInt16)
img = reader.Execute()
arr = sitk.GetArrayViewFromImage(img)
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                  "shape": list(arr.shape)}))
"""

STAGE_RUN = r"""
import json, sys, time
import hostage
t0 = time.perf_counter()
c0 = time.process_time()
r = hostage.stage(sys.argv[1])
cpu = time.process_time() - c0
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu_seconds": cpu, "num_foci": len(r.foci),
                  "stages": [f.stage.value for f in r.foci],
                  "resection": None if r.resection is None else r.resection.status.value}))
"""

STEPS_RUN = r"""
import json, sys, time
from hostage.config import Config
from hostage.io import load
from hostage.segment import segment
from hostage.features import measure
from hostage.classify import check_stability, classify
cfg = Config()
runs = []
for _ in range(2):  # the first pays the imports made on first use (pydicom, SciPy, scikit-image)
    t = {}
    def tick(name, w0, c0):
        t[name] = (time.perf_counter() - w0, time.process_time() - c0)
        return time.perf_counter(), time.process_time()
    w, c = time.perf_counter(), time.process_time()
    vol = load(sys.argv[1], config=cfg.load); w, c = tick("load", w, c)
    seg = segment(vol, config=cfg.segment); w, c = tick("segment", w, c)
    feats = [measure(vol, f, seg, config=cfg.features) for f in seg.foci]; w, c = tick("features", w, c)
    st = [classify(f, config=cfg.classify) for f in feats]; w, c = tick("classify", w, c)
    check_stability(vol, seg, feats, st, config=cfg); w, c = tick("stability", w, c)
    runs.append(t)
    del vol, seg, feats, st
print(json.dumps({"first": runs[0], "second": runs[1]}))
"""

MEMORY_RUN = r"""
import json, sys, tracemalloc
import hostage
import hostage.pipeline  # imports before the baseline

def peak_rss_kib():
    # VmHWM is this process's own high-water mark; ru_maxrss is not: Linux carries it over
    # from the parent across fork + exec, so a parent holding the phantom hid the growth
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

rss0 = peak_rss_kib()
tracemalloc.start()
r = hostage.stage(sys.argv[1])
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss1 = peak_rss_kib()
shape = r.study.shape_zyx
print(json.dumps({"tracemalloc_peak": peak, "rss_growth": (rss1 - rss0) * 1024,
                  "int16_bytes": 2 * shape[0] * shape[1] * shape[2]}))
"""

PROFILE_RUN = r"""
import cProfile, json, pstats, sys, tempfile
import hostage.pipeline
from hostage.pipeline import stage_to_folder
out = tempfile.mkdtemp()
prof = cProfile.Profile()
prof.enable()
stage_to_folder(sys.argv[1], out=out, outputs=("json",))
prof.disable()
st = pstats.Stats(prof)
STAGES = {  # (file suffix, function): stage name; time counted for calls made by pipeline.py
    ("hostage/io/__init__.py", "load"): "load",
    ("hostage/segment/__init__.py", "segment"): "segment",
    ("hostage/features/__init__.py", "measure"): "features",
    ("hostage/classify/__init__.py", "classify"): "classify",
    ("hostage/classify/stability.py", "check_stability"): "stability",
    ("hostage/classify/__init__.py", "resection"): "classify",
    ("hostage/classify/resection.py", "resection"): "classify",
    ("hostage/report/__init__.py", "write_study_outputs"): "write",
}
by_stage = {}
top = []
total = 0.0
for (fname, line, func), (cc, nc, tt, ct, callers) in st.stats.items():
    if func == "stage_to_folder" and fname.endswith("hostage/pipeline.py"):
        total = ct
    for (suffix, f), name in STAGES.items():
        if func == f and fname.endswith(suffix):
            from_pipeline = sum(c[3] for k, c in callers.items() if k[0].endswith("hostage/pipeline.py"))
            by_stage[name] = by_stage.get(name, 0.0) + from_pipeline
    if "/hostage/" in fname:
        top.append((ct, tt, nc, fname.split("/hostage/", 1)[1] + ":" + func))
top.sort(reverse=True)
print(json.dumps({"total": total, "by_stage": by_stage, "top": top[:25]}))
"""


def run(code: str, folder: Path) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_phantom_series(folder: Path, shape: tuple[int, int, int], seed: int) -> None:
    from hostage.phantom import make_phantom
    from hostage.phantom.write import write_phantom

    t0 = time.perf_counter()
    ph = make_phantom(shape, SPACING, rng=seed)
    t1 = time.perf_counter()
    write_phantom(ph, folder)
    t2 = time.perf_counter()
    print(f"phantom {shape} made in {t1 - t0:.1f} s, written in {t2 - t1:.1f} s to {folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to write the series (kept and reused)")
    parser.add_argument("--shape", type=int, nargs=3, default=SHAPE, metavar=("Z", "Y", "X"))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp) / "series"
        if not folder.exists() or not any(folder.iterdir()):
            write_phantom_series(folder, tuple(args.shape), args.seed)
        print(f"load average before: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
        sitk_runs = [run(SITK_RUN, folder) for _ in range(args.repeat)]
        sitk_s = min(r["seconds"] for r in sitk_runs)
        sitk_cpu = min(r["cpu_seconds"] for r in sitk_runs)
        stage_runs = [run(STAGE_RUN, folder) for _ in range(args.repeat)]
        stage_s = min(r["seconds"] for r in stage_runs)
        stage_cpu = min(r["cpu_seconds"] for r in stage_runs)
        step_runs = [run(STEPS_RUN, folder) for _ in range(args.repeat)]
        mem = run(MEMORY_RUN, folder)
        prof = run(PROFILE_RUN, folder)
        print(f"load average after:  {os.getloadavg()[0]:.2f}")
    vol = mem["int16_bytes"]
    print()
    print(f"series {tuple(args.shape)} zyx, int16 volume {vol / 2**20:.0f} MiB")
    print(
        f"hostage.stage: {stage_s:.2f} s wall, {stage_cpu:.2f} s CPU (best of {args.repeat}); "
        f"{stage_runs[0]['num_foci']} foci {stage_runs[0]['stages']}, "
        f"resection {stage_runs[0]['resection']}"
    )
    print(
        f"SimpleITK ImageSeriesReader: {sitk_s:.2f} s wall, {sitk_cpu:.2f} s CPU "
        f"(best of {args.repeat})"
    )
    print(
        f"ratio stage / SimpleITK read: {stage_s / sitk_s:.2f} wall, {stage_cpu / sitk_cpu:.2f} CPU "
        "(target <= 2.0)"
    )
    print(
        f"peak memory: tracemalloc {mem['tracemalloc_peak'] / vol:.2f}x, "
        f"RSS growth {mem['rss_growth'] / vol:.2f}x the int16 volume (target <= 4x)"
    )
    print()
    print(
        "steps, CPU s (min over runs; each run a fresh process, the steps called twice: the "
        "first call pays the imports made on first use)"
    )
    names = ("load", "segment", "features", "classify", "stability")
    print(f"  {'':<14}" + "".join(f"{n:>11}" for n in names) + f"{'total':>11}")
    for which in ("first", "second"):
        cpu = [min(r[which][n][1] for r in step_runs) for n in names]
        row = "".join(f"{v:11.2f}" for v in cpu)
        print(f"  {which + ' call':<14}{row}{sum(cpu):11.2f}")
    print()
    print(f"profile of stage_to_folder (json only), total {prof['total']:.2f} s under cProfile:")
    for name in ("load", "segment", "features", "classify", "stability", "write"):
        t = prof["by_stage"].get(name, 0.0)
        share = 100 * t / prof["total"] if prof["total"] else 0.0
        print(f"  {name:<9} {t:7.2f} s  {share:5.1f} %")
    print("hostage functions by cumulative time (s cumulative, s own, calls):")
    for ct, tt, nc, name in prof["top"][:20]:
        print(f"  {ct:7.2f} {tt:7.2f} {nc:6d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
