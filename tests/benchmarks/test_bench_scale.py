"""Scoring throughput with 1 and 2 workers, a projection to 8 and 32, and a 1,000-case split.

Run with ``pytest tests/benchmarks/test_bench_scale.py --benchmark-only -s``. Two parts:

* **Workers.** 24 AutoPET-size phantom cases (``write_phantoms("autopet", size="full")``:
  400x400x326 voxels, 2 mm, and the degraded predictions of ``test_bench_evaluate.py``) scored by
  :func:`~evaluator.evaluate.evaluate_run` with 1 and 2 workers on the local pool (the default)
  and on ``scheduler="local"`` (a Dask ``LocalCluster`` started for each call, its start-up
  included). Kept in ``extra_info``: wall time (minimum over two rounds), cases per second, the
  mean per-case time inside a worker (read + validate + score), and the coordinator's CPU time
  per case (its share of the work that does not run in parallel: store writes, results).
  The projection for 8 and 32 workers assumes perfect scaling of the per-case time of one
  worker, bounded by I/O: by the coordinator's serial work per case and by storage that
  delivers :data:`STORAGE_MB_S` MB/s of case files. It is an assumption, not a measurement.
* **A 1,000-case split**, generated lazily at benchmark time in a temporary folder (never
  stored in the repository): ``CCBENCH_BENCH_CASES`` studies (default 1000) in AutoPET's layout,
  study ``i`` a copy of the reference and prediction files of phantom ``i mod 24`` (distinct
  files, each read and scored; copying is seconds, drawing 1,000 full-size phantoms with CT and
  PET would be hours and 170 GB). Scored end to end by ``evaluate_run`` on the default pool;
  ``extra_info`` holds the wall time and peak memory (RSS) of the coordinator, of the largest
  worker and of the whole process tree, sampled every 0.1 s with psutil.

Writing the 24 phantoms takes about 10 minutes on two cores; ``CCBENCH_BENCH_SCALE_DATA=DIR``
keeps them in ``DIR`` for the next run. With ``CCBENCH_BENCH_SCALE_REPORT=FILE`` the tables
replace the text between ``<!-- bench:scale:start -->`` and ``<!-- bench:scale:end -->`` in
``FILE`` (``docs/benchmarks-pipeline.md``), or are appended to it with the markers.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from evaluator.datasets.base import open_dataset
from evaluator.evaluate import evaluate_run
from evaluator.scoring import CaseOutcome
from evaluator.workspace import Workspace

#: Phantom cases of the workers benchmark.
PHANTOMS = 24
#: Assumed storage throughput of the projection, MB/s (a SATA SSD or a 2 Gbit/s network share).
STORAGE_MB_S = 200.0
#: Workers of the projection.
PROJECTED = (8, 32)
START, END = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"
TASK = "autopet-phantom"


@dataclass
class Phantoms:
    """The 24 phantoms: their workspace, predictions folder and case ids."""

    ws: Workspace
    pred: Path
    case_ids: list[str]


@dataclass
class Report:
    """Rows of the tables, filled by the tests, written at the end of the module."""

    workers: dict[tuple[str, int], dict[str, float]] = field(default_factory=dict)
    split: dict[str, float] = field(default_factory=dict)


def _only_when_benchmarking(request: pytest.FixtureRequest) -> None:
    options = request.config.getoption
    if options("benchmark_skip", default=False) and not options("benchmark_only", default=False):
        pytest.skip("benchmarks are skipped (run with --benchmark-only)")


@pytest.fixture(scope="module")
def phantoms(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Phantoms:
    """24 full-size AutoPET phantoms and degraded predictions (kept in CCBENCH_BENCH_SCALE_DATA)."""
    _only_when_benchmarking(request)
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.simulate.degraded import write_degraded_predictions

    kept = os.environ.get("CCBENCH_BENCH_SCALE_DATA")
    root = Path(kept) if kept else tmp_path_factory.mktemp("bench-scale")
    ws = Workspace(root).ensure()
    pred = ws.root / "pred-autopet"
    done = root / f"phantoms-{PHANTOMS}-full.done"
    if not done.is_file():
        write_phantoms("autopet", workspace=ws, cases=PHANTOMS, size="full")
        write_degraded_predictions(TASK, "all", pred, workspace=ws, seed=1, quality=0.6)
        done.write_text("written\n")
    return Phantoms(ws, pred, open_dataset(TASK, workspace=ws).case_ids())


@pytest.fixture(scope="module")
def report() -> Iterator[Report]:
    rep = Report()
    yield rep
    target = os.environ.get("CCBENCH_BENCH_SCALE_REPORT")
    if target and (rep.workers or rep.split):
        write_section(Path(target), render_markdown(rep))


class TreePeak:
    """Peak RSS of this process, of its largest descendant and of the whole tree, MB.

    A thread samples the process tree every ``interval_s`` seconds between ``start`` and
    ``stop`` (a worker that lives shorter than one interval can be missed).
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        import psutil

        self._me = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.coordinator_mb = self.largest_child_mb = self.tree_mb = 0.0

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            children = []
            for child in self._me.children(recursive=True):
                try:
                    children.append(child.memory_info().rss / 1e6)
                except psutil.Error:
                    continue
            own = self._me.memory_info().rss / 1e6
            self.coordinator_mb = max(self.coordinator_mb, own)
            self.largest_child_mb = max(self.largest_child_mb, max(children, default=0.0))
            self.tree_mb = max(self.tree_mb, own + sum(children))
            self._stop.wait(self._interval)

    def start(self) -> TreePeak:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _score(
    ws: Workspace,
    pred: Path,
    store: str,
    name: str,
    *,
    workers: int | None,
    scheduler: str | None = None,
    data_root: Path | None = None,
) -> tuple[list[CaseOutcome], float]:
    """Outcomes of one evaluate_run and the coordinator's CPU seconds."""
    outcomes: list[CaseOutcome] = []
    cpu = time.process_time()
    evaluate_run(
        TASK,
        "all",
        pred,
        workspace=ws,
        workers=workers,
        scheduler=scheduler,
        data_root=data_root,
        run_name=name,
        store=store,
        on_case=lambda outcome, _done, _total: outcomes.append(outcome),
    )
    return outcomes, time.process_time() - cpu


