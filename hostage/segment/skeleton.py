"""Native skeleton: large, long, continuous bones with a cortical outline, foci excluded.

How a focus fused to bone is kept apart from it (on the coarse grid):

1. *Cortex blocks*: block maximum at least ``native_cortex_min_hu`` (native
   cortex is 1000-1900 HU; amorphous and immature HO stay below it, so they
   never join the skeleton), hole-filled per axial slice so the marrow or
   cancellous interior belongs to the bone.
2. *Cores*: erosion by ``native_erode_mm`` cuts the neck between a fused focus
   and the bone. Core components spanning at least ``native_min_length_mm``
   in z (or most of a shorter scan) are native; other cores are thick bodies
   that are not part of the long skeleton: mature HO fused to bone when
   mostly exposed to soft tissue (at least ``native_min_exposure`` of its
   outer neighbours), else a fragment of native bone; a core whose interior
   runs on into the long skeleton's is bone too (a bone's interior is one
   space: the edge of an iliac wing cut off by the erosion).
3. The thick parts of each (the opening: core dilated back, inside the
   filled mask) are assigned to their core. Cores cut by the first or last
   slice are native too (a bone continuing outside the scan; a focus cut by
   the scan's end is not reported). Thin leftovers (plate rims, spurs)
   join the skeleton when connected to a native thick part, except those
   next to a non-native core and not to a native one (the rim of a focus cut
   off at its neck, :func:`_rim_of`).
4. *Foci against the bone*: a thin component (no core of its own, so step 2
   cannot cut it off) that touches the thick native bone with at most
   ``native_touch_max_contact`` of its blocks, is mostly exposed to soft
   tissue (``native_touch_min_exposure``), short in z and not cut by the
   scan's ends is a focus lying against the bone, not a plate rim or spur
   (those grow out of the thick bone along their whole base); its blocks
   against the bone that hold cortex stay bone. Any dense body cut by the
   first or last slice or by the edge of the field of view is bone
   continuing outside the scan.
5. *Foci fused to the bone*: HO forms outside the native cortex, so a mature
   focus fused to a bone keeps its own interior (marrow, cancellous bone),
   walled off from the bone's interior by cortex (blocks whose maximum
   reaches ``native_marrow_wall_min_hu``); a bone's own interior is one
   continuous space (head, neck, trochanters, shaft). An interior that is
   not the bone's largest, with its wall (``native_marrow_shell_mm``), is a
   focus when at least ``native_marrow_min_exposure`` of that body's outer
   neighbours are soft tissue (:func:`_own_marrow_bodies`). This finds foci
   fused over a broad patch, which no erosion can cut off without also
   cutting a femoral head off its neck. A body partly buried between bone
   surfaces needs ``native_marrow_partial_min_exposure`` and an interior
   coarser than the host bone's (``native_marrow_texture_min_hu``); an
   interior spanning ``native_min_length_mm`` in 3-D is a bone's own. The
   blocks of a small fused focus take in part of the host's cortex, so a
   body that fails these tests but is at least
   ``native_marrow_fullres_min_exposure`` exposed is looked at at full
   resolution: if its interior is walled off there, the exposure of a ring
   just outside its own cortex is held to the same limits, the partly buried
   one lowered to ``native_marrow_fullres_partial_min_exposure``
   (:func:`_walled_off_exposure`).
6. *Foci lying on the bone*: HO adds material outside the bone's cortical
   envelope (its interior plus a cortex of slowly varying thickness). A thin
   body standing ``native_protrusion_min_mm`` beyond the local envelope is a
   focus (:func:`_protrusions`): a strip fused along the bone, which has
   neither a neck nor, at the block size, a marrow space of its own.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..config import SegmentConfig
from ._grid import CoarseGrid, box_dilate, box_erode, gaussian_mm, mask_bbox
from .body import fill_holes_per_slice

__all__ = ["native_skeleton_coarse"]

logger = logging.getLogger(__name__)

#: Defaults of the settings the caller may not pass (``[segment]``).
_DEFAULTS = SegmentConfig()


def _face_shift(mask: np.ndarray, *, erode: bool) -> np.ndarray:
    """Erosion (border 1) or dilation (border 0) by the 6-neighbourhood, by shifted views.

    Equals :func:`scipy.ndimage.binary_erosion` / ``binary_dilation`` with the
    face-connected structure, several times faster on large masks.

    Examples
    --------
    >>> m = np.zeros((3, 3, 3), bool); m[1, 1, 1] = True
    >>> int(_face_shift(m, erode=False).sum()), int(_face_shift(~m, erode=True).sum())
    (7, 20)
    """
    out = mask.copy()
    op = np.logical_and if erode else np.logical_or
    for axis in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        op(out[tuple(lo)], mask[tuple(hi)], out=out[tuple(lo)])
        op(out[tuple(hi)], mask[tuple(lo)], out=out[tuple(hi)])
    return out


def _loose_thin(
    thin: np.ndarray,
    thick_native: np.ndarray,
    filled: np.ndarray,
    *,
    spacing_zyx_mm: tuple[float, float, float],
    min_length_mm: float,
    min_volume_mm3: float,
    min_exposure: float,
    max_contact: float,
    z_offset: int,
    n_slices: int,
    cortical: np.ndarray | None = None,
) -> np.ndarray:
    """Thin dense bodies that only touch the thick native skeleton: foci, not bone.

    A thin component (thinner than the erosion, so it has no core of its own)
    is a focus lying against the bone when it is short in z, not cut by the
    scan's ends, at least `min_volume_mm3`, mostly exposed to soft tissue (at
    least `min_exposure` of its outer neighbours) and touches the thick native
    bone with at most `max_contact` of its blocks. A plate rim or a spur of
    native bone grows out of the thick bone along its whole base. The blocks
    touching the thick bone that hold cortex (`cortical`, every block when
    not given) stay with it.

    Returns
    -------
    (cz, cy, cx) ndarray of bool
        Blocks of such bodies.
    """
    out = np.zeros(thin.shape, bool)
    if not thin.any():
        return out
    full26 = np.ones((3, 3, 3), bool)
    near_thick = box_dilate(thick_native, (1, 1, 1))
    lab, _ = ndi.label(thin, structure=full26)
    block_mm3 = float(np.prod(spacing_zyx_mm))
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        zs, ze = z_offset + sl[0].start, z_offset + sl[0].stop
        if (
            (sl[0].stop - sl[0].start) * spacing_zyx_mm[0] >= min_length_mm
            or zs == 0
            or ze == n_slices
        ):
            continue
        sl_pad = tuple(
            slice(max(0, s.start - 1), min(n_ax, s.stop + 1))
            for s, n_ax in zip(sl, thin.shape, strict=True)
        )
        body_i = lab[sl_pad] == i
        n_i = int(body_i.sum())
        if n_i * block_mm3 < min_volume_mm3:
            continue
        contact = float(np.count_nonzero(body_i & near_thick[sl_pad])) / n_i
        if contact > max_contact:
            continue  # grows out of the thick bone (a plate rim or spur)
        shell = ndi.binary_dilation(body_i, structure=full26) & ~body_i
        exposed = float(np.mean(~filled[sl_pad][shell])) if shell.any() else 1.0
        logger.debug(
            "thin body %d at z %d-%d: %d blocks, contact %.2f, exposure %.2f",
            i,
            zs,
            ze,
            n_i,
            contact,
            exposed,
        )
        if exposed >= min_exposure:
            # the blocks where it touches the bone straddle both: those holding
            # cortex stay with the bone, so that the bone's own surface is not
            # carved off with the focus
            keep = near_thick[sl_pad] if cortical is None else near_thick[sl_pad] & cortical[sl_pad]
            out[sl_pad] |= body_i & ~keep
    return out


def _rim_of(focus: np.ndarray, bone: np.ndarray, thin: np.ndarray, *, steps: int) -> np.ndarray:
    """Thin blocks nearer (26-connected steps within `thin`) to `focus` than to `bone`.

    Both grow into `thin` one block per step for `steps` steps; a block reached by
    both at once stays with the bone. Only the neighbourhood of `focus` is
    computed.

    Examples
    --------
    >>> f = np.zeros((1, 1, 7), bool); f[0, 0, 0] = True
    >>> b = np.zeros((1, 1, 7), bool); b[0, 0, 6] = True
    >>> t = ~(f | b)
    >>> _rim_of(f, b, t, steps=5).astype(int).ravel().tolist()
    [0, 1, 1, 0, 0, 0, 0]
    """
    out = np.zeros(thin.shape, bool)
    box = mask_bbox(focus, steps + 1)
    mine, theirs, free = focus[box].copy(), bone[box].copy(), thin[box].copy()
    for _ in range(steps):
        grow_b = box_dilate(theirs, (1, 1, 1)) & free
        grow_f = box_dilate(mine, (1, 1, 1)) & free & ~grow_b
        if not grow_f.any():
            break
        mine |= grow_f
        theirs |= grow_b
        free &= ~(grow_f | grow_b)
    out[box] = mine & thin[box]
    return out


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _FullRes:
    """The full-resolution scan, for interiors the coarse grid cannot judge (:func:`_walled_off_exposure`).

    Attributes
    ----------
    hu : (Z, Y, X) ndarray
        CT values (HU).
    grid : CoarseGrid
        The coarse grid.
    offset : tuple of 3 int
        Coarse index of the first block of the arrays :func:`_own_marrow_bodies` gets.
    min_exposure : float
        Least coarse exposure of a body looked at at full resolution.
    partial_min_exposure : float
        Least ring exposure at full resolution of a walled-off body whose
        interior is coarser than the host's.
    smooth_mm : float
        Gaussian smoothing (mm) of the crop.
    wall_min_hu : float
        Voxels at least this dense are walls (bone).
    soft_max_hu : float
        Voxels below this HU outside the bone's deep interior are soft tissue.
    """

    hu: np.ndarray
    grid: CoarseGrid
    offset: tuple[int, int, int]
    min_exposure: float
    partial_min_exposure: float
    smooth_mm: float
    wall_min_hu: float
    soft_max_hu: float


def _walled_off_exposure(
    interior: np.ndarray,
    sl: tuple[slice, ...],
    filled: np.ndarray,
    fr: _FullRes,
    *,
    shell_mm: float,
) -> float | None:
    """Soft-tissue share of a ring around an interior walled off at full resolution, else None.

    A coarse block mixes a thin cortex with what lies on both sides of it, so
    the coarse body of a small focus fused to a bone (its interior plus the
    wall within `shell_mm`) takes in part of the host's cortex and reads as
    little exposed. At full resolution, in a crop around the interior's blocks
    (`interior`, the blocks of `sl`, smoothed by ``fr.smooth_mm``), the voxels
    below ``fr.wall_min_hu`` that meet those blocks are the interior's space.
    It is walled off when none of it reaches the crop's faces: the host bone's
    own interior and the soft tissue around run on beyond the crop. Its
    exposure is then the share of soft tissue (below ``fr.soft_max_hu``, and
    not deep inside the hole-filled bone `filled`, where the host's marrow is)
    among the voxels more than `shell_mm` and at most one block beyond the
    space: the ring just outside a focus's own cortex.

    Returns
    -------
    float or None
        The exposure (0-1), or None when the interior is not walled off at full
        resolution (or no voxel of it lies below the wall level).
    """
    grid = fr.grid
    cs = grid.coarse_spacing_zyx_mm
    ring_mm = max(cs)
    pad = [math.ceil((shell_mm + 2.0 * ring_mm) / c) for c in cs]
    lo = [max(0, q.start - p) for q, p in zip(sl, pad, strict=True)]
    hi = [min(n, q.stop + p) for q, p, n in zip(sl, pad, filled.shape, strict=True)]
    crop = np.zeros(tuple(b - a for a, b in zip(lo, hi, strict=True)), bool)
    crop[tuple(slice(q.start - a, q.stop - a) for q, a in zip(sl, lo, strict=True))] = interior
    # the full-resolution voxels of those blocks (grid index = crop index + origin)
    z0, y0, x0 = (a + o for a, o in zip(lo, fr.offset, strict=True))
    origin = (z0, y0, x0)
    full = grid.to_full_bbox(
        tuple(slice(o, o + b - a) for a, b, o in zip(lo, hi, origin, strict=True))
    )
    s = gaussian_mm(fr.hu[full], grid.spacing_zyx_mm, fr.smooth_mm)
    space = s < fr.wall_min_hu
    lab, _ = ndi.label(space, structure=ndi.generate_binary_structure(3, 1))
    ids = np.unique(lab[grid.upsample(crop, full, origin_zyx=origin) & space])
    ids = ids[ids > 0]
    if ids.size == 0:
        return None
    faces = np.unique(
        np.concatenate([np.take(lab, j, axis=a).ravel() for a in range(3) for j in (0, -1)])
    )
    if np.isin(ids, faces).any():
        return None  # runs on beyond the crop: the host's interior, or a gap to soft tissue
    dist = ndi.distance_transform_edt(~np.isin(lab, ids), sampling=grid.spacing_zyx_mm)
    ring = (dist > shell_mm) & (dist <= shell_mm + ring_mm)
    if not ring.any():
        return None
    cbox = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    deep = grid.upsample(ndi.binary_erosion(filled[cbox], border_value=1), full, origin_zyx=origin)
    soft = (s < fr.soft_max_hu) & ~deep
    return float(np.mean(soft[ring]))


def _own_marrow_bodies(
    filled: np.ndarray,
    dense: np.ndarray,
    native: np.ndarray,
    *,
    spacing_zyx_mm: tuple[float, float, float],
    shell_mm: float,
    bone_labels: np.ndarray | None = None,
    min_length_mm: float,
    min_volume_mm3: float,
    min_exposure: float,
    z_offset: int,
    n_slices: int,
    fov_edges_yx: tuple[tuple[bool, bool], ...] = ((False, False), (False, False)),
    texture_hu: np.ndarray | None = None,
    partial_min_exposure: float = 1.0,
    texture_min_hu: float = 0.0,
    reference_out: np.ndarray | None = None,
    bone_span_mm: float = np.inf,
    fullres: _FullRes | None = None,
) -> np.ndarray:
    """Bodies with their own marrow space, walled off from the bone's: foci fused to bone.

    HO forms in soft tissue, outside the native cortex: a mature focus fused
    to a bone is a shell of new cortex around its own cancellous or fatty
    interior, and where it meets the bone the native cortex (with the
    focus's rim) still walls its interior off from the bone's marrow. A
    native bone's interior (marrow, cancellous bone) is one continuous space
    through the whole bone (head, neck, trochanters and shaft of a femur).

    The interiors are the hole-filled blocks that are not dense, split into
    face-connected components (a wall of dense blocks separates them). The
    largest interior of each native bone, any interior long in z
    (`min_length_mm`) or spanning `bone_span_mm` (the diagonal of its
    bounding box: the interior of a hemipelvis that the block size joins to
    its femur across the hip joint) and any interior cut by the scan's ends
    belongs to native bone. Another interior, with its
    wall (the blocks within `shell_mm` of it and nearer to it than to any
    other interior), is a focus when that body is short in z, not cut by
    the scan's ends, at least `min_volume_mm3`, and at least `min_exposure`
    of its outer neighbours are soft tissue (a focus in muscle, not a pocket
    of the bone's own interior).

    A body partly buried between bone surfaces (a focus filling the crevice
    between a femoral neck and a trochanter, or one pressed onto a shaft
    whose thick cortex it shares) has fewer soft-tissue neighbours, as does
    a knob of native bone cut off from the bone's interior by a thick
    cortex. Such a body (at least `partial_min_exposure` exposed) is a focus
    only when its interior also differs from the host bone's own: mature HO
    holds well-defined trabeculae with fatty marrow between [2], the host's
    cancellous bone or marrow is finer and more uniform. `texture_hu` is the
    within-block contrast (block maximum minus block mean, HU); over the
    interior (at least `min_volume_mm3`), its median excess over the host
    bone's own interior must reach `texture_min_hu`, blocks next to a wall
    compared with the host's blocks next to its walls (they straddle
    cortex) and the others with the others. Both are measured in the same
    scan, so noise and blur shift them alike.

    The coarse exposure of a small focus fused to a bone reads low: its wall
    blocks take in part of the host's cortex. With `fullres`, a body that
    fails both tests but is at least ``fullres.min_exposure`` exposed is
    looked at at full resolution (:func:`_walled_off_exposure`): when its
    interior is walled off there, the same two tests apply to the exposure
    of a ring just outside its own cortex.

    `reference_out`, when given, receives the interiors judged native: each
    bone's own and every other interior large enough to be judged and not a
    focus (the reference for :func:`_protrusions`).

    Returns
    -------
    (cz, cy, cx) ndarray of bool
        Blocks of such bodies (within `native`).
    """
    out = np.zeros(filled.shape, bool)
    face6 = ndi.generate_binary_structure(3, 1)
    # interior: not a wall, and not on the bone's outer surface (partial-volume edge blocks)
    cav = native & ~dense & _face_shift(filled, erode=True)
    if reference_out is not None:
        reference_out[...] = cav
    if not cav.any():
        return out
    cs = spacing_zyx_mm
    full26 = np.ones((3, 3, 3), bool)
    lab, n = ndi.label(cav, structure=face6)
    if n < 2:
        return out
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    sizes[0] = 0
    block_mm3 = float(np.prod(cs))
    # an interior too small to be a focus's marrow space (a pocket between trabeculae)
    small = sizes * block_mm3 < 0.25 * min_volume_mm3
    objs = ndi.find_objects(lab)
    # the largest interior of each native bone is that bone's own
    blab = (
        np.where(native, bone_labels, 0)
        if bone_labels is not None
        else ndi.label(native, structure=full26)[0]
    )
    # the native bone each interior lies in (an interior lies in one)
    bone_of = np.zeros(n + 1, np.int64)
    bone_of[lab[cav]] = blab[cav]
    order = np.lexsort((-sizes[1:], bone_of[1:])) + 1
    first = np.ones(n, bool)
    first[1:] = bone_of[order[1:]] != bone_of[order[:-1]]
    own = np.zeros(n + 1, bool)
    own[order[first]] = True
    for i, sl in enumerate(objs, start=1):
        if sl is None or own[i]:
            continue
        zs, ze = z_offset + sl[0].start, z_offset + sl[0].stop
        # long in z or spanning a bone's length in any direction (a hemipelvis joined
        # to its femur at the block size), or cut by the scan's ends or the field of
        # view: the interior of a bone (continuing outside the scan)
        span_mm = float(
            np.sqrt(sum(((q.stop - q.start) * c) ** 2 for q, c in zip(sl, cs, strict=True)))
        )
        own[i] = bool(
            (sl[0].stop - sl[0].start) * cs[0] >= min_length_mm
            or span_mm >= bone_span_mm
            or zs == 0
            or ze == n_slices
            or any(
                (lo and s.start == 0) or (hi and s.stop == n_ax)
                for s, (lo, hi), n_ax in zip(sl[1:], fov_edges_yx, filled.shape[1:], strict=True)
            )
        )
    # the host bone's own interior texture (median within-block contrast), per bone
    if texture_hu is None:
        texture_hu = np.zeros(filled.shape, np.float32)
    # Blocks next to a wall straddle cortex (high maximum over a lower mean) whatever
    # the interior holds: compare them with the host's blocks next to its walls, and
    # blocks away from the walls with the host's away from its walls.
    near_wall = cav & _face_shift(dense, erode=False)
    host_texture = np.full((int(blab.max()) + 1, 2), np.inf)
    own_blocks = own[lab] & cav
    for side in (0, 1):
        sel = own_blocks & (near_wall if side else ~near_wall)
        if not sel.any():
            continue
        b_own, t_own = blab[sel], texture_hu[sel]
        order_b = np.argsort(b_own, kind="stable")
        b_sorted, t_sorted = b_own[order_b], t_own[order_b]
        starts = np.flatnonzero(np.r_[True, b_sorted[1:] != b_sorted[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], len(b_sorted)], strict=True):
            host_texture[b_sorted[a], side] = float(np.median(t_sorted[a:b]))
    half = [int(np.ceil(shell_mm / c)) + 1 for c in cs]
    for i, sl in enumerate(objs, start=1):
        if sl is None or own[i] or small[i]:
            continue
        box = tuple(
            slice(max(0, s.start - h), min(n_ax, s.stop + h))
            for s, h, n_ax in zip(sl, half, filled.shape, strict=True)
        )
        soft = ~filled[box]
        if min_exposure > 0.0 and not soft.any():
            continue  # a pocket deep inside the bone: no soft tissue around it at all
        me = lab[box] == i
        others = (lab[box] > 0) & ~me
        d_me = ndi.distance_transform_edt(~me, sampling=cs)
        body = native[box] & (d_me <= shell_mm)
        if others.any():
            body &= d_me < ndi.distance_transform_edt(~others, sampling=cs)
        n_b = int(body.sum())
        if n_b * block_mm3 < min_volume_mm3:
            continue
        # (an interior cut by the scan's ends is the bone's own, above; the wall of a
        # focus closed inside the scan may reach the last slice through the host's cortex)
        bz = np.flatnonzero(body.any(axis=(1, 2)))
        if (int(bz[-1]) + 1 - int(bz[0])) * cs[0] >= min_length_mm:
            continue
        shell = box_dilate(body, (1, 1, 1)) & ~body
        exposed = float(np.mean(soft[shell])) if shell.any() else 1.0
        mine = lab[sl] == i
        excess = float(
            np.median(
                texture_hu[sl][mine] - host_texture[bone_of[i], near_wall[sl][mine].astype(int)]
            )
        )
        logger.debug(
            "interior %d at z %d-%d (%d blocks, extent %.0f mm): body %d blocks (%.0f mm3), exposure %.2f, texture excess %.0f HU",
            i,
            z_offset + sl[0].start,
            z_offset + sl[0].stop,
            sizes[i],
            float(np.sqrt(sum(((q.stop - q.start) * c) ** 2 for q, c in zip(sl, cs, strict=True)))),
            n_b,
            n_b * block_mm3,
            exposed,
            excess,
        )
        # the texture of a pocket of a few blocks is that of the walls around it
        textured = sizes[i] * block_mm3 >= min_volume_mm3 and excess >= texture_min_hu
        focus = exposed >= min_exposure or (exposed >= partial_min_exposure and textured)
        if not focus and fullres is not None and exposed >= fullres.min_exposure:
            ring = _walled_off_exposure(lab[sl] == i, sl, filled, fullres, shell_mm=shell_mm)
            logger.debug(
                "interior %d at full resolution: %s",
                i,
                "not walled off" if ring is None else f"walled off, ring exposure {ring:.2f}",
            )
            if ring is not None:
                focus = ring >= min_exposure or (ring >= fullres.partial_min_exposure and textured)
        if focus:
            out[box] |= body
    if reference_out is not None:
        reference_out &= ~small[lab] & ~out
    return out


def _protrusions(
    thin: np.ndarray,
    native: np.ndarray,
    filled: np.ndarray,
    interiors: np.ndarray,
    *,
    spacing_zyx_mm: tuple[float, float, float],
    min_protrusion_mm: float,
    reference_mm: float,
    min_volume_mm3: float,
    min_share: float = 0.0,
    z_offset: int,
    n_slices: int,
    fov_edges_yx: tuple[tuple[bool, bool], ...] = ((False, False), (False, False)),
) -> np.ndarray:
    """Thin dense bodies standing out beyond the bone's cortical envelope: foci, not bone.

    HO forms in soft tissue, outside the native cortex. A native bone is its
    interior (marrow, cancellous bone) wrapped in a cortex whose thickness
    changes only gradually along the bone; a dense strip or knob of HO lying
    on the bone adds material outside that cortex. For each thin component
    (the blocks the erosion's opening leaves out: plate rims, spurs, foci
    lying on the bone), the distance of every block to the nearest native
    interior (`interiors`) is compared with the local cortical thickness: the
    median of that distance over the bone's outer surface within
    `reference_mm` around the component, the component's own neighbourhood
    excluded. Blocks at least `min_protrusion_mm` beyond it, in parts of at
    least `min_volume_mm3` that are not cut by the scan's ends or the field
    of view (bone continuing outside the scan), stand outside the native
    envelope. A plate of native bone keeps its interior (cancellous bone
    between its cortices) nearly to its edge, but not at the block size:
    its last few millimetres stand out too. So a part counts only when it
    is at least `min_share` of the thin bone within `reference_mm` of it
    (a focus lying on the bone is most of the thin bone there; the edge of
    a plate is a small part of the plate) or stands out at least twice
    `min_protrusion_mm` (farther than a plate's unresolved edge). A bone
    without any interior nearby is not judged.

    Returns
    -------
    (cz, cy, cx) ndarray of bool
        Blocks of such protrusions (within `thin`).
    """
    out = np.zeros(thin.shape, bool)
    if not thin.any() or not interiors.any():
        return out
    cs = spacing_zyx_mm
    full26 = np.ones((3, 3, 3), bool)
    block_mm3 = float(np.prod(cs))
    # a block within one block (26-neighbourhood) of an interior cannot stand
    # min_protrusion_mm beyond it: a component with too few other blocks to make a
    # part of min_volume_mm3 is skipped
    lab, n_lab = ndi.label(thin, structure=full26)
    if float(np.sqrt(sum(c * c for c in cs))) < min_protrusion_mm:
        n_far = np.bincount(lab[thin & ~box_dilate(interiors, (1, 1, 1))], minlength=n_lab + 1)
    else:
        n_far = np.bincount(lab[thin], minlength=n_lab + 1)
    far = n_far * block_mm3 >= min_volume_mm3
    far[0] = False
    if not far.any():
        return out
    surface = native & ~box_erode(filled, (1, 1, 1))
    margin = [int(np.ceil(reference_mm / c)) for c in cs]
    for k, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None or not far[k]:
            continue
        comp_blocks = int(np.count_nonzero(lab[sl] == k))
        if comp_blocks * block_mm3 < min_volume_mm3:
            continue
        box = tuple(
            slice(max(0, s.start - m), min(n_ax, s.stop + m))
            for s, m, n_ax in zip(sl, margin, thin.shape, strict=True)
        )
        inner = interiors[box]
        if not inner.any():
            continue  # no interior to measure the cortex from
        comp = lab[box] == k
        depth = ndi.distance_transform_edt(~inner, sampling=cs)
        ref = surface[box] & ~box_dilate(comp, (1, 1, 1))
        if np.count_nonzero(ref) < 8:
            continue
        cortex_mm = float(np.median(depth[ref]))
        beyond = comp & (depth - cortex_mm >= min_protrusion_mm)
        if not beyond.any():
            continue
        plab, _ = ndi.label(beyond, structure=full26)
        for j, psl in enumerate(ndi.find_objects(plab), start=1):
            if psl is None:
                continue
            part = plab[psl] == j
            n_p = int(part.sum())
            abs_sl = [
                slice(b.start + p.start, b.start + p.stop) for b, p in zip(box, psl, strict=True)
            ]
            # cut by the scan's ends or the field of view: bone continuing outside it
            cut = (
                z_offset + abs_sl[0].start == 0
                or z_offset + abs_sl[0].stop == n_slices
                or any(
                    (lo and a.start == 0) or (hi and a.stop == n_ax)
                    for a, (lo, hi), n_ax in zip(
                        abs_sl[1:], fov_edges_yx, thin.shape[1:], strict=True
                    )
                )
            )
            # the thin bone around it (within reference_mm): mostly this part for a
            # focus lying on the bone, mostly plate for the edge of a plate
            near = tuple(
                slice(max(0, p.start - m), p.stop + m) for p, m in zip(psl, margin, strict=True)
            )
            share = n_p / max(1, int(np.count_nonzero(comp[near])))
            logger.debug(
                "protrusion at z %d-%d: %d blocks (%.0f %% of the thin bone near), up to %.1f mm "
                "beyond a %.1f mm cortex%s",
                z_offset + abs_sl[0].start,
                z_offset + abs_sl[0].stop,
                n_p,
                100.0 * share,
                float(depth[psl][part].max()) - cortex_mm,
                cortex_mm,
                " (cut by the scan's edge: bone)" if cut else "",
            )
            height_mm = float(depth[psl][part].max()) - cortex_mm
            if (
                n_p * block_mm3 >= min_volume_mm3
                and not cut
                and (share >= min_share or height_mm >= 2.0 * min_protrusion_mm)
            ):
                out[tuple(abs_sl)] |= part
    return out


def native_skeleton_coarse(
    block_max_hu: np.ndarray,
    *,
    grid: CoarseGrid,
    body: np.ndarray,
    exclude: np.ndarray,
    cortex_min_hu: float,
    erode_mm: float,
    min_length_mm: float,
    min_exposure: float,
    max_hole_mm2: float,
    thin_max_contact: float = 1.0,
    thin_min_exposure: float = 1.0,
    thin_min_volume_mm3: float = 0.0,
    marrow_shell_mm: float = _DEFAULTS.native_marrow_shell_mm,
    marrow_min_exposure: float = _DEFAULTS.native_marrow_min_exposure,
    marrow_wall_min_hu: float = _DEFAULTS.native_marrow_wall_min_hu,
    marrow_partial_min_exposure: float = _DEFAULTS.native_marrow_partial_min_exposure,
    marrow_texture_min_hu: float = _DEFAULTS.native_marrow_texture_min_hu,
    protrusion_min_mm: float = _DEFAULTS.native_protrusion_min_mm,
    protrusion_reference_mm: float = _DEFAULTS.native_protrusion_reference_mm,
    protrusion_min_share: float = _DEFAULTS.native_protrusion_min_share,
    block_mean_hu: np.ndarray | None = None,
    hu: np.ndarray | None = None,
    fullres_min_exposure: float = _DEFAULTS.native_marrow_fullres_min_exposure,
    fullres_partial_min_exposure: float = _DEFAULTS.native_marrow_fullres_partial_min_exposure,
    fullres_smooth_mm: float = _DEFAULTS.focus_smooth_mm,
    soft_max_hu: float = _DEFAULTS.bone_min_hu,
) -> np.ndarray:
    """Native bone on the coarse grid (cortex, cancellous bone and marrow).

    Parameters
    ----------
    block_max_hu : (cz, cy, cx) ndarray
        Block maxima (HU).
    grid : CoarseGrid
        The coarse grid.
    body : (cz, cy, cx) ndarray of bool
        The patient.
    exclude : (cz, cy, cx) ndarray of bool
        Blocks that cannot be bone (metal).
    cortex_min_hu : float
        Cortex threshold on block maxima (HU).
    erode_mm : float
        Erosion radius (mm) separating fused foci from the skeleton.
    min_length_mm : float
        z-extent (mm) that makes a core native; capped at 80 % of the scan length.
    max_hole_mm2 : float
        Largest in-slice hole (mm²) filled as marrow; larger enclosed regions
        (the pelvic cavity inside the pelvic ring) stay soft tissue.
    min_exposure : float
        A thick body outside the long skeleton is a focus when at least this
        fraction of its outer neighbours is soft tissue (else a bone fragment).
    thin_max_contact : float
        A thin dense body (no core of its own) touching the thick native bone
        with at most this fraction of its blocks is a focus lying against the
        bone (:func:`_loose_thin`); 1 keeps every thin part with the skeleton.
    thin_min_exposure : float
        Least fraction of soft-tissue outer neighbours of such a focus.
    thin_min_volume_mm3 : float
        Smallest such focus (mm³); also the smallest body with its own marrow.
    marrow_shell_mm : float
        A body with its own interior walled off from the bone's marrow (its
        interior plus the wall within this distance, mm) is a focus fused to
        the bone (:func:`_own_marrow_bodies`); 0 turns this off.
    marrow_min_exposure : float
        Least fraction of soft-tissue outer neighbours of such a body.
    marrow_wall_min_hu : float
        Blocks whose maximum reaches this HU are cortical walls between
        interiors (cancellous bone and marrow stay below it).
    marrow_partial_min_exposure : float
        A body with its own interior that is less exposed than
        `marrow_min_exposure` but at least this is a focus when its interior
        is coarser than the host bone's (`marrow_texture_min_hu`).
    marrow_texture_min_hu : float
        Least excess (HU) of the interior's median within-block contrast
        (block maximum minus block mean) over the host bone's own interior.
    protrusion_min_mm : float
        A thin dense body standing at least this far (mm) outside the bone's
        local cortical envelope is a focus lying on the bone
        (:func:`_protrusions`); 0 turns this off.
    protrusion_reference_mm : float
        Radius (mm) around such a body over which the local cortical
        thickness is measured.
    protrusion_min_share : float
        Least share of the thin bone within `protrusion_reference_mm` that
        such a body must make up, unless it stands out twice
        `protrusion_min_mm`.
    block_mean_hu : (cz, cy, cx) ndarray, optional
        Block means (HU), for the interior texture; without them partly
        buried bodies stay bone.
    hu : (Z, Y, X) ndarray, optional
        The full-resolution scan, to judge at full resolution the walled-off
        interiors whose coarse exposure is inconclusive; without it they
        stay bone.
    fullres_min_exposure : float
        Least coarse exposure of a body with its own interior that is looked
        at at full resolution (1 turns this off).
    fullres_partial_min_exposure : float
        Least exposure of the ring just outside the own cortex of a body
        walled off at full resolution, when its interior is coarser than the
        host's.
    fullres_smooth_mm : float
        Gaussian smoothing (mm) of the full-resolution crop; walls there are
        voxels of at least `cortex_min_hu`.
    soft_max_hu : float
        Full-resolution voxels below this HU (outside the bone's deep
        interior) are soft tissue.

    Returns
    -------
    (cz, cy, cx) ndarray of bool
    """
    dense = (block_max_hu >= cortex_min_hu) & body & ~exclude
    out = np.zeros(dense.shape, bool)
    if not dense.any():
        return out
    cs = grid.coarse_spacing_zyx_mm
    # an ellipsoid of radius erode_mm, but at least one block along every axis
    half = [max(1, int(erode_mm // c)) for c in cs]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    ball = np.asarray(sum((gr / h) ** 2 for gr, h in zip(grids, half, strict=True)) <= 1.0 + 1e-9)
    pad = max(ball.shape) + 1
    box = mask_bbox(dense, pad)
    d = dense[box]
    # marrow cavities are filled, not the pelvic cavity inside the pelvic ring
    filled = fill_holes_per_slice(d, max_voxels=int(max_hole_mm2 / (cs[1] * cs[2])))
    # border_value=1: a bone cut by the scan's end is not eroded there
    core = ndi.binary_erosion(filled, structure=ball, border_value=1)
    full26 = np.ones((3, 3, 3), bool)
    lab, n = ndi.label(core, structure=full26)
    if n == 0:
        return out
    zlen = min(min_length_mm, 0.8 * dense.shape[0] * cs[0])
    objs = ndi.find_objects(lab)
    native_ids = np.zeros(n + 1, bool)
    for i, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        long = (sl[0].stop - sl[0].start) * cs[0] >= zlen
        # a bone cut by the first or last slice continues outside the scan
        cut = (box[0].start + sl[0].start == 0) or (box[0].start + sl[0].stop == dense.shape[0])
        native_ids[i] = long or cut
    if not native_ids.any():
        return out
    # Other cores: thick bodies. A focus is mostly exposed to soft tissue (it only
    # touches the bone over a patch); a fragment of native bone is mostly surrounded
    # by the rest of the bone.
    thick = ndi.grey_dilation(lab, footprint=ball) * filled
    # A bone's interior (marrow, cancellous bone) is one space: a thick body whose
    # interior runs on into that of the long skeleton is part of the bone (the edge of
    # an iliac wing the erosion cut off), not a focus with its own.
    clab = np.zeros(filled.shape, np.int32)
    skeleton_cav = np.zeros(1, bool)
    if not native_ids[1:].all():
        face6 = ndi.generate_binary_structure(3, 1)
        cav_all = (
            filled & (block_max_hu[box] < marrow_wall_min_hu) & _face_shift(filled, erode=True)
        )
        clab, _ = ndi.label(cav_all, structure=face6)
        skeleton_cav = np.zeros(int(clab.max()) + 1, bool)
        skeleton_cav[clab[native_ids[thick] & (thick > 0) & cav_all]] = True
        skeleton_cav[0] = False
    # A thick body apart from the long skeleton (its dense component holds no long or
    # cut core) cannot be a fragment of it: the exposure test does not apply. A porous
    # immature focus is wrapped in its own thinner mineral, which the test would read as
    # "surrounded by bone".
    flab, _ = ndi.label(filled, structure=full26)
    with_skeleton = np.zeros(int(flab.max()) + 1, bool)
    with_skeleton[flab[native_ids[lab] & (lab > 0)]] = True
    with_skeleton[0] = False
    for i, sl in enumerate(objs, start=1):
        if sl is None or native_ids[i]:
            continue
        if not with_skeleton[flab[sl][lab[sl] == i]].any():
            logger.debug("core %d: apart from the long skeleton", i)
            continue
        sl_pad = tuple(
            slice(max(0, s.start - 2 * h - 1), s.stop + 2 * h + 1)
            for s, h in zip(sl, half, strict=True)
        )
        body_i = thick[sl_pad] == i
        shell = ndi.binary_dilation(body_i, structure=full26) & ~body_i
        exposed = float(np.mean(~filled[sl_pad][shell])) if shell.any() else 1.0
        shared = bool(skeleton_cav[clab[sl_pad][body_i]].any())
        logger.debug(
            "core %d: exposure %.2f, interior shared with the skeleton %s", i, exposed, shared
        )
        if exposed < min_exposure or shared:
            native_ids[i] = True
    thick_native = native_ids[thick] & filled
    thick_other = (thick > 0) & ~thick_native
    thin = filled & ~thick_native & ~thick_other
    if thick_other.any():
        # the rim of a focus cut off by the erosion (its cortex, thinner than the
        # erosion) belongs to the focus, not to the bone it touches
        thin &= ~_rim_of(thick_other, thick_native, thin, steps=1)
    if thin_max_contact < 1.0:
        thin &= ~_loose_thin(
            thin,
            thick_native,
            filled,
            spacing_zyx_mm=cs,
            min_length_mm=zlen,
            min_volume_mm3=thin_min_volume_mm3,
            min_exposure=thin_min_exposure,
            max_contact=thin_max_contact,
            z_offset=box[0].start,
            n_slices=dense.shape[0],
            cortical=block_max_hu[box] >= marrow_wall_min_hu,
        )
    lab2, _ = ndi.label(thick_native | thin, structure=full26)
    ids = np.unique(lab2[thick_native])
    # a dense body cut by the first or last slice is bone continuing outside the
    # scan (the tip of the sacrum or an iliac crest in the last slice), even
    # when too thin there for a core; likewise a body cut by the edge of a small
    # field of view (pubic rami joined to an acetabulum outside it)
    for axis in range(3):
        if box[axis].start == 0:
            ids = np.union1d(ids, np.take(lab2, 0, axis=axis))
        if box[axis].stop == dense.shape[axis]:
            ids = np.union1d(ids, np.take(lab2, -1, axis=axis))
    ids = ids[ids > 0]
    native = np.isin(lab2, ids)
    fov_edges_yx = tuple(
        (b.start == 0, b.stop == n_ax) for b, n_ax in zip(box[1:], dense.shape[1:], strict=True)
    )
    interiors = np.zeros(filled.shape, bool)
    if marrow_shell_mm > 0.0:
        native &= ~_own_marrow_bodies(
            filled,
            block_max_hu[box] >= marrow_wall_min_hu,
            native,
            spacing_zyx_mm=cs,
            shell_mm=marrow_shell_mm,
            bone_labels=lab2,
            min_length_mm=zlen,
            min_volume_mm3=thin_min_volume_mm3,
            min_exposure=marrow_min_exposure,
            z_offset=box[0].start,
            n_slices=dense.shape[0],
            fov_edges_yx=fov_edges_yx,
            texture_hu=None
            if block_mean_hu is None
            else block_max_hu[box].astype(np.float32) - block_mean_hu[box],
            partial_min_exposure=marrow_partial_min_exposure if block_mean_hu is not None else 1.0,
            texture_min_hu=marrow_texture_min_hu,
            reference_out=interiors,
            bone_span_mm=min_length_mm,
            fullres=None
            if hu is None or fullres_min_exposure >= 1.0
            else _FullRes(
                hu=hu,
                grid=grid,
                offset=(box[0].start, box[1].start, box[2].start),
                min_exposure=fullres_min_exposure,
                partial_min_exposure=fullres_partial_min_exposure,
                smooth_mm=fullres_smooth_mm,
                wall_min_hu=cortex_min_hu,
                soft_max_hu=soft_max_hu,
            ),
        )
    if protrusion_min_mm > 0.0:
        native &= ~_protrusions(
            thin & native,
            native,
            filled,
            interiors,
            spacing_zyx_mm=cs,
            min_protrusion_mm=protrusion_min_mm,
            reference_mm=protrusion_reference_mm,
            min_volume_mm3=thin_min_volume_mm3,
            min_share=protrusion_min_share,
            z_offset=box[0].start,
            n_slices=dense.shape[0],
            fov_edges_yx=fov_edges_yx,
        )
    out[box] = native
    logger.debug(
        "native skeleton: %d coarse blocks, %d native cores",
        int(native.sum()),
        int(native_ids.sum()),
    )
    return out
