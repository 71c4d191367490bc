"""The ``ccbench`` command: thin wrappers, one library call per command.

Only this module turns a :class:`~evaluator.errors.CCBenchError` into a red one-line message and
an exit code; library code raises. Options with a fixed set of values are enums made from the
library's own ``Literal`` types (or registries), so typer validates them, ``--help`` lists them and
the list exists once; the modules that define them are imported here. Everything else is imported
inside the commands.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from enum import EnumType, StrEnum
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast, get_args

import typer
from rich.console import Console

from evaluator.choices import (
    BackendName,
    BaseImageName,
    CCMode,
    ClickMode,
    Filesystem,
    Interface,
    PhantomLayout,
    PromptKind,
    ResultFormat,
    Staging,
    StudyOperation,
    StudyOrder,
    ToyStudyName,
)
from evaluator.errors import CCBenchError
from evaluator.textsafe import markup_safe, printable
from evaluator.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:
    from evaluator.runner.contract import Resources

__all__ = ["app", "main"]

F = TypeVar("F", bound=Callable[..., Any])
_C = TypeVar("_C")

# emoji=False: ":cd:" in a case id or a path must print as written, not as an emoji
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

app = typer.Typer(
    name="ccbench",
    help="Evaluate medical image segmentation: containers, standard metrics and CC-Metrics.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: phantom data, splits, checks.", no_args_is_help=True)
app.add_typer(data_app, name="data")

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder for data, store and outputs [default: $CCBENCH_WORKSPACE or ./.ccbench].",
        show_default=False,
    ),
]
DataRootOpt = Annotated[
    Path | None,
    typer.Option("--data-root", help="Read the task's data from DIR instead of its registry root."),
]
TaskOpt = Annotated[str, typer.Option("--task", "-t", help="Task name from datasets.yaml.")]
ScoringMemoryOpt = Annotated[
    int | None,
    typer.Option(
        "--scoring-memory-mb",
        help="Memory cap of each scoring worker, MiB [default: 3/4 of RAM shared by the workers].",
        show_default=False,
    ),
]
ScoringWorkersOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Worker processes (of the local pool, or of --scheduler local) [default: one per CPU].",
        show_default=False,
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        help="Score on Dask instead of the local pool: a scheduler address (tcp://host:8786), or "
        "'local' for a Dask cluster of --workers processes on this machine, started for this "
        "call. Without it the hardened local pool runs the cases, with a hard memory cap per "
        "worker and a time limit per case that Dask workers lack (a Dask nanny restarts a "
        "worker past its memory limit and retries the case; no case is ever timed out).",
        show_default=False,
    ),
]
FoldOpt = Annotated[
    int | None,
    typer.Option(
        "--fold",
        min=0,
        help="A fold run: the predictions of the model of cross-validation fold K (trained on "
        "its training cases), recorded with the run; without --split, on fold K's validation "
        "cases. The leaderboard gives the mean ± SD over the folds.",
        show_default=False,
    ),
]
FoldsOpt = Annotated[
    str | None,
    typer.Option(
        "--folds",
        help="Every fold run at once: 'all' (each fold of the split file) or a list, e.g. 0,2.",
        show_default=False,
    ),
]
RunSplitOpt = Annotated[
    str | None,
    typer.Option(
        "--split",
        "-s",
        help="Split name (test, fold0, ...) or 'all' [default: test; with --fold K, fold K's "
        "validation cases].",
        show_default=False,
    ),
]
LabelsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--labels",
        help="TASK=name,name,...: the labels of TASK the entry predicts, by name or value "
        "(repeatable, one per task) [default: every label]; the others are recorded as not "
        "predicted, never scored as empty predictions.",
        show_default=False,
    ),
]


def _labels_option(values: list[str] | None) -> dict[str, list[str]]:
    """``--labels TASK=a,b`` options -> task -> names (a task given twice is refused)."""
    from evaluator.datasets.labels import parse_label_option

    found: dict[str, list[str]] = {}
    for value in values or ():
        try:
            task, names = parse_label_option(value)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--labels") from err
        if task in found:
            raise typer.BadParameter(f"task {task} given twice", param_hint="--labels")
        found[task] = names
    return found


UserMetricOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--metric",
        help="Also score your own metric, module.path:attribute declared with "
        "evaluator.metrics.plugins.user_metric (repeatable); registered ones (entry point "
        "group ccbench.metrics) are always scored.",
        show_default=False,
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress display (progress goes to stderr: bars on a terminal, plain lines "
        "otherwise).",
    ),
]
ScoringTimeOpt = Annotated[
    float,
    typer.Option("--scoring-time-limit", help="Scoring time limit per case, seconds."),
]


def _fail_cleanly(func: F) -> F:
    """Turn library errors into one red line and exit code 1 (2 for usage errors)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CCBenchError as err:
            # The message can quote container output and file names: one line, as text.
            from evaluator.textsafe import markup_safe

            message = " ".join(markup_safe(err).split())
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _fold_runs(
    fold: int | None,
    folds: str | None,
    split: str | None,
    task: str,
    ws: Workspace,
    data_root: Path | None = None,
) -> list[tuple[int | None, str]]:
    """``(fold, split)`` of each run asked for by ``--fold``/``--folds`` and ``--split``.

    Without either, one run on ``--split`` (default ``test``). A fold run without ``--split``
    is on that fold's validation cases. Every fold run on another split is checked before any
    runs: its model must not have trained on those cases
    (:func:`evaluator.datasets.splits.check_fold_cases`).
    """
    from evaluator.datasets.registry import load_registry
    from evaluator.datasets.splits import check_fold_cases, read_split, resolve_split

    if fold is not None and folds is not None:
        raise typer.BadParameter("give --fold K or --folds, not both", param_hint="--folds")
    if fold is None and folds is None:
        return [(None, split or "test")]
    spec = load_registry().task(task)
    path = spec.split_path(ws)
    if not path.is_file():
        raise typer.BadParameter(
            f"no split file {path}; run `ccbench data split --task {task}`",
            param_hint="--fold" if fold is not None else "--folds",
        )
    known = len(read_split(path)[0])
    chosen: list[int | None]
    if folds is None:
        chosen = [fold]
    elif folds.strip() == "all":
        chosen = list(range(known))
    else:
        try:
            chosen = [*sorted({int(k) for k in folds.split(",") if k.strip()})]
        except ValueError:
            raise typer.BadParameter(
                f"'all' or fold numbers separated by commas, not {folds!r}", param_hint="--folds"
            ) from None
    bad = [k for k in chosen if k is None or not 0 <= k < known]
    if not chosen or bad:
        raise typer.BadParameter(
            f"{path} has folds 0..{known - 1}, not {bad or repr(folds)}",
            param_hint="--fold" if fold is not None else "--folds",
        )
    runs = [(k, split or ("test" if k is None else f"fold{k}")) for k in chosen]
    for k, run_split in runs:
        if k is not None and run_split != f"fold{k}":
            ids = resolve_split(spec, run_split, workspace=ws, data_root=data_root)
            check_fold_cases(spec, k, ids, split=run_split, workspace=ws)
    return runs


def _workspace(path: Path | None) -> Workspace:
    return resolve_workspace(path)


def _progress(quiet: bool) -> Console:
    """Where progress goes: stderr (so that stdout holds results only), silent with --quiet."""
    return Console(stderr=True, quiet=quiet, emoji=False)


# --------------------------------------------------------------------------------------------
# fixed choices
# --------------------------------------------------------------------------------------------


class _ChoiceType(EnumType):
    """Metaclass of :class:`_Choice`: the keyword ``choices`` makes one member per value."""

    def __new__(
        metacls,
        cls: str,
        bases: tuple[type, ...],
        classdict: Any,
        *,
        choices: Iterable[str] = (),
        **kwds: Any,
    ) -> Any:
        for value in choices:
            classdict[value.replace("-", "_").replace(".", "_")] = value
        return super().__new__(metacls, cls, bases, classdict, **kwds)

    if TYPE_CHECKING:
        # The members are made at run time; to mypy, any attribute of a choice is a member.
        def __getattr__(cls: type[_C], name: str) -> _C: ...


class _Choice(StrEnum, metaclass=_ChoiceType):
    """The values of an option with a fixed set of them, taken from the library.

    ``class BackendChoice(_Choice, choices=get_args(BackendName))`` has one member per value of
    the library's ``Literal`` (member names with ``_`` for ``-`` and ``.``), so the list exists
    once; typer turns it into a choice that ``--help`` shows and a wrong value exits with a
    usage error (code 2). Pass ``.value`` on to the library.
    """

    if TYPE_CHECKING:
        # A value is one of the Literal's values by construction, which mypy cannot follow.
        @property
        def value(self) -> Any: ...


class CCModeChoice(_Choice, choices=get_args(CCMode)):
    """Units of the CC-Metrics (:data:`evaluator.metrics.cc.CCMode`)."""


class LayoutChoice(_Choice, choices=get_args(PhantomLayout)):
    """Phantom layouts (:data:`evaluator.choices.PhantomLayout`)."""


class FormatChoice(_Choice, choices=get_args(ResultFormat)):
    """Further result layouts of ``ccbench evaluate`` (:data:`evaluator.choices.ResultFormat`)."""


class InterfaceChoice(_Choice, choices=get_args(Interface)):
    """How the container is run: once per split, or once per case (grand-challenge)."""


