"""Scoring of one case, run inside a worker (process pool, Dask worker or in-process).

A :class:`CaseJob` holds only paths and small objects, so it pickles cheaply; the worker reads
the reference and the prediction itself, so memory stays bounded by the cases in flight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from evaluator.datasets.annotations import rasterise_polygon
from evaluator.datasets.base import Case
from evaluator.datasets.geometry import ImageGeometry, check_same_geometry, image_geometry
from evaluator.datasets.labels import label_array
from evaluator.errors import (
    GeometryMismatchError,
    ImageReadError,
    InvalidLabelError,
    MetricInputError,
    UserMetricError,
)
from evaluator.executor import JobFailure
from evaluator.ingest import RejectedPrediction, read_prediction
from evaluator.store import CaseError, ComponentRow, ResultRow
from evaluator.typing import Connectivity, LabelArray

if TYPE_CHECKING:
    from evaluator.metrics.api import CaseMetrics

__all__ = [
    "AGG_INTERSECTION",
    "AGG_VOLUME",
    "NOT_PREDICTED",
    "CaseJob",
    "CaseOutcome",
    "ScoringPlan",
    "activate_plan",
    "failed_outcome",
    "metric_kwargs",
    "prediction_from_instances",
    "read_scored_prediction",
    "score_case",
    "scoring_failure",
]

#: Per-case volumes behind the HECKTOR aggregated Dice, mm³: |P ∩ R| and |P| + |R| per label
#: (the official code weights each case by volume, so cases of different spacings count right).
AGG_INTERSECTION = "agg_intersection_mm3"
AGG_VOLUME = "agg_volume_mm3"
#: Why a label's rows are NaN when the entry does not declare it (the manifest's ``labels``).
NOT_PREDICTED = "not predicted: the entry does not declare this label"


@dataclass(frozen=True)
class ScoringPlan:
    """How every case of a run is scored (from the task and its metric profile)."""

    task: str
    dims: int
    labels: Mapping[int, str]
    metrics: tuple[str, ...]
    params: Mapping[str, Any]
    connectivity: Connectivity
    worst: Mapping[str, float]
    negative_case_metrics: tuple[str, ...] | None = None
    resample_extent: bool = False
    aggregated_dice: bool = False
    instance_metrics: tuple[str, ...] = ()
    #: ``module:attribute`` of the user metrics among :attr:`metrics`: a worker process
    #: activates them (:func:`evaluator.metrics.plugins.activate`) before scoring.
    user_metrics: tuple[str, ...] = ()
    #: References and predictions are instance lists (ChestXDet), not label images.
    instances: bool = False
    #: The labels the entry declares it predicts (the manifest's ``labels``); None: every
    #: label. The others are not predicted: their rows are NaN (never scored as empty
    #: predictions, never charged as rejected ones) and voxels of them in a prediction are
    #: ignored with a note (:data:`NOT_PREDICTED`).
    predicted: tuple[int, ...] | None = None

    @property
    def scored_labels(self) -> tuple[int, ...]:
        """The labels whose metrics are computed: the declared ones, else every label."""
        return tuple(self.labels) if self.predicted is None else self.predicted

    def not_predicted(self, label: int) -> bool:
        """True for a label of the task the entry does not declare."""
        return self.predicted is not None and label not in self.predicted


@dataclass(frozen=True)
class CaseJob:
    """One case to score: the reference case and where its prediction is.

    ``prediction`` is an image file (3D tasks) or None when no file was found;
    ``instances`` (2D instance tasks) are the predicted instances of this image as
    ``(category_id, score, segmentation)`` tuples, None when the prediction file is missing;
    a missing prediction is recorded with ``missing_class`` (``container`` when the submitted
    container failed on the case) and ``missing_reason``; ``preset_error`` ``(error class,
    message)`` rejects the case without reading it (an unreadable predictions JSON).
    """

    case: Case
    plan: ScoringPlan
    prediction: Path | None = None
    instances: tuple[tuple[int, float, dict[str, Any]], ...] | None = None
    missing_reason: str = "no prediction file"
    missing_class: str = "missing"
    preset_error: tuple[str, str] | None = None


@dataclass
class CaseOutcome:
    """Everything a worker sends back for one case (small: numbers and text)."""

    case_id: str
    rows: list[ResultRow]
    components: list[ComponentRow] = field(default_factory=list)
    error: CaseError | None = None
    seconds: float = 0.0
    read_seconds: float = 0.0
    #: Messages for the operator's log (a user metric that failed on this prediction).
    notes: list[str] = field(default_factory=list)
    #: Validation notes on an accepted prediction (voxels of labels the entry does not
    #: declare, ignored): stored in the run's log, stream ``validation``.
    validation: list[str] = field(default_factory=list)


class _Rejected(Exception):
    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


def prediction_from_instances(
    instances: Sequence[tuple[int, float, Mapping[str, Any]]], *, shape: tuple[int, int]
) -> LabelArray:
    """Paint predicted instances into a label map; a higher score wins where they overlap.

    Parameters
    ----------
    instances
        ``(category_id, score, segmentation)``: a COCO RLE dict of size ``shape``, or
        ``{"polygon": [[x, y], ...]}`` in pixels (ChestXDet style).
    shape
        ``(height, width)`` of the image.

    Returns
    -------
    numpy.ndarray
        uint8 label map, shape ``(height, width)``, 0 where no instance lies.

    Examples
    --------
    >>> from pycocotools import mask as mu
    >>> m = np.zeros((4, 4), dtype=np.uint8, order="F"); m[:2, :2] = 1
    >>> rle = mu.encode(m)
    >>> prediction_from_instances([(3, 0.9, rle)], shape=(4, 4))[:2, :3].tolist()
    [[3, 3, 0], [3, 3, 0]]
    """
    from pycocotools import mask as mask_utils

    out = np.zeros(shape, dtype=np.uint8)
    for category, _score, seg in sorted(instances, key=lambda item: item[1]):
        if "polygon" in seg:
            mask = rasterise_polygon(seg["polygon"], height=shape[0], width=shape[1])
        else:
            mask = np.asarray(mask_utils.decode(dict(seg)), dtype=bool)
        if mask.shape != shape:
            raise _Rejected(
                "geometry", f"mask of size {mask.shape[::-1]} does not match image {shape[::-1]}"
            )
        out[mask] = category
    return out


def _read_prediction(job: CaseJob, ref_img: sitk.Image) -> LabelArray:
    """The prediction as a label array on the reference grid; raises _Rejected."""
    cid = job.case.case_id
    plan = job.plan
    if job.preset_error is not None:
        raise _Rejected(*job.preset_error)
    if plan.instances:
        if job.instances is None:
            raise _Rejected(job.missing_class, f"prediction {cid}: {job.missing_reason}")
        ref_shape = image_geometry(ref_img).array_shape
        bad = sorted({c for c, _, _ in job.instances if c not in plan.labels})
        if bad:
            raise _Rejected("label", f"prediction {cid}: categories {bad} are not in the label map")
        shape = (int(ref_shape[0]), int(ref_shape[1]))
        try:
            return prediction_from_instances(
                [i for i in job.instances if not plan.not_predicted(i[0])], shape=shape
            )
        except _Rejected as err:
            raise _Rejected(err.error_class, f"prediction {cid}: {err.message}") from None
        except (ValueError, TypeError, KeyError, RuntimeError, OverflowError) as err:
            raise _Rejected(
                "undecodable", f"prediction {cid}: an instance cannot be decoded ({err})"
            ) from None
    path = job.prediction
    if path is None:
        raise _Rejected(job.missing_class, f"prediction {cid}: {job.missing_reason}")
    try:
        return read_scored_prediction(
            path,
            ref_img,
            labels=plan.labels,
            resample_extent=plan.resample_extent,
            what=f"prediction {cid} ({path.name})",
        )
    except RejectedPrediction as err:
        error_class = job.missing_class if err.error_class == "missing" else err.error_class
        raise _Rejected(error_class, err.message) from None


def read_scored_prediction(
    path: Path,
    ref_img: sitk.Image,
    *,
    labels: Mapping[int, str],
    resample_extent: bool,
    what: str,
) -> LabelArray:
    """An untrusted label image as scoring reads it: every check, on the reference's grid.

    The header is checked before decoding (:func:`evaluator.ingest.read_prediction`), the grid
    against the reference (``resample_extent``: a different extent at the same spacing is
    resampled, HECKTOR), and the labels against the task's (:func:`label_array`).

    Raises
    ------
    RejectedPrediction
        With its ``error_class`` (``format``, ``unsafe``, ``geometry``, ``undecodable``,
        ``nan``, ``label`` ...).
    """
    try:
        img = read_prediction(
            path,
            what=what,
            expected_size=image_geometry(ref_img).size,
            allow_other_extent=resample_extent,
        )
    except (ValueError, OSError, RecursionError, OverflowError) as err:  # odd names, odd files
        raise RejectedPrediction("undecodable", f"{what}: cannot be read ({err})") from None
    try:
        img = _on_reference_grid(img, ref_img, what=what, resample_extent=resample_extent)
    except _Rejected as err:
        raise RejectedPrediction(err.error_class, err.message) from None
    try:
        return label_array(img, labels=labels, what=what)
    except InvalidLabelError as err:
        raise RejectedPrediction("label", str(err)) from err


def _on_reference_grid(
    img: sitk.Image, ref_img: sitk.Image, *, what: str, resample_extent: bool
) -> sitk.Image:
    """Check the grid; with ``resample_extent`` (HECKTOR) resample same-spacing images."""
    try:
        check_same_geometry(img, ref_img, what=what)
        return img
    except GeometryMismatchError as err:
        if not resample_extent or img.GetDimension() != ref_img.GetDimension():
            raise _Rejected("geometry", str(err)) from err
        spacing, ref_spacing = img.GetSpacing(), ref_img.GetSpacing()
        if not np.allclose(spacing, ref_spacing, rtol=0.0, atol=1e-3):
            raise _Rejected(
                "geometry",
                f"{what}: spacing {tuple(round(s, 4) for s in spacing)} mm differs from the "
                f"reference {tuple(round(s, 4) for s in ref_spacing)} mm; predictions must be "
                "at the reference resolution (only a different extent is resampled)",
            ) from err
    return sitk.Resample(
        img, ref_img, sitk.Transform(), sitk.sitkNearestNeighbor, 0, img.GetPixelID()
    )


def _read_reference(job: CaseJob) -> tuple[sitk.Image, LabelArray]:
    """The case's reference, checked against its own image grid (the organiser's data)."""
    case, plan = job.case, job.plan
    ref_img = case.read_label()
    ref = label_array(ref_img, labels=plan.labels, what=f"reference {case.case_id}")
    if case.annotations is None and case.channels:
        # The prediction is made on the case's image grid: a reference on another grid would be
        # charged to every entry as a geometry error. Nothing to compare with when the image is
        # absent (local evaluation needs only the references).
        channel = case.reference_channel or next(iter(case.channels))
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(case.channels[channel]))
        if not Path(case.channels[channel]).is_file():
            return ref_img, ref
        try:
            reader.ReadImageInformation()
        except RuntimeError as err:
            raise ImageReadError(
                f"case {case.case_id}: image {channel} cannot be read: "
                f"{str(err).strip().splitlines()[-1][:160] if str(err).strip() else 'corrupt'}"
            ) from None
        check_same_geometry(
            ref_img,
            _geometry_of(reader),
            what=f"reference {case.case_id}",
            reference=f"its image {channel}",
        )
    return ref_img, ref


def _geometry_of(reader: sitk.ImageFileReader) -> ImageGeometry:
    return ImageGeometry(
        size=tuple(int(v) for v in reader.GetSize()),
        spacing=tuple(float(v) for v in reader.GetSpacing()),
        origin=tuple(float(v) for v in reader.GetOrigin()),
        direction=tuple(float(v) for v in reader.GetDirection()),
    )


def _dataset_error(plan: ScoringPlan, cid: str, message: str, *, seconds: float) -> CaseOutcome:
    """A case whose reference data is broken: not scorable for any entry (NaN rows)."""
    rows = [ResultRow(label, metric, math.nan) for label in plan.labels for metric in plan.metrics]
    return CaseOutcome(
        case_id=cid,
        rows=rows,
        error=CaseError("dataset", f"case {cid} is not scorable (dataset error): {message}"),
        seconds=seconds,
    )


def _worst_rows(plan: ScoringPlan) -> list[ResultRow]:
    """A rejected prediction's rows: the worst values, NaN for the labels not predicted."""
    return [
        ResultRow(label, metric, math.nan if plan.not_predicted(label) else plan.worst[metric])
        for label in plan.labels
        for metric in plan.metrics
    ]


