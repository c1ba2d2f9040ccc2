"""Size and shape of a focus: volume, largest diameter, sphericity, elongation."""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ._geometry import max_pairwise_distance_mm
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "size_features"]


def size_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
    """Measure the size and shape of the focus.

    * ``size_volume_mm3`` = N_voxels × voxel volume.
    * ``size_diameter_max_mm`` = largest distance between two points of the
      focus surface (marching-cubes mesh of the lightly smoothed mask).
    * ``size_sphericity`` = π^(1/3) (6 V)^(2/3) / A with V and A the volume and
      area of that mesh (1 for a ball, smaller for irregular shapes).
    * ``size_elongation`` = sqrt(λ1 / λ3), λ the eigenvalues of the covariance
      of voxel positions in mm, each axis variance corrected by spacing²/12
      (the spread of a voxel), so it does not depend on the slice thickness.

    Parameters
    ----------
    roi : FocusROI
        The focus crop.
    config : FeatureConfig
        Feature settings (unused; the signature is shared by all families).

    Returns
    -------
    dict of str to float
        The four ``size_*`` values.
    """
    spacing = np.asarray(roi.spacing_zyx_mm)
    mesh = roi.mesh
    with np.errstate(divide="raise", invalid="raise"):
        n = int(roi.mask.sum())
        volume = n * roi.voxel_volume_mm3
        diameter = max_pairwise_distance_mm(mesh.verts_mm)
        sphericity = (
            math.pi ** (1 / 3) * (6 * mesh.volume_mm3) ** (2 / 3) / mesh.area_mm2
            if mesh.area_mm2 > 0
            else math.nan
        )
        pts = np.argwhere(roi.mask) * spacing
        cov = np.cov(pts.T, bias=True) if n > 1 else np.zeros((3, 3))
        cov = cov + np.diag(spacing**2 / 12.0)
        ev = np.sort(np.linalg.eigvalsh(cov))
        elongation = float(math.sqrt(ev[2] / ev[0]))
    return {
        "size_volume_mm3": float(volume),
        "size_diameter_max_mm": float(diameter),
        "size_sphericity": float(min(sphericity, 1.0)),
        "size_elongation": elongation,
    }


FAMILY = FeatureFamily(
    name="size",
    compute=size_features,
    features=(
        FeatureSpec("size_volume_mm3", "mm3", "Focus volume: voxel count × voxel volume."),
        FeatureSpec(
            "size_diameter_max_mm",
            "mm",
            "Largest diameter: the greatest distance between two surface points.",
        ),
        FeatureSpec(
            "size_sphericity",
            "1",
            "π^(1/3)(6V)^(2/3)/A of the smoothed surface mesh: 1 for a ball, lower for lobulated or cloudy foci.",
        ),
        FeatureSpec(
            "size_elongation",
            "1",
            "sqrt(λmax/λmin) of the voxel-position covariance (mm², voxel-size corrected): 1 for a ball.",
        ),
    ),
)