@pytest.mark.parametrize(
    ("scheduler", "workers"), [(None, 1), (None, 2), ("local", 1), ("local", 2)]
)
def test_bench_scale_workers(
    benchmark: Any,
    phantoms: Phantoms,
    report: Report,
    scheduler: str | None,
    workers: int,
    tmp_path: Path,
) -> None:
    runs: list[tuple[float, list[CaseOutcome], float]] = []  # wall, outcomes, coordinator CPU

    def once() -> None:
        name = f"scale-{scheduler or 'pool'}-{workers}-{len(runs)}"
        start = time.perf_counter()
        outcomes, cpu = _score(
            phantoms.ws, phantoms.pred, f"sqlite:///{tmp_path / 'b.sqlite'}", name,
            workers=workers, scheduler=scheduler,
        )  # fmt: skip
        runs.append((time.perf_counter() - start, outcomes, cpu))

    benchmark.pedantic(once, rounds=2, iterations=1, warmup_rounds=0)
    wall, outcomes, coordinator_cpu = min(runs, key=lambda run: run[0])  # the faster round
    info = {
        "cases": float(len(outcomes)),
        "wall_s": wall,
        "cases_per_second": len(outcomes) / wall,
        "per_case_s": statistics.mean(o.seconds for o in outcomes),
        "coordinator_cpu_per_case_s": coordinator_cpu / len(outcomes),
        "case_mb": _case_mb(phantoms),
    }
    benchmark.extra_info.update(info)
    report.workers[(scheduler or "pool", workers)] = info
    print(scheduler or "pool", workers, {k: round(v, 4) for k, v in info.items()})
    assert len(outcomes) == len(phantoms.case_ids) and _all_scored(outcomes)


def _all_scored(outcomes: list[CaseOutcome]) -> bool:
    """No prediction rejected (an empty one, from a dropped lesion, is scored by the rules)."""
    return all(o.error is None or o.error.error_class == "empty" for o in outcomes)