class FilesystemChoice(_Choice, choices=get_args(Filesystem)):
    """The container's root file system (:data:`evaluator.runner.contract.Filesystem`)."""


class BackendChoice(_Choice, choices=get_args(BackendName)):
    """Where `ccbench run` runs the containers (:data:`evaluator.runner.run.BackendName`)."""


class PromptChoice(_Choice, choices=get_args(PromptKind)):
    """``ccbench submit --prompts``."""


class ClickModeChoice(_Choice, choices=get_args(ClickMode)):
    """``ccbench run --click-mode``."""


class StagingChoice(_Choice, choices=get_args(Staging)):
    """How `ccbench run --scheduler` gets inputs to the workers (:data:`evaluator.choices.Staging`)."""


class StudyOperationChoice(_Choice, choices=get_args(StudyOperation)):
    """``--op`` of ``simulate dataset``: one degradation, or ``all`` four."""


class StudyOrderChoice(_Choice, choices=get_args(StudyOrder)):
    """``--order`` of ``simulate dataset``: ``smallest``, ``largest`` or ``both``."""


class BaseImageChoice(_Choice, choices=get_args(BaseImageName)):
    """A local base image (keys of :data:`evaluator.runner.images.BASE_IMAGES`)."""


class ToyStudyChoice(_Choice, choices=get_args(ToyStudyName)):
    """A toy-sphere study (keys of :data:`evaluator.simulate.toy.TOY_STUDIES`)."""


def _user_metric_refs(options: list[str] | None) -> tuple[str, ...]:
    """``--metric`` values -> the ``module:attribute`` references of the user metrics."""
    from evaluator.metrics.plugins import resolve_metric_options

    return resolve_metric_options(options or ())[1]


@app.callback()
def _root() -> None:
    """ccbench: run submitted segmentation models, score them, publish leaderboards.

    Examples:

        ccbench demo                                   # everything, on phantom data

        ccbench data phantoms --task autopet --cases 8

        ccbench metrics pred.nii.gz ref.nii.gz --metrics dice,cc_dice,hd95
    """


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@data_app.command("phantoms")
@_fail_cleanly
def data_phantoms(
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task", "-t", help="autopet, hecktor, btcv, chestxdet (repeatable) [default: all]."
        ),
    ] = None,
    cases: Annotated[int | None, typer.Option(help="Cases per task [default: per task].")] = None,
    size: Annotated[
        str,
        typer.Option(
            help="'small' (fast tests), 'full' (AutoPET-size 400x400x326) or e.g. 96x96x64."
        ),
    ] = "small",
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder [default: the phantom task's root in the workspace]."),
    ] = None,
    layout: Annotated[
        LayoutChoice,
        typer.Option(
            help="native: the dataset's own layout; nnunet: nnU-Net v2 raw layout (imagesTr, "
            "labelsTr, dataset.json; 3D tasks), read by the *-nnunet-phantom tasks."
        ),
    ] = LayoutChoice.native,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Write synthetic datasets in the real on-disk layouts.

    Examples:

        ccbench data phantoms                          # all four tasks, small

        ccbench data phantoms --task autopet --cases 20 --size full --seed 1

        ccbench data phantoms --task autopet --layout nnunet   # task autopet-nnunet-phantom
    """
    from evaluator.console import print_phantom_summary
    from evaluator.datasets.phantoms import phantom_tasks, write_phantoms

    ws = _workspace(workspace).ensure()
    tasks = task or list(phantom_tasks())
    if out is not None and len(tasks) > 1:
        raise typer.BadParameter("--out needs exactly one --task")
    from evaluator.console import ProgressBars

    with ProgressBars(_progress(quiet)) as bars:
        results = [
            write_phantoms(
                t,
                workspace=ws,
                cases=cases,
                size=size,
                seed=seed,
                out=out,
                layout=layout.value,
                progress=bars.add(f"phantoms: {t}"),
            )
            for t in tasks
        ]
    print_phantom_summary(results, console=console)


@data_app.command("split")
@_fail_cleanly
def data_split(
    task: TaskOpt,
    seed: Annotated[int, typer.Option(help="Random seed of the fold assignment.")] = 12345,
    out: Annotated[
        Path | None, typer.Option(help="Split file [default: the task's split_file].")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a split that runs were scored on.")
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(help="Results store asked for runs on the split [default: the workspace's]."),
    ] = None,
    shots: Annotated[
        str | None,
        typer.Option(
            "--shots",
            help="Also write few-shot training subsets: for each k of this comma-separated list, "
            "k development cases per target (label), seeded and nested (the 1-shot cases are "
            "among the 5-shot ones). Split names: shotsK (all targets) and shotsK:TARGET, e.g. "
            "shots5:liver. Reads every development case's reference once.",
            show_default=False,
        ),
    ] = None,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make the held-out test set and stratified 5-fold cross-validation splits.

    Writes nnU-Net ``splits_final.json``-compatible JSON. An existing split that runs in the
    store were scored on is not changed without --force (a leaderboard must not mix test sets).

    With `--shots 1,5` the test-set file also holds, per target, a k-case training subset of
    the development cases whose reference contains that target (never a test case), drawn with
    the same seed: `--split shots5` is the union over targets, `--split shots5:liver` one
    target's (quote names with spaces: 'shots1:right kidney'). A target with fewer eligible
    cases than k gets all of them, and a warning says so.

    Examples:

        ccbench data split --task autopet-phantom

        ccbench data split --task btcv-phantom --shots 1,5

        ccbench data cases --task btcv-phantom --split shots5:liver
    """
    from evaluator.console import print_split_summary
    from evaluator.datasets.splits import make_split
    from evaluator.store import Store

    ws = _workspace(workspace).ensure()

    def used_by(split: str) -> list[str]:
        with Store.open(store, workspace=ws) as db:
            return [
                r.name for r in db.list_runs(task=task) if r.parameters.get("split_id") == split
            ]

    ks = _int_list(shots, "--shots") if shots is not None else []
    if shots is not None and (not ks or min(ks) < 1):
        raise typer.BadParameter(
            f"{shots!r}: give sizes of at least 1, e.g. 1,5", param_hint="--shots"
        )
    result = make_split(
        task,
        workspace=ws,
        data_root=data_root,
        seed=seed,
        out=out,
        force=force,
        used_by=used_by,
        shots=ks,
    )
    print_split_summary(result, console=console)


@data_app.command("cases")
@_fail_cleanly
def data_cases(
    task: TaskOpt,
    split: Annotated[
        str, typer.Option("--split", "-s", help="Split name (test, fold0, ...) or 'all'.")
    ] = "test",
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the split as the batch interface's cases.json lists it, with absolute "
            "paths to the dataset's own files.",
        ),
    ] = False,
    stage: Annotated[
        Path | None,
        typer.Option(
            "--stage",
            help="Write DIR (new or empty) exactly as a batch container finds /input: "
            "cases.json and the files as staged (HECKTOR's PT resampled onto the CT grid, "
            "2D images as .mha).",
        ),
    ] = None,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """List a split's cases: their image files and the prediction file name each one needs.

    `--json` prints the batch interface's cases.json with absolute paths to the dataset's own
    files, so model code written for /input/cases.json runs on it outside a container (the
    same files for AutoPET and BTCV); `--stage DIR` writes the container's /input itself.
    `--split fold0` means fold 0's validation cases.

    Examples:

        ccbench data cases --task autopet-phantom --split test

        ccbench data cases -t autopet-phantom -s test --json > test-cases.json

        ccbench data cases -t hecktor-phantom -s test --stage staged/
    """
    import json

    from evaluator.datasets.splits import case_listing

    ws = _workspace(workspace)
    if stage is not None:
        from evaluator.runner.contract import stage_split_inputs

        path, skipped = stage_split_inputs(task, split, stage, workspace=ws, data_root=data_root)
        for case_id, why in skipped.items():
            err_console.print(
                f"[yellow]left out {markup_safe(case_id, oneline=True)}:[/] {markup_safe(why)}",
                highlight=False,
            )
        console.print(f"staged as a batch container's /input: {path}", highlight=False)
        return
    listing = case_listing(task, split, workspace=ws, data_root=data_root)
    if as_json:
        console.print(json.dumps(listing, indent=1), soft_wrap=True, highlight=False, markup=False)
        return
    from rich.table import Table

    table = Table(
        title=f"{listing['task']} / {split}: {len(listing['cases'])} cases",
        caption="--json lists each channel's file (the batch interface's cases.json)",
    )
    table.add_column("case", style="bold")
    table.add_column("channels")
    table.add_column("prediction file (in the folder given to evaluate --pred)")
    for case in listing["cases"]:
        table.add_row(
            markup_safe(case["case_id"], oneline=True),
            markup_safe(", ".join(case["channels"]), oneline=True),
            markup_safe(case["prediction"], oneline=True),
        )
    console.print(table)


@data_app.command("check")
@_fail_cleanly
def data_check(
    task: TaskOpt,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Validate every case: files decode, geometry agrees, labels are in the label map.

    Exits non-zero when any problem is found; each problem names the file.

    Examples:

        ccbench data check --task hecktor-phantom

        ccbench data check --task btcv --data-root /data/BTCV
    """
    from evaluator.console import print_check_report, progress_bar
    from evaluator.datasets.check import check_dataset

    ws = _workspace(workspace)
    with progress_bar(_progress(quiet), f"checking {task}") as hook:
        report = check_dataset(task, workspace=ws, data_root=data_root, progress=hook)
    print_check_report(report, console=console)
    if not report.ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


def _int_list(text: str, option: str) -> list[int]:
    """Parse a comma-separated list of integers, e.g. ``"1,2"``."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of integers", param_hint=option
        ) from None


