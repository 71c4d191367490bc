"""nnU-Net's ``summary.json`` (``ccbench evaluate --format nnunet``).

The layout and numbers of nnU-Net v2's ``nnUNetv2_evaluate_folder`` /
``compute_metrics_on_folder``: for each case and each label or region, the voxel counts ``TP``,
``FP``, ``FN``, ``TN``, ``n_pred`` (= TP + FP), ``n_ref`` (= TP + FN), ``Dice`` = 2 TP / (2 TP + FP
+ FN) and ``IoU`` = TP / (TP + FP + FN), both NaN when TP + FP + FN = 0 (label absent from both);
``mean``: per label or region, the mean over cases of each of those numbers ignoring NaN;
``foreground_mean``: the mean over labels and regions of those means (a NaN mean stays NaN).
Keys are ``str(label)`` (``"1"``) or ``str(region)`` (``"(1, 2)"``); the file is written with
sorted keys and an indent of 4, NaN as ``NaN``, as nnU-Net writes it.

A region is a union of labels (nnU-Net's region-based training; e.g. HECKTOR's GTVp ∪ GTVn),
declared in a task's metric profile as ``regions: {name: [labels]}`` in datasets.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "LabelOrRegion",
    "case_metrics",
    "summarize",
    "summary_key",
    "write_summary",
]

#: A label value, or a region: a tuple of label values.
LabelOrRegion = int | tuple[int, ...]
_METRICS = ("Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref")


def summary_key(label_or_region: LabelOrRegion) -> str:
    """The JSON key nnU-Net writes for a label or region.

    Examples
    --------
    >>> summary_key(1), summary_key((1, 2))
    ('1', '(1, 2)')
    """
    return str(label_or_region)


def _mask(seg: npt.NDArray[Any], label_or_region: LabelOrRegion) -> npt.NDArray[np.bool_]:
    if isinstance(label_or_region, tuple):
        return np.isin(seg, label_or_region)
    return np.asarray(seg == label_or_region)


def case_metrics(
    reference: npt.ArrayLike,
    prediction: npt.ArrayLike,
    labels_or_regions: Sequence[LabelOrRegion],
    *,
    ignore_label: int | None = None,
) -> dict[LabelOrRegion, dict[str, float | int]]:
    """nnU-Net's per-case numbers of each label or region (see the module docstring).

    Voxels where the reference is ``ignore_label`` are left out of every count.

    Examples
    --------
    >>> ref = np.array([0, 1, 1, 2, 2, 0])
    >>> pred = np.array([0, 1, 2, 2, 0, 1])
    >>> m = case_metrics(ref, pred, [1, (1, 2)])
    >>> m[1]["Dice"], m[1]["TP"], m[1]["FP"], m[1]["FN"], m[1]["TN"]
    (0.5, 1, 1, 1, 3)
    >>> round(m[(1, 2)]["Dice"], 4), m[(1, 2)]["n_ref"], m[(1, 2)]["n_pred"]
    (0.75, 4, 4)
    >>> case_metrics([0, 0], [0, 0], [1])[1]["Dice"]
    nan
    """
    ref, pred = np.asarray(reference), np.asarray(prediction)
    use = np.ones(ref.shape, bool) if ignore_label is None else ref != ignore_label
    out: dict[LabelOrRegion, dict[str, float | int]] = {}
    for item in labels_or_regions:
        r, p = _mask(ref, item), _mask(pred, item)
        tp = int(np.count_nonzero(r & p & use))
        fp = int(np.count_nonzero(~r & p & use))
        fn = int(np.count_nonzero(r & ~p & use))
        tn = int(np.count_nonzero(~r & ~p & use))
        empty = tp + fp + fn == 0
        out[item] = {
            "Dice": float("nan") if empty else 2 * tp / (2 * tp + fp + fn),
            "IoU": float("nan") if empty else tp / (tp + fp + fn),
            "FP": fp,
            "TP": tp,
            "FN": fn,
            "TN": tn,
            "n_pred": fp + tp,
            "n_ref": fn + tp,
        }
    return out


def summarize(
    cases: Sequence[tuple[str, str, Mapping[LabelOrRegion, Mapping[str, float | int]]]],
    labels_or_regions: Sequence[LabelOrRegion],
) -> dict[str, Any]:
    """The summary of ``(reference file, prediction file, case_metrics(...))`` per case.

    Examples
    --------
    >>> one = case_metrics([0, 1], [0, 1], [1])
    >>> two = case_metrics([0, 1], [1, 0], [1])
    >>> s = summarize([("r1", "p1", one), ("r2", "p2", two)], [1])
    >>> s["mean"]["1"]["Dice"], s["foreground_mean"]["Dice"], s["metric_per_case"][1]["metrics"]["1"]["FP"]
    (0.5, 0.5, 1)
    """
    import warnings

    per_case: list[dict[str, Any]] = [
        {
            "metrics": {summary_key(k): dict(v) for k, v in metrics.items()},
            "prediction_file": pred,
            "reference_file": ref,
        }
        for ref, pred, metrics in cases
    ]
    means: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():  # a label absent from every case: NaN, as nnU-Net
        warnings.simplefilter("ignore", RuntimeWarning)
        for item in labels_or_regions:
            key = summary_key(item)
            means[key] = {
                m: float(np.nanmean([float(c["metrics"][key][m]) for c in per_case]))
                for m in _METRICS
            }
        foreground = {m: float(np.mean([means[k][m] for k in means if k != "0"])) for m in _METRICS}
    return {"foreground_mean": foreground, "mean": means, "metric_per_case": per_case}


def write_summary(summary: Mapping[str, Any], path: Path) -> Path:
    """Write ``summary`` as nnU-Net does (sorted keys, indent 4, NaN as ``NaN``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        json.dump(summary, fh, sort_keys=True, indent=4)
    return path
