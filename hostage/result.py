"""The study result: the ``result.json`` schema (``hostage.result/1``) as dataclasses.

:class:`StudyResult` and :class:`FocusResult` mirror CONTRACT.md exactly;
``to_dict()`` gives the JSON document and ``from_dict()`` reads it back.
Non-finite feature values (a documented "not defined" NaN) are written as
``null`` and read back as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .classify.types import ResectionVerdict
from .enums import Stage, Status

if TYPE_CHECKING:
    from .classify.types import FocusStage
    from .config import Config
    from .features import FocusFeatures
    from .io.volume import Volume
    from .segment.foci import Focus

__all__ = ["SCHEMA", "FocusResult", "StudyInfo", "StudyResult"]

SCHEMA = "hostage.result/1"


def _num(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _from_num(v: Any) -> float:
    return math.nan if v is None else float(v)


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyInfo:
    """Identifiers and grid of the staged series (no free-text fields)."""

    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    shape_zyx: tuple[int, int, int] | None = None
    spacing_zyx_mm: tuple[float, float, float] | None = None
    load_report: Mapping[str, Any] | None = None
    bone_label_map: str | None = None
    bone_label_names: Mapping[int, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the ``study`` block of result.json."""
        d: dict[str, Any] = {
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "shape_zyx": None if self.shape_zyx is None else list(self.shape_zyx),
            "spacing_zyx_mm": None if self.spacing_zyx_mm is None else list(self.spacing_zyx_mm),
        }
        if self.load_report is not None:
            d["load_report"] = dict(self.load_report)
        if self.bone_label_map is not None:
            d["bone_label_map"] = self.bone_label_map
        if self.bone_label_names:
            d["bone_label_names"] = {str(k): v for k, v in self.bone_label_names.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyInfo:
        """Read the ``study`` block of result.json."""
        shape = d.get("shape_zyx")
        spacing = d.get("spacing_zyx_mm")
        return cls(
            study_instance_uid=d.get("study_instance_uid"),
            series_instance_uid=d.get("series_instance_uid"),
            shape_zyx=None if shape is None else tuple(int(v) for v in shape),  # type: ignore[arg-type]
            spacing_zyx_mm=None if spacing is None else tuple(float(v) for v in spacing),  # type: ignore[arg-type]
            load_report=d.get("load_report"),
            bone_label_map=d.get("bone_label_map"),
            bone_label_names={int(k): str(v) for k, v in d["bone_label_names"].items()}
            if d.get("bone_label_names")
            else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FocusResult:
    """One focus in result.json: where it is, its stage, scores, features and reasons."""

    id: int
    centroid_lps_mm: tuple[float, float, float]
    bbox_lps_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    volume_mm3: float
    stage: Stage
    confidence: float
    scores: Mapping[Stage, float]
    features: Mapping[str, float]
    reasons: tuple[str, ...] = ()
    atypical: bool = False
    bone_labels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", Stage(self.stage))
        if self.bone_labels is not None:
            object.__setattr__(self, "bone_labels", tuple(int(v) for v in self.bone_labels))
        object.__setattr__(
            self, "scores", MappingProxyType({Stage(k): float(v) for k, v in self.scores.items()})
        )
        object.__setattr__(
            self, "features", MappingProxyType({k: float(v) for k, v in self.features.items()})
        )
        object.__setattr__(self, "reasons", tuple(self.reasons))

    def to_dict(self) -> dict[str, Any]:
        """Return one entry of ``foci`` in result.json."""
        return {
            "id": self.id,
            "centroid_lps_mm": [float(v) for v in self.centroid_lps_mm],
            "bbox_lps_mm": [[float(v) for v in corner] for corner in self.bbox_lps_mm],
            "volume_mm3": float(self.volume_mm3),
            "stage": self.stage.value,
            "confidence": float(self.confidence),
            "scores": {s.value: float(v) for s, v in self.scores.items()},
            "features": {k: _num(v) for k, v in self.features.items()},
            "reasons": list(self.reasons),
            "atypical": bool(self.atypical),
            "bone_labels": None if self.bone_labels is None else list(self.bone_labels),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FocusResult:
        """Read one entry of ``foci`` in result.json."""
        lo, hi = d["bbox_lps_mm"]
        return cls(
            id=int(d["id"]),
            centroid_lps_mm=tuple(float(v) for v in d["centroid_lps_mm"]),  # type: ignore[arg-type]
            bbox_lps_mm=(tuple(map(float, lo)), tuple(map(float, hi))),  # type: ignore[arg-type]
            volume_mm3=float(d["volume_mm3"]),
            stage=Stage(d["stage"]),
            confidence=float(d["confidence"]),
            scores={Stage(k): float(v) for k, v in d["scores"].items()},
            features={k: _from_num(v) for k, v in d["features"].items()},
            reasons=tuple(d.get("reasons", ())),
            atypical=bool(d.get("atypical", False)),
            bone_labels=None if d.get("bone_labels") is None else tuple(d["bone_labels"]),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyResult:
    """The result of staging one study: exactly the result.json schema (CONTRACT.md)."""

    status: Status
    study_key: str
    source: str
    error: str | None = None
    study: StudyInfo = field(default_factory=StudyInfo)
    foci: tuple[FocusResult, ...] = ()
    resection: ResectionVerdict | None = None
    warnings: tuple[str, ...] = ()
    software: Mapping[str, Any] = field(
        default_factory=lambda: {"name": "hostage", "version": __version__}
    )
    schema: str = SCHEMA

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "foci", tuple(self.foci))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    # ---------------------------------------------------------------- building
    @classmethod
    def from_parts(
        cls,
        volume: Volume,
        foci: Sequence[Focus],
        features: Sequence[FocusFeatures],
        stages: Sequence[FocusStage],
        verdict: ResectionVerdict,
        *,
        config: Config,
        study_key: str | None = None,
        warnings: Sequence[str] = (),
        focus_bone_labels: Mapping[int, tuple[int, ...]] | None = None,
        bone_label_map: str | None = None,
        bone_label_names: Mapping[int, str] | None = None,
    ) -> StudyResult:
        """Assemble a successful result from the outputs of each pipeline stage.

        `focus_bone_labels` (focus id -> labels it lies in or touches), the
        name of the `bone_label_map` and its `bone_label_names` (label ->
        structure, when known) are given when an external bone label map was
        used; without one each focus's ``bone_labels`` is None.
        """
        from .io.write import study_key as make_key

        if not (len(foci) == len(features) == len(stages)):
            raise ValueError(
                f"foci, features and stages must have equal length; "
                f"got {len(foci)}, {len(features)}, {len(stages)}"
            )
        focus_results = []
        for focus, feats, st in zip(foci, features, stages, strict=True):
            if feats.focus_id != focus.id:
                raise ValueError(f"features of focus {feats.focus_id} paired with focus {focus.id}")
            corners = _bbox_corners_lps(volume, focus.bbox_zyx)
            focus_results.append(
                FocusResult(
                    id=focus.id,
                    centroid_lps_mm=focus.centroid_lps_mm,
                    bbox_lps_mm=corners,
                    volume_mm3=focus.volume_mm3,
                    stage=st.stage,
                    confidence=st.confidence,
                    scores=st.scores,
                    features=feats.values,
                    reasons=st.reasons,
                    atypical=st.atypical,
                    bone_labels=None
                    if focus_bone_labels is None
                    else focus_bone_labels.get(focus.id, ()),
                )
            )
        ident = volume.study_instance_uid or (volume.source.name if volume.source else "study")
        return cls(
            status=Status.OK,
            study_key=study_key or make_key(ident),
            source=str(volume.source) if volume.source is not None else "",
            study=StudyInfo(
                study_instance_uid=volume.study_instance_uid,
                series_instance_uid=volume.series_instance_uid,
                shape_zyx=volume.shape_zyx,
                spacing_zyx_mm=volume.spacing_zyx_mm,
                load_report=volume.load_report.to_dict(),
                bone_label_map=bone_label_map,
                bone_label_names=bone_label_names,
            ),
            foci=tuple(focus_results),
            resection=verdict,
            warnings=(*volume.warnings, *warnings),
            software=_software(config),
        )

    @classmethod
    def from_error(
        cls,
        message: str,
        *,
        study_key: str,
        source: str | Path,
        study_instance_uid: str | None = None,
        config: Config | None = None,
    ) -> StudyResult:
        """Build a result whose status is ``"error"``; it keeps `source` and the study UID."""
        return cls(
            status=Status.ERROR,
            error=message,
            study_key=study_key,
            source=str(source),
            study=StudyInfo(study_instance_uid=study_instance_uid),
            software=_software(config),
        )

    # ---------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Return the result.json document (schema ``hostage.result/1``)."""
        return {
            "schema": self.schema,
            "status": self.status.value,
            "error": self.error,
            "study_key": self.study_key,
            "source": self.source,
            "study": self.study.to_dict(),
            "foci": [f.to_dict() for f in self.foci],
            "resection": None if self.resection is None else self.resection.to_dict(),
            "warnings": list(self.warnings),
            "software": dict(self.software),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyResult:
        """Read a result.json document.

        Raises
        ------
        ValueError
            If the schema is not ``hostage.result/1``.
        """
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document (schema = {d.get('schema')!r})")
        res = d.get("resection")
        return cls(
            status=Status(d["status"]),
            error=d.get("error"),
            study_key=d["study_key"],
            source=d["source"],
            study=StudyInfo.from_dict(d.get("study") or {}),
            foci=tuple(FocusResult.from_dict(f) for f in d.get("foci", ())),
            resection=None if res is None else ResectionVerdict.from_dict(res),
            warnings=tuple(d.get("warnings", ())),
            software=d.get("software", {}),
            schema=d["schema"],
        )

    # ---------------------------------------------------------------- analysis
    def bone_label_text(self, focus: FocusResult) -> str:
        """Return the structures `focus` touches, ``;``-separated (names when known, else numbers)."""
        if focus.bone_labels is None:
            return ""
        names = self.study.bone_label_names or {}
        return ";".join(names.get(k, str(k)) for k in focus.bone_labels)

    def foci_table(self) -> list[dict[str, Any]]:
        """One flat row per focus (the columns of ``foci.csv`` after ``study_key``).

        Features are flattened as ``feature_<name>``. :meth:`foci_dataframe`
        gives the same rows as a pandas DataFrame.
        """
        rows = []
        for f in self.foci:
            row: dict[str, Any] = {
                "study_key": self.study_key,
                "focus_id": f.id,
                "stage": f.stage.value,
                "confidence": f.confidence,
                **{f"score_{s.value}": v for s, v in f.scores.items()},
                "volume_mm3": f.volume_mm3,
                "centroid_x_mm": f.centroid_lps_mm[0],
                "centroid_y_mm": f.centroid_lps_mm[1],
                "centroid_z_mm": f.centroid_lps_mm[2],
                "atypical": f.atypical,
                "bone_labels": self.bone_label_text(f),
                **{f"feature_{k}": v for k, v in f.features.items()},
                "reasons": " | ".join(f.reasons),
            }
            rows.append(row)
        return rows

    def foci_dataframe(self) -> Any:
        """Return the rows of :meth:`foci_table` as a ``pandas.DataFrame``.

        Returns
        -------
        pandas.DataFrame
            One row per focus, the columns of ``foci.csv``; empty (no rows, no
            columns) when the study has no focus.

        Raises
        ------
        MissingDependencyError
            If pandas is not installed (``pip install 'hostage[pandas]'``).
        """
        from ._optional import import_optional

        pd = import_optional("pandas", feature="StudyResult.foci_dataframe()")
        return pd.DataFrame(self.foci_table())


def _software(config: Config | None) -> dict[str, Any]:
    from .config import Config

    cfg = Config() if config is None else config
    return {"name": "hostage", "version": __version__, "config": cfg.to_dict()}


def _bbox_corners_lps(
    volume: Volume, bbox_zyx: tuple[slice, slice, slice]
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Axis-aligned LPS bounding box (mm) of a voxel box, voxel extents included."""
    lo = [s.start - 0.5 for s in bbox_zyx]
    hi = [s.stop - 0.5 for s in bbox_zyx]
    corners = np.array(
        [[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])]
    )
    pts = volume.index_to_lps_mm(corners)
    mn, mx = pts.min(axis=0), pts.max(axis=0)
    return (tuple(float(v) for v in mn), tuple(float(v) for v in mx))  # type: ignore[return-value]
