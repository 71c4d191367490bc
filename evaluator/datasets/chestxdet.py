"""ChestXDet: chest X-rays (1024x1024 PNG) with 13 findings as instance polygons.

Layout, as published (Deepwise-AILab/ChestX-Det-Dataset)::

    <root>/train/<name>.png          8-bit grey, 1024 x 1024
    <root>/test/<name>.png
    <root>/ChestX_Det_train.json     annotation list of the official training set
    <root>/ChestX_Det_test.json      annotation list of the official test set

Each annotation list is a JSON list of
``{"file_name": "36199.png", "syms": ["Effusion", ...], "boxes": [[x1, y1, x2, y2], ...],
"polygons": [[[x, y], [x, y], ...], ...]}``: one class name, box and contour per instance, pixel
coordinates with x = column and y = row. **Case id**: the file name without ``.png``;
``metadata["subset"]`` is ``"train"`` or ``"test"`` (the official split). Class ids come from the
task's label map (``Atelectasis`` = 1 ... ``Pneumothorax`` = 13); polygons are rasterised with
pycocotools, one boolean mask per instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluator.datasets.annotations import Annotation
from evaluator.datasets.base import Case, FolderAdapter
from evaluator.datasets.imageio import read_json
from evaluator.errors import ImageReadError

__all__ = ["ANNOTATION_FILES", "ChestXDetAdapter", "parse_entry"]

#: Official subset -> annotation list file.
ANNOTATION_FILES = {"train": "ChestX_Det_train.json", "test": "ChestX_Det_test.json"}


def parse_entry(entry: Any) -> tuple[tuple[Annotation, ...], list[str]]:
    """Annotations of one entry of the annotation list, and what is malformed in it.

    Parameters
    ----------
    entry
        ``{"file_name", "syms", "boxes", "polygons"}``.

    Returns
    -------
    annotations, problems
        One :class:`Annotation` per class name; ``problems`` says when ``syms``, ``boxes`` and
        ``polygons`` differ in length or hold malformed coordinates (missing parts are empty).

    Examples
    --------
    >>> anns, problems = parse_entry({"file_name": "1.png", "syms": ["Mass"],
    ...     "boxes": [[1, 2, 5, 6]], "polygons": [[[1, 2], [5, 2], [5, 6]]]})
    >>> anns[0].class_name, anns[0].box, anns[0].polygon[1], problems
    ('Mass', (1.0, 2.0, 5.0, 6.0), (5.0, 2.0), [])
    """
    syms = list(entry.get("syms") or [])
    boxes = list(entry.get("boxes") or [])
    polygons = list(entry.get("polygons") or [])
    problems = []
    if not len(syms) == len(boxes) == len(polygons):
        problems.append(
            f"{len(syms)} class names (syms), {len(boxes)} boxes and {len(polygons)} polygons "
            "differ in number"
        )
    annotations = []
    for i, name in enumerate(syms):
        try:
            box = tuple(float(v) for v in boxes[i]) if i < len(boxes) else ()
            polygon = (
                tuple((float(p[0]), float(p[1])) for p in polygons[i]) if i < len(polygons) else ()
            )
        except (TypeError, ValueError, IndexError):
            problems.append(f"instance {i} ({name}): malformed box or polygon coordinates")
            box, polygon = (), ()
        annotations.append(Annotation(class_name=str(name), box=box, polygon=polygon))
    return tuple(annotations), problems


class ChestXDetAdapter(FolderAdapter):
    """ChestXDet PNG + JSON layout (see the module docstring).

    Examples
    --------
    >>> import json, tempfile
    >>> from evaluator.datasets.registry import load_registry
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "ChestX_Det_test.json").write_text(json.dumps(
    ...     [{"file_name": "36199.png", "syms": [], "boxes": [], "polygons": []}]))
    >>> case = ChestXDetAdapter(load_registry().task("chestxdet"), root).case("36199")
    >>> case.metadata["subset"], case.channels["XR"].parts[-2:]
    ('test', ('test', '36199.png'))
    """

    def _scan(self) -> list[Case]:
        label_map = {name: value for value, name in self.task.labels.items()}
        channel = self.task.channels[0]
        cases = []
        for subset, file_name in ANNOTATION_FILES.items():
            path = self.root / file_name
            if not path.is_file():
                continue
            entries = read_json(path, what="ChestXDet annotation list")
            if not isinstance(entries, list):
                raise ImageReadError(
                    f"ChestXDet annotation list {path}: expected a JSON list of entries"
                )
            for entry in entries:
                if not isinstance(entry, dict) or not entry.get("file_name"):
                    raise ImageReadError(
                        f"ChestXDet annotation list {path}: entry {entry!r} has no file_name"
                    )
                name = str(entry["file_name"])
                annotations, problems = parse_entry(entry)
                cases.append(
                    Case(
                        case_id=Path(name).stem,
                        channels={channel: self.root / subset / name},
                        label=path,
                        metadata={"subset": subset, "file_name": name, "problems": problems},
                        annotations=annotations,
                        label_map=label_map,
                    )
                )
        return cases
