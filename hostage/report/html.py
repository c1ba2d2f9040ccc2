"""``report.html``: one self-contained page per study (figures embedded, no server needed).

The page shows, from top to bottom: the research-use disclaimer, the
resection-readiness verdict and its reasons, the study's identifiers and grid,
warnings, a table of foci (id, stage, confidence, volume, centroid in LPS mm,
key features), then one section per focus with an overview and axial, coronal
and sagittal slices through it in a bone window (outline in the stage's
colour), its reasons, and its key feature values on the classifier's evidence
scale (or against per-stage typical ranges when the classifier provides them).

Everything that comes from data is HTML-escaped. Figures are PNG data URIs;
there is no external CSS, JavaScript, font or image.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..enums import Resection, Stage
from ..io.write import atomic_write_text
from ..result import FocusResult, StudyResult
from .figures import BONE_WINDOW_HU, STAGE_COLOURS, focus_figure_png

if TYPE_CHECKING:
    from . import StudyOutputs

__all__ = [
    "DISCLAIMER",
    "MAX_FIGURES",
    "REPORT_NAME",
    "TypicalRanges",
    "evidence_scales",
    "render_report",
    "write_report",
]

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
#: Shown at the top and bottom of every page.
DISCLAIMER = (
    "Research measurement, not a medical device. hostage has not been validated "
    "for clinical use; do not base treatment decisions on it."
)
#: Files of a study folder the report links to when present.
VIEWER_FILES: tuple[str, ...] = ("foci.nii.gz", "foci_labels.json", "seg.dcm", "sr.dcm")
#: At most this many foci get figures (the largest first); the table lists all.
MAX_FIGURES = 40

#: feature name -> stage -> (low, high) typical range.
TypicalRanges = Mapping[str, Mapping[Stage, tuple[float, float]]]

VERDICT_TEXT: Mapping[Resection, tuple[str, str]] = {
    Resection.READY: ("Ready for resection", "#1b7f3b"),
    Resection.NOT_READY: ("Not ready for resection", "#b34700"),
    Resection.INDETERMINATE: ("Indeterminate", "#8a6d00"),
    Resection.NO_FOCI: ("No HO foci found", "#555555"),
}

#: Features shown for context after the classifier's own (if measured).
CONTEXT_FEATURES: tuple[str, ...] = (
    "density_p90_hu",
    "size_diameter_max_mm",
    "density_mean_hu",
    "zonal_periphery_center_ratio",
    "bone_distance_mm",
    "bone_attached",
)

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0 auto;
max-width:1150px;padding:12px 18px;color:#1d1d1d;background:#fff;line-height:1.35}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1em 0 .4em}h3{font-size:1.05em;margin:.2em 0}
.disclaimer{background:#fff4d6;border:1px solid #e0b84c;padding:6px 10px;border-radius:4px;font-weight:600}
.verdict{border-left:8px solid var(--c);background:#f6f6f6;padding:8px 14px;margin:10px 0;border-radius:4px}
.verdict .status{font-size:1.45em;font-weight:700;color:var(--c)}
table{border-collapse:collapse;font-size:.9em;margin:4px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;vertical-align:-.1em;
margin-right:.3em;background:var(--c)}
.focus{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:14px 0;page-break-inside:avoid}
.focus img{max-width:100%;height:auto;display:block;margin:6px 0}
.muted{color:#666;font-size:.88em}code{font-size:.92em}
ul{margin:.3em 0 .3em 1.2em;padding:0}td.key{word-break:break-all;max-width:30em}
details summary{cursor:pointer;color:#333}
"""


# ----------------------------------------------------------------------------- formatting


def esc(value: Any) -> str:
    """HTML-escape ``str(value)`` (quotes included).

    Examples
    --------
    >>> esc('<b a="1">&')
    '&lt;b a=&quot;1&quot;&gt;&amp;'
    """
    return html.escape(str(value), quote=True)


