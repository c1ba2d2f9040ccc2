"""Render report.html in headless Chromium and check that the page shows its verdict and figures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hostage.report.html import VERDICT_TEXT, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,  # starts a browser: a few seconds
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium not installed (Debian: apt-get install chromium); report rendering not checked",
    ),
]


def screenshot(html_path: Path, tmp_path: Path) -> np.ndarray:
    from PIL import Image

    png = tmp_path / "shot.png"
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        "--window-size=1200,2000",
        html_path.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert png.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _near(img: np.ndarray, hex_colour: str, tol: int = 30) -> np.ndarray:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return np.abs(img - rgb).sum(axis=-1) < tol


def test_report_renders_verdict_and_figures(kit, tmp_path):
    study = kit.make_study("axial-anisotropic")
    [path] = write_report(kit.outputs_for(study, tmp_path / "out"))
    img = screenshot(path, tmp_path)
    assert img.shape[:2] == (2000, 1200)
    white = (img > 245).all(axis=-1)
    assert white.mean() < 0.9  # not a blank page
    # the verdict is drawn in its colour near the top
    colour = VERDICT_TEXT[study.result.resection.status][1]
    verdict_rows = np.nonzero(_near(img, colour).any(axis=1))[0]
    assert verdict_rows.size > 10 and verdict_rows.min() < 300
    # the CT panels: large areas of dark grey (soft tissue in a bone window) below the tables
    dark = (img < 110).all(axis=-1) & (np.ptp(img, axis=-1) < 12)
    assert dark[600:].sum() > 100_000
    # figures are tall blocks of rows with much dark grey (text lines are ~20 px tall)
    blocks = _runs(dark.sum(axis=1) > 300)
    tall = [(start, stop) for start, stop in blocks if stop - start >= 120]
    assert len(tall) >= 2  # focus 1 and the top of focus 2 fit in 2000 px
    assert tall[0][0] > verdict_rows.max()


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True values."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0], strict=True))
