"""The nnU-Net half of ``ccbench baselines train --model nnunet``, run as its own process.

``python -m evaluator.learn.nnunet_job JOB.json`` runs nnU-Net v2's own fingerprint extraction,
experiment planning and preprocessing on an exported raw dataset, then trains one fold with
:class:`nnUNetTrainerCcbench` and runs nnU-Net's final validation on the fold's validation
cases. The parent (:mod:`.nnunet_train`) sets nnU-Net's folders in the environment
(``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``, read when nnU-Net is imported),
which is why this is a separate process. Progress goes to stdout as lines
``CCBENCH-PROGRESS <done> <total> <status>``; everything else nnU-Net prints goes there too.

The trainer is nnU-Net's ``nnUNetTrainer`` with the schedule of the job (epochs, iterations per
epoch, validation iterations) and an optional wall-clock budget checked after each epoch; it is
instantiated directly, so nnU-Net's trainer lookup (which imports every trainer module,
timm-based ones included) never runs. The planner, fingerprint extractor and preprocessor are
nnU-Net's defaults, imported by class, not looked up by name.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["PROGRESS_PREFIX", "TRAINER_NAME", "main", "trainer_class"]

#: Prefix of the progress lines on stdout.
PROGRESS_PREFIX = "CCBENCH-PROGRESS"
#: Class name of ccbench's trainer (it names nnU-Net's results folder).
TRAINER_NAME = "nnUNetTrainerCcbench"


def _progress(done: int, total: int, status: str) -> None:
    print(f"{PROGRESS_PREFIX} {done} {total} {status}", flush=True)


def trainer_class(schedule: dict[str, Any]) -> type:
    """nnU-Net's trainer with the schedule of ``schedule`` (see the module docstring).

    ``schedule``: ``epochs``, ``iterations_per_epoch``, ``val_iterations_per_epoch`` and
    ``time_budget_s`` (``None``: no budget).
    """
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    class nnUNetTrainerCcbench(nnUNetTrainer):
        def __init__(
            self,
            plans: dict[str, Any],
            configuration: str,
            fold: int,
            dataset_json: dict[str, Any],
            device: torch.device = torch.device("cuda"),  # noqa: B008 (nnU-Net's signature)
        ) -> None:
            super().__init__(plans, configuration, fold, dataset_json, device)
            self.num_epochs = int(schedule["epochs"])
            self.num_iterations_per_epoch = int(schedule["iterations_per_epoch"])
            self.num_val_iterations_per_epoch = int(schedule["val_iterations_per_epoch"])
            self.stopped_by_time_budget = False

        def run_training(self) -> None:
            budget = schedule.get("time_budget_s")
            total = self.num_epochs * self.num_iterations_per_epoch
            start = time.perf_counter()
            self.on_train_start()
            for epoch in range(self.current_epoch, self.num_epochs):
                self.on_epoch_start()
                self.on_train_epoch_start()
                outputs = []
                for it in range(self.num_iterations_per_epoch):
                    outputs.append(self.train_step(next(self.dataloader_train)))
                    done = epoch * self.num_iterations_per_epoch + it + 1
                    _progress(done, total, f"epoch {epoch + 1} loss {outputs[-1]['loss']:.3f}")
                self.on_train_epoch_end(outputs)
                with torch.no_grad():
                    self.on_validation_epoch_start()
                    val = [
                        self.validation_step(next(self.dataloader_val))
                        for _ in range(self.num_val_iterations_per_epoch)
                    ]
                    self.on_validation_epoch_end(val)
                self.on_epoch_end()
                last = epoch + 1 == self.num_epochs
                if budget is not None and time.perf_counter() - start > budget and not last:
                    self.stopped_by_time_budget = True
                    self.print_to_log_file(
                        f"ccbench: stopped by the time budget ({budget:.0f} s) after epoch "
                        f"{epoch + 1} of {self.num_epochs}"
                    )
                    self.num_epochs = epoch + 1
                    break
            self.on_train_end()

    nnUNetTrainerCcbench.__name__ = nnUNetTrainerCcbench.__qualname__ = TRAINER_NAME
    return nnUNetTrainerCcbench


def plan_and_preprocess(
    dataset_id: int, configuration: str, processes: int, target_spacing: list[float] | None
) -> None:
    """nnU-Net's ``nnUNetv2_plan_and_preprocess -d ID -c CONFIGURATION`` (default classes).

    ``target_spacing`` (mm, nnU-Net's axis order) is ``-overwrite_target_spacing`` of
    ``nnUNetv2_plan_experiment``: a coarser grid for the quick profile.
    """
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import (
        ExperimentPlanner,
    )
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprint_dataset,
        plan_experiment_dataset,
        preprocess_dataset,
    )

    extract_fingerprint_dataset(
        dataset_id, DatasetFingerprintExtractor, processes, check_dataset_integrity=True,
        clean=True, verbose=False, show_progress_bar=False,
    )  # fmt: skip
    plan_experiment_dataset(dataset_id, ExperimentPlanner, overwrite_target_spacing=target_spacing)
    preprocess_dataset(dataset_id, "nnUNetPlans", (configuration,), (processes,), verbose=False,
                       show_progress_bar=False)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the job described by the JSON file ``argv[0]``; write the outcome to ``result``."""
    import numpy as np
    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text())
    dataset_id, configuration = int(job["dataset_id"]), str(job["configuration"])
    name = convert_id_to_dataset_name(dataset_id)
    start = time.perf_counter()
    processes = max(1, int(job["processes"]))
    workers = job.get("augmentation_workers")
    # the planner sets torch's threads from nnUNet_n_proc_DA, which must then be positive
    os.environ["nnUNet_n_proc_DA"] = str(processes)  # noqa: SIM112 (nnU-Net's name)
    _progress(0, 1, "planning and preprocessing")
    plan_and_preprocess(dataset_id, configuration, processes, job.get("target_spacing_mm"))
    if workers is not None:  # 0: augmentation in the training process
        os.environ["nnUNet_n_proc_DA"] = str(int(workers))  # noqa: SIM112
    planned = time.perf_counter() - start
    preprocessed = Path(str(nnUNet_preprocessed)) / name
    if job.get("splits"):
        (preprocessed / "splits_final.json").write_text(Path(job["splits"]).read_text())
    torch.manual_seed(int(job["seed"]))
    np.random.seed(int(job["seed"]))
    plans = load_json(str(preprocessed / "nnUNetPlans.json"))
    plans["continue_training"] = False
    dataset_json = load_json(str(preprocessed / "dataset.json"))
    device = torch.device(job["device"])
    trainer = trainer_class(job["schedule"])(
        plans=plans, configuration=configuration, fold=int(job["fold"]),
        dataset_json=dataset_json, device=device,
    )  # fmt: skip
    trainer.run_training()
    trained = time.perf_counter() - start - planned
    _progress(1, 1, "validating (nnU-Net's final validation)")
    trainer.perform_actual_validation(False)
    summary = json.loads((Path(trainer.output_folder) / "validation" / "summary.json").read_text())
    result = {
        "results_folder": str(trainer.output_folder_base),
        "output_folder": str(trainer.output_folder),
        "epochs_done": int(trainer.num_epochs),
        "iterations_done": int(trainer.num_epochs) * int(trainer.num_iterations_per_epoch),
        "stopped_by_time_budget": bool(trainer.stopped_by_time_budget),
        "plan_seconds": round(planned, 2),
        "train_seconds": round(trained, 2),
        "validation_seconds": round(time.perf_counter() - start - planned - trained, 2),
        "val_dice": summary.get("foreground_mean", {}).get("Dice"),
        "patch_size": list(trainer.configuration_manager.patch_size),
        "batch_size": int(trainer.configuration_manager.batch_size),
    }
    Path(job["result"]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