def _case_mb(ph: Phantoms) -> float:
    """Mean size of one case's reference and prediction files, MB."""
    dataset = open_dataset(TASK, workspace=ph.ws)
    sizes = [
        os.path.getsize(str(dataset.case(cid).label)) + os.path.getsize(ph.pred / f"{cid}.nii.gz")
        for cid in ph.case_ids
    ]
    return statistics.mean(sizes) / 1e6


def projection(info: dict[str, float], workers: int) -> tuple[float, str]:
    """Projected cases per second with ``workers`` workers, and what bounds it.

    Perfect scaling of one worker's per-case time, bounded by the coordinator's serial CPU time
    per case and by storage delivering :data:`STORAGE_MB_S` MB/s of case files.

    Examples
    --------
    >>> info = {"per_case_s": 0.5, "coordinator_cpu_per_case_s": 0.01, "case_mb": 0.1}
    >>> projection(info, 8), projection(info, 1000)
    ((16.0, 'workers'), (100.0, 'coordinator'))
    """
    bounds = {
        "workers": workers / info["per_case_s"],
        "coordinator": 1.0 / info["coordinator_cpu_per_case_s"],
        "storage": STORAGE_MB_S / info["case_mb"],
    }
    bound = min(bounds, key=lambda k: bounds[k])
    return bounds[bound], bound


def lazy_split(ph: Phantoms, out: Path, cases: int) -> tuple[Path, Path]:
    """``cases`` AutoPET studies under ``out``, study ``i`` a copy of phantom ``i mod 24``.

    Returns the data root (AutoPET layout: ``FDG-PET-CT-Lesions/PETCT_<i>/study/SEG.nii.gz``)
    and the predictions folder (``PETCT_<i>_0.nii.gz``).
    """
    dataset = open_dataset(TASK, workspace=ph.ws)
    bases = [(dataset.case(cid).label, ph.pred / f"{cid}.nii.gz") for cid in ph.case_ids]
    root, pred = out / "data", out / "pred"
    pred.mkdir(parents=True)
    for i in range(cases):
        label, prediction = bases[i % len(bases)]
        assert label is not None
        study = root / "FDG-PET-CT-Lesions" / f"PETCT_{i:06d}" / "study"
        study.mkdir(parents=True)
        shutil.copyfile(label, study / "SEG.nii.gz")
        shutil.copyfile(prediction, pred / f"PETCT_{i:06d}_0.nii.gz")
    return root, pred


def test_bench_scale_split(
    benchmark: Any, phantoms: Phantoms, report: Report, tmp_path: Path
) -> None:
    import resource

    cases = int(os.environ.get("CCBENCH_BENCH_CASES", "1000"))
    start = time.perf_counter()
    root, pred = lazy_split(phantoms, tmp_path / "split", cases)
    generated = time.perf_counter() - start
    peak = TreePeak()
    result: list[tuple[list[CaseOutcome], float]] = []

    def once() -> None:
        peak.start()
        try:
            result.append(
                _score(Workspace(tmp_path / "ws").ensure(), pred,
                       f"sqlite:///{tmp_path / 'split.sqlite'}", "split", workers=None,
                       data_root=root)
            )  # fmt: skip
        finally:
            peak.stop()

    benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    outcomes, coordinator_cpu = result[0]
    wall = float(benchmark.stats.stats.min)
    info = {
        "cases": float(len(outcomes)),
        "workers": float(min(os.cpu_count() or 1, cases)),
        "generate_s": generated,
        "wall_s": wall,
        "cases_per_second": len(outcomes) / wall,
        "per_case_s": statistics.mean(o.seconds for o in outcomes),
        "coordinator_cpu_per_case_s": coordinator_cpu / len(outcomes),
        "coordinator_peak_mb": peak.coordinator_mb,
        "coordinator_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
        "largest_worker_peak_mb": peak.largest_child_mb,
        "tree_peak_mb": peak.tree_mb,
    }
    benchmark.extra_info.update(info)
    report.split.update(info)
    print("split", {k: round(v, 4) for k, v in info.items()})
    assert len(outcomes) == cases and _all_scored(outcomes)


