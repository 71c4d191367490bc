"""score_files and `ccbench metrics PRED REF` on files written here, including bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import GeometryMismatchError, ImageReadError, InvalidLabelError
from evaluator.metrics.api import compute_metrics
from evaluator.metrics.files import score_files
from evaluator.metrics.registry import VOXEL_METRICS

runner = CliRunner()

SPACING_XYZ = (0.8, 0.6, 2.5)  # SimpleITK order; array order is (2.5, 0.6, 0.8)


def _write(
    path: Path, array: np.ndarray, spacing: tuple[float, ...] | None = SPACING_XYZ, **geo: Any
) -> Path:
    img = sitk.GetImageFromArray(array)
    if spacing is not None:
        img.SetSpacing(spacing)
    if "origin" in geo:
        img.SetOrigin(geo["origin"])
    if "direction" in geo:
        img.SetDirection(geo["direction"])
    sitk.WriteImage(img, str(path))
    return path


def _ref_array() -> np.ndarray:
    ref = np.zeros((8, 12, 14), np.uint8)
    ref[2:5, 2:6, 2:6] = 1
    ref[5:7, 8:11, 9:12] = 1
    ref[1:3, 8:10, 1:4] = 2
    return ref


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    ref = _ref_array()
    pred = np.roll(ref, 1, axis=0)  # shifted by one voxel along z (2.5 mm)
    return _write(tmp_path / "pred.nii.gz", pred), _write(tmp_path / "ref.nii.gz", ref)


def test_score_files_uses_array_order_spacing(pair: tuple[Path, Path]) -> None:
    res = score_files(*pair, metrics=["hd", "dice"])
    assert res.values[1]["hd"] == pytest.approx(2.5)
    ref = _ref_array()
    direct = compute_metrics(
        np.roll(ref, 1, axis=0), ref, spacing=(2.5, 0.6, 0.8), metrics=["hd", "dice"]
    )
    assert res.values == direct.values


def test_cli_json_default_metric_set(pair: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["metrics", str(pair[0]), str(pair[1]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(data["values"]) == ["1", "2"]
    assert list(data["values"]["1"]) == list(VOXEL_METRICS)
    assert "per_component" not in data
    assert data["values"]["2"]["hd95"] == pytest.approx(2.5)


def test_cli_table_and_per_component(pair: tuple[Path, Path]) -> None:
    args = ["metrics", str(pair[0]), str(pair[1]), "-m", "dice,cc_dice,hd95", "--labels", "1"]
    result = runner.invoke(app, [*args, "--per-component"])
    assert result.exit_code == 0, result.output
    assert "cc_dice" in result.stdout and "label 1" in result.stdout
    assert result.stdout.count("cc_dice") == 2  # the summary and the per-component table
    assert "label 2" not in result.stdout
    result = runner.invoke(app, [*args, "--per-component", "--json"])
    data = json.loads(result.stdout)
    assert list(data["values"]["1"]) == ["dice", "cc_dice", "hd95"]
    comps = data["per_component"]["1"]["cc_dice"]
    assert len(comps) == 2 and np.mean(comps) == pytest.approx(data["values"]["1"]["cc_dice"])


def test_components_with_volume_centre_and_detection(tmp_path: Path) -> None:
    """Hand-computed: volumes from the voxel size, centres through origin and direction."""
    ref = np.zeros((20, 30, 40), np.uint8)
    ref[2:6, 3:8, 4:9] = 1  # 4 x 5 x 5 = 100 voxels, centre index (z, y, x) = (3.5, 5, 6)
    ref[12:15, 20:25, 30:35] = 1  # 3 x 5 x 5 = 75 voxels, missed below
    pred = np.zeros_like(ref)
    pred[2:6, 3:8, 4:8] = 1
    paths = []
    for name, arr in (("p", pred), ("r", ref)):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing((2.0, 1.0, 3.0))  # x, y, z: 6 mm3 per voxel
        img.SetOrigin((-100.0, 50.0, 10.0))
        img.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))  # x axis flipped
        paths.append(tmp_path / f"{name}.nii.gz")
        sitk.WriteImage(img, str(paths[-1]))
    result = score_files(*paths, metrics=["cc_dice", "cc_hd95"])
    first, second = result.components[1]
    assert (first.voxels, second.voxels) == (100, 75)
    assert first.volume_ml == pytest.approx(0.6) and second.volume_ml == pytest.approx(0.45)
    assert first.centre_index == pytest.approx((3.5, 5.0, 6.0))
    assert first.centre_mm == pytest.approx((-100.0 - 6 * 2.0, 50.0 + 5.0, 10.0 + 3.5 * 3.0))
    assert second.centre_mm == pytest.approx((-100.0 - 32 * 2.0, 50.0 + 22.0, 10.0 + 13 * 3.0))
    assert (first.detected, second.detected) == (True, False)
    assert result.per_component[1]["cc_hd95"][1] == 50.0
    out = runner.invoke(app, ["metrics", *map(str, paths), "-m", "cc_dice", "--per-component"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "volume (ml)" in text and "-112.0, 55.0, 20.5" in text and "0.45" in text
    assert "a missed one scores each CC-Metric's worst value" in text and "50 mm" in text
    data = json.loads(
        runner.invoke(
            app, ["metrics", *map(str, paths), "-m", "cc_dice", "--per-component", "--json"]
        ).stdout
    )
    assert data["components"]["1"][1] == {
        "voxels": 75,
        "volume_ml": pytest.approx(0.45),
        "centre_voxel_xyz": [32.0, 22.0, 13.0],
        "centre_mm_xyz": pytest.approx([-164.0, 72.0, 49.0]),
        "detected": False,
    }
    # no reference component (label 2 only in the prediction): no invented component row
    empty = tmp_path / "e.nii.gz"
    img = sitk.ReadImage(str(paths[1]))
    sitk.WriteImage(img * 0, str(empty))
    none = runner.invoke(
        app, ["metrics", str(paths[0]), str(empty), "-m", "cc_dice", "--per-component"]
    )
    assert "no reference component" in " ".join(none.stdout.split())
    plain = json.loads(
        runner.invoke(app, ["metrics", *map(str, paths), "-m", "cc_dice", "--json"]).stdout
    )
    assert "components" not in plain and "per_component" not in plain


def test_cli_options_reach_the_library(pair: tuple[Path, Path]) -> None:
    base = ["metrics", str(pair[0]), str(pair[1]), "-m", "nsd,cc_hd", "--json", "--labels", "2"]
    tight = json.loads(runner.invoke(app, [*base, "--nsd-tolerance-mm", "0.1"]).stdout)
    loose = json.loads(runner.invoke(app, [*base, "--nsd-tolerance-mm", "3"]).stdout)
    assert tight["values"]["2"]["nsd"] < 1.0 == loose["values"]["2"]["nsd"]
    voxel = json.loads(runner.invoke(app, [*base, "--mode", "voxel"]).stdout)
    assert voxel["values"]["2"]["cc_hd"] == pytest.approx(1.0)  # one voxel along z
    assert tight["values"]["2"]["cc_hd"] == pytest.approx(2.5)


def test_png_and_mha(tmp_path: Path) -> None:
    ref = np.zeros((20, 30), np.uint8)
    ref[5:10, 5:15] = 1
    pred = np.zeros_like(ref)
    pred[5:10, 10:20] = 1
    png = score_files(
        _write(tmp_path / "p.png", pred, None),
        _write(tmp_path / "r.png", ref, None),
        metrics=["dice"],
    )
    assert png.values == {1: {"dice": 0.5}}
    mha = score_files(
        _write(tmp_path / "p.mha", pred, (0.5, 2.0)),
        _write(tmp_path / "r.mha", ref, (0.5, 2.0)),
        metrics=["hd"],
    )
    assert mha.values[1]["hd"] == pytest.approx(5 * 0.5)


# ---------------------------------------------------------------------------------------------
# bad input: each class gets a named error in the library and one red line + exit 1 in the CLI
# ---------------------------------------------------------------------------------------------


def _bad_cases(tmp_path: Path) -> dict[str, tuple[Path, type[Exception], str]]:
    ref = _ref_array()
    f32 = ref.astype(np.float32)
    nan = f32.copy()
    nan[0, 0, 0] = np.nan
    frac = f32.copy()
    frac[0, 0, 0] = 0.5
    neg = ref.astype(np.int16)
    neg[0, 0, 0] = -1
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08not really gzip")
    rgb = sitk.Image([14, 12, 8], sitk.sitkVectorUInt8, 3)
    rgb.SetSpacing(SPACING_XYZ)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.nii.gz"))
    d = tmp_path
    return {
        "missing": (d / "nope.nii.gz", ImageReadError, "does not exist"),
        "corrupt": (corrupt, ImageReadError, "cannot be decoded"),
        "size": (_write(d / "size.nii.gz", ref[:, :, :10]), GeometryMismatchError, "size"),
        "spacing": (
            _write(d / "spacing.nii.gz", ref, (0.8, 0.6, 3.0)),
            GeometryMismatchError,
            "spacing",
        ),
        "origin": (
            _write(d / "origin.nii.gz", ref, origin=(0.0, 5.0, 0.0)),
            GeometryMismatchError,
            "origin",
        ),
        "direction": (
            _write(d / "dir.nii.gz", ref, direction=(0, 1, 0, 1, 0, 0, 0, 0, 1)),
            GeometryMismatchError,
            "direction",
        ),
        # MHA: the NIfTI writer would store NaN as 0
        "nan": (_write(d / "nan.mha", nan), InvalidLabelError, "NaN"),
        "fraction": (_write(d / "frac.nii.gz", frac), InvalidLabelError, "non-integer"),
        "negative": (_write(d / "neg.nii.gz", neg), InvalidLabelError, r"\[-1\]"),
        "vector": (d / "rgb.nii.gz", InvalidLabelError, "components per pixel"),
    }


BAD = ["missing", "corrupt", "size", "spacing", "origin", "direction", "nan", "fraction",
       "negative", "vector"]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_prediction(tmp_path: Path, pair: tuple[Path, Path], case: str) -> None:
    path, error, match = _bad_cases(tmp_path)[case]
    with pytest.raises(error, match=match):
        score_files(path, pair[1], metrics=["dice"])
    result = runner.invoke(app, ["metrics", str(path), str(pair[1]), "-m", "dice"])
    assert result.exit_code == 1
    assert "error:" in result.stderr and str(path.name) in result.stderr
    assert "Traceback" not in result.output


def test_cli_unknown_metric_and_bad_mode(pair: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["metrics", str(pair[0]), str(pair[1]), "-m", "dice,hd96"])
    assert result.exit_code == 1 and "unknown metric 'hd96'" in result.stderr
    result = runner.invoke(app, ["metrics", str(pair[0]), str(pair[1]), "--mode", "inch"])
    assert result.exit_code == 2  # typer's usage error: the choices come from `CCMode`
    assert "'inch' is not one of 'mm', 'voxel'" in " ".join(result.stderr.replace("│", " ").split())


def test_large_label_value_is_rejected(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    big = _ref_array().astype(np.float32)
    big[0, 0, 0] = 1e9
    with pytest.raises(InvalidLabelError, match="exceeds"):
        score_files(_write(tmp_path / "big.nii.gz", big), pair[1], metrics=["dice"])


def test_inf_is_written_as_json_infinity(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    empty = _write(tmp_path / "empty.nii.gz", np.zeros_like(_ref_array()))
    result = runner.invoke(app, ["metrics", str(empty), str(pair[1]), "-m", "hd", "--json"])
    assert json.loads(result.stdout)["values"]["1"]["hd"] == math.inf


def test_cli_bad_labels_option(pair: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["metrics", str(pair[0]), str(pair[1]), "--labels", "1,a"])
    assert result.exit_code == 2
    assert "comma-separated list of integers" in result.output
    assert "Traceback" not in result.output
