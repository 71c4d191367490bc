"""Cases, the dataset adapter protocol and :func:`open_dataset`.

Geometry contract (every adapter, every loader): images are :class:`SimpleITK.Image` objects as
read from disk (:mod:`evaluator.datasets.imageio`). Numpy arrays taken from them follow
``SimpleITK.GetArrayFromImage``, i.e. axis order ``(z, y, x)`` in 3D and ``(y, x)`` in 2D; the
grid itself is described by :mod:`evaluator.datasets.geometry`.

Listing a dataset (``case_ids()``, ``cases()``) only lists files and reads small tables; pixel data
is read when a loader (``Case.read_channel``, ``Case.read_label``, ``Case.read_instances``) is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import SimpleITK as sitk

from evaluator.datasets.annotations import Annotation, Instance, rasterise_polygon
from evaluator.datasets.imageio import read_image
from evaluator.datasets.registry import ADAPTERS, Registry, TaskSpec, load_registry
from evaluator.errors import DatasetNotFoundError, ImageReadError, InvalidLabelError, RegistryError
from evaluator.workspace import Workspace

__all__ = ["Case", "DatasetAdapter", "FolderAdapter", "open_dataset", "resolve_task"]


@dataclass(frozen=True)
class Case:
    """One case of a dataset: file paths and metadata; pixels are read only by the loaders.

    Attributes
    ----------
    case_id
        E.g. ``"PETCT_0af7ffe12a_0"``, ``"CHUM-001"``, ``"0001"``, ``"36199"``.
    channels
        Channel name (``TaskSpec.channels``) -> image file.
    label
        Label image (3D tasks) or the annotation list it comes from (ChestXDet); None if absent.
    metadata
        Diagnosis, sex, centre, subset, ... (used for stratification); plain JSON values.
    reference_channel
        When set, :meth:`read_channel` resamples every other channel onto this channel's grid
        with a 3rd-order B-spline (HECKTOR: PT onto CT).
    annotations
        Instances of a 2D case as stored (ChestXDet); None for label-image datasets.
    label_map
        Class name -> label value, used to turn ``annotations`` into masks.
    """

    case_id: str
    channels: Mapping[str, Path]
    label: Path | None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reference_channel: str | None = None
    annotations: tuple[Annotation, ...] | None = None
    label_map: Mapping[str, int] = field(default_factory=dict)

    def read_raw_channel(self, name: str) -> sitk.Image:
        """The channel image exactly as stored, without resampling."""
        if name not in self.channels:
            raise ImageReadError(
                f"case {self.case_id}: no channel '{name}' (channels: {', '.join(self.channels)})"
            )
        return read_image(self.channels[name])

    def read_channel(self, name: str) -> sitk.Image:
        """Read one channel; resampled onto ``reference_channel`` when that is set.

        The resampling is a 3rd-order B-spline (``sitk.sitkBSpline3``) with the identity
        transform in physical space; voxels outside the source image become 0. The result has
        pixel type float32 and the reference channel's size, spacing, origin and direction.
        """
        img = self.read_raw_channel(name)
        if self.reference_channel is None or name == self.reference_channel:
            return img
        ref = self.read_raw_channel(self.reference_channel)
        return sitk.Resample(
            sitk.Cast(img, sitk.sitkFloat32),
            ref,
            sitk.Transform(),
            sitk.sitkBSpline3,
            0.0,
            sitk.sitkFloat32,
        )

    def read_label(self) -> sitk.Image:
        """The integer label map (0 = background).

        For annotated 2D cases the instances are painted in file order onto the grid of the
        first channel (later instances overwrite earlier ones), as uint8.
        """
        if self.annotations is not None:
            ref = self.read_raw_channel(next(iter(self.channels)))
            height, width = ref.GetSize()[1], ref.GetSize()[0]
            arr = np.zeros((height, width), dtype=np.uint8)
            for inst in self._instances(height, width):
                arr[inst.mask] = inst.class_id
            out = sitk.GetImageFromArray(arr)
            out.CopyInformation(ref)
            return out
        if self.label is None:
            raise ImageReadError(f"case {self.case_id}: has no label file")
        return read_image(self.label)

    def read_instances(self) -> list[Instance]:
        """The instances of an annotated 2D case, masks on the first channel's grid.

        Raises
        ------
        ImageReadError
            When the case has no instance annotations (3D label-image datasets).
        InvalidLabelError
            When a class name is not in the task's label map.
        """
        if self.annotations is None:
            raise ImageReadError(
                f"case {self.case_id}: has no instance annotations (label image {self.label})"
            )
        ref = self.read_raw_channel(next(iter(self.channels)))
        return self._instances(ref.GetSize()[1], ref.GetSize()[0])

    def _instances(self, height: int, width: int) -> list[Instance]:
        out = []
        for ann in self.annotations or ():
            if ann.class_name not in self.label_map:
                raise InvalidLabelError(
                    f"{self.label} ({self.case_id}): class '{ann.class_name}' is not in the "
                    f"label map ({', '.join(self.label_map)})"
                )
            out.append(
                Instance(
                    class_id=self.label_map[ann.class_name],
                    class_name=ann.class_name,
                    box=ann.box,
                    polygon=ann.polygon,
                    mask=rasterise_polygon(ann.polygon, height=height, width=width),
                )
            )
        return out


@runtime_checkable
class DatasetAdapter(Protocol):
    """Reads one on-disk dataset format; lists cases cheaply and loads them lazily.

    Geometry contract: loaders return :class:`SimpleITK.Image` with spacing and origin in
    millimetres; arrays from them are ``(z, y, x)`` / ``(y, x)``; label images share size,
    spacing, origin and direction with every channel (HECKTOR PT after resampling onto CT).
    """

    task: TaskSpec
    root: Path

    def case_ids(self) -> list[str]:
        """Sorted case ids (file listing only)."""
        ...

    def case(self, case_id: str) -> Case:
        """One case by id."""
        ...

    def cases(self) -> Iterator[Case]:
        """Every case in ``case_ids()`` order."""
        ...


class FolderAdapter:
    """Shared part of the adapters: an index ``case_id -> Case`` built once from a listing.

    Subclasses implement :meth:`_scan`, returning the cases found under ``root``.
    """

    def __init__(self, task: TaskSpec, root: Path) -> None:
        self.task = task
        self.root = Path(root)

    def _scan(self) -> list[Case]:
        raise NotImplementedError

    @cached_property
    def _index(self) -> dict[str, Case]:
        return {c.case_id: c for c in sorted(self._scan(), key=lambda c: c.case_id)}

    def case_ids(self) -> list[str]:
        """Sorted case ids."""
        return list(self._index)

    def case(self, case_id: str) -> Case:
        """One case by id; :class:`DatasetNotFoundError` for an unknown id."""
        try:
            return self._index[case_id]
        except KeyError:
            raise DatasetNotFoundError(
                f"case '{case_id}' is not in task '{self.task.name}' at {self.root} "
                f"({len(self._index)} cases)"
            ) from None

    def cases(self) -> Iterator[Case]:
        """Every case, sorted by id."""
        yield from self._index.values()

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task.name!r}, root={str(self.root)!r})"


def resolve_task(task: str | TaskSpec, registry: Registry | None = None) -> TaskSpec:
    """A :class:`TaskSpec` from a name (looked up in ``registry`` or the default registry)."""
    if isinstance(task, TaskSpec):
        return task
    return (registry or load_registry()).task(task)


def open_dataset(
    task: str | TaskSpec,
    *,
    workspace: Workspace,
    data_root: Path | None = None,
    registry: Registry | None = None,
) -> DatasetAdapter:
    """The adapter of a task, reading from its data root.

    Parameters
    ----------
    task
        Task name from ``datasets.yaml`` or a :class:`TaskSpec`.
    workspace
        Resolves a relative ``root:``.
    data_root
        Overrides the task's root (``--data-root``).
    registry
        Registry to look the task up in; default: :func:`load_registry`.

    Raises
    ------
    DatasetNotFoundError
        When the root does not exist or holds no case; the message says what to do next.

    Examples
    --------
    >>> import tempfile
    >>> ws = Workspace(Path(tempfile.mkdtemp()))
    >>> open_dataset("btcv-phantom", workspace=ws)
    Traceback (most recent call last):
    ...
    evaluator.errors.DatasetNotFoundError: task 'btcv-phantom': no data at .../phantoms/btcv (folder does not exist); run `ccbench data phantoms --task btcv`
    """
    spec = resolve_task(task, registry)
    source: DatasetAdapter | None = None
    if spec.derived_from is not None:  # a view of another task's data (its root, --data-root)
        reg = registry or load_registry()
        source = open_dataset(
            reg.task(spec.derived_from), workspace=workspace, data_root=data_root, registry=reg
        )
        root = spec.data_root(workspace)  # the derived task's cache
    else:
        root = spec.data_root(workspace, data_root)
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"task '{spec.name}': no data at {root} (folder does not exist); "
                f"{spec.missing_data_hint()}"
            )
    try:
        module_name, class_name = ADAPTERS[spec.adapter].split(":")
        qualified = module_name if "." in module_name else f"evaluator.datasets.{module_name}"
        cls = getattr(importlib.import_module(qualified), class_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise RegistryError(
            f"adapter '{spec.adapter}' of task '{spec.name}' is '{ADAPTERS[spec.adapter]}' in "
            f"ADAPTERS (evaluator/datasets/registry.py), which cannot be loaded: {err}"
        ) from err
    adapter: DatasetAdapter = cls(spec, root) if source is None else cls(spec, root, source=source)
    if source is not None and not adapter.case_ids():
        raise DatasetNotFoundError(
            f"task '{spec.name}': no slice of task '{spec.derived_from}' at {source.root} is "
            f"kept (slices: {spec.slices.model_dump() if spec.slices else {}})"
        )
    if not adapter.case_ids():
        raise DatasetNotFoundError(
            f"task '{spec.name}': no cases found at {root} (expected the {spec.adapter} layout); "
            f"{spec.missing_data_hint()}"
        )
    return adapter
