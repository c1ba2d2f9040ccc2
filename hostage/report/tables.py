"""Batch-level tables: ``OUT/index.json`` and ``OUT/foci.csv``, rebuilt from result files.

Both are derived data: they are rebuilt from the ``OUT/*/result.json`` files, so
an interrupted and resumed batch ends with the same tables as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..io.write import atomic_write_json, atomic_write_text
from ..result import StudyResult

__all__ = ["FOCI_BASE_COLUMNS", "foci_rows", "index_entries", "read_results", "write_tables"]

#: The first columns of foci.csv; ``feature_<name>`` columns follow, then ``reasons``.
FOCI_BASE_COLUMNS: tuple[str, ...] = (
    "study_key", "focus_id", "stage", "confidence", "score_amorphous", "score_immature",
    "score_mature", "volume_mm3", "centroid_x_mm", "centroid_y_mm", "centroid_z_mm", "atypical",
    "bone_labels",
)  # fmt: skip


def index_entries(results: Iterable[StudyResult], *, out: Path) -> list[dict[str, Any]]:
    """One ``index.json`` entry per study: key, source, status, result path (relative to OUT)."""
    entries = []
    for r in sorted(results, key=lambda r: r.study_key):
        entries.append(
            {
                "study_key": r.study_key,
                "source": r.source,
                "status": r.status.value,
                "result": f"{r.study_key}/result.json",
                "resection": None if r.resection is None else r.resection.status.value,
                "num_foci": len(r.foci),
                "error": r.error,
            }
        )
    return entries


def foci_rows(results: Iterable[StudyResult]) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of foci.csv (one row per focus, all studies, sorted by study key)."""
    rows: list[dict[str, Any]] = []
    feature_cols: dict[str, None] = {}
    for r in sorted(results, key=lambda r: r.study_key):
        for row in r.foci_table():
            rows.append(row)
            feature_cols.update({k: None for k in row if k.startswith("feature_")})
    columns = [*FOCI_BASE_COLUMNS, *feature_cols, "reasons"]
    return columns, rows


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def write_tables(
    out: str | Path, results: Sequence[StudyResult], *, foci_csv: bool = True
) -> tuple[Path, Path | None]:
    """Write ``index.json`` and ``foci.csv`` for `results` atomically.

    Parameters
    ----------
    out : str or Path
        The output folder.
    results : sequence of StudyResult
        Every study to list (the batch passes every result file found in `out`).
    foci_csv : bool
        Also write ``foci.csv`` (the ``csv`` output); an existing one is left alone
        otherwise.

    Returns
    -------
    index_path : Path
    foci_path : Path or None
        None when `foci_csv` is False.
    """
    out = Path(out)
    index_path = atomic_write_json(out / "index.json", {"studies": index_entries(results, out=out)})
    if not foci_csv:
        return index_path, None
    columns, rows = foci_rows(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k, "")) for k in columns})
    foci_path = atomic_write_text(out / "foci.csv", buf.getvalue())
    return index_path, foci_path


def read_results(out: str | Path) -> list[StudyResult]:
    """Read every complete ``OUT/<study_key>/result.json`` (unreadable ones are skipped)."""
    results = []
    for path in sorted(Path(out).glob("*/result.json")):
        try:
            results.append(StudyResult.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return results