def metric_kwargs(plan: ScoringPlan) -> dict[str, Any]:
    keys = ("nsd_tolerance_mm", "lesion_match", "cc_mode", "cc_worst_distance_mm")
    return {k: plan.params[k] for k in keys if k in plan.params}


def activate_plan(plan: ScoringPlan) -> None:
    """Load the plan's user metrics into this (worker) process's registry."""
    if plan.user_metrics:
        from evaluator.metrics.plugins import activate

        activate(plan.user_metrics, entry_points=False)


def score_case(job: CaseJob) -> CaseOutcome:
    """Read, validate and score one case; never raises for a bad prediction.

    A rejected prediction (missing, undecodable, wrong geometry, NaN, label outside the map,
    refused format or unsafe file) gets the worst value of every metric and a
    :class:`CaseError`; an empty prediction is scored by the metrics' edge-case rules and also
    noted as a ``empty`` case error. A broken reference (unreadable, labels outside the map, or
    not on its own image's grid) is a ``dataset`` error: NaN rows, never charged to the entry.
    """
    from evaluator.metrics.api import COMPONENT_FIELD
    from evaluator.metrics.files import physical_centres

    plan = job.plan
    cid = job.case.case_id
    start = time.perf_counter()
    activate_plan(plan)
    if job.preset_error is not None and job.preset_error[0] == "dataset":
        return _dataset_error(plan, cid, job.preset_error[1], seconds=0.0)
    try:
        ref_img, ref = _read_reference(job)
    except (ImageReadError, InvalidLabelError, GeometryMismatchError) as err:
        return _dataset_error(plan, cid, str(err), seconds=time.perf_counter() - start)
    try:
        pred = _read_prediction(job, ref_img)
    except _Rejected as rejected:
        error = CaseError(rejected.error_class, rejected.message)
        return _outcome(
            job,
            ref,
            None,
            error,
            voxel_mm3=_voxel_mm3(ref_img),
            start=start,
            read_seconds=time.perf_counter() - start,
        )
    read_seconds = time.perf_counter() - start
    notes: list[str] = []
    validation = _undeclared_note(job, pred)
    if plan.predicted is not None:
        pred = np.where(np.isin(pred, plan.predicted), pred, 0).astype(pred.dtype, copy=False)
        ref = np.where(np.isin(ref, plan.predicted), ref, 0).astype(ref.dtype, copy=False)
    try:
        result = _compute(plan, pred, ref, image_geometry(ref_img).array_spacing, notes)
    except MetricInputError as err:
        raise MetricInputError(f"case {cid}: {err}") from err
    rows = [
        ResultRow(
            label,
            metric,
            math.nan if plan.not_predicted(label) else float(result.values[label][metric]),
        )
        for label in plan.labels
        for metric in plan.metrics
    ]
    physical_centres(result, ref_img)
    components = [
        ComponentRow(label, metric, index, float(value))
        for label, per_metric in result.per_component.items()
        for metric, values in per_metric.items()
        for index, value in enumerate(values)
    ] + [
        ComponentRow(label, COMPONENT_FIELD + key, index, value)
        for label, infos in result.components.items()
        for index, info in enumerate(infos)
        for key, value in info.fields().items()
    ]
    empty: CaseError | None = None
    if not pred.any() and ref.any():
        empty = CaseError(
            "empty",
            f"prediction {cid}: holds no foreground voxel; scored by the metrics' edge-case rules",
        )
    outcome = _outcome(
        job,
        ref,
        pred,
        empty,
        voxel_mm3=_voxel_mm3(ref_img),
        rows=rows,
        components=components,
        start=start,
        read_seconds=read_seconds,
    )
    outcome.notes = [f"case {cid}: {note}" for note in notes]
    outcome.validation = validation
    return outcome