@app.command("metrics")
@_fail_cleanly
def metrics_cmd(
    pred: Annotated[Path, typer.Argument(help="Prediction label image (NIfTI, MHA, PNG).")],
    ref: Annotated[Path, typer.Argument(help="Reference label image on the same grid.")],
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            "-m",
            help="Comma-separated metric names, or your own as module.path:attribute "
            "[default: all voxel metrics but the topology ones (cldice ...), which are "
            "scored only when named].",
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Comma-separated label values [default: every label in either image]."),
    ] = None,
    connectivity: Annotated[
        int | None, typer.Option(help="Component connectivity [default: 26 in 3D, 8 in 2D].")
    ] = None,
    nsd_tolerance_mm: Annotated[
        float,
        typer.Option(
            "--nsd-tolerance-mm",
            "--nsd-tolerance",
            help="Surface Dice (nsd, cc_nsd) tolerance, mm.",
        ),
    ] = 1.0,
    mode: Annotated[
        CCModeChoice,
        typer.Option(
            help="CC-Metrics units: 'mm' (default) or 'voxel' (as the ccmetrics package)."
        ),
    ] = CCModeChoice.mm,
    per_component: Annotated[
        bool, typer.Option("--per-component", help="Also print CC-Metrics per reference component.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score one prediction against one reference with any set of metrics.

    Examples:

        ccbench metrics pred.nii.gz ref.nii.gz

        ccbench metrics pred.nii.gz ref.nii.gz -m dice,hd95,cc_dice,cc_hd95 --per-component --json

        ccbench metrics pred.nii.gz ref.nii.gz -m dice,mypkg.metrics:my_metric
    """
    from evaluator.console import print_case_metrics
    from evaluator.metrics.files import score_files
    from evaluator.metrics.plugins import resolve_metric_options

    names = None
    if metrics is not None:
        names = resolve_metric_options([m.strip() for m in metrics.split(",") if m.strip()])[0]
    result = score_files(
        pred,
        ref,
        metrics=names,
        labels=None if labels is None else _int_list(labels, "--labels"),
        connectivity=connectivity,
        nsd_tolerance_mm=nsd_tolerance_mm,
        cc_mode=mode.value,
    )
    print_case_metrics(result, console=console, per_component=per_component, as_json=as_json)


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


@app.command("evaluate")
@_fail_cleanly
def evaluate_cmd(
    task: TaskOpt,
    pred: Annotated[
        Path,
        typer.Option(
            "--pred", "-p", help="Predictions folder (ChestXDet: COCO results or ChestXDet JSON)."
        ),
    ],
    split: RunSplitOpt = None,
    run_name: Annotated[
        str | None,
        typer.Option(
            help="Run name in the store; the same name resumes [default: task-split-pred]."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for results.csv and summary.json [default: the run's folder]."),
    ] = None,
    workers: ScoringWorkersOpt = None,
    scheduler: SchedulerOpt = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the results store [default: $CCBENCH_STORE or the workspace]."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-score a finished run.")] = False,
    entry: Annotated[str | None, typer.Option(help="Entry the predictions belong to.")] = None,
    scoring_memory_mb: ScoringMemoryOpt = None,
    scoring_time_limit: ScoringTimeOpt = 600.0,
    output_format: Annotated[
        list[FormatChoice] | None,
        typer.Option(
            "--format",
            help="Also write another layout (repeatable): nnunet = nnUNetv2_evaluate_folder's "
            "summary.json in OUT/nnunet/.",
            show_default=False,
        ),
    ] = None,
    metric: UserMetricOpt = None,
    labels: LabelsOpt = None,
    fold: FoldOpt = None,
    folds: FoldsOpt = None,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Score a folder of predictions against a split with the task's metric profile.

    Every number goes to the results store; results.csv (one row per case and label) and
    summary.json are written to --out. A killed run resumes where it stopped. With
    --format nnunet, OUT/nnunet/summary.json has nnU-Net's layout and numbers (per case and
    mean per label and region, foreground_mean).

    Examples:

        ccbench evaluate --task hecktor-phantom --split test --pred preds/

        ccbench evaluate -t autopet-phantom --split all --pred preds/ --format nnunet

        ccbench evaluate -t btcv --split all --pred out/ --scheduler tcp://10.0.0.5:8786

        ccbench evaluate -t autopet --split test --pred out/ --scheduler local --workers 8

        ccbench evaluate -t btcv-phantom --split all --pred out/ --labels btcv-phantom=spleen,liver

        ccbench evaluate -t autopet-2d --folds all --pred 'cv/fold{fold}/' --entry my-model
    """
    declared = _labels_option(labels)
    other = [t for t in declared if t != task]
    if other:
        raise typer.BadParameter(
            f"names task(s) {other}, but the predictions are of task {task}",
            param_hint="--labels",
        )
    ws = _workspace(workspace).ensure()
    runs = _fold_runs(fold, folds, split, task, ws, data_root)
    if len(runs) > 1 and "{fold}" not in str(pred):
        raise typer.BadParameter(
            "with several folds, --pred names each fold's folder with {fold}, e.g. cv/fold{fold}/",
            param_hint="--pred",
        )
    if len(runs) > 1 and entry is None:
        raise typer.BadParameter(
            "with several folds, name the entry the fold runs belong to (the board summarises "
            "an entry over its folds)",
            param_hint="--entry",
        )
    preds = [Path(str(pred).replace("{fold}", str(k))) for k, _ in runs]
    absent = [str(p) for p in preds if not p.exists()]
    if len(runs) > 1 and absent:  # before any fold is scored
        raise typer.BadParameter(f"no predictions at {', '.join(absent)}", param_hint="--pred")
    for (model_fold, run_split), fold_pred in zip(runs, preds, strict=True):
        _evaluate_one(
            task, run_split, fold_pred, ws, model_fold,
            run_name=run_name if run_name is None or len(runs) == 1 else f"{run_name}-fold{model_fold}",
            out=out / f"fold{model_fold}" if out is not None and len(runs) > 1 else out,
            workers=workers, scheduler=scheduler, store=store, force=force, entry=entry,
            scoring=(scoring_memory_mb, scoring_time_limit), data_root=data_root,
            formats=[f.value for f in output_format or ()], metric=metric, quiet=quiet,
            labels=declared.get(task),
        )  # fmt: skip


def _evaluate_one(
    task: str,
    split: str,
    pred: Path,
    ws: Workspace,
    fold: int | None,
    *,
    run_name: str | None,
    out: Path | None,
    workers: int | None,
    scheduler: str | None,
    store: str | None,
    force: bool,
    entry: str | None,
    scoring: tuple[int | None, float],
    data_root: Path | None,
    formats: list[str],
    metric: list[str] | None,
    quiet: bool,
    labels: list[str] | None,
) -> None:
    """One ``ccbench evaluate`` run (a fold's, with ``fold``)."""
    from evaluator.console import evaluation_progress, print_evaluation
    from evaluator.evaluate import evaluate_run

    scoring_memory_mb, scoring_time_limit = scoring
    with evaluation_progress(_progress(quiet)) as on_case:
        result = evaluate_run(
            task,
            split,
            pred,
            workspace=ws,
            protocol=None if fold is None else {"fold": fold},
            run_name=run_name,
            out=out,
            workers=workers,
            scheduler=scheduler,
            store=store,
            force=force,
            entry=entry,
            data_root=data_root,
            on_case=on_case,
            memory_mb=scoring_memory_mb,
            time_limit_s=scoring_time_limit,
            on_wait=lambda message: err_console.print(
                f"[yellow]{markup_safe(message)}[/]", highlight=False, soft_wrap=True
            ),
            formats=formats,
            user_metrics=_user_metric_refs(metric),
            labels=labels,
        )
    print_evaluation(result, console=console)
    if formats:
        console.print(f"nnU-Net summary: {result.out / 'nnunet' / 'summary.json'}")


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


@app.command("demo")
@_fail_cleanly
def demo(
    workspace: WorkspaceOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    quiet: QuietOpt = False,
) -> None:
    """Run the main job end to end on phantom data.

    Examples:

        ccbench demo

        ccbench demo --workspace /tmp/ccbench-demo
    """
    from evaluator.demo import run_demo

    ok = run_demo(
        _workspace(workspace).ensure(), seed=seed, console=console, progress=_progress(quiet)
    )
    if not ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------
# containers: images, submit, run
# --------------------------------------------------------------------------------------------

images_app = typer.Typer(
    help="Local container base images (no registry needed).", no_args_is_help=True
)
app.add_typer(images_app, name="images")
SubmissionsOpt = Annotated[
    Path | None,
    typer.Option(
        "--submissions",
        help="Folder of entry manifests (YAML) [default: WORKSPACE/submissions; `run` also "
        "looks in ./submissions].",
    ),
]


def _manifests(submissions: Path | None, ws: Workspace, entry: str | None = None) -> Path:
    """The manifests folder: ``--submissions``, else the workspace's.

    For an entry to run, a manifest found only in ``./submissions`` (the repository's examples,
    or a layout of ccbench before manifests moved into the workspace) is read from there.
    """
    if submissions is not None:
        return submissions
    legacy = Path("submissions")
    if (
        entry is not None
        and not (ws.submissions / f"{entry}.yaml").is_file()
        and (legacy / f"{entry}.yaml").is_file()
    ):
        return legacy
    return ws.submissions


@images_app.command("build-base")
@_fail_cleanly
def images_build_base(
    image: Annotated[
        list[BaseImageChoice] | None,
        typer.Option(
            "--image",
            "-i",
            help="Base image to build (repeatable; parents are added) [default: all].",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild images that exist.")] = False,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build the local base images with debootstrap and pip wheels; skips what exists.

    Examples:

        ccbench images build-base                      # python, sci, torch, nnunet

        ccbench images build-base --image sci
    """
    from evaluator.console import print_base_images, progress_bar
    from evaluator.runner.images import build_base_images

    with progress_bar(_progress(quiet), "base images", every=True) as hook:
        results = build_base_images(
            _workspace(workspace).ensure(),
            images=[i.value for i in image] if image else list(get_args(BaseImageName)),
            force=force,
            progress=hook,
        )
    print_base_images(results, console=console)


def _gpus(text: str) -> Literal["auto", "never", "all"] | int:
    if text in ("auto", "never", "all"):
        return cast(Literal["auto", "never", "all"], text)
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise typer.BadParameter(f"{text!r}: use auto, never, all or a count", param_hint="--gpus")


def _resources(what: str, *, gpus: str, filesystem: FilesystemChoice, **limits: Any) -> Resources:
    """An entry's resources from the command line; a value out of range is a
    :class:`SubmissionError` naming ``what`` and the field."""
    from pydantic import ValidationError

    from evaluator.errors import SubmissionError
    from evaluator.runner.contract import Resources, invalid_fields

    try:
        return Resources(gpus=_gpus(gpus), filesystem=filesystem.value, **limits)
    except ValidationError as err:
        raise SubmissionError(f"{what}: {invalid_fields(err)}") from err


def _submit_to_server(
    server: str,
    token: str | None,
    *,
    image_file: Path | None,
    phase: str | None,
    wait: bool,
    allow_http: bool,
    others: list[object],
) -> None:
    """``ccbench submit --server``: upload an archive to a challenge, and maybe wait for it."""
    from evaluator.server.client import submit_to_server, wait_for_submission

    if image_file is None or phase is None:
        raise typer.BadParameter("--server needs --image-file and --phase")
    if others:
        raise typer.BadParameter(
            "--server uploads --image-file to a phase: no IMAGE, --name, --task or "
            "--nnunet-results (the server names the entry)"
        )
    if not token:
        raise typer.BadParameter("give the team's token: --token, or $CCBENCH_TOKEN")
    answer = submit_to_server(
        server, token, image_file, phase, allow_http=allow_http,
        say=lambda text: err_console.print(text, highlight=False, markup=False),
    )  # fmt: skip
    sid = int(answer["id"])
    again = " (the same upload, sent again)" if answer.get("replayed") else ""
    said = (
        f"submission {sid} to phase {answer['phase']}: {answer['status']}{again}; archive "
        f"sha256 {answer.get('archive_sha256')}"
    )
    console.print(printable(said, oneline=True), highlight=False, markup=False)
    if wait:
        with _progress(False).status(f"waiting for submission {sid}"):
            final = wait_for_submission(server, token, sid, allow_http=allow_http)
        error = f" ({final['error_class']})" if final.get("error_class") else ""
        scores = ", ".join(f"{m} {v}" for m, v in (final.get("scores") or {}).items())
        said = f"submission {sid}: {final['status']}{error}" + (f"; {scores}" if scores else "")
        console.print(printable(said, oneline=True), highlight=False, markup=False)
        if final["status"] != "finished":
            raise typer.Exit(1)


@app.command("submit")
@_fail_cleanly
def submit_cmd(
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Entry name.", show_default=False)
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task", "-t", help="Task the entry is for (repeatable).", show_default=False
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Upload --image-file to a challenge served by `ccbench serve` (https://host) "
            "instead of registering a local entry.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="CCBENCH_TOKEN",
            help="The team's token for --server (or $CCBENCH_TOKEN, kept out of the shell's "
            "history).",
            show_default=False,
        ),
    ] = None,
    phase: Annotated[
        str | None, typer.Option(help="The challenge's phase, for --server.", show_default=False)
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="With --server: wait until the submission has run."),
    ] = False,
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http", help="With --server: plain http to a host other than loopback."
        ),
    ] = False,
    image: Annotated[
        str | None,
        typer.Argument(help="Image tag or id in the local Docker engine (or use --image-file)."),
    ] = None,
    image_file: Annotated[
        Path | None,
        typer.Option(
            "--image-file",
            help="A `docker save` archive (.tar or .tar.gz), loaded into the engine first.",
        ),
    ] = None,
    replace_tags: Annotated[
        bool,
        typer.Option("--replace-tags", help="Let the archive's tags move existing local tags."),
    ] = False,
    max_archive_gb: Annotated[
        float, typer.Option(help="Largest archive accepted, GiB (grand-challenge takes 10).")
    ] = 10.0,
    team: Annotated[str, typer.Option(help="Team name.")] = "",
    interface: Annotated[
        InterfaceChoice,
        typer.Option(help="'batch' (one run per split) or 'grand-challenge' (one per case)."),
    ] = InterfaceChoice.batch,
    memory_mb: Annotated[int, typer.Option(help="Memory limit, MiB.")] = 4096,
    cpus: Annotated[float, typer.Option(help="CPU share.")] = 2.0,
    pids: Annotated[int, typer.Option(help="Process-count limit.")] = 128,
    time_limit: Annotated[float, typer.Option(help="Wall-clock limit per case, seconds.")] = 600.0,
    shm_mb: Annotated[int, typer.Option(help="/dev/shm size, MiB.")] = 64,
    gpus: Annotated[
        str,
        typer.Option(help="'auto' (when the host has them), 'never', 'all' or a count (required)."),
    ] = "auto",
    filesystem: Annotated[
        FilesystemChoice,
        typer.Option(help="'ephemeral' (writable, thrown away; grand-challenge) or 'read-only'."),
    ] = FilesystemChoice.ephemeral,
    layer_mb: Annotated[int, typer.Option(help="Cap of the ephemeral writable layer, MiB.")] = 2048,
    command: Annotated[
        str | None,
        typer.Option(help="Command overriding the image's CMD, e.g. 'python predict.py'."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the entry.")] = False,
    baseline: Annotated[
        bool,
        typer.Option("--baseline", help="A reference algorithm: marked as a baseline on boards."),
    ] = False,
    prompts: Annotated[
        list[PromptChoice] | None,
        typer.Option(
            "--prompts",
            help="What the entry reads from /input/prompts.json (repeatable): 'text' (the "
            "target names to segment) or 'clicks' (an interactive entry, run per click budget).",
            show_default=False,
        ),
    ] = None,
    labels: LabelsOpt = None,
    nnunet_results: Annotated[
        Path | None,
        typer.Option(
            "--nnunet-results",
            help="A trained nnU-Net v2 results folder (TRAINER__PLANS__CONFIGURATION, or the "
            "DatasetNNN_Name folder above it): checked, packed (weights only), built into an image.",
            show_default=False,
        ),
    ] = None,
    folds: Annotated[
        str | None,
        typer.Option(help="nnU-Net folds to ensemble, e.g. 0,1,2,3,4 [default: every fold found]."),
    ] = None,
    configuration: Annotated[
        str, typer.Option(help="nnU-Net configuration of --nnunet-results.")
    ] = "3d_fullres",
    checkpoint: Annotated[
        str, typer.Option(help="Checkpoint file of each nnU-Net fold.")
    ] = "checkpoint_final.pth",
    tta: Annotated[
        bool,
        typer.Option(
            "--tta/--no-tta",
            help="nnU-Net test-time augmentation (mirroring); the manifest's command carries it.",
        ),
    ] = True,
    submissions: SubmissionsOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Register a container image (or a trained nnU-Net model) as an entry, or upload an image
    archive to a challenge (--server).

    An image must exist in the local engine (or come as an archive); its digest is recorded. A
    nnU-Net results folder is checked against each task (channels, labels), packed with the
    network weights only and built into an image on the local nnU-Net base image.

    Examples:

        ccbench submit ccbench/threshold:latest --name threshold --task autopet-phantom

        ccbench submit --image-file algorithm.tar.gz --name mine --task autopet-phantom --interface grand-challenge

        ccbench submit --nnunet-results nnUNet_results/Dataset221_AutoPETII/nnUNetTrainer__nnUNetPlans__3d_fullres --name my-nnunet --task autopet --folds 0,1,2,3,4

        CCBENCH_TOKEN=... ccbench submit --server https://challenge.example.org --image-file algo.tar.gz --phase final --wait
    """
    import shlex

    from evaluator.console import print_submission
    from evaluator.runner.submissions import load_image_archive, submit_image

    if server is not None:
        _submit_to_server(
            server, token, image_file=image_file, phase=phase, wait=wait, allow_http=allow_http,
            others=[x for x in (image, nnunet_results, name, task) if x],
        )  # fmt: skip
        return
    if name is None or not task:
        raise typer.BadParameter("give --name and --task (or --server to upload to a challenge)")
    given = [x for x in (image, image_file, nnunet_results) if x is not None]
    if len(given) != 1:
        raise typer.BadParameter("give an IMAGE, --image-file or --nnunet-results (one of them)")
    if not max_archive_gb > 0 or max_archive_gb == float("inf"):
        raise typer.BadParameter("must be a positive number", param_hint="--max-archive-gb")
    resources = _resources(
        f"entry {name}",
        memory_mb=memory_mb,
        cpus=cpus,
        pids=pids,
        time_limit_s=time_limit,
        shm_mb=shm_mb,
        gpus=gpus,
        filesystem=filesystem,
        layer_mb=layer_mb,
    )
    if nnunet_results is not None:
        if labels:
            raise typer.BadParameter(
                "a nnU-Net model predicts every label of its tasks", param_hint="--labels"
            )
        if command:
            raise typer.BadParameter(
                "the nnU-Net image has its own command", param_hint="--command"
            )
        from evaluator.runner.baselines import submit_nnunet_results

        ws = _workspace(workspace).ensure()
        fold_list = [f.strip() for f in folds.split(",") if f.strip()] if folds else None
        with _progress(quiet).status("packing and building the nnU-Net image"):
            entry = submit_nnunet_results(
                nnunet_results, name=name, tasks=task, workspace=ws,
                submissions_dir=_manifests(submissions, ws), configuration=configuration,
                folds=fold_list, checkpoint=checkpoint, tta=tta, team=team,
                interface=interface.value, resources=resources, overwrite=overwrite,
                baseline=baseline,
            )  # fmt: skip
        print_submission(entry.manifest, entry.path, console=console)
        console.print(
            f"nnU-Net {entry.results.configuration}, folds {', '.join(entry.results.folds)}, "
            f"trainer {entry.results.trainer}; image {entry.image} ({entry.size_mb:.0f} MB)",
            highlight=False,
        )
        named = entry.results.dataset_json.get("channel_names") or {}
        for task_name, order in entry.channels.items():
            pairs = ", ".join(
                f"{i} ({markup_safe(str(named.get(str(i), '-')))}) <- {ch}"
                for i, ch in enumerate(order)
            )
            console.print(
                f"{task_name}: model channel (dataset.json name) <- task channel: {pairs}"
            )
        return
    backend = None
    if image_file is not None:
        from evaluator.runner.docker_backend import DockerBackend

        backend = DockerBackend()
        with _progress(quiet).status(f"checking and loading {image_file}"):
            loaded = load_image_archive(
                image_file,
                backend=backend,
                max_bytes=int(max_archive_gb * 2**30),
                replace_tags=replace_tags,
            )
        image = loaded.tags[0] if loaded.tags else loaded.image_id
    assert image is not None
    manifest, path = submit_image(
        image,
        name=name,
        tasks=task,
        team=team,
        interface=interface.value,
        resources=resources,
        command=shlex.split(command) if command else None,
        submissions_dir=_manifests(submissions, _workspace(workspace)),
        overwrite=overwrite,
        backend=backend,
        kind="baseline" if baseline else "entry",
        prompts=tuple(p.value for p in prompts or ()),
        labels=_labels_option(labels) or None,
    )
    print_submission(manifest, path, console=console)


@app.command("preflight")
@_fail_cleanly
def preflight_cmd(
    image: Annotated[str, typer.Argument(help="Image tag or id in the local Docker engine.")],
    task: TaskOpt,
    interface: Annotated[
        InterfaceChoice,
        typer.Option(help="'batch' (one run per split) or 'grand-challenge' (one per case)."),
    ] = InterfaceChoice.batch,
    cases: Annotated[
        int, typer.Option(min=1, help="How many cases to run (the first of the split).")
    ] = 2,
    split: Annotated[str, typer.Option("--split", "-s", help="Split the cases come from.")] = "all",
    memory_mb: Annotated[int, typer.Option(help="Memory limit, MiB.")] = 4096,
    cpus: Annotated[float, typer.Option(help="CPU share.")] = 2.0,
    pids: Annotated[int, typer.Option(help="Process-count limit.")] = 128,
    time_limit: Annotated[float, typer.Option(help="Wall-clock limit per case, seconds.")] = 600.0,
    shm_mb: Annotated[int, typer.Option(help="/dev/shm size, MiB.")] = 64,
    tmp_mb: Annotated[int, typer.Option(help="/tmp size, MiB.")] = 512,
    gpus: Annotated[str, typer.Option(help="'auto', 'never', 'all' or a count.")] = "auto",
    filesystem: Annotated[
        FilesystemChoice, typer.Option(help="'ephemeral' or 'read-only'.")
    ] = FilesystemChoice.ephemeral,
    layer_mb: Annotated[int, typer.Option(help="Cap of the ephemeral writable layer, MiB.")] = 2048,
    command: Annotated[str | None, typer.Option(help="Command overriding the image's CMD.")] = None,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """For participants: run an image on a few cases as `ccbench run` would, and name every fault.

    Reports what a platform would reject (no output, wrong names or slug, geometry, format,
    labels, time and memory against the limits, network attempts, writes outside /output and
    /tmp), each with its fix. Exits 0 only when the image would be scored.

    Examples:

        ccbench preflight my-algorithm:latest --task autopet-phantom

        ccbench preflight my-gc-algorithm:latest -t autopet-phantom --interface grand-challenge
    """
    import shlex

    from evaluator.console import print_preflight, progress_bar
    from evaluator.runner.preflight import preflight

    resources = _resources(
        f"preflight of {image}",
        memory_mb=memory_mb,
        cpus=cpus,
        pids=pids,
        time_limit_s=time_limit,
        shm_mb=shm_mb,
        tmp_mb=tmp_mb,
        gpus=gpus,
        filesystem=filesystem,
        layer_mb=layer_mb,
    )
    with progress_bar(_progress(quiet), f"preflight of {image}", every=True) as hook:
        report = preflight(
            image,
            task=task,
            workspace=_workspace(workspace).ensure(),
            interface=interface.value,
            cases=cases,
            split=split,
            data_root=data_root,
            resources=resources,
            command=shlex.split(command) if command else None,
            progress=hook,
        )

    print_preflight(report, console=console)
    if not report.ok:
        raise typer.Exit(1)


@app.command("run")
@_fail_cleanly
def run_cmd(
    entry: Annotated[
        str, typer.Argument(help="Entry name (WORKSPACE/submissions/NAME.yaml) or a manifest path.")
    ],
    task: TaskOpt,
    split: RunSplitOpt = None,
    backend: Annotated[
        BackendChoice,
        typer.Option(help="'docker' (sandboxed) or 'local' (plain subprocess, development only)."),
    ] = BackendChoice.docker,
    evaluate: Annotated[
        bool, typer.Option("--evaluate/--no-evaluate", help="Score the outputs into the store.")
    ] = True,
    submissions: SubmissionsOpt = None,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="The organiser's choice: run with a read-only root whatever the entry asks.",
        ),
    ] = False,
    scoring_memory_mb: ScoringMemoryOpt = None,
    scoring_time_limit: ScoringTimeOpt = 600.0,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address: run the containers on its workers, each on its own "
            "Docker engine (scoring and the store stay here); 'local' for a cluster of "
            "--workers processes on this machine, started for this call.",
            show_default=False,
        ),
    ] = None,
    workers: ScoringWorkersOpt = None,
    shard_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Batch interface: cases per container [default: all in one; with --scheduler, "
            "the split shared evenly by the workers' threads].",
        ),
    ] = None,
    staging: Annotated[
        StagingChoice,
        typer.Option(
            help="With --scheduler: 'transfer' (inputs travel with each job) or 'shared' "
            "(staged under the workspace, which every worker mounts at the same path)."
        ),
    ] = StagingChoice.transfer,
    clicks: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=100,
            help="Interactive entries (prompts: clicks): the largest click budget N; the entry "
            "runs at budgets 0..N, each scored as its own run [default: 10, as autoPET IV].",
            show_default=False,
        ),
    ] = None,
    click_mode: Annotated[
        ClickModeChoice,
        typer.Option(
            help="'autopet-iv': the official simulator's clicks (drawn once from the reference "
            "and PET; budget k = the first k of each kind); 'corrective': each budget adds a "
            "click in the previous prediction's largest missed and false-positive regions."
        ),
    ] = ClickModeChoice.autopet_iv,
    click_seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2**32 - 1,
            help="Seed of the autopet-iv click simulator [default: 42, as autoPET IV].",
            show_default=False,
        ),
    ] = None,
    shots: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="The few-shot subset (k cases per target, `ccbench data split --shots`) the "
            "entry was adapted on: recorded with the run; the leaderboard groups by it.",
            show_default=False,
        ),
    ] = None,
    fold: FoldOpt = None,
    folds: FoldsOpt = None,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run an entry's container on every case of a split, validate, score and store.

    An entry that declares `prompts: text` finds the task's target names in
    /input/prompts.json; one that declares `prompts: clicks` is run once per click budget.

    Examples:

        ccbench run threshold --task autopet-phantom --split test

        ccbench run threshold -t btcv-phantom -s all --backend local

        ccbench run threshold -t autopet-phantom -s all --scheduler tcp://10.0.0.5:8786

        ccbench run click-grow -t autopet-phantom -s test --clicks 10

        ccbench run monai-unet-2d -t autopet-2d-phantom --folds all

        ccbench run monai-unet-2d -t autopet-2d-phantom --folds all --split test
    """
    from evaluator.console import print_budget, print_run_outcome, run_progress
    from evaluator.runner.contract import SandboxLimits, load_manifest
    from evaluator.runner.interactive import ClickProtocol
    from evaluator.runner.run import run_entry

    if scheduler is None and staging is not StagingChoice.transfer:
        raise typer.BadParameter("only with --scheduler", param_hint="--staging")

    ws = _workspace(workspace).ensure()
    manifests = _manifests(submissions, ws, entry)
    interactive = "clicks" in load_manifest(entry, submissions_dir=manifests).prompts
    given = {
        "--clicks": clicks is not None,
        "--click-mode": click_mode is not ClickModeChoice.autopet_iv,
        "--click-seed": click_seed is not None,
    }
    for option, used in given.items():
        if used and not interactive:
            raise typer.BadParameter(
                f"only for an entry that declares `prompts: clicks` ({entry} does not)",
                param_hint=option,
            )
    protocol = None
    if interactive:
        protocol = ClickProtocol(
            budgets=10 if clicks is None else clicks,
            mode=click_mode.value,
            seed=42 if click_seed is None else click_seed,
        )
    for model_fold, run_split in _fold_runs(fold, folds, split, task, ws, data_root):
        with run_progress(_progress(quiet)) as (containers, on_case):
            outcome = run_entry(
                entry,
                task=task,
                split=run_split,
                fold=model_fold,
                workspace=ws,
                backend=backend.value,
                submissions_dir=manifests,
                data_root=data_root,
                evaluate=evaluate,
                limits=SandboxLimits(filesystem="read-only") if read_only else None,
                scoring_memory_mb=scoring_memory_mb,
                scoring_time_limit_s=scoring_time_limit,
                progress=containers,
                on_case=on_case,
                scheduler=scheduler,
                workers=workers,
                shard_size=shard_size,
                staging=staging.value,
                clicks=protocol,
                shots=shots,
                on_budget=(lambda k, o: print_budget(k, o, console=console))
                if interactive
                else None,
            )
        print_run_outcome(outcome, console=console)


@app.command("logs")
@_fail_cleanly
def logs_cmd(
    run: Annotated[str, typer.Argument(help="Run name (as `ccbench evaluate`/`run` printed it).")],
    case: Annotated[str | None, typer.Option(help="Only this case's errors and logs.")] = None,
    store: Annotated[
        str | None,
        typer.Option(help="Results store URL [default: $CCBENCH_STORE or the workspace]."),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show a run's container logs and per-case error messages (for the organiser).

    Logs can carry test data printed by a container, so they are kept in the store and shown
    here, never on the published site.

    Examples:

        ccbench logs threshold__autopet-phantom__test__20261201T101500000000

        ccbench logs mine --case PETCT_0af7ffe12a_0
    """
    from evaluator.console import print_run_logs
    from evaluator.errors import StoreError
    from evaluator.store import Store

    with Store.open(store, workspace=_workspace(workspace), create=False) as db:
        info = db.find_run(run)
        if info is None:
            known = [r.name for r in db.list_runs()][-5:]
            raise StoreError(
                f"no run '{run}' in {db.shown_url} (latest: {', '.join(known) or 'none'})"
            )
        frame = db.errors_frame(run_ids=[info.id])
        errors = [
            (str(r.case_id), str(r.error_class), str(r.message))
            for r in frame.itertuples()
            if case is None or r.case_id == case
        ]
        logs = [entry for entry in db.logs(info.id) if case is None or entry[0] == case]
    print_run_logs(info.name, errors, logs, console=console)


