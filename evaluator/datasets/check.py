"""``ccbench data check``: validate every case of a dataset and list each problem.

Per case:

* every channel file and the label file exist and decode (:func:`~evaluator.datasets.imageio.read_image`);
* images have the task's number of dimensions;
* every channel shares size, spacing, origin and direction with the label image (within
  ``tolerance`` mm / ``direction_tolerance``); a channel that the adapter resamples onto a
  reference channel (HECKTOR PT) is only decoded, since its own grid differs by design;
* label values are in the task's label map (:func:`~evaluator.datasets.labels.label_array`);
* annotated 2D cases (ChestXDet): every class name is in the label map, ``syms``/``boxes``/
  ``polygons`` agree in number, every polygon has at least three vertices, and every polygon
  vertex and box corner lies inside the image (``0 <= x <= width``, ``0 <= y <= height``).

A problem in one case never stops the check of the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import SimpleITK as sitk

from evaluator.datasets.base import Case, open_dataset, resolve_task
from evaluator.datasets.geometry import check_same_geometry
from evaluator.datasets.labels import label_array
from evaluator.datasets.registry import Registry, TaskSpec
from evaluator.errors import CCBenchError, DataCheckError
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

__all__ = ["CheckReport", "Problem", "check_case", "check_dataset"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one case.

    Attributes
    ----------
    case_id
        The case.
    file
        The file concerned (image, label or annotation list).
    message
        What is wrong, naming the file.
    """

    case_id: str
    file: str
    message: str


@dataclass
class CheckReport:
    """Result of :func:`check_dataset`.

    Attributes
    ----------
    task
        Task name.
    root
        Data root that was checked.
    n_cases
        Number of cases checked.
    problems
        Every problem found, in case order.
    """

    task: str
    root: Path
    n_cases: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    @property
    def bad_cases(self) -> list[str]:
        """Ids of the cases with at least one problem, sorted."""
        return sorted({p.case_id for p in self.problems})

    def raise_if_failed(self) -> None:
        """Raise :class:`DataCheckError` summarising the problems, if there are any."""
        if self.problems:
            first = self.problems[0].message
            raise DataCheckError(
                f"task '{self.task}' at {self.root}: {len(self.problems)} problem(s) in "
                f"{len(self.bad_cases)} of {self.n_cases} cases; first: {first}"
            )


def _check_annotations(case: Case, image: sitk.Image | None) -> Iterator[Problem]:
    source = str(case.label)
    name = case.metadata.get("file_name", case.case_id)
    for text in case.metadata.get("problems", ()):
        yield Problem(case.case_id, source, f"{source}: entry {name}: {text}")
    width, height = (image.GetSize()[0], image.GetSize()[1]) if image is not None else (None, None)
    for i, ann in enumerate(case.annotations or ()):
        where = f"{source}: entry {name}, instance {i} ({ann.class_name})"
        if ann.class_name not in case.label_map:
            yield Problem(case.case_id, source, f"{where}: class is not in the label map")
        if len(ann.polygon) < 3:
            yield Problem(
                case.case_id, source, f"{where}: polygon has {len(ann.polygon)} vertices (< 3)"
            )
        if width is None or height is None:
            continue
        points = list(ann.polygon)
        if len(ann.box) == 4:
            points += [(ann.box[0], ann.box[1]), (ann.box[2], ann.box[3])]
        outside = [(x, y) for x, y in points if not (0 <= x <= width and 0 <= y <= height)]
        if outside:
            x, y = outside[0]
            yield Problem(
                case.case_id,
                source,
                f"{where}: {len(outside)} polygon/box point(s) outside the {width}x{height} "
                f"image, e.g. ({x:g}, {y:g})",
            )


def check_case(
    case: Case,
    task: TaskSpec,
    *,
    tolerance: float = 1e-3,
    direction_tolerance: float = 1e-4,
) -> list[Problem]:
    """Every problem of one case (see the module docstring for the rules).

    Parameters
    ----------
    case
        The case; its files are read here.
    task
        Gives dimensions and the label map.
    tolerance
        Spacing and origin tolerance, millimetres.
    direction_tolerance
        Direction cosine tolerance.

    Returns
    -------
    list of Problem
        Empty when the case is fine.
    """
    problems: list[Problem] = []
    images: dict[str, sitk.Image] = {}
    for name, path in case.channels.items():
        try:
            img = case.read_raw_channel(name)
        except CCBenchError as err:
            problems.append(Problem(case.case_id, str(path), f"channel {name}: {err}"))
            continue
        if img.GetDimension() != task.dims:
            problems.append(
                Problem(
                    case.case_id,
                    str(path),
                    f"channel {name} {path}: {img.GetDimension()}D image, task "
                    f"'{task.name}' is {task.dims}D",
                )
            )
            continue
        images[name] = img
    if case.annotations is not None:
        problems += _check_annotations(case, next(iter(images.values()), None))
        return problems
    label_path = case.label
    label: sitk.Image | None = None
    if label_path is None:
        problems.append(Problem(case.case_id, "", f"case {case.case_id}: has no label file"))
    else:
        try:
            label = case.read_label()
            label_array(label, labels=task.labels, what=f"label {label_path}")
        except CCBenchError as err:
            problems.append(Problem(case.case_id, str(label_path), str(err)))
    reference = label if label is not None and label.GetDimension() == task.dims else None
    for name, img in images.items():
        if reference is None or (case.reference_channel not in (None, name)):
            continue
        try:
            check_same_geometry(
                img,
                reference,
                what=f"channel {name} {case.channels[name]}",
                reference=f"label {label_path}",
                tolerance=tolerance,
                direction_tolerance=direction_tolerance,
            )
        except CCBenchError as err:
            problems.append(Problem(case.case_id, str(case.channels[name]), str(err)))
    return problems


def check_dataset(
    task: str | TaskSpec,
    *,
    workspace: Workspace,
    data_root: Path | None = None,
    registry: Registry | None = None,
    tolerance: float = 1e-3,
    direction_tolerance: float = 1e-4,
    progress: ProgressHook | None = None,
) -> CheckReport:
    """Check every case of a task's dataset.

    Parameters
    ----------
    task
        Task name or spec.
    workspace, data_root, registry
        As for :func:`~evaluator.datasets.base.open_dataset`.
    tolerance, direction_tolerance
        Geometry tolerances (millimetres; cosine units).
    progress
        Called as ``progress(done, total, case_id)`` after each case.

    Returns
    -------
    CheckReport
        ``report.ok`` is False when any problem was found.

    Raises
    ------
    DatasetNotFoundError
        When the data root is missing or holds no case (nothing to check).
    """
    spec = resolve_task(task, registry)
    adapter = open_dataset(spec, workspace=workspace, data_root=data_root, registry=registry)
    ids = adapter.case_ids()
    report = CheckReport(task=spec.name, root=adapter.root, n_cases=len(ids))

    for done, case in enumerate(adapter.cases(), start=1):
        report.problems.extend(
            check_case(case, spec, tolerance=tolerance, direction_tolerance=direction_tolerance)
        )
        if progress is not None:
            progress(done, len(ids), case.case_id)
    return report
