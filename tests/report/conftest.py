"""Small studies with known foci for the report tests (geometry chosen per test).

Until the pipeline lands these tests build a real ``StudyResult`` / ``Segmentation``
from a labelled synthetic volume: foci come from the labels with the volume's
geometry, their stages from the truth of the volume, and a few features are
measured from the HU (so nothing in a report is typed in by hand).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage as ndi

from hostage.classify.types import FocusStage, ResectionVerdict
from hostage.config import Config
from hostage.enums import Resection, Stage
from hostage.features import FocusFeatures
from hostage.io.volume import Volume
from hostage.report import StudyOutputs
from hostage.result import StudyResult
from hostage.segment import ReferenceTissues, Segmentation
from hostage.segment.foci import Focus

#: A name that must never leak into logs, file names or reports.
PATIENT_NAME = "Secret^Patient^Name"

AXIAL = np.eye(3)[:, ::-1]


def rotation_direction(angle_deg: float) -> np.ndarray:
    """An oblique grid: the standard axial grid rotated about the S axis, z axis flipped."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    d = rot @ AXIAL
    d[:, 0] *= -1  # slices run head to feet
    return d


@dataclass
class Study:
    volume: Volume
    seg: Segmentation
    result: StudyResult
    truth: dict[int, Stage]


def _ellipsoid(shape, centre, radii_mm, spacing):
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    d = sum(
        ((g - c) * s / r) ** 2
        for g, c, s, r in zip((zz, yy, xx), centre, spacing, radii_mm, strict=True)
    )
    return d


def make_volume(
    *,
    shape_zyx=(20, 44, 52),
    spacing_zyx_mm=(2.5, 0.8, 0.7),
    direction_lps=AXIAL,
    origin_lps_mm=(-20.0, -30.0, 100.0),
    rng=0,
    study_uid=None,
    series_uid=None,
) -> tuple[Volume, np.ndarray, dict[int, Stage]]:
    """Muscle, a bone rod and three foci (amorphous, immature, mature) with noise."""
    rng = np.random.default_rng(rng)
    shape = tuple(shape_zyx)
    sp = spacing_zyx_mm
    hu = np.full(shape, 50.0, np.float32)
    labels = np.zeros(shape, np.int32)
    z, y, x = shape
    # native bone rod along z
    rod = _ellipsoid(shape, (z / 2, y * 0.75, x * 0.2), (1e6, 5.0, 5.0), sp)
    hu[rod <= 1] = 1300.0
    hu[rod <= 0.45] = 20.0
    truth = {1: Stage.AMORPHOUS, 2: Stage.IMMATURE, 3: Stage.MATURE}
    centres = {
        1: (z * 0.35, y * 0.3, x * 0.3),
        2: (z * 0.5, y * 0.3, x * 0.72),
        3: (z * 0.6, y * 0.7, x * 0.65),
    }
    radii = {1: (6.0, 4.0, 5.0), 2: (5.0, 5.0, 4.0), 3: (7.0, 6.0, 6.5)}
    for fid, c in centres.items():
        d = _ellipsoid(shape, c, radii[fid], sp)
        inside = d <= 1
        labels[inside] = fid
        if truth[fid] is Stage.AMORPHOUS:
            hu[inside] = 250.0 + 120.0 * rng.random(int(inside.sum()))
        elif truth[fid] is Stage.IMMATURE:
            hu[inside] = 450.0 + 200.0 * rng.random(int(inside.sum()))
        else:
            hu[inside] = -60.0
            hu[inside & (d > 0.55)] = 1200.0
    hu += rng.normal(0.0, 15.0, shape).astype(np.float32)
    volume = Volume(
        hu=np.round(hu).astype(np.int16),
        spacing_zyx_mm=tuple(spacing_zyx_mm),
        origin_lps_mm=tuple(origin_lps_mm),
        direction_lps=np.asarray(direction_lps, float),
        study_instance_uid=study_uid or generate_uid(),
        series_instance_uid=series_uid or generate_uid(),
        source=Path("synthetic"),
    )
    return volume, labels, truth


def foci_from_labels(volume: Volume, labels: np.ndarray) -> tuple[Focus, ...]:
    foci = []
    for fid, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        mask = labels[sl] == fid
        com = ndi.center_of_mass(labels == fid)
        foci.append(
            Focus(
                id=fid,
                bbox_zyx=sl,
                mask=mask,
                volume_mm3=float(mask.sum()) * volume.voxel_volume_mm3,
                centroid_lps_mm=tuple(float(v) for v in volume.index_to_lps_mm(com)),
            )
        )
    return tuple(foci)


def measured_features(volume: Volume, focus: Focus) -> FocusFeatures:
    vals = volume.hu[focus.bbox_zyx][focus.mask].astype(np.float64)
    return FocusFeatures(
        focus_id=focus.id,
        values={
            "density_mean_hu": float(vals.mean()),
            "density_p90_hu": float(np.percentile(vals, 90)),
            "density_p99_hu": float(np.percentile(vals, 99)),
            "size_num_voxels": float(focus.mask.sum()),
        },
    )


