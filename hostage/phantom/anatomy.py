"""Analytic anatomy of a paralysed patient's pelvis, hips and thighs, in Hounsfield units.

The anatomy is a set of signed-distance shapes in the phantom's anatomical frame
(millimetres, axes parallel to LPS: x = patient left, y = posterior, z = superior;
the centre of the femoral head of the reference side is near z = 0). It is rendered
one axial plane at a time with sub-voxel coverage (anti-aliased edges), so any grid
size can be built slab by slab without holding float volumes in memory.

Tissues (DOMAIN.md): air -1000 HU; skin about +30; subcutaneous fat about -100;
muscle groups 35-60 HU with a mild texture, separated by thin fat planes; femoral
vessels (unenhanced blood about 40 HU) in a fat sheath; bones with a cortex of
1000-1900 HU, cancellous bone of 150-400 HU (with a trabecular texture) and fatty
marrow in the femoral shaft; in the pelvis a bladder (about 10 HU) in pelvic fat;
a CT table (carbon-fibre shells around a foam core) under the patient.

Two layouts: ``"pelvis"`` (both hips and thighs, needs a field of view of about
300 mm or more) and ``"thigh"`` (one hip and thigh filling a small field of
view, as a targeted reconstruction would). ``"auto"`` picks by field of view.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from ._fields import Capsule, Carved, Ellipsoid, ShellCap, SinusoidField, _Primitive, coverage

__all__ = ["LAYOUTS", "SITES", "Anatomy", "BonePart", "make_anatomy"]

logger = logging.getLogger(__name__)

#: Layout names accepted by :func:`make_anatomy`.
LAYOUTS = ("auto", "pelvis", "thigh")

#: Muscle sites where neurogenic HO is usual (DOMAIN.md), used to place lesions.
SITES = ("iliopsoas", "gluteal", "abductor", "adductor", "vastus")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class BonePart:
    """One convex piece of a bone.

    Attributes
    ----------
    shape : primitive
        Signed-distance shape (mm).
    cortex_mm : float
        Cortical thickness in mm.
    interior : str
        ``"cancellous"`` or ``"medullary"`` (fatty marrow cavity of a long bone).
    """

    shape: _Primitive
    cortex_mm: float
    interior: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Side:
    sign: float  # +1 patient left (+x), -1 patient right
    hip_centre: np.ndarray  # (3,) mm
    head_radius_mm: float
    shaft: Capsule
    femur: tuple[BonePart, ...]
    pelvis: tuple[BonePart, ...]
    seed_angles: np.ndarray  # (K,) angle (rad) of each muscle compartment seed around the femur
    seed_radial: (
        np.ndarray
    )  # (K,) distance of each seed from the femur, fraction of the thigh radius
    seed_phase: np.ndarray  # (K,) phase of the slow drift of each seed with height
    seed_wavelength_mm: np.ndarray  # (K,) wavelength (mm) of that drift
    muscle_hu: np.ndarray  # (K,) base HU of each compartment
    fat_mm: float
    thigh_radii_mm: tuple[float, float]


class Anatomy:
    """The rendered anatomy of one phantom (see module docstring).

    Build with :func:`make_anatomy`. All methods take and return millimetres in the
    anatomical frame.
    """

    def __init__(
        self,
        *,
        layout: str,
        scale: float,
        sides: tuple[_Side, ...],
        pelvis_ellipse: tuple[float, float, float, float] | None,
        cortex_hu: float,
        cancellous_hu: float,
        marrow_hu: float,
        fat_hu: float,
        table_y_mm: float,
        muscle_texture: SinusoidField,
        fat_texture: SinusoidField,
        bone_texture: SinusoidField,
        fat_wobble: SinusoidField,
        plane_wobble: SinusoidField,
        bladder: Ellipsoid | None,
        sacrum: tuple[BonePart, ...] | None = None,
    ) -> None:
        self.layout = layout
        self.scale = scale
        self.sides = sides
        self.pelvis_ellipse = pelvis_ellipse
        self.cortex_hu = cortex_hu
        self.cancellous_hu = cancellous_hu
        self.marrow_hu = marrow_hu
        self.fat_hu = fat_hu
        self.table_y_mm = table_y_mm
        self._muscle_tex = muscle_texture
        self._fat_tex = fat_texture
        self._bone_tex = bone_texture
        self._fat_wobble = fat_wobble
        self._plane_wobble = plane_wobble
        self.bladder = bladder
        self._vessel_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.sacrum = sacrum

    # ------------------------------------------------------------------ geometry
    def shaft_centre(self, side: _Side, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) in mm of the femoral shaft axis at height z, extended above the neck."""
        return _shaft_centre(side, z)

    def _thigh_frame(
        self, side: _Side, z: np.ndarray | float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Centre (x, y) and radii (rx, ry) in mm of one thigh's outline at height z."""
        cx, cy = self.shaft_centre(side, z)
        s = self.scale
        zz = np.asarray(z, float)
        rel = zz - side.hip_centre[2]
        # thighs taper slowly towards the knee; at the hip the outline grows medially
        taper = np.clip(1.0 + 0.0009 * rel, 0.72, 1.12)
        w = np.clip((rel + 40.0 * s) / (60.0 * s), 0.0, 1.0)
        rx, ry = side.thigh_radii_mm
        cx = cx + side.sign * 6.0 * s - side.sign * 20.0 * s * w
        cy = cy + 4.0 * s - 4.0 * s * w
        return cx, cy, rx * taper * (1.0 + 0.18 * w), ry * taper * (1.0 + 0.08 * w)

    def _thigh_sdf(self, side: _Side, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        cx, cy, rx, ry = self._thigh_frame(side, z)
        u = (x - cx) / rx
        v = (y - cy) / ry
        return (np.sqrt(u * u + v * v) - 1.0) * np.minimum(rx, ry)

    def body_sdf(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray, *, bone_sdf_mm: np.ndarray | None = None
    ) -> np.ndarray:
        """Signed distance (mm) to the skin surface, negative inside the patient.

        `bone_sdf_mm`, if given, is ``bone_sdf(x, y, z)`` already computed.
        """
        d = self._outline_sdf(x, y, z)
        if bone_sdf_mm is None:
            bone_sdf_mm = self.bone_sdf(x, y, z)
        # bones are always covered by at least 10 mm of soft tissue
        d = np.minimum(d, bone_sdf_mm - 10.0 * self.scale)
        # soft tissue lying on the table is flattened against it
        return np.maximum(d, y - self.table_top_mm(x))

    def _outline_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = None
        for side in self.sides:
            ds = self._thigh_sdf(side, x, y, z)
            d = ds if d is None else np.minimum(d, ds)
        if self.pelvis_ellipse is not None:
            cx, cy, _, _ = self.pelvis_ellipse
            zz = np.asarray(z, float)
            # below the hips the pelvis outline narrows into a perineal bridge between the
            # thighs and then merges into them (smooth union, no floating pieces)
            rxf, ryf = self._pelvis_radii(zz)
            u = (x - cx) / rxf
            v = (y - cy) / ryf
            dp = (np.sqrt(u * u + v * v) - 1.0) * np.minimum(rxf, ryf)
            dp = np.where(ryf > 2.0, dp, 1e3)
            d = dp if d is None else _smin(d, dp, 12.0 * self.scale)
        assert d is not None
        return d

    def table_top_mm(self, x: np.ndarray | float) -> np.ndarray:
        """Posterior limit (y, mm) of the patient: the slightly concave table top."""
        return self.table_y_mm - 0.0003 * (np.asarray(x) ** 2)

    def fit_table(self, z_lo_mm: float, z_hi_mm: float, *, press_mm: float) -> None:
        """Put the table top under the most posterior skin between two heights.

        Parameters
        ----------
        z_lo_mm, z_hi_mm : float
            Height range of the volume (mm).
        press_mm : float
            How much the soft tissue is flattened against the table (mm).
        """
        self.table_y_mm = 1e6
        xs = np.arange(-260.0, 260.0, 5.0)[None, :]
        ys = np.arange(-150.0, 320.0, 1.0)[:, None]
        deepest = -1e6
        for z in np.linspace(z_lo_mm, z_hi_mm, 7):
            inside = self.body_sdf(xs, ys, np.full_like(xs, z)) < 0
            rows = np.nonzero(inside.any(axis=1))[0]
            if len(rows):
                deepest = max(deepest, float(ys[rows[-1], 0]))
        self.table_y_mm = deepest - press_mm

    def _cavity_sdf(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance (mm, approximate) to the pelvic cavity (fat, bladder); +inf if none."""
        if self.pelvis_ellipse is None:
            return np.full(np.broadcast_shapes(np.shape(x), np.shape(y), np.shape(z)), np.inf)
        pcx, pcy, _, _ = self.pelvis_ellipse
        s = self.scale
        u = (x - pcx) / (55 * s)
        v = (y - pcy + 5 * s) / (50 * s)
        d = (np.sqrt(u * u + v * v) - 1.0) * 50 * s
        return np.where(np.asarray(z) > -25.0 * s, d, np.inf)

    def _pelvis_radii(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Semi-axes (x, y) in mm of the pelvis outline at height z (pelvis layout)."""
        assert self.pelvis_ellipse is not None
        _, _, rx, ry = self.pelvis_ellipse
        s = self.scale
        f = np.clip((z + 60.0 * s) / (40.0 * s), 0.0, 1.0)  # 1 above the hips, 0 at the crotch
        g = np.clip((z + 95.0 * s) / (35.0 * s), 0.0, 1.0)  # the bridge thins away below
        return rx * (0.75 + 0.25 * f), np.maximum(ry * (0.4 + 0.6 * f) * g, 1e-3)

    def fat_thickness_mm(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Subcutaneous fat thickness (mm) at the skin point nearest (x, y, z)."""
        base = np.mean([sd.fat_mm for sd in self.sides])
        return np.maximum(base * (1.0 + 0.35 * self._fat_wobble(x * 0.3, y * 0.3, z)), 3.0)

    def muscle_sdf(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray, *, bone_sdf_mm: np.ndarray | None = None
    ) -> np.ndarray:
        """Signed distance (mm, approximate) to the deep fascia: negative inside muscle."""
        body = self.body_sdf(x, y, z, bone_sdf_mm=bone_sdf_mm)
        # the pelvic cavity holds fat and the bladder, not muscle
        return np.maximum(body + self.fat_thickness_mm(x, y, z), -self._cavity_sdf(x, y, z))

    def _bone_parts(self) -> tuple[tuple[BonePart, ...], ...]:
        groups: list[tuple[BonePart, ...]] = []
        for side in self.sides:
            groups.append(side.femur)
            groups.append(side.pelvis)
        if self.sacrum is not None:
            groups.append(self.sacrum)
        return tuple(groups)

    def bone_sdf(
        self, x: np.ndarray | float, y: np.ndarray | float, z: np.ndarray | float
    ) -> np.ndarray:
        """Signed distance (mm) to the nearest native bone surface, negative inside bone."""
        x, y, z = np.broadcast_arrays(
            np.asarray(x, float), np.asarray(y, float), np.asarray(z, float)
        )
        d = np.full(x.shape, 1e4)
        for group in self._bone_parts():
            for part in group:
                d = np.minimum(d, part.shape.sdf(x, y, z))
        return d

    # ------------------------------------------------------------------ rendering
    def render_plane(
        self, xs_mm: np.ndarray, ys_mm: np.ndarray, z_mm: float, *, voxel_mm: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render one axial plane.

        Parameters
        ----------
        xs_mm : (X,) ndarray of float64
            Column positions in mm (anatomical frame).
        ys_mm : (Y,) ndarray of float64
            Row positions in mm.
        z_mm : float
            Height of the plane in mm.
        voxel_mm : float
            In-plane voxel size in mm (sets the anti-aliasing ramp).

        Returns
        -------
        hu : (Y, X) ndarray of float32
            Noise-free, unblurred Hounsfield units.
        bone : (Y, X) ndarray of float32
            Fraction of each pixel inside native bone, 0-1.
        """
        s = self.scale
        shape = (len(ys_mm), len(xs_mm))
        hu = np.full(shape, -1000.0, np.float32)
        bone_occ = np.zeros(shape, np.float32)
        xs32 = np.asarray(xs_mm, np.float64)
        ys32 = np.asarray(ys_mm, np.float64)
        z = float(z_mm)

        def window(x0: float, x1: float, y0: float, y1: float) -> tuple[slice, slice] | None:
            ix0, ix1 = np.searchsorted(xs32, x0), np.searchsorted(xs32, x1, side="right")
            iy0, iy1 = np.searchsorted(ys32, y0), np.searchsorted(ys32, y1, side="right")
            if ix1 <= ix0 or iy1 <= iy0:
                return None
            return slice(int(iy0), int(iy1)), slice(int(ix0), int(ix1))

        def coords(w: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
            return (
                xs32[w[1]][None, :].astype(np.float32),
                ys32[w[0]][:, None].astype(np.float32),
            )

        def paint(w: tuple[slice, slice], occ: np.ndarray, value: np.ndarray | float) -> None:
            h = hu[w]
            h += occ * (value - h)

        # --- CT table: foam core with carbon-fibre skins, slightly concave
        half_w = 230.0 * max(s, 0.8)
        tw = window(-half_w, half_w, float(self.table_top_mm(half_w)) - 2.0, self.table_y_mm + 32.0)
        if tw is not None:
            x, y = coords(tw)
            ty = self.table_top_mm(x)
            for y0, y1, val in ((0.0, 2.5, 250.0), (2.5, 27.0, -880.0), (27.0, 29.5, 250.0)):
                d = np.maximum(ty + y0 - y, y - (ty + y1))
                paint(tw, coverage(d, voxel_mm=voxel_mm), val)
        # --- body: skin, subcutaneous fat, muscle (only inside the body's bounding box)
        bx0, bx1, by0, by1 = self._body_bbox(z)
        bw = window(bx0 - 3.0, bx1 + 3.0, by0 - 3.0, by1 + 3.0)
        if bw is None:
            return hu, bone_occ
        x, y = coords(bw)
        body = self._body_plane(x, y, z, bw, xs32, ys32)
        paint(bw, coverage(body, voxel_mm=voxel_mm), 30.0)
        fat_t = self.fat_thickness_mm(x, y, np.float32(z)).astype(np.float32)
        fat_v = self.fat_hu + 6.0 * self._fat_tex(x, y, np.float32(z))
        paint(bw, coverage(body + 1.8, voxel_mm=voxel_mm), fat_v)
        muscle_occ = coverage(body + fat_t, voxel_mm=voxel_mm)
        tex = self._muscle_tex(x, y, np.float32(z))
        for side in self.sides:
            cx, cy = self.shaft_centre(side, z)
            if len(self.sides) == 1:
                in_side = slice(None)
            else:
                col = np.searchsorted(xs32[bw[1]], 0.0)
                in_side = slice(int(col), None) if side.sign > 0 else slice(0, int(col))
            sw = (bw[0], _compose(bw[1], in_side, len(xs32)))
            xx, yy = coords(sw)
            occ = muscle_occ[:, in_side]
            if not occ.any():
                continue
            # muscle compartments: Voronoi cells of seeds around the femur that drift slowly
            # with height; wavy coordinates make the fat planes between them curve
            _, _, trx, try_ = self._thigh_frame(side, z)
            rmean = 0.5 * (float(trx) + float(try_))
            th = side.seed_angles + 0.25 * np.sin(
                2 * np.pi * z / side.seed_wavelength_mm + side.seed_phase
            )
            sx = float(cx) + side.sign * side.seed_radial * rmean * np.cos(th)
            sy = float(cy) + side.seed_radial * rmean * np.sin(th)
            amp = np.float32(4.0 * s)
            wx = xx + amp * self._plane_wobble(xx * 0.5, yy * 0.5, np.float32(z))
            wy = yy + amp * self._plane_wobble(yy * 0.5 + 37.0, xx * 0.5, np.float32(z))
            dist = np.stack(
                [
                    np.sqrt((wx - np.float32(a)) ** 2 + (wy - np.float32(b)) ** 2)
                    for a, b in zip(sx, sy, strict=True)
                ]
            )
            grp = np.argmin(dist, axis=0)
            two = np.partition(dist, 1, axis=0)
            base = side.muscle_hu[grp].astype(np.float32)
            paint(sw, occ, base + 3.5 * tex[:, in_side])
            # fat planes between the compartments (half the gap between nearest and next seed)
            gap = 0.5 * (two[1] - two[0])
            plane_w = 0.45 * s + 0.3
            paint(sw, coverage(gap - plane_w, voxel_mm=voxel_mm) * occ, self.fat_hu + 10.0)
            # femoral artery and vein in a fat sheath (anteromedial)
            ax, ay = self._vessel_xy(side, z)
            vw = _intersect(window(ax - 22.0 * s, ax + 22.0 * s, ay - 14.0 * s, ay + 14.0 * s), bw)
            if vw is None:
                continue
            vx, vy = coords(vw)
            vocc = coverage(body[_rel(vw, bw)] + fat_t[_rel(vw, bw)], voxel_mm=voxel_mm)
            for dx, rad, val in (
                (0.0, 11.0 * s, self.fat_hu + 10.0),
                (0.0, 4.0 * s, 42.0),
                (-side.sign * 8.5 * s, 5.0 * s, 40.0),
            ):
                dv = np.sqrt((vx - np.float32(ax + dx)) ** 2 + (vy - np.float32(ay)) ** 2) - rad
                paint(vw, coverage(dv, voxel_mm=voxel_mm) * vocc, val)
        # --- pelvic cavity: fat and bladder
        if self.pelvis_ellipse is not None and z > -25.0 * s:
            pcx, pcy, _, _ = self.pelvis_ellipse
            cw = _intersect(window(pcx - 57 * s, pcx + 57 * s, pcy - 57 * s, pcy + 47 * s), bw)
            if cw is not None:
                x, y = coords(cw)
                paint(
                    cw,
                    coverage(self._cavity_sdf(x, y, np.float32(z)), voxel_mm=voxel_mm),
                    self.fat_hu + 8.0 * tex[_rel(cw, bw)],
                )
                if self.bladder is not None:
                    paint(
                        cw, coverage(self.bladder.sdf(x, y, np.float32(z)), voxel_mm=voxel_mm), 8.0
                    )
        # --- bones
        for group in self._bone_parts():
            active = [p for p in group if p.shape.bbox_min[2] - 2 <= z <= p.shape.bbox_max[2] + 2]
            if not active:
                continue
            gx0 = min(p.shape.bbox_min[0] for p in active)
            gx1 = max(p.shape.bbox_max[0] for p in active)
            gy0 = min(p.shape.bbox_min[1] for p in active)
            gy1 = max(p.shape.bbox_max[1] for p in active)
            gw = window(gx0 - 2.0, gx1 + 2.0, gy0 - 2.0, gy1 + 2.0)
            if gw is None:
                continue
            gshape = (gw[0].stop - gw[0].start, gw[1].stop - gw[1].start)
            d_out = np.full(gshape, 1e4, np.float32)
            d_in = np.full(gshape, 1e4, np.float32)
            medullary = np.zeros(gshape, np.float32)
            for part in active:
                pw = window(
                    part.shape.bbox_min[0] - 2.0,
                    part.shape.bbox_max[0] + 2.0,
                    part.shape.bbox_min[1] - 2.0,
                    part.shape.bbox_max[1] + 2.0,
                )
                if pw is None:
                    continue
                x, y = coords(pw)
                zz = np.float32(z)
                d = part.shape.sdf(x, y, zz).astype(np.float32)
                rel = _rel(pw, gw)
                di = d + np.float32(part.cortex_mm)
                sub_in = d_in[rel]
                if part.interior == "medullary" and isinstance(part.shape, Capsule):
                    t = part.shape.param(x, y, zz)
                    # proximal metaphysis is cancellous, the diaphysis holds fatty marrow
                    m = np.clip((t - 0.05) / 0.08, 0.0, 1.0).astype(np.float32)
                    medullary[rel] = np.where(di < sub_in, m, medullary[rel])
                else:
                    medullary[rel] = np.where(di < sub_in, 0.0, medullary[rel])
                d_in[rel] = np.minimum(sub_in, di)
                d_out[rel] = np.minimum(d_out[rel], d)
            if not np.any(d_out < voxel_mm):
                continue
            x, y = coords(gw)
            btex = self._bone_tex(x, y, np.float32(z))
            occ_out = coverage(d_out, voxel_mm=voxel_mm)
            bone_occ[gw] = np.maximum(bone_occ[gw], occ_out)
            paint(gw, occ_out, self.cortex_hu + 60.0 * btex)
            canc = self.cancellous_hu + 110.0 * btex
            mtex = self._muscle_tex(x, y, np.float32(z))
            interior = canc + medullary * (self.marrow_hu + 15.0 * mtex - canc)
            paint(gw, coverage(d_in, voxel_mm=voxel_mm), interior)
        return hu, bone_occ

    def _body_bbox(self, z: float) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) in mm enclosing the patient at height z."""
        boxes = []
        for side in self.sides:
            cx, cy, rx, ry = self._thigh_frame(side, z)
            boxes.append((float(cx - rx), float(cx + rx), float(cy - ry), float(cy + ry)))
        if self.pelvis_ellipse is not None:
            pcx, pcy, _, _ = self.pelvis_ellipse
            rxf, ryf = (float(v) for v in self._pelvis_radii(np.asarray(z, float)))
            boxes.append((pcx - rxf, pcx + rxf, pcy - ryf, pcy + ryf))
        m = 10.0 * self.scale
        for group in self._bone_parts():
            for p in group:
                if p.shape.bbox_min[2] - m <= z <= p.shape.bbox_max[2] + m:
                    boxes.append(
                        (
                            p.shape.bbox_min[0] - m,
                            p.shape.bbox_max[0] + m,
                            p.shape.bbox_min[1] - m,
                            p.shape.bbox_max[1] + m,
                        )
                    )
        b = np.array(boxes)
        return (
            float(b[:, 0].min()),
            float(b[:, 1].max()),
            float(b[:, 2].min()),
            float(min(b[:, 3].max(), self.table_y_mm)),
        )

    def _body_plane(
        self,
        x: np.ndarray,
        y: np.ndarray,
        z: float,
        bw: tuple[slice, slice],
        xs: np.ndarray,
        ys: np.ndarray,
    ) -> np.ndarray:
        """Body signed distance on the window `bw` of a plane; bones evaluated in their boxes."""
        d = self._outline_sdf(x, y, np.float32(z)).astype(np.float32)
        m = 10.0 * self.scale
        for group in self._bone_parts():
            for p in group:
                if not (p.shape.bbox_min[2] - m <= z <= p.shape.bbox_max[2] + m):
                    continue
                ix0 = np.searchsorted(xs, p.shape.bbox_min[0] - m - 2)
                ix1 = np.searchsorted(xs, p.shape.bbox_max[0] + m + 2, side="right")
                iy0 = np.searchsorted(ys, p.shape.bbox_min[1] - m - 2)
                iy1 = np.searchsorted(ys, p.shape.bbox_max[1] + m + 2, side="right")
                pw = (
                    slice(max(int(iy0), bw[0].start), min(int(iy1), bw[0].stop)),
                    slice(max(int(ix0), bw[1].start), min(int(ix1), bw[1].stop)),
                )
                if pw[0].stop <= pw[0].start or pw[1].stop <= pw[1].start:
                    continue
                px = xs[pw[1]][None, :].astype(np.float32)
                py = ys[pw[0]][:, None].astype(np.float32)
                rel = _rel(pw, bw)
                d[rel] = np.minimum(d[rel], p.shape.sdf(px, py, np.float32(z)) - m)
        return np.maximum(d, y - self.table_top_mm(x)).astype(np.float32)

    def _vessel_xy(self, side: _Side, z_mm: float) -> tuple[float, float]:
        key = id(side)
        path = self._vessel_cache.get(key)
        if path is None:
            path = self._vessel_cache[key] = self._vessel_path(side)
        zs, xs, ys = path
        return float(np.interp(z_mm, zs, xs)), float(np.interp(z_mm, zs, ys))

    def _vessel_path(self, side: _Side) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Femoral vessel centre (x, y) in mm on a 1 mm grid of heights."""
        zs = np.arange(-900.0, 400.0, 2.0)
        cx, cy, rx, ry = self._thigh_frame(side, zs)
        clear = 6.0 + 10.0 * self.scale
        # anteromedial in the thigh, about 60 % of the way from the centre to the skin; where
        # bone is too close (in front of the hip joint), the nearest position that is clear
        # of bone and still well inside the muscle
        best_x = np.asarray(cx - side.sign * 0.42 * rx, float)
        best_y = np.asarray(cy - 0.45 * ry, float)
        found = np.zeros(zs.shape, bool)
        for frac in (0.62, 0.72, 0.52, 0.8):
            for ang in (45.0, 60.0, 30.0, 75.0, 15.0, 90.0):
                t = np.deg2rad(ang)
                x = cx - side.sign * frac * rx * np.cos(t)
                y = cy - frac * ry * np.sin(t)
                b = self.bone_sdf(x, y, zs)
                m = self.muscle_sdf(x, y, zs, bone_sdf_mm=b)
                ok = (b >= clear) & (m <= -8.0 * self.scale - 4.0) & ~found
                best_x = np.where(ok, x, best_x)
                best_y = np.where(ok, y, best_y)
                found |= ok
        return zs, best_x, best_y

    def vessel_point(self, side_index: int, z_mm: float) -> tuple[float, float, float]:
        """Centre (x, y, z) mm of the femoral artery of one side at height `z_mm`."""
        x, y = self._vessel_xy(self.sides[side_index], z_mm)
        return (x, y, float(z_mm))

    def vessel_radius_mm(self) -> float:
        """Radius of the femoral artery in mm."""
        return 4.0 * self.scale

    def site_centre(self, site: str, side_index: int) -> tuple[np.ndarray, float]:
        """Typical centre (mm) of an HO site and the spread (mm) around it."""
        side = self.sides[side_index]
        s, sg, h = self.scale, side.sign, side.hip_centre
        if site == "iliopsoas":
            return h + s * np.array([-sg * 8.0, -42.0, 8.0]), 12.0 * s
        if site == "gluteal":
            return h + s * np.array([sg * 30.0, 48.0, 12.0]), 14.0 * s
        if site == "abductor":
            return h + s * np.array([sg * 75.0, 12.0, -12.0]), 10.0 * s
        z = h[2] - 90.0 * s
        cx, cy = self.shaft_centre(side, z)
        if site == "adductor":
            return np.array([cx - sg * 40.0 * s, cy + 8.0 * s, z]), 22.0 * s
        if site == "vastus":
            return np.array([cx + sg * 24.0 * s, cy - 26.0 * s, z - 20 * s]), 24.0 * s
        raise ValueError(f"unknown HO site {site!r}; choose one of {SITES}")


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum of two signed distances (blend width k mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _rel(inner: tuple[slice, slice], outer: tuple[slice, slice]) -> tuple[slice, slice]:
    """Express window `inner` relative to window `outer` (both absolute, inner within outer)."""
    return (
        slice(max(inner[0].start - outer[0].start, 0), inner[0].stop - outer[0].start),
        slice(max(inner[1].start - outer[1].start, 0), inner[1].stop - outer[1].start),
    )


def _intersect(a: tuple[slice, slice] | None, b: tuple[slice, slice]) -> tuple[slice, slice] | None:
    """Intersection of two absolute windows, or None if empty."""
    if a is None:
        return None
    out = tuple(
        slice(max(p.start, q.start), min(p.stop, q.stop)) for p, q in zip(a, b, strict=True)
    )
    if any(s.stop <= s.start for s in out):
        return None
    return out[0], out[1]


def _compose(outer: slice, inner: slice, n: int) -> slice:
    """Absolute slice of `inner` (relative to `outer`) in an axis of length `n`."""
    start, stop, _ = outer.indices(n)
    a, b, _ = inner.indices(stop - start)
    return slice(start + a, start + b)


def _shaft_centre(side: _Side, z: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    a, b = side.shaft.a, side.shaft.b
    t = (np.asarray(z, float) - a[2]) / (b[2] - a[2])
    t = np.clip(t, -0.15, 1.2)
    return a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])


def _make_side(
    rng: np.random.Generator, *, sign: float, hip_centre: np.ndarray, s: float, fat_mm: float
) -> _Side:
    h = hip_centre
    sg = sign
    rh = 22.0 * s * rng.uniform(0.92, 1.08)
    lat = np.array([sg, 0.0, 0.0])
    head = Ellipsoid(h, np.array([rh, rh, rh]), np.eye(3))
    neck_end = h + s * np.array([sg * 42.0, 6.0, -28.0])
    neck = Capsule(h + 0.3 * rh * lat, neck_end, 14.0 * s, 15.5 * s)
    troch = Ellipsoid(
        h + s * np.array([sg * 58.0, 10.0, -24.0]), s * np.array([15.0, 17.0, 22.0]), np.eye(3)
    )
    lesser = Ellipsoid(
        h + s * np.array([sg * 34.0, 18.0, -52.0]), s * np.array([8.0, 8.0, 10.0]), np.eye(3)
    )
    shaft_top = h + s * np.array([sg * 46.0, 7.0, -30.0])
    shaft_bottom = h + s * np.array([sg * (22.0 + rng.uniform(-4, 4)), -6.0, -470.0])
    shaft = Capsule(shaft_top, shaft_bottom, 15.0 * s, 12.5 * s)
    cortex_shaft = rng.uniform(4.0, 6.5) * s
    femur = (
        BonePart(shape=head, cortex_mm=1.4 * s, interior="cancellous"),
        BonePart(shape=neck, cortex_mm=2.0 * s, interior="cancellous"),
        BonePart(shape=troch, cortex_mm=1.5 * s, interior="cancellous"),
        BonePart(shape=lesser, cortex_mm=1.5 * s, interior="cancellous"),
        BonePart(shape=shaft, cortex_mm=cortex_shaft, interior="medullary"),
    )
    # acetabulum: a shell cap over the head, open laterally and inferiorly; 3-4 mm joint space
    axis = np.array([-sg * 0.55, 0.15, 0.82])
    acet = ShellCap(h, rh + 3.5 * s, rh + 15.0 * s, axis, -0.2)
    # iliac wing: a flat, oblique ellipsoid rising from the acetabulum
    n = np.array([sg * 0.75, 0.55, 0.25])
    n /= np.linalg.norm(n)
    u = np.cross(n, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    w = np.cross(n, u)
    rot = np.stack([u, w, n], axis=1)
    ilium = Ellipsoid(
        h + s * np.array([-sg * 5.0, 22.0, 78.0]), s * np.array([62.0, 62.0, 6.5]), rot
    )
    ischium = Capsule(
        h + s * np.array([-sg * 8.0, 24.0, -12.0]),
        h + s * np.array([-sg * 14.0, 30.0, -58.0]),
        12.0 * s,
        14.0 * s,
    )
    pubis = Capsule(
        h + s * np.array([-sg * 22.0, -18.0, -12.0]),
        h + s * np.array([-sg * 82.0, -30.0, -28.0]),
        10.0 * s,
        8.5 * s,
    )
    pelvis = (
        BonePart(shape=acet, cortex_mm=1.8 * s, interior="cancellous"),
        BonePart(shape=Carved(ilium, h, rh + 3.5 * s), cortex_mm=1.6 * s, interior="cancellous"),
        BonePart(shape=ischium, cortex_mm=1.8 * s, interior="cancellous"),
        BonePart(shape=pubis, cortex_mm=1.5 * s, interior="cancellous"),
    )
    num_groups = int(rng.integers(6, 9))
    base = np.linspace(0, 2 * np.pi, num_groups, endpoint=False)
    angles = base + rng.uniform(-0.3, 0.3, size=num_groups) + rng.uniform(0, 2 * np.pi)
    return _Side(
        sign=sg,
        hip_centre=h,
        head_radius_mm=rh,
        shaft=shaft,
        femur=femur,
        pelvis=pelvis,
        seed_angles=angles,
        seed_radial=rng.uniform(0.35, 0.75, size=num_groups),
        seed_phase=rng.uniform(0, 2 * np.pi, size=num_groups),
        seed_wavelength_mm=s * rng.uniform(150.0, 400.0, size=num_groups),
        muscle_hu=rng.uniform(34.0, 58.0, size=num_groups),
        fat_mm=fat_mm,
        thigh_radii_mm=(s * rng.uniform(68.0, 80.0), s * rng.uniform(62.0, 72.0)),
    )


def make_anatomy(
    rng: np.random.Generator,
    *,
    fov_x_mm: float,
    fov_y_mm: float,
    layout: str = "auto",
) -> Anatomy:
    """Draw a random patient anatomy that fits a field of view.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    fov_x_mm, fov_y_mm : float
        Width (left-right) and height (anterior-posterior) of the field of view in mm.
    layout : {"auto", "pelvis", "thigh"}
        ``"pelvis"``: both hips and thighs; ``"thigh"``: one hip and thigh centred in
        the field of view; ``"auto"``: ``"pelvis"`` when the field of view is at
        least 300 x 240 mm, else ``"thigh"``.

    Returns
    -------
    Anatomy
        Centred on (0, 0) in x and y; the reference hip centre is at z = 0.

    Raises
    ------
    ValueError
        If `layout` is unknown.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
    if layout == "auto":
        layout = "pelvis" if fov_x_mm >= 300 and fov_y_mm >= 240 else "thigh"
    fat_mm = rng.uniform(7.0, 22.0)
    if layout == "pelvis":
        s = float(np.clip(min(0.92 * fov_x_mm / 360.0, 0.85 * fov_y_mm / 265.0), 0.6, 1.0))
        s *= rng.uniform(0.93, 1.0)
        fat_mm *= s
        hy = -10.0 * s
        sides = tuple(
            _make_side(
                rng,
                sign=sg,
                hip_centre=np.array([sg * 88.0 * s + rng.uniform(-2, 2), hy, rng.uniform(-2, 2)]),
                s=s,
                fat_mm=fat_mm,
            )
            for sg in (-1.0, 1.0)
        )
        pelvis_ellipse = (0.0, hy + 8.0 * s, 168.0 * s, 112.0 * s)
        bladder = Ellipsoid(
            np.array([0.0, hy - 45.0 * s, 15.0 * s]),
            s * np.array([38.0, 28.0, 30.0]) * rng.uniform(0.6, 1.1),
            np.eye(3),
        )
        tilt = np.deg2rad(rng.uniform(20.0, 35.0))
        rot = np.array(
            [[1.0, 0.0, 0.0], [0.0, np.cos(tilt), -np.sin(tilt)], [0.0, np.sin(tilt), np.cos(tilt)]]
        )
        sacrum = (
            BonePart(
                shape=Ellipsoid(
                    np.array([0.0, hy + 72.0 * s, 82.0 * s]), s * np.array([44.0, 15.0, 55.0]), rot
                ),
                cortex_mm=1.5 * s,
                interior="cancellous",
            ),
        )
    else:
        s = float(np.clip(0.88 * min(fov_x_mm, fov_y_mm) / 2.0 / 92.0, 0.5, 1.0))
        fat_mm *= s * 0.7
        sg = float(rng.choice([-1.0, 1.0]))
        side_seed = int(rng.integers(2**32))
        side0 = _make_side(
            np.random.default_rng(side_seed), sign=sg, hip_centre=np.zeros(3), s=s, fat_mm=fat_mm
        )
        # centre the limb (taken 60 mm below the hip) in the field of view
        cx, cy = _shaft_centre(side0, -60.0 * s)
        shift = -np.array([float(cx) + sg * 6.0 * s, float(cy) + 4.0 * s, 0.0])
        side = _make_side(
            np.random.default_rng(side_seed), sign=sg, hip_centre=shift, s=s, fat_mm=fat_mm
        )
        # a targeted view of one hip: acetabulum and a smaller supra-acetabular ilium only
        ilium = side.pelvis[1]
        assert isinstance(ilium.shape, Carved) and isinstance(ilium.shape.shape, Ellipsoid)
        small = Carved(
            Ellipsoid(
                shift + s * np.array([-sg * 4.0, 16.0, 62.0]),
                s * np.array([42.0, 42.0, 6.5]),
                ilium.shape.shape.rotation,
            ),
            ilium.shape.centre,
            ilium.shape.radius,
        )
        side = dataclasses.replace(
            side, pelvis=(side.pelvis[0], dataclasses.replace(ilium, shape=small))
        )
        sides = (side,)
        pelvis_ellipse = None
        bladder = None
        sacrum = None
    return Anatomy(
        layout=layout,
        scale=s,
        sides=sides,
        pelvis_ellipse=pelvis_ellipse,
        cortex_hu=rng.uniform(1350.0, 1700.0),
        cancellous_hu=rng.uniform(200.0, 330.0),
        marrow_hu=rng.uniform(-70.0, -20.0),
        fat_hu=rng.uniform(-110.0, -90.0),
        table_y_mm=1e6,
        muscle_texture=SinusoidField.random(
            rng, wavelength_mm=(4.0, 14.0), num_waves=12, stretch_xyz=(1.0, 1.0, 4.0)
        ),
        fat_texture=SinusoidField.random(rng, wavelength_mm=(6.0, 20.0), num_waves=6),
        bone_texture=SinusoidField.random(rng, wavelength_mm=(1.6, 3.5), num_waves=14),
        fat_wobble=SinusoidField.random(rng, wavelength_mm=(40.0, 120.0), num_waves=5),
        plane_wobble=SinusoidField.random(rng, wavelength_mm=(30.0, 90.0), num_waves=5),
        bladder=bladder,
        sacrum=sacrum,
    )
