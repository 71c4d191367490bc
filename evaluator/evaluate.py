"""``ccbench evaluate``: score a folder of predictions against a split, into the results store.

Pipeline: the split's case ids -> prediction files matched by case id -> one :class:`CaseJob`
per case -> scored in parallel (a local process pool, or an existing Dask cluster) -> each case
written to the store in ONE transaction as soon as it is scored -> run-level aggregates ->
``results.csv`` and ``summary.json``. A killed run is resumed by running the same command again:
only the cases missing from the store are scored. A finished run is a no-op unless ``force``.

Prediction layouts (3D tasks), tried in this order for each case id ``C``:

1. ``<pred>/C.nii.gz`` (or ``.nii``, ``.mha``): the nnU-Net / batch layout. Files are read
   through :mod:`evaluator.ingest` (single-file formats only, no links, header checked first).
2. ``<pred>/mapping.json``: ``{"C": "images/<slug>/<uuid>.mha", ...}``, paths relative to
   ``<pred>``, for grand-challenge style output folders (``<pred>/images/<slug>/<uuid>.mha``).
3. ``<pred>/C/``: a per-case folder (the grand-challenge "one container run per case" output)
   holding exactly one image file at any depth, e.g. ``<pred>/C/images/<slug>/<uuid>.mha``.

ChestXDet (2D instance task): ``<pred>`` is a JSON file, or a folder holding exactly one. Either
the standard COCO results list ``[{"image_id", "category_id", "segmentation" (RLE), "score"}]``,
where ``image_id`` is the case id (the image file stem, string or integer), or the ChestXDet
style ``[{"file_name", "syms": [class names], "polygons": [[[x, y], ...]], "scores": [...]}]``
(scores default to 1). An image with no instance is an empty prediction; a missing or unreadable
JSON file makes every case ``missing`` / ``undecodable``.

Bad predictions (:data:`ERROR_CLASSES`): a missing file, an undecodable file, wrong geometry, NaN,
a label outside the map are recorded as a per-case error and scored with the worst value of every
metric (:attr:`MetricSpec.worst`; for CC distances the profile's ``cc_worst_distance_mm``), so a
team cannot skip hard cases. An empty prediction is scored normally by the metrics' edge-case
rules (:data:`~evaluator.metrics.registry.EDGE_CASES`) and is noted as an ``empty`` case error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluator._scoring import (
    AGG_INTERSECTION,
    AGG_VOLUME,
    CaseJob,
    CaseOutcome,
    ScoringPlan,
    score_case,
    scoring_failure,
)
from evaluator.datasets.registry import MetricProfile, Registry, TaskSpec, load_registry
from evaluator.errors import CCBenchError, ImageReadError, InvalidPredictionError
from evaluator.executor import (
    JobFailure,
    WorkerLimits,
    default_memory_mb,
    run_jobs,
    run_jobs_dask,
)
from evaluator.ingest import ACCEPTED_FORMATS, RejectedPrediction, accepted_suffix
from evaluator.store import ResultRow, RunInfo, Store
from evaluator.workspace import Workspace, check_name, safe_name

if TYPE_CHECKING:
    import pandas as pd

    from evaluator.datasets.base import Case, DatasetAdapter

__all__ = [
    "ERROR_CLASSES",
    "IMAGE_EXTENSIONS",
    "EvaluationResult",
    "evaluate_run",
    "find_predictions",
    "make_plan",
    "ranking_worst",
    "summarize_run",
    "write_degraded_predictions",
]

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

#: File endings of prediction images, tried in this order (the ingestion's allow-list).
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(ACCEPTED_FORMATS)

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


@dataclass
class EvaluationResult:
    """What :func:`evaluate_run` did.

    Attributes
    ----------
    run
        The run in the store (status ``finished`` after a complete run).
    summary
        The content of ``summary.json``.
    out
        Folder holding ``results.csv`` and ``summary.json``.
    scored
        Cases scored by this call (0 for a finished run re-run without ``force``).
    skipped
        Cases already in the store from an earlier, interrupted call.
    """

    run: RunInfo
    summary: dict[str, Any]
    out: Path
    scored: int
    skipped: int
    store_url: str
    results: pd.DataFrame = field(repr=False)

    @property
    def results_csv(self) -> Path:
        """One row per case and label, one column per metric."""
        return self.out / "results.csv"

    @property
    def summary_json(self) -> Path:
        """Means, aggregates, error counts and the conventions applied."""
        return self.out / "summary.json"


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


def make_plan(task: TaskSpec, profile: MetricProfile) -> ScoringPlan:
    """The scoring plan of a task: per-case metrics, parameters and worst values.

    Instance metrics (COCO AP) are run-level and not part of the per-case metrics.

    Examples
    --------
    >>> reg = load_registry()
    >>> plan = make_plan(reg.task("hecktor"), reg.profile("hecktor"))
    >>> plan.metrics[:2], plan.worst["hd95"], plan.worst["cc_hd95"], plan.aggregated_dice
    (('dice', 'hd95'), inf, 50.0, True)
    """
    from evaluator.metrics.registry import METRICS

    unknown = [m for m in profile.metrics if m not in METRICS]
    if unknown:
        raise CCBenchError(
            f"metric profile '{profile.name}': unknown metrics {unknown} (known: {', '.join(METRICS)})"
        )
    per_case = tuple(m for m in profile.metrics if METRICS[m].kind != "instance")
    cc_worst = float(profile.params.get("cc_worst_distance_mm", math.nan))
    worst = {}
    for name in per_case:
        spec = METRICS[name]
        cc_distance = spec.kind == "cc" and spec.unit == "mm" and not math.isnan(cc_worst)
        worst[name] = cc_worst if cc_distance else spec.worst
    return ScoringPlan(
        task=task.name,
        dims=task.dims,
        labels=dict(task.labels),
        metrics=per_case,
        params=dict(profile.params),
        connectivity=task.connectivity,
        worst=worst,
        negative_case_metrics=profile.negative_case_metrics,
        resample_extent=profile.resample_extent,
        aggregated_dice="aggregated_dice" in profile.aggregates,
        instance_metrics=tuple(m for m in profile.metrics if METRICS[m].kind == "instance"),
    )


# --------------------------------------------------------------------------------------------
# prediction matching
# --------------------------------------------------------------------------------------------


_MAX_LISTED = 10_000
_MAX_DEPTH = 16


def _lexists(path: Path) -> bool:
    return os.path.lexists(path)


def _real_dir(path: Path) -> bool:
    """A folder that is not a link."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _single_image(folder: Path) -> Path | RejectedPrediction | None:
    """The one image file under a per-case folder (links are listed, never followed)."""
    files: list[Path] = []
    seen = 0
    stack = [(folder, 0)]
    while stack:
        here, depth = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        seen += len(entries)
        if seen > _MAX_LISTED or depth > _MAX_DEPTH:
            return RejectedPrediction(
                "unsafe",
                f"{folder.name}/: more than {_MAX_LISTED} entries or {_MAX_DEPTH} levels of "
                "folders; not searched",
            )
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), depth + 1))
            elif accepted_suffix(entry.name):
                files.append(Path(entry.path))
    return files[0] if len(files) == 1 else None


