"""Synthetic datasets in the real on-disk layouts (``ccbench data phantoms``).

One module per task writes cases exactly as the real dataset stores them (see
``docs/architecture.md``, "On-disk layouts"), so the same adapters read phantoms and real data:

* :mod:`~evaluator.datasets.phantoms.autopet`: whole-body PET/CT with 0 to 70 lesions per case;
* :mod:`~evaluator.datasets.phantoms.hecktor`: head-and-neck PET/CT, primary tumour and nodes,
  PET on its own coarser grid;
* :mod:`~evaluator.datasets.phantoms.btcv`: abdominal CT with the 13 BTCV organ labels;
* :mod:`~evaluator.datasets.phantoms.chestxdet`: 1024x1024 chest X-rays with polygon instances.

Every case draws from its own generator (``SeedSequence(seed, spawn_key=(task, case))``), so the
same seed gives the same bytes, and case ``i`` does not depend on how many cases are written.
"""

from __future__ import annotations

import importlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from evaluator.choices import PhantomLayout
from evaluator.datasets.phantoms._anatomy import ORGAN_IDS, UPTAKE_ORGANS
from evaluator.datasets.phantoms._common import PhantomResult, TaskWriter, parse_size
from evaluator.errors import PhantomError
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

if TYPE_CHECKING:
    from evaluator.datasets.registry import Registry

__all__ = [
    "LAYOUTS",
    "MARKER",
    "NNUNET_LAYOUT",
    "ORGAN_IDS",
    "UPTAKE_ORGANS",
    "PhantomResult",
    "phantom_tasks",
    "phantom_writer",
    "write_phantoms",
]

#: File a phantom run leaves in its output folder (task, cases, size, seed); a later run into the
#: same folder replaces that run's files, and refuses to touch a folder without it.
MARKER = ".ccbench-phantom.json"


def phantom_tasks(registry: Registry | None = None) -> tuple[str, ...]:
    """Tasks ``ccbench data phantoms`` writes, in order: the ``phantom_of`` of datasets.yaml.

    Examples
    --------
    >>> phantom_tasks()
    ('autopet', 'hecktor', 'btcv', 'chestxdet')
    """
    from evaluator.datasets.registry import load_registry

    tasks = (registry or load_registry()).tasks.values()
    return tuple(dict.fromkeys(t.phantom_of for t in tasks if t.phantom_of))


def phantom_writer(task: str) -> TaskWriter:
    """The writer of one phantom task (accepts ``autopet`` or ``autopet-phantom``).

    Raises
    ------
    PhantomError
        For a task without a phantom generator.

    Examples
    --------
    >>> phantom_writer("btcv-phantom").default_cases
    8
    """
    name = task.removesuffix("-phantom")
    known = phantom_tasks()
    if name not in known:
        raise PhantomError(f"no phantom generator for task '{task}' (known: {', '.join(known)})")
    try:
        module = importlib.import_module(f"evaluator.datasets.phantoms.{name}")
    except ModuleNotFoundError:
        raise PhantomError(
            f"datasets.yaml declares a phantom of '{name}' but ccbench has no generator for it"
        ) from None
    writer: TaskWriter = module.WRITER
    return writer


#: What the nnU-Net raw layout puts at the top of a dataset folder.
NNUNET_LAYOUT = ("imagesTr", "labelsTr", "dataset.json", "splits_final.json")
#: Layouts ``ccbench data phantoms --layout`` writes (:data:`evaluator.choices.PhantomLayout`).
LAYOUTS: tuple[str, ...] = get_args(PhantomLayout)


def _clear_previous(out: Path, layout: Sequence[str]) -> None:
    """Remove what an earlier phantom run wrote to ``out`` (its ``layout`` entries only).

    Raises
    ------
    PhantomError
        When ``out`` holds the task's layout but no marker of a phantom run (real data, say).
    """
    present = [name for name in layout if (out / name).exists()]
    if not (out / MARKER).is_file():
        if present:
            raise PhantomError(
                f"{out} already holds {', '.join(present)} but was not written by "
                "`ccbench data phantoms`; choose an empty --out folder"
            )
        out.mkdir(parents=True, exist_ok=True)
        return
    for name in present:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    (out / MARKER).unlink()