def render_markdown(rep: Report) -> str:
    """The two sections of the scale benchmark (markdown), between the report markers."""
    lines = [START, "", "### Scoring with several workers: pool vs local Dask", ""]
    if rep.workers:
        lines += [
            f"{PHANTOMS} AutoPET-size phantom cases (400x400x326, degraded predictions); wall time",
            "is the faster of two rounds, a local Dask cluster's start-up included.",
            "",
            "| scheduler | workers | wall | cases / s | per case (in a worker) "
            "| coordinator CPU per case | speed-up vs 1 worker |",
            "|---|---|---|---|---|---|---|",
        ]
        for (where, workers), info in sorted(rep.workers.items(), key=_pool_first):
            one = rep.workers.get((where, 1))
            speedup = f"{info['cases_per_second'] / one['cases_per_second']:.2f}x" if one else ""
            name = "local pool (default)" if where == "pool" else "`--scheduler local` (Dask)"
            lines.append(
                f"| {name} | {workers} | {info['wall_s']:.1f} s | {info['cases_per_second']:.2f} "
                f"| {info['per_case_s']:.3f} s | {1e3 * info['coordinator_cpu_per_case_s']:.0f} ms "
                f"| {speedup} |"
            )
        base = rep.workers.get(("pool", 1))
        if base is not None:
            where = "24-case runs"
            if rep.split:  # the coordinator's cost per case, amortised over the large split
                base = {
                    **base,
                    "coordinator_cpu_per_case_s": rep.split["coordinator_cpu_per_case_s"],
                }
                where = f"{int(rep.split['cases']):,}-case split"
            lines += [
                "",
                "Projection (an assumption, not a measurement): perfect scaling of the per-case "
                f"time of one pool worker ({base['per_case_s']:.3f} s), bounded by I/O: the "
                "coordinator's serial CPU time per case "
                f"({1e3 * base['coordinator_cpu_per_case_s']:.1f} ms, {where}: storing the rows, "
                "one process for all workers) and storage delivering "
                f"{STORAGE_MB_S:.0f} MB/s of case files ({base['case_mb']:.2f} MB per case).",
                "",
                "| workers | projected cases / s | bounded by |",
                "|---|---|---|",
            ]
            for workers in PROJECTED:
                rate, bound = projection(base, workers)
                lines.append(f"| {workers} | {rate:.0f} | {bound} |")
    if rep.split:
        s = rep.split
        lines += [
            "",
            f"### A {int(s['cases']):,}-case AutoPET-size split, end to end",
            "",
            "Generated lazily in a temporary folder (copies of the phantoms' reference and",
            f"prediction files, {s['generate_s']:.1f} s, not counted), scored by `evaluate_run`",
            f"on the default pool ({int(s['workers'])} workers); RSS sampled every 0.1 s.",
            "",
            "| cases | wall | cases / s | per case (in a worker) | coordinator peak RSS "
            "| largest worker peak RSS | process tree peak RSS |",
            "|---|---|---|---|---|---|---|",
            f"| {int(s['cases']):,} | {s['wall_s']:.0f} s ({s['wall_s'] / 60:.1f} min) "
            f"| {s['cases_per_second']:.2f} | {s['per_case_s']:.3f} s "
            f"| {s['coordinator_peak_mb']:.0f} MB | {s['largest_worker_peak_mb']:.0f} MB "
            f"| {s['tree_peak_mb']:.0f} MB |",
        ]
    lines += [
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; shared with other jobs while it ran (not quiet).",
        "",
        END,
    ]
    return "\n".join(lines)


def _pool_first(item: tuple[tuple[str, int], dict[str, float]]) -> tuple[bool, int]:
    """Sort key of the workers table: the pool's rows first, then by workers."""
    (where, workers), _ = item
    return where != "pool", workers


def write_section(path: Path, section: str) -> None:
    """Put ``section`` between the markers of ``path`` (appended with them when absent)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    start, end = text.find(START), text.find(END)
    if 0 <= start < end:
        text = text[:start] + section + text[end + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