def _mapped(pred: Path, cid: str, relative: str) -> Path | RejectedPrediction:
    """``<pred>/<relative>`` from mapping.json: relative, inside ``pred``, no link on the way."""
    parts = Path(relative).parts
    odd = any(ord(ch) < 32 for ch in relative) or len(relative) > 1024
    if odd or not relative or Path(relative).is_absolute() or any(p in ("..", ".") for p in parts):
        return RejectedPrediction(
            "unsafe",
            f"prediction {cid}: mapping.json path {relative!r} is not a plain relative path "
            "inside the predictions folder",
        )
    folder = pred
    for part in parts[:-1]:
        folder = folder / part
        if not _real_dir(folder):
            return RejectedPrediction(
                "unsafe",
                f"prediction {cid}: mapping.json path {relative!r} passes through "
                f"{part!r}, which is not a folder (links are never followed)",
            )
    return folder / parts[-1]


def find_predictions(
    pred: Path, case_ids: Sequence[str]
) -> dict[str, Path | RejectedPrediction | None]:
    """Match prediction image files to case ids (3D tasks; see the module docstring).

    Nothing is followed: a link is matched like a file (and refused when it is read), a
    ``mapping.json`` path must stay inside ``pred`` without passing a link, and a file named
    after the case in a format that is not accepted is reported as such.

    Parameters
    ----------
    pred
        The predictions folder.
    case_ids
        Cases of the split.

    Returns
    -------
    dict
        Case id -> file, a :class:`~evaluator.ingest.RejectedPrediction` (refused before
        reading: ``format`` or ``unsafe``), or None when nothing matches (scored as ``missing``).

    Raises
    ------
    InvalidPredictionError
        When ``pred`` is not a folder or ``mapping.json`` is malformed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "0001.nii.gz").write_bytes(b"")
    >>> _ = (folder / "0003.nrrd").write_bytes(b"")
    >>> found = find_predictions(folder, ["0001", "0002", "0003"])
    >>> found["0001"].name, found["0002"], found["0003"].error_class
    ('0001.nii.gz', None, 'format')
    """
    if not _real_dir(pred):
        raise InvalidPredictionError(f"predictions folder {pred} does not exist")
    try:
        listed = sorted(os.listdir(pred))
    except OSError as err:
        raise InvalidPredictionError(f"predictions folder {pred}: {err.strerror}") from err
    names = set(listed)
    mapping: dict[str, str] = {}
    mapping_file = pred / "mapping.json"
    if "mapping.json" in names and stat.S_ISREG(os.lstat(mapping_file).st_mode):
        raw = _read_untrusted_json(mapping_file)
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise InvalidPredictionError(
                f"{mapping_file}: expected an object {{case id: relative file path}}"
            )
        mapping = {str(k): v for k, v in raw.items()}
    by_stem: dict[str, list[str]] = {}  # the file ending's case does not matter (.NII.GZ)
    for n in listed:
        ext = accepted_suffix(n)
        if ext is not None:
            by_stem.setdefault(n[: -len(ext)], []).append(n)
    found: dict[str, Path | RejectedPrediction | None] = {}
    for cid in case_ids:
        candidates = sorted(
            by_stem.get(cid, []), key=lambda n: IMAGE_EXTENSIONS.index(str(accepted_suffix(n)))
        )
        match: Path | RejectedPrediction | None = pred / candidates[0] if candidates else None
        if match is None and cid in mapping:
            match = _mapped(pred, cid, mapping[cid])
        if match is None and cid in names and _real_dir(pred / cid):
            match = _single_image(pred / cid)
        if match is None:
            others = [n for n in listed if n.startswith(f"{cid}.") and not accepted_suffix(n)]
            if others:
                match = RejectedPrediction(
                    "format",
                    f"prediction {cid}: {others[0]} is not an accepted format "
                    f"(write {cid}.nii.gz, {cid}.nii or {cid}.mha)",
                )
        found[cid] = match
    return found