def stage_from_truth(stage: Stage) -> FocusStage:
    others = [s for s in Stage if s is not stage]
    return FocusStage(
        stage=stage,
        scores={stage: 0.8, others[0]: 0.15, others[1]: 0.05},
        confidence=0.8,
        reasons=(f"truth of the synthetic volume says {stage.value} <b>&</b>",),
    )


def verdict_for(stages: Sequence[FocusStage]) -> ResectionVerdict:
    if not stages:
        return ResectionVerdict(status=Resection.NO_FOCI, reasons=("no foci found",))
    if all(s.stage is Stage.MATURE for s in stages):
        return ResectionVerdict(
            status=Resection.READY, reasons=(f"all {len(stages)} foci are mature",)
        )
    n = sum(s.stage is not Stage.MATURE for s in stages)
    return ResectionVerdict(
        status=Resection.NOT_READY, reasons=(f"{n} of {len(stages)} foci are not mature",)
    )


def build_study(volume: Volume, labels: np.ndarray, truth: dict[int, Stage]) -> Study:
    foci = foci_from_labels(volume, labels)
    feats = [measured_features(volume, f) for f in foci]
    stages = [stage_from_truth(truth[f.id]) for f in foci]
    result = StudyResult.from_parts(
        volume, foci, feats, stages, verdict_for(stages), config=Config()
    )
    nanref = float("nan")
    seg = Segmentation(
        body_mask=np.ones(volume.shape_zyx, bool),
        bone_mask=np.asarray(volume.hu) > 900,
        metal_mask=np.zeros(volume.shape_zyx, bool),
        labels=labels.astype(np.int32),
        foci=foci,
        reference=ReferenceTissues(
            muscle_hu=nanref, fat_hu=nanref, cortex_hu=nanref, noise_hu=nanref, edge_width_mm=nanref
        ),
    )
    return Study(volume=volume, seg=seg, result=result, truth=truth)


def write_dicom_series(volume: Volume, folder: Path) -> tuple[Path, ...]:
    """Write `volume` as a valid single-frame CT series (one file per z slice, in slice order)."""
    folder.mkdir(parents=True, exist_ok=True)
    d = volume.direction_lps
    row_dir, col_dir = d[:, 2], d[:, 1]  # along a row = +x index; down a column = +y index
    frame_uid = generate_uid()
    paths = []
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    for k in range(volume.shape_zyx[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"slice_{k:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.PatientName = PATIENT_NAME
        ds.PatientID = "TEST-ID-1"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.StudyInstanceUID = volume.study_instance_uid
        ds.SeriesInstanceUID = volume.series_instance_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.StudyDate = now.strftime("%Y%m%d")
        ds.StudyTime = now.strftime("%H%M%S")
        ds.AccessionNumber = "ACC1"
        ds.ReferringPhysicianName = ""
        ds.StudyID = "1"
        ds.Modality = "CT"
        ds.Manufacturer = "hostage-tests"
        ds.SeriesNumber = 3
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [float(v) for v in volume.index_to_lps_mm((k, 0, 0))]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [volume.spacing_zyx_mm[1], volume.spacing_zyx_mm[2]]
        ds.SliceThickness = volume.spacing_zyx_mm[0]
        ds.KVP = 120
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape_zyx[1], volume.shape_zyx[2]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = 1
        ds.RescaleIntercept = 0
        ds.RescaleType = "HU"
        ds.AcquisitionNumber = 1
        ds.PixelData = np.ascontiguousarray(volume.hu[k], dtype=np.int16).tobytes()
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return tuple(paths)


#: Named grids the tests are parametrized over (anisotropic, isotropic, oblique with
#: slices running head to feet).
GEOMETRIES = {
    "axial-anisotropic": dict(spacing_zyx_mm=(2.5, 0.8, 0.7), direction_lps=AXIAL),
    "axial-isotropic": dict(spacing_zyx_mm=(1.0, 1.0, 1.0), direction_lps=AXIAL),
    "oblique-flipped": dict(spacing_zyx_mm=(1.5, 0.6, 0.9), direction_lps=rotation_direction(25.0)),
}


def make_study(geometry: str = "axial-anisotropic", **kwargs) -> Study:
    volume, labels, truth = make_volume(**GEOMETRIES[geometry], **kwargs)
    return build_study(volume, labels, truth)


@pytest.fixture
def small_study() -> Study:
    volume, labels, truth = make_volume()
    return build_study(volume, labels, truth)


def outputs_for(study: Study, out_dir: Path, dicom_files: Sequence[Path] = ()) -> StudyOutputs:
    return StudyOutputs(
        result=study.result,
        volume=study.volume,
        seg=study.seg,
        out_dir=out_dir,
        dicom_files=tuple(dicom_files),
    )


@pytest.fixture(scope="session")
def kit():
    """The helpers of this conftest (test modules cannot import it under importlib mode)."""
    import sys

    return sys.modules[__name__]
