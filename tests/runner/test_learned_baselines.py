"""Learned baselines and suv-threshold: staged, built (locally and as images), run, stored.

The local-backend tests run without Docker (the staged context's own ``predict.py`` with the
copied container code); the ``docker`` tests build the images on the local torch base image and
run them sandboxed through both interfaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import evaluator.learn
import evaluator.runner.baselines
from evaluator.errors import SubmissionError
from evaluator.learn.train import train_baseline
from evaluator.runner.baselines import baseline_spec, build_baselines, list_baselines, stage_context
from evaluator.runner.run import run_entry
from evaluator.store import Store
from evaluator.workspace import Workspace

TASK = "autopet-phantom"


def _scores(ws: Workspace, entry: str, split: str = "test") -> dict[str, float]:
    with Store.open(ws.store_url) as db:
        frame = db.results_frame(task=TASK, split=split, entry=entry)
    return frame.groupby("metric")["value"].mean().to_dict()


def test_every_baseline_folder_is_complete() -> None:
    names = list_baselines()
    assert {"threshold", "suv-threshold", "monai-unet", "anatomy-guided", "monai-unetr",
            "monai-swinunetr"} <= set(names)  # fmt: skip
    from evaluator.learn.models import MODELS, NNUNET_MODEL

    assert NNUNET_MODEL in names
    for name in names:
        folder = evaluator.runner.baselines.baselines_dir() / name
        for part in ("Dockerfile", "predict.py", "README.md", "baseline.yaml"):
            assert (folder / part).is_file(), (name, part)
        spec = baseline_spec(name)
        if spec.model == NNUNET_MODEL:
            assert spec.base == "nnunet"
        elif spec.model is not None:
            assert spec.model in MODELS and spec.base == "torch"
            assert set(spec.tasks or ()) == set(MODELS[spec.model].tasks)


def test_staged_context_holds_the_container_code_and_weights_only(
    autopet_ws: Workspace, tmp_path: Path
) -> None:
    result = train_baseline("monai-unet", TASK, workspace=autopet_ws, iterations=2)
    dest = stage_context("monai-unet", tmp_path / "ctx", weights={TASK: result.folder})
    learn = sorted(p.stem for p in (dest / "evaluator" / "learn").glob("*.py"))
    assert learn == sorted(evaluator.learn.CONTAINER_MODULES)
    assert "train" not in learn  # host-only code stays on the host
    config = json.loads((dest / "weights" / TASK / "config.json").read_text())
    assert config["gc_output"] == "automated-petct-lesion-segmentation"
    assert config["gc_inputs"] == {"ct": "CT", "pet": "PET", "organs": "ORGANS"}
    assert (dest / "weights" / TASK / "model.pt").read_bytes() == (
        result.folder / "model.pt"
    ).read_bytes()


def test_a_learned_baseline_without_weights_is_refused_or_skipped(workspace: Workspace) -> None:
    with pytest.raises(SubmissionError, match="ccbench baselines train --model monai-unet"):
        build_baselines(
            workspace=workspace, submissions_dir=workspace.submissions, names=["monai-unet"],
            docker=False,
        )  # fmt: skip
    builds = {
        b.name: b
        for b in build_baselines(
            workspace=workspace, submissions_dir=workspace.submissions, docker=False
        )
    }
    assert builds["monai-unet"].skipped and builds["monai-unet"].manifest is None
    assert builds["suv-threshold"].skipped is None and builds["suv-threshold"].manifest


@pytest.mark.slow
@pytest.mark.parametrize("model", ["monai-unet", "anatomy-guided"])
def test_learned_baseline_runs_with_the_local_backend_into_the_store(
    autopet_ws: Workspace, model: str
) -> None:
    train_baseline(model, TASK, workspace=autopet_ws, iterations=3)
    (build,) = build_baselines(
        workspace=autopet_ws, submissions_dir=autopet_ws.submissions, names=[model], docker=False
    )
    assert build.tasks == (TASK,)
    outcome = run_entry(
        model, task=TASK, split="test", workspace=autopet_ws, backend="local",
        submissions_dir=autopet_ws.submissions,
    )  # fmt: skip
    # anatomy-guided exits with status 2 when ORGANS is not staged: predictions prove it was
    assert set(outcome.predictions) == set(outcome.case_ids) and not outcome.case_errors
    assert {"dice", "cc_dice"} <= set(_scores(autopet_ws, model))


@pytest.mark.slow
def test_suv_threshold_runs_with_the_local_backend(autopet_ws: Workspace) -> None:
    build_baselines(
        workspace=autopet_ws, submissions_dir=autopet_ws.submissions, names=["suv-threshold"],
        docker=False,
    )  # fmt: skip
    outcome = run_entry(
        "suv-threshold", task=TASK, split="test", workspace=autopet_ws, backend="local",
        submissions_dir=autopet_ws.submissions,
    )  # fmt: skip
    assert set(outcome.predictions) == set(outcome.case_ids) and not outcome.case_errors


@pytest.mark.docker
@pytest.mark.slow
def test_learned_and_suv_images_run_sandboxed_through_both_interfaces(
    autopet_ws: Workspace, docker_backend: Any
) -> None:
    from evaluator.runner.submissions import submit_image

    train_baseline("anatomy-guided", TASK, workspace=autopet_ws, iterations=3)
    builds = build_baselines(
        workspace=autopet_ws, submissions_dir=autopet_ws.submissions,
        names=["anatomy-guided", "suv-threshold"],
    )  # fmt: skip
    try:
        for build in builds:
            assert build.built and build.size_mb and build.size_mb > 0
            outcome = run_entry(
                build.name, task=TASK, split="test", workspace=autopet_ws,
                submissions_dir=autopet_ws.submissions,
            )  # fmt: skip
            assert set(outcome.predictions) == set(outcome.case_ids), outcome.case_errors
            assert outcome.provenance["backend"] == "docker"
            assert "dice" in _scores(autopet_ws, build.name)
        # the same image, registered for the grand-challenge interface: one run per case,
        # channels (ct, pet, organs) and the output folder taken from the staged config
        submit_image(
            next(b.image for b in builds if b.name == "anatomy-guided"), name="anatomy-gc",
            tasks=(TASK,),
            submissions_dir=autopet_ws.submissions, interface="grand-challenge",
        )  # fmt: skip
        outcome = run_entry(
            "anatomy-gc", task=TASK, split="test", workspace=autopet_ws,
            submissions_dir=autopet_ws.submissions,
        )  # fmt: skip
        assert set(outcome.predictions) == set(outcome.case_ids), outcome.case_errors
        assert len(outcome.container_runs) == len(outcome.case_ids)
    finally:
        for build in builds:
            docker_backend.client.images.remove(build.image)  # this workspace's tag only


@pytest.mark.slow
def test_the_2d_baseline_answers_with_scored_coco_instances(chestxdet_ws: Workspace) -> None:
    task = "chestxdet-phantom"
    train_baseline("monai-unet-2d", task, workspace=chestxdet_ws, iterations=3)
    build_baselines(
        workspace=chestxdet_ws, submissions_dir=chestxdet_ws.submissions,
        names=["monai-unet-2d"], docker=False,
    )  # fmt: skip
    outcome = run_entry(
        "monai-unet-2d", task=task, split="test", workspace=chestxdet_ws, backend="local",
        submissions_dir=chestxdet_ws.submissions,
    )  # fmt: skip
    assert not outcome.case_errors and set(outcome.predictions) == set(outcome.case_ids)
    written = json.loads((outcome.run_dir / "predictions" / "predictions.json").read_text())
    assert isinstance(written, list)
    assert {i["image_id"] for i in written} <= set(outcome.case_ids)
    assert all(0.0 <= i["score"] <= 1.0 and 1 <= i["category_id"] <= 13 for i in written)
    with Store.open(chestxdet_ws.store_url) as db:
        frame = db.results_frame(task=task, split="test", entry="monai-unet-2d")
        aggregates = db.aggregates_frame(task=task, split="test", entry="monai-unet-2d")
        errors = db.errors_frame(task=task, split="test", entry="monai-unet-2d")
    assert "dice" in set(frame["metric"])
    assert "coco_ap" in set(aggregates["metric"])  # the scores reached COCO mask AP
    assert errors.empty or set(errors["error_class"]) <= {"empty"}


def test_a_link_in_a_build_context_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "baselines"
    shutil.copytree(evaluator.runner.baselines.baselines_dir() / "threshold", root / "threshold")
    (root / "threshold" / "leak").symlink_to(tmp_path)
    monkeypatch.setenv("CCBENCH_BASELINES", str(root))
    with pytest.raises(SubmissionError, match="links are not copied into an image"):
        stage_context("threshold", tmp_path / "ctx")
    assert not (tmp_path / "ctx").exists()


@pytest.mark.slow
def test_a_case_without_the_organ_map_loses_only_itself(autopet_ws: Workspace) -> None:
    train_baseline("anatomy-guided", TASK, workspace=autopet_ws, iterations=2)
    build_baselines(
        workspace=autopet_ws, submissions_dir=autopet_ws.submissions, names=["anatomy-guided"],
        docker=False,
    )  # fmt: skip
    from evaluator.datasets.splits import resolve_split

    first, *others = resolve_split(TASK, "test", workspace=autopet_ws)
    from evaluator.datasets.base import open_dataset

    (open_dataset(TASK, workspace=autopet_ws).case(first).channels["ORGANS"]).unlink()
    outcome = run_entry(
        "anatomy-guided", task=TASK, split="test", workspace=autopet_ws, backend="local",
        submissions_dir=autopet_ws.submissions,
    )  # fmt: skip
    assert set(outcome.case_errors) == {first} and set(outcome.predictions) == set(others)