def fmt(value: float) -> str:
    """Format a measurement for a table: ``n/a`` for NaN, precision by magnitude.

    Examples
    --------
    >>> fmt(1234.56), fmt(45.678), fmt(0.9345), fmt(float("nan"))
    ('1235', '45.7', '0.934', 'n/a')
    """
    v = float(value)
    if not math.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def feature_units() -> dict[str, tuple[str, str]]:
    """Feature name -> (unit, documentation) from the feature registry."""
    from ..features import FAMILIES

    return {spec.name: (spec.unit, spec.doc) for fam in FAMILIES for spec in fam.features}


_PRETTY_UNITS = {"mm3": "mm³", "mm2": "mm²", "1/mm3": "/mm³", "1/mm": "/mm", "1": "", "bool": ""}


def _unit_of(name: str, units: Mapping[str, tuple[str, str]]) -> str:
    """Display unit of a feature: from the registry, else from the name's unit suffix."""
    if name in units:
        unit = units[name][0]
        return _PRETTY_UNITS.get(unit, unit)
    for suffix, unit in (("_hu_per_mm", "HU/mm"), ("_per_mm3", "/mm³"), ("_mm3", "mm³"),
                         ("_mm2", "mm²"), ("_mm", "mm"), ("_hu", "HU")):  # fmt: skip
        if name.endswith(suffix):
            return unit
    return ""


def verdict_label(status: Resection) -> str:
    """Human-readable verdict (the raw value is shown next to it)."""
    return VERDICT_TEXT[status][0]


def page(title: str, body: str) -> str:
    """Wrap `body` into a complete HTML5 document with the embedded stylesheet."""
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )


def stage_badge(stage: Stage) -> str:
    """Return a coloured swatch followed by the stage name."""
    return f"<span class='swatch' style='--c:{STAGE_COLOURS[stage]}'></span>{esc(stage.value)}"


# ----------------------------------------------------------------------------- classifier scale


def evidence_scales(result: StudyResult) -> list[dict[str, Any]]:
    """List the classifier's evidence terms with the ramp bounds of the config used.

    Each entry has ``name`` (the term), ``feature``, ``sign``, ``from`` (value
    where the sign's evidence is 0), ``to`` (value where it is 1) and
    ``favours`` (the stage whose score the sign raises most, by the weights of
    the configuration used). Empty when the classifier does not describe its terms.
    """
    from .. import classify
    from ..config import ClassifyConfig

    terms = getattr(classify, "TERMS", ())
    used = result.software.get("config", {}) if isinstance(result.software, Mapping) else {}
    cfg = used.get("classify", {}) if isinstance(used, Mapping) else {}
    defaults = ClassifyConfig()
    out = []
    for t in terms:
        try:
            lo = float(cfg.get(t.from_key, getattr(defaults, t.from_key)))
            hi = float(cfg.get(t.to_key, getattr(defaults, t.to_key)))
            weights = {
                st: float(cfg.get(t.weight_key(st), getattr(defaults, t.weight_key(st))))
                for st in Stage
            }
        except AttributeError:
            continue
        out.append(
            {
                "name": t.name,
                "feature": t.feature,
                "sign": t.sign,
                "from": lo,
                "to": hi,
                "favours": max(weights, key=lambda st: weights[st]),
            }
        )
    return out