# --------------------------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------------------------

cluster_app = typer.Typer(
    help="Dask clusters for `ccbench run --scheduler` (Slurm worker jobs).", no_args_is_help=True
)
app.add_typer(cluster_app, name="cluster")


@cluster_app.command("slurm")
@_fail_cleanly
def cluster_slurm(
    jobs: Annotated[int, typer.Option(min=1, help="Worker jobs (one Dask worker each).")] = 1,
    cores: Annotated[int, typer.Option(min=1, help="CPUs per job (for its containers).")] = 4,
    memory: Annotated[str, typer.Option(help="Memory per job (sbatch --mem), e.g. 32GB.")] = "16GB",
    gpus: Annotated[
        int, typer.Option(min=0, help="GPUs per job (--gres=gpu:N; the Dask resource GPU=N).")
    ] = 0,
    queue: Annotated[str | None, typer.Option(help="Slurm partition.")] = None,
    account: Annotated[str | None, typer.Option(help="Slurm account.")] = None,
    walltime: Annotated[str, typer.Option(help="Time limit of each job.")] = "04:00:00",
    host: Annotated[
        str | None, typer.Option(help="Address the scheduler listens on (reachable by the nodes).")
    ] = None,
    local_directory: Annotated[
        str | None, typer.Option(help="Workers' scratch folder on their node [default: $TMPDIR].")
    ] = None,
    log_directory: Annotated[str | None, typer.Option(help="Folder for the jobs' logs.")] = None,
    extra: Annotated[
        list[str] | None, typer.Option("--sbatch", help="A further #SBATCH directive (repeat).")
    ] = None,
    address_file: Annotated[
        Path | None,
        typer.Option(help="Write the scheduler's address here once the workers are up."),
    ] = None,
) -> None:
    """Start Dask workers as Slurm jobs and keep them until stopped (Ctrl-C cancels the jobs).

    Run it on a login node, then `ccbench run ... --scheduler ADDRESS` from another shell.

    Examples:

        ccbench cluster slurm --jobs 8 --cores 8 --memory 64GB --gpus 1 --queue gpu

        ccbench run my-entry -t autopet -s test --scheduler tcp://10.0.0.5:8786
    """
    from evaluator.runner.cluster import SlurmWorkers, serve_until_stopped, slurm_cluster

    spec = SlurmWorkers(
        jobs=jobs,
        cores=cores,
        memory=memory,
        gpus=gpus,
        queue=queue,
        account=account,
        walltime=walltime,
        local_directory=local_directory,
        log_directory=log_directory,
        extra=tuple(extra or ()),
    )
    with slurm_cluster(spec, host=host) as cluster:
        address = cluster.scheduler_address
        console.print(f"scheduler at {address}; waiting for {jobs} worker job(s) (Ctrl-C stops)")
        console.print(f"then: ccbench run ENTRY -t TASK -s SPLIT --scheduler {address}")
        serve_until_stopped(cluster, address_file=address_file, wait_for=jobs)
    console.print("cluster stopped, jobs cancelled")


