"""What a run adds up to: run-level aggregates, the per-case table and ``summary.json``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluator.datasets.registry import MetricProfile
from evaluator.evaluate.plan import ERROR_CLASSES
from evaluator.scoring import AGG_INTERSECTION, AGG_VOLUME, CaseJob, ScoringPlan
from evaluator.store import ResultRow, RunInfo, Store

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["coco_aggregates", "jsonable", "run_aggregates", "summarize_run"]

_CONVENTIONS = {
    "worst": "Rejected predictions (missing, undecodable, geometry, nan, label, container, format, "
    "unsafe, scoring_limit) are scored with the worst value of every metric (distances: inf; CC "
    "distances: cc_worst_distance_mm).",
    "empty": "Empty predictions are scored by the metrics' edge-case rules (EDGE_CASES); an empty "
    "prediction of an empty reference is correct and no error.",
    "dataset": "Cases whose reference is broken (dataset errors) have no values and are left out "
    "for every entry.",
    "negative": "Negative cases (empty reference) are scored with {metrics} only; every other "
    "metric is NaN and left out of the means (autoPET III/IV convention).",
    "resample": "A prediction with the reference spacing but another extent is resampled onto "
    "the reference grid (nearest neighbour); another spacing is rejected (HECKTOR 2022).",
    "aggregated_dice": "aggregated_dice: 2 * sum |P ∩ R| / sum (|P| + |R|) over all cases per "
    "label; label 0 holds the mean over labels (HECKTOR 2022 final score).",
    "means": "Means ignore NaN; n counts the cases with a value. Label 0 rows: mean over labels.",
}


def run_aggregates(db: Store, run_id: int, plan: ScoringPlan) -> list[ResultRow]:
    rows: list[ResultRow] = []
    if plan.aggregated_dice:
        frame = db.results_frame(run_ids=[run_id])
        sums = frame[frame["metric"].isin([AGG_INTERSECTION, AGG_VOLUME])].pivot_table(
            index="label", columns="metric", values="value", aggfunc="sum"
        )
        per_label = []
        for label in plan.labels:
            if label in sums.index and sums.loc[label, AGG_VOLUME] > 0:
                value = 2.0 * sums.loc[label, AGG_INTERSECTION] / sums.loc[label, AGG_VOLUME]
            else:
                value = math.nan
            rows.append(ResultRow(label, "aggregated_dice", float(value)))
            per_label.append(value)
        valid = [v for v in per_label if not math.isnan(v)]
        rows.append(ResultRow(0, "aggregated_dice", float(np.mean(valid)) if valid else math.nan))
    return rows


def coco_aggregates(
    plan: ScoringPlan, jobs: Sequence[CaseJob], rejected: set[str]
) -> list[ResultRow]:
    """COCO mask AP over the whole split (pycocotools); rejected cases have no detections."""
    from evaluator.metrics.coco import Instance, coco_mask_ap

    gt: dict[str, list[Instance]] = {}
    preds: dict[str, list[Instance]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    for job in jobs:
        cid = job.case.case_id
        truth = job.case.read_instances()
        gt[cid] = [Instance(t.class_id, mask=t.mask) for t in truth]
        shape = job.case.read_label().GetSize()
        sizes[cid] = (int(shape[1]), int(shape[0]))
        if cid in rejected or job.instances is None:
            continue
        preds[cid] = [
            Instance(c, polygon=seg["polygon"], score=score)
            if "polygon" in seg
            else Instance(c, mask=_decode_rle(seg), score=score)
            for c, score, seg in job.instances
            if not plan.not_predicted(c)  # ignored, as in scoring
        ]
    result = coco_mask_ap(gt, preds, categories=dict(plan.labels), image_sizes=sizes)
    means = {"coco_ap": result.ap, "coco_ap50": result.ap50, "coco_ap75": result.ap75}
    rows = [ResultRow(0, m, float(means[m])) for m in plan.instance_metrics]
    for label, values in result.per_class.items():
        rows += [
            ResultRow(
                int(label), m, math.nan if plan.not_predicted(int(label)) else float(values[m])
            )
            for m in plan.instance_metrics
        ]
    return rows


def _decode_rle(rle: Mapping[str, Any]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return np.asarray(mask_utils.decode(dict(rle)), dtype=bool)


def summarize_run(
    db: Store,
    run: RunInfo,
    plan: ScoringPlan,
    profile: MetricProfile,
    *,
    case_ids: Sequence[str],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The summary (means, aggregates, error counts, conventions) and the per-case table.

    Returns
    -------
    (dict, pandas.DataFrame)
        ``summary.json`` content, and the ``results.csv`` table: one row per case and label
        with columns ``case_id, label, label_name, error_class`` and one per metric.
    """
    import pandas as pd

    long = db.results_frame(run_ids=[run.id])
    long = long[long["metric"].isin(plan.metrics)]
    errors = db.errors_frame(run_ids=[run.id])
    error_of = dict(zip(errors["case_id"], errors["error_class"], strict=True))
    if long.empty:
        table = pd.DataFrame(
            columns=["case_id", "label", "label_name", "error_class", *plan.metrics]
        )
    else:
        table = long.pivot_table(
            index=["case_id", "label"], columns="metric", values="value", dropna=False
        ).reset_index()
        table.columns.name = None
        table = table.reindex(columns=["case_id", "label", *plan.metrics])
        table.insert(2, "label_name", table["label"].map(dict(plan.labels)))
        table.insert(3, "error_class", table["case_id"].map(lambda c: error_of.get(c, "")))
    means: dict[str, dict[str, dict[str, float]]] = {}
    for label, name in plan.labels.items():
        rows = table[table["label"] == label]
        means[f"{label}:{name}"] = {m: _stats(rows[m]) for m in plan.metrics}
    over_labels = {
        m: float(np.mean([means[k][m]["mean"] for k in means])) if means else math.nan
        for m in plan.metrics
    }
    counts = {cls: 0 for cls in ERROR_CLASSES}
    for cls in errors["error_class"]:
        counts[cls] = counts.get(cls, 0) + 1
    aggregates = db.aggregates_frame(run_ids=[run.id])
    conventions = [
        _CONVENTIONS["worst"],
        _CONVENTIONS["empty"],
        _CONVENTIONS["dataset"],
        _CONVENTIONS["means"],
    ]
    if profile.negative_case_metrics is not None:
        conventions.append(
            _CONVENTIONS["negative"].format(metrics=", ".join(profile.negative_case_metrics))
        )
    if profile.resample_extent:
        conventions.append(_CONVENTIONS["resample"])
    if "aggregated_dice" in profile.aggregates:
        conventions.append(_CONVENTIONS["aggregated_dice"])
    summary: dict[str, Any] = {
        "task": run.task,
        "split": run.split,
        "run": run.name,
        "run_id": run.id,
        "entry": run.entry,
        "status": run.status,
        "store": db.url,
        "dataset_fingerprint": run.dataset_fingerprint,
        "ccbench_version": run.ccbench_version,
        "cases": len(case_ids),
        "completed": len(db.completed_cases(run.id)),
        "error_counts": counts,
        "error_cases": {
            cls: sorted(errors.loc[errors["error_class"] == cls, "case_id"]) for cls in counts
        },
        "means": means,
        "mean_over_labels": over_labels,
        "aggregates": {
            f"{int(r.label)}:{plan.labels.get(int(r.label), 'mean')}:{r.metric}": float(r.value)
            for r in aggregates.itertuples()
        },
        "conventions": conventions,
    }
    return summary, table


def _stats(values: pd.Series) -> dict[str, float]:
    arr = values.to_numpy(dtype=float)
    valid = arr[~np.isnan(arr)]
    if valid.size == 0:
        return {"mean": math.nan, "median": math.nan, "n": 0}
    return {"mean": float(valid.mean()), "median": float(np.median(valid)), "n": int(valid.size)}


def jsonable(value: Any) -> Any:
    """NaN -> null and ±inf -> "inf"/"-inf", so summary.json is strict JSON."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value
