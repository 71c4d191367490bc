"""Finding a run's predictions: files matched to case ids without following links; jobs.

See :mod:`evaluator.evaluate` for the layouts.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.datasets.registry import TaskSpec
from evaluator.errors import ImageReadError, InvalidPredictionError
from evaluator.ingest import ACCEPTED_FORMATS, RejectedPrediction, accepted_suffix
from evaluator.scoring import CaseJob, ScoringPlan

if TYPE_CHECKING:
    from evaluator.datasets.base import DatasetAdapter

__all__ = ["IMAGE_EXTENSIONS", "case_jobs", "find_predictions", "refuse_empty_folder"]

#: File endings of prediction images, tried in this order (the ingestion's allow-list).
IMAGE_EXTENSIONS: tuple[str, ...] = tuple(ACCEPTED_FORMATS)

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


#: Runs an uncompressed RLE may have (a 2048 x 2048 mask has at most 4,194,305).
_MAX_RLE_RUNS = 2048 * 2048 + 1


def _compress_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    """Uncompressed COCO RLE (``counts`` a list of run lengths) as compressed RLE.

    The runs must be non-negative integers that add up to height x width (ValueError else).

    Examples
    --------
    >>> _compress_rle({"size": [2, 2], "counts": [2, 2]})["counts"]
    '22'
    """
    from pycocotools import mask as mask_utils

    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if len(counts) > min(height * width + 1, _MAX_RLE_RUNS):
        raise ValueError(
            f"uncompressed RLE with {len(counts)} runs (at most one per pixel, {_MAX_RLE_RUNS})"
        )
    if not all(type(v) is int and v >= 0 for v in counts):
        raise ValueError("uncompressed RLE counts must be non-negative integers")
    runs = list(counts)
    if sum(runs) != height * width:
        raise ValueError(f"uncompressed RLE covers {sum(runs)} pixels, not {height} x {width}")
    out = mask_utils.frPyObjects({"size": [height, width], "counts": runs}, height, width)
    return {"size": [height, width], "counts": out["counts"].decode("ascii")}


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
        if isinstance(rle["counts"], list):
            rle = _compress_rle(rle)
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


def case_jobs(
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
    if task.instances:
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


def refuse_empty_folder(task: TaskSpec, jobs: Sequence[CaseJob], pred: Path) -> None:
    """A folder in which no case has a prediction is a wrong ``--pred``, not an entry."""
    if any(j.prediction is not None or j.preset_error or j.instances is not None for j in jobs):
        return
    example = jobs[0].case.case_id if jobs else "CASE"
    if task.instances:
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
