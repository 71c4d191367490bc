"""``ccbench demo``: the main job end to end on phantom data.

Each step calls the same library functions as the corresponding command, so the demo shows what a
user's commands do. A failing step is reported and the remaining steps still run; the demo
returns False when any step failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from evaluator.workspace import Workspace

if TYPE_CHECKING:
    from evaluator.choices import BackendName
    from evaluator.runner.baselines import BaselineBuild

__all__ = ["DemoStep", "demo_boards", "demo_steps", "demo_tasks", "run_demo"]


def demo_tasks() -> tuple[str, ...]:
    """The tasks of the demo: every task with a phantom, each shown on its phantom version."""
    from evaluator.datasets.phantoms import phantom_tasks

    return phantom_tasks()


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: a title and a callable returning a one-line summary.

    ``run(workspace, seed, console, progress)`` prints results on ``console`` and progress on
    ``progress`` (stderr; silent with ``--quiet``).
    """

    title: str
    run: Callable[[Workspace, int, Console, Console], str]


def _phantoms(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import ProgressBars, print_phantom_summary
    from evaluator.datasets.phantoms import write_phantoms

    with ProgressBars(progress) as bars:
        results = [
            write_phantoms(
                t,
                workspace=ws,
                cases=None,
                size="small",
                seed=seed,
                out=None,
                progress=bars.add(f"phantoms: {t}"),
            )
            for t in demo_tasks()
        ]
        # the same AutoPET phantom in nnU-Net's raw layout (`--layout nnunet`): its adapter
        results.append(
            write_phantoms(
                "autopet",
                workspace=ws,
                seed=seed,
                layout="nnunet",
                progress=bars.add("phantoms: autopet (nnU-Net layout)"),
            )
        )
    print_phantom_summary(results, console=console)
    return (
        f"{len(results)} phantom datasets written under {ws.phantoms} (AutoPET also in the "
        "nnU-Net raw layout)"
    )


def _check(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import print_check_report
    from evaluator.datasets.check import check_dataset

    bad = []
    for task in [*(f"{t}-phantom" for t in demo_tasks()), NNUNET_PHANTOM, APEX_TASK]:
        report = check_dataset(task, workspace=ws, data_root=None)
        print_check_report(report, console=console)
        if not report.ok:
            bad.append(task)
    if bad:
        raise RuntimeError(f"data check found problems in: {', '.join(bad)}")
    return f"all phantom datasets pass `ccbench data check` ({NNUNET_PHANTOM} included)"


def _split(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import print_split_summary
    from evaluator.datasets.splits import make_split

    for task in [*(f"{t}-phantom" for t in demo_tasks()), NNUNET_PHANTOM, APEX_TASK]:
        print_split_summary(
            make_split(task, workspace=ws, data_root=None, seed=seed, out=None), console=console
        )
    return f"splits written under {ws.splits}"


#: The AutoPET phantom in nnU-Net's raw layout (``ccbench data phantoms --layout nnunet``).
NNUNET_PHANTOM = "autopet-nnunet-phantom"
#: Demo entries made by degrading the references: name -> quality (1 = perfect copy).
DEMO_ENTRIES = {"phantom-strong": 0.95, "phantom-medium": 0.8, "phantom-weak": 0.55}
#: Split the demo scores and ranks (every case that has a reference; phantom splits are small).
DEMO_SPLIT = "all"
#: User metrics the demo registers for its whole run (as ``CCBENCH_METRICS`` would): every
#: evaluation scores them, the boards rank them, the studies measure what they see.
DEMO_METRICS = (
    "evaluator.metrics.examples:volume_error_ml",
    "evaluator.metrics.examples:component_count_error",
)
#: Largest number of edited lesions in the demo's dataset studies.
DEMO_STUDY_N_MAX = 2


def _metrics(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import print_case_metrics
    from evaluator.datasets.base import open_dataset
    from evaluator.metrics.files import score_files
    from evaluator.simulate.degraded import write_degraded_predictions

    dataset = open_dataset("autopet-phantom", workspace=ws)
    case = next(c for c in dataset.cases() if c.metadata.get("diagnosis") != "NEGATIVE")
    preds = write_degraded_predictions(
        "autopet-phantom",
        DEMO_SPLIT,
        ws.root / "demo" / "single",
        workspace=ws,
        seed=seed,
        quality=0.7,
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


def _evaluate(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import ProgressBars, print_evaluation
    from evaluator.evaluate import evaluate_run
    from evaluator.simulate.degraded import write_degraded_predictions

    runs = 0
    tasks = demo_tasks()
    total = len(tasks) * len(DEMO_ENTRIES)
    with ProgressBars(progress) as bars:
        evaluations = bars.add("evaluations", total)
        scoring = bars.add("scoring")
        for task in tasks:
            name = f"{task}-phantom"
            for number, (entry, quality) in enumerate(DEMO_ENTRIES.items()):
                evaluations(runs, total, f"{entry} on {name}")
                preds = write_degraded_predictions(
                    name,
                    DEMO_SPLIT,
                    ws.root / "demo" / "predictions" / name / entry,
                    workspace=ws,
                    seed=seed + number,
                    quality=quality,
                )
                result = evaluate_run(
                    name, DEMO_SPLIT, preds, workspace=ws, entry=entry, run_name=f"{entry}--{name}",
                    on_case=lambda _outcome, done, n: scoring(done, n, ""),
                )  # fmt: skip
                if entry == "phantom-medium":
                    print_evaluation(result, console=console)
                runs += 1
        evaluations(runs, total, "done")
    # the same predictions on the nnU-Net-layout phantom, with nnU-Net's summary.json beside
    preds = ws.root / "demo" / "predictions" / "autopet-phantom" / "phantom-medium"
    nnunet = evaluate_run(
        NNUNET_PHANTOM, DEMO_SPLIT, preds, workspace=ws, entry="phantom-medium",
        run_name=f"phantom-medium--{NNUNET_PHANTOM}", formats=("nnunet",),
    )  # fmt: skip
    summary = json.loads((nnunet.out / "nnunet" / "summary.json").read_text())
    return (
        f"{runs} runs ({len(DEMO_ENTRIES)} entries x {len(tasks)} tasks) scored into "
        f"{ws.store_path}; `--format nnunet` on {NNUNET_PHANTOM}: nnU-Net's summary.json, "
        f"foreground mean Dice {summary['foreground_mean']['Dice']:.3f}"
    )


def _write_attacks(task: str, ws: Workspace, out: Path) -> dict[str, str]:
    """Prediction files as a hostile entry writes them, one attack per case: case -> attack."""
    import gzip
    import struct

    import numpy as np
    import SimpleITK as sitk

    from evaluator.datasets.base import open_dataset

    cases = [c for c in open_dataset(task, workspace=ws).cases() if c.label is not None][:5]
    out.mkdir(parents=True, exist_ok=True)
    ref = sitk.ReadImage(str(cases[0].label))
    x, y, z = ref.GetSize()
    attacks = {}
    # 1. a MetaImage header whose pixel data is the case's reference file on this host
    (out / f"{cases[0].case_id}.mha").write_text(
        f"ObjectType = Image\nNDims = 3\nDimSize = {x} {y} {z}\nElementType = MET_UCHAR\n"
        f"ElementDataFile = {cases[0].label}\n"
    )
    attacks[cases[0].case_id] = "MetaImage header naming the reference file"
    # 2. a decompression bomb: 1 MB declaring 1024^3 voxels
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 1024, 1024, 1024, 1, 1, 1, 1)
    struct.pack_into("<2h", header, 70, 2, 8)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = b"n+1\0"
    member = gzip.compress(b"\0" * 2**24, compresslevel=9)
    (out / f"{cases[1].case_id}.nii.gz").write_bytes(
        gzip.compress(bytes(header) + b"\0" * 4) + member * 64
    )
    attacks[cases[1].case_id] = "1 MB .nii.gz declaring 1024^3 voxels"
    # 3. a link to the reference
    (out / f"{cases[2].case_id}.nii.gz").symlink_to(Path(str(cases[2].label)).absolute())
    attacks[cases[2].case_id] = "symbolic link to the reference"
    # 4. NRRD with a detached data file
    (out / f"{cases[3].case_id}.nrrd").write_text(
        f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: {x} {y} {z}\nencoding: gzip\n"
        f"byte skip: 352\ndata file: {cases[3].label}\n\n"
    )
    attacks[cases[3].case_id] = "NRRD header naming the reference file"
    # 5. one voxel of 2**31 - 1 in an int32 label map
    arr = np.zeros((z, y, x), dtype=np.int32)
    arr[0, 0, 0] = 2**31 - 1
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(sitk.ReadImage(str(cases[4].label)))
    sitk.WriteImage(img, str(out / f"{cases[4].case_id}.nii.gz"))
    attacks[cases[4].case_id] = "label value 2**31 - 1"
    return attacks


def _integrity(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    """Hostile prediction files, each refused with a named per-case error (own store)."""
    import shutil

    from evaluator.console import kv_table
    from evaluator.evaluate import evaluate_run
    from evaluator.store import Store

    task = "autopet-phantom"
    scratch = ws.root / "demo" / "attacks"  # removed at the end: it links to a reference
    shutil.rmtree(scratch, ignore_errors=True)
    folder = scratch / "predictions"
    attacks = _write_attacks(task, ws, folder)
    store = f"sqlite:///{scratch / 'attacks.sqlite'}"
    try:
        result = evaluate_run(
            task, DEMO_SPLIT, folder, workspace=ws, store=store, run_name="attacks", force=True,
            out=scratch / "results",
        )  # fmt: skip
        with Store.open(store) as db:
            errors = db.errors_frame(run_ids=[result.run.id]).set_index("case_id")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rows = {
        f"{case}: {attack}": f"refused: {errors.loc[case, 'error_class']}"
        if case in errors.index
        else "NOT REFUSED"
        for case, attack in attacks.items()
    }
    console.print(kv_table("hostile prediction files (`ccbench evaluate`)", rows))
    refused = sum(case in errors.index for case in attacks)
    if refused != len(attacks):
        raise RuntimeError(f"only {refused} of {len(attacks)} hostile files were refused")
    return (
        f"{refused}/{len(attacks)} hostile prediction files refused with named errors "
        "(detached data, bomb, link, NRRD, huge label)"
    )


def container_tasks() -> tuple[str, ...]:
    """Tasks the baseline containers run on in the demo: the phantom tasks baselines take."""
    from evaluator.datasets.registry import load_registry
    from evaluator.runner.baselines import baseline_tasks

    registry = load_registry()
    return tuple(
        t
        for t in baseline_tasks(registry)
        if registry.task(t).is_phantom and registry.task(t).derived_from is None
    )


#: The learned baseline the demo trains (quick profile), the task and the split it is shown on:
#: the held-out test split, since the other cases are its training data.
DEMO_MODEL = "monai-unet"
DEMO_MODEL_TASK = "autopet-phantom"
HELD_OUT_SPLIT = "test"
#: The multi-task entry: the learned baseline trained on each of these tasks (one manifest),
#: scored with the threshold on their held-out splits and ranked across them (cross-task page).
MULTI_TASKS = (DEMO_MODEL_TASK, "hecktor-phantom", "btcv-phantom")
#: Iterations of the learned baseline on the other multi-task tasks (the pipeline, not a model).
DEMO_MULTITASK_ITERATIONS = 40
#: APEX's protocol: the 2D U-Net on axial slices of the AutoPET phantom, one model per fold.
APEX_TASK = "autopet-2d-phantom"
APEX_MODEL = "monai-unet-2d"
#: Iterations of each fold's 2D model (a few seconds each on 2 cores).
DEMO_2D_ITERATIONS = 30
#: nnU-Net in the demo: the quick profile cut to this many iterations (one epoch; nnU-Net's
#: planning, preprocessing and validation take most of the time: 141 s with 30 iterations on 2
#: cores). The demo shows the pipeline, not a trained model.
DEMO_NNUNET_ITERATIONS = 10
NNUNET_MODEL = "nnunet"


def _train(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from importlib.util import find_spec

    from evaluator.console import kv_table, training_progress
    from evaluator.learn.nnunet_train import train_nnunet
    from evaluator.learn.train import TrainResult, train_baseline

    with training_progress(progress, f"{DEMO_MODEL} on {DEMO_MODEL_TASK}") as hook:
        monai = train_baseline(
            DEMO_MODEL, DEMO_MODEL_TASK, workspace=ws, profile="quick", seed=seed, reuse=True,
            progress=hook,
        )  # fmt: skip
    results: list[TrainResult] = [monai]
    more = [(DEMO_MODEL, t, 0, DEMO_MULTITASK_ITERATIONS) for t in MULTI_TASKS[1:]]
    more += [
        (APEX_MODEL, APEX_TASK, k, DEMO_2D_ITERATIONS) for k in range(_fold_count(ws, APEX_TASK))
    ]
    for model, task, fold, iterations in more:
        with training_progress(progress, f"{model} on {task} fold {fold}") as hook:
            results.append(
                train_baseline(
                    model,
                    task,
                    workspace=ws,
                    profile="quick",
                    seed=seed,
                    fold=fold,
                    reuse=True,
                    iterations=iterations,
                    progress=hook,
                )
            )
    skipped = ""
    if find_spec("nnunetv2") is not None:
        with training_progress(progress, f"{NNUNET_MODEL} on {DEMO_MODEL_TASK}") as hook:
            nnunet = train_nnunet(
                DEMO_MODEL_TASK, workspace=ws, profile="quick", seed=seed, reuse=True,
                iterations=DEMO_NNUNET_ITERATIONS, progress=hook,
            )  # fmt: skip
        results.append(nnunet)
    else:
        skipped = "; nnU-Net skipped: not installed (`bash scripts/bootstrap.sh torch,nnunet`)"
    for result in results:
        reused = " (weights reused)" if result.reused else ""
        console.print(
            kv_table(
                f"`ccbench baselines train --model {result.model} --task {result.task} "
                f"--fold {result.fold}`",
                {
                    "iterations": result.iterations,
                    "seconds": f"{result.seconds:.0f}{reused}",
                    f"validation Dice (fold {result.fold})": f"{result.val_dice:.3f}",
                    "curve": result.folder / "curve.png",
                },
            )
        )
    return (
        "; ".join(
            f"{r.model} (quick profile) {'reused from an earlier demo' if r.reused else 'trained'}"
            f" on {r.task} fold {r.fold}: {r.iterations} iterations, {r.seconds:.0f} s, "
            f"validation Dice {r.val_dice:.3f}"
            for r in results
        )
        + skipped
    )


def _fold_count(ws: Workspace, task: str) -> int:
    """The number of folds in the task's split file."""
    from evaluator.datasets.registry import load_registry
    from evaluator.datasets.splits import read_split

    return len(read_split(load_registry().task(task).split_path(ws))[0])


def _containers(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import print_run_outcome, progress_bar, run_progress
    from evaluator.runner.baselines import baseline_spec, build_baselines
    from evaluator.runner.run import run_entry

    backend = _backend(console)
    submissions = ws.submissions
    tasks = container_tasks()
    # nnU-Net comes in below the way a user's trained model does (`submit --nnunet-results`)
    with progress_bar(progress, "baselines", every=True) as hook:
        built = build_baselines(
            workspace=ws,
            submissions_dir=submissions,
            docker=backend == "docker",
            exclude=[NNUNET_MODEL],
            progress=hook,
        )
    builds = [b for b in built if not b.skipped]
    with progress.status("packing and building the nnU-Net image"):
        builds += _submit_nnunet(ws, backend, console)
    checked = ""
    if backend == "docker" and builds:
        from evaluator.console import print_preflight
        from evaluator.runner.preflight import preflight

        with progress_bar(progress, f"preflight of {builds[0].image}", every=True) as hook:
            report = preflight(builds[0].image, task=tasks[0], workspace=ws, cases=2, progress=hook)
        print_preflight(report, console=console)
        checked = f"; `ccbench preflight`: {'would be scored' if report.ok else 'faults found'}"
    scored = 0
    for build in builds:
        if baseline_spec(build.name).prompts:  # prompted entries: the next step
            continue
        learned = baseline_spec(build.name).model is not None  # trained on the other cases
        for task in (t for t in tasks if t in build.tasks):
            splits = [HELD_OUT_SPLIT] if learned else [DEMO_SPLIT]
            if task in MULTI_TASKS and not learned:  # beside the learned multi-task entry
                splits.append(HELD_OUT_SPLIT)
            for split in splits:
                with run_progress(progress) as (containers, on_case):
                    outcome = run_entry(
                        build.name,
                        task=task,
                        split=split,
                        workspace=ws,
                        backend=backend,
                        submissions_dir=submissions,
                        progress=containers,
                        on_case=on_case,
                    )
                print_run_outcome(outcome, console=console)
                scored += len(outcome.predictions)
    names = ", ".join(f"{b.name} ({b.size_mb:.0f} MB)" if b.size_mb else b.name for b in builds)
    return (
        f"baselines {names} run with the {backend} backend: {scored} predictions scored"
        f"{checked}; {_held_out_comparison(ws, console)}"
    )


def _backend(console: Console | None) -> BackendName:
    """``docker`` when an engine answers, else ``local`` (said on ``console`` when given)."""
    from evaluator.errors import DockerUnavailableError
    from evaluator.runner.docker_backend import connect

    try:
        connect(timeout_s=10.0).close()
    except DockerUnavailableError as err:
        if console is not None:
            console.print(
                f"[yellow]no Docker engine ({err}); running the baselines with --backend local "
                "(development only, no sandbox). `bash scripts/docker-engine.sh` starts one.[/]",
                highlight=False,
            )
        return "local"
    return "docker"


#: The demo's interactive entry and its click budgets (autoPET IV's: 0 to 10 clicks of each kind).
CLICK_ENTRY, DEMO_CLICKS = "click-grow", 10
#: The demo's text-prompted entry (the monai-unet network answering the task's target names).
TEXT_ENTRY = "monai-unet-prompted"


def _prompted(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    """Prompted entries: click-grow at every click budget, monai-unet-prompted by target name.

    ``ccbench run click-grow --clicks 10`` runs the interactive baseline once per budget (0 to
    10 lesion and background clicks, drawn by the autoPET IV simulator from the reference and
    the PET, stored with each run); the leaderboard of the held-out split then shows its
    Dice-vs-clicks curve and the area under it. The text-prompted entry reads the task's target
    names from ``/input/prompts.json`` and writes only those.
    """
    from evaluator.console import print_budget, print_run_outcome, run_progress
    from evaluator.runner.contract import load_manifest
    from evaluator.runner.interactive import ClickProtocol
    from evaluator.runner.run import RunOutcome, run_entry

    backend = _backend(None)
    task = DEMO_MODEL_TASK
    curve: list[str] = []

    def on_budget(budget: int, outcome: RunOutcome) -> None:
        print_budget(budget, outcome, console=console)
        assert outcome.evaluation is not None
        summary = outcome.evaluation.summary
        curve.append(f"{summary['mean_over_labels'].get('dice', float('nan')):.2f}")

    def run(entry: str, **extra: Any) -> RunOutcome:
        with run_progress(progress) as (containers, on_case):
            return run_entry(
                entry,
                task=task,
                split=HELD_OUT_SPLIT,
                workspace=ws,
                backend=backend,
                submissions_dir=ws.submissions,
                progress=containers,
                on_case=on_case,
                **extra,
            )

    run(CLICK_ENTRY, clicks=ClickProtocol(budgets=DEMO_CLICKS, seed=seed + 42), on_budget=on_budget)
    line = (
        f"`ccbench run {CLICK_ENTRY} -t {task} -s {HELD_OUT_SPLIT} --clicks {DEMO_CLICKS}` "
        f"({backend}): mean Dice at 0..{DEMO_CLICKS} clicks {' '.join(curve)}"
    )
    from evaluator.errors import SubmissionError

    try:
        manifest = load_manifest(TEXT_ENTRY, submissions_dir=ws.submissions)
    except SubmissionError:  # not built: monai-unet was not trained
        return f"{line}; {TEXT_ENTRY} not built (no trained monai-unet)"
    if task not in manifest.tasks:
        return f"{line}; {TEXT_ENTRY} not registered for {task}"
    outcome = run(TEXT_ENTRY)
    print_run_outcome(outcome, console=console)
    assert outcome.evaluation is not None
    dice = outcome.evaluation.summary["mean_over_labels"].get("dice", float("nan"))
    return f"{line}; {TEXT_ENTRY} asked for 'lesion' by name: Dice {dice:.3f}"


def _apex(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    """APEX's protocol: the 2D U-Net of each fold on its validation slices and on the test set.

    ``ccbench run monai-unet-2d --task autopet-2d-phantom --folds all`` runs the model of fold
    ``k`` (packed in the one image, chosen by the ``fold`` in ``/input/prompts.json``) on fold
    ``k``'s validation slices, and ``--split test`` runs each fold's model on the test slices;
    the board gives each metric's mean ± SD over the folds beside APEX's Table 2.
    """
    from evaluator.console import print_run_outcome, run_progress
    from evaluator.runner.contract import load_manifest
    from evaluator.runner.run import run_entry
    from evaluator.store import Store
    from leaderboards.folds import fold_summary

    backend = _backend(None)
    if APEX_TASK not in load_manifest(APEX_MODEL, submissions_dir=ws.submissions).tasks:
        raise RuntimeError(f"{APEX_MODEL} is not registered for {APEX_TASK} (not trained?)")
    folds = _fold_count(ws, APEX_TASK)
    for fold in range(folds):
        for split in (f"fold{fold}", HELD_OUT_SPLIT):
            with run_progress(progress) as (containers, on_case):
                outcome = run_entry(
                    APEX_MODEL, task=APEX_TASK, split=split, fold=fold, workspace=ws,
                    backend=backend, submissions_dir=ws.submissions, progress=containers,
                    on_case=on_case,
                )  # fmt: skip
            print_run_outcome(outcome, console=console)
    with Store.open(ws.store_url) as db:
        summary = fold_summary(db, APEX_TASK)
    if summary is None or APEX_MODEL not in summary.table.index:
        raise RuntimeError(f"no fold summary of {APEX_MODEL} on {APEX_TASK}")
    row = summary.table.loc[APEX_MODEL]
    test = "" if summary.test_table is None else (
        f"; its {folds} fold models on the test slices: Dice "
        f"{summary.test_table.loc[APEX_MODEL, 'dice_mean']:.3f} ± "
        f"{summary.test_table.loc[APEX_MODEL, 'dice_std']:.3f}"
    )  # fmt: skip
    return (
        f"`ccbench run {APEX_MODEL} -t {APEX_TASK} --folds all` ({backend}): Dice "
        f"{row['dice_mean']:.3f} ± {row['dice_std']:.3f}, IoU {row['iou_mean']:.3f} ± "
        f"{row['iou_std']:.3f} over {folds} folds{test}"
    )


#: The demo's self-hosted challenge: a team uploads this entry's image through the HTTP API.
SERVE_ENTRY = "threshold"
SERVE_SPEC = {
    "name": "demo-challenge",
    "title": "ccbench demo challenge (AutoPET phantom)",
    "phases": [
        {
            "name": "final", "task": DEMO_MODEL_TASK, "split": HELD_OUT_SPLIT,
            "start": "2026-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z",
            "limits": {"per_day": 5}, "hidden": True, "public_metrics": ["dice", "cc_dice"],
        }
    ],
}  # fmt: skip


def _serve(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    """``ccbench serve`` on loopback: a challenge, a team token, an upload of the threshold
    baseline's ``docker save`` archive through the HTTP API, the job runner running it
    sandboxed on the hidden split, and the public board read back."""

    import requests

    from evaluator.runner.contract import load_manifest
    from evaluator.runner.docker_backend import DockerBackend
    from evaluator.server.app import create_app
    from evaluator.server.challenge import ChallengeSpec
    from evaluator.server.client import submit_to_server, wait_for_submission
    from evaluator.server.loopback import on_loopback
    from evaluator.server.state import ServerState
    from evaluator.server.worker import Worker
    from evaluator.store import Store

    if _backend(None) != "docker":
        return "skipped: no Docker engine (the server runs every upload sandboxed)"
    spec = ChallengeSpec.model_validate(SERVE_SPEC)
    state = ServerState(Store.open(ws.store_url))
    state.create_challenge(spec, actor="demo", update=True)
    state.set_open(spec.name, True, actor="demo")
    team = f"lab-{int(time.time())}"  # a fresh team each run: the demo's limits never bite
    state.add_team(spec.name, team, actor="demo")
    token = state.issue_token(spec.name, role="team", team=team, actor="demo")
    folder = ws.root / "server" / spec.name
    archive = folder / "upload.tar"
    folder.mkdir(parents=True, exist_ok=True)
    image = DockerBackend().client.images.get(
        load_manifest(SERVE_ENTRY, submissions_dir=ws.submissions).image
    )
    with progress.status(f"docker save {SERVE_ENTRY}"), archive.open("wb") as out:
        for chunk in image.save(named=False):
            out.write(chunk)
    app = create_app(state, spec.name, folder / "uploads", secret=os.urandom(32))
    worker = Worker(
        state, ws, folder / "uploads", name="demo-worker", poll_s=0.5, challenge=spec.name
    )
    with contextlib.ExitStack() as stack:
        stack.callback(archive.unlink, missing_ok=True)
        worker.start()
        stack.callback(worker.stop, timeout=60)
        url = stack.enter_context(on_loopback(app))
        with progress.status("uploading and running the submission"):
            answer = submit_to_server(url, token, archive, "final")  # ccbench submit --server
            sid = int(answer["id"])
            wait_for_submission(url, token, sid, poll_s=1.0, timeout_s=900)
        record = state.submission(sid)
        if record.status != "finished":
            raise RuntimeError(f"submission {sid}: {record.error_class}: {record.error}")
        board = requests.get(url, timeout=30).text
        hidden = requests.get(
            f"{url}/api/submissions/{sid}/logs", headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).status_code  # fmt: skip
    if team not in board:
        raise RuntimeError("the public board does not list the submission")
    size = answer["bytes"] / 2**20
    return (
        f"`ccbench serve` on {url}: team {team} uploaded the {SERVE_ENTRY} image ({size:.0f} MB) "
        f"with `ccbench submit --server` (`POST /api/submissions`); run sandboxed on the hidden {HELD_OUT_SPLIT} split "
        f"(run {record.run_id}), on the public board with Dice and CC-Dice only; its logs "
        f"refused to the team on the hidden phase (HTTP {hidden})"
    )


#: The entry the demo runs again on a Dask cluster of two local workers.
CLUSTER_ENTRY = "threshold"


def _cluster(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    """The threshold baseline again, its containers on a Dask cluster of two worker processes.

    ``ccbench run threshold ... --scheduler local --workers 2`` starts the cluster on this
    machine; against ``dask scheduler`` and ``dask worker`` hosts the same goes with their
    address. Jobs carry their inputs, each worker runs its containers in its own scratch folder,
    and the rows stored must equal the local run's.
    """
    from evaluator.console import print_run_outcome, run_progress
    from evaluator.runner.contract import load_manifest
    from evaluator.runner.run import run_entry
    from evaluator.store import Store

    manifest = load_manifest(CLUSTER_ENTRY, submissions_dir=ws.submissions)
    task = next(t for t in container_tasks() if t in manifest.tasks)
    with Store.open(ws.store_url) as db:
        before = db.list_runs(task=task, split=DEMO_SPLIT, entry=CLUSTER_ENTRY, status="finished")
    with run_progress(progress) as (containers, on_case):
        outcome = run_entry(
            CLUSTER_ENTRY,
            task=task,
            split=DEMO_SPLIT,
            workspace=ws,
            backend=_backend(None),
            submissions_dir=ws.submissions,
            scheduler="local",
            workers=2,
            progress=containers,
            on_case=on_case,
        )
    print_run_outcome(outcome, console=console)
    workers = {r.details.get("worker") for r in outcome.container_runs}
    line = (
        f"`ccbench run {CLUSTER_ENTRY} -t {task} -s {DEMO_SPLIT} --scheduler local --workers 2`: "
        f"{len(outcome.container_runs)} containers on {len(workers)} workers"
    )
    if not before:
        return f"{line}; no local run to compare with"
    with Store.open(ws.store_url) as db:
        ours = db.find_run(outcome.name)
        assert ours is not None
        local, remote = (
            db.results_frame(run_ids=[r.id])[["case_id", "label", "metric", "value"]]
            .sort_values(["case_id", "label", "metric"])
            .reset_index(drop=True)
            for r in (before[-1], ours)
        )
    same = local.equals(remote)
    if not same:
        raise RuntimeError(
            f"the cluster run stored other numbers than the local run {before[-1].name}"
        )
    return f"{line}; {len(remote)} stored numbers, identical to the local run's"


def _submit_nnunet(ws: Workspace, backend: str, console: Console) -> list[BaselineBuild]:
    """The demo's nnU-Net results folder as an entry (``ccbench submit --nnunet-results``)."""
    from evaluator.learn.train import find_trained
    from evaluator.runner.baselines import BaselineBuild, submit_nnunet_results

    trained = find_trained(ws, NNUNET_MODEL, DEMO_MODEL_TASK)
    if trained is None or backend != "docker":
        return []
    config = json.loads((trained / "config.json").read_text())
    results = (trained / config["results_folder"]).resolve()
    console.print(
        f"`ccbench submit --nnunet-results {results} --name {NNUNET_MODEL} --task "
        f"{DEMO_MODEL_TASK} --folds {config['fold']} --baseline`",
        highlight=False,
    )
    entry = submit_nnunet_results(
        results, name=NNUNET_MODEL, tasks=[DEMO_MODEL_TASK], workspace=ws,
        submissions_dir=ws.submissions, folds=[str(config["fold"])], overwrite=True,
        baseline=True, team="ccbench baselines",
    )  # fmt: skip
    return [
        BaselineBuild(
            NNUNET_MODEL, entry.image, entry.path, True, entry.manifest.tasks, entry.size_mb
        )
    ]


def _held_out_comparison(ws: Workspace, console: Console) -> str:
    """Dice and CC-Dice of every baseline on the held-out AutoPET split (a table and a line)."""
    from evaluator.console import kv_table
    from evaluator.store import Store

    with Store.open(ws.store_url) as db:
        runs = db.list_runs(task=DEMO_MODEL_TASK, split=HELD_OUT_SPLIT, kind="baseline")
        frame = db.results_frame(run_ids=[r.id for r in runs])
    if frame.empty:
        return "no baseline scored on the held-out split"
    means = (
        frame[frame["metric"].isin(["dice", "cc_dice"])]
        .groupby(["entry", "metric"])["value"]
        .mean()
        .unstack()
    )
    rows = {
        entry: f"Dice {row['dice']:.3f}, CC-Dice {row['cc_dice']:.3f}"
        for entry, row in means.sort_values("dice", ascending=False).iterrows()
    }
    console.print(kv_table(f"baselines on {DEMO_MODEL_TASK} / {HELD_OUT_SPLIT}", rows))
    return f"{DEMO_MODEL_TASK}/{HELD_OUT_SPLIT}: " + "; ".join(f"{k} {v}" for k, v in rows.items())


def _simulate(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import (
        evaluation_progress,
        print_dataset_study,
        print_toy_result,
        toy_progress,
    )
    from evaluator.metrics.plugins import activate
    from evaluator.simulate.dataset import run_dataset_study, study_grid
    from evaluator.simulate.toy import run_toy_studies
    from leaderboards.sensitivity import metric_range, verdict

    mine = activate()  # the example metrics the demo registered (DEMO_METRICS)
    with toy_progress(progress) as bars:
        toy = run_toy_studies(ws.simulations / "toy", scale=0.25, progress=bars, metrics=mine)
    print_toy_result(toy, console=console)
    grid = study_grid("all")  # `ccbench simulate dataset` without --op: all four, both orders
    for op, order in grid:
        with evaluation_progress(progress) as on_case:
            study = run_dataset_study(
                DEMO_MODEL_TASK, DEMO_SPLIT, op=op, order=order, workspace=ws,
                n_max=DEMO_STUDY_N_MAX, seed=seed, on_case=on_case,
            )  # fmt: skip
    print_dataset_study(study, console=console)  # its sensitivity table covers all eight
    table = study.sensitivity.set_index(["op", "metric"])
    seen = {
        m: verdict(float(table.loc[("drop", m), "smallest_n1"]), metric_range(m))[0]
        for m in ("dice", "cc_dice")
    }
    return (
        f"toy studies (scale 0.25) and {len(grid)} AutoPET dataset studies (drop, insert, "
        f"enlarge, erode x smallest, largest; n <= {DEMO_STUDY_N_MAX}) with the example user "
        f"metrics {', '.join(mine)}: dropping the smallest lesion, Dice {seen['dice']} it, "
        f"CC-Dice {seen['cc_dice']} it; plots under {ws.simulations}"
    )


def _leaderboards(ws: Workspace, seed: int, console: Console, progress: Console) -> str:
    from evaluator.console import progress_bar
    from leaderboards.site import publish_cross_task, publish_leaderboard

    site = ws.sites / "index.html"
    boards = demo_boards()
    for task, split in boards:
        with progress_bar(progress, f"leaderboard {task}/{split}") as hook:
            site = publish_leaderboard(task, split, workspace=ws, seed=seed, progress=hook)
    with progress.status("cross-task consensus"):
        cross = publish_cross_task(site.parent, workspace=ws, seed=seed)
    console.print(f"[bold green]Leaderboard site:[/] {site}", highlight=False)
    consensus = ""
    if cross is not None:
        console.print(f"[bold green]Cross-task consensus:[/] {cross}", highlight=False)
        consensus = f"; cross-task consensus of the entries on several tasks: {cross}"
    return (
        f"static site with {len(boards)} leaderboards (held-out splits with the learned "
        f"baselines, {APEX_TASK} with its folds and APEX's rows): {site}{consensus}"
    )


def demo_boards() -> list[tuple[str, str]]:
    """``(task, split)`` of every board the demo publishes."""
    boards = [(f"{task}-phantom", DEMO_SPLIT) for task in demo_tasks()]
    boards += [(task, HELD_OUT_SPLIT) for task in MULTI_TASKS]
    # fold models are summarised on the boards of the folds (not ranked on the test board)
    return [*boards, (APEX_TASK, "fold0")]


def demo_steps() -> list[DemoStep]:
    """The demo's steps, in order."""
    return [
        DemoStep("Phantom data for all four tasks", _phantoms),
        DemoStep("Check the phantom data", _check),
        DemoStep("Stratified splits", _split),
        DemoStep("Score one prediction (`ccbench metrics`)", _metrics),
        DemoStep("Local evaluation of three entries per task (`ccbench evaluate`)", _evaluate),
        DemoStep("Integrity: hostile prediction files are refused", _integrity),
        DemoStep(
            "Learned baselines: a 3D U-Net on three tasks, a 2D one per fold (`ccbench baselines "
            "train`)",
            _train,
        ),
        DemoStep("Baseline containers: build, submit, run sandboxed (`ccbench run`)", _containers),
        DemoStep("On a cluster: containers on Dask workers (`ccbench run --scheduler`)", _cluster),
        DemoStep(
            "Prompted entries: clicks per budget, text targets (`ccbench run --clicks`)", _prompted
        ),
        DemoStep("APEX's 2D slices: a model per fold (`ccbench run --folds all`)", _apex),
        DemoStep("A self-hosted challenge: upload, queue, board (`ccbench serve`)", _serve),
        DemoStep("Degradation studies and your own metric (`ccbench simulate`)", _simulate),
        DemoStep(
            "Leaderboards: rankings, what each metric sees, disagreement explorer, static site",
            _leaderboards,
        ),
    ]


def _run_steps(
    steps: list[DemoStep],
    workspace: Workspace,
    seed: int,
    console: Console,
    progress: Console,
    outcomes: list[tuple[str, bool, str, float]],
) -> None:
    """Run every step; a failing step is reported and the next one runs."""
    for number, step in enumerate(steps, start=1):
        console.rule(f"[bold]{number}/{len(steps)}. {step.title}")
        start = time.perf_counter()
        try:
            summary = step.run(workspace, seed, console, progress)
            ok = True
        except Exception as err:  # a failing step must not hide the others' results
            summary, ok = f"{type(err).__name__}: {err}", False
            console.print(f"[bold red]step failed:[/] {summary}", highlight=False)
        outcomes.append((step.title, ok, summary, time.perf_counter() - start))


def run_demo(
    workspace: Workspace,
    *,
    seed: int = 0,
    console: Console | None = None,
    progress: Console | None = None,
) -> bool:
    """Run every demo step in ``workspace``; return True when all succeeded.

    The example user metrics of :data:`DEMO_METRICS` are registered for the whole run.

    Parameters
    ----------
    workspace
        Where everything is written (created if missing).
    seed
        Seed of every random choice; the same seed gives the same numbers.
    console
        Where to print results; a default rich console when omitted.
    progress
        Where progress bars go (plain lines when not a terminal); default: stderr. A console
        made with ``quiet=True`` shows none.
    """
    from evaluator.metrics.plugins import registered

    console = console or Console(emoji=False)
    progress = progress or Console(stderr=True, emoji=False)
    workspace.ensure()
    outcomes: list[tuple[str, bool, str, float]] = []
    steps = demo_steps()
    with registered(DEMO_METRICS):
        _run_steps(steps, workspace, seed, console, progress, outcomes)
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