#: Largest predictions JSON read (instances of a whole split).
_MAX_JSON_BYTES = 512 * 2**20

Instances = tuple[tuple[int, float, dict[str, Any]], ...]


def _read_untrusted_json(path: Path) -> Any:
    """Parse a JSON file without following a link, size-capped; InvalidPredictionError else."""
    from evaluator.ingest import RejectedPrediction, open_untrusted

    try:
        fd = open_untrusted(path, what=f"predictions {path.name}", max_bytes=_MAX_JSON_BYTES)
    except RejectedPrediction as err:
        raise InvalidPredictionError(err.message) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(_MAX_JSON_BYTES + 1)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        raise InvalidPredictionError(
            f"predictions {path.name}: is not valid JSON ({str(err)[:120]})"
        ) from None


def _instance(item: Mapping[str, Any], by_name: Mapping[str, int]) -> tuple[str, list[Any]]:
    """(case id, instances) of one item of a predictions list; ValueError/TypeError if bad."""

    def polygon(value: Any) -> list[list[float]]:
        points = [[float(x), float(y)] for x, y in value]
        if len(points) > 100_000:
            raise ValueError("a polygon of more than 100,000 points")
        return points

    if "segmentation" in item:
        cid = Path(str(item.get("image_id"))).name.split(".")[0]
        seg = item["segmentation"]
        if not isinstance(seg, dict) or not isinstance(seg.get("counts"), (str, list)):
            raise ValueError("'segmentation' is not a COCO RLE {size, counts}")
        size = [int(v) for v in seg.get("size", ())]
        if len(size) != 2:
            raise ValueError("'segmentation.size' is not [height, width]")
        rle = {"size": size, "counts": seg["counts"]}
        score = float(item.get("score", 1.0))
        return cid, [(int(item.get("category_id", -1)), score, rle)]
    if "polygons" in item:
        cid = Path(str(item.get("file_name"))).name.split(".")[0]
        syms, polys = list(item.get("syms", [])), list(item["polygons"])
        scores = [float(v) for v in (item.get("scores") or [1.0] * len(polys))]
        if not (len(syms) == len(polys) == len(scores)):
            raise ValueError("syms, polygons and scores differ in length")
        return cid, [
            (by_name.get(str(s), -1), sc, {"polygon": polygon(poly)})
            for s, poly, sc in zip(syms, polys, scores, strict=True)
        ]
    raise ValueError("neither 'segmentation' (COCO results) nor 'polygons' (ChestXDet style)")


