"""Figures of the HTML report: axial, coronal and sagittal slices through each focus.

Every figure is a small PNG (bytes) drawn with matplotlib's object API (no
``pyplot``, no global state) on the Agg canvas. CT values are shown in a bone
window (width 2000 HU, level 500 HU by default) with physical aspect (pixel
sizes from ``spacing_zyx_mm``), in radiological orientation: on axial and
coronal views the patient's right is on the viewer's left, anterior is at the
top of axial views and superior at the top of coronal and sagittal views.

The volume's index axes are mapped to the nearest patient axes (S, P, L) by
:func:`canonical_axes`; for an oblique acquisition the views are the nearest
orthogonal planes of the grid, and the panel titles say so.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._optional import import_optional
from ..enums import Stage
from ..io.volume import Volume
from ..segment.foci import Focus

__all__ = [
    "BONE_WINDOW_HU",
    "STAGE_COLOURS",
    "CanonicalAxes",
    "canonical_axes",
    "focus_figure_png",
    "paint_labels",
]

#: Outline colour of each stage (Okabe-Ito palette, readable by colour-blind viewers).
STAGE_COLOURS: Mapping[Stage, str] = {
    Stage.AMORPHOUS: "#E69F00",
    Stage.IMMATURE: "#56B4E9",
    Stage.MATURE: "#009E73",
}

#: Crops with fewer slices than this get no coronal/sagittal panels.
MIN_SLICES_FOR_REFORMAT = 3

#: Default display window (width, level) in HU: a bone window.
BONE_WINDOW_HU: tuple[float, float] = (2000.0, 500.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class CanonicalAxes:
    """How to view a (Z, Y, X) grid as (S, P, L): superior, posterior, left increasing.

    Attributes
    ----------
    perm : tuple of 3 int
        ``perm[c]`` is the index axis (0 = z, 1 = y, 2 = x) shown along canonical
        axis ``c`` (0 = S, 1 = P, 2 = L).
    flip : tuple of 3 bool
        Whether canonical axis ``c`` runs against its index axis.
    oblique_deg : float
        Largest angle (degrees) between an index axis and the patient axis it is
        shown along (0 for an axis-aligned grid).
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]
    oblique_deg: float

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """Return a (S, P, L, ...) view of a (Z, Y, X, ...) array (no copy)."""
        out = np.transpose(arr, (*self.perm, *range(3, arr.ndim)))
        for c, f in enumerate(self.flip):
            if f:
                out = np.flip(out, axis=c)
        return out

    def index(self, idx_zyx: Sequence[float], shape_zyx: Sequence[int]) -> np.ndarray:
        """Map a (z, y, x) index of an array of `shape_zyx` to its (S, P, L) view."""
        out = np.empty(3)
        for c in range(3):
            a = self.perm[c]
            out[c] = (shape_zyx[a] - 1 - idx_zyx[a]) if self.flip[c] else idx_zyx[a]
        return out

    def spacing(self, spacing_zyx_mm: Sequence[float]) -> tuple[float, float, float]:
        """Voxel spacing (mm) along the canonical (S, P, L) axes."""
        s = [float(spacing_zyx_mm[a]) for a in self.perm]
        return s[0], s[1], s[2]


def canonical_axes(direction_lps: np.ndarray) -> CanonicalAxes:
    """Match each index axis to the nearest patient axis (S, P, L).

    Parameters
    ----------
    direction_lps : (3, 3) ndarray of float
        Columns are the LPS unit vectors of the z, y and x index axes
        (:attr:`Volume.direction_lps`).

    Returns
    -------
    CanonicalAxes

    Examples
    --------
    A standard axial grid (z -> S, y -> P, x -> L) needs no change:

    >>> import numpy as np
    >>> canonical_axes(np.eye(3)[:, ::-1])
    CanonicalAxes(perm=(0, 1, 2), flip=(False, False, False), oblique_deg=0.0)

    A grid whose slices run from head to feet is flipped along S:

    >>> d = np.eye(3)[:, ::-1].copy(); d[:, 0] *= -1
    >>> canonical_axes(d).flip
    (True, False, False)
    """
    d = np.asarray(direction_lps, dtype=float)
    best: tuple[float, tuple[int, ...]] = (-1.0, (0, 1, 2))
    for perm in itertools.permutations(range(3)):
        # canonical axis c (S, P, L) is LPS component 2 - c
        score = sum(abs(d[2 - c, perm[c]]) for c in range(3))
        if score > best[0]:
            best = (score, perm)
    perm = best[1]
    flip = tuple(bool(d[2 - c, perm[c]] < 0) for c in range(3))
    cosines = [min(1.0, abs(d[2 - c, perm[c]])) for c in range(3)]
    oblique = max(math.degrees(math.acos(v)) for v in cosines)
    return CanonicalAxes(
        perm=(perm[0], perm[1], perm[2]),
        flip=(flip[0], flip[1], flip[2]),
        oblique_deg=round(oblique, 6),
    )


