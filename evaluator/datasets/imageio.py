"""Reading dataset files: images (with a completeness check SimpleITK lacks), JSON and CSV.

These readers are for the organiser's own files (references, images, tables); a file written by
a submission enters through :mod:`evaluator.ingest` instead. Every error names the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from evaluator.errors import ImageReadError

__all__ = ["read_image", "read_json", "read_table"]


def read_image(path: str | Path) -> sitk.Image:
    """Read one image file (NIfTI, MHA, PNG, ...) with SimpleITK.

    Parameters
    ----------
    path
        The file. Its pixel data is read completely, so truncation is detected here.

    Returns
    -------
    SimpleITK.Image
        As stored: pixel type, size, spacing (mm), origin and direction unchanged.

    Raises
    ------
    ImageReadError
        Naming the file when it is missing, is a folder, is truncated or cannot be decoded.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "img.nii.gz"
    >>> sitk.WriteImage(sitk.Image([4, 3, 2], sitk.sitkUInt8), str(path))
    >>> read_image(path).GetSize()
    (4, 3, 2)
    >>> read_image(path.with_name("missing.nii.gz"))
    Traceback (most recent call last):
    ...
    evaluator.errors.ImageReadError: .../missing.nii.gz: file does not exist
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file does not exist")
    if not path.is_file():
        raise ImageReadError(f"{path}: is not a file")
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        detail = lines[-1] if lines else "unknown reader error"
        raise ImageReadError(
            f"{path}: cannot be decoded (truncated or corrupt file): {detail}"
        ) from err
    if path.name.endswith((".nii", ".nii.gz")):
        _check_nifti_complete(path)
    return img


def _nifti_expected_bytes(path: Path) -> int:
    """Header offset plus pixel bytes of a NIfTI file (nibabel reads the header only)."""
    import nibabel as nib

    try:
        image: Any = nib.load(str(path))
        proxy = image.dataobj  # ArrayProxy: header only, data offset as stored in the file
        n_bytes = int(np.prod(proxy.shape, dtype=np.int64)) * np.dtype(proxy.dtype).itemsize
        return int(proxy.offset) + n_bytes
    except Exception as err:  # nibabel raises many types for a bad header
        raise ImageReadError(f"{path}: cannot be decoded (corrupt NIfTI header): {err}") from err


def _gunzip_size(path: Path) -> int:
    """Uncompressed size of a gzip file; ImageReadError when the stream is cut or corrupt."""
    import gzip
    import zlib

    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as err:
        raise ImageReadError(
            f"{path}: cannot be decoded (truncated or corrupt file): gzip stream: {err}"
        ) from err
    return total


def _check_nifti_complete(path: Path) -> None:
    """SimpleITK reads a cut NIfTI file without complaint; compare sizes with the header.

    ``.nii``: the file must hold header offset + pixel bytes. ``.nii.gz``: the gzip trailer
    (uncompressed size mod 2**32) is compared first; only when it differs is the stream
    decompressed to find the true size (multi-member files, extra trailing bytes).
    """
    expected = _nifti_expected_bytes(path)
    if path.name.endswith(".nii"):
        actual = path.stat().st_size
    else:
        with path.open("rb") as fh:
            fh.seek(-4, 2)
            trailer = int.from_bytes(fh.read(4), "little")
        if trailer == expected % (1 << 32):
            return
        actual = _gunzip_size(path)
    if actual < expected:
        raise ImageReadError(
            f"{path}: cannot be decoded (truncated file): {actual} bytes, the header "
            f"promises {expected}"
        )


def read_json(path: Path, *, what: str) -> Any:
    """Parse a JSON file, raising :class:`ImageReadError` naming ``what`` and the file.

    Examples
    --------
    >>> read_json(Path("/nonexistent.json"), what="annotation list")
    Traceback (most recent call last):
    ...
    evaluator.errors.ImageReadError: annotation list /nonexistent.json: cannot be read: ...
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ImageReadError(f"{what} {path}: cannot be read: {err}") from err
    except json.JSONDecodeError as err:
        raise ImageReadError(f"{what} {path}: is not valid JSON: {err}") from err


def read_table(path: Path, *, what: str) -> list[dict[str, str]]:
    """Rows of a CSV table as dicts of stripped strings (UTF-8, optional BOM).

    Raises
    ------
    ImageReadError
        Naming ``what`` and the file when it cannot be read.
    """
    import csv

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [
                {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in csv.DictReader(fh)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ImageReadError(f"{what} {path}: cannot be read: {err}") from err