def _instance_predictions(
    pred: Path, task: TaskSpec, case_ids: Sequence[str]
) -> tuple[dict[str, Instances], dict[str, str], str | None]:
    """Parse a COCO results or ChestXDet-style JSON (never through a link).

    Returns per-case instances, per-case problems (an item of that case is malformed: the case
    is ``undecodable``, the others are scored), and a problem of the file as a whole.
    """
    file = pred
    if _real_dir(pred):
        candidates = sorted(pred / n for n in os.listdir(pred) if n.lower().endswith(".json"))
        if len(candidates) != 1:
            return {}, {}, f"expected one JSON file in {pred}, found {len(candidates)}"
        file = candidates[0]
    if not os.path.lexists(file):
        return {}, {}, f"prediction file {file} does not exist"
    raw = _read_untrusted_json(file)
    if not isinstance(raw, list):
        raise InvalidPredictionError(f"{file.name}: expected a JSON list of predictions")
    by_name = {name: value for value, name in task.labels.items()}
    out: dict[str, list[tuple[int, float, dict[str, Any]]]] = {cid: [] for cid in case_ids}
    problems: dict[str, str] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidPredictionError(f"{file.name}: item {i} is not an object")
        try:
            cid, entries = _instance(item, by_name)
        except (ValueError, TypeError, KeyError, OverflowError) as err:
            where = item.get("image_id", item.get("file_name", "?"))
            cid = Path(str(where)).name.split(".")[0]
            if cid not in out:
                raise InvalidPredictionError(f"{file.name}: item {i}: {err}") from None
            problems.setdefault(cid, f"prediction {cid}: {file.name} item {i}: {err}")
            continue
        if cid in out:
            out[cid].extend(entries)
    return {cid: tuple(items) for cid, items in out.items()}, problems, None


def _jobs(
    task: TaskSpec,
    plan: ScoringPlan,
    dataset: DatasetAdapter,
    pred: Path,
    case_ids: Sequence[str],
    case_errors: Mapping[str, str] | None = None,
    dataset_errors: Mapping[str, str] | None = None,
    unsafe: set[str] | None = None,
) -> list[CaseJob]:
    jobs = _prediction_jobs(task, plan, dataset, pred, case_ids)
    errors = case_errors or {}
    broken = dataset_errors or {}
    unsafe = unsafe or set()
    # A container failure explains a missing prediction better than "no file"; a case whose
    # data could not be staged is the dataset's fault.
    return [
        replace(job, preset_error=("dataset", broken[job.case.case_id]))
        if job.case.case_id in broken
        else replace(
            job,
            missing_class="unsafe" if job.case.case_id in unsafe else "container",
            missing_reason=errors[job.case.case_id],
        )
        if job.case.case_id in errors
        else job
        for job in jobs
    ]