simulate_app = typer.Typer(
    help="Degradation studies: toy spheres and dataset-level simulations.", no_args_is_help=True
)
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("toy")
@_fail_cleanly
def simulate_toy(
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder [default: WORKSPACE/simulations/toy]."),
    ] = None,
    scale: Annotated[
        float,
        typer.Option(
            help="Geometry scale: 0.25 (default) runs in about a minute; 1 is the thesis "
            "geometry (500^3 spheres: 7-11 min and about 1.2 GB)."
        ),
    ] = 0.25,
    study: Annotated[
        list[ToyStudyChoice] | None,
        typer.Option(help="Run only this study (repeatable) [default: all]."),
    ] = None,
    metric: UserMetricOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Toy-sphere studies (Dice vs CC-Dice vs PQ, Lesion Dice, HD95, NSD): CSV, PNG and SVG.

    Examples:

        ccbench simulate toy --out toy/ --scale 0.25

        ccbench simulate toy --study nsd_shift --study hd95_erode

        ccbench simulate toy --metric mypkg.metrics:my_metric
    """
    from evaluator.console import print_toy_result, toy_progress
    from evaluator.metrics.plugins import activate, resolve_metric_options
    from evaluator.simulate.toy import run_toy_studies

    names = resolve_metric_options(metric or ())[0]
    registered = activate()  # entry points, as every evaluation scores them
    folder = out if out is not None else _workspace(workspace).simulations / "toy"
    with toy_progress(_progress(quiet)) as progress:
        result = run_toy_studies(
            folder,
            scale=scale,
            studies=[s.value for s in study] if study else None,
            progress=progress,
            metrics=tuple(dict.fromkeys((*registered, *names))),
        )
    print_toy_result(result, console=console)


@simulate_app.command("dataset")
@_fail_cleanly
def simulate_dataset(
    task: TaskOpt,
    op: Annotated[
        StudyOperationChoice,
        typer.Option(help="How to degrade the references; all: the four operators."),
    ] = StudyOperationChoice.all,
    split: Annotated[
        str, typer.Option("--split", "-s", help="Split name (test, fold0, ...) or 'all'.")
    ] = "test",
    order: Annotated[
        StudyOrderChoice | None,
        typer.Option(
            help="Edit the n 'smallest' or 'largest' components, or both [default: both with "
            "--op all, else smallest].",
            show_default=False,
        ),
    ] = None,
    n_max: Annotated[int, typer.Option(help="Largest number of edited components.")] = 10,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder [default: WORKSPACE/simulations/TASK-SPLIT]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the inserted components' locations.")] = 0,
    margin_mm: Annotated[
        float | None,
        typer.Option(help="Enlarge / erode margin in mm [default: one voxel, 3x3x3 element]."),
    ] = None,
    workers: ScoringWorkersOpt = None,
    scheduler: SchedulerOpt = None,
    store: Annotated[
        str | None,
        typer.Option(help="Results store URL [default: $CCBENCH_STORE or the workspace]."),
    ] = None,
    metric: UserMetricOpt = None,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Degrade every case's reference n = 1..n-max times and score all metrics and CC-Metrics.

    Without --op, all four operators run on the n smallest and the n largest components: the
    whole sensitivity analysis in one command, which `ccbench leaderboard` then shows next to
    the ranking of the same task and split. Results go to the store (a killed study resumes,
    a metric added later is scored for the stored cases); CSVs, PNG/SVG plots and the metric
    sensitivity table (sensitivity.csv / .md) go to --out.

    Examples:

        ccbench simulate dataset --task autopet-phantom --split all --op drop --order largest

        ccbench simulate dataset -t autopet --split test --op insert --n-max 10 --out sims/

        ccbench simulate dataset -t autopet-phantom --split all --metric mypkg.metrics:my_metric
    """
    from evaluator.console import evaluation_progress, print_dataset_study
    from evaluator.simulate.dataset import run_dataset_study, study_grid

    ws = _workspace(workspace).ensure()
    refs = _user_metric_refs(metric)
    for one_op, one_order in study_grid(op.value, None if order is None else order.value):
        with evaluation_progress(_progress(quiet)) as on_case:
            result = run_dataset_study(
                task,
                split,
                op=one_op,
                order=one_order,
                workspace=ws,
                n_max=n_max,
                out=out,
                seed=seed,
                margin_mm=margin_mm,
                workers=workers,
                scheduler=scheduler,
                store=store,
                data_root=data_root,
                on_case=on_case,
                user_metrics=refs,
            )
        print_dataset_study(result, console=console)


