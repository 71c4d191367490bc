"""`ccbench baselines train`: patches, determinism, provenance in the store, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluator.errors import TrainingError
from evaluator.learn.train import dice_per_label, find_trained, sample_patch, train_baseline
from evaluator.store import Store
from evaluator.workspace import Workspace


def test_patches_are_biased_to_foreground_and_padded() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros((40, 40, 40), np.int64)
    y[35:38, 2:5, 30:33] = 1
    x = np.stack([np.full(y.shape, -1.0, np.float32), y.astype(np.float32)])
    fg = np.flatnonzero(y)
    hits = [int(sample_patch(rng, x, y, fg, (8, 8, 8), 1.0)[1].sum() > 0) for _ in range(50)]
    assert sum(hits) == 50
    misses = [int(sample_patch(rng, x, y, fg, (8, 8, 8), 0.0)[1].sum() > 0) for _ in range(200)]
    assert sum(misses) < 50  # uniform centres rarely see a 27-voxel object
    xp, yp = sample_patch(rng, x, y, fg, (48, 8, 8), 1.0)  # taller than the image: padded
    assert xp.shape == (2, 48, 8, 8) and yp.shape == (48, 8, 8)
    assert float(xp[0, 45:].max()) == -1.0 and int(yp[40:].sum()) == 0


def test_dice_per_label_hand_computed() -> None:
    assert dice_per_label([1, 1, 0, 0], [1, 0, 0, 0], [1]) == {1: pytest.approx(2 / 3)}
    assert dice_per_label([0, 0], [0, 0], [1]) == {}
    assert dice_per_label([2, 2], [0, 0], [1, 2]) == {2: 0.0}


def _state(ws: Workspace) -> dict[str, torch.Tensor]:
    folder = find_trained(ws, "monai-unet", "autopet-phantom")
    assert folder is not None
    state: dict[str, torch.Tensor] = torch.load(folder / "model.pt", weights_only=True)
    return state


@pytest.mark.slow
def test_same_seed_same_weights_other_seed_other_weights(autopet_ws: Workspace) -> None:
    kwargs = {"workspace": autopet_ws, "iterations": 4}
    train_baseline("monai-unet", "autopet-phantom", seed=1, **kwargs)  # type: ignore[arg-type]
    first = _state(autopet_ws)
    train_baseline("monai-unet", "autopet-phantom", seed=1, **kwargs)  # type: ignore[arg-type]
    second = _state(autopet_ws)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    train_baseline("monai-unet", "autopet-phantom", seed=2, **kwargs)  # type: ignore[arg-type]
    third = _state(autopet_ws)
    assert not all(torch.equal(first[k], third[k]) for k in first)


@pytest.mark.slow
def test_training_writes_weights_config_curve_and_a_store_run(autopet_ws: Workspace) -> None:
    result = train_baseline(
        "monai-unet", "autopet-phantom", workspace=autopet_ws, iterations=3, seed=0
    )
    folder = result.folder
    assert folder == autopet_ws.root / "baselines" / "monai-unet" / "autopet-phantom" / "fold0"
    for name in ("config.json", "model.pt", "training.log", "curve.csv", "curve.png"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    split = json.loads((autopet_ws.splits / "autopet-phantom.json").read_text())
    assert config["train_cases"] == split[0]["train"] and config["val_cases"] == split[0]["val"]
    assert config["channels"] == ["CT", "PET"]
    assert config["label_values"] == [0, 1]
    assert config["iterations_done"] == 3 and config["stopped_by_time_budget"] is False
    assert config["dataset_fingerprint"].startswith("sha256:")
    assert set(config["versions"]) >= {"torch", "monai", "ccbench"}
    assert 0.0 <= config["final_val_dice"] <= 1.0
    with Store.open(autopet_ws.store_url) as db:
        runs = db.list_runs(kind="training")
        assert [r.id for r in runs] == [result.run_id]
        run = runs[0]
        assert (run.task, run.split, run.entry, run.status) == (
            "autopet-phantom",
            "fold0",
            "monai-unet",
            "finished",
        )
        assert run.dataset_fingerprint == config["dataset_fingerprint"]
        assert run.parameters["seed"] == 0 and run.parameters["iterations_done"] == 3
        kinds = {a.kind for a in db.artifacts(run_ids=[run.id])}
        assert kinds == {"weights", "logs", "table", "plot"}
        # a training is no leaderboard entry
        assert not db.list_runs(kind=("entry", "baseline"))
    again = train_baseline(
        "monai-unet", "autopet-phantom", workspace=autopet_ws, iterations=3, seed=0, reuse=True
    )
    assert again.reused and again.run_id is None
    changed = train_baseline(
        "monai-unet", "autopet-phantom", workspace=autopet_ws, iterations=2, seed=0, reuse=True
    )
    assert not changed.reused and changed.iterations == 2


@pytest.mark.slow
def test_time_budget_stops_and_says_so(autopet_ws: Workspace) -> None:
    result = train_baseline(
        "monai-unet", "autopet-phantom", workspace=autopet_ws, iterations=10_000,
        time_budget_s=1.0,
    )  # fmt: skip
    assert result.stopped_by_time_budget and result.iterations < 10_000
    assert result.config["stopped_by_time_budget"] is True
    assert "stopped by the time budget" in (result.folder / "training.log").read_text()


@pytest.mark.slow
def test_anatomy_model_takes_the_organ_map_and_names_a_missing_one(
    autopet_ws: Workspace,
) -> None:
    result = train_baseline("anatomy-guided", "autopet-phantom", workspace=autopet_ws, iterations=2)
    config = result.config
    assert config["channels"] == ["CT", "PET", "ORGANS"]
    assert config["normalisation"]["ORGANS"] == {"kind": "organs", "ids": [1, 2, 3, 4, 5]}
    case = config["train_cases"][0]
    for organs in (autopet_ws.phantoms / "autopet").rglob("ORGANS.nii.gz"):
        organs.unlink()
    with pytest.raises(TrainingError, match=r"has no ORGANS channel .*ccbench data phantoms"):
        train_baseline("anatomy-guided", "autopet-phantom", workspace=autopet_ws, iterations=2)
    assert case


def test_unknown_model_wrong_dims_and_missing_split_are_named(workspace: Workspace) -> None:
    with pytest.raises(TrainingError, match="unknown model 'nnformer'"):
        train_baseline("nnformer", "autopet-phantom", workspace=workspace)
    with pytest.raises(TrainingError, match="unknown profile 'huge'"):
        train_baseline("monai-unet", "autopet-phantom", workspace=workspace, profile="huge")
    with pytest.raises(TrainingError, match="is 3D and task 'chestxdet-phantom' is 2D"):
        train_baseline("monai-unet", "chestxdet-phantom", workspace=workspace)
    with pytest.raises(TrainingError, match="ccbench data split --task autopet-phantom"):
        train_baseline("monai-unet", "autopet-phantom", workspace=workspace)


@pytest.mark.slow
def test_the_2d_model_trains_on_instances_painted_as_labels(chestxdet_ws: Workspace) -> None:
    result = train_baseline(
        "monai-unet-2d", "chestxdet-phantom", workspace=chestxdet_ws, iterations=2
    )
    config = result.config
    assert config["dims"] == 2 and config["channels"] == ["XR"]
    assert config["label_values"] == list(range(14))
    assert config["normalisation"] == {"XR": {"kind": "zscore"}}


@pytest.mark.slow
def test_the_train_command_prints_where_everything_went(autopet_ws: Workspace) -> None:
    from typer.testing import CliRunner

    from evaluator.cli import app

    args = ["baselines", "train", "--model", "monai-unet", "--task", "autopet-phantom"]
    result = CliRunner().invoke(app, [*args, "--iterations", "2", "-w", str(autopet_ws.root)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.replace("│", " ").split())
    assert "trained monai-unet on autopet-phantom (fold 0)" in text and "iterations 2" in text
    bad = CliRunner().invoke(app, [*args[:3], "vnet", *args[4:], "-w", str(autopet_ws.root)])
    assert bad.exit_code == 2 and "'vnet' is not one of" in " ".join(bad.output.split())
    no_fold = CliRunner().invoke(app, [*args, "--fold", "7", "-w", str(autopet_ws.root)])
    assert no_fold.exit_code == 1 and "not 7" in no_fold.output


@pytest.mark.slow
def test_the_train_command_trains_one_model_per_fold(autopet_ws: Workspace) -> None:
    from typer.testing import CliRunner

    from evaluator.cli import app
    from evaluator.learn.train import trained_folds

    args = ["baselines", "train", "-m", "monai-unet", "-t", "autopet-phantom", "--iterations", "1"]
    result = CliRunner().invoke(app, [*args, "--folds", "0,2", "-w", str(autopet_ws.root)])
    assert result.exit_code == 0, result.output
    folds = trained_folds(autopet_ws, "monai-unet", "autopet-phantom")
    assert sorted(folds) == [0, 2]
    split = json.loads((autopet_ws.splits / "autopet-phantom.json").read_text())
    for k, folder in folds.items():  # each fold's model learned from that fold's training cases
        assert json.loads((folder / "config.json").read_text())["train_cases"] == split[k]["train"]
    both = CliRunner().invoke(
        app, [*args, "--fold", "1", "--folds", "all", "-w", str(autopet_ws.root)]
    )
    assert both.exit_code != 0 and "not both" in both.output
    wrong = CliRunner().invoke(app, [*args, "--folds", "0,9", "-w", str(autopet_ws.root)])
    assert wrong.exit_code != 0 and "not [9]" in wrong.output
