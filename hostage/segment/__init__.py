"""Find the body, the native skeleton, metal and the hyperdense soft-tissue foci.

``segment(volume, *, config) -> Segmentation`` is the entry point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .foci import Focus

__all__ = ["Focus", "ReferenceTissues", "Segmentation", "segment"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceTissues:
    """Reference tissues measured in the same scan, so features can be scanner-relative.

    Every value is NaN when the tissue could not be measured (too little of it).

    Attributes
    ----------
    muscle_hu : float
        Median HU of skeletal muscle.
    fat_hu : float
        Median HU of subcutaneous/intermuscular fat.
    cortex_hu : float
        High percentile (p90) HU of native cortical bone.
    noise_hu : float
        Noise standard deviation (HU) in homogeneous muscle.
    edge_width_mm : float
        10-90 % edge width (mm) of the native cortex/soft-tissue boundary: the
        scanner's own edge response (point spread plus slice thickness).
    """

    muscle_hu: float
    fat_hu: float
    cortex_hu: float
    noise_hu: float
    edge_width_mm: float


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Segmentation:
    """Masks and foci of one volume, all on the volume's (Z, Y, X) grid.

    Attributes
    ----------
    body_mask : (Z, Y, X) ndarray of bool
        The patient (air and CT table excluded).
    bone_mask : (Z, Y, X) ndarray of bool
        Native skeleton (cortex, cancellous bone and marrow cavity), foci excluded.
    metal_mask : (Z, Y, X) ndarray of bool
        Metal (implants); never part of a focus.
    labels : (Z, Y, X) ndarray of int32
        0 = background, k = focus with ``id == k``.
    foci : tuple of Focus
        The reported foci, ordered by id.
    reference : ReferenceTissues
        Reference tissues of this scan.
    warnings : tuple of str
        Warnings about the segmentation (metal streaks, no native bone found, ...).
    """

    body_mask: np.ndarray
    bone_mask: np.ndarray
    metal_mask: np.ndarray
    labels: np.ndarray
    foci: tuple[Focus, ...]
    reference: ReferenceTissues
    warnings: tuple[str, ...] = ()


def segment(volume, *, config):
    """Segment `volume` (placeholder until issue 4 lands)."""
    raise NotImplementedError("segmentation is being implemented (issue 4)")
