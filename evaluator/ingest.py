"""The one way a prediction file enters ccbench: checked before any pixel is decoded.

Every prediction image that ``ccbench run``, ``ccbench evaluate`` or ``ccbench metrics`` scores is
read by :func:`read_prediction`. A prediction is untrusted input (it may come out of a hostile
container), so the reader enforces, in this order:

1. **An allow-list of single-file formats** (:data:`ACCEPTED_FORMATS`): NIfTI (``.nii``,
   ``.nii.gz``, NIfTI-1 with the single-file magic ``n+1``), MetaImage ``.mha``
   with ``ElementDataFile = LOCAL``, and PNG for 2D tasks. Formats whose header may name another
   file (NRRD ``data file``, ``.mhd``, ``ElementDataFile = <path>``/``LIST``, the NIfTI
   ``.hdr``/``.img`` pair) are refused, so a header can never point at the reference, at
   ``/etc/passwd`` or at ``/dev/zero``.
2. **A regular file, opened without following links** (``O_NOFOLLOW``, ``O_NONBLOCK`` so a FIFO
   cannot block the reader); its size is capped.
3. **The header first**: the declared size, pixel type and data offset are compared with the
   reference geometry before anything is decoded, so a 1 MB file declaring 1024^3 voxels is
   refused at once.
4. **Bounded decoding**: the pixel data is decompressed by ccbench in chunks into a private copy
   and refused as soon as it is longer than the header declares (or shorter: truncated).
5. **A canonical private copy**: SimpleITK reads ccbench's own copy (uncompressed; MetaImage
   headers rewritten with known keys only) with the format's reader named explicitly, never the
   submitted file.
6. Float data is checked for NaN and infinity on the raw values (SimpleITK's NIfTI reader turns
   both into 0).

Rejections raise :class:`RejectedPrediction` with one of the per-case error classes
(``format``, ``unsafe``, ``geometry``, ``undecodable``, ``nan``) and a message naming the file.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import stat
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import SimpleITK as sitk

from evaluator.errors import (
    GeometryMismatchError,
    ImageReadError,
    InvalidLabelError,
    InvalidPredictionError,
)

__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_VOXELS",
    "Declared",
    "RejectedGeometry",
    "RejectedLabels",
    "RejectedPrediction",
    "RejectedRead",
    "accepted_suffix",
    "open_untrusted",
    "read_prediction",
]

#: File ending -> (format name, SimpleITK ImageIO that reads it).
ACCEPTED_FORMATS: dict[str, tuple[str, str]] = {
    ".nii.gz": ("NIfTI", "NiftiImageIO"),
    ".nii": ("NIfTI", "NiftiImageIO"),
    ".mha": ("MetaImage", "MetaImageIO"),
    ".png": ("PNG", "PNGImageIO"),
}

#: Largest image accepted without a reference to compare with (voxels).
DEFAULT_MAX_VOXELS = 2**31
#: With ``allow_other_extent``: at most this many times the reference's voxels.
EXTENT_FACTOR = 8
_CHUNK = 1 << 22
_MAX_MHA_HEADER = 1 << 16
_MAX_NIFTI_OFFSET = 1 << 20


class RejectedPrediction(InvalidPredictionError):
    """A prediction refused before scoring; ``error_class`` is its per-case error class.

    ``RejectedPrediction(error_class, message)`` returns the subclass that is also the natural
    error of the class: :class:`RejectedRead` (an :class:`ImageReadError`: ``missing``,
    ``format``, ``unsafe``, ``undecodable``), :class:`RejectedGeometry` (a
    :class:`GeometryMismatchError`) or :class:`RejectedLabels` (an :class:`InvalidLabelError`:
    ``nan``, ``label``).

    Examples
    --------
    >>> err = RejectedPrediction("geometry", "p: size (4, 4) does not match (8, 8)")
    >>> type(err).__name__, isinstance(err, GeometryMismatchError), err.error_class
    ('RejectedGeometry', True, 'geometry')
    """

    def __new__(cls, error_class: str, message: str) -> RejectedPrediction:
        if cls is RejectedPrediction:
            cls = _SUBCLASSES.get(error_class, RejectedRead)
        return super().__new__(cls, error_class, message)

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (RejectedPrediction, (self.error_class, self.message))


class RejectedRead(RejectedPrediction, ImageReadError):
    """The file is missing, refused (format, link, detached data) or cannot be decoded."""


class RejectedGeometry(RejectedPrediction, GeometryMismatchError):
    """The header declares a grid that does not match the reference."""


class RejectedLabels(RejectedPrediction, InvalidLabelError):
    """The values cannot be labels (NaN, infinity, several components per pixel)."""


_SUBCLASSES: dict[str, type[RejectedPrediction]] = {
    "geometry": RejectedGeometry,
    "nan": RejectedLabels,
    "label": RejectedLabels,
}


@dataclass(frozen=True)
class Declared:
    """What a header declares, in SimpleITK order.

    Attributes
    ----------
    size
        Voxels per axis ``(x, y[, z])`` (trailing axes of length 1 dropped).
    dtype
        Numpy dtype of the stored values, byte order included.
    data_offset
        Bytes before the pixel data in the decoded stream.
    """

    size: tuple[int, ...]
    dtype: np.dtype[Any]
    data_offset: int

    @property
    def voxels(self) -> int:
        """Number of voxels."""
        return math.prod(self.size)

    @property
    def total_bytes(self) -> int:
        """Header plus pixel data, bytes (the decoded stream's exact length)."""
        return self.data_offset + self.voxels * self.dtype.itemsize


def accepted_suffix(name: str) -> str | None:
    """The accepted file ending of ``name`` (case-insensitive), or None.

    Examples
    --------
    >>> accepted_suffix("case.NII.GZ"), accepted_suffix("a.mha"), accepted_suffix("a.nrrd")
    ('.nii.gz', '.mha', None)
    """
    lower = name.lower()
    return next((ext for ext in ACCEPTED_FORMATS if lower.endswith(ext)), None)


def _accepted_text() -> str:
    return ", ".join(ACCEPTED_FORMATS)


def open_untrusted(path: Path, *, what: str, max_bytes: int | None = None) -> int:
    """Open a file for reading without following a link; only a regular file is accepted.

    Parameters
    ----------
    path
        The file; its last component must not be a symbolic link.
    what
        Names the file in messages.
    max_bytes
        Refuse larger files.

    Returns
    -------
    int
        An open file descriptor (the caller closes it).

    Raises
    ------
    RejectedPrediction
        ``unsafe`` for a link, FIFO, device, socket or folder; ``undecodable`` for a missing,
        empty or oversized file.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise RejectedPrediction("missing", f"{what}: file does not exist") from None
    except OSError as err:
        if os.path.islink(path):
            raise RejectedPrediction(
                "unsafe", f"{what}: is a symbolic link; links are never followed"
            ) from None
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: cannot be opened ({err.strerror})"
        ) from None
    st = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(st.st_mode):
        problem = ("unsafe", "is not a regular file (folder, FIFO, device or socket)")
    elif st.st_size == 0:
        problem = ("undecodable", "is empty (0 bytes)")
    elif max_bytes is not None and st.st_size > max_bytes:
        problem = (
            "undecodable",
            f"is {st.st_size} bytes, more than the {max_bytes} bytes an image on the reference "
            "grid can need",
        )
    if problem is not None:
        os.close(fd)
        raise RejectedPrediction(problem[0], f"{what}: {problem[1]}")
    return fd


# --------------------------------------------------------------------------------------------
# headers
# --------------------------------------------------------------------------------------------

_NIFTI_TYPES: dict[int, str] = {
    2: "u1",
    4: "i2",
    8: "i4",
    16: "f4",
    64: "f8",
    256: "i1",
    512: "u2",
    768: "u4",
    1024: "i8",
    1280: "u8",
}

_MET_TYPES: dict[str, str] = {
    "MET_UCHAR": "u1",
    "MET_CHAR": "i1",
    "MET_USHORT": "u2",
    "MET_SHORT": "i2",
    "MET_UINT": "u4",
    "MET_INT": "i4",
    "MET_ULONG_LONG": "u8",
    "MET_LONG_LONG": "i8",
    "MET_FLOAT": "f4",
    "MET_DOUBLE": "f8",
}

#: MetaImage keys kept in the canonical copy (aliases grouped: at most one of each group).
_MHA_KEYS: dict[str, str] = {
    "objecttype": "ObjectType",
    "ndims": "NDims",
    "binarydata": "BinaryData",
    "binarydatabyteordermsb": "BinaryDataByteOrderMSB",
    "elementbyteordermsb": "ElementByteOrderMSB",
    "compresseddata": "CompressedData",
    "compresseddatasize": "CompressedDataSize",
    "transformmatrix": "TransformMatrix",
    "rotation": "Rotation",
    "orientation": "Orientation",
    "offset": "Offset",
    "position": "Position",
    "origin": "Origin",
    "centerofrotation": "CenterOfRotation",
    "anatomicalorientation": "AnatomicalOrientation",
    "elementspacing": "ElementSpacing",
    "elementsize": "ElementSize",
    "dimsize": "DimSize",
    "elementnumberofchannels": "ElementNumberOfChannels",
    "elementtype": "ElementType",
}
_MHA_ALIASES = (
    {"transformmatrix", "rotation", "orientation"},
    {"offset", "position", "origin"},
    {"binarydatabyteordermsb", "elementbyteordermsb"},
)
_MHA_NUMERIC = {
    "ndims",
    "transformmatrix",
    "rotation",
    "orientation",
    "offset",
    "position",
    "origin",
    "centerofrotation",
    "elementspacing",
    "elementsize",
    "dimsize",
    "elementnumberofchannels",
    "compresseddatasize",
}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _nifti_header(head: bytes, *, what: str) -> Declared:
    """Parse a NIfTI-1 header (the first 348 bytes and more); NIfTI-2 is refused."""
    if len(head) < 348:
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: too short for a NIfTI header"
        )
    for order in "<>":
        sizeof_hdr = struct.unpack(order + "i", head[:4])[0]
        if sizeof_hdr in (348, 540):
            break
    else:
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: not a NIfTI file (bad header size)"
        )
    if sizeof_hdr == 540:
        raise RejectedPrediction(
            "format", f"{what}: NIfTI-2 is not read by SimpleITK; write NIfTI-1 (.nii or .nii.gz)"
        )
    magic = head[344:348]
    if magic == b"ni1\0":
        raise RejectedPrediction(
            "unsafe",
            f"{what}: NIfTI header of a .hdr/.img pair (magic 'ni1'): the pixel data would "
            "come from another file; write a single-file .nii or .nii.gz",
        )
    if magic != b"n+1\0":
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: not a NIfTI-1 file (magic {magic!r})"
        )
    dims = struct.unpack(order + "8h", head[40:56])
    datatype, bitpix = struct.unpack(order + "2h", head[70:74])
    vox_offset_f, slope, inter = struct.unpack(order + "3f", head[108:120])
    if not math.isfinite(vox_offset_f) or vox_offset_f != int(vox_offset_f):
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: NIfTI vox_offset is not a whole number"
        )
    vox_offset, minimum = int(vox_offset_f), 352
    if datatype in (128, 2304) or (int(dims[0]) == 5 and int(dims[5]) > 1):
        count = {128: 3, 2304: 4}.get(datatype, int(dims[5]))
        raise RejectedPrediction(
            "label", f"{what}: has {count} components per pixel, expected a scalar label image"
        )
    if datatype not in _NIFTI_TYPES:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: NIfTI datatype {datatype} is not an accepted pixel type "
            "(integers of 8-64 bits, float32, float64)",
        )
    dtype = np.dtype(order + _NIFTI_TYPES[datatype])
    if bitpix != 8 * dtype.itemsize:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: NIfTI bitpix {bitpix} does not match datatype {datatype}",
        )
    if not minimum <= vox_offset <= _MAX_NIFTI_OFFSET:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: NIfTI vox_offset {vox_offset} is outside {minimum}..{_MAX_NIFTI_OFFSET}",
        )
    if not math.isfinite(slope) or not math.isfinite(inter):
        raise RejectedPrediction(
            "nan", f"{what}: NIfTI scaling (scl_slope, scl_inter) is not finite"
        )
    ndim = int(dims[0])
    if not 1 <= ndim <= 7 or any(int(d) < 1 for d in dims[1 : ndim + 1]):
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: NIfTI dimensions {dims} are invalid"
        )
    size = [int(d) for d in dims[1 : ndim + 1]]
    while len(size) > 2 and size[-1] == 1:
        size.pop()
    return Declared(tuple(size), dtype, vox_offset)


def _mha_header(stream: IO[bytes], *, what: str) -> tuple[Declared, dict[str, str], bool]:
    """Parse a MetaImage header; returns what it declares, the kept fields, compressed or not."""
    fields: dict[str, str] = {}
    seen: set[str] = set()
    consumed = 0
    while True:
        line = stream.readline(_MAX_MHA_HEADER)
        consumed += len(line)
        if not line or consumed > _MAX_MHA_HEADER:
            raise RejectedPrediction(
                "undecodable",
                f"{what}: cannot be decoded: no 'ElementDataFile = LOCAL' line in the first {_MAX_MHA_HEADER} bytes",
            )
        try:
            text = line.decode("ascii").strip()
        except UnicodeDecodeError:
            raise RejectedPrediction(
                "undecodable", f"{what}: cannot be decoded: MetaImage header holds non-ASCII bytes"
            ) from None
        if not text:
            continue
        key, sep, value = text.partition("=")
        key, value = key.strip(), value.strip()
        lower = key.lower()
        if not sep or not key:
            raise RejectedPrediction(
                "undecodable",
                f"{what}: cannot be decoded: MetaImage header line {text[:60]!r} is not 'key = value'",
            )
        if lower in seen:
            raise RejectedPrediction(
                "undecodable", f"{what}: cannot be decoded: MetaImage key {key} appears twice"
            )
        seen.add(lower)
        if lower == "elementdatafile":
            if value.upper() != "LOCAL":
                raise RejectedPrediction(
                    "unsafe",
                    f"{what}: header names a detached data file (ElementDataFile = {value[:80]}); "
                    "only ElementDataFile = LOCAL (pixel data in the same file) is accepted",
                )
            break
        if lower in ("headersize", "elementdatafilelist"):
            raise RejectedPrediction(
                "unsafe", f"{what}: MetaImage key {key} is not accepted in a prediction"
            )
        if lower in _MHA_KEYS:
            if lower in _MHA_NUMERIC and not all(_NUMBER.match(v) for v in value.split()):
                raise RejectedPrediction(
                    "undecodable",
                    f"{what}: cannot be decoded: MetaImage {key} = {value[:60]!r} is not numeric",
                )
            fields[lower] = value
    for group in _MHA_ALIASES:
        if len(group & fields.keys()) > 1:
            raise RejectedPrediction(
                "undecodable",
                f"{what}: cannot be decoded: MetaImage keys {sorted(group & fields.keys())} conflict",
            )
    if fields.get("objecttype", "Image").lower() != "image":
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: MetaImage ObjectType is not Image"
        )
    if fields.get("binarydata", "True").lower() != "true":
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: MetaImage BinaryData must be True"
        )
    try:
        ndims = int(fields["ndims"])
        size = tuple(int(v) for v in fields["dimsize"].split())
        channels = int(fields.get("elementnumberofchannels", "1"))
        code = _MET_TYPES[fields["elementtype"].upper()]
    except KeyError as err:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: MetaImage header lacks or has an unaccepted {err.args[0]}",
        ) from None
    except ValueError:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: MetaImage NDims/DimSize/channels are not integers",
        ) from None
    if not 2 <= ndims <= 4 or len(size) != ndims or any(s < 1 for s in size) or channels < 1:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: MetaImage NDims {ndims} / DimSize {size} are invalid",
        )
    if channels != 1:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: has {channels} channels per pixel, expected a scalar label image",
        )
    msb = fields.get("binarydatabyteordermsb", fields.get("elementbyteordermsb", "False"))
    dtype = np.dtype((">" if msb.lower() == "true" else "<") + code)
    compressed = fields.get("compresseddata", "False").lower() == "true"
    trimmed = list(size)
    while len(trimmed) > 2 and trimmed[-1] == 1:
        trimmed.pop()
    return Declared(tuple(trimmed), dtype, 0), fields, compressed


def _png_header(head: bytes, *, what: str) -> Declared:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise RejectedPrediction("undecodable", f"{what}: cannot be decoded: not a PNG file")
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    if width < 1 or height < 1:
        raise RejectedPrediction(
            "undecodable", f"{what}: cannot be decoded: PNG size {width}x{height} is invalid"
        )
    if colour != 0 or depth not in (8, 16):
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: PNG must be 8- or 16-bit greyscale (colour type {colour}, depth {depth})",
        )
    return Declared((int(width), int(height)), np.dtype(">u2" if depth == 16 else "u1"), 0)


# --------------------------------------------------------------------------------------------
# bounded decoding into a private copy
# --------------------------------------------------------------------------------------------


def _trim(size: tuple[int, ...]) -> tuple[int, ...]:
    out = list(size)
    while len(out) > 2 and out[-1] == 1:
        out.pop()
    return tuple(out)


def _check_declared(
    declared: Declared,
    *,
    what: str,
    expected_size: tuple[int, ...] | None,
    allow_other_extent: bool,
    max_voxels: int,
    file_bytes: int,
) -> None:
    """Refuse a header whose size disagrees with the reference, or a file far too long for it."""
    if expected_size is not None and not allow_other_extent:
        if declared.size != _trim(tuple(expected_size)):
            raise RejectedPrediction(
                "geometry",
                f"{what}: header declares size {declared.size} voxels, the reference has "
                f"{tuple(expected_size)} voxels (nothing was decoded)",
            )
        _check_file_size(declared, what=what, file_bytes=file_bytes)
        return
    limit = max_voxels
    if expected_size is not None:
        limit = min(limit, EXTENT_FACTOR * math.prod(expected_size))
        if len(declared.size) != len(_trim(tuple(expected_size))):
            raise RejectedPrediction(
                "geometry",
                f"{what}: {len(declared.size)}D image does not match the "
                f"{len(expected_size)}D reference",
            )
    if declared.voxels > limit:
        raise RejectedPrediction(
            "geometry",
            f"{what}: header declares {declared.voxels} voxels {declared.size}, more than the "
            f"{limit} accepted (nothing was decoded)",
        )
    _check_file_size(declared, what=what, file_bytes=file_bytes)


def _check_file_size(declared: Declared, *, what: str, file_bytes: int) -> None:
    # Compression never makes data much longer than raw: anything beyond this is padding that
    # would only cost reading time (e.g. gigabytes of empty deflate blocks).
    ceiling = 2 * declared.total_bytes + (1 << 20)
    if file_bytes > ceiling:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: is {file_bytes} bytes, more than any encoding of the {declared.voxels} "
            f"declared voxels needs ({ceiling} bytes)",
        )


def _fill(source: Any, buf: memoryview, *, what: str) -> None:
    """Fill ``buf`` exactly from ``source`` (``readinto``); refuse more or less data."""
    pos = 0
    while pos < len(buf):
        got = source.readinto(buf[pos : pos + _CHUNK])
        if not got:
            raise RejectedPrediction(
                "undecodable",
                f"{what}: cannot be decoded: truncated: {len(buf) - pos} bytes of pixel data are missing",
            )
        pos += got
    if source.readinto(memoryview(bytearray(1))):
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: holds more data than its header declares (refused, nothing is decoded past "
            "the declared size)",
        )


class _Inflater:
    """``readinto`` over zlib or gzip data (auto-detected, gzip members chained), bounded.

    Never inflates more than the buffer holds, so a decompression bomb costs at most what the
    caller asks for; bytes after the end of the stream (other than gzip's zero padding) are
    refused.
    """

    def __init__(self, raw: IO[bytes], *, what: str) -> None:
        self.raw = raw
        self.what = what
        self.obj = zlib.decompressobj(47)
        self.tail = b""

    def _next_input(self) -> bytes:
        if self.tail:
            data, self.tail = self.tail, b""
            return data
        return self.obj.unconsumed_tail or self.raw.read(1 << 20)

    def readinto(self, buf: memoryview) -> int:
        """Inflate up to ``len(buf)`` bytes into ``buf``; 0 at the end of the stream."""
        pos = 0
        while pos < len(buf):
            if self.obj.eof:
                rest = self.obj.unused_data + self.raw.read(1 << 16)
                if rest[:2] == b"\x1f\x8b":  # another gzip member
                    self.obj, self.tail = zlib.decompressobj(47), rest
                    continue
                if rest.strip(b"\0") or self.raw.read(1):
                    raise RejectedPrediction(
                        "undecodable",
                        f"{self.what}: cannot be decoded: data after the end of the compressed stream",
                    )
                break
            data = self._next_input()
            if not data:
                raise RejectedPrediction(
                    "undecodable",
                    f"{self.what}: cannot be decoded: the compressed pixel data is cut short",
                )
            try:
                chunk = self.obj.decompress(data, len(buf) - pos)
            except zlib.error as err:
                raise RejectedPrediction(
                    "undecodable",
                    f"{self.what}: cannot be decoded: corrupt compressed pixel data ({err})",
                ) from None
            buf[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        return pos

    def read(self, n: int) -> bytes:
        """Up to ``n`` inflated bytes."""
        buf = bytearray(n)
        return bytes(buf[: self.readinto(memoryview(buf))])


@dataclass
class _Decoded:
    """A validated prediction: what its header declares, the header ITK reads, the pixels."""

    declared: Declared
    header: bytes
    data: np.ndarray[Any, Any]
    rescaled: bool = False


def _nifti_source(fh: IO[bytes], what: str) -> Any:
    magic = fh.read(2)
    fh.seek(0)
    return _Inflater(fh, what=what) if magic == b"\x1f\x8b" else fh


def _decode(fh: IO[bytes], suffix: str, limits: dict[str, Any]) -> _Decoded:
    """Validate the header against ``limits``, then decode the pixel data (bounded)."""
    what = str(limits["what"])
    if suffix in (".nii", ".nii.gz"):
        source = _nifti_source(fh, what)
        head = _read_exact(source, 540)
        declared = _nifti_header(head, what=what)
        _check_declared(declared, **limits)
        offset = declared.data_offset
        if len(head) < offset:
            head += _read_exact(source, offset - len(head))
            if len(head) < offset:
                raise RejectedPrediction(
                    "undecodable", f"{what}: cannot be decoded: truncated NIfTI header"
                )
        data = np.empty(declared.voxels, dtype=declared.dtype)
        raw = data.view(np.uint8).data
        prefix = head[offset : offset + len(raw)]
        if len(head) > offset + len(raw):
            raise RejectedPrediction(
                "undecodable",
                f"{what}: cannot be decoded: holds more data than its header declares",
            )
        raw[: len(prefix)] = prefix
        _fill(source, raw[len(prefix) :], what=what)
        slope, inter = _nifti_scaling(head)
        rescaled = slope not in (0.0, 1.0) or inter != 0.0
        return _Decoded(declared, head[:offset], data, rescaled)
    if suffix == ".mha":
        declared, fields, compressed = _mha_header(fh, what=what)
        _check_declared(declared, **limits)
        kept = {
            k: v for k, v in fields.items() if k not in ("compresseddata", "compresseddatasize")
        }
        header = "".join(f"{_MHA_KEYS[k]} = {v}\n" for k, v in kept.items())
        header += "CompressedData = False\nElementDataFile = LOCAL\n"
        data = np.empty(declared.voxels, dtype=declared.dtype)
        _fill(_Inflater(fh, what=what) if compressed else fh, data.view(np.uint8).data, what=what)
        encoded = header.encode("ascii")
        return _Decoded(Declared(declared.size, declared.dtype, len(encoded)), encoded, data)
    head = fh.read(26)
    declared = _png_header(head, what=what)
    _check_declared(declared, **limits)
    fh.seek(0)
    return _Decoded(declared, b"", np.frombuffer(fh.read(), dtype=np.uint8))


def _nifti_scaling(head: bytes) -> tuple[float, float]:
    order = "<" if struct.unpack("<i", head[:4])[0] == 348 else ">"
    slope, inter = struct.unpack(order + "2f", head[112:120])
    return float(slope), float(inter)


def _non_finite(decoded: _Decoded) -> bool:
    dtype = decoded.declared.dtype
    if dtype.kind != "f":
        return False
    values = decoded.data
    step = _CHUNK // dtype.itemsize
    return any(not np.isfinite(values[i : i + step]).all() for i in range(0, values.size, step))


@contextmanager
def _scratch_dir(scratch: Path | None) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="ccbench-ingest-", dir=scratch))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _itk_reader(path: Path, suffix: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetImageIO(ACCEPTED_FORMATS[suffix][1])
    reader.SetFileName(str(path))
    return reader


def _to_image(decoded: _Decoded, suffix: str, folder: Path, *, what: str) -> sitk.Image:
    """The SimpleITK image: geometry as ITK reads the header, pixels from the decoded buffer.

    PNG files and rescaled NIfTI data (``scl_slope``/``scl_inter``) are read by ITK from a
    private copy instead, so that ITK's own conversions apply.
    """
    name = "copy.nii" if suffix.startswith(".nii") else f"copy{suffix}"
    private = folder / name
    if suffix == ".png" or decoded.rescaled:
        with private.open("wb") as out:
            out.write(decoded.header)
            out.write(decoded.data.tobytes())
        return _itk_reader(private, suffix).Execute()
    private.write_bytes(decoded.header)
    reader = _itk_reader(private, suffix)
    reader.ReadImageInformation()
    size = tuple(int(v) for v in reader.GetSize())
    if len(size) not in (2, 3):
        raise RejectedPrediction(
            "geometry", f"{what}: {len(size)}D image {size}; predictions are 2D or 3D images"
        )
    if reader.GetNumberOfComponents() != 1:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: has {reader.GetNumberOfComponents()} components per pixel, expected a "
            "scalar label image",
        )
    if math.prod(size) != decoded.declared.voxels:
        raise RejectedPrediction(
            "undecodable",
            f"{what}: cannot be decoded: the reader sees size {size}, the header declares "
            f"{decoded.declared.size}",
        )
    values = decoded.data.reshape(size[::-1])
    image = sitk.GetImageFromArray(values.astype(values.dtype.newbyteorder("="), copy=False))
    image.SetSpacing(reader.GetSpacing())
    image.SetOrigin(reader.GetOrigin())
    image.SetDirection(reader.GetDirection())
    return image


def read_prediction(
    path: str | os.PathLike[str],
    *,
    what: str,
    expected_size: tuple[int, ...] | None = None,
    allow_other_extent: bool = False,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    scratch: Path | None = None,
) -> sitk.Image:
    """Read an untrusted prediction image through the checks of this module.

    Parameters
    ----------
    path
        The prediction file; its name must end in an accepted format
        (:data:`ACCEPTED_FORMATS`).
    what
        Names the file in messages, e.g. ``"prediction 0001 (0001.nii.gz)"``.
    expected_size
        The reference's size in SimpleITK order ``(x, y[, z])``; the header must declare exactly
        this size (checked before decoding).
    allow_other_extent
        Accept another size (HECKTOR's resampling of a different extent), up to
        ``EXTENT_FACTOR`` times the reference's voxels.
    max_voxels
        Upper bound when no reference size is given.
    scratch
        Folder for the private copy [default: the system's temporary folder].

    Returns
    -------
    SimpleITK.Image
        Read by SimpleITK from ccbench's own canonical copy.

    Raises
    ------
    RejectedPrediction
        With ``error_class`` ``format``, ``unsafe``, ``missing``, ``geometry``, ``undecodable``
        or ``nan``.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> sitk.WriteImage(sitk.Image([4, 3, 2], sitk.sitkUInt8), str(folder / "p.nii.gz"))
    >>> read_prediction(folder / "p.nii.gz", what="p", expected_size=(4, 3, 2)).GetSize()
    (4, 3, 2)
    >>> read_prediction(folder / "p.nii.gz", what="p", expected_size=(8, 8, 8))
    Traceback (most recent call last):
    ...
    evaluator.ingest.RejectedGeometry: p: header declares size (4, 3, 2) voxels, the reference has (8, 8, 8) voxels (nothing was decoded)
    >>> _ = (folder / "p.nrrd").write_text("NRRD0004\\ndata file: /etc/passwd\\n")
    >>> read_prediction(folder / "p.nrrd", what="p")
    Traceback (most recent call last):
    ...
    evaluator.ingest.RejectedRead: p: p.nrrd is not an accepted format (accepted: .nii.gz, .nii, .mha, .png)
    """
    path = Path(path)
    suffix = accepted_suffix(path.name)
    if suffix is None:
        raise RejectedPrediction(
            "format",
            f"{what}: {path.name} is not an accepted format (accepted: {_accepted_text()})",
        )
    fd = open_untrusted(path, what=what)
    with os.fdopen(fd, "rb") as fh:
        limits: dict[str, Any] = {
            "what": what,
            "expected_size": expected_size,
            "allow_other_extent": allow_other_extent,
            "max_voxels": max_voxels,
            "file_bytes": os.fstat(fh.fileno()).st_size,
        }
        decoded = _decode(fh, suffix, limits)
    if _non_finite(decoded):
        raise RejectedPrediction("nan", f"{what}: contains NaN or infinite values")
    with _scratch_dir(scratch) as folder:
        try:
            return _to_image(decoded, suffix, folder, what=what)
        except RuntimeError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            detail = lines[-1] if lines else "unknown reader error"
            raise RejectedPrediction(
                "undecodable", f"{what}: cannot be decoded: {detail[:200]}"
            ) from None
