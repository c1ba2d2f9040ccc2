"""NIfTI / NRRD / MetaImage volumes through SimpleITK, in Hounsfield units as stored.

SimpleITK images are already in LPS patient coordinates (ITK converts NIfTI's
RAS on reading). This module and :mod:`hostage.io.dicom` are the only places
where SimpleITK's (x, y, z) order is swapped to hostage's (z, y, x).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..config import LoadConfig
from ..errors import InputError
from .volume import LoadReport, Volume

__all__ = ["checked_reader", "load_volume_file", "sitk_geometry_to_zyx", "to_sitk_image"]

logger = logging.getLogger(__name__)

_INT16 = np.iinfo(np.int16)


def sitk_geometry_to_zyx(
    image: sitk.Image,
) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray]:
    """Convert a 3-D SimpleITK image's geometry to hostage's conventions.

    Parameters
    ----------
    image : SimpleITK.Image
        A 3-D image (spacing, origin and direction in LPS, (x, y, z) order).

    Returns
    -------
    spacing_zyx_mm : tuple of 3 float
        Voxel spacing in mm, (z, y, x) order.
    origin_lps_mm : tuple of 3 float
        LPS position (mm) of voxel (0, 0, 0).
    direction_lps : (3, 3) ndarray of float64
        Columns are the LPS unit vectors of the z, y and x index axes.

    Examples
    --------
    >>> img = sitk.Image([4, 3, 2], sitk.sitkInt16)
    >>> img.SetSpacing((0.5, 0.6, 2.0))
    >>> spacing, origin, direction = sitk_geometry_to_zyx(img)
    >>> spacing, direction[:, 0].tolist()
    ((2.0, 0.6, 0.5), [0.0, 0.0, 1.0])
    """
    sx, sy, sz = image.GetSpacing()
    ox, oy, oz = image.GetOrigin()
    d_xyz = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    return (float(sz), float(sy), float(sx)), (ox, oy, oz), d_xyz[:, ::-1].copy()


def to_sitk_image(array_zyx: np.ndarray, volume: Volume) -> sitk.Image:
    """Wrap a (Z, Y, X) array on `volume`'s grid as a SimpleITK image with its geometry.

    SimpleITK orders index axes x, y, z, so the spacing is reversed and the
    direction matrix gets the columns of :attr:`Volume.direction_lps` (z, y, x)
    in reverse order. ITK's physical space is LPS, like ours.

    Parameters
    ----------
    array_zyx : (Z, Y, X) ndarray
        Values on the volume's grid.
    volume : Volume
        Gives spacing, origin and direction.

    Returns
    -------
    SimpleITK.Image

    Examples
    --------
    >>> v = Volume(hu=np.zeros((2, 3, 4), np.int16), spacing_zyx_mm=(2.0, 0.5, 0.25),
    ...            origin_lps_mm=(-10.0, -20.0, 30.0))
    >>> img = to_sitk_image(np.zeros((2, 3, 4), np.uint8), v)
    >>> img.GetSize(), img.GetSpacing()
    ((4, 3, 2), (0.25, 0.5, 2.0))
    >>> [round(c, 6) for c in img.TransformIndexToPhysicalPoint((3, 2, 1))]
    [-9.25, -19.0, 32.0]
    """
    if tuple(array_zyx.shape) != volume.shape_zyx:
        raise ValueError(
            f"label array shape {array_zyx.shape} differs from the volume's {volume.shape_zyx}"
        )
    img = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx))
    img.SetSpacing(tuple(float(s) for s in volume.spacing_zyx_mm[::-1]))
    img.SetOrigin(tuple(float(v) for v in volume.origin_lps_mm))
    direction_xyz = np.asarray(volume.direction_lps)[:, ::-1]
    img.SetDirection(tuple(float(v) for v in direction_xyz.ravel()))
    return img


def _sitk_message(exc: BaseException, path: Path) -> str:
    """Last line of a SimpleITK error, without the file path (the InputError adds it)."""
    text = str(exc).strip()
    last = text.splitlines()[-1] if text else "unknown error"
    return last.replace(str(path), path.name)


def _hu_array(image: sitk.Image, path: Path) -> np.ndarray:
    arr = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0 or (int(arr.min()) >= _INT16.min and int(arr.max()) <= _INT16.max):
            return arr.astype(np.int16)
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.all(np.isfinite(out)):
            raise InputError(
                "volume contains NaN or infinite values; HU must be finite",
                path=path,
                code="bad_pixels",
            )
        return out
    raise InputError(
        f"pixel type {image.GetPixelIDTypeAsString()} is not a scalar CT value",
        path=path,
        code="bad_pixels",
    )


def checked_reader(
    path: Path, *, config: LoadConfig, kind: str, what: str, code: str = "bad_volume"
) -> sitk.ImageFileReader:
    """Open `path` with SimpleITK and check its header: a 3-D scalar image within ``max_voxels``.

    Parameters
    ----------
    path : Path
        The image file.
    config : LoadConfig
        ``max_voxels`` is checked before any pixel is read.
    kind, what : str
        Words for the messages: "cannot read the {kind}", "expected a 3-D {what}".
    code : str
        :class:`InputError` code of an unreadable or non-3-D file (``"too_large"``
        for a file above ``max_voxels``).

    Returns
    -------
    SimpleITK.ImageFileReader
        Header read; ``Execute()`` reads the pixels.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        first = _sitk_message(exc, path)
        raise InputError(
            f"cannot read the {kind} with SimpleITK ({first})", path=path, code=code
        ) from exc
    size = tuple(int(v) for v in reader.GetSize())
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        raise InputError(
            f"expected a 3-D {what}, found {reader.GetDimension()}-D size {size} with "
            f"{reader.GetNumberOfComponents()} component(s)",
            path=path,
            code=code,
        )
    voxels = int(np.prod(size, dtype=np.int64))
    if voxels > config.max_voxels:
        raise InputError(
            f"declared size {'x'.join(map(str, size))} = {voxels} voxels exceeds [load] "
            f"max_voxels = {config.max_voxels}",
            path=path,
            code="too_large",
        )
    return reader


def load_volume_file(path: str | Path, *, config: LoadConfig) -> Volume:
    """Read a NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr) or MetaImage (.mha, .mhd) CT volume.

    Parameters
    ----------
    path : str or Path
        The volume file; its values must already be Hounsfield units.
    config : LoadConfig
        ``max_voxels`` is checked before the pixels are read.

    Returns
    -------
    Volume
        int16 when the stored values are integers that fit, else float32;
        UIDs are None.

    Raises
    ------
    InputError
        Unreadable file (``"bad_volume"``), not a 3-D scalar image, too large.
    """
    path = Path(path)
    reader = checked_reader(path, config=config, kind="volume file", what="scalar volume")
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        first = _sitk_message(exc, path)
        raise InputError(
            f"cannot read the volume's pixels ({first}); the file may be truncated",
            path=path,
            code="truncated",
        ) from exc
    spacing, origin, direction = sitk_geometry_to_zyx(image)
    hu = _hu_array(image, path)
    report = LoadReport(
        chosen=f"volume file {path.name}: {hu.shape[0]} slices of {spacing[0]:.3f} mm, "
        f"{hu.shape[1]}x{hu.shape[2]} pixels (values taken as HU, as stored)",
        num_files=1,
    )
    try:
        return Volume(
            hu=hu,
            spacing_zyx_mm=spacing,
            origin_lps_mm=origin,
            direction_lps=direction,
            source=path,
            load_report=report,
        )
    except ValueError as exc:
        raise InputError(f"invalid volume geometry ({exc})", path=path, code="bad_volume") from exc