def _scale_svg(value: float, lo: float, hi: float) -> str:
    """Draw a 160x18 inline SVG: the ramp from `lo` (no sign) to `hi` (sign present) and the value."""
    a, b = min(lo, hi), max(lo, hi)
    span = b - a
    vmin, vmax = a - 0.35 * span, b + 0.35 * span
    if math.isfinite(value):
        vmin, vmax = min(vmin, value), max(vmax, value)

    def x(v: float) -> float:
        return 4 + 152 * (v - vmin) / (vmax - vmin)

    absent, present = "#d9d9d9", "#3a9e6e"
    left, right = (absent, present) if hi > lo else (present, absent)
    parts = [
        "<svg xmlns='http://www.w3.org/2000/svg' width='160' height='18'>",
        f"<rect x='4' y='6' width='{x(a) - 4:.1f}' height='6' fill='{left}'/>",
        f"<rect x='{x(a):.1f}' y='6' width='{x(b) - x(a):.1f}' height='6' fill='#9fcfb6'/>",
        f"<rect x='{x(b):.1f}' y='6' width='{156 - x(b):.1f}' height='6' fill='{right}'/>",
    ]
    if math.isfinite(value):
        parts.append(
            f"<path d='M{x(value):.1f} 3 L{x(value) + 4:.1f} 16 L{x(value) - 4:.1f} 16 Z' "
            "fill='#111'/>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _feature_rows(
    focus: FocusResult,
    *,
    scales: Sequence[Mapping[str, Any]],
    typical: TypicalRanges | None,
    units: Mapping[str, tuple[str, str]],
) -> str:
    stages = list(Stage)
    rows = []
    head = "<tr><th>feature</th><th>value</th>"
    if typical:
        head += "".join(f"<th>typical {stage_badge(s)}</th>" for s in stages)
    if scales:
        head += "<th>classifier evidence scale (0 &rarr; 1)</th><th>position</th><th>favours</th>"
    head += "</tr>"
    scale_of = {s["feature"]: s for s in scales}
    names = [
        *(s["feature"] for s in scales),
        *(n for n in (typical or {}) if n in focus.features),
        *(n for n in CONTEXT_FEATURES if n in focus.features),
    ]
    for name in dict.fromkeys(names):
        value = float(focus.features.get(name, math.nan))
        unit = _unit_of(name, units)
        doc = units.get(name, ("", ""))[1]
        cells = [
            f"<td title='{esc(doc)}'><code>{esc(name)}</code></td>",
            f"<td class='num'>{esc(fmt(value))}{' ' + esc(unit) if unit else ''}</td>",
        ]
        if typical:
            ranges = typical.get(name, {})
            for s in stages:
                if s in ranges:
                    lo, hi = ranges[s]
                    inside = math.isfinite(value) and lo <= value <= hi
                    mark = " style='background:#e3f3e8;font-weight:600'" if inside else ""
                    cells.append(f"<td class='num'{mark}>{esc(fmt(lo))}&ndash;{esc(fmt(hi))}</td>")
                else:
                    cells.append("<td class='muted'>&ndash;</td>")
        if scales:
            sc = scale_of.get(name)
            if sc is None:
                cells.append("<td class='muted'>context only (not scored)</td><td></td><td></td>")
            else:
                cells.append(
                    f"<td>{esc(sc['sign'])}: 0 at {esc(fmt(sc['from']))}, "
                    f"1 at {esc(fmt(sc['to']))}{' ' + esc(unit) if unit else ''}</td>"
                    f"<td>{_scale_svg(value, sc['from'], sc['to'])}</td>"
                    f"<td style='white-space:nowrap'>{stage_badge(sc['favours'])}</td>"
                )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        return "<p class='muted'>No key features were measured for this focus.</p>"
    note = ""
    if not typical:
        note = "<p class='muted'>Typical ranges per stage not available. " + (
            "Shown instead: where each value sits on the classifier's evidence scale "
            "for its sign (0 = absent, 1 = fully present; bounds of the configuration "
            "used), and the stage whose score that sign raises most.</p>"
            if scales
            else "</p>"
        )
    return note + "<table>" + head + "".join(rows) + "</table>"


def _all_features(focus: FocusResult, units: Mapping[str, tuple[str, str]]) -> str:
    if not focus.features:
        return ""
    rows = "".join(
        f"<tr><td title='{esc(units.get(k, ('', ''))[1])}'><code>{esc(k)}</code></td>"
        f"<td class='num'>{esc(fmt(v))}</td><td>{esc(_unit_of(k, units))}</td></tr>"
        for k, v in focus.features.items()
    )
    return (
        f"<details><summary>All {len(focus.features)} features</summary>"
        f"<table><tr><th>feature</th><th>value</th><th>unit</th></tr>{rows}</table></details>"
    )


def _key_features_text(
    focus: FocusResult, scales: Sequence[Mapping[str, Any]], units: Mapping[str, tuple[str, str]]
) -> str:
    """One short line: the classifier's terms (``rim 0.93; density 1210 HU``), else 3 features."""
    if scales:
        items = [(str(s["name"]), str(s["feature"])) for s in scales]
    else:
        items = [(n, n) for n in list(focus.features)[:3]]
    shown = []
    for label, name in items:
        if name in focus.features:
            unit = _unit_of(name, units)
            shown.append(f"{label} {fmt(focus.features[name])}{' ' + unit if unit else ''}")
    return "; ".join(shown)