def write_phantoms(
    task: str,
    *,
    workspace: Workspace,
    cases: int | None = None,
    size: str = "small",
    seed: int = 0,
    out: Path | None = None,
    progress: ProgressHook | None = None,
    layout: str = "native",
) -> PhantomResult:
    """Write a synthetic dataset for ``task`` in the task's real on-disk layout.

    Parameters
    ----------
    task
        ``autopet``, ``hecktor``, ``btcv`` or ``chestxdet`` (a ``-phantom`` suffix is accepted).
    workspace
        Workspace whose ``<task>-phantom`` root (from ``datasets.yaml``) is the default output.
    cases
        Number of cases; ``None``: the task's default (AutoPET 12, HECKTOR 10, BTCV 8,
        ChestXDet 16).
    size
        ``"small"`` (fast tests), ``"full"`` (real sizes, e.g. AutoPET 400x400x326) or voxels
        ``"XxYxZ"`` (``"WxH"`` for ChestXDet), x first as in SimpleITK's ``GetSize()``.
    seed
        Random seed; the same seed gives byte-identical files.
    out
        Output folder; default: the phantom task's data root. What an earlier phantom run wrote
        there (its layout entries, found through the :data:`MARKER` file) is replaced; other
        files are left alone.
    progress
        Called as ``progress(done, total, "")`` before the first case and after each one.
    layout
        ``native`` (the real dataset's layout) or ``nnunet``: the nnU-Net v2 raw layout
        (``imagesTr``, ``labelsTr``, ``dataset.json``) with the native index files (AutoPET's
        ``Metadata.csv``) beside it; default output: the root of the task's nnU-Net phantom task
        in datasets.yaml (``autopet-nnunet-phantom``).

    Returns
    -------
    PhantomResult
        Counts, geometry and time; see :func:`evaluator.console.print_phantom_summary`.

    Raises
    ------
    PhantomError
        For an unknown task, a bad size, a non-positive number of cases, or an output folder
        that holds the task's layout without a phantom marker (real data is never overwritten).
    """
    writer = phantom_writer(task)
    if layout not in LAYOUTS:
        raise PhantomError(f"unknown layout '{layout}' (known: {', '.join(LAYOUTS)})")
    n_cases = writer.default_cases if cases is None else int(cases)
    if n_cases < 1:
        raise PhantomError(f"phantom task {writer.task}: --cases must be at least 1, got {cases}")
    size_xyz, spacing = parse_size(size, writer)
    if layout == "nnunet":
        return _write_nnunet(writer, workspace, n_cases, size, seed, out, progress)
    if out is None:
        from evaluator.datasets.registry import load_registry

        out = load_registry().task(f"{writer.task}-phantom").data_root(workspace)
    out = Path(out)
    _clear_previous(out, writer.layout)
    start = time.perf_counter()
    infos = []
    for index in range(n_cases):
        if progress is not None:
            progress(index, n_cases, "")
        infos.append(writer.write_case(out, index, seed, size_xyz, spacing))
    if progress is not None:
        progress(n_cases, n_cases, "")
    writer.write_index(out, infos)
    marker = {"task": writer.task, "cases": n_cases, "size": list(size_xyz), "seed": seed}
    (out / MARKER).write_text(json.dumps(marker) + "\n")
    counts = [info.objects for info in infos]
    return PhantomResult(
        task=writer.task,
        out=out,
        cases=n_cases,
        objects=sum(counts),
        negatives=sum(1 for c in counts if c == 0),
        max_objects=max(counts),
        size=tuple(size_xyz),
        spacing=tuple(float(s) for s in reversed(spacing)),
        seconds=time.perf_counter() - start,
    )


def _write_nnunet(
    writer: TaskWriter,
    workspace: Workspace,
    cases: int,
    size: str,
    seed: int,
    out: Path | None,
    progress: ProgressHook | None,
) -> PhantomResult:
    """The phantom written natively to a scratch folder, then exported in nnU-Net's layout."""
    import dataclasses
    import tempfile

    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.nnunet import export_raw, nnunet_dataset_name
    from evaluator.datasets.registry import load_registry

    registry = load_registry()
    native = registry.task(f"{writer.task}-phantom")
    if native.dims != 3:
        raise PhantomError(f"phantom task {writer.task}: the nnU-Net layout is for 3D tasks")
    targets = [
        t
        for t in registry.tasks.values()
        if t.phantom_of == writer.task and t.phantom_layout == "nnunet"
    ]
    if out is None:
        if not targets:
            raise PhantomError(
                f"datasets.yaml has no nnU-Net phantom task of '{writer.task}' "
                "(adapter *nnunet, phantom_of): pass --out"
            )
        out = targets[0].data_root(workspace)
    out = Path(out)
    index_files = tuple(name for name in writer.layout if "." in name)
    _clear_previous(out, (*NNUNET_LAYOUT, *index_files))
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        result = write_phantoms(
            writer.task, workspace=workspace, cases=cases, size=size, seed=seed,
            out=Path(tmp), progress=progress,
        )  # fmt: skip
        dataset = open_dataset(native, workspace=workspace, data_root=Path(tmp))
        ids = dataset.case_ids()
        _, name = nnunet_dataset_name((targets[0] if targets else native).name)
        export_raw(native, [dataset.case(c) for c in ids], out, name=name)
        for index_file in index_files:
            if (Path(tmp) / index_file).is_file():
                shutil.copyfile(Path(tmp) / index_file, out / index_file)
    marker = {"task": writer.task, "cases": cases, "size": result.size, "seed": seed}
    (out / MARKER).write_text(json.dumps({**marker, "layout": "nnunet"}) + "\n")
    return dataclasses.replace(result, out=out)