def _undeclared_note(job: CaseJob, pred: LabelArray) -> list[str]:
    """A note when the prediction holds labels the entry does not declare (they are ignored)."""
    plan = job.plan
    if plan.predicted is None:
        return []
    if plan.instances and job.instances is not None:
        found = sorted({int(c) for c, _, _ in job.instances if plan.not_predicted(int(c))})
    else:
        found = sorted(int(v) for v in np.unique(pred) if v and plan.not_predicted(int(v)))
    if not found:
        return []
    names = ", ".join(f"{v} ({plan.labels[v]})" for v in found)
    return [
        f"prediction {job.case.case_id}: holds labels the entry does not declare: {names}; "
        "their voxels are ignored (not scored, recorded as not predicted)"
    ]


def _compute(
    plan: ScoringPlan, pred: LabelArray, ref: LabelArray, spacing: Sequence[float], notes: list[str]
) -> CaseMetrics:
    """Every metric of the plan. A user metric that fails on this prediction gets its worst
    value (charged to the entry, whose prediction made it fail; the others are kept) and a
    note for the operator's log: no prediction can stop an evaluation through a metric."""
    from evaluator.metrics.api import compute_metrics
    from evaluator.metrics.registry import METRICS

    def run(metrics: Sequence[str]) -> CaseMetrics:
        return compute_metrics(
            pred,
            ref,
            spacing=spacing,
            metrics=metrics,
            labels=list(plan.scored_labels),
            connectivity=plan.connectivity,
            **metric_kwargs(plan),
        )

    try:
        return run(plan.metrics)
    except UserMetricError as err:
        notes.append(str(err))
    user = [m for m in plan.metrics if METRICS[m].kind == "user"]
    result = run([m for m in plan.metrics if m not in user])
    for metric in user:  # each alone: only the failing ones get the worst value
        try:
            one = run([metric]).values
        except UserMetricError as err:
            if str(err) not in notes:
                notes.append(str(err))
            one = {
                label: {metric: plan.worst.get(metric, METRICS[metric].worst)}
                for label in result.values
            }
        for label, values in result.values.items():
            values[metric] = one[label][metric]
    for label, values in result.values.items():
        result.values[label] = {m: values[m] for m in plan.metrics}  # the plan's order
    return result