# ----------------------------------------------------------------------------- page


def render_report(
    result: StudyResult,
    *,
    figures: Mapping[int, bytes],
    typical: TypicalRanges | None = None,
    files: Sequence[str] = (),
) -> str:
    """Render the study report as a complete HTML document.

    Parameters
    ----------
    result : StudyResult
        The study result.
    figures : mapping of int to bytes
        Focus id -> PNG figure (foci without a figure get a note).
    typical : mapping, optional
        Feature -> stage -> (low, high) typical range, when known.
    files : sequence of str
        Names of the other files in the study folder, linked at the bottom.

    Returns
    -------
    str
        The HTML document.
    """
    units = feature_units()
    scales = evidence_scales(result)
    out = [
        "<header><h1>Heterotopic ossification staging report</h1>",
        f"<p class='disclaimer'>&#9888; {esc(DISCLAIMER)}</p></header>",
    ]
    # verdict
    if result.resection is not None:
        status = result.resection.status
        label, colour = VERDICT_TEXT[status]
        reasons = "".join(f"<li>{esc(r)}</li>" for r in result.resection.reasons)
        out.append(
            f"<section class='verdict' style='--c:{colour}' id='verdict'>"
            f"<div class='status'>{esc(label)} <code>({esc(status.value)})</code></div>"
            f"<ul>{reasons}</ul></section>"
        )
    else:
        out.append(
            "<section class='verdict' style='--c:#b00020' id='verdict'>"
            f"<div class='status'>Error <code>({esc(result.status.value)})</code></div>"
            f"<p>{esc(result.error or 'no verdict')}</p></section>"
        )
    # study
    st = result.study
    info = [
        ("study key", result.study_key),
        ("StudyInstanceUID", st.study_instance_uid or "n/a"),
        ("SeriesInstanceUID", st.series_instance_uid or "n/a"),
        ("grid (z, y, x)", " × ".join(map(str, st.shape_zyx)) if st.shape_zyx else "n/a"),
        (
            "spacing (z, y, x)",
            " × ".join(f"{v:.3g}" for v in st.spacing_zyx_mm) + " mm"
            if st.spacing_zyx_mm
            else "n/a",
        ),
        (
            "software",
            f"{result.software.get('name', 'hostage')} {result.software.get('version', '')}",
        ),
    ]
    out.append("<h2>Study</h2><table>")
    out.extend(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in info)
    out.append("</table>")
    if result.warnings:
        out.append("<h2>Warnings</h2><ul>")
        out.extend(f"<li>{esc(w)}</li>" for w in result.warnings)
        out.append("</ul>")
    # foci table
    out.append(f"<h2>Foci ({len(result.foci)})</h2>")
    legend = " ".join(f"{stage_badge(s)}" for s in Stage)
    out.append(f"<p class='muted'>Outline colours: {legend}</p>")
    if result.foci:
        out.append(
            "<table><tr><th>id</th><th>stage</th><th>confidence</th><th>volume (mm³)</th>"
            "<th>centroid L, P, S (mm)</th><th>key features</th></tr>"
        )
        for f in result.foci:
            flag = " <strong>atypical</strong>" if f.atypical else ""
            out.append(
                f"<tr><td><a href='#focus-{f.id}'>{f.id}</a></td><td>{stage_badge(f.stage)}{flag}</td>"
                f"<td class='num'>{f.confidence:.2f}</td><td class='num'>{f.volume_mm3:.1f}</td>"
                f"<td class='num'>{', '.join(f'{v:.1f}' for v in f.centroid_lps_mm)}</td>"
                f"<td>{esc(_key_features_text(f, scales, units))}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>No hyperdense soft-tissue focus was found.</p>")
    # one section per focus
    width, level = BONE_WINDOW_HU
    for f in result.foci:
        scores = ", ".join(f"{s.value} {v:.2f}" for s, v in f.scores.items())
        out.append(
            f"<section class='focus' id='focus-{f.id}' style='border-left:6px solid "
            f"{STAGE_COLOURS[f.stage]}'><h3>Focus {f.id}: {stage_badge(f.stage)} "
            f"(confidence {f.confidence:.2f}){' · <strong>atypical pattern</strong>' if f.atypical else ''}</h3>"
            f"<p class='muted'>scores: {esc(scores)} · volume {f.volume_mm3:.1f} mm³ · "
            f"centroid L, P, S = {', '.join(f'{v:.1f}' for v in f.centroid_lps_mm)} mm</p>"
        )
        png = figures.get(f.id)
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            alt = f"Focus {f.id} ({f.stage.value}): overview, axial, coronal and sagittal slices"
            out.append(
                f"<img src='data:image/png;base64,{data}' alt='{esc(alt)}'>"
                f"<p class='muted'>Bone window W {width:g} / L {level:g} HU; solid outline = this "
                "focus, dashed = neighbouring foci.</p>"
            )
        else:
            out.append(
                "<p class='muted'>No figure for this focus (see the note below the table).</p>"
            )
        if f.reasons:
            out.append(
                "<b>Reasons</b><ul>" + "".join(f"<li>{esc(r)}</li>" for r in f.reasons) + "</ul>"
            )
        out.append("<b>Key features</b>")
        out.append(_feature_rows(f, scales=scales, typical=typical, units=units))
        out.append(_all_features(f, units))
        out.append("</section>")
    if len(figures) < len(result.foci):
        out.append(
            f"<p class='muted'>Figures are drawn for the {len(figures)} largest of "
            f"{len(result.foci)} foci.</p>"
        )
    # footer
    links = " · ".join(f"<a href='{esc(name)}'>{esc(name)}</a>" for name in files)
    out.append("<footer><hr>")
    if links:
        out.append(f"<p>Files of this study: {links}</p>")
    out.append(
        f"<p class='disclaimer'>{esc(DISCLAIMER)}</p>"
        f"<p class='muted'>Generated by hostage {esc(__version__)}. Coordinates are DICOM patient "
        "coordinates (LPS, mm): x grows to the patient's left, y to posterior, z to superior.</p>"
        "</footer>"
    )
    return page(f"hostage report: {result.study_key}", "\n".join(out))


