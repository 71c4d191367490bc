"""The scoring plan of a task, its error classes and the worst values of the leaderboard."""

from __future__ import annotations

import math
from collections.abc import Sequence

from evaluator.datasets.registry import MetricProfile, TaskSpec
from evaluator.errors import UnknownMetricError
from evaluator.scoring import ScoringPlan

__all__ = ["DEFAULT_WORST_DISTANCE_MM", "ERROR_CLASSES", "make_plan", "ranking_worst"]

#: Per-case error classes: short name -> what it means. All but ``empty`` get worst values.
ERROR_CLASSES: dict[str, str] = {
    "missing": "no prediction for the case",
    "undecodable": "the prediction file cannot be read or decoded",
    "geometry": "size, spacing, origin or direction differ from the reference",
    "nan": "the prediction holds NaN or infinite values",
    "label": "the prediction holds values outside the task's label map",
    "empty": "the prediction holds no foreground (scored by the edge-case rules)",
    "container": "the submitted container failed on the case and wrote no prediction",
    "format": "the prediction is not in an accepted single-file format (.nii.gz, .nii, .mha)",
    "unsafe": "the prediction is a link or special file, or its header names another file",
    "scoring_limit": "scoring the prediction exceeded the scoring worker's memory or time limit",
    "dataset": "the case's reference data is broken; the case is not scored for any entry",
}


#: The worst value a distance metric counts with on a leaderboard when the profile names none
#: (the thesis's 50 mm, as CC-Metrics' missed components).
DEFAULT_WORST_DISTANCE_MM = 50.0


def ranking_worst(profile: MetricProfile, metric: str) -> float:
    """The value of ``metric`` a case counts with at worst in means, intervals and ranks.

    The profile's ``worst:`` entry when there is one; for distances (mm) whose own worst value
    is infinite (one side empty) the profile's ``cc_worst_distance_mm`` (CC-Metrics) or
    :data:`DEFAULT_WORST_DISTANCE_MM`; else the metric's own worst value. Raw values (``inf``)
    stay in the store.

    Examples
    --------
    >>> from evaluator.datasets.registry import MetricProfile
    >>> p = MetricProfile(name="p", metrics=("dice", "hd95"), worst={"hd95": 80.0})
    >>> ranking_worst(p, "hd95"), ranking_worst(p, "dice"), ranking_worst(p, "cc_hd95")
    (80.0, 0.0, 50.0)
    """
    from evaluator.metrics.registry import METRICS

    if metric in profile.worst:
        return float(profile.worst[metric])
    spec = METRICS[metric]
    cc = profile.params.get("cc_worst_distance_mm") if spec.kind == "cc" else None
    if spec.unit == "mm" and cc is not None:
        return float(cc)  # CC distances: scored with this worst value (make_plan)
    if spec.unit == "mm" and math.isinf(spec.worst):
        return DEFAULT_WORST_DISTANCE_MM
    return float(spec.worst)


def make_plan(
    task: TaskSpec, profile: MetricProfile, *, user_metrics: Sequence[str] = ()
) -> ScoringPlan:
    """The scoring plan of a task: per-case metrics, parameters and worst values.

    Instance metrics (COCO AP) are run-level and not part of the per-case metrics. User
    metrics (:mod:`evaluator.metrics.plugins`) follow the profile's: every metric installed
    packages register under the ``ccbench.metrics`` entry points, then ``user_metrics``
    (``module:attribute`` references); the plan carries their references, so worker processes
    load them too.

    Examples
    --------
    >>> from evaluator.datasets.registry import load_registry
    >>> reg = load_registry()
    >>> plan = make_plan(reg.task("hecktor"), reg.profile("hecktor"))
    >>> plan.metrics[:2], plan.worst["hd95"], plan.worst["cc_hd95"], plan.aggregated_dice
    (('dice', 'hd95'), inf, 50.0, True)
    """
    from evaluator.metrics.plugins import activate, user_metric_ref
    from evaluator.metrics.registry import METRICS

    user = activate(user_metrics)
    unknown = [m for m in profile.metrics if m not in METRICS]
    if unknown:
        raise UnknownMetricError(
            f"metric profile '{profile.name}': unknown metrics {unknown} (known: {', '.join(METRICS)})"
        )
    per_case = tuple(
        dict.fromkeys(m for m in (*profile.metrics, *user) if METRICS[m].kind != "instance")
    )
    cc_worst = float(profile.params.get("cc_worst_distance_mm", math.nan))
    worst = {}
    for name in per_case:
        spec = METRICS[name]
        cc_distance = spec.kind == "cc" and spec.unit == "mm" and not math.isnan(cc_worst)
        worst[name] = cc_worst if cc_distance else spec.worst
    return ScoringPlan(
        task=task.name,
        dims=task.dims,
        instances=task.instances,
        labels=dict(task.labels),
        metrics=per_case,
        params=dict(profile.params),
        connectivity=task.connectivity,
        worst=worst,
        negative_case_metrics=profile.negative_case_metrics,
        resample_extent=profile.resample_extent,
        aggregated_dice="aggregated_dice" in profile.aggregates,
        instance_metrics=tuple(m for m in profile.metrics if METRICS[m].kind == "instance"),
        user_metrics=tuple(user_metric_ref(m) for m in per_case if METRICS[m].kind == "user"),
    )
