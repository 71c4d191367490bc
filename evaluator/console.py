"""The console: rich tables, summaries and progress bars that ``ccbench`` prints.

Each function takes the result object of one library call and a :class:`rich.console.Console`;
none of them computes anything.

Every string that comes from a container, a file or a user-supplied name (entry, run and case
names, file paths, error messages, rejected-file lines, reasons) goes through
:func:`evaluator.textsafe.markup_safe` before it is embedded in markup, a table cell or a table
title (rich parses all three as markup): ``[/]`` in a log line must not crash rich, and
``\\x1b[2J`` must not reach the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from evaluator.textsafe import markup_safe, printable
from evaluator.typing import ProgressHook

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from evaluator.datasets.check import CheckReport
    from evaluator.datasets.phantoms import PhantomResult
    from evaluator.datasets.splits import SplitResult
    from evaluator.evaluate import EvaluationResult
    from evaluator.metrics.api import CaseMetrics, ComponentInfo
    from evaluator.runner.contract import Manifest
    from evaluator.runner.images import BaseImageResult
    from evaluator.runner.preflight import PreflightReport
    from evaluator.runner.run import RunOutcome
    from evaluator.simulate.dataset import DatasetStudyResult
    from evaluator.simulate.toy import ToyResult

__all__ = [
    "PLAIN_INTERVAL_S",
    "ProgressBars",
    "ProgressHook",
    "evaluation_progress",
    "kv_table",
    "print_base_images",
    "print_budget",
    "print_case_metrics",
    "print_check_report",
    "print_dataset_study",
    "print_evaluation",
    "print_phantom_summary",
    "print_run_outcome",
    "print_split_summary",
    "print_submission",
    "print_toy_result",
    "progress_bar",
    "run_progress",
    "toy_progress",
    "training_progress",
]


def kv_table(title: str, rows: Mapping[str, object]) -> Table:
    """A two-column key/value table; keys and values are shown as text, never as markup.

    Examples
    --------
    >>> kv_table("run", {"task": "autopet"}).row_count
    1
    """
    table = Table(title=markup_safe(title), show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(markup_safe(key), markup_safe(value))
    return table


# ---- datasets: phantoms ---------------------------------------------------------------------


def print_phantom_summary(results: Sequence[PhantomResult], console: Console) -> None:
    """Print one row per phantom task written: where, how many cases and objects, geometry, time.

    Objects are lesions (AutoPET, HECKTOR), organs (BTCV) or annotated instances (ChestXDet);
    size and spacing are in SimpleITK order (x, y, z).

    Examples
    --------
    >>> from pathlib import Path
    >>> from evaluator.datasets.phantoms import PhantomResult
    >>> res = PhantomResult(task="autopet", out=Path("/ws/phantoms/autopet"), cases=12,
    ...     objects=150, negatives=3, max_objects=58, size=(96, 96, 80),
    ...     spacing=(2.0364, 2.0364, 2.0), seconds=4.2)
    >>> print_phantom_summary([res], Console(width=100, color_system=None))
    Phantom datasets: 1 task(s)
    ...
    │ autopet │    12 │     150 │  58 │   3 │ 96x96x80 │ 2.04x2.04x2 │ 4.2s │
    ...
    autopet: /ws/phantoms/autopet
    """
    console.print(f"Phantom datasets: {len(results)} task(s)", highlight=False)
    table = Table()
    table.add_column("task", style="bold")
    for name in ("cases", "objects", "max", "neg"):
        table.add_column(name, justify="right")
    table.add_column("voxels", no_wrap=True)
    table.add_column("mm", no_wrap=True)
    table.add_column("time", justify="right")
    for r in results:
        table.add_row(
            markup_safe(r.task),
            str(r.cases),
            str(r.objects),
            str(r.max_objects),
            str(r.negatives),
            "x".join(str(v) for v in r.size),
            "x".join(f"{v:.3g}" for v in r.spacing),
            f"{r.seconds:.1f}s",
        )
    console.print(table)
    for r in results:
        console.print(
            f"{markup_safe(r.task)}: {markup_safe(r.out)}", highlight=False, soft_wrap=True
        )


# ---- datasets: splits and checks ------------------------------------------------------------


def print_split_summary(result: SplitResult, console: Console) -> None:
    """Print where a split was written and how many cases of each stratum went where.

    Examples
    --------
    >>> from pathlib import Path
    >>> from evaluator.datasets.splits import SplitResult
    >>> res = SplitResult(task="t", path=Path("t.json"), test_path=Path("t.test.json"),
    ...     folds=[{"train": ["b"], "val": ["a"]}, {"train": ["a"], "val": ["b"]}], test=["c"],
    ...     scheme="kfold", stratify=(), seed=0,
    ...     strata={"all": {"test": 1, "fold0": 1, "fold1": 1}})
    >>> print_split_summary(res, Console(width=100, color_system=None))
    Split of 't': 3 cases, scheme kfold, seed 0
    ...
    │ all     │     3 │    1 │     1 │     1 │
    ...
    """
    k = len(result.folds)
    by = f", stratified by {markup_safe(', '.join(result.stratify))}" if result.stratify else ""
    console.print(
        f"Split of '{markup_safe(result.task)}': {result.n_cases} cases, "
        f"scheme {markup_safe(result.scheme)}{by}, seed {result.seed}",
        highlight=False,
    )
    table = Table(show_footer=True)
    parts = ["test", *(f"fold{i}" for i in range(k))]
    table.add_column("stratum", footer="total")
    table.add_column("cases", justify="right", footer=str(result.n_cases))
    for part in parts:
        total = sum(counts.get(part, 0) for counts in result.strata.values())
        table.add_column(part, justify="right", footer=str(total))
    for stratum, counts in result.strata.items():
        table.add_row(
            markup_safe(stratum),
            str(sum(counts.values())),
            *(str(counts.get(p, 0)) for p in parts),
        )
    console.print(table)
    if result.merged:
        console.print(_merged_note(result.merged, len(result.strata), k), highlight=False)
    console.print(f"folds (nnU-Net splits_final.json): {markup_safe(result.path)}", highlight=False)
    console.print(f"test set: {markup_safe(result.test_path)}", highlight=False)
    if result.shots:
        _print_shots(result, console)


def _print_shots(result: SplitResult, console: Console) -> None:
    """The few-shot subsets: cases per target and k, and a warning per target short of k.

    Examples
    --------
    >>> from pathlib import Path
    >>> from evaluator.datasets.splits import SplitResult
    >>> res = SplitResult(task="t", path=Path("t.json"), test_path=Path("t.test.json"),
    ...     folds=[], test=[], scheme="kfold", stratify=(), seed=0,
    ...     shots={1: {"liver": ["a"], "spleen": ["b"]}, 2: {"liver": ["a", "c"], "spleen": ["b"]}},
    ...     shots_short={2: {"spleen": 1}}, shots_eligible={"liver": 4, "spleen": 1})
    >>> _print_shots(res, Console(width=100, color_system=None))
    Few-shot training subsets (split names shots<k>, shots<k>:<target>; in t.test.json)
    ...
    │ spleen │        1 │       1 │   1 of 2 │
    ...
    warning: spleen has only 1 eligible case; its 2-shot subset holds all of them
    """
    console.print(
        "Few-shot training subsets (split names shots<k>, shots<k>:<target>; in "
        f"{markup_safe(result.test_path)})",
        highlight=False,
    )
    table = Table()
    table.add_column("target")
    table.add_column("eligible", justify="right")
    for k in result.shots:
        table.add_column(f"{k}-shot", justify="right")
    for target, eligible in result.shots_eligible.items():
        cells = []
        for k, subsets in result.shots.items():
            n = len(subsets.get(target, []))
            cells.append(
                f"[yellow]{n} of {k}[/]" if target in result.shots_short.get(k, {}) else str(n)
            )
        table.add_row(markup_safe(target), str(eligible), *cells)
    console.print(table)
    for target, n in result.shots_eligible.items():
        short = [k for k, targets in result.shots_short.items() if target in targets]
        if not short:
            continue
        if n == 0:
            has = f"no eligible case; its {_shots_list(short)} subset{'s are' if len(short) > 1 else ' is'} empty"
        else:
            has = (
                f"only {n} eligible case{'' if n == 1 else 's'}; its {_shots_list(short)} "
                f"subset{'s hold' if len(short) > 1 else ' holds'} all of them"
            )
        console.print(f"[yellow]warning:[/] {markup_safe(target)} has {has}", highlight=False)


def _shots_list(ks: Sequence[int]) -> str:
    """``[3, 5]`` -> ``"3- and 5-shot"``; ``[1, 3, 5]`` -> ``"1-, 3- and 5-shot"``."""
    head = "".join(f"{k}-, " for k in ks[:-2]) + (f"{ks[-2]}- and " if len(ks) > 1 else "")
    return f"{head}{ks[-1]}-shot"


def _merged_note(merged: Sequence[str], n_strata: int, folds: int) -> str:
    """One line on the strata too small for their own group (named when there are few).

    Examples
    --------
    >>> _merged_note(["A/F", "A/M"], 2, 5)
    'all 2 strata have fewer cases than folds (5) and were pooled with coarser groups'
    >>> _merged_note(["A/F"], 3, 5)
    '1 of 3 strata has fewer cases than folds (5) and was pooled with a coarser group: A/F'
    """
    if len(merged) >= n_strata:
        return (
            f"all {n_strata} strata have fewer cases than folds ({folds}) and were pooled with "
            "coarser groups"
        )
    names = ", ".join(merged) if len(merged) <= 4 else f"{', '.join(merged[:4])}, ..."
    if len(merged) == 1:
        verb = "has fewer cases than folds ({k}) and was pooled with a coarser group"
    else:
        verb = "have fewer cases than folds ({k}) and were pooled with coarser groups"
    return f"{len(merged)} of {n_strata} strata {verb.format(k=folds)}: {markup_safe(names)}"


def print_check_report(report: CheckReport, console: Console) -> None:
    """Print the outcome of ``ccbench data check``: one row per problem, naming the file.

    Examples
    --------
    >>> from pathlib import Path
    >>> from evaluator.datasets.check import CheckReport, Problem
    >>> ok = CheckReport(task="t", root=Path("/d"), n_cases=2)
    >>> print_check_report(ok, Console(width=100, color_system=None))
    t: 2 cases checked in /d, no problems
    >>> bad = CheckReport(task="t", root=Path("/d"), n_cases=2,
    ...                   problems=[Problem("c1", "/d/c1.nii.gz", "/d/c1.nii.gz: file does not exist")])
    >>> print_check_report(bad, Console(width=100, color_system=None))
    t: 1 problem(s) in 1 of 2 cases in /d
    ...
    │ c1   │ /d/c1.nii.gz: file does not exist │
    ...
    """
    task, root = markup_safe(report.task), markup_safe(report.root)
    if report.ok:
        console.print(
            f"[green]{task}: {report.n_cases} cases checked in {root}, no problems[/]",
            highlight=False,
        )
        return
    console.print(
        f"[bold red]{task}: {len(report.problems)} problem(s) in "
        f"{len(report.bad_cases)} of {report.n_cases} cases in {root}[/]",
        highlight=False,
    )
    table = Table()
    table.add_column("case", no_wrap=True)
    table.add_column("problem", overflow="fold")
    for problem in report.problems:
        table.add_row(markup_safe(problem.case_id), markup_safe(problem.message))
    console.print(table)


# ---- progress -------------------------------------------------------------------------------

#: Seconds between two plain progress lines (not a terminal) of one bar.
PLAIN_INTERVAL_S = 5.0


class ProgressBars:
    """Progress of long steps: rich bars on a terminal, plain lines otherwise, nothing when quiet.

    On a terminal every :meth:`add` makes a bar (description, bar, done/total, status, elapsed
    time and, with `eta`, the time left). When the console is not a terminal (a pipe, a log
    file, CI) each bar prints a plain line ``title: done/total status (elapsed s)`` at most
    every :data:`PLAIN_INTERVAL_S` seconds, always its first and last step, and every step
    when added with ``every=True`` (one line per container run). A console made with
    ``quiet=True`` (``--quiet``) prints nothing.

    Examples
    --------
    >>> from io import StringIO
    >>> out = StringIO()
    >>> with ProgressBars(Console(file=out, width=80)) as bars:
    ...     hook = bars.add("containers", 2, every=True)
    ...     hook(1, 2, "case-1: ok")
    ...     hook(2, 2, "case-2: failed")
    >>> [line.split(" (")[0] for line in out.getvalue().splitlines()]
    ['containers: 1/2 case-1: ok', 'containers: 2/2 case-2: failed']
    """

    def __init__(self, console: Console, *, transient: bool = True, eta: bool = False) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.live = console.is_terminal and not console.is_dumb_terminal and not console.quiet
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            *([TimeRemainingColumn()] if eta else []),
        ]
        self.progress = Progress(*columns, console=console, transient=transient)

    def __enter__(self) -> ProgressBars:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def add(self, title: str, total: int | None = None, *, every: bool = False) -> ProgressHook:
        """A new bar; returns its ``hook(done, total, status)``."""
        if self.live:
            bar = self.progress.add_task(markup_safe(title, oneline=True), total=total, status="")

            def update(done: int, total: int | None, status: str = "") -> None:
                safe = markup_safe(status, oneline=True)
                self.progress.update(bar, completed=done, total=total, status=safe)

            return update
        import time

        start = time.monotonic()
        last = [-PLAIN_INTERVAL_S]

        def plain(done: int, total: int | None, status: str = "") -> None:
            now = time.monotonic() - start
            edge = done <= 1 or (total is not None and done >= total)
            if not (every or edge or now - last[0] >= PLAIN_INTERVAL_S):
                return
            last[0] = now
            of = "" if total is None else f"/{total}"
            line = printable(status, oneline=True)
            text = f"{printable(title, oneline=True)}: {done}{of}{' ' + line if line else ''}"
            self.console.print(f"{text} ({now:.0f} s)", markup=False, highlight=False)

        return plain


@contextmanager
def progress_bar(
    console: Console,
    title: str,
    *,
    total: int | None = None,
    every: bool = False,
    transient: bool = True,
    eta: bool = False,
) -> Iterator[ProgressHook]:
    """One :class:`ProgressBars` bar for a ``with`` block; yields its ``hook(done, total, status)``.

    Examples
    --------
    >>> from io import StringIO
    >>> with progress_bar(Console(file=StringIO()), "leaderboard", total=4) as hook:
    ...     hook(1, 4, "bootstrap")
    """
    with ProgressBars(console, transient=transient, eta=eta) as bars:
        yield bars.add(title, total, every=every)


# ---- metrics ----------------------------------------------------------------------------------


def print_case_metrics(
    result: CaseMetrics, *, console: Console, per_component: bool = False, as_json: bool = False
) -> None:
    """Print the metric values of one case: a table (metrics x labels) or JSON.

    With `per_component`, also the CC-Metrics of every reference component (one table per
    label; in JSON a ``per_component`` entry). Values are shown with 6 significant digits in
    tables and in full in JSON (``Infinity``/``NaN`` for non-finite values).

    Examples
    --------
    >>> import io
    >>> from evaluator.metrics.api import CaseMetrics
    >>> console = Console(width=60, file=io.StringIO())
    >>> print_case_metrics(CaseMetrics({1: {"dice": 0.25}}), console=console, as_json=True)
    >>> import json
    >>> json.loads(console.file.getvalue())
    {'values': {'1': {'dice': 0.25}}}
    """
    from evaluator.metrics.registry import METRICS

    if as_json:
        import json

        data = result.as_dict()
        if not per_component:
            data.pop("per_component")
            data.pop("components", None)
        console.print(json.dumps(data, indent=2), soft_wrap=True, highlight=False, markup=False)
        return
    labels = list(result.values)
    names = list(dict.fromkeys(n for values in result.values.values() for n in values))
    table = Table(title="metrics")
    table.add_column("metric", style="bold")
    table.add_column("unit")
    for label in labels:
        table.add_column(f"label {label}", justify="right")
    for name in names:
        spec = METRICS.get(name)
        cells = [_fmt_metric(result.values[label].get(name)) for label in labels]
        table.add_row(markup_safe(name), spec.unit if spec else "", *cells)
    console.print(table)
    if not per_component:
        return
    for label, comps in result.per_component.items():
        count = max((len(v) for v in comps.values()), default=0)
        infos = result.components.get(label, [])
        sub = Table(title=f"label {label}: CC-Metrics per reference component")
        sub.add_column("component", justify="right", style="bold")
        if infos:
            flat = len(infos[0].centre_index) == 2
            axes = "x, y" if flat else "x, y, z"
            sub.add_column("area (mm²)" if flat else "volume (ml)", justify="right")
            sub.add_column(f"centre {axes} ({'mm' if infos[0].centre_mm else 'voxel'})")
            sub.add_column("detected")
        for name in comps:
            sub.add_column(markup_safe(name), justify="right")
        for i in range(count):
            cells = [_fmt_metric(v[i] if i < len(v) else None) for v in comps.values()]
            where = infos[i] if i < len(infos) else None
            about = (
                [] if not infos else ["-", "-", "-"] if where is None else _component_cells(where)
            )
            sub.add_row(str(i + 1) if infos else "none", *about, *cells)
        if not infos:
            sub.caption = "no reference component: the values are the empty-reference ones"
        console.print(sub)
    if result.per_component:
        missed = any(not c.detected for comps in result.components.values() for c in comps)
        note = _missed_note()
        console.print(note if missed else f"[dim]{note}[/]", highlight=False)


def _missed_note() -> str:
    """What a missed reference component scores: the registry's worst values."""
    from evaluator.metrics.registry import METRICS

    cc = [spec for spec in METRICS.values() if spec.kind == "cc"]
    zero = [spec.title or spec.name for spec in cc if spec.unit != "mm"]
    far = [spec for spec in cc if spec.unit == "mm"]
    return (
        "A reference component is detected when the prediction has voxels in its Voronoi region; "
        f"a missed one scores each CC-Metric's worst value: 0 for {', '.join(zero)}, and "
        f"{far[0].worst:g} mm for {', '.join(m.title or m.name for m in far)} (the default worst "
        "distance: as if the prediction were that far away; in voxel mode, voxels)."
    )


