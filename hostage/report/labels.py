"""The label map: ``foci.nii.gz`` (label = focus id) aligned with the CT, and ``foci_labels.json``.

The label map has the CT's grid: same shape, spacing, origin and direction, so
it opens as an overlay on the CT in 3D Slicer, ITK-SNAP or any NIfTI viewer.
``foci_labels.json`` says what each label is (stage, confidence, volume).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io.image_file import to_sitk_image
from ..io.write import atomic_path, atomic_write_json
from .figures import paint_labels

if TYPE_CHECKING:
    from . import StudyOutputs

__all__ = [
    "LABEL_MAP_NAME",
    "LABEL_TABLE_NAME",
    "focus_label_map",
    "label_table",
    "to_sitk_image",
    "write_label_map",
]

logger = logging.getLogger(__name__)

LABEL_MAP_NAME = "foci.nii.gz"
LABEL_TABLE_NAME = "foci_labels.json"
LABEL_SCHEMA = "hostage.labels/1"


def focus_label_map(ctx: StudyOutputs) -> np.ndarray:
    """Paint the (Z, Y, X) unsigned-integer label map of the reported foci (label = focus id, 0 = background).

    Only foci present in ``ctx.result`` are painted, from their own masks, so each
    label's voxel count × voxel volume equals that focus's ``volume_mm3``.
    """
    if ctx.volume is None or ctx.seg is None:
        raise ValueError("a label map needs the study's volume and segmentation (status 'ok')")
    reported = {f.id for f in ctx.result.foci}
    foci = [f for f in ctx.seg.foci if f.id in reported]
    return paint_labels(foci, shape_zyx=ctx.volume.shape_zyx)


def label_table(ctx: StudyOutputs, labels: np.ndarray) -> dict[str, Any]:
    """Build the ``foci_labels.json`` document: label -> focus id, stage, confidence, volume."""
    counts = np.bincount(
        labels.ravel(), minlength=max((f.id for f in ctx.result.foci), default=0) + 1
    )
    voxel_mm3 = ctx.volume.voxel_volume_mm3 if ctx.volume is not None else float("nan")
    entries = {}
    for f in ctx.result.foci:
        entries[str(f.id)] = {
            "focus_id": f.id,
            "stage": f.stage.value,
            "confidence": f.confidence,
            "volume_mm3": f.volume_mm3,
            "num_voxels": int(counts[f.id]),
            "label_volume_mm3": float(counts[f.id]) * voxel_mm3,
            "centroid_lps_mm": list(f.centroid_lps_mm),
            "atypical": f.atypical,
        }
    return {
        "schema": LABEL_SCHEMA,
        "study_key": ctx.result.study_key,
        "label_map": LABEL_MAP_NAME,
        "background": 0,
        "labels": entries,
    }


def write_label_map(ctx: StudyOutputs) -> list[Path]:
    """Write ``foci.nii.gz`` and ``foci_labels.json`` into ``ctx.out_dir``.

    Parameters
    ----------
    ctx : StudyOutputs
        A successful study (volume and segmentation present).

    Returns
    -------
    list of Path
        The two files written (atomically).
    """
    import SimpleITK as sitk

    if ctx.volume is None or ctx.seg is None:
        return []
    labels = focus_label_map(ctx)
    path = ctx.out_dir / LABEL_MAP_NAME
    with atomic_path(path) as tmp:
        sitk.WriteImage(to_sitk_image(labels, ctx.volume), str(tmp), useCompression=True)
    table = atomic_write_json(ctx.out_dir / LABEL_TABLE_NAME, label_table(ctx, labels))
    logger.debug("%s: wrote %s and %s", ctx.result.study_key, path.name, table.name)
    return [path, table]
