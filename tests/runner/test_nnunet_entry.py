"""`ccbench submit --nnunet-results`: a trained nnU-Net results folder becomes an image that runs
sandboxed through both interfaces, with test-time augmentation as its manifest says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.runner.run import run_entry
from evaluator.store import Store

pytestmark = [pytest.mark.docker, pytest.mark.slow]
runner = CliRunner(env={"COLUMNS": "200"})
TASK = "autopet-phantom"


def _submit(ws: Any, results: Path, name: str, *extra: str) -> Any:
    return runner.invoke(
        app,
        ["submit", "--nnunet-results", str(results), "--name", name, "--task", TASK,
         "--workspace", str(ws.root), *extra],
    )  # fmt: skip


@pytest.mark.heavy  # test_demo runs this path end to end in CI
def test_a_results_folder_runs_sandboxed_as_an_entry(
    nnunet_trained: Any, docker_backend: Any
) -> None:
    ws, result = nnunet_trained
    results = (result.folder / result.config["results_folder"]).resolve()
    # a task whose channels the model does not take is refused before anything is built
    refused = runner.invoke(
        app,
        ["submit", "--nnunet-results", str(results), "--name", "nn-btcv", "--task",
         "btcv-phantom", "--workspace", str(ws.root)],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "channel_names lists 2 channels" in refused.output
    tags = []
    try:
        batch = _submit(ws, results.parent, "nn-batch", "--no-tta", "--folds", "0")
        assert batch.exit_code == 0, batch.output
        manifest = yaml.safe_load((ws.submissions / "nn-batch.yaml").read_text())
        assert manifest["command"][-1] == "--no-tta"
        tags.append(manifest["image"])
        # another name that differs in case only gets an image tag of its own
        other = _submit(ws, results, "NN-Batch", "--no-tta")
        assert other.exit_code == 0, other.output
        other_tag = yaml.safe_load((ws.submissions / "NN-Batch.yaml").read_text())["image"]
        tags.append(other_tag)
        assert other_tag != manifest["image"]
        assert (
            "autopet-phantom: model channel (dataset.json name) <- task channel: 0 (CT) <- CT"
            in (other.output)
        )
        gc = _submit(ws, results, "nn-gc", "--interface", "grand-challenge")
        assert gc.exit_code == 0, gc.output
        gc_manifest = yaml.safe_load((ws.submissions / "nn-gc.yaml").read_text())
        assert gc_manifest["command"][-1] == "--tta"
        tags.append(gc_manifest["image"])
        for name, mirroring in (("nn-batch", "off"), ("nn-gc", "on")):
            outcome = run_entry(
                name, task=TASK, split="test", workspace=ws, submissions_dir=ws.submissions
            )
            assert set(outcome.predictions) == set(outcome.case_ids), outcome.case_errors
            assert outcome.provenance["backend"] == "docker"
            logs = "".join(r.log for r in outcome.container_runs)
            assert f"test-time augmentation {mirroring}" in logs
            with Store.open(ws.store_url) as db:
                frame = db.results_frame(task=TASK, split="test", entry=name)
            assert {"dice", "cc_dice"} <= set(frame["metric"])
        # the image holds the weights only: no optimizer state, no other checkpoint
        context = ws.images / "contexts" / "entry-nn-batch" / "weights" / TASK
        assert sorted(p.name for p in (context / "model" / "fold_0").iterdir()) == [
            "checkpoint_final.pth"
        ]
        assert json.loads((context / "config.json").read_text())["tta"] is False
    finally:
        for tag in tags:
            docker_backend.client.images.remove(tag, force=True)