def paint_labels(
    foci: Sequence[Focus], *, shape_zyx: Sequence[int], offset_zyx: Sequence[int] = (0, 0, 0)
) -> np.ndarray:
    """Paint focus masks into a label array (label = focus id, 0 = background).

    Parameters
    ----------
    foci : sequence of Focus
        Foci whose ``bbox_zyx`` and ``mask`` are given in the full volume's indices.
    shape_zyx : sequence of 3 int
        Shape of the output array.
    offset_zyx : sequence of 3 int
        Index of the output's first voxel in the full volume (for crops).

    Returns
    -------
    labels : (Z, Y, X) ndarray of uint8, uint16 or uint32
        Focus ids (the smallest type that holds the largest id); where foci
        overlap, the later focus wins.

    Examples
    --------
    >>> import numpy as np
    >>> from hostage.segment.foci import Focus
    >>> f = Focus(id=3, bbox_zyx=(slice(1, 2), slice(0, 2), slice(1, 2)),
    ...           mask=np.ones((1, 2, 1), bool), volume_mm3=2.0, centroid_lps_mm=(0, 0, 0))
    >>> paint_labels([f], shape_zyx=(2, 2, 2))[1]
    array([[0, 3],
           [0, 3]], dtype=uint8)
    """
    shape = tuple(int(n) for n in shape_zyx)
    top = max((f.id for f in foci), default=0)
    dtype = np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32
    out = np.zeros(shape, dtype=dtype)
    for focus in foci:
        dst, src = [], []
        for s, off, n in zip(focus.bbox_zyx, offset_zyx, shape, strict=True):
            lo, hi = s.start - off, s.stop - off
            a, b = max(lo, 0), min(hi, n)
            if a >= b:
                break
            dst.append(slice(a, b))
            src.append(slice(a - lo, b - lo))
        else:
            region = out[tuple(dst)]
            region[focus.mask[tuple(src)]] = focus.id
    return out


# ----------------------------------------------------------------------------- drawing


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Panel:
    title: str
    image: np.ndarray  # 2-D, rows top to bottom
    labels: np.ndarray | None  # same shape, focus ids
    pixel_mm: tuple[float, float]  # (row height, column width)
    edges: tuple[str, str, str, str]  # left, right, top, bottom orientation letters
    box_mm: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 (overview)


def _crop_bounds(
    focus: Focus, *, shape_zyx: Sequence[int], spacing_zyx_mm: Sequence[float], margin_mm: float
) -> tuple[slice, slice, slice]:
    out = []
    for s, n, sp in zip(focus.bbox_zyx, shape_zyx, spacing_zyx_mm, strict=True):
        extent_mm = (s.stop - s.start) * sp
        m = math.ceil(max(margin_mm, 0.25 * extent_mm) / sp)
        out.append(slice(max(0, s.start - m), min(int(n), s.stop + m)))
    return out[0], out[1], out[2]


def _pick_slice(mask: np.ndarray, axis: int, centre: float) -> int:
    """Pick the slice through `centre` along `axis`, or the fullest one if it misses the focus."""
    n = mask.shape[axis]
    k = int(np.clip(round(centre), 0, n - 1))
    if np.take(mask, k, axis=axis).any():
        return k
    other = tuple(a for a in range(3) if a != axis)
    area = mask.sum(axis=other)
    return int(np.argmax(area)) if area.any() else k


def _scale_bar_mm(width_mm: float) -> float:
    for bar in (100.0, 50.0, 20.0, 10.0, 5.0, 2.0, 1.0):
        if bar <= 0.35 * width_mm:
            return bar
    return 0.5


