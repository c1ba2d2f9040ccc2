"""Shared argument validation: one place for spacing and array checks."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["check_mask_like", "check_spacing", "check_volume_array"]


def check_spacing(spacing_zyx_mm: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """Validate a voxel spacing and return it as a tuple of 3 floats.

    Parameters
    ----------
    spacing_zyx_mm : sequence of 3 float
        Voxel spacing in mm, (z, y, x) order.

    Returns
    -------
    spacing : tuple of 3 float

    Raises
    ------
    ValueError
        If the spacing does not have 3 entries or any is not finite and > 0.

    Examples
    --------
    >>> check_spacing([3, 0.7, 0.7])
    (3.0, 0.7, 0.7)
    >>> check_spacing((1.0, 0.0, 1.0))
    Traceback (most recent call last):
    ...
    ValueError: spacing_zyx_mm must be 3 finite values > 0 in mm, (z, y, x) order; got (1.0, 0.0, 1.0)
    """
    try:
        values = tuple(float(v) for v in np.asarray(spacing_zyx_mm, dtype=float).ravel())
    except (TypeError, ValueError):
        raise ValueError(
            f"spacing_zyx_mm must be 3 finite values > 0 in mm, (z, y, x) order; "
            f"got {spacing_zyx_mm!r}"
        ) from None
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(
            f"spacing_zyx_mm must be 3 finite values > 0 in mm, (z, y, x) order; got {values!r}"
        )
    return values[0], values[1], values[2]


def check_volume_array(hu: np.ndarray, *, name: str = "hu") -> np.ndarray:
    """Check that `hu` is a 3-D numeric array of CT values.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT values in Hounsfield units.
    name : str
        Argument name used in the error message.

    Returns
    -------
    hu : (Z, Y, X) ndarray
        The same array.

    Raises
    ------
    ValueError
        If the array is not 3-D, is empty, or is not real-valued numeric.
    """
    if not isinstance(hu, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(hu).__name__}")
    if hu.ndim != 3:
        raise ValueError(f"{name} must be 3-D (z, y, x); got shape {hu.shape}")
    if hu.size == 0:
        raise ValueError(f"{name} is empty (shape {hu.shape})")
    if hu.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers (Hounsfield units); got dtype {hu.dtype}")
    return hu


def check_mask_like(mask: np.ndarray, like: np.ndarray, *, name: str = "mask") -> np.ndarray:
    """Check that `mask` is boolean with the same shape as `like`.

    Raises
    ------
    ValueError
        If dtype or shape differ.
    """
    if not isinstance(mask, np.ndarray) or mask.dtype != bool:
        raise ValueError(
            f"{name} must be a boolean numpy array; got {getattr(mask, 'dtype', mask)}"
        )
    if mask.shape != like.shape:
        raise ValueError(f"{name} shape {mask.shape} differs from the image shape {like.shape}")
    return mask
