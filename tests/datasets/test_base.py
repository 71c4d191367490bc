from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from matplotlib.path import Path as MplPath

from evaluator.datasets.annotations import rasterise_polygon
from evaluator.datasets.base import Case, open_dataset
from evaluator.datasets.geometry import check_same_geometry, image_geometry
from evaluator.datasets.imageio import read_image
from evaluator.datasets.labels import label_array
from evaluator.errors import (
    DatasetNotFoundError,
    GeometryMismatchError,
    ImageReadError,
    InvalidLabelError,
)
from evaluator.workspace import Workspace

# ---- read_image ------------------------------------------------------------------------------


def _write(path: Path, arr: np.ndarray) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(path))
    return path


def _valid(tmp_path: Path, name: str = "img.nii.gz") -> Path:
    return _write(tmp_path / name, np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))


def test_read_image_roundtrip(tmp_path: Path) -> None:
    img = read_image(_valid(tmp_path))
    assert img.GetSize() == (6, 5, 4)
    assert sitk.GetArrayFromImage(img)[1, 2, 3] == 1 * 30 + 2 * 6 + 3


@pytest.mark.parametrize("name", ["img.nii.gz", "img.nii", "img.mha", "img.nrrd"])
def test_valid_files_pass_the_completeness_check(tmp_path: Path, name: str) -> None:
    arr = np.random.default_rng(1).normal(size=(5, 6, 7)).astype(np.float32)
    img = read_image(_write(tmp_path / name, arr))
    assert np.array_equal(sitk.GetArrayFromImage(img), arr)


def test_gzip_trailer_mismatch_falls_back_to_the_stream(tmp_path: Path) -> None:
    """A valid file with a second (empty) gzip member: trailer differs, stream is complete."""
    import gzip

    path = _write(tmp_path / "img.nii.gz", np.ones((3, 4, 5), dtype=np.int16))
    path.write_bytes(path.read_bytes() + gzip.compress(b""))
    assert read_image(path).GetSize() == (5, 4, 3)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not an image" * 10)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("corrupt", [_truncate, _garbage, _empty], ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", ["img.nii.gz", "img.nii", "img.mha", "img.png"])
def test_read_image_names_the_corrupt_file(tmp_path: Path, corrupt, name: str) -> None:
    path = tmp_path / name
    arr = np.random.default_rng(0).integers(0, 200, (64, 64), dtype=np.uint8)
    _write(path, arr if name.endswith("png") else np.stack([arr] * 4))
    corrupt(path)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert "cannot be decoded" in str(info.value)


def test_read_image_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="file does not exist"):
        read_image(tmp_path / "nope.nii.gz")
    with pytest.raises(ImageReadError, match="is not a file"):
        read_image(tmp_path)


# ---- geometry --------------------------------------------------------------------------------


def _img(size=(4, 4, 4), spacing=(1.0, 1.0, 3.0), origin=(0.0, 0.0, 0.0), direction=None):
    img = sitk.Image(list(size), sitk.sitkUInt8)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


def test_geometry_message_as_documented() -> None:
    with pytest.raises(GeometryMismatchError) as info:
        check_same_geometry(
            _img(spacing=(1.0, 1.0, 3.0)),
            _img(spacing=(0.98, 0.98, 3.27)),
            what="prediction CHUM-001",
        )
    assert str(info.value) == (
        "prediction CHUM-001: spacing (1.0, 1.0, 3.0) mm does not match reference "
        "(0.98, 0.98, 3.27) mm"
    )


FLIP_X = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
MISMATCHES = {
    "size": (dict(size=(4, 4, 5)), "size (4, 4, 5) voxels does not match"),
    "spacing": (dict(spacing=(1.0, 1.0, 2.5)), "spacing (1.0, 1.0, 2.5) mm"),
    "origin": (dict(origin=(0.0, 0.0, 0.01)), "origin (0.0, 0.0, 0.01) mm"),
    "direction": (dict(direction=FLIP_X), "direction (-1.0, 0.0"),
    "dimension": (dict(size=(4, 4), spacing=(1.0, 1.0), origin=(0.0, 0.0)), "2D image"),
}


@pytest.mark.parametrize("name", sorted(MISMATCHES))
def test_each_geometry_property_is_checked(name: str) -> None:
    kwargs, expected = MISMATCHES[name]
    with pytest.raises(GeometryMismatchError) as info:
        check_same_geometry(_img(**kwargs), _img(), what="label x.nii.gz", reference="CT y.nii.gz")
    assert str(info.value).startswith(f"label x.nii.gz: {name}" if name != "dimension" else "label")
    assert expected in str(info.value)
    assert "CT y.nii.gz" in str(info.value)


def test_geometry_tolerance() -> None:
    a, b = _img(origin=(0.0, 0.0, 0.0)), _img(origin=(0.0005, 0.0, 0.0))
    check_same_geometry(a, b, what="a")
    with pytest.raises(GeometryMismatchError):
        check_same_geometry(a, b, what="a", tolerance=1e-4)
    check_same_geometry(image_geometry(a), image_geometry(b), what="a")


def test_image_geometry_orders() -> None:
    img = sitk.GetImageFromArray(np.zeros((2, 3, 4), dtype=np.uint8))
    img.SetSpacing((0.5, 0.7, 3.0))
    geo = image_geometry(img)
    assert geo.size == (4, 3, 2) and geo.array_shape == (2, 3, 4)
    assert geo.array_spacing == (3.0, 0.7, 0.5)


# ---- label_array -----------------------------------------------------------------------------


def _label(arr: np.ndarray) -> sitk.Image:
    return sitk.GetImageFromArray(arr)


