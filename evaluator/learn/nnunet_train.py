"""``ccbench baselines train --model nnunet``: nnU-Net v2 on a task's training folds.

The task's train and validation cases (never its test cases) are exported in nnU-Net's raw
layout (:func:`evaluator.datasets.nnunet.export_raw`) with the ccbench split as
``splits_final.json``; nnU-Net's own fingerprinting, planning (``nnUNetPlans``, default
planner) and preprocessing run on them, then one fold is trained with ccbench's trainer (nnU-Net's
``nnUNetTrainer`` with the profile's schedule, :mod:`.nnunet_job`) and validated by nnU-Net's
final validation. Everything nnU-Net writes stays in nnU-Net's own layout under
``<workspace>/baselines/nnunet/<task>/``::

    nnUNet_raw/Dataset9NN_<Name>/            imagesTr, labelsTr, dataset.json, splits_final.json
    nnUNet_preprocessed/Dataset9NN_<Name>/   plans, fingerprint, preprocessed cases
    nnUNet_results/Dataset9NN_<Name>/nnUNetTrainerCcbench__nnUNetPlans__3d_fullres/fold_k/
    fold<k>/                                 config.json, training.log, curve.csv, curve.png

so the results folder is what ``ccbench submit --nnunet-results`` takes from any nnU-Net user.
The run is recorded in the store (kind ``training``) like the MONAI baselines'.

Profiles (:data:`NNUNET_PROFILES`): ``quick`` is a few epochs of a few iterations with a time
budget, minutes on 2 CPU cores; ``full`` is nnU-Net's default schedule (1000 epochs of 250
iterations, 50 validation iterations), for a GPU. nnU-Net's data augmentation is random, so two
trainings with the same seed are alike but not bit-identical.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluator.datasets.nnunet import nnunet_dataset_name
from evaluator.errors import TrainingError
from evaluator.learn.models import NNUNET_MODEL
from evaluator.learn.train import Progress, TrainResult, record_training, trained_dir
from evaluator.workspace import Workspace

__all__ = [
    "NNUNET_MODEL",
    "NNUNET_PROFILES",
    "nnunet_dataset_name",
    "nnunet_root",
    "train_nnunet",
]

#: Schedules: epochs x iterations per epoch, validation iterations per epoch, time budget (s),
#: nnU-Net configuration, target spacing (mm, ``None``: nnU-Net's choice; quick plans a coarse
#: isotropic grid, nnU-Net's ``-overwrite_target_spacing``), processes for preprocessing and
#: data-augmentation workers (``0``: in the training process; ``None``: nnU-Net's choice).
NNUNET_PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "epochs": 10,
        "iterations_per_epoch": 10,
        "val_iterations_per_epoch": 2,
        "time_budget_s": 300.0,
        "configuration": "3d_fullres",
        "target_spacing_mm": [4.0, 4.0, 4.0],
        "augmentation_workers": 0,
        "processes": 2,
    },
    "full": {
        "epochs": 1000,
        "iterations_per_epoch": 250,
        "val_iterations_per_epoch": 50,
        "time_budget_s": None,
        "configuration": "3d_fullres",
        "target_spacing_mm": None,
        "augmentation_workers": None,
        "processes": 8,
    },
}


def nnunet_root(workspace: Workspace, task: str) -> Path:
    """``<workspace>/baselines/nnunet/<task>``: nnU-Net's three folders and ccbench's folds."""
    return workspace.root / "baselines" / NNUNET_MODEL / task


def _schedule(profile: str, iterations: int | None, time_budget_s: float | None) -> dict[str, Any]:
    if profile not in NNUNET_PROFILES:
        raise TrainingError(f"unknown profile '{profile}' (known: {', '.join(NNUNET_PROFILES)})")
    schedule = dict(NNUNET_PROFILES[profile])
    if iterations is not None:
        per_epoch = min(int(iterations), int(schedule["iterations_per_epoch"]))
        schedule.update(iterations_per_epoch=per_epoch, epochs=math.ceil(iterations / per_epoch))
    if time_budget_s is not None:
        schedule["time_budget_s"] = float(time_budget_s)
    return schedule


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import numpy as np
    import torch

    import evaluator

    return {
        "ccbench": evaluator.__version__,
        "torch": torch.__version__,
        "nnunetv2": version("nnunetv2"),
        "numpy": np.__version__,
    }


def _curve(checkpoint: Path, out_csv: Path) -> list[dict[str, Any]]:
    """Per-epoch train/validation loss and pseudo-Dice from nnU-Net's checkpoint log."""
    import csv

    import torch

    logged = torch.load(checkpoint, map_location="cpu", weights_only=False).get("logging", {})
    keys = {"train_losses": "loss", "val_losses": "val_loss", "mean_fg_dice": "val_dice"}
    n = len(logged.get("train_losses", []))
    rows = [
        {
            "epoch": i + 1,
            **{new: float(logged[old][i]) for old, new in keys.items() if old in logged},
        }
        for i in range(n)
    ]
    with out_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["epoch", *keys.values()])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def train_nnunet(
    task: str,
    *,
    workspace: Workspace,
    profile: str = "quick",
    seed: int = 0,
    fold: int = 0,
    iterations: int | None = None,
    time_budget_s: float | None = None,
    store: str | None = None,
    reuse: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Train nnU-Net v2 on fold ``fold`` of ``task`` (see the module docstring).

    Parameters are those of :func:`evaluator.learn.train.train_baseline`; ``iterations`` is the
    total number of training iterations (the epochs are cut to fit).

    Raises
    ------
    TrainingError
        nnU-Net not installed, an unknown profile, a task that is not 3D with labels 1..N, a
        missing split, or nnU-Net failing (the message ends with its log).
    """
    from importlib.util import find_spec

    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.nnunet import SPLITS_FILE, export_raw
    from evaluator.datasets.registry import load_registry
    from evaluator.errors import RegistryError
    from evaluator.evaluate.pipeline import dataset_fingerprint
    from evaluator.learn.infer import pick_device
    from evaluator.learn.nnunet_job import TRAINER_NAME
    from evaluator.learn.train import fold_cases

    if find_spec("nnunetv2") is None:
        raise TrainingError(
            "nnU-Net v2 is not installed: `bash scripts/bootstrap.sh nnunet` installs it "
            "(with the CPU torch kept)"
        )
    schedule = _schedule(profile, iterations, time_budget_s)
    task_spec = load_registry().task(task)
    dataset_id, dataset_name = nnunet_dataset_name(task)
    train_ids, val_ids = fold_cases(task_spec, fold, workspace)
    dataset = open_dataset(task_spec, workspace=workspace)
    ids = sorted({*train_ids, *val_ids})
    fingerprint = dataset_fingerprint(
        (dataset.case(c) for c in ids),
        cache=workspace.root / "cache" / "sha256.json",
        channels=True,
    )
    root = nnunet_root(workspace, task)
    folder = trained_dir(workspace, NNUNET_MODEL, task, fold)
    configuration = str(schedule["configuration"])
    results = (
        root / "nnUNet_results" / dataset_name / f"{TRAINER_NAME}__nnUNetPlans__{configuration}"
    )
    settings = {
        "model": NNUNET_MODEL,
        "task": task,
        "fold": fold,
        "seed": seed,
        "profile_name": profile,
        "profile": schedule,
        "dataset_fingerprint": fingerprint,
    }
    config_path = folder / "config.json"
    if reuse and config_path.is_file():
        old = json.loads(config_path.read_text())
        checkpoint = results / f"fold_{fold}" / "checkpoint_final.pth"
        if checkpoint.is_file() and all(
            old.get(k) == v for k, v in json.loads(json.dumps(settings)).items()
        ):
            return TrainResult(
                NNUNET_MODEL, task, fold, profile, seed, folder, int(old["iterations_done"]),
                float(old["seconds"]), bool(old["stopped_by_time_budget"]),
                float(old["final_val_dice"]), None, reused=True,
            )  # fmt: skip

    start = time.perf_counter()
    raw = root / "nnUNet_raw" / dataset_name
    from evaluator.datasets.splits import read_split

    folds, _ = read_split(task_spec.split_path(workspace))
    try:
        export_raw(task_spec, [dataset.case(c) for c in ids], raw, name=dataset_name, folds=folds)
    except RegistryError as err:
        raise TrainingError(str(err)) from None
    device = pick_device()
    folder.mkdir(parents=True, exist_ok=True)
    job = {
        "dataset_id": dataset_id,
        "configuration": configuration,
        "fold": fold,
        "seed": seed,
        "device": str(device),
        "processes": schedule["processes"],
        "augmentation_workers": schedule["augmentation_workers"],
        "target_spacing_mm": schedule["target_spacing_mm"],
        "schedule": schedule,
        "splits": str(raw / SPLITS_FILE),
        "result": str(folder / "job-result.json"),
    }
    (folder / "job.json").write_text(json.dumps(job, indent=1))
    env = {
        **os.environ,
        "nnUNet_raw": str(root / "nnUNet_raw"),
        "nnUNet_preprocessed": str(root / "nnUNet_preprocessed"),
        "nnUNet_results": str(root / "nnUNet_results"),
        "nnUNet_def_n_proc": str(schedule["processes"]),
        "nnUNet_compile": "false",
    }
    for stale in ("job-result.json", "config.json", "curve.csv", "curve.png"):
        (folder / stale).unlink(missing_ok=True)  # a failed training leaves no old model behind
    status = _run_job(folder / "job.json", env, folder / "training.log", progress)
    result_file = folder / "job-result.json"
    if status != 0 or not result_file.is_file():
        tail = (folder / "training.log").read_text(errors="replace").strip()[-1500:]
        raise TrainingError(
            f"nnU-Net training of {task} fold {fold} failed (exit {status}); "
            f"log {folder / 'training.log'}:\n{tail}"
        )
    outcome = json.loads(result_file.read_text())
    seconds = time.perf_counter() - start
    checkpoint = Path(outcome["output_folder"]) / "checkpoint_final.pth"
    _curve(checkpoint, folder / "curve.csv")
    progress_png = Path(outcome["output_folder"]) / "progress.png"
    if progress_png.is_file():
        (folder / "curve.png").write_bytes(progress_png.read_bytes())
    val_dice = outcome.get("val_dice")
    config: dict[str, Any] = {
        **settings,
        "network": "nnU-Net v2 (PlainConvUNet, nnUNetPlans)",
        "dims": 3,
        "channels": list(task_spec.channels),
        "labels": {str(k): v for k, v in task_spec.labels.items()},
        "train_cases": train_ids,
        "val_cases": val_ids,
        "versions": _versions(),
        "device": str(device),
        "dataset_id": dataset_id,
        "dataset_name": dataset_name,
        "configuration": configuration,
        "trainer": TRAINER_NAME,
        "results_folder": os.path.relpath(results, folder),
        "patch_size": outcome["patch_size"],
        "batch_size": outcome["batch_size"],
        "epochs_done": outcome["epochs_done"],
        "iterations_done": outcome["iterations_done"],
        "stopped_by_time_budget": outcome["stopped_by_time_budget"],
        "plan_seconds": outcome["plan_seconds"],
        "train_seconds": outcome["train_seconds"],
        "validation_seconds": outcome["validation_seconds"],
        "seconds": round(seconds, 2),
        "final_val_dice": float("nan") if val_dice is None else float(val_dice),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    config_path.write_text(json.dumps(config, indent=1))
    run_id = record_training(workspace, store, config, folder, weights=results)
    return TrainResult(
        NNUNET_MODEL, task, fold, profile, seed, folder, int(outcome["iterations_done"]), seconds,
        bool(outcome["stopped_by_time_budget"]), float(config["final_val_dice"]), run_id,
    )  # fmt: skip


def _run_job(job: Path, env: Mapping[str, str], log: Path, progress: Progress | None) -> int:
    """Run :mod:`.nnunet_job` on ``job``; its output goes to ``log``, progress to ``progress``."""
    from evaluator.learn.nnunet_job import PROGRESS_PREFIX

    cmd = [sys.executable, "-m", "evaluator.learn.nnunet_job", str(job)]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.startswith(PROGRESS_PREFIX):
                    _, done, total, status = [*line.rstrip("\n").split(" ", 3), ""][:4]
                    if progress is not None:
                        progress(int(done), int(total), status)
                else:
                    sink.write(line)
                    sink.flush()
        except BaseException:  # Ctrl-C: nnU-Net must not train on in the background
            proc.kill()
            proc.wait()
            raise
        return int(proc.wait())