def _prediction_jobs(
    task: TaskSpec,
    plan: ScoringPlan,
    dataset: DatasetAdapter,
    pred: Path,
    case_ids: Sequence[str],
) -> list[CaseJob]:
    if task.dims == 2:
        try:
            instances, bad, problem = _instance_predictions(pred, task, case_ids)
        except (ImageReadError, InvalidPredictionError) as err:
            return [
                CaseJob(
                    dataset.case(c), plan, preset_error=("undecodable", f"prediction {c}: {err}")
                )
                for c in case_ids
            ]
        return [
            CaseJob(
                dataset.case(c),
                plan,
                instances=instances.get(c),
                missing_reason=problem or "no prediction",
                preset_error=("undecodable", bad[c]) if c in bad else None,
            )
            for c in case_ids
        ]
    files = find_predictions(pred, case_ids)
    jobs = []
    for c in case_ids:
        match = files[c]
        refused = match if isinstance(match, RejectedPrediction) else None
        jobs.append(
            CaseJob(
                dataset.case(c),
                plan,
                prediction=match if isinstance(match, Path) else None,
                missing_reason=f"no prediction file for case {c} (expected {c}.nii.gz, .nii "
                "or .mha)",
                preset_error=None if refused is None else (refused.error_class, refused.message),
            )
        )
    return jobs


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def _outcomes_local(
    jobs: Sequence[Any],
    workers: int,
    fn: Callable[[Any], Any] = score_case,
    *,
    limits: WorkerLimits | None = None,
    on_failure: Callable[[Any, JobFailure], Any] = scoring_failure,
) -> Iterator[Any]:
    """``fn(job)`` of every job in capped worker processes, in completion order."""
    limits = limits or WorkerLimits(memory_mb=default_memory_mb(workers))
    yield from run_jobs(jobs, fn, workers=workers, limits=limits, on_failure=on_failure)


def _outcomes_dask(
    jobs: Sequence[Any], scheduler: str, fn: Callable[[Any], Any] = score_case
) -> Iterator[Any]:
    """As :func:`_outcomes_local` on an existing Dask cluster (the cluster's limits apply)."""
    yield from run_jobs_dask(jobs, fn, scheduler=scheduler)


def _refuse_empty_folder(task: TaskSpec, jobs: Sequence[CaseJob], pred: Path) -> None:
    """A folder in which no case has a prediction is a wrong ``--pred``, not an entry."""
    if any(j.prediction is not None or j.preset_error or j.instances is not None for j in jobs):
        return
    example = jobs[0].case.case_id if jobs else "CASE"
    if task.dims == 2:
        expected = "one JSON file of COCO results or ChestXDet-style predictions"
    else:
        expected = (
            f"one file per case named after it, e.g. {example}.nii.gz (or .nii, .mha), a "
            f"mapping.json, or per-case folders {example}/"
        )
    raise InvalidPredictionError(
        f"predictions folder {pred}: no prediction for any of the {len(jobs)} cases of the "
        f"split; expected {expected}"
    )


def _has_reference(case: Case) -> bool:
    return case.label is not None and case.label.is_file()


