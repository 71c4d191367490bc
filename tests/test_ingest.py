"""The prediction ingestion path on real files: SimpleITK as the oracle for accepted files, a
named refusal for every hostile one."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from evaluator.errors import GeometryMismatchError, ImageReadError, InvalidLabelError
from evaluator.evaluate import find_predictions
from evaluator.ingest import RejectedPrediction, read_prediction


def _same(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing())
        and np.allclose(a.GetOrigin(), b.GetOrigin())
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)
        and a.GetPixelID() == b.GetPixelID()
        and bool((sitk.GetArrayViewFromImage(a) == sitk.GetArrayViewFromImage(b)).all())
    )


DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.float32]


@pytest.mark.parametrize("seed", range(24))
def test_matches_simpleitk_on_real_files(seed: int, tmp_path: Path) -> None:
    """Random NIfTI files written by nibabel (orientations, qform/sform codes, big-endian,
    scaling, 2D, compression) and MetaImage files written by SimpleITK read exactly as
    SimpleITK reads them."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 9, size=int(rng.integers(2, 4))))
    dtype = DTYPES[seed % len(DTYPES)]
    arr = (rng.random(shape) * 5).astype(dtype)
    rotation = Rotation.random(random_state=seed).as_matrix()
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(rng.uniform(0.5, 3, 3))
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    image = nib.Nifti1Image(arr, affine, dtype=arr.dtype)
    if seed % 5 == 1:
        image.header.set_qform(None, code=0)
    if seed % 5 == 2:
        image.header.set_sform(None, code=0)
    if seed % 6 == 4:
        image.header.set_slope_inter(2.0, 1.0)
    path = tmp_path / ("p.nii.gz" if seed % 2 else "p.nii")
    nib.save(image, path)
    if seed % 7 == 3:
        swapped = image.header.as_byteswapped(">")
        nib.save(nib.Nifti1Image(arr.astype(arr.dtype.newbyteorder(">")), None, swapped), path)
    oracle = sitk.ReadImage(str(path))
    assert _same(read_prediction(path, what="p", expected_size=oracle.GetSize()), oracle)
    mha = tmp_path / "p.mha"
    sitk.WriteImage(oracle, str(mha), bool(seed % 2))
    assert _same(read_prediction(mha, what="p", expected_size=oracle.GetSize()), oracle)


def _nifti(path: Path, arr: np.ndarray) -> bytes:
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    return path.read_bytes()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.nii"
    _nifti(path, np.ones((4, 5, 6), dtype=np.uint8))
    return path


SIZE = (6, 5, 4)  # SimpleITK order of the (4, 5, 6) array


def _rejected(path: Path, cls: str, *, expected: tuple[int, ...] | None = SIZE) -> str:
    with pytest.raises(RejectedPrediction) as info:
        read_prediction(path, what=path.name, expected_size=expected)
    assert info.value.error_class == cls, str(info.value)
    return str(info.value)


def test_detached_data_and_other_formats_are_refused(good: Path) -> None:
    folder = good.parent
    for value in ("/etc/passwd", "/dev/zero", "LIST", str(good)):
        (folder / "p.mha").write_text(
            "ObjectType = Image\nNDims = 3\nDimSize = 6 5 4\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {value}\n"
        )
        assert "ElementDataFile" in _rejected(folder / "p.mha", "unsafe")
    (folder / "q.mha").write_text(
        "NDims = 3\nDimSize = 6 5 4\nElementType = MET_UCHAR\nHeaderSize = 10\n"
        "ElementDataFile = LOCAL\n"
    )
    _rejected(folder / "q.mha", "unsafe")
    (folder / "p.nrrd").write_text(f"NRRD0004\ndata file: {good}\n\n")
    _rejected(folder / "p.nrrd", "format")
    (folder / "p.mhd").write_text("ElementDataFile = p.raw\n")
    _rejected(folder / "p.mhd", "format")
    pair = bytearray(good.read_bytes()[:352])
    pair[344:348] = b"ni1\0"
    (folder / "pair.nii").write_bytes(bytes(pair))
    _rejected(folder / "pair.nii", "unsafe")


def test_links_and_special_files_are_refused(good: Path) -> None:
    folder = good.parent
    (folder / "link.nii").symlink_to(good)
    _rejected(folder / "link.nii", "unsafe")
    os.mkfifo(folder / "fifo.nii")
    _rejected(folder / "fifo.nii", "unsafe")  # and the reader did not block on it
    (folder / "dir.nii").mkdir()
    _rejected(folder / "dir.nii", "unsafe")