def focus_figure_png(
    volume: Volume,
    focus: Focus,
    *,
    foci: Sequence[Focus],
    stages: Mapping[int, Stage],
    margin_mm: float = 15.0,
    window_hu: tuple[float, float] = BONE_WINDOW_HU,
    dpi: int = 96,
) -> bytes:
    """Draw an overview and axial, coronal and sagittal slices through one focus.

    Parameters
    ----------
    volume : Volume
        The CT volume.
    focus : Focus
        The focus to show; the slices pass through its centroid (or through its
        fullest slice when the centroid slice misses it).
    foci : sequence of Focus
        All foci of the study; neighbours inside the crop are outlined thinly.
    stages : mapping of int to Stage
        Focus id -> stage (selects the outline colour).
    margin_mm : float
        Margin around the focus's bounding box (at least a quarter of its extent).
    window_hu : tuple of 2 float
        Display window (width, level) in HU. Only the display changes; HU do not.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    png : bytes
        The figure as PNG.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    import_optional("matplotlib", feature="report.html figures")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    canon = canonical_axes(volume.direction_lps)
    crop = _crop_bounds(
        focus,
        shape_zyx=volume.shape_zyx,
        spacing_zyx_mm=volume.spacing_zyx_mm,
        margin_mm=margin_mm,
    )
    offset = [s.start for s in crop]
    crop_shape = [s.stop - s.start for s in crop]
    hu = canon.apply(np.asarray(volume.hu[crop], dtype=np.float32))
    near = [f for f in foci if _overlaps(f.bbox_zyx, crop)]
    labels = canon.apply(paint_labels(near, shape_zyx=crop_shape, offset_zyx=offset))
    own = labels == focus.id
    sp_s, sp_p, sp_l = canon.spacing(volume.spacing_zyx_mm)
    centre_vol = volume.lps_mm_to_index(focus.centroid_lps_mm)
    centre = canon.index(centre_vol - np.asarray(offset), crop_shape)
    k_s = _pick_slice(own, 0, centre[0])
    k_p = _pick_slice(own, 1, centre[1])
    k_l = _pick_slice(own, 2, centre[2])

    # patient position (mm along S, P, L from the canonical first voxel) of each slice
    full_canon_shape = [volume.shape_zyx[a] for a in canon.perm]
    crop_lo = canon.index(offset, volume.shape_zyx)
    crop_hi = canon.index(
        [o + n - 1 for o, n in zip(offset, crop_shape, strict=True)], volume.shape_zyx
    )
    crop_first = np.minimum(crop_lo, crop_hi).astype(int)
    pos = volume.index_to_lps_mm(centre_vol)
    approx = " (nearest plane)" if canon.oblique_deg > 1.0 else ""

    panels = []
    # overview: the whole axial plane through the focus, downsampled
    full = canon.apply(volume.hu)
    k_full = int(crop_first[0] + k_s)
    step = max(1, math.ceil(max(full_canon_shape[1], full_canon_shape[2]) / 192))
    overview = np.asarray(full[k_full, ::step, ::step], dtype=np.float32)
    panels.append(
        _Panel(
            title=f"Overview, S = {pos[2]:.1f} mm{approx}",
            image=overview,
            labels=None,
            pixel_mm=(sp_p * step, sp_l * step),
            edges=("R", "L", "A", "P"),
            box_mm=(
                crop_first[2] * sp_l,
                crop_first[1] * sp_p,
                (crop_first[2] + hu.shape[2]) * sp_l,
                (crop_first[1] + hu.shape[1]) * sp_p,
            ),
        )
    )
    panels.append(
        _Panel(
            title=f"Axial{approx}",
            image=hu[k_s],
            labels=labels[k_s],
            pixel_mm=(sp_p, sp_l),
            edges=("R", "L", "A", "P"),
        )
    )
    # coronal and sagittal views need a few slices to show anything
    if hu.shape[0] >= MIN_SLICES_FOR_REFORMAT:
        panels.extend(_reformats(hu, labels, k_p, k_l, sp_s, sp_p, sp_l, approx))
    else:
        n = hu.shape[0]
        panels[-1] = replace(panels[-1], title=f"Axial (only {n} slice{'s' if n > 1 else ''})")

    width_hu, level_hu = window_hu
    vmin, vmax = level_hu - width_hu / 2, level_hu + width_hu / 2
    widths = [p.image.shape[1] * p.pixel_mm[1] for p in panels]
    heights = [p.image.shape[0] * p.pixel_mm[0] for p in panels]
    # very flat or tall crops (few thick slices) are letterboxed, not stretched
    ratios = [min(max(w / h, 0.4), 2.5) for w, h in zip(widths, heights, strict=True)]
    panel_h_in = 2.6
    fig = Figure(figsize=(sum(ratios) * panel_h_in + 0.3, panel_h_in + 0.75), dpi=dpi)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(1, len(panels), width_ratios=ratios, left=0.01, right=0.99,
                          bottom=0.16, top=0.88, wspace=0.06)  # fmt: skip
    for i, p in enumerate(panels):
        ax = fig.add_subplot(gs[0, i])
        w_mm, h_mm = widths[i], heights[i]
        ax.imshow(
            p.image,
            cmap="gray",
            vmin=vmin,
            vmax=vmax,
            extent=(0.0, w_mm, h_mm, 0.0),
            interpolation="nearest" if p.labels is not None else "antialiased",
        )
        if p.labels is not None:
            xs = (np.arange(p.image.shape[1]) + 0.5) * p.pixel_mm[1]
            ys = (np.arange(p.image.shape[0]) + 0.5) * p.pixel_mm[0]
            for fid in np.unique(p.labels):
                if fid == 0 or int(fid) not in stages:
                    continue
                m = (p.labels == fid).astype(np.float32)
                if m.shape[0] < 2 or m.shape[1] < 2:
                    continue
                mine = int(fid) == focus.id
                ax.contour(
                    xs,
                    ys,
                    m,
                    levels=[0.5],
                    colors=[STAGE_COLOURS[stages[int(fid)]]],
                    linewidths=1.8 if mine else 1.0,
                    linestyles="solid" if mine else "dashed",
                )
        if p.box_mm is not None:
            x0, y0, x1, y1 = p.box_mm
            ax.add_patch(
                Rectangle(
                    (x0, y0),
                    x1 - x0,
                    y1 - y0,
                    fill=False,
                    edgecolor=STAGE_COLOURS[stages.get(focus.id, Stage.AMORPHOUS)],
                    linewidth=1.2,
                )
            )
        bar = _scale_bar_mm(w_mm)
        ax.plot([0.05 * w_mm, 0.05 * w_mm + bar], [0.93 * h_mm, 0.93 * h_mm], color="white", lw=2)
        ax.text(0.05 * w_mm, 0.89 * h_mm, f"{bar:g} mm", color="white", fontsize=8)
        left, right, top, bottom = p.edges
        style: dict[str, Any] = {"color": "#ffd700", "fontsize": 8, "fontweight": "bold"}
        ax.text(0.01 * w_mm, 0.5 * h_mm, left, ha="left", va="center", **style)
        ax.text(0.99 * w_mm, 0.5 * h_mm, right, ha="right", va="center", **style)
        ax.text(0.5 * w_mm, 0.02 * h_mm, top, ha="center", va="top", **style)
        ax.text(0.5 * w_mm, 0.98 * h_mm, bottom, ha="center", va="bottom", **style)
        ax.set_xlim(0, w_mm)
        ax.set_ylim(h_mm, 0)
        ax.set_title(p.title, fontsize=9)
        ax.set_axis_off()
    handles = [Line2D([], [], color=STAGE_COLOURS[s], lw=2, label=s.value) for s in Stage]
    handles.append(Line2D([], [], color="gray", lw=1, ls="dashed", label="other foci"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False, title=f"Focus {focus.id} outline colour = stage; window W {width_hu:g} / L {level_hu:g} HU",
               title_fontsize=8)  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _reformats(
    hu: np.ndarray,
    labels: np.ndarray,
    k_p: int,
    k_l: int,
    sp_s: float,
    sp_p: float,
    sp_l: float,
    approx: str,
) -> list[_Panel]:
    """Coronal and sagittal panels of a canonical (S, P, L) crop, superior at the top."""
    return [
        _Panel(
            title=f"Coronal{approx}",
            image=hu[::-1, k_p, :],
            labels=labels[::-1, k_p, :],
            pixel_mm=(sp_s, sp_l),
            edges=("R", "L", "S", "I"),
        ),
        _Panel(
            title=f"Sagittal{approx}",
            image=hu[::-1, :, k_l],
            labels=labels[::-1, :, k_l],
            pixel_mm=(sp_s, sp_p),
            edges=("A", "P", "S", "I"),
        ),
    ]


def _overlaps(a: Sequence[slice], b: Sequence[slice]) -> bool:
    return all(x.start < y.stop and y.start < x.stop for x, y in zip(a, b, strict=True))
