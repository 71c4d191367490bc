"""The metric registry: complete, self-consistent, and printed verbatim in docs/metrics.md."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from evaluator.metrics.registry import (
    EDGE_CASES,
    METRICS,
    OPT_IN_KINDS,
    VOXEL_METRICS,
    conventions_markdown,
    edge_value,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"

#: Every metric name the metrics issue asks for.
REQUIRED = {
    *("dice", "iou", "hd", "hd95", "assd", "nsd", "boundary_iou"),
    *("cldice", "topology_precision", "topology_sensitivity"),
    *("lesion_tp", "lesion_fp", "lesion_fn", "lesion_precision", "lesion_recall", "lesion_f1"),
    *("pq", "sq", "rq", "lesion_dice", "fp_volume_ml", "fn_volume_ml"),
    *("cc_dice", "cc_iou", "cc_nsd", "cc_hd", "cc_hd95", "cc_assd", "cc_boundary_iou"),
    *("coco_ap", "coco_ap50", "coco_ap75"),
}


def test_every_required_metric_has_a_spec_and_an_edge_row() -> None:
    assert REQUIRED == set(METRICS) == set(EDGE_CASES)
    assert all(spec.name == name for name, spec in METRICS.items())
    # the CLI default: every voxel metric but the opt-in (slow) topology family
    assert OPT_IN_KINDS == ("topology",)
    opt_in = {"cldice", "topology_precision", "topology_sensitivity"}
    assert set(VOXEL_METRICS) == {n for n in METRICS if not n.startswith("coco_")} - opt_in


@pytest.mark.parametrize("name", list(METRICS))
def test_spec_is_consistent(name: str) -> None:
    spec = METRICS[name]
    assert spec.kind in ("overlap", "surface", "topology", "lesion", "cc", "instance")
    assert spec.unit in ("", "mm", "ml", "count")
    # CC-Metrics depend on the spacing through the millimetre Voronoi regions
    spacing_free = {"dice", "iou", "lesion_tp", "lesion_fp", "lesion_fn", "lesion_precision",
                    "lesion_recall", "lesion_f1", "pq", "sq", "rq", "lesion_dice", "cldice",
                    "topology_precision", "topology_sensitivity"}  # fmt: skip
    assert spec.needs_spacing == (spec.kind != "instance" and name not in spacing_free)
    if not (math.isnan(spec.best) or math.isnan(spec.worst)):
        assert (spec.best > spec.worst) == spec.higher_is_better
    if spec.unit == "":
        assert (spec.best, spec.worst) == (1.0, 0.0)


@pytest.mark.parametrize("name", list(METRICS))
def test_edge_values_are_best_or_worst(name: str) -> None:
    """Both empty is a perfect result; exactly one empty is the worst (or the formula).

    Volumes are the exception: an empty prediction has no false-positive volume (0 ml), an
    empty reference no false-negative volume."""
    spec, row = METRICS[name], EDGE_CASES[name]
    if spec.kind == "instance" or spec.unit == "ml":
        return
    if row.both_empty is not None:
        assert row.both_empty == spec.best or (spec.unit in ("mm", "ml") and row.both_empty == 0)
    for value in (row.ref_empty, row.pred_empty):
        if value is not None:
            assert value == spec.worst


def test_edge_value_lookup() -> None:
    assert edge_value("nsd", True, True) == 1.0
    assert edge_value("nsd", False, True) == 0.0
    assert edge_value("hd", True, False) == math.inf
    assert edge_value("fp_volume_ml", False, True) is None
    assert edge_value("dice", False, False) is None


def test_doc_holds_the_generated_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert conventions_markdown() in text
    # one row per metric, pipes inside definitions escaped
    table = conventions_markdown().splitlines()
    assert len(table) == 2 + len(METRICS)
    assert all(len(re.split(r"(?<!\\)\|", line)) == 10 for line in table)


@pytest.mark.parametrize("name", ["coco_ap", "coco_ap50", "coco_ap75"])
def test_coco_edge_cases_follow_registry(name: str) -> None:
    """Per class: no instances at all / predictions only / ground truth only."""
    import numpy as np

    from evaluator.metrics.coco import Instance, coco_mask_ap

    mask = np.zeros((8, 8), bool)
    mask[2:6, 2:6] = True
    obj = [Instance(1, mask=mask, score=0.9)]
    row = EDGE_CASES[name]
    none: list[Instance] = []
    cases = [({"a": none}, {}, row.both_empty), ({"a": none}, {"a": obj}, row.ref_empty),
             ({"a": obj}, {}, row.pred_empty)]  # fmt: skip
    for gt, pred, table in cases:
        got = coco_mask_ap(gt, pred, categories=[1], image_sizes=(8, 8)).per_class[1][name]
        assert table is not None
        assert (math.isnan(got) and math.isnan(table)) or got == table, (gt, pred, got)
