"""Synthetic datasets in the real on-disk layouts (``ccbench data phantoms``).

One module per task writes cases exactly as the real dataset stores them (see
``docs/architecture.md``, "On-disk layouts"), so the same adapters read phantoms and real data:

* :mod:`~evaluator.datasets.phantoms.autopet`: whole-body PET/CT with 0 to 65 lesions per case;
* :mod:`~evaluator.datasets.phantoms.hecktor`: head-and-neck PET/CT, primary tumour and nodes,
  PET on its own coarser grid;
* :mod:`~evaluator.datasets.phantoms.btcv`: abdominal CT with the 13 BTCV organ labels;
* :mod:`~evaluator.datasets.phantoms.chestxdet`: 1024x1024 chest X-rays with polygon instances.

Every case draws from its own generator (``SeedSequence(seed, spawn_key=(task, case))``), so the
same seed gives the same bytes, and case ``i`` does not depend on how many cases are written.
"""

from __future__ import annotations

import time
from pathlib import Path

from evaluator.datasets.phantoms._common import PhantomResult, TaskWriter, parse_size
from evaluator.errors import CCBenchError
from evaluator.workspace import Workspace

__all__ = ["PHANTOM_TASKS", "PhantomResult", "phantom_writer", "write_phantoms"]

#: Tasks ``ccbench data phantoms`` can write, in the order it writes them.
PHANTOM_TASKS: tuple[str, ...] = ("autopet", "hecktor", "btcv", "chestxdet")


def phantom_writer(task: str) -> TaskWriter:
    """The writer of one phantom task (accepts ``autopet`` or ``autopet-phantom``).

    Raises
    ------
    CCBenchError
        For a task without a phantom generator.

    Examples
    --------
    >>> phantom_writer("btcv-phantom").default_cases
    8
    """
    name = task.removesuffix("-phantom")
    if name == "autopet":
        from evaluator.datasets.phantoms.autopet import WRITER as autopet

        return autopet
    if name == "hecktor":
        from evaluator.datasets.phantoms.hecktor import WRITER as hecktor

        return hecktor
    if name == "btcv":
        from evaluator.datasets.phantoms.btcv import WRITER as btcv

        return btcv
    if name == "chestxdet":
        from evaluator.datasets.phantoms.chestxdet import WRITER as chestxdet

        return chestxdet
    raise CCBenchError(
        f"no phantom generator for task '{task}' (known: {', '.join(PHANTOM_TASKS)})"
    )


def write_phantoms(
    task: str,
    *,
    workspace: Workspace,
    cases: int | None = None,
    size: str = "small",
    seed: int = 0,
    out: Path | None = None,
    progress: bool = True,
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
        Output folder; default: the phantom task's data root.
    progress
        Show a rich progress bar (on stderr) while writing.

    Returns
    -------
    PhantomResult
        Counts, geometry and time; see :func:`evaluator.reporting.print_phantom_summary`.

    Raises
    ------
    CCBenchError
        For an unknown task, a bad size or a non-positive number of cases.
    """
    writer = phantom_writer(task)
    n_cases = writer.default_cases if cases is None else int(cases)
    if n_cases < 1:
        raise CCBenchError(f"phantom task {writer.task}: --cases must be at least 1, got {cases}")
    size_xyz, spacing = parse_size(size, writer)
    if out is None:
        from evaluator.datasets.registry import load_registry

        out = load_registry().task(f"{writer.task}-phantom").data_root(workspace)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    infos = []
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True, disable=not progress) as bar:
        job = bar.add_task(f"phantoms: {writer.task}", total=n_cases)
        for index in range(n_cases):
            infos.append(writer.write_case(out, index, seed, size_xyz, spacing))
            bar.advance(job)
    writer.write_index(out, infos)
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
