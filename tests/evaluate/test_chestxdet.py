"""ChestXDet predictions: COCO results JSON (RLE) and ChestXDet-style polygons; COCO AP per run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pycocotools import mask as mask_utils

from evaluator.errors import InvalidPredictionError
from evaluator.evaluate import evaluate_run
from evaluator.store import Store
from evaluator.workspace import Workspace

SIZE = 64
# image -> [(class name, polygon)]; Effusion = 6, Nodule = 11, Mass = 10
GT = {
    "100": [("Effusion", [[4, 4], [30, 4], [30, 20], [4, 20]]), ("Nodule", [[40, 40], [50, 40], [50, 50], [40, 50]])],
    "200": [("Effusion", [[10, 30], [40, 30], [40, 60], [10, 60]]), ("Mass", [[44, 4], [60, 4], [60, 20], [44, 20]])],
}  # fmt: skip


@pytest.fixture
def chest(tmp_path: Path) -> Path:
    root = tmp_path / "chestxdet"
    (root / "test").mkdir(parents=True)
    entries = []
    for name, instances in GT.items():
        img = sitk.GetImageFromArray(np.zeros((SIZE, SIZE), dtype=np.uint8))
        sitk.WriteImage(img, str(root / "test" / f"{name}.png"))
        entries.append(
            {
                "file_name": f"{name}.png",
                "syms": [c for c, _ in instances],
                "boxes": [
                    [
                        min(p[0] for p in poly),
                        min(p[1] for p in poly),
                        max(p[0] for p in poly),
                        max(p[1] for p in poly),
                    ]
                    for _, poly in instances
                ],
                "polygons": [poly for _, poly in instances],
            }
        )
    (root / "ChestX_Det_test.json").write_text(json.dumps(entries))
    return root


def _polygon_mask(poly: list[list[int]]) -> np.ndarray:
    rle = mask_utils.frPyObjects([[float(c) for xy in poly for c in xy]], SIZE, SIZE)
    return np.asarray(mask_utils.decode(mask_utils.merge(rle)), dtype=bool)


def _coco_results(drop: set[tuple[str, str]]) -> list[dict]:
    ids = {"Effusion": 6, "Nodule": 11, "Mass": 10}
    out = []
    for name, instances in GT.items():
        for cls, poly in instances:
            if (name, cls) in drop:
                continue
            rle = mask_utils.encode(np.asfortranarray(_polygon_mask(poly).astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            out.append(
                {"image_id": name, "category_id": ids[cls], "segmentation": rle, "score": 0.9}
            )
    return out


def _run(root: Path, pred: Path, ws: Workspace, name: str):
    return evaluate_run(
        "chestxdet", "all", pred, workspace=ws, data_root=root, workers=1, run_name=name
    )


def test_coco_results_json(chest: Path, tmp_path: Path, workspace: Workspace) -> None:
    pred = tmp_path / "coco.json"
    pred.write_text(json.dumps(_coco_results(drop={("200", "Mass")})))
    result = _run(chest, pred, workspace, "coco")
    agg = result.summary["aggregates"]
    # hand-computed: Effusion and Nodule found exactly (AP 1), Mass missed (AP 0), other
    # classes have neither ground truth nor predictions (NaN, left out of the mean)
    assert agg["6:Effusion:coco_ap"] == pytest.approx(1.0)
    assert agg["11:Nodule:coco_ap"] == pytest.approx(1.0)
    assert agg["10:Mass:coco_ap50"] == 0.0
    assert agg["0:mean:coco_ap"] == pytest.approx(2 / 3)
    assert math.isnan(agg["1:Atelectasis:coco_ap"])
    frame = Store.open(result.store_url).results_frame(run_ids=[result.run.id])
    dice = {(r.case_id, r.label): r.value for r in frame[frame["metric"] == "dice"].itertuples()}
    assert dice[("100", 6)] == 1.0 and dice[("100", 11)] == 1.0
    assert dice[("200", 10)] == 0.0 and dice[("200", 6)] == 1.0
    assert dice[("100", 1)] == 1.0  # absent from both: the both-empty convention


def test_chestxdet_polygons_json(chest: Path, tmp_path: Path, workspace: Workspace) -> None:
    pred = tmp_path / "polys"
    pred.mkdir()
    entries = [
        {
            "file_name": f"{name}.png",
            "syms": [c for c, _ in inst],
            "polygons": [p for _, p in inst],
            "scores": [0.8] * len(inst),
        }
        for name, inst in GT.items()
    ]
    (pred / "predictions.json").write_text(json.dumps(entries))
    result = _run(chest, pred, workspace, "polys")
    assert result.summary["aggregates"]["0:mean:coco_ap"] == pytest.approx(1.0)
    assert result.summary["means"]["6:Effusion"]["dice"]["mean"] == 1.0
    assert sum(result.summary["error_counts"].values()) == 0


def test_missing_and_unreadable_json(chest: Path, tmp_path: Path, workspace: Workspace) -> None:
    # a wrong --pred is an error of the command, not an entry scored as all-missing
    with pytest.raises(InvalidPredictionError, match="no prediction for any of the 2 cases"):
        _run(chest, tmp_path / "nothing.json", workspace, "missing")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    broken = _run(chest, bad, workspace, "broken")
    assert broken.summary["error_counts"]["undecodable"] == 2
    assert broken.summary["means"]["6:Effusion"]["dice"]["mean"] == 0.0


def test_unknown_category_is_a_label_error(
    chest: Path, tmp_path: Path, workspace: Workspace
) -> None:
    items = _coco_results(drop=set())
    items[0]["category_id"] = 42
    pred = tmp_path / "coco.json"
    pred.write_text(json.dumps(items))
    result = _run(chest, pred, workspace, "badcat")
    assert result.summary["error_cases"]["label"] == ["100"]


def test_a_link_to_the_annotations_scores_nothing(
    chest: Path, tmp_path: Path, workspace: Workspace
) -> None:
    """A predictions "file" that is a link to the reference annotations is refused."""
    pred = tmp_path / "linked"
    pred.mkdir()
    (pred / "predictions.json").symlink_to(chest / "ChestX_Det_test.json")
    result = _run(chest, pred, workspace, "linked")
    assert result.summary["error_counts"]["undecodable"] == 2
    assert result.summary["means"]["6:Effusion"]["dice"]["mean"] == 0.0
    assert result.summary["aggregates"]["0:mean:coco_ap"] in (0.0, None) or math.isnan(
        result.summary["aggregates"]["0:mean:coco_ap"]
    )


def test_malformed_items_are_errors_of_their_case_only(
    chest: Path, tmp_path: Path, workspace: Workspace
) -> None:
    items = _coco_results(drop=set())
    bad = next(i for i in items if str(i["image_id"]) == "100")
    bad["category_id"] = "abc"
    pred = tmp_path / "coco.json"
    pred.write_text(json.dumps(items))
    result = _run(chest, pred, workspace, "malformed")
    assert result.summary["error_cases"]["undecodable"] == ["100"]
    assert result.summary["means"]["6:Effusion"]["dice"]["n"] == 2  # 200 is scored
    deep = tmp_path / "deep.json"  # would overflow the parser's recursion: named, no traceback
    deep.write_text("[" * 200_000 + "]" * 200_000)
    nested = _run(chest, deep, workspace, "deep")
    assert nested.summary["error_counts"]["undecodable"] == 2