def _fingerprint(cases: Iterable[Case], *, cache: Path | None = None) -> str:
    """sha256 over case ids and the content of each reference file.

    Each file's own sha256 is streamed once and cached by path, size and modification time in
    ``cache`` (a JSON file), so a re-run hashes only what changed.
    """
    import time as _time

    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text())
    digest = hashlib.sha256()
    changed = False
    for case in cases:
        content = "-"
        if case.label is not None and case.label.is_file():
            st = case.label.stat()
            key = str(case.label.absolute())
            stamp = [st.st_size, st.st_mtime_ns]
            entry = known.get(key)
            if isinstance(entry, dict) and entry.get("stamp") == stamp:
                content = str(entry["sha256"])
            else:
                content = _file_sha256(case.label)
                known[key] = {"stamp": stamp, "sha256": content, "at": _time.time()}
                changed = True
        digest.update(f"{case.case_id}\0{content}\n".encode())
    if cache is not None and changed:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            tmp.replace(cache)
    return "sha256:" + digest.hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def evaluate_run(
    task: str,
    split: str,
    pred: str | os.PathLike[str],
    *,
    workspace: Workspace,
    run_name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: str | Store | None = None,
    force: bool = False,
    entry: str | None = None,
    image_digest: str | None = None,
    data_root: str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    on_case: Callable[[CaseOutcome, int, int], None] | None = None,
    case_errors: Mapping[str, str] | None = None,
    memory_mb: int | None = None,
    time_limit_s: float | None = 600.0,
    on_wait: Callable[[str], None] | None = None,
    entry_manifest: Mapping[str, Any] | None = None,
    only_cases: Sequence[str] | None = None,
    dataset_errors: Mapping[str, str] | None = None,
    unsafe_cases: Iterable[str] = (),
) -> EvaluationResult:
    """Score a folder of predictions against a split and store every number.

    Parameters
    ----------
    task
        Task name from ``datasets.yaml``.
    split
        A split name understood by :func:`evaluator.datasets.splits.resolve_split` (``test``,
        ``fold0`` ...), or ``all``: every case that has a reference.
    pred
        Predictions folder (3D) or JSON file / folder (ChestXDet); layouts in the module doc.
    workspace
        Holds the data, the default store and the run folders.
    run_name
        Names the run in the store; default ``<task>-<split>-<pred folder name>``. The same
        name resumes the run.
    out
        Where ``results.csv`` and ``summary.json`` go; default ``<workspace>/runs/<run name>``.
    workers
        Scoring worker processes; default: one per CPU (at most one per case). Scoring always
        runs in worker processes under `memory_mb` and `time_limit_s`, never in this process.
    scheduler
        Address of a Dask distributed scheduler (``tcp://host:8786``); overrides ``workers``.
    store
        A SQLAlchemy URL or an open :class:`Store`; default ``CCBENCH_STORE`` or the workspace.
    force
        Score every case again even when the run is finished (its rows are replaced).
    entry, image_digest
        Provenance of the predictions (the container runner passes them).
    data_root
        Overrides the task's data root.
    registry
        Task registry; default :func:`load_registry`.
    on_case
        Called after each stored case with ``(outcome, done, total)`` (progress display).
    case_errors
        Case id -> why the submitted container produced nothing for it (the container runner
        passes these); such a case without a prediction is recorded with the error class
        ``container`` and that reason instead of ``missing``, and scored with worst values.
    memory_mb
        Address-space cap of each scoring worker, MiB [default: three quarters of the machine's
        memory shared by the workers, 2-16 GiB]. A case that exceeds it is recorded as
        ``scoring_limit`` and the other cases go on.
    time_limit_s
        Wall-clock limit per case for scoring, seconds (``scoring_limit`` beyond it); None for
        no limit.
    on_wait
        Called once with a message when another process is scoring the same run: this call
        waits for it, then resumes (usually finding nothing left to score).
    entry_manifest
        The entry's manifest (team, image, interface, submitted ...), stored with the entry as
        its provenance (the container runner passes it).
    only_cases
        Score only these cases of the split (``ccbench preflight``).
    dataset_errors
        Case id -> why its data could not be given to the container (the container runner
        passes these): recorded as ``dataset`` errors, not scored for any entry.
    unsafe_cases
        Cases of ``case_errors`` whose output was a link or a special file (class ``unsafe``).

    Returns
    -------
    EvaluationResult

    Raises
    ------
    DatasetNotFoundError, InvalidPredictionError, StoreError
        For problems of the data, the predictions folder as a whole, or the store; a bad
        prediction of one case is never raised but recorded.
    """
    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.splits import case_set_id, resolve_split, split_id

    reg = registry or load_registry()
    spec = reg.task(task)
    profile = reg.profile(spec)
    plan = make_plan(spec, profile)
    pred_path = Path(pred).expanduser().absolute()
    root = None if data_root is None else Path(data_root)
    dataset = open_dataset(spec, workspace=workspace, data_root=root, registry=reg)
    case_ids = resolve_split(spec, split, workspace=workspace, data_root=root, registry=reg)
    if split == "all":  # every case that has a reference
        case_ids = [c for c in case_ids if _has_reference(dataset.case(c))]
    if only_cases is not None:
        case_ids = [c for c in case_ids if c in set(only_cases)]
    if run_name is not None:
        check_name(run_name, what="run name")
    name = run_name or safe_name(f"{task}-{split}-{pred_path.name}")
    parameters = {
        "pred": str(pred_path),
        "profile": profile.model_dump(mode="json"),
        "data_root": None if root is None else str(root.absolute()),
        # what the run was scored on: leaderboards rank only runs on one case set
        "split_id": None if split == "all" else split_id(spec.split_path(workspace)),
        "case_set": case_set_id(case_ids),
        "n_cases": len(case_ids),
    }
    db = store if isinstance(store, Store) else Store.open(store, workspace=workspace)
    if entry is not None and entry_manifest is not None:
        db.ensure_entry(
            entry,
            image=entry_manifest.get("image"),
            image_digest=image_digest or entry_manifest.get("image_digest"),
            manifest=entry_manifest,
        )
    run = db.get_or_create_run(
        name=name,
        task=task,
        split=split,
        parameters=parameters,
        entry=entry,
        image_digest=image_digest,
    )
    with db.claim_run(run.id, on_wait=on_wait):
        run = db.get_run(run.id)  # another process may have finished it while we waited
        if force:
            db.reset_run(run.id)
        done = db.completed_cases(run.id)
        finished = run.status == "finished" and not force
        todo = [] if finished else [c for c in case_ids if c not in done]
        try:
            if todo:
                jobs = _jobs(
                    spec, plan, dataset, pred_path, todo, case_errors, dataset_errors,
                    set(unsafe_cases),
                )  # fmt: skip
                if not done and case_errors is None:
                    _refuse_empty_folder(spec, jobs, pred_path)
                fingerprint = _fingerprint(
                    (dataset.case(c) for c in case_ids),
                    cache=workspace.root / "cache" / "sha256.json",
                )
                db.update_run(run.id, dataset_fingerprint=fingerprint)
                if scheduler:
                    outcomes = _outcomes_dask(jobs, scheduler)
                else:
                    n = min(workers if workers is not None else os.cpu_count() or 1, len(jobs))
                    limits = WorkerLimits(
                        memory_mb=memory_mb or default_memory_mb(n), time_s=time_limit_s
                    )
                    outcomes = _outcomes_local(jobs, n, limits=limits)
                for i, outcome in enumerate(outcomes, start=1):
                    db.record_case(
                        run.id,
                        outcome.case_id,
                        outcome.rows,
                        error=outcome.error,
                        components=outcome.components,
                        seconds=outcome.seconds,
                    )
                    if on_case is not None:
                        on_case(outcome, i, len(jobs))
            if todo or run.status != "finished":
                aggregates = _aggregates(db, run.id, plan)
                if plan.instance_metrics:
                    rejected = db.errors_frame(run_ids=[run.id])
                    rejected = set(rejected.loc[rejected["error_class"] != "empty", "case_id"])
                    jobs = _jobs(
                        spec, plan, dataset, pred_path, case_ids, case_errors, dataset_errors,
                        set(unsafe_cases),
                    )  # fmt: skip
                    aggregates += _coco_aggregates(plan, jobs, rejected)
                db.finish_run(run.id, aggregates=aggregates)
        except BaseException:
            # never left "running": the cases stored so far stay, the same command resumes
            db.set_status(run.id, "failed")
            raise
    run = db.get_run(run.id)
    out_dir = Path(out) if out is not None else workspace.runs / name
    summary, table = summarize_run(db, run, plan, profile, case_ids=case_ids)
    summary["scored_now"], summary["skipped"] = len(todo), len(case_ids) - len(todo)
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "results.csv", index=False)
    (out_dir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return EvaluationResult(
        run=run,
        summary=summary,
        out=out_dir,
        scored=len(todo),
        skipped=len(case_ids) - len(todo),
        store_url=db.url,
        results=table,
    )


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------


def _aggregates(db: Store, run_id: int, plan: ScoringPlan) -> list[ResultRow]:
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


def _coco_aggregates(
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
        ]
    result = coco_mask_ap(gt, preds, categories=dict(plan.labels), image_sizes=sizes)
    means = {"coco_ap": result.ap, "coco_ap50": result.ap50, "coco_ap75": result.ap75}
    rows = [ResultRow(0, m, float(means[m])) for m in plan.instance_metrics]
    for label, values in result.per_class.items():
        rows += [ResultRow(int(label), m, float(values[m])) for m in plan.instance_metrics]
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


def _jsonable(value: Any) -> Any:
    """NaN -> null and ±inf -> "inf"/"-inf", so summary.json is strict JSON."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


# --------------------------------------------------------------------------------------------
# degraded predictions (demo entries of different quality)
# --------------------------------------------------------------------------------------------


def _degrade_mask(mask: np.ndarray, rng: np.random.Generator, quality: float) -> np.ndarray:
    """Drop, erode or dilate each connected component of a boolean mask."""
    import cc3d
    from scipy import ndimage

    components = cc3d.connected_components(mask.astype(np.uint8))
    out = np.zeros_like(mask, dtype=bool)
    for index in range(1, int(components.max()) + 1):
        comp = components == index
        draw = rng.random()
        if draw < (1.0 - quality) * 0.5:
            continue  # dropped lesion / organ part: a false negative component
        if draw < 1.0 - quality:
            comp = (
                ndimage.binary_erosion(comp)
                if rng.random() < 0.5
                else ndimage.binary_dilation(comp)
            )
        out |= comp
    return out


def _false_positive_blob(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    centre = [int(rng.integers(2, max(s - 2, 3))) for s in shape]
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    dist = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return np.asarray(dist <= 4)


def write_degraded_predictions(
    task: str,
    split: str,
    out: str | os.PathLike[str],
    *,
    workspace: Workspace,
    seed: int = 0,
    quality: float = 0.8,
    data_root: str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
) -> Path:
    """Write predictions made by degrading a split's references (demo and test entries).

    Each reference component is, independently, dropped with probability ``(1 - quality) / 2``,
    else eroded or dilated by one voxel with probability ``(1 - quality) / 2``; with probability
    ``1 - quality`` a small false-positive blob is added per case. ``quality=1`` copies the
    references.

    Parameters
    ----------
    task, split
        As for :func:`evaluate_run`.
    out
        Folder; 3D tasks get ``<out>/<case id>.nii.gz`` on the reference grid, ChestXDet gets
        ``<out>/predictions.json`` in the COCO results format (``image_id`` = case id).
    workspace, data_root, registry
        Where the data is.
    seed
        Same seed, same files (each case uses ``(seed, crc32(case id))``).
    quality
        In [0, 1]; lower is worse.

    Returns
    -------
    Path
        ``out``.
    """
    import zlib

    import SimpleITK as sitk

    from evaluator.datasets.base import label_array, open_dataset
    from evaluator.datasets.splits import resolve_split

    if not 0.0 <= quality <= 1.0:
        raise CCBenchError(f"quality must be in [0, 1], got {quality}")
    reg = registry or load_registry()
    spec = reg.task(task)
    root = None if data_root is None else Path(data_root)
    dataset = open_dataset(spec, workspace=workspace, data_root=root, registry=reg)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    coco: list[dict[str, Any]] = []
    for cid in resolve_split(spec, split, workspace=workspace, data_root=root, registry=reg):
        rng = np.random.default_rng([seed, zlib.crc32(cid.encode())])
        case = dataset.case(cid)
        if spec.dims == 2:
            from pycocotools import mask as mask_utils

            for inst in case.read_instances():
                mask = _degrade_mask(inst.mask, rng, quality)
                if mask.any():
                    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                    rle["counts"] = rle["counts"].decode("ascii")
                    score = float(np.clip(quality + rng.normal(0, 0.1), 0.01, 1.0))
                    coco.append(
                        {
                            "image_id": cid,
                            "category_id": inst.class_id,
                            "segmentation": rle,
                            "score": score,
                        }
                    )
            continue
        ref_img = case.read_label()
        ref = label_array(ref_img, labels=spec.labels, what=f"reference {cid}")
        pred = np.zeros_like(ref)
        for label in spec.labels:
            pred[_degrade_mask(ref == label, rng, quality)] = label
        if rng.random() < 1.0 - quality:
            pred[_false_positive_blob(ref.shape, rng) & (pred == 0)] = min(spec.labels)
        img = sitk.GetImageFromArray(pred)
        img.CopyInformation(ref_img)
        sitk.WriteImage(img, str(out_dir / f"{cid}.nii.gz"))
    if spec.dims == 2:
        (out_dir / "predictions.json").write_text(json.dumps(coco))
    return out_dir
