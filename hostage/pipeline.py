"""One study from source to result: load -> segment -> measure -> classify, as plain calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classify import check_stability, classify, resection
from .config import Config
from .features import measure
from .io import load
from .io.volume import Volume
from .result import StudyResult
from .segment import Segmentation, segment

__all__ = ["Analysis", "analyse", "stage", "stage_to_folder"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Analysis:
    """A staged study with the intermediate objects the viewer outputs need."""

    volume: Volume
    seg: Segmentation
    result: StudyResult


def analyse(
    source: str | Path | Volume,
    *,
    config: Config | None = None,
    prior: StudyResult | None = None,
    study_key: str | None = None,
    bone_labels: str | Path | np.ndarray | None = None,
) -> Analysis:
    """Run the whole pipeline and keep the volume and segmentation (see :func:`stage`)."""
    config = Config() if config is None else config
    volume = source if isinstance(source, Volume) else load(source, config=config.load)
    labels: np.ndarray | None = None
    label_name: str | None = None
    label_names: dict[int, str] | None = None
    label_warnings: tuple[str, ...] = ()
    if isinstance(bone_labels, (str, Path)):
        from .io.label_map import load_label_map  # SimpleITK only when a label map is given

        label_map = load_label_map(bone_labels, volume, config=config.load)
        labels, label_name, label_warnings = (
            label_map.labels,
            label_map.source.name,
            label_map.warnings,
        )
        label_names = dict(label_map.names)
    elif bone_labels is not None:
        labels, label_name = np.asarray(bone_labels), "(array)"
    seg = segment(volume, config=config.segment, bone_labels=labels)
    features = [measure(volume, f, seg, config=config.features) for f in seg.foci]
    stages = [classify(f, config=config.classify) for f in features]
    stages = check_stability(volume, seg, features, stages, config=config)
    verdict = resection(
        stages, foci=seg.foci, features=features, prior=prior, config=config.classify
    )
    result = StudyResult.from_parts(
        volume,
        seg.foci,
        features,
        stages,
        verdict,
        config=config,
        study_key=study_key,
        warnings=(*label_warnings, *seg.warnings),
        focus_bone_labels=None if labels is None else seg.focus_bone_labels,
        bone_label_map=label_name,
        bone_label_names=label_names,
    )
    return Analysis(volume=volume, seg=seg, result=result)


def stage(
    source: str | Path | Volume,
    *,
    config: Config | None = None,
    prior: StudyResult | None = None,
    study_key: str | None = None,
    bone_labels: str | Path | np.ndarray | None = None,
) -> StudyResult:
    """Stage every HO focus of one study and decide resection readiness.

    Parameters
    ----------
    source : str, Path or Volume
        A study folder (DICOM), a volume file (NIfTI, NRRD, MetaImage), or an
        already loaded :class:`~hostage.io.volume.Volume`.
    config : Config, optional
        Settings; defaults to ``Config()``.
    prior : StudyResult, optional
        The result of an earlier study of the same patient; a mature focus that
        changed markedly since then is not yet "ready".
    study_key : str, optional
        Key for the result; derived from the StudyInstanceUID (or file name) by default.
    bone_labels : str, Path or ndarray, optional
        An external label map of the bones (for example TotalSegmentator's
        output): a NIfTI / NRRD / MetaImage file, or a folder of
        per-structure masks named after the structures, on any grid that
        overlaps the CT (resampled onto it,
        :func:`hostage.io.label_map.load_label_map`), or an integer array of
        the CT's shape. Every voxel with a label above
        0 is native bone (instead of the built-in skeleton), and each focus
        records the labels it lies in or touches (``FocusResult.bone_labels``).

    Returns
    -------
    StudyResult
        Status ``"ok"``; errors about the input raise instead.

    Raises
    ------
    InputError
        If the study or the label map cannot be read, or the label map does
        not overlap the CT.
    """
    return analyse(
        source, config=config, prior=prior, study_key=study_key, bone_labels=bone_labels
    ).result


def stage_to_folder(
    source: str | Path | Volume,
    *,
    out: str | Path,
    config: Config | None = None,
    prior: StudyResult | None = None,
    study_key: str | None = None,
    outputs: Sequence[str] | None = None,
    bone_labels: str | Path | np.ndarray | None = None,
) -> StudyResult:
    """Stage one study and write its files into ``OUT/<study_key>/``.

    Returns the result as written. Errors propagate (isolation is the caller's job).
    """
    from .report import OUTPUTS, StudyOutputs, write_study_outputs

    config = Config() if config is None else config
    analysis = analyse(
        source, config=config, prior=prior, study_key=study_key, bone_labels=bone_labels
    )
    ctx = StudyOutputs(
        result=analysis.result,
        volume=analysis.volume,
        seg=analysis.seg,
        out_dir=Path(out) / analysis.result.study_key,
        dicom_files=analysis.volume.source_files,
    )
    return write_study_outputs(ctx, outputs=OUTPUTS if outputs is None else outputs)