def failed_outcome(job: CaseJob, error_class: str, message: str) -> CaseOutcome:
    """The outcome of a case whose scoring failed (e.g. past the worker's memory or time limit).

    Scored like a rejected prediction (worst values), read in the calling process; a broken
    reference still makes it a ``dataset`` error.
    """
    start = time.perf_counter()
    try:
        ref_img, ref = _read_reference(job)
    except (ImageReadError, InvalidLabelError, GeometryMismatchError) as err:
        return _dataset_error(job.plan, job.case.case_id, str(err), seconds=0.0)
    error = CaseError(error_class, message)
    voxel_mm3 = _voxel_mm3(ref_img)
    return _outcome(job, ref, None, error, voxel_mm3=voxel_mm3, start=start, read_seconds=0.0)


def _voxel_mm3(img: sitk.Image) -> float:
    """The volume of one voxel of ``img``, mm³ (mm² for a 2D image)."""
    return float(np.prod(img.GetSpacing()))


def _outcome(
    job: CaseJob,
    ref: LabelArray,
    pred: LabelArray | None,
    error: CaseError | None,
    *,
    voxel_mm3: float,
    start: float,
    read_seconds: float,
    rows: list[ResultRow] | None = None,
    components: list[ComponentRow] | None = None,
) -> CaseOutcome:
    """Rows of a case (worst values when ``pred`` is None) plus the profile's extra rules."""
    plan = job.plan
    rows = _worst_rows(plan) if rows is None else rows
    components = components or []
    if plan.aggregated_dice:
        # a rejected prediction counts as empty: it adds the reference volume and no overlap
        painted = np.zeros_like(ref) if pred is None else pred
        for label in plan.scored_labels:  # a label not predicted has no aggregated Dice
            p, r = painted == label, ref == label
            both = np.count_nonzero(p & r) * voxel_mm3
            rows.append(ResultRow(label, AGG_INTERSECTION, float(both)))
            volume = (np.count_nonzero(p) + np.count_nonzero(r)) * voxel_mm3
            rows.append(ResultRow(label, AGG_VOLUME, float(volume)))
    if plan.negative_case_metrics is not None and not ref.any():
        keep = set(plan.negative_case_metrics)
        rows = [r if r.metric in keep else r._replace(value=math.nan) for r in rows]
        components = [c for c in components if c.metric in keep]
    return CaseOutcome(
        case_id=job.case.case_id,
        rows=rows,
        components=components,
        error=error,
        seconds=time.perf_counter() - start,
        read_seconds=read_seconds,
    )


def scoring_failure(job: CaseJob, failure: JobFailure) -> CaseOutcome:
    """A case whose worker ran out of memory or time, or died: ``scoring_limit``, worst values.

    The prediction is what made scoring exhaust the worker (a huge or pathological image), so it
    is charged to the entry like any other rejected prediction.
    """
    return failed_outcome(job, "scoring_limit", f"prediction {job.case.case_id}: {failure.message}")