def _typical_from_classifier() -> TypicalRanges | None:
    from .. import classify

    ranges = getattr(classify, "TYPICAL_RANGES", None)
    return ranges if isinstance(ranges, Mapping) and ranges else None


def write_report(
    ctx: StudyOutputs, *, module: str = "matplotlib", max_figures: int = MAX_FIGURES
) -> list[Path]:
    """Write ``report.html`` for a study.

    Parameters
    ----------
    ctx : StudyOutputs
        A successful study (volume and segmentation present).
    module : str
        Name of the plotting package to import (a test seam for the
        missing-dependency path).
    max_figures : int
        Figures are drawn for at most this many foci, the largest first.

    Returns
    -------
    list of Path
        ``[OUT/<key>/report.html]``.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    from .._optional import import_optional

    import_optional(module, feature="report.html figures")
    if ctx.volume is None or ctx.seg is None:
        return []
    by_id = {f.id: f for f in ctx.seg.foci}
    stages = {f.id: f.stage for f in ctx.result.foci}
    reported = [by_id[f.id] for f in ctx.result.foci if f.id in by_id]
    drawn = sorted(reported, key=lambda f: -f.volume_mm3)[: max(0, max_figures)]
    figures = {f.id: focus_figure_png(ctx.volume, f, foci=reported, stages=stages) for f in drawn}
    # report.html is written after the other viewer files (write_study_outputs), so
    # link those that exist; result.json is always written.
    files = ["result.json"] + [n for n in VIEWER_FILES if (ctx.out_dir / n).is_file()]
    text = render_report(
        ctx.result, figures=figures, typical=_typical_from_classifier(), files=files
    )
    path = atomic_write_text(ctx.out_dir / REPORT_NAME, text)
    logger.debug("%s: wrote %s (%d figures)", ctx.result.study_key, path.name, len(figures))
    return [path]
