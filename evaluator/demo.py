"""``ccbench demo``: the main job end to end on phantom data.

Each step calls the same library functions as the corresponding command, so the demo shows what a
user's commands do. A failing step is reported and the remaining steps still run; the demo
returns False when any step failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from evaluator.workspace import Workspace

__all__ = ["DEMO_TASKS", "DemoStep", "demo_steps", "run_demo"]

#: The four tasks, each demonstrated on its phantom version.
DEMO_TASKS = ("autopet", "hecktor", "btcv", "chestxdet")


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: a title and a callable returning a one-line summary."""

    title: str
    run: Callable[[Workspace, int, Console], str]


def _phantoms(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.reporting import print_phantom_summary

    results = [
        write_phantoms(t, workspace=ws, cases=None, size="small", seed=seed, out=None)
        for t in DEMO_TASKS
    ]
    print_phantom_summary(results, console=console)
    return f"{len(results)} phantom datasets written under {ws.phantoms}"


def _check(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.datasets.check import check_dataset
    from evaluator.reporting import print_check_report

    bad = []
    for task in DEMO_TASKS:
        report = check_dataset(f"{task}-phantom", workspace=ws, data_root=None)
        print_check_report(report, console=console)
        if not report.ok:
            bad.append(task)
    if bad:
        raise RuntimeError(f"data check found problems in: {', '.join(bad)}")
    return "all phantom datasets pass `ccbench data check`"


def _split(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.datasets.splits import make_split
    from evaluator.reporting import print_split_summary

    for task in DEMO_TASKS:
        print_split_summary(
            make_split(f"{task}-phantom", workspace=ws, data_root=None, seed=seed, out=None),
            console=console,
        )
    return f"splits written under {ws.splits}"


#: Demo entries made by degrading the references: name -> quality (1 = perfect copy).
DEMO_ENTRIES = {"phantom-strong": 0.95, "phantom-medium": 0.8, "phantom-weak": 0.55}
#: Split the demo scores and ranks (every case that has a reference; phantom splits are small).
DEMO_SPLIT = "all"


def _metrics(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.datasets.base import open_dataset
    from evaluator.evaluate import write_degraded_predictions
    from evaluator.metrics.files import score_files
    from evaluator.reporting import print_case_metrics

    dataset = open_dataset("autopet-phantom", workspace=ws)
    case = next(c for c in dataset.cases() if c.metadata.get("diagnosis") != "NEGATIVE")
    preds = write_degraded_predictions(
        "autopet-phantom", DEMO_SPLIT, ws.tmp / "demo-single", workspace=ws, seed=seed, quality=0.7
    )
    pred = next(preds.glob(f"{case.case_id}.*"))
    if case.label is None:
        raise RuntimeError(f"phantom case {case.case_id} has no label file")
    result = score_files(pred, case.label, metrics=None, labels=None, connectivity=None)
    print_case_metrics(result, console=console, per_component=True)
    values = result.values[1]
    return (
        f"`ccbench metrics` on {case.case_id}: Dice {values['dice']:.3f}, "
        f"CC-Dice {values['cc_dice']:.3f}, HD95 {values['hd95']:.1f} mm, CC-HD95 {values['cc_hd95']:.1f} mm"
    )


def _evaluate(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.evaluate import evaluate_run, write_degraded_predictions
    from evaluator.reporting import print_evaluation

    runs = 0
    for task in DEMO_TASKS:
        name = f"{task}-phantom"
        for number, (entry, quality) in enumerate(DEMO_ENTRIES.items()):
            preds = write_degraded_predictions(
                name,
                DEMO_SPLIT,
                ws.tmp / "demo-predictions" / name / entry,
                workspace=ws,
                seed=seed + number,
                quality=quality,
            )
            result = evaluate_run(
                name, DEMO_SPLIT, preds, workspace=ws, entry=entry, run_name=f"{entry}@{name}"
            )
            if entry == "phantom-medium":
                print_evaluation(result, console=console)
            runs += 1
    return f"{runs} runs ({len(DEMO_ENTRIES)} entries x {len(DEMO_TASKS)} tasks) scored into {ws.store_path}"


#: Tasks the threshold baseline container is run on in the demo.
CONTAINER_TASKS = ("autopet-phantom", "hecktor-phantom", "btcv-phantom")


def _containers(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.errors import DockerUnavailableError
    from evaluator.reporting import print_run_outcome
    from evaluator.runner.baselines import build_baselines
    from evaluator.runner.docker_backend import connect
    from evaluator.runner.run import BackendName, run_entry

    backend: BackendName
    try:
        connect(timeout_s=10.0).close()
        backend = "docker"
    except DockerUnavailableError as err:
        backend = "local"
        console.print(
            f"[yellow]no Docker engine ({err}); running the baseline with --backend local "
            "(development only, no sandbox). `bash scripts/docker-engine.sh` starts one.[/]",
            highlight=False,
        )
    submissions = ws.root / "submissions"
    builds = build_baselines(workspace=ws, submissions_dir=submissions, docker=backend == "docker")
    scored = 0
    for build in builds:
        for task in CONTAINER_TASKS:
            outcome = run_entry(
                build.name,
                task=task,
                split=DEMO_SPLIT,
                workspace=ws,
                backend=backend,
                submissions_dir=submissions,
            )
            print_run_outcome(outcome, console=console)
            scored += len(outcome.predictions)
    names = ", ".join(b.name for b in builds)
    return f"baseline(s) {names} run with the {backend} backend on {len(CONTAINER_TASKS)} tasks: {scored} predictions scored"


def _simulate(ws: Workspace, seed: int, console: Console) -> str:
    from evaluator.reporting import print_dataset_study, print_toy_result
    from evaluator.simulate.dataset import run_dataset_study
    from evaluator.simulate.toy import run_toy_studies

    toy = run_toy_studies(ws.simulations / "toy", scale=0.25)
    print_toy_result(toy, console=console)
    for order in ("smallest", "largest"):
        study = run_dataset_study(
            "autopet-phantom", DEMO_SPLIT, op="drop", order=order, workspace=ws, n_max=5, seed=seed
        )
        print_dataset_study(study, console=console)
    return f"toy studies (scale 0.25) and AutoPET drop studies: plots under {ws.simulations}"


def _leaderboards(ws: Workspace, seed: int, console: Console) -> str:
    from leaderboards.site import publish_leaderboard

    site = ws.sites / "index.html"
    for task in DEMO_TASKS:
        site = publish_leaderboard(f"{task}-phantom", DEMO_SPLIT, workspace=ws, seed=seed)
    console.print(f"[bold green]Leaderboard site:[/] {site}", highlight=False)
    return f"static site with {len(DEMO_TASKS)} task leaderboards: {site}"


def demo_steps() -> list[DemoStep]:
    """The demo's steps, in order."""
    return [
        DemoStep("Phantom data for all four tasks", _phantoms),
        DemoStep("Check the phantom data", _check),
        DemoStep("Stratified splits", _split),
        DemoStep("Score one prediction (`ccbench metrics`)", _metrics),
        DemoStep("Local evaluation of three entries per task (`ccbench evaluate`)", _evaluate),
        DemoStep("Baseline containers: build, submit, run sandboxed (`ccbench run`)", _containers),
        DemoStep("Degradation studies (`ccbench simulate`)", _simulate),
        DemoStep("Leaderboards: rankings, bootstrap, plots, static site", _leaderboards),
    ]


def run_demo(workspace: Workspace, *, seed: int = 0, console: Console | None = None) -> bool:
    """Run every demo step in ``workspace``; return True when all succeeded.

    Parameters
    ----------
    workspace
        Where everything is written (created if missing).
    seed
        Seed of every random choice; the same seed gives the same numbers.
    console
        Where to print; a default rich console when omitted.
    """
    console = console or Console()
    workspace.ensure()
    outcomes: list[tuple[str, bool, str, float]] = []
    for number, step in enumerate(demo_steps(), start=1):
        console.rule(f"[bold]{number}. {step.title}")
        start = time.perf_counter()
        try:
            summary = step.run(workspace, seed, console)
            ok = True
        except Exception as err:  # a failing step must not hide the others' results
            summary, ok = f"{type(err).__name__}: {err}", False
            console.print(f"[bold red]step failed:[/] {summary}", highlight=False)
        outcomes.append((step.title, ok, summary, time.perf_counter() - start))
    table = Table(title=f"ccbench demo - workspace {workspace.root}")
    table.add_column("step")
    table.add_column("status")
    table.add_column("result", overflow="fold")
    table.add_column("seconds", justify="right")
    for title, ok, summary, seconds in outcomes:
        table.add_row(title, "[green]ok" if ok else "[red]failed", summary, f"{seconds:.1f}")
    console.print(table)
    site = workspace.sites / "index.html"
    if site.is_file():
        console.print(f"[bold green]Leaderboard site:[/] {site}", highlight=False)
    return all(ok for _, ok, _, _ in outcomes)
