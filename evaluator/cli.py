"""The ``ccbench`` command: thin wrappers, one library call per command.

Only this module turns a :class:`~evaluator.errors.CCBenchError` into a red one-line message and
an exit code; library code raises. Heavy modules are imported inside the commands so that
``ccbench --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from evaluator.errors import CCBenchError
from evaluator.workspace import Workspace, resolve_workspace

__all__ = ["app", "main"]

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)

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


def _fail_cleanly(func: F) -> F:
    """Turn library errors into one red line and exit code 1 (2 for usage errors)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CCBenchError as err:
            err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _workspace(path: Path | None) -> Workspace:
    return resolve_workspace(path)


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
    workspace: WorkspaceOpt = None,
) -> None:
    """Write synthetic datasets in the real on-disk layouts.

    Examples:

        ccbench data phantoms                          # all four tasks, small

        ccbench data phantoms --task autopet --cases 20 --size full --seed 1
    """
    from evaluator.datasets.phantoms import PHANTOM_TASKS, write_phantoms
    from evaluator.reporting import print_phantom_summary

    ws = _workspace(workspace).ensure()
    tasks = task or list(PHANTOM_TASKS)
    if out is not None and len(tasks) > 1:
        raise typer.BadParameter("--out needs exactly one --task")
    results = [
        write_phantoms(t, workspace=ws, cases=cases, size=size, seed=seed, out=out) for t in tasks
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
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Make the held-out test set and stratified 5-fold cross-validation splits.

    Writes nnU-Net ``splits_final.json``-compatible JSON.

    Examples:

        ccbench data split --task autopet-phantom
    """
    from evaluator.datasets.splits import make_split
    from evaluator.reporting import print_split_summary

    ws = _workspace(workspace).ensure()
    result = make_split(task, workspace=ws, data_root=data_root, seed=seed, out=out)
    print_split_summary(result, console=console)


@data_app.command("check")
@_fail_cleanly
def data_check(
    task: TaskOpt,
    data_root: DataRootOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Validate every case: files decode, geometry agrees, labels are in the label map.

    Exits non-zero when any problem is found; each problem names the file.

    Examples:

        ccbench data check --task hecktor-phantom

        ccbench data check --task btcv --data-root /data/BTCV
    """
    from evaluator.datasets.check import check_dataset
    from evaluator.reporting import print_check_report

    ws = _workspace(workspace)
    report = check_dataset(task, workspace=ws, data_root=data_root)
    print_check_report(report, console=console)
    if not report.ok:
        raise typer.Exit(1)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


@app.command("metrics")
@_fail_cleanly
def metrics_cmd(
    pred: Annotated[Path, typer.Argument(help="Prediction label image (NIfTI, MHA, PNG).")],
    ref: Annotated[Path, typer.Argument(help="Reference label image on the same grid.")],
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics", "-m", help="Comma-separated metric names [default: all voxel metrics]."
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Comma-separated label values [default: every label in either image]."),
    ] = None,
    connectivity: Annotated[
        int | None, typer.Option(help="Component connectivity [default: 26 in 3D, 8 in 2D].")
    ] = None,
    nsd_tolerance: Annotated[float, typer.Option(help="Surface Dice tolerance, mm.")] = 1.0,
    mode: Annotated[
        str,
        typer.Option(
            help="CC-Metrics units: 'mm' (default) or 'voxel' (as the ccmetrics package)."
        ),
    ] = "mm",
    per_component: Annotated[
        bool, typer.Option("--per-component", help="Also print CC-Metrics per reference component.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score one prediction against one reference with any set of metrics.

    Examples:

        ccbench metrics pred.nii.gz ref.nii.gz

        ccbench metrics pred.nii.gz ref.nii.gz -m dice,hd95,cc_dice,cc_hd95 --per-component --json
    """
    from evaluator.metrics.files import score_files
    from evaluator.reporting import print_case_metrics

    result = score_files(
        pred,
        ref,
        metrics=None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()],
        labels=None if labels is None else [int(v) for v in labels.split(",") if v.strip()],
        connectivity=connectivity,
        nsd_tolerance_mm=nsd_tolerance,
        cc_mode=mode,
    )
    print_case_metrics(result, console=console, per_component=per_component, as_json=as_json)


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


@app.command("demo")
@_fail_cleanly
def demo(
    workspace: WorkspaceOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
) -> None:
    """Run the main job end to end on phantom data.

    Examples:

        ccbench demo

        ccbench demo --workspace /tmp/ccbench-demo
    """
    from evaluator.demo import run_demo

    ok = run_demo(_workspace(workspace).ensure(), seed=seed, console=console)
    if not ok:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ccbench`` console script."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="ccbench")
