"""Pixel data of DICOM frames: read, decode and map to Hounsfield units.

Native little-endian single-frame files are read straight from the byte
offset found while reading the header (one ``readinto`` per file into a
reused buffer). Everything else (compressed, big endian, deflated,
multi-frame) goes through pydicom's ``pixel_array`` and its decoder plugins
(pylibjpeg, openjpeg, RLE: the ``hostage[jpeg]`` extra).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import UID

from ..errors import InputError
from ._dicom_header import PARSE_ERRORS, DicomHeader

__all__ = ["AIR_HU", "FrameReader", "stored_to_hu"]

logger = logging.getLogger(__name__)

_DECODE_ERRORS: tuple[type[BaseException], ...] = (*PARSE_ERRORS, MemoryError)

#: HU given to padding pixels (outside the reconstructed field of view).
AIR_HU = -1000


def _syntax_name(uid: str) -> str:
    try:
        name = UID(uid).name
    except PARSE_ERRORS:
        name = uid
    return f"{name} ({uid})" if name != uid else uid


def _decode_error(header: DicomHeader, exc: BaseException) -> InputError:
    ts = header.transfer_syntax
    uid = UID(ts)
    if uid.is_compressed if uid.is_valid else False:
        try:
            from pydicom.pixels import get_decoder

            decoder = get_decoder(ts)
            plugins = ", ".join(decoder.available_plugins) or "none"
        except PARSE_ERRORS:
            plugins = "none"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        how = (
            "install the decoders with: pip install 'hostage[jpeg]'"
            if plugins == "none"
            else "the installed decoders cannot read it: update them with "
            "pip install -U 'hostage[jpeg]', or convert the series to an uncompressed "
            "transfer syntax (e.g. `gdcmconv --raw` or `dcmdjpeg`)"
        )
        return InputError(
            f"cannot decode pixel data compressed with transfer syntax {_syntax_name(ts)} "
            f"(decoder plugins available: {plugins}; {first}); {how}",
            path=header.path,
            code="missing_decoder" if plugins == "none" else "undecodable",
        )
    return InputError(
        f"unreadable pixel data ({type(exc).__name__}: {exc})",
        path=header.path,
        code="bad_pixels",
    )


def _stored_dtype(header: DicomHeader) -> np.dtype:
    signed = header.pixel_representation == 1
    if header.bits_allocated == 8:
        return np.dtype("i1" if signed else "u1")
    if header.bits_allocated == 16:
        return np.dtype("<i2" if signed else "<u2")
    if header.bits_allocated == 32:
        return np.dtype("<i4" if signed else "<u4")
    raise InputError(
        f"unsupported BitsAllocated {header.bits_allocated} for CT (8, 16 or 32 expected)",
        path=header.path,
        code="bad_pixels",
    )


def _fix_unused_bits(arr: np.ndarray, header: DicomHeader) -> np.ndarray:
    """Ignore bits above BitsStored (PS3.5 8.1.1), as pydicom does; only if they are set."""
    bits = header.bits_stored
    alloc = arr.dtype.itemsize * 8
    if bits <= 0 or bits >= alloc:
        return arr
    if header.pixel_representation == 1:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        shift = alloc - bits
        arr = np.right_shift(np.left_shift(arr, shift), shift)
    return arr


class FrameReader:
    """Reads stored pixel values of frames, caching decoded multi-frame files.

    Parameters
    ----------
    rows, columns : int
        Expected frame size.
    """

    def __init__(self, *, rows: int, columns: int):
        self.rows = rows
        self.columns = columns
        self._buffers: dict[np.dtype, np.ndarray] = {}
        self._decoded: dict[Path, np.ndarray] = {}

    def read(self, header: DicomHeader, frame: int) -> np.ndarray:
        """Return the stored values of one frame.

        Parameters
        ----------
        header : DicomHeader
            The file's header.
        frame : int
            Frame index (0 for single-frame files).

        Returns
        -------
        stored : (rows, columns) ndarray of int
            May be a reused buffer: copy or consume it before the next call.

        Raises
        ------
        InputError
            Truncated file, pixel data of the wrong length, no decoder.
        """
        if (header.rows, header.columns) != (self.rows, self.columns):
            raise InputError(
                f"frame size {header.rows}x{header.columns} differs from the series' "
                f"{self.rows}x{self.columns}",
                path=header.path,
                code="inconsistent_size",
            )
        if header.samples_per_pixel != 1:
            raise InputError(
                f"SamplesPerPixel is {header.samples_per_pixel}; CT must be greyscale (1)",
                path=header.path,
                code="bad_pixels",
            )
        if header.pixel_offset is not None and header.num_frames == 1 and not header.multiframe:
            arr = self._read_native(header)
        else:
            arr = self._read_pydicom(header)[frame]
        return _fix_unused_bits(arr, header)

    def _read_native(self, header: DicomHeader) -> np.ndarray:
        dtype = _stored_dtype(header)
        count = self.rows * self.columns
        expected = count * dtype.itemsize
        declared = header.pixel_length
        if declared is None or declared not in (expected, expected + 1):
            raise InputError(
                f"pixel data of the wrong length: the file declares {declared} bytes, "
                f"{self.rows}x{self.columns} pixels of {header.bits_allocated} bits need "
                f"{expected}",
                path=header.path,
                code="bad_pixel_length",
            )
        buf = self._buffers.get(dtype)
        if buf is None:
            buf = self._buffers[dtype] = np.empty(count, dtype=dtype)
        assert header.pixel_offset is not None
        try:
            with header.path.open("rb") as fp:
                fp.seek(header.pixel_offset)
                got = fp.readinto(buf.data.cast("B"))
        except OSError as exc:
            raise InputError(f"cannot read pixel data ({exc})", path=header.path) from exc
        if got != expected:
            raise InputError(
                f"truncated file: pixel data has {got} of {expected} bytes",
                path=header.path,
                code="truncated",
            )
        return buf.reshape(self.rows, self.columns)

    def _read_pydicom(self, header: DicomHeader) -> np.ndarray:
        cached = self._decoded.get(header.path)
        if cached is not None:
            return cached
        try:
            ds = pydicom.dcmread(header.path, force=True)
            if "PixelData" not in ds:
                raise InputError("no pixel data", path=header.path, code="no_pixels")
            arr = ds.pixel_array
        except InputError:
            raise
        except EOFError as exc:
            raise InputError(f"truncated file ({exc})", path=header.path, code="truncated") from exc
        except _DECODE_ERRORS as exc:
            text = str(exc)
            if "length" in text.lower() and "pixel data" in text.lower():
                raise InputError(
                    f"pixel data of the wrong length ({text})",
                    path=header.path,
                    code="bad_pixel_length",
                ) from exc
            raise _decode_error(header, exc) from exc
        except BaseException as exc:  # re-raised below unless it is a decoder panic
            # Decoder plugins written in Rust (pylibjpeg-rle) turn a corrupt stream into
            # pyo3's PanicException, which derives from BaseException, not Exception.
            if type(exc).__name__ != "PanicException":
                raise
            raise _decode_error(header, RuntimeError(f"decoder panic: {exc}")) from exc
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (self.rows, self.columns):
            raise InputError(
                f"decoded pixel data has shape {arr.shape}, expected frames of "
                f"{self.rows}x{self.columns}",
                path=header.path,
                code="bad_pixels",
            )
        if arr.shape[0] != max(header.num_frames, 1):
            raise InputError(
                f"decoded {arr.shape[0]} frames, NumberOfFrames says {header.num_frames}",
                path=header.path,
                code="bad_pixels",
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise InputError(
                f"pixel data decoded to {arr.dtype}; CT stored values must be integers",
                path=header.path,
                code="bad_pixels",
            )
        if header.multiframe or header.num_frames > 1:
            self._decoded = {header.path: arr}  # keep one multi-frame file at a time
        return arr


def stored_to_hu(
    stored: np.ndarray,
    *,
    slope: float,
    intercept: float,
    padding: tuple[int, int] | None,
    out: np.ndarray,
) -> tuple[bool, int]:
    """Write HU = stored x slope + intercept into `out`, padding pixels to air.

    Parameters
    ----------
    stored : (Y, X) ndarray of int
        Stored pixel values of one frame.
    slope, intercept : float
        RescaleSlope and RescaleIntercept of this frame.
    padding : (int, int) or None
        Inclusive range of stored padding values (PixelPaddingValue and
        PixelPaddingRangeLimit), mapped to -1000 HU.
    out : (Y, X) ndarray of int16 or float32
        Destination.

    Returns
    -------
    fits : bool
        False if `out` is int16 and the HU do not fit it exactly (nothing
        meaningful was written; redo with a float32 destination).
    num_padding : int
        Pixels mapped to air.

    Examples
    --------
    >>> out = np.empty((1, 3), np.int16)
    >>> stored_to_hu(np.array([[0, 1024, 2000]], np.uint16), slope=1.0, intercept=-1024.0,
    ...              padding=(2000, 2000), out=out)
    (True, 1)
    >>> out
    array([[-1024,     0, -1000]], dtype=int16)
    """
    if out.dtype == np.int16:
        if slope != int(slope) or intercept != int(intercept):
            return False, 0
        lo, hi = (int(stored.min()), int(stored.max())) if stored.size else (0, 0)
        ends = (lo * slope + intercept, hi * slope + intercept)
        if min(ends) < -32768 or max(ends) > 32767:
            return False, 0
        if slope == 1:
            np.add(stored, int(intercept), out=out, casting="unsafe", dtype=np.int32)
        else:
            tmp = stored.astype(np.int32)
            tmp *= int(slope)
            tmp += int(intercept)
            out[...] = tmp
    else:
        np.multiply(stored, np.float32(slope), out=out, casting="unsafe", dtype=np.float32)
        out += np.float32(intercept)
    num_padding = 0
    if padding is not None:
        a, b = sorted(padding)
        mask = (stored >= a) & (stored <= b) if a != b else (stored == a)
        num_padding = int(np.count_nonzero(mask))
        if num_padding:
            out[mask] = AIR_HU
    return True, num_padding