def _component_cells(info: ComponentInfo) -> list[str]:
    centre = info.centre_mm if info.centre_mm is not None else info.centre_index[::-1]
    size = info.volume_ml * 1000.0 if len(info.centre_index) == 2 else info.volume_ml
    return [
        f"{size:.3g}",
        ", ".join(f"{v:.1f}" for v in centre),
        "yes" if info.detected else "[red]no[/]",
    ]


def _fmt_metric(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


# ---- evaluate ---------------------------------------------------------------------------------


def _fmt_value(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@contextmanager
def evaluation_progress(
    console: Console,
) -> Iterator[Callable[[object, int, int], None]]:
    """A progress bar for ``ccbench evaluate``; yields the ``on_case(outcome, done, total)`` hook.

    Examples
    --------
    >>> from io import StringIO
    >>> with evaluation_progress(Console(file=StringIO())) as hook:
    ...     hook(None, 1, 2)
    """
    with progress_bar(console, "scoring") as hook:
        yield lambda outcome, done, total: hook(done, total, _case_status(outcome))


@contextmanager
def run_progress(
    console: Console,
) -> Iterator[tuple[ProgressHook, Callable[[object, int, int], None]]]:
    """Progress of ``ccbench run``: a bar of container runs and one of scored cases.

    Yields the ``progress`` hook of :func:`evaluator.runner.run.run_cases` (one plain line per
    container when not on a terminal) and the ``on_case`` hook of the scoring.

    Examples
    --------
    >>> from io import StringIO
    >>> with run_progress(Console(file=StringIO())) as (containers, on_case):
    ...     containers(1, 2, "case-1: ok")
    ...     on_case(None, 1, 1)
    """
    with ProgressBars(console) as bars:
        containers = bars.add("containers", every=True)
        scoring = bars.add("scoring")
        yield containers, lambda outcome, done, total: scoring(done, total, _case_status(outcome))


def _case_status(outcome: object) -> str:
    """``"<case>: scored"`` or ``"<case>: <error class>"`` for a scored case's outcome."""
    case = getattr(outcome, "case_id", None)
    error = getattr(outcome, "error", None)
    status = "scored" if error is None else getattr(error, "error_class", "error")
    return "" if case is None else f"{case}: {status}"


@contextmanager
def training_progress(console: Console, title: str) -> Iterator[ProgressHook]:
    """A progress bar for ``ccbench baselines train``; yields the ``(done, total, status)`` hook.

    The last state stays on the screen (iterations, loss, time).

    Examples
    --------
    >>> from io import StringIO
    >>> with training_progress(Console(file=StringIO()), "unet") as hook:
    ...     hook(1, 10, "loss 0.9")
    """
    with progress_bar(console, title, transient=False, eta=True) as hook:
        yield hook


def print_evaluation(result: EvaluationResult, *, console: Console) -> None:
    """Print an :class:`~evaluator.evaluate.EvaluationResult`: means per label, errors, outputs."""
    summary = result.summary
    metrics = list(summary["mean_over_labels"])
    columns = {
        label: {m: v["mean"] for m, v in per.items()} for label, per in summary["means"].items()
    }
    if len(columns) > 1:
        columns["mean over labels"] = dict(summary["mean_over_labels"])
    title = f"{markup_safe(summary['task'])} / {markup_safe(summary['split'])}: means over cases"
    table = Table(title=title)
    if len(metrics) >= len(columns):  # one row per metric, one column per label
        table.add_column("metric", style="bold")
        for label in columns:
            table.add_column(markup_safe(label), justify="right")
        for metric in metrics:
            table.add_row(
                markup_safe(metric), *(_fmt_value(columns[label][metric]) for label in columns)
            )
    else:  # one row per label, one column per metric
        table.add_column("label", style="bold")
        for metric in metrics:
            table.add_column(markup_safe(metric), justify="right")
        for label, values in columns.items():
            table.add_row(markup_safe(label), *(_fmt_value(values[m]) for m in metrics))
    console.print(table)
    if summary["aggregates"]:
        console.print(
            kv_table("aggregates", {k: _fmt_value(v) for k, v in summary["aggregates"].items()})
        )
    errors = {k: v for k, v in summary["error_counts"].items() if v}
    info = {
        "run": f"{summary['run']} (id {summary['run_id']}, {summary['status']})",
        "cases": f"{summary['completed']}/{summary['cases']} scored "
        f"({result.scored} now, {result.skipped} from the store)",
        "errors": ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none",
        **(
            {
                "user metric failures": f"{result.metric_failures} cases scored with the metric's "
                f"worst value (`ccbench logs {summary['run']}`)"
            }
            if result.metric_failures
            else {}
        ),
        "results": str(result.results_csv),
        "summary": str(result.summary_json),
        "store": result.store_url,
    }
    console.print(kv_table("run", info))
    for line in summary["conventions"]:
        console.print(f"[dim]- {markup_safe(line)}[/]", highlight=False)


# ---- runner -----------------------------------------------------------------------------------


def print_base_images(results: Sequence[BaseImageResult], *, console: Console) -> None:
    """Print what ``ccbench images build-base`` did (list of ``BaseImageResult``).

    Examples
    --------
    >>> from io import StringIO
    >>> from evaluator.runner.images import BaseImageResult
    >>> c = Console(file=StringIO(), width=120)
    >>> print_base_images([BaseImageResult("python", "ccbench/python:x", "exists", 0.0, 169.1)],
    ...                   console=c)
    >>> "ccbench/python:x" in c.file.getvalue()
    True
    """
    table = Table(title="local base images")
    for column in ("image", "tag", "status", "seconds", "size (MB)"):
        table.add_column(column, justify="right" if column in ("seconds", "size (MB)") else "left")
    for r in results:
        table.add_row(
            markup_safe(r.key),
            markup_safe(r.tag),
            markup_safe(r.status),
            f"{r.seconds:.1f}",
            f"{r.size_mb:.0f}",
        )
    console.print(table)


def print_submission(manifest: Manifest, path: Path, *, console: Console) -> None:
    """Print a registered entry (``Manifest``) and where its manifest was written."""
    res = manifest.resources
    rows = {
        "entry": manifest.name,
        "team": manifest.team or "-",
        "image": manifest.image,
        "digest": manifest.image_digest,
        "interface": manifest.interface,
        "tasks": ", ".join(manifest.tasks),
        "prompts": ", ".join(manifest.prompts) or "none (images only)",
        "labels": "; ".join(
            f"{task}: {', '.join(map(str, given))}" for task, given in manifest.labels.items()
        )
        if manifest.labels
        else "every label of each task",
        "resources": f"{res.memory_mb} MiB, {res.cpus:g} CPUs, {res.pids} processes, "
        f"{res.time_limit_s:g} s per case, GPUs {res.gpus}",
        "file system": f"{res.filesystem}"
        + (f" (writable layer up to {res.layer_mb} MiB)" if res.filesystem == "ephemeral" else ""),
        "manifest": str(path),
    }
    console.print(kv_table("submitted", rows))


def print_run_outcome(outcome: RunOutcome, *, console: Console) -> None:
    """Print a ``RunOutcome``: container runs, per-case container errors, then the scores.

    Labels, reasons, case ids and rejected-file lines come from the container: they are shown as
    text (markup escaped, escape sequences and control characters removed).
    """
    entry, task, split, interface = (
        markup_safe(v) for v in (outcome.entry, outcome.task, outcome.split, outcome.interface)
    )
    table = Table(title=f"{entry} on {task} / {split} ({interface})")
    remote = "scheduler" in outcome.provenance  # ccbench run --scheduler: say which worker
    for column in ("run", "status", "exit", "seconds", "reason", *(["worker"] if remote else [])):
        table.add_column(column)
    for run in outcome.container_runs:
        style = "green" if run.ok else "red"
        exit_code = "-" if run.exit_code is None else str(run.exit_code)
        table.add_row(
            markup_safe(run.label),
            f"[{style}]{markup_safe(run.status)}[/]",
            exit_code,
            f"{run.seconds:.2f}",
            markup_safe(run.reason),
            *([markup_safe(run.details.get("worker", "-"))] if remote else []),
        )
    console.print(table)
    if outcome.case_errors:
        errors = Table(title="cases without a usable output")
        errors.add_column("case", style="bold")
        errors.add_column("reason")
        for case_id, reason in outcome.case_errors.items():
            errors.add_row(markup_safe(case_id), markup_safe(reason))
        console.print(errors)
    if outcome.rejected:
        shown = outcome.rejected[:10]
        more = len(outcome.rejected) - len(shown)
        for line in shown:
            console.print(f"[yellow]ignored[/] {markup_safe(line)}", highlight=False)
        if more:
            console.print(f"[yellow]... and {more} more ignored files[/]")
    info = {
        "cases": f"{len(outcome.predictions)}/{len(outcome.case_ids)} with a prediction",
        "container time": f"{outcome.seconds:.2f} s",
        "image digest": outcome.provenance.get("image_digest", "-"),
        "backend": outcome.provenance.get("backend", "-"),
        "run folder": str(outcome.run_dir),
    }
    if remote:
        info["scheduler"] = markup_safe(outcome.provenance["scheduler"])
        info["hosts"] = markup_safe(", ".join(outcome.provenance.get("hosts", [])) or "-")
    console.print(kv_table("run", info))
    if outcome.evaluation is not None:
        print_evaluation(outcome.evaluation, console=console)


def print_budget(budget: int, outcome: RunOutcome, *, console: Console) -> None:
    """One line per click budget of an interactive entry: the run and its mean scores.

    Examples
    --------
    >>> from io import StringIO
    >>> from types import SimpleNamespace
    >>> out = Console(file=StringIO(), width=200)
    >>> done = SimpleNamespace(summary={"run": "r__clicks02", "mean_over_labels": {"dice": 0.5}})
    >>> print_budget(2, SimpleNamespace(evaluation=done, predictions={"a": 1}, case_ids=["a"]),
    ...              console=out)
    >>> out.file.getvalue().strip()
    'budget  2: 1/1 predictions, dice 0.5 (run r__clicks02)'
    """
    scores = ""
    run = ""
    if outcome.evaluation is not None:
        summary = outcome.evaluation.summary
        means = summary.get("mean_over_labels", {})
        shown = [m for m in ("dice", "fp_volume_ml", "fn_volume_ml") if m in means]
        scores = ", " + ", ".join(f"{m} {_fmt_value(means[m])}" for m in shown) if shown else ""
        run = f" (run {markup_safe(summary['run'])})"
    console.print(
        f"budget {budget:2d}: {len(outcome.predictions)}/{len(outcome.case_ids)} predictions"
        f"{scores}{run}",
        highlight=False,
    )


# ---- simulate ---------------------------------------------------------------------------------


@contextmanager
def toy_progress(console: Console) -> Iterator[Callable[[str, int], Callable[[], None]]]:
    """A progress bar per toy study; yields ``progress(study, total)`` -> per-step callback.

    Examples
    --------
    >>> from io import StringIO
    >>> with toy_progress(Console(file=StringIO())) as progress:
    ...     tick = progress("erode_all", 2)
    ...     tick()
    """
    with ProgressBars(console) as bars:

        def progress(study: str, total: int) -> Callable[[], None]:
            hook = bars.add(study, total)
            steps = iter(range(1, total + 1))
            return lambda: hook(next(steps, total), total, "")

        yield progress


def print_toy_result(result: ToyResult, *, console: Console) -> None:
    """Print a :class:`~evaluator.simulate.toy.ToyResult`: studies, steps, time, files."""
    table = Table(title="toy studies")
    for column in ("study", "variants", "steps", "metrics", "seconds"):
        table.add_column(column, style="bold" if column == "study" else None)
    frame = result.table
    for study, seconds in result.seconds.items():
        rows = frame[(frame["study"] == study) & (frame["component"] == "")]
        metrics = [m for m in dict.fromkeys(rows["metric"]) if m != "pred_components"]
        table.add_row(
            markup_safe(study),
            markup_safe(", ".join(dict.fromkeys(rows["variant"]))),
            str(int(rows["step"].max())),
            markup_safe(", ".join(metrics)),
            f"{seconds:.1f}",
        )
    console.print(table)
    if result.csv is not None:
        console.print(f"numbers: {markup_safe(result.csv)}", highlight=False)
        console.print(
            f"figures: {len(result.figures)} files in {markup_safe(result.csv.parent)}",
            highlight=False,
        )


def print_dataset_study(result: DatasetStudyResult, *, console: Console) -> None:
    """Print a :class:`~evaluator.simulate.dataset.DatasetStudyResult`: medians and files."""
    study = result.study
    info = {
        "study": f"{study.op} the n {study.order} components, n = 1..{study.n_max}",
        "task / split": f"{study.task} / {study.split}",
        "cases scored now": result.scored,
        "cases already stored": result.skipped,
        "time": f"{result.seconds:.1f} s ({result.seconds_per_case:.2f} s per case)",
        "store": result.store_url,
    }
    console.print(kv_table("simulation", info))
    summary = result.summary
    if len(summary):
        part = summary[(summary["subset"] == "all") & (summary["order"] == study.order)]
        ns = sorted({0, 1, study.n_max} & set(part["n"]))
        title = f"median (25th-75th percentile), {markup_safe(study.order)} components"
        table = Table(title=title)
        table.add_column("metric", style="bold")
        for n in ns:
            table.add_column(f"n={n}")
        for metric, rows in part.groupby("metric", sort=False):
            cells = []
            for n in ns:
                row = rows[rows["n"] == n]
                if row.empty:
                    cells.append("-")
                    continue
                median, q25, q75 = (float(row[c].iloc[0]) for c in ("median", "q25", "q75"))
                cells.append(f"{median:.3g} ({q25:.3g}-{q75:.3g})")
            table.add_row(markup_safe(metric), *cells)
        console.print(table)
    folder = result.files[0].parent if result.files else None
    if folder is not None:
        console.print(
            f"files: {len(result.files)} in {markup_safe(folder)} (sensitivity.md: small vs large)",
            highlight=False,
        )


# ---- organiser: private logs ----------------------------------------------------------------


def print_run_logs(
    run_name: str,
    errors: Sequence[tuple[str, str, str]],
    logs: Sequence[tuple[str | None, str, str]],
    *,
    console: Console,
) -> None:
    """Print a run's per-case errors and log lines (organiser only; never published).

    Every line came from a container or a file: control characters are dropped and nothing is
    read as markup.
    """
    console.print(
        f"run [bold]{markup_safe(run_name)}[/]: {len(errors)} case errors, {len(logs)} log entries",
        highlight=False,
    )
    for case, error_class, message in errors:
        console.print(
            f"[red]{markup_safe(error_class)}[/] {markup_safe(case)}: {markup_safe(message)}",
            highlight=False,
            soft_wrap=True,
        )
    for log_case, stream, message in logs:
        where = f" {log_case}" if log_case else ""
        console.print(f"[dim]--- {markup_safe(stream)}{markup_safe(where)}[/]", highlight=False)
        console.print(printable(message), markup=False, highlight=False, soft_wrap=True)


# ---- participants: preflight ----------------------------------------------------------------


def print_preflight(report: PreflightReport, *, console: Console) -> None:
    """Print what ``ccbench preflight`` found: one row per finding with its fix, then a verdict."""
    console.print(
        f"preflight of [bold]{markup_safe(report.image)}[/] on {markup_safe(report.task)} "
        f"({markup_safe(report.interface)} interface, cases {markup_safe(', '.join(report.cases))})",
        highlight=False,
    )
    if report.findings:
        table = Table(title="findings", show_lines=True)
        table.add_column("")
        table.add_column("check")
        table.add_column("what was seen", overflow="fold")
        table.add_column("fix", overflow="fold")
        for f in report.findings:
            mark = "[red]error[/]" if f.severity == "error" else "[yellow]warning[/]"
            table.add_row(mark, markup_safe(f.code), markup_safe(f.what), markup_safe(f.fix))
        console.print(table)
    for run in report.runs:
        peak = run.details.get("peak_memory_mb")
        console.print(
            f"[dim]{markup_safe(run.label)}: {markup_safe(run.status)} in {run.seconds:.1f} s"
            f"{f', peak memory {peak:.0f} MiB' if peak is not None else ''}[/]",
            highlight=False,
        )
    if report.ok:
        console.print("[bold green]would be scored[/] (no errors)", highlight=False)
    else:
        errors = sum(f.severity == "error" for f in report.findings)
        console.print(f"[bold red]would not be scored as is:[/] {errors} error(s)", highlight=False)
