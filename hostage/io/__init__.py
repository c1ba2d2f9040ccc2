"""Read CT studies: DICOM folders (any layout) and NIfTI/NRRD/MetaImage volumes.

``load(source, *, series_uid=None, config=None) -> Volume`` is the entry point.

The readers (pydicom, SimpleITK) are imported when :func:`load` first needs them,
so that ``import hostage`` and the modules that only need :mod:`hostage.io.write`
or :mod:`hostage.io.volume` stay light.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import LoadConfig
from ..errors import InputError
from .discover import Discovery, StudySource, discover, group_studies, scan
from .volume import LoadReport, Volume

if TYPE_CHECKING:
    from ._dicom_header import DicomHeader

__all__ = ["Discovery", "LoadReport", "StudySource", "Volume", "discover", "load"]

logger = logging.getLogger(__name__)


def load(
    source: str | Path | StudySource,
    *,
    series_uid: str | None = None,
    config: LoadConfig | None = None,
) -> Volume:
    """Load one CT study as a Volume in Hounsfield units with LPS geometry.

    Parameters
    ----------
    source : str, Path or StudySource
        A folder holding one study's DICOM files (any names, any depth), one
        DICOM file, a NIfTI / NRRD / MetaImage file, or a :class:`StudySource`
        from :func:`discover` (only its files are read).
    series_uid : str, optional
        Load this SeriesInstanceUID instead of the automatic choice.
    config : LoadConfig, optional
        Limits and tolerances; defaults to ``LoadConfig()``.

    Returns
    -------
    Volume
        ``hu`` (Z, Y, X) int16 when exact, else float32; ``load_report`` says
        which series was chosen and why, what was skipped and corrected.

    Raises
    ------
    InputError
        Missing path, no DICOM, not CT (``code="not_ct"``), no usable series,
        several studies in the folder (``"multiple_studies"``), unreadable,
        truncated or undecodable files, a series above ``max_voxels``.
    GeometryError
        The chosen series is not a regular stack (``"missing_slices"``, ...).

    Examples
    --------
    >>> import hostage
    >>> hostage.load("/no/such/folder")
    Traceback (most recent call last):
    ...
    hostage.errors.InputError: /no/such/folder: path does not exist; give a DICOM folder, a DICOM file or a NIfTI/NRRD/MetaImage volume
    """
    from ._dicom_header import read_header
    from .dicom import load_dicom_study

    config = LoadConfig() if config is None else config
    if isinstance(source, StudySource):
        return _load_study_source(source, series_uid=series_uid, config=config)
    path = Path(source)
    s = scan([path])
    studies = group_studies(s.headers)
    skipped = list(s.skipped)
    if "" in studies and len(studies) + len(s.volumes) > 1:  # files without a StudyInstanceUID
        skipped += [f"{h.path}: DICOM file without StudyInstanceUID" for h in studies.pop("")]
    num_studies = len(studies) + len(s.volumes)
    if num_studies > 1:
        names = sorted(uid or "(no StudyInstanceUID)" for uid in studies)
        names += [v.name for v in s.volumes]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise InputError(
            f"holds {num_studies} studies ({shown}); load one at a time: pass a subfolder, "
            "or run `hostage batch` to process them all",
            path=path,
            code="multiple_studies",
        )
    if s.volumes:
        from .image_file import load_volume_file  # SimpleITK: only for volume files

        return load_volume_file(s.volumes[0], config=config)
    if not s.headers:
        detail = f"; first problems: {'; '.join(s.skipped[:3])}" if s.skipped else ""
        if path.is_file():
            read_header(path)  # raises the InputError saying what is wrong with the file
        raise InputError(
            f"no DICOM files or volumes found ({s.num_files} file(s), {s.num_non_dicom} "
            f"not DICOM){detail}",
            path=path,
            code="no_series",
        )
    return load_dicom_study(
        [h for hs in studies.values() for h in hs],
        source=path,
        series_uid=series_uid,
        config=config,
        num_files=s.num_files,
        num_non_dicom=s.num_non_dicom,
        skipped_files=tuple(x for x in skipped if not x.endswith(": not DICOM")),
    )


def _load_study_source(
    source: StudySource, *, series_uid: str | None, config: LoadConfig
) -> Volume:
    from ._dicom_header import read_headers
    from .dicom import load_dicom_study

    if source.kind == "volume":
        from .image_file import load_volume_file  # SimpleITK: only for volume files

        return load_volume_file(source.files[0], config=config)
    if source.kind != "dicom":
        raise InputError(
            f"unknown StudySource kind {source.kind!r} (expected 'dicom' or 'volume')",
            path=source.path,
        )
    if source.headers and len(source.headers) == len(source.files):
        results: list[DicomHeader | str] = list(source.headers)  # read by discover()
    else:
        results = read_headers(list(source.files))
    headers = [r for r in results if not isinstance(r, str)]
    skipped = tuple(r for r in results if isinstance(r, str) and r != "not_dicom")
    if source.study_instance_uid is not None:
        headers = [h for h in headers if h.study_instance_uid == source.study_instance_uid]
    return load_dicom_study(
        headers,
        source=source.path,
        series_uid=series_uid,
        config=config,
        num_files=len(source.files),
        num_non_dicom=sum(1 for r in results if r == "not_dicom"),
        skipped_files=skipped,
    )
