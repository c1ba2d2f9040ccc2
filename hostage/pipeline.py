"""One study from source to result: load -> segment -> measure -> classify, as plain calls."""

from __future__ import annotations

from pathlib import Path

from .classify import classify, resection
from .config import Config
from .features import measure
from .io import load
from .io.volume import Volume
from .result import StudyResult
from .segment import segment

__all__ = ["stage"]


def stage(
    source: str | Path | Volume,
    *,
    config: Config | None = None,
    prior: StudyResult | None = None,
    study_key: str | None = None,
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

    Returns
    -------
    StudyResult
        Status ``"ok"``; errors about the input raise instead.

    Raises
    ------
    InputError
        If the study cannot be read.
    """
    config = Config() if config is None else config
    volume = source if isinstance(source, Volume) else load(source, config=config.load)
    seg = segment(volume, config=config.segment)
    features = [measure(volume, f, seg, config=config.features) for f in seg.foci]
    stages = [classify(f, config=config.classify) for f in features]
    verdict = resection(stages, foci=seg.foci, prior=prior)
    return StudyResult.from_parts(
        volume,
        seg.foci,
        features,
        stages,
        verdict,
        config=config,
        study_key=study_key,
        warnings=seg.warnings,
    )