def test_label_array_integer_types_pass_through() -> None:
    arr = np.array([[0, 1], [2, 0]], dtype=np.int16)
    out = label_array(_label(arr), labels=[1, 2], what="label a")
    assert out.dtype == np.int16 and np.array_equal(out, arr)


def test_label_array_whole_floats_are_accepted() -> None:
    out = label_array(_label(np.array([[0.0, 2.0]], dtype=np.float32)), labels=[1, 2], what="l")
    assert out.dtype == np.uint8 and out.tolist() == [[0, 2]]


BAD_LABELS = {
    "outside_map": (
        np.array([[0, 3, 7]], dtype=np.uint8),
        "values [3, 7] are not in the label map {0, 1, 2}",
    ),
    "negative": (np.array([[0, -1]], dtype=np.int8), "values [-1] are not in the label map"),
    "gap_in_map": (np.array([[0, 2]], dtype=np.uint8), None),
    "nan": (np.array([[0.0, np.nan]], dtype=np.float32), "contains NaN"),
    "fraction": (np.array([[0.0, 0.5]], dtype=np.float64), "non-integer values, e.g. [0.5]"),
    "float_outside": (
        np.array([[0.0, 4.0]], dtype=np.float32),
        "values [4] are not in the label map",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_LABELS))
def test_label_array_rejects(name: str) -> None:
    arr, expected = BAD_LABELS[name]
    labels = [1, 3] if name == "gap_in_map" else [1, 2]
    if expected is None:  # 2 is not in {0, 1, 3}
        expected = "values [2] are not in the label map {0, 1, 3}"
    with pytest.raises(InvalidLabelError) as info:
        label_array(_label(arr), labels=labels, what="label /data/CHUM-001.nii.gz")
    assert str(info.value).startswith("label /data/CHUM-001.nii.gz: ")
    assert expected in str(info.value)


def test_label_array_rejects_vector_images() -> None:
    img = sitk.GetImageFromArray(np.zeros((3, 3, 3), dtype=np.uint8), isVector=True)
    with pytest.raises(InvalidLabelError, match="3 components per pixel"):
        label_array(img, labels=[1], what="l")


# ---- polygons --------------------------------------------------------------------------------


def test_rectangle_polygon_named_case() -> None:
    # A box polygon with integer corners covers columns x1..x2-1 and rows y1..y2-1.
    mask = rasterise_polygon([(2, 3), (10, 3), (10, 9), (2, 9)], height=16, width=12)
    expected = np.zeros((16, 12), dtype=bool)
    expected[3:9, 2:10] = True
    assert np.array_equal(mask, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_polygon_matches_point_in_polygon_oracle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    radii = rng.uniform(10, 20, 9)
    poly = np.stack([30 + radii * np.cos(angles), 28 + radii * np.sin(angles)], axis=1)
    mask = rasterise_polygon(poly.tolist(), height=60, width=64)
    yy, xx = np.mgrid[0:60, 0:64]
    # Pixel (row r, col c) covers [c, c+1) x [r, r+1); its centre is (c + 0.5, r + 0.5).
    centres = np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], axis=1)
    oracle = MplPath(poly).contains_points(centres).reshape(60, 64)
    iou = (mask & oracle).sum() / (mask | oracle).sum()
    assert iou > 0.95
    # Differences only at the boundary: every disagreeing pixel touches the other mask's border.
    assert (mask ^ oracle).sum() <= 2 * len(poly) + np.abs(np.diff(poly, axis=0)).sum()


def test_polygon_with_fewer_than_three_vertices_is_empty() -> None:
    assert not rasterise_polygon([(1, 1), (5, 5)], height=8, width=8).any()


# ---- open_dataset and cases ------------------------------------------------------------------


def test_missing_root_says_what_to_do(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        open_dataset("btcv", workspace=ws, data_root=tmp_path / "nowhere")
    assert "nowhere" in str(info.value) and "--data-root" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match=r"ccbench data phantoms --task hecktor"):
        open_dataset("hecktor-phantom", workspace=ws)


def test_empty_root_says_what_to_do(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"no cases found .* set `root:`"):
        open_dataset("autopet", workspace=ws, data_root=tmp_path / "empty")


def test_listing_reads_no_pixels(ws: Workspace, tmp_path: Path, monkeypatch, make) -> None:
    root = make.btcv(tmp_path / "btcv", n=3)

    def forbidden(*args, **kwargs):
        raise AssertionError("pixel data read while listing")

    monkeypatch.setattr(sitk, "ReadImage", forbidden)
    adapter = open_dataset("btcv", workspace=ws, data_root=root)
    cases = list(adapter.cases())
    assert [c.case_id for c in cases] == ["0001", "0002", "0003"]
    monkeypatch.undo()
    assert cases[0].read_label().GetSize() == (10, 8, 6)


def test_unknown_case_id(ws: Workspace, tmp_path: Path, make) -> None:
    adapter = open_dataset("btcv", workspace=ws, data_root=make.btcv(tmp_path / "b", n=2))
    with pytest.raises(DatasetNotFoundError, match=r"case '0009' is not in task 'btcv'"):
        adapter.case("0009")


def test_case_without_instances_or_label(tmp_path: Path) -> None:
    case = Case(case_id="c", channels={"CT": tmp_path / "ct.nii.gz"}, label=None)
    with pytest.raises(ImageReadError, match="has no label file"):
        case.read_label()
    with pytest.raises(ImageReadError, match="has no instance annotations"):
        case.read_instances()
    with pytest.raises(ImageReadError, match="no channel 'PET'"):
        case.read_channel("PET")
