"""Benchmark: hostage.load vs SimpleITK ImageSeriesReader on a 512x512x300 int16 CT series.

Usage::

    python benchmarks/load.py [--dir DIR] [--slices 300] [--repeat 3]

Writes the series once (to DIR, or a temporary folder), then measures, each in a
fresh subprocess so that neither run warms the other's imports or allocations:

* hostage: ``hostage.load(DIR)`` (discovery of the folder included);
* SimpleITK: ``ImageSeriesReader`` on the same files (GDCM file names sorted by
  GDCMSeriesFileNames, int16 output);
* the ratio of the two (best of ``--repeat`` runs each; the page cache is warm);
* hostage's peak memory: tracemalloc peak of Python/numpy allocations during the
  load, and the growth of the process' peak RSS (VmHWM) over the load,
  both against the int16 volume size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (300, 512, 512)

HOSTAGE_RUN = r"""
import json, sys, time, tracemalloc
import numpy as np
import hostage
folder = sys.argv[1]

def peak_rss_kib():
    # VmHWM is this process's own high-water mark; ru_maxrss is carried over from the
    # parent across fork + exec on Linux
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

rss0 = peak_rss_kib()
tracemalloc.start()
t0 = time.perf_counter()
v = hostage.load(folder)
dt = time.perf_counter() - t0
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss1 = peak_rss_kib()
print(json.dumps({"seconds": dt, "tracemalloc_peak": peak, "rss_growth": (rss1 - rss0) * 1024,
                  "shape": list(v.hu.shape), "dtype": str(v.hu.dtype), "nbytes": v.hu.nbytes,
                  "checksum": int(v.hu.astype(np.int64).sum())}))
"""

HOSTAGE_TIME_ONLY = r"""
import json, sys, time
import hostage
t0 = time.perf_counter()
v = hostage.load(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

SITK_RUN = r"""
import json, sys, time
import numpy as np
import SimpleITK as sitk
folder = sys.argv[1]
t0 = time.perf_counter()
reader = sitk.ImageSeriesReader()
names = reader.GetGDCMSeriesFileNames(folder)
reader.SetFileNames(names)
reader.SetOutputPixelType(sitk.sitkInt16)
img = reader.Execute()
arr = sitk.GetArrayViewFromImage(img)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "shape": list(arr.shape),
                  "checksum": int(arr.astype(np.int64).sum())}))
"""


def write_series(folder: Path, n: int) -> None:
    """Write an n-slice 512x512 int16 CT series (uncompressed) with pydicom."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    study, series = generate_uid(), generate_uid()
    yy, xx = np.mgrid[:512, :512]
    body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 230.0) ** 2 < 1
    for k in range(n):
        stored = np.where(body, 1064, 24).astype(np.int16)
        stored += rng.integers(-20, 20, size=stored.shape, dtype=np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.Modality = "CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [-250.0, -250.0, -300.0 + 1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.9765625, 0.9765625]
        ds.SliceThickness = 1.25
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = stored.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = stored.tobytes()
        # shuffled, extension-less names: order must come from the positions
        ds.save_as(folder / f"{(k * 7919) % 100003:06d}", enforce_file_format=True)
    del pydicom


def run(code: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="where to write the series (kept)")
    parser.add_argument("--slices", type=int, default=SHAPE[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp) / "series"
        if not folder.exists() or not any(folder.iterdir()):
            t0 = time.perf_counter()
            write_series(folder, args.slices)
            print(f"wrote {args.slices} slices to {folder} in {time.perf_counter() - t0:.1f} s")
        mem = run(HOSTAGE_RUN, folder)
        t_h = min([run(HOSTAGE_TIME_ONLY, folder)["seconds"] for _ in range(args.repeat)])
        sitk_runs = [run(SITK_RUN, folder) for _ in range(args.repeat)]
        t_s = min(r["seconds"] for r in sitk_runs)
        vol_mb = mem["nbytes"] / 2**20
        same = "same" if sitk_runs[0]["checksum"] == mem["checksum"] else "DIFFERENT"
        print(
            f"volume: {mem['shape']} {mem['dtype']} = {vol_mb:.1f} MiB ({same} HU sum as SimpleITK)"
        )
        print(f"hostage.load (discovery included): {t_h:.3f} s (best of {args.repeat})")
        print(f"SimpleITK ImageSeriesReader int16: {t_s:.3f} s (best of {args.repeat})")
        print(f"ratio hostage / SimpleITK: {t_h / t_s:.2f} (target <= 1.5)")
        print(
            f"peak memory during load: tracemalloc {mem['tracemalloc_peak'] / 2**20:.1f} MiB "
            f"= {mem['tracemalloc_peak'] / mem['nbytes']:.2f}x the int16 volume; "
            f"peak RSS growth {mem['rss_growth'] / 2**20:.1f} MiB "
            f"= {mem['rss_growth'] / mem['nbytes']:.2f}x (target <= 2.5x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