# --------------------------------------------------------------------------------------------
# leaderboard
# --------------------------------------------------------------------------------------------


@app.command("leaderboard")
@_fail_cleanly
def leaderboard_cmd(
    task: TaskOpt,
    split: Annotated[
        str, typer.Option("--split", "-s", help="Split name (test, fold0, ...).")
    ] = "test",
    out: Annotated[Path | None, typer.Option(help="Site folder [default: WORKSPACE/site].")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    n_resamples: Annotated[
        int, typer.Option("--resamples", help="Bootstrap samples over cases.")
    ] = 1000,
    alpha: Annotated[
        float, typer.Option(help="Significance level of the test-based ranking.")
    ] = 0.05,
    store: Annotated[
        str | None,
        typer.Option(help="Results store URL [default: $CCBENCH_STORE or the workspace]."),
    ] = None,
    show_images: Annotated[
        bool | None,
        typer.Option(
            "--show-images/--hide-images",
            help="Publish slices of the cases' images and references [default: phantoms only].",
            show_default=False,
        ),
    ] = None,
    reference_entry: Annotated[
        str | None,
        typer.Option(
            "--reference-entry",
            help="Entry that every other entry is compared with by paired tests, besides the "
            "leader [default: none].",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Processes drawing the figures [default: one per CPU, at most 4]."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            help="Rank and judge your own metric too, module.path:attribute (repeatable), when "
            "the runs or studies were scored with it; registered ones always are.",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Rank every finished run of a task and split; write plots and a static HTML site.

    With a degradation study of the same task and split in the store (`ccbench simulate
    dataset`), the board says which errors each ranked metric sees; its disagreement explorer
    lists the cases where standard and CC-Metrics disagree most, with case views.

    Examples:

        ccbench leaderboard --task autopet-phantom --split test --out site/

        ccbench leaderboard -t hecktor --split test --resamples 200 --seed 1

        ccbench leaderboard -t autopet --reference-entry nnunet-baseline

    Every board of the site counts on its cross-task page (cross-task.html): where entries ran
    on several tasks with the same split name, their rank on each task and a consensus ranking
    (mean rank, median rank, Euclidean) with its bootstrap stability.
    """
    from evaluator.console import progress_bar
    from leaderboards.site import publish_cross_task, publish_leaderboard

    ws = _workspace(workspace).ensure()
    with progress_bar(_progress(quiet), f"leaderboard {task}/{split}") as hook:
        index = publish_leaderboard(
            task,
            split,
            workspace=ws,
            out=out,
            seed=seed,
            n_resamples=n_resamples,
            alpha=alpha,
            store=store,
            show_images=show_images,
            reference_entry=reference_entry,
            progress=hook,
            workers=workers,
            user_metrics=_user_metric_refs(metric),
        )
    with _progress(quiet).status("cross-task consensus"):
        cross = publish_cross_task(
            index.parent, workspace=ws, seed=seed, n_resamples=n_resamples, store=store,
            workers=workers,
        )  # fmt: skip
    console.print(f"leaderboard site: [bold]{index}[/]", highlight=False)
    if cross is not None:
        console.print(f"cross-task consensus: [bold]{cross}[/]", highlight=False)


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------

from evaluator.learn.models import NNUNET_MODEL, PROFILES, TRAINABLE  # noqa: E402 (no torch)

baselines_app = typer.Typer(help="The reference algorithms under baselines/.", no_args_is_help=True)
app.add_typer(baselines_app, name="baselines")


class ModelChoice(_Choice, choices=TRAINABLE):
    """The learned baselines (``evaluator.learn.models.TRAINABLE``: MONAI networks, nnU-Net)."""


class ProfileChoice(_Choice, choices=PROFILES):
    """Training profiles (``evaluator.learn.models.PROFILES``)."""


@baselines_app.command("train")
@_fail_cleanly
def baselines_train(
    model: Annotated[ModelChoice, typer.Option("--model", "-m", help="Learned baseline to train.")],
    task: TaskOpt,
    profile: Annotated[
        ProfileChoice,
        typer.Option(help="quick: minutes on 2 CPU cores; full: the paper recipe (GPU)."),
    ] = ProfileChoice.quick,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and patch sampling.")] = 0,
    fold: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Fold of the split: train on its train cases, validate on its val [default: 0].",
            show_default=False,
        ),
    ] = None,
    folds: Annotated[
        str | None,
        typer.Option(
            "--folds",
            help="Train one model per fold, in turn: 'all' (every fold of the split file) or a "
            "list, e.g. 0,2 (then `ccbench run --folds all` runs each fold's model).",
            show_default=False,
        ),
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(min=1, help="Override the profile's iteration count.", show_default=False),
    ] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(
            "--time-budget",
            min=1,
            help="Override the profile's time budget, seconds.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Results store URL [default: the workspace's].")
    ] = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train a learned baseline on a task's training fold; weights go to WORKSPACE/baselines.

    Writes config.json, model.pt, training.log and curve.png/.csv under
    WORKSPACE/baselines/MODEL/TASK/foldK and records the training in the store. nnU-Net
    (--model nnunet) runs nnU-Net's own planning, preprocessing and trainer; its weights stay in
    nnU-Net's results folder (printed; what `submit --nnunet-results` takes). No weights are
    downloaded; the GPU is used when present.

    Examples:

        ccbench baselines train --model monai-unet --task autopet-phantom

        ccbench baselines train -m monai-swinunetr -t btcv-phantom --profile full --fold 1

        ccbench baselines train --model nnunet --task autopet-phantom

        ccbench baselines train -m monai-unet-2d -t autopet-2d-phantom --folds all
    """
    ws = _workspace(workspace).ensure()
    chosen = (
        [fold or 0] if folds is None else [k for k, _ in _fold_runs(fold, folds, None, task, ws)]
    )
    for k in (k for k in chosen if k is not None):
        _train_fold(model, task, ws, profile, seed, k, iterations, time_budget, store, quiet)


def _train_fold(
    model: ModelChoice,
    task: str,
    ws: Workspace,
    profile: ProfileChoice,
    seed: int,
    fold: int,
    iterations: int | None,
    time_budget: float | None,
    store: str | None,
    quiet: bool,
) -> None:
    """Train one fold's model (``ccbench baselines train``) and print what it made."""
    from evaluator.console import kv_table, training_progress
    from evaluator.learn.nnunet_train import train_nnunet
    from evaluator.learn.train import train_baseline

    with training_progress(_progress(quiet), f"{model.value} on {task} (fold {fold})") as hook:
        if model.value == NNUNET_MODEL:
            result = train_nnunet(
                task, workspace=ws, profile=profile.value, seed=seed, fold=fold,
                iterations=iterations, time_budget_s=time_budget, store=store, progress=hook,
            )  # fmt: skip
        else:
            result = train_baseline(
                model.value, task, workspace=ws, profile=profile.value, seed=seed, fold=fold,
                iterations=iterations, time_budget_s=time_budget, store=store, progress=hook,
            )  # fmt: skip
    console.print(
        kv_table(
            f"trained {result.model} on {result.task} (fold {result.fold})",
            {
                "iterations": result.iterations,
                "seconds": f"{result.seconds:.1f}",
                "stopped by time budget": result.stopped_by_time_budget,
                "validation Dice (fold)": f"{result.val_dice:.4f}",
                "weights": (
                    (result.folder / result.config["results_folder"]).resolve()
                    if "results_folder" in result.config
                    else result.folder / "model.pt"
                ),
                "curve": result.folder / "curve.png",
                "store run": result.run_id,
            },
        )
    )


@baselines_app.command("build")
@_fail_cleanly
def baselines_build(
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "--name",
            "-n",
            "-m",
            help="Baseline to build (repeatable) [default: all; learned ones need trained weights].",
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option("--local", help="Build no image: write manifests for `run --backend local`."),
    ] = False,
    submissions: SubmissionsOpt = None,
    workspace: WorkspaceOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Build each baseline's image on the local base images and submit it as an entry.

    Learned baselines bake their trained weights (from `ccbench baselines train`) into the image
    and are registered for the tasks they were trained on.

    Examples:

        ccbench baselines build                        # every folder of baselines/

        ccbench baselines build --model monai-unet --model suv-threshold
    """
    from evaluator.console import kv_table, progress_bar
    from evaluator.runner.baselines import build_baselines

    ws = _workspace(workspace).ensure()
    with progress_bar(_progress(quiet), "baselines", every=True) as hook:
        builds = build_baselines(
            workspace=ws,
            submissions_dir=_manifests(submissions, ws),
            names=name,
            docker=not local,
            progress=hook,
        )
    rows = {}
    for b in builds:
        if b.skipped:
            rows[b.name] = f"skipped: {b.skipped}"
        else:
            size = f", {b.size_mb:.0f} MB" if b.size_mb is not None else ""
            rows[b.name] = f"{b.image}{size} -> {b.manifest} ({', '.join(b.tasks)})"
    console.print(kv_table("baselines", rows))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ccbench`` console script."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="ccbench")


if __name__ == "__main__":
    main()


# --------------------------------------------------------------------------------------------
# serve, challenge
# --------------------------------------------------------------------------------------------

challenge_app = typer.Typer(
    help="A self-hosted challenge: definition, teams, tokens, phases (for `ccbench serve`).",
    no_args_is_help=True,
)
app.add_typer(challenge_app, name="challenge")
StoreUrlOpt = Annotated[
    str | None,
    typer.Option("--store", help="Results store URL [default: $CCBENCH_STORE or the workspace]."),
]
ChallengeArg = Annotated[str, typer.Argument(help="Challenge name.")]


def _server_state(store: str | None, workspace: Path | None) -> Any:
    from evaluator.server.state import ServerState
    from evaluator.store import Store

    return ServerState(Store.open(store, workspace=_workspace(workspace).ensure()))


def _actor() -> str:
    """Who runs an organiser command, for the audit log: ``cli:<user>@<host>``."""
    import getpass
    import socket

    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


@challenge_app.command("init")
@_fail_cleanly
def challenge_init(
    file: Annotated[Path, typer.Argument(help="The challenge definition (YAML).")],
    update: Annotated[
        bool, typer.Option("--update", help="Replace an existing definition.")
    ] = False,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record a challenge from its definition file (phases, limits, what the public sees).

    Examples:

        ccbench challenge init challenge.yaml
    """
    from evaluator.server.challenge import load_challenge

    spec = load_challenge(file)
    _server_state(store, workspace).create_challenge(spec, actor=_actor(), update=update)
    console.print(f"challenge [bold]{markup_safe(spec.name)}[/]: {len(spec.phases)} phase(s)")
    for warning in spec.warnings():
        err_console.print(f"[yellow]{markup_safe(warning)}[/]")


@challenge_app.command("add-team")
@_fail_cleanly
def challenge_add_team(
    challenge: ChallengeArg,
    team: Annotated[str, typer.Argument(help="Team name (letters, digits, _.-).")],
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Add a team to a challenge (then give it a token with `ccbench challenge token`)."""
    _server_state(store, workspace).add_team(challenge, team, actor=_actor())
    console.print(f"team [bold]{markup_safe(team)}[/] added")


@challenge_app.command("token")
@_fail_cleanly
def challenge_token(
    challenge: ChallengeArg,
    team: Annotated[str | None, typer.Option("--team", help="The team's token.")] = None,
    organiser: Annotated[
        bool, typer.Option("--organiser", help="An organiser's token instead.")
    ] = False,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Issue a token; it is printed once and only its SHA-256 digest is stored."""
    if organiser == (team is not None):
        raise typer.BadParameter("give --team NAME or --organiser", param_hint="--team")
    token = _server_state(store, workspace).issue_token(
        challenge, role="organiser" if organiser else "team", team=team, actor=_actor()
    )
    typer.echo(token)


@challenge_app.command("revoke")
@_fail_cleanly
def challenge_revoke(
    challenge: ChallengeArg,
    team: Annotated[str | None, typer.Option("--team", help="Revoke this team's tokens.")] = None,
    organiser: Annotated[
        bool, typer.Option("--organiser", help="Revoke the organiser's tokens instead.")
    ] = False,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Revoke every token of a team (a leaked token): its sessions end at once."""
    if organiser == (team is not None):
        raise typer.BadParameter("give --team NAME or --organiser", param_hint="--team")
    done = _server_state(store, workspace).revoke(challenge, team=team, actor=_actor())
    console.print(f"{done} token(s) revoked")


def _set_open(challenge: str, is_open: bool, store: str | None, workspace: Path | None) -> None:
    _server_state(store, workspace).set_open(challenge, is_open, actor=_actor())
    console.print(f"challenge {markup_safe(challenge)} {'open' if is_open else 'closed'}")


@challenge_app.command("open")
@_fail_cleanly
def challenge_open(
    challenge: ChallengeArg,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Take submissions (within each phase's dates)."""
    _set_open(challenge, True, store, workspace)


@challenge_app.command("close")
@_fail_cleanly
def challenge_close(
    challenge: ChallengeArg,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Take no more submissions (queued ones still run)."""
    _set_open(challenge, False, store, workspace)


@challenge_app.command("rerun")
@_fail_cleanly
def challenge_rerun(
    challenge: ChallengeArg,
    submission: Annotated[int, typer.Argument(help="Submission id.")],
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Queue a submission again (after fixing the data or the sandbox limits).

    Examples:

        ccbench challenge rerun autopet-2027 17
    """
    _server_state(store, workspace).requeue(submission, actor=_actor(), challenge=challenge)
    console.print(f"submission {submission} queued again")


@challenge_app.command("submissions")
@_fail_cleanly
def challenge_submissions(
    challenge: ChallengeArg,
    team: Annotated[str | None, typer.Option(help="Only this team's.", show_default=False)] = None,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """List a challenge's submissions: team, phase, status, and why one failed (the message
    teams never see)."""
    from rich.table import Table
    from rich.text import Text

    from evaluator.server.state import Principal

    state = _server_state(store, workspace)
    cid, _, _ = state.challenge(challenge)
    table = Table("id", "team", "phase", "status", "submitted (UTC)", "error")
    for sub in state.submissions(Principal("organiser", cid, challenge)):
        if team is None or sub.team == team:
            error = f"{sub.error_class}: {sub.error}" if sub.error_class else ""
            table.add_row(  # error messages can quote a container: no escape sequences
                str(sub.id), Text(printable(sub.team)), Text(printable(sub.phase)), sub.status,
                sub.created_at.strftime("%Y-%m-%d %H:%M:%S"), Text(printable(error, limit=500)),
            )  # fmt: skip
    console.print(table)


@challenge_app.command("export")
@_fail_cleanly
def challenge_export(
    challenge: ChallengeArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON file to write.")],
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write a challenge's definition, teams, submissions and audit log as JSON (no tokens)."""
    import json

    data = _server_state(store, workspace).export(challenge)
    out.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"exported {challenge}: {out}")


@app.command("serve")
@_fail_cleanly
def serve(
    challenge: Annotated[str, typer.Option("--challenge", "-c", help="Challenge name.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=0, help="Job runners in this process.")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Addresses of the reverse proxies whose X-Forwarded-For/-Proto headers are "
            "trusted (comma-separated) [default: 127.0.0.1, or $FORWARDED_ALLOW_IPS].",
            show_default=False,
        ),
    ] = None,
    stale_after: Annotated[
        float,
        typer.Option(
            "--stale-after",
            min=1,
            help="Seconds without a heartbeat after which a running job (its server died) is "
            "run again.",
        ),
    ] = 120.0,
    store: StoreUrlOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Serve a challenge: the HTTP API and pages, and the job queue's runners.

    Examples:

        ccbench serve --challenge autopet-demo --port 8000
    """
    import os
    import socket

    import uvicorn

    from evaluator.server.app import create_app
    from evaluator.server.worker import Worker

    ws = _workspace(workspace).ensure()
    state = _server_state(store, workspace)
    state.challenge(challenge)  # exists
    folder = ws.root / "server" / challenge
    uploads = folder / "uploads"
    secret_file = folder / "secret"
    if not secret_file.is_file():  # signs the pages' sessions; the owner alone reads it
        import secrets

        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
    runners = [
        Worker(
            state,
            ws,
            uploads,
            name=f"{socket.gethostname()}:{os.getpid()}:{k}",
            challenge=challenge,
            stale_after_s=stale_after,
            heartbeat_s=min(15.0, stale_after / 4),
        )
        for k in range(workers)
    ]
    for runner in runners:
        runner.start()
    try:
        app_ = create_app(state, challenge, uploads, secret=secret_file.read_bytes())
        uvicorn.run(
            app_, host=host, port=port, proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
        )  # fmt: skip
    finally:
        for runner in runners:
            runner.stop(timeout=5)