def test_sizes_are_checked_before_decoding(good: Path) -> None:
    folder = good.parent
    raw = good.read_bytes()
    header = bytearray(raw[:352])
    header[42:48] = np.array([1024, 1024, 1024], dtype="<i2").tobytes()
    bomb = folder / "bomb.nii.gz"
    member = gzip.compress(b"\0" * 2**22)
    bomb.write_bytes(gzip.compress(bytes(header)) + member * 4)
    message = _rejected(bomb, "geometry")
    assert "(1024, 1024, 1024)" in message and "nothing was decoded" in message
    with pytest.raises(GeometryMismatchError):  # the natural error class, for every caller
        read_prediction(bomb, what="b", expected_size=SIZE)
    (folder / "long.nii").write_bytes(raw + b"\0" * 8)
    assert "more data than its header declares" in _rejected(folder / "long.nii", "undecodable")
    (folder / "short.nii").write_bytes(raw[:-8])
    assert "truncated" in _rejected(folder / "short.nii", "undecodable")
    with gzip.open(folder / "long.nii.gz", "wb") as fh:
        fh.write(raw + b"\1" * 8)
    _rejected(folder / "long.nii.gz", "undecodable")
    padded = folder / "padded.nii"
    padded.write_bytes(raw + b"\0" * (3 * len(raw) + 2**21))
    assert "more than any encoding" in _rejected(padded, "undecodable")


def test_values_are_checked(good: Path) -> None:
    folder = good.parent
    arr = np.ones((4, 5, 6), dtype=np.float32)
    arr[0, 0, 0] = np.inf
    _nifti(folder / "inf.nii", arr)
    with pytest.raises(InvalidLabelError, match="NaN or infinite"):
        read_prediction(folder / "inf.nii", what="i", expected_size=SIZE)
    sitk.WriteImage(sitk.Image([6, 5, 4], sitk.sitkVectorUInt8, 3), str(folder / "rgb.nii"))
    assert "components per pixel" in _rejected(folder / "rgb.nii", "label")
    with pytest.raises(ImageReadError, match="does not exist"):
        read_prediction(folder / "missing.nii", what="m")


def test_mapping_cannot_leave_the_folder(good: Path, tmp_path: Path) -> None:
    pred = tmp_path / "pred"
    (pred / "images").mkdir(parents=True)
    (pred / "inside").symlink_to("/etc", target_is_directory=True)
    (pred / "images" / "c.nii").write_bytes(good.read_bytes())
    mapping = {
        "a": str(good),  # absolute
        "b": "../good.nii",  # climbs out
        "c": "images/c.nii",  # fine
        "d": "inside/passwd",  # through a link
    }
    (pred / "mapping.json").write_text(json.dumps(mapping))
    found = find_predictions(pred, ["a", "b", "c", "d"])
    assert found["c"] == pred / "images" / "c.nii"
    for case in "abd":
        match = found[case]
        assert isinstance(match, RejectedPrediction) and match.error_class == "unsafe", case
    (pred / "x").mkdir()
    (pred / "x" / "y.nii").symlink_to(good)  # a link inside a per-case folder is matched ...
    linked = find_predictions(pred, ["x"])["x"]
    assert isinstance(linked, Path)
    with pytest.raises(RejectedPrediction, match="symbolic link"):  # ... and refused when read
        read_prediction(linked, what="x", expected_size=SIZE)


def test_odd_mapping_paths_and_deep_folders_are_named_not_crashes(
    good: Path, tmp_path: Path
) -> None:
    pred = tmp_path / "odd"
    pred.mkdir()
    (pred / "mapping.json").write_text(json.dumps({"a": "x\u0000b/c.nii.gz", "b": "y\u0000.nii"}))
    found = find_predictions(pred, ["a", "b", "c"])
    for case in "ab":
        match = found[case]
        assert isinstance(match, RejectedPrediction) and match.error_class == "unsafe", case
    deep = pred / "c"
    for _ in range(40):
        deep = deep / "d"
    deep.mkdir(parents=True)
    (deep / "p.nii").write_bytes(good.read_bytes())
    match = find_predictions(pred, ["c"])["c"]
    assert isinstance(match, RejectedPrediction) and "levels" in match.message
    (pred / "mapping.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(Exception, match="not valid JSON"):
        find_predictions(pred, ["a"])
