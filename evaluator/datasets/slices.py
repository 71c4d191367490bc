"""A 2D task derived from a 3D one: its volumes cut into axial slices, as APEX does with AutoPET.

APEX (Jaus et al., MICCAI 2024, section 3) trains and scores 2D models on AutoPET: each volume is
sliced axially, CT and PET are stacked channel-wise as one 2D image with the third channel left
empty, and patients without lesions are left out. A task with ``adapter: axial_slices`` and
``derived_from: <3D task>`` in ``datasets.yaml`` is that view of any dataset of the source task
(its data root, ``--data-root`` and split apply), with the choices of its ``slices:`` field
(:class:`~evaluator.datasets.registry.SliceSpec`):

* ``exclude_negative_patients`` (APEX: true): a patient whose reference is empty gives no slice;
* ``slices: lesion`` keeps the slices with foreground plus ``negative_share`` of each patient's
  other slices, drawn with ``seed`` and the patient id (so the draw of one patient does not
  depend on the others); ``slices: all`` keeps every slice.

A case is one slice, ``<patient>_z<index>`` (``index`` the axial voxel index, four digits), with
metadata ``patient`` and ``slice`` besides the patient's own. Its channels are the source
channels as 2D images (``CT``, ``PET``: the same values, HU and SUV, on the slice's grid) and the
stack ``CTPET``: one 2D image of three float32 components (CT, PET, zeros), APEX's input. The
label is the slice of the reference. Spacing and origin are the volume's in-plane ones (mm).

Nothing is copied until asked: listing the cases reads each reference once and keeps the slice
index in the cache folder (``root`` of the task: ``<workspace>/derived/<task>/<source key>/``,
one per source folder and slice settings; rebuilt when a source label file changes); a
patient's slice files are written there (as ``.mha``) the first time one of its cases is used
(:meth:`AxialSliceAdapter.case`), atomically, so parallel readers never see half a patient, and
written again when one of the patient's source files (label, CT, PET) changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from evaluator.datasets.base import Case, DatasetAdapter
from evaluator.datasets.registry import SliceSpec, TaskSpec
from evaluator.errors import DatasetNotFoundError, ImageReadError

__all__ = ["STACK_CHANNEL", "AxialSliceAdapter", "choose_slices", "slice_id", "slice_patient"]

#: The channel holding APEX's stacked input (CT, PET, an empty third component).
STACK_CHANNEL = "CTPET"
#: A slice case id: the patient, ``_z`` and the axial index (at least four digits).
_SLICE_ID = re.compile(r"(.+)_z(\d{4,})")
#: Version of the cache layout (part of the cache key).
_CACHE_VERSION = 1


def slice_id(patient: str, z: int) -> str:
    """The case id of slice ``z`` of a patient.

    Examples
    --------
    >>> slice_id("PETCT_0af7ffe12a_0", 57)
    'PETCT_0af7ffe12a_0_z0057'
    """
    return f"{patient}_z{z:04d}"


def slice_patient(case_id: str) -> str | None:
    """The patient of a slice case id (:func:`slice_id`), or None when it names no slice.

    Examples
    --------
    >>> slice_patient("PETCT_0af7ffe12a_0_z0057")
    'PETCT_0af7ffe12a_0'
    >>> slice_patient("PETCT_0af7ffe12a_0") is None
    True
    """
    found = _SLICE_ID.fullmatch(case_id)
    return found.group(1) if found else None


def choose_slices(foreground: npt.ArrayLike, spec: SliceSpec, *, patient: str) -> list[int]:
    """The axial indices kept of one patient, given which slices hold foreground.

    Parameters
    ----------
    foreground
        Boolean per axial slice (``z``): whether the reference has foreground there.
    spec
        The task's slice choices.
    patient
        The patient id (seeds that patient's draw of slices without foreground).

    Examples
    --------
    >>> from evaluator.datasets.registry import SliceSpec
    >>> fg = np.array([False, True, True, False, False, False])
    >>> choose_slices(fg, SliceSpec(), patient="p")
    [1, 2]
    >>> len(choose_slices(fg, SliceSpec(negative_share=0.5), patient="p"))
    4
    >>> choose_slices(np.zeros(3, bool), SliceSpec(), patient="p")
    []
    >>> choose_slices(np.zeros(3, bool), SliceSpec(exclude_negative_patients=False,
    ...                                            slices="all"), patient="p")
    [0, 1, 2]
    """
    fg = np.asarray(foreground, dtype=bool)
    if spec.exclude_negative_patients and not fg.any():
        return []
    if spec.slices == "all":
        return list(range(fg.size))
    negatives = np.flatnonzero(~fg)
    n = round(spec.negative_share * negatives.size)
    rng = np.random.default_rng([spec.seed, zlib.crc32(patient.encode())])
    drawn = rng.choice(negatives, size=n, replace=False) if n else np.array([], dtype=int)
    return sorted(int(z) for z in (*np.flatnonzero(fg), *drawn))


def _slice(img: sitk.Image, z: int) -> sitk.Image:
    """Axial slice ``z`` of a 3D image as a 2D image with the in-plane geometry."""
    out = sitk.Extract(
        img, [img.GetSize()[0], img.GetSize()[1], 0], [0, 0, z],
        sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX,
    )  # fmt: skip
    for key in out.GetMetaDataKeys():
        out.EraseMetaData(key)
    return out


class AxialSliceAdapter:
    """The cases of a derived 2D task (module docstring); ``root`` is the cache folder.

    Parameters
    ----------
    task
        The derived task (``adapter: axial_slices``).
    root
        The task's cache folder (``TaskSpec.data_root``); a subfolder per source and settings.
    source
        The adapter of the source task's dataset.
    """

    def __init__(self, task: TaskSpec, root: Path, *, source: DatasetAdapter) -> None:
        self.task = task
        self.source = source
        self.spec = task.slices or SliceSpec()
        key = json.dumps(
            [_CACHE_VERSION, str(Path(source.root).absolute()), self.spec.model_dump()],
            sort_keys=True,
        )
        self.root = Path(root) / hashlib.sha256(key.encode()).hexdigest()[:12]
        self._checked: set[str] = set()  # patients whose files match their stamp

    # -- the index: which slices exist (reads each reference once, then cached) --------------

    def _fingerprint(self) -> list[list[Any]]:
        """Each source case's id and its label file's :func:`_file_state`."""
        return [[case.case_id, *_file_state(case.label)] for case in self.source.cases()]

    @cached_property
    def _index(self) -> dict[str, dict[str, Any]]:
        """Case id -> ``{"patient", "slice"}``, from the cache when the source is unchanged."""
        fingerprint = self._fingerprint()
        path = self.root / "index.json"
        try:
            cached = json.loads(path.read_text())
            if cached.get("fingerprint") == fingerprint:
                return {str(k): dict(v) for k, v in cached["slices"].items()}
        except (OSError, ValueError, KeyError, AttributeError):
            pass
        slices: dict[str, dict[str, Any]] = {}
        for case in self.source.cases():
            if case.label is None:
                continue  # no reference: nothing to score a slice against
            ref = sitk.GetArrayFromImage(case.read_label())
            if ref.ndim != 3:
                raise ImageReadError(
                    f"case {case.case_id}: reference {case.label} is not a 3D image "
                    f"({ref.ndim}D); task '{self.task.name}' slices 3D volumes"
                )
            foreground = ref.reshape(ref.shape[0], -1).any(axis=1)
            for z in choose_slices(foreground, self.spec, patient=case.case_id):
                slices[slice_id(case.case_id, z)] = {"patient": case.case_id, "slice": z}
        slices = dict(sorted(slices.items()))  # by id, here and when read from the cache
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps({"fingerprint": fingerprint, "slices": slices}))
        return slices

    def case_ids(self) -> list[str]:
        """Sorted slice ids (reads the references the first time, then the cached index)."""
        return list(self._index)

    def __len__(self) -> int:
        return len(self._index)

    # -- cases: a patient's slice files are written when one of them is first used -----------

    def _folder(self, patient: str) -> Path:
        return self.root / "slices" / patient

    def _case(self, case_id: str) -> Case:
        entry = self._index[case_id]
        patient, z = str(entry["patient"]), int(entry["slice"])
        folder = self._folder(patient)
        channels = {
            ch: folder / f"z{z:04d}_{ch}.mha" for ch in (*self.task.channels, STACK_CHANNEL)
        }
        return Case(
            case_id=case_id,
            channels=channels,
            label=folder / f"z{z:04d}_label.mha",
            metadata={**dict(self.source.case(patient).metadata), "patient": patient, "slice": z},
        )

    @cached_property
    def _slices_of(self) -> dict[str, list[str]]:
        """Patient -> the ids of its kept slices, in index order."""
        out: dict[str, list[str]] = {}
        for cid, entry in self._index.items():
            out.setdefault(str(entry["patient"]), []).append(cid)
        return out

    def _stamp(self, patient: str) -> str:
        """What a patient's slice files were made from: its slice ids and source files (path,
        size, modification time); a change to any of them makes the files be written again."""
        source = self.source.case(patient)
        files = [*(source.channels[ch] for ch in self.task.channels), source.label]
        stats = [_file_state(path) for path in files]
        return json.dumps({"slices": self._slices_of[patient], "files": stats}, sort_keys=True)

    def _materialise(self, patient: str) -> None:
        """Write every kept slice of ``patient``, once per stamp (checked once per adapter).

        The check and the write hold the patient's lock file (``locks/<patient>.lock``,
        ``fcntl.flock``), so parallel processes write a patient once and never move a folder
        another one is writing; the new folder replaces a stale one by renames only.
        """
        if patient in self._checked:
            return
        folder = self._folder(patient)
        stamp = self._stamp(patient)
        if _read_text(folder / ".complete") != stamp:
            folder.parent.mkdir(parents=True, exist_ok=True)
            (self.root / "locks").mkdir(exist_ok=True)
            with open(self.root / "locks" / f"{patient}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
                if _read_text(folder / ".complete") != stamp:  # not written while we waited
                    self._write_patient(patient, folder, stamp)
        self._checked.add(patient)

    def _write_patient(self, patient: str, folder: Path, stamp: str) -> None:
        """Write the patient's slices into a new folder and put it in place of ``folder``."""
        source = self.source.case(patient)
        volumes = {ch: source.read_channel(ch) for ch in self.task.channels}
        volumes["label"] = source.read_label()
        tmp = Path(tempfile.mkdtemp(prefix=f".{patient}.", dir=folder.parent))
        try:
            for cid in self._slices_of[patient]:
                z = int(self._index[cid]["slice"])
                planes = {name: _slice(vol, z) for name, vol in volumes.items()}
                for name, plane in planes.items():
                    sitk.WriteImage(plane, str(tmp / f"z{z:04d}_{name}.mha"))
                stack = [sitk.Cast(planes[ch], sitk.sitkFloat32) for ch in self.task.channels]
                while len(stack) < 3:  # APEX: the third channel is left empty
                    stack.append(sitk.Image(stack[0].GetSize(), sitk.sitkFloat32))
                    stack[-1].CopyInformation(stack[0])
                sitk.WriteImage(sitk.Compose(stack), str(tmp / f"z{z:04d}_{STACK_CHANNEL}.mha"))
            (tmp / ".complete").write_text(stamp)
            for path in tmp.iterdir():
                path.chmod(0o644)
            tmp.chmod(0o755)
            if folder.exists():  # stale files of an older source: out of the way in one step
                stale = Path(tempfile.mkdtemp(prefix=f".{patient}.stale.", dir=folder.parent))
                os.rename(folder, stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def case(self, case_id: str) -> Case:
        """One slice by id, its files written first when needed.

        Raises
        ------
        DatasetNotFoundError
            An unknown id.
        """
        if case_id not in self._index:
            raise DatasetNotFoundError(
                f"case '{case_id}' is not in task '{self.task.name}' (slices of "
                f"{self.source.task.name} at {self.source.root}; {len(self._index)} slices)"
            )
        self._materialise(str(self._index[case_id]["patient"]))
        return self._case(case_id)

    def cases(self) -> Iterator[Case]:
        """Every slice, sorted by id (writes every patient's slices)."""
        for case_id in self._index:
            yield self.case(case_id)

    def patients(self) -> dict[str, list[str]]:
        """Patient id -> the ids of its slices (no file is written)."""
        return {patient: list(ids) for patient, ids in self._slices_of.items()}

    def __repr__(self) -> str:
        return f"AxialSliceAdapter(task={self.task.name!r}, source={self.source!r})"


def _file_state(path: str | os.PathLike[str] | None) -> list[Any]:
    """``[path, size, modification time (ns)]`` of a file; ``-1`` for both when it is absent."""
    stat = Path(path).stat() if path is not None and Path(path).is_file() else None
    return [str(path), stat.st_size if stat else -1, stat.st_mtime_ns if stat else -1]


def _read_text(path: Path) -> str | None:
    """The file's text, or None when it cannot be read."""
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
