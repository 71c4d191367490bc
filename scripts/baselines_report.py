"""Train, build and run every baseline on the phantom test splits; write docs/baselines.md.

The measurement behind the "Learned baselines" table of the README: for each learned baseline
(quick profile) and task it is registered for, the training time and validation Dice; for every
baseline image, its size; for every (baseline, task), the sandboxed run of the test split with
its seconds per case and mean Dice / CC-Dice. Takes about half an hour on 2 CPU cores.

Usage: .venv/bin/python scripts/baselines_report.py [--workspace DIR] [--autopet-cases N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from evaluator.datasets.phantoms import write_phantoms
from evaluator.datasets.splits import make_split
from evaluator.learn.models import MODELS, NNUNET_MODEL
from evaluator.learn.nnunet_train import train_nnunet
from evaluator.learn.train import TrainResult, train_baseline
from evaluator.runner.baselines import baseline_spec, build_baselines
from evaluator.runner.run import run_entry
from evaluator.store import Store
from evaluator.workspace import Workspace

TASKS = {
    "autopet": "autopet-phantom",
    "hecktor": "hecktor-phantom",
    "btcv": "btcv-phantom",
    "chestxdet": "chestxdet-phantom",
}
NON_LEARNED = ("threshold", "suv-threshold")


def _aggregate(ws: Workspace, task: str, entry: str, metric: str) -> float:
    """A run-level number (COCO AP) of the entry's latest test run, NaN when not scored."""
    with Store.open(ws.store_url) as db:
        frame = db.aggregates_frame(task=task, split="test", entry=entry)
    frame = frame[frame["metric"] == metric]
    if frame.empty:
        return float("nan")
    return round(float(frame[frame["run_id"] == frame["run_id"].max()]["value"].mean()), 4)


def _training_row(result: TrainResult) -> dict[str, Any]:
    row = {
        "model": result.model,
        "task": result.task,
        "iterations": result.iterations,
        "seconds": round(result.seconds, 1),
        "val_dice": round(result.val_dice, 4),
        "stopped_by_time_budget": result.stopped_by_time_budget,
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path(".ccbench-baselines"))
    parser.add_argument("--autopet-cases", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("docs/baselines.md"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ws = Workspace(args.workspace.absolute()).ensure()
    for family, task in TASKS.items():
        cases = args.autopet_cases if family == "autopet" else None
        write_phantoms(family, workspace=ws, cases=cases, seed=args.seed, progress=False)
        make_split(task, workspace=ws, seed=args.seed, force=True)
    trainings = []
    for name, spec in MODELS.items():
        for task in spec.tasks:
            # an earlier training with the same settings and data is reused (its numbers too)
            trainings.append(
                _training_row(train_baseline(name, task, workspace=ws, seed=args.seed, reuse=True))
            )
    # nnU-Net v2 through its own pipeline (quick profile), on the tasks of its baseline.yaml
    for task in baseline_spec(NNUNET_MODEL).tasks or ():
        trainings.append(
            _training_row(train_nnunet(task, workspace=ws, seed=args.seed, reuse=True))
        )
    builds = build_baselines(
        workspace=ws, submissions_dir=ws.submissions,
        names=[*NON_LEARNED, *MODELS, NNUNET_MODEL],
    )  # fmt: skip
    runs = []
    for build in builds:
        for task in (t for t in build.tasks if t in TASKS.values()):
            start = time.perf_counter()
            outcome = run_entry(
                build.name, task=task, split="test", workspace=ws, submissions_dir=ws.submissions
            )
            container_s = sum(r.seconds for r in outcome.container_runs)
            with Store.open(ws.store_url) as db:
                frame = db.results_frame(task=task, split="test", entry=build.name)
            run_ids = frame["run_id"].unique()
            frame = frame[frame["run_id"] == run_ids.max()]
            means = frame.groupby("metric")["value"].mean()
            runs.append(
                {
                    "baseline": build.name,
                    "task": task,
                    "cases": len(outcome.case_ids),
                    "predictions": len(outcome.predictions),
                    "container_s_per_case": round(container_s / max(1, len(outcome.case_ids)), 1),
                    "wall_s": round(time.perf_counter() - start, 1),
                    "dice": round(float(means.get("dice", float("nan"))), 4),
                    "cc_dice": round(float(means.get("cc_dice", float("nan"))), 4),
                    "coco_ap": _aggregate(ws, task, build.name, "coco_ap"),
                    "image_mb": round(build.size_mb or 0.0),
                }
            )
            print(runs[-1], flush=True)
    (ws.root / "baselines-report.json").write_text(
        json.dumps({"trainings": trainings, "runs": runs}, indent=1)
    )
    lines = [
        "# Baselines on the phantom test splits",
        "",
        f"Written by `scripts/baselines_report.py` (AutoPET phantom: {args.autopet_cases} cases; "
        "HECKTOR and BTCV: the default phantoms; seed "
        f"{args.seed}; quick profiles on the CPU).",
        "",
        "## Training (fold 0)",
        "",
        "| model | task | iterations | seconds | validation Dice |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {t['model']} | {t['task']} | {t['iterations']} | {t['seconds']:.0f} | "
            f"{t['val_dice']:.3f} |"
            for t in trainings
        ),
        "",
        "## Sandboxed runs on the test split",
        "",
        "Mean over the test cases (Dice of a case without foreground is left out); CC-Dice "
        "where the task's profile scores it; COCO mask AP for ChestXDet; seconds per case: "
        "the container's wall time over the split divided by its cases (start and model "
        "loading included).",
        "",
        "| baseline | task | cases | image MB | s per case | Dice | CC-Dice | COCO AP |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['baseline']} | {r['task']} | {r['cases']} | {r['image_mb']} "
            f"| {r['container_s_per_case']:.1f} | {r['dice']:.3f} | {r['cc_dice']:.3f} "
            f"| {r['coco_ap']:.3f} |"
            for r in sorted(runs, key=lambda r: (r["task"], -r["dice"]))
        ),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
