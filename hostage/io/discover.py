"""Find studies below some paths: DICOM files of any name and depth, and volume files.

Only headers are read while grouping (``stop_before_pixels``); pixel data is read
later, by :mod:`hostage.io.dicom`, for the one series that is chosen.

A *study* is one StudyInstanceUID (all its DICOM files, every series) or one
NIfTI / NRRD / MetaImage volume file.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from ._dicom_header import (
        PARSE_ERRORS,
        DicomHeader,
        FrameGeometry,
        read_header,
        read_headers,
    )

__all__ = [
    "PARSE_ERRORS",
    "VOLUME_SUFFIXES",
    "DicomHeader",
    "Discovery",
    "FrameGeometry",
    "Scan",
    "StudySource",
    "discover",
    "group_studies",
    "is_volume_file",
    "read_header",
    "read_headers",
    "scan",
]

logger = logging.getLogger(__name__)

# The header reader (and pydicom) is imported on first use, so that importing hostage stays
# light; its names are still importable from here.
_HEADER_NAMES = frozenset(
    {
        "DICOMDIR_SOP_CLASS",
        "PARSE_ERRORS",
        "DicomHeader",
        "FrameGeometry",
        "read_header",
        "read_headers",
    }
)


def __getattr__(name: str) -> Any:
    if name not in _HEADER_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _dicom_header

    return getattr(_dicom_header, name)


#: File name endings read as volumes through SimpleITK (one study per file).
VOLUME_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")

#: Data files that belong to a ``.mhd`` / ``.nhdr`` header; not counted as junk.
_DETACHED_DATA_SUFFIXES: tuple[str, ...] = (".raw", ".zraw", ".raw.gz")


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySource:
    """One study found by :func:`discover`: a StudyInstanceUID or one volume file.

    Attributes
    ----------
    key_hint : str
        The StudyInstanceUID, or the file name of a NIfTI/NRRD/MHA volume.
    path : Path
        The folder holding the study's files (their common parent), or the volume file.
    kind : str
        ``"dicom"`` or ``"volume"``.
    files : tuple of Path
        Every DICOM file of the study (all its series), or ``(volume file,)``.
    study_instance_uid : str or None
        None for volume files.
    headers : tuple of DicomHeader
        The headers discovery read, one per file of `files` in the same order
        (empty for volume files, or when the files should be read again):
        :func:`hostage.io.load` uses them instead of reading every header twice.
        A cache of what `files` hold: not shown in the repr, not compared.
    """

    key_hint: str
    path: Path
    kind: str
    files: tuple[Path, ...]
    study_instance_uid: str | None
    headers: tuple[DicomHeader, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Discovery:
    """Everything found below the input paths.

    Attributes
    ----------
    studies : tuple of StudySource
        Sorted by ``key_hint``.
    num_files : int
        Files looked at.
    num_non_dicom : int
        Files that are neither DICOM nor a volume file.
    skipped : tuple of str
        ``"path: reason"`` for files that were not used at discovery time.
    """

    studies: tuple[StudySource, ...]
    num_files: int
    num_non_dicom: int
    skipped: tuple[str, ...]


# ----------------------------------------------------------------------------- file walking
def is_volume_file(path: Path) -> bool:
    """Return True if `path` has a NIfTI / NRRD / MetaImage file name ending.

    Examples
    --------
    >>> is_volume_file(Path("ct.nii.gz")), is_volume_file(Path("IM0001"))
    (True, False)
    """
    name = path.name.lower()
    return name.endswith(VOLUME_SUFFIXES)


def _walk(paths: Sequence[str | Path]) -> Iterator[Path]:
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InputError(
                "path does not exist; give a DICOM folder, a DICOM file or a "
                "NIfTI/NRRD/MetaImage volume",
                path=path,
                code="missing_path",
            )
        if path.is_file():
            yield path
            continue
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                yield Path(root) / name


# ----------------------------------------------------------------------------- header reading
@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """Internal result of walking the inputs: headers kept for the loader."""

    headers: tuple[DicomHeader, ...]
    volumes: tuple[Path, ...]
    num_files: int
    num_non_dicom: int
    skipped: tuple[str, ...]


def scan(paths: Sequence[str | Path], *, jobs: int = 1) -> Scan:
    """Walk `paths` and read every file's header once.

    Parameters
    ----------
    paths : sequence of str or Path
        Folders and files.
    jobs : int
        Parallel workers for header reading.

    Returns
    -------
    Scan

    Raises
    ------
    InputError
        If a path does not exist (``code="missing_path"``).
    """
    files = list(_walk(paths))
    volumes = [f for f in files if is_volume_file(f)]
    volume_dirs = {v.parent for v in volumes}
    detached = {
        f
        for f in files
        if f.parent in volume_dirs and f.name.lower().endswith(_DETACHED_DATA_SUFFIXES)
    }
    others = [f for f in files if not is_volume_file(f) and f not in detached]
    from ._dicom_header import DICOMDIR_SOP_CLASS, DicomHeader, read_headers

    results = read_headers(others, jobs=jobs)
    headers: list[DicomHeader] = []
    skipped: list[str] = []
    num_non_dicom = 0
    for f, r in zip(others, results, strict=True):
        if isinstance(r, DicomHeader):
            if r.sop_class_uid == DICOMDIR_SOP_CLASS:
                skipped.append(f"{f}: DICOMDIR (a directory index, not an image)")
            else:
                headers.append(r)
        elif r == "not_dicom":
            num_non_dicom += 1
            skipped.append(f"{f}: not DICOM")
        else:
            skipped.append(r)
    return Scan(
        headers=tuple(headers),
        volumes=tuple(volumes),
        num_files=len(files),
        num_non_dicom=num_non_dicom,
        skipped=tuple(skipped),
    )


def _common_parent(files: Sequence[Path]) -> Path:
    try:
        return Path(os.path.commonpath([str(f.parent) for f in files]))
    except ValueError:  # different drives
        return files[0].parent


def group_studies(headers: Iterable[DicomHeader]) -> dict[str, list[DicomHeader]]:
    """Group headers by StudyInstanceUID (files without one form a group keyed ``""``)."""
    by_study: dict[str, list[DicomHeader]] = defaultdict(list)
    for h in headers:
        by_study[h.study_instance_uid].append(h)
    return dict(by_study)


def discover(paths: Sequence[str | Path], *, jobs: int = 1) -> Discovery:
    """Find the studies below `paths`.

    Parameters
    ----------
    paths : sequence of str or Path
        Folders (walked to any depth; file names and extensions do not matter)
        and files.
    jobs : int
        Parallel header readers (threads; processes above 2000 files).

    Returns
    -------
    Discovery
        One :class:`StudySource` per StudyInstanceUID and per volume file,
        sorted by ``key_hint``, plus counts and skip reasons.

    Raises
    ------
    InputError
        If a path does not exist.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "notes.txt").write_text("not an image")
    ...     found = discover([d])
    >>> found.studies, found.num_files, found.num_non_dicom
    ((), 1, 1)
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    s = scan(paths, jobs=jobs)
    studies: list[StudySource] = []
    skipped = list(s.skipped)
    for uid, hs in group_studies(s.headers).items():
        hs.sort(key=lambda h: h.path)
        files = tuple(h.path for h in hs)
        if not uid:
            skipped.extend(f"{f}: DICOM file without StudyInstanceUID" for f in files)
            continue
        studies.append(
            StudySource(
                key_hint=uid,
                path=_common_parent(files),
                kind="dicom",
                files=files,
                study_instance_uid=uid,
                headers=tuple(hs),
            )
        )
    for v in s.volumes:
        studies.append(
            StudySource(key_hint=v.name, path=v, kind="volume", files=(v,), study_instance_uid=None)
        )
    studies.sort(key=lambda st: (st.key_hint, str(st.path)))
    logger.debug("discovered %d studies in %d files", len(studies), s.num_files)
    return Discovery(
        studies=tuple(studies),
        num_files=s.num_files,
        num_non_dicom=s.num_non_dicom,
        skipped=tuple(skipped),
    )
