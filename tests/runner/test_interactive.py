"""Prompted entries end to end: clicks per budget (click-grow) and text targets.

Oracles: the clicks a container saw are the ones the store recorded (the container prints what
it read); the click files are those of :mod:`evaluator.prompts.clicks` recomputed here from the
reference; the area under each case's Dice-vs-clicks curve is autoPET IV's formula
(``scipy.integrate.cumulative_trapezoid(dice, np.arange(n))[-1]``) applied to the stored
per-budget Dice values; corrective clicks lie in the previous prediction's errors, read back
from its files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import integrate

from evaluator.datasets.base import open_dataset
from evaluator.datasets.registry import load_registry
from evaluator.errors import SubmissionError
from evaluator.prompts.contract import GC_CLICKS_FILE, PROMPTS_FILE, write_prompts
from evaluator.runner.contract import Manifest, Resources, write_manifest
from evaluator.runner.interactive import ClickProtocol, budget_run_name
from evaluator.runner.run import run_entry
from evaluator.store import Store
from evaluator.workspace import Workspace
from leaderboards.data import load_leaderboard_data
from leaderboards.protocols import interactive_summary

from .conftest import ROOT

CLICK_GROW = ROOT / "baselines" / "click-grow"
FAST = Resources(memory_mb=1024, cpus=1.0, pids=64, time_limit_s=60.0, gpus="never")
TASK = "autopet-phantom"


def _submit(workspace: Workspace, name: str, **fields: Any) -> Path:
    manifest = Manifest(
        name=name,
        image="ccbench-test/click-grow:latest",
        image_digest="sha256:" + "0" * 64,
        tasks=(TASK,),
        command=("{python}", str(CLICK_GROW / "predict.py")),
        resources=FAST,
        **fields,
    )
    folder = workspace.root / "submissions"
    write_manifest(manifest, folder)
    return folder


def _series(workspace: Workspace, name: str, protocol: ClickProtocol) -> list[Any]:
    submissions = _submit(workspace, name, prompts=("clicks",))
    seen: list[Any] = []
    run_entry(
        name,
        task=TASK,
        split="test",
        workspace=workspace,
        backend="local",
        submissions_dir=submissions,
        workers=1,
        clicks=protocol,
        on_budget=lambda k, outcome: seen.append(outcome),
    )
    return seen


def _stored(workspace: Workspace, outcomes: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
    with Store.open(workspace=workspace) as db:
        return [
            (db.find_run(o.evaluation.run.name), db.prompts(o.evaluation.run.id)) for o in outcomes
        ]


def _points(prompt: dict[str, Any], kind: str) -> list[tuple[int, ...]]:
    return [tuple(p["point"]) for p in prompt["clicks"]["points"] if p["name"] == kind]


def test_click_series_runs_every_budget_and_stores_its_clicks(autopet_ws: Workspace) -> None:
    from evaluator.prompts.clicks import at_budget, simulate_clicks

    outcomes = _series(autopet_ws, "test-click-grow", ClickProtocol(budgets=3, seed=7))
    assert [o.evaluation.run.name.rsplit("__", 1)[1] for o in outcomes] == [
        "clicks00",
        "clicks01",
        "clicks02",
        "clicks03",
    ]
    stored = _stored(autopet_ws, outcomes)
    spec = load_registry().task(TASK)
    dataset = open_dataset(spec, workspace=autopet_ws)
    series = stored[0][0].parameters["protocol"]["series"]
    for budget, (run, prompts) in enumerate(stored):
        protocol = run.parameters["protocol"]
        assert protocol == {
            "prompts": ["clicks"],
            "budget": budget,
            "budgets": 3,
            "click_mode": "autopet-iv",
            "click_seed": 7,
            "series": series,
        }
        assert run.name == budget_run_name(series, budget)
        assert sorted(prompts) == sorted(outcomes[budget].case_ids)
        logs = {cid: msg for cid, stream, msg in _logs(autopet_ws, run.id) if stream == "container"}
        for cid, prompt in prompts.items():
            case = dataset.case(cid)
            label = sitk.GetArrayFromImage(case.read_label())
            pet = sitk.GetArrayFromImage(case.read_channel("PET"))
            expected = at_budget(simulate_clicks(label, pet, budget=3, seed=7), budget)
            assert prompt["clicks"]["budget"] == budget
            assert _points(prompt, "tumor") == [tuple(p) for p in expected.tumor]
            assert _points(prompt, "background") == [tuple(p) for p in expected.background]
            # what the container read is what the store says it was given
            said = f"{cid}: {len(expected.tumor)} lesion and {len(expected.background)} background"
            assert said in next(iter(logs.values())), logs
    # budget 0: no click, click-grow writes nothing; more clicks find the lesions
    dice = _dice_by_budget(autopet_ws, [run for run, _ in stored])
    positive = [c for c in dice if not np.isnan(dice[c][-1])]
    assert positive and all(dice[c][0] == 0.0 for c in positive)
    assert max(dice[c][-1] for c in positive) > 0.3
    summary = interactive_summary(Store.open(workspace=autopet_ws), TASK, "test")
    assert summary is not None
    per_case = summary.per_case.set_index("case")
    for cid in positive:  # autoPET IV's formula on the stored values
        official = integrate.cumulative_trapezoid(dice[cid], np.arange(len(dice[cid])))[-1]
        assert per_case.loc[cid, "dice_auc"] == pytest.approx(official)
        assert per_case.loc[cid, "dice_final"] == pytest.approx(dice[cid][-1])
    assert summary.table.loc["test-click-grow", "dice_auc"] == pytest.approx(
        np.nanmean([per_case.loc[c, "dice_auc"] for c in per_case.index])
    )
    # the board ranks the entry by its last budget only; its page shows the curves and areas
    board = load_leaderboard_data(TASK, "test", store=Store.open(workspace=autopet_ws))
    assert board.runs["test-click-grow"].name == stored[-1][0].name
    from leaderboards.site import fmt, publish_leaderboard

    index = publish_leaderboard(TASK, "test", workspace=autopet_ws, n_resamples=50, workers=1)
    folder = index.parent / f"{TASK}--test"
    page = (folder / "index.html").read_text()
    section = page[page.index('id="interactive"') :]
    section = section[: section.index("</table>")]
    auc = summary.table.loc["test-click-grow", "dice_auc"]
    assert "test-click-grow" in section and f">{fmt(auc)}<" in section
    assert (folder / "plots" / "click_curves.png").is_file()
    download = (folder / "downloads" / "click_auc.csv").read_text().splitlines()
    assert download[0].startswith("entry,case,dice_auc,dice_final")
    assert len(download) == 1 + len(per_case)


def _logs(workspace: Workspace, run_id: int) -> list[tuple[str | None, str, str]]:
    with Store.open(workspace=workspace) as db:
        return db.logs(run_id)


def _dice_by_budget(workspace: Workspace, runs: list[Any]) -> dict[str, list[float]]:
    with Store.open(workspace=workspace) as db:
        frame = db.results_frame(run_ids=[r.id for r in runs])
    frame = frame[frame["metric"] == "dice"]
    order = {r.id: i for i, r in enumerate(runs)}
    out: dict[str, list[float]] = {}
    for cid, rows in frame.groupby("case_id"):
        rows = rows.sort_values("run_id", key=lambda s: s.map(order))
        out[str(cid)] = [float(v) for v in rows["value"]]
    return out


def test_corrective_clicks_follow_the_previous_predictions_errors(autopet_ws: Workspace) -> None:
    outcomes = _series(autopet_ws, "test-click-fix", ClickProtocol(budgets=2, mode="corrective"))
    stored = _stored(autopet_ws, outcomes)
    spec = load_registry().task(TASK)
    dataset = open_dataset(spec, workspace=autopet_ws)
    for budget in (1, 2):
        before, now = stored[budget - 1][1], stored[budget][1]
        for cid, prompt in now.items():
            old_t, old_b = _points(before[cid], "tumor"), _points(before[cid], "background")
            new_t, new_b = _points(prompt, "tumor"), _points(prompt, "background")
            assert new_t[: len(old_t)] == old_t and new_b[: len(old_b)] == old_b  # clicks kept
            label = sitk.GetArrayFromImage(dataset.case(cid).read_label()) != 0
            pred_path = outcomes[budget - 1].predictions.get(cid)
            pred = (
                sitk.GetArrayFromImage(sitk.ReadImage(str(pred_path))) != 0
                if pred_path is not None
                else np.zeros_like(label)
            )
            for x, y, z in new_t[len(old_t) :]:
                assert label[z, y, x] and not pred[z, y, x]  # in a missed region
            for x, y, z in new_b[len(old_b) :]:
                assert pred[z, y, x] and not label[z, y, x]  # in a false positive
            assert len(new_t) - len(old_t) == int((label & ~pred).any())


def test_clicks_are_refused_for_an_entry_that_does_not_take_them(autopet_ws: Workspace) -> None:
    submissions = _submit(autopet_ws, "test-no-clicks")
    with pytest.raises(SubmissionError, match="prompts: clicks"):
        run_entry(
            "test-no-clicks",
            task=TASK,
            split="test",
            workspace=autopet_ws,
            backend="local",
            submissions_dir=submissions,
            clicks=ClickProtocol(budgets=1),
        )


def test_prompts_file_layouts(tmp_path: Path) -> None:
    """Batch: one file keyed by case id; grand-challenge: the case's prompt without its id, and
    autoPET IV's click file."""
    from evaluator.learn.layouts import find_inputs

    clicks = {
        "budget": 1,
        "version": {"major": 1, "minor": 0},
        "type": "Multiple points",
        "points": [{"point": [1, 2, 3], "name": "tumor"}],
    }
    batch = tmp_path / "batch"
    batch.mkdir()
    write_prompts(batch, layout="batch", case_ids=["a", "b"], prompts={"a": {"clicks": clicks}})
    doc = json.loads((batch / PROMPTS_FILE).read_text())
    assert doc == {"version": 1, "cases": {"a": {"clicks": clicks}}}
    (batch / "cases.json").write_text(
        json.dumps(
            {
                "task": TASK,
                "cases": [{"case_id": "a", "channels": {}}, {"case_id": "b", "channels": {}}],
            }
        )
    )
    found = find_inputs(batch, tmp_path / "out")
    assert [c.prompt for c in found.cases] == [{"clicks": clicks}, {}]
    gc = tmp_path / "gc"
    (gc / "images" / "pet").mkdir(parents=True)
    sitk.WriteImage(sitk.Image([4, 4, 4], sitk.sitkFloat32), str(gc / "images" / "pet" / "u.mha"))
    write_prompts(
        gc, layout="gc", case_ids=["secret-case-id"], prompts={"secret-case-id": {"clicks": clicks}}
    )
    assert "secret-case-id" not in (gc / PROMPTS_FILE).read_text()
    official = json.loads((gc / GC_CLICKS_FILE).read_text())
    assert official == {k: v for k, v in clicks.items() if k != "budget"}
    assert find_inputs(gc, tmp_path / "out2").cases[0].prompt == {"clicks": clicks}


@pytest.mark.slow
@pytest.mark.heavy  # training; test_demo runs the prompted network sandboxed in CI
def test_text_prompted_network_is_scored_per_organ(tmp_path: Path) -> None:
    """monai-unet-prompted on BTCV phantoms: every organ asked by name (stored with the run),
    the answer written with the asked values, each organ scored."""
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.datasets.splits import make_split
    from evaluator.learn.train import train_baseline
    from evaluator.runner.baselines import build_baselines

    ws = Workspace(tmp_path / "ws").ensure()
    write_phantoms("btcv", workspace=ws, cases=8, size="48x48x32", seed=1)
    make_split("btcv-phantom", workspace=ws, seed=0)
    train_baseline("monai-unet", "btcv-phantom", workspace=ws, iterations=2)
    (build,) = build_baselines(
        workspace=ws, submissions_dir=ws.submissions, names=["monai-unet-prompted"], docker=False
    )
    assert build.tasks == ("btcv-phantom",)
    outcome = run_entry(
        "monai-unet-prompted", task="btcv-phantom", split="test", workspace=ws,
        backend="local", submissions_dir=ws.submissions, workers=1,
    )  # fmt: skip
    assert set(outcome.predictions) == set(outcome.case_ids) and not outcome.case_errors
    spec = load_registry().task("btcv-phantom")
    asked = [{"name": name, "label": value} for value, name in sorted(spec.labels.items())]
    with Store.open(workspace=ws) as db:
        run = db.find_run(outcome.evaluation.run.name)
        assert run is not None and run.parameters["protocol"] == {"prompts": ["text"]}
        assert db.prompts(run.id) == {cid: {"targets": asked} for cid in outcome.case_ids}
        frame = db.results_frame(run_ids=[run.id])
    dice = frame[frame["metric"] == "dice"]
    for cid in outcome.case_ids:  # one Dice per organ of the task, per case
        assert set(dice[dice["case_id"] == cid]["label"]) == set(spec.labels)
    for path in outcome.predictions.values():  # only asked values are written
        assert set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))) <= {
            0,
            *spec.labels,
        }


@pytest.mark.docker
@pytest.mark.slow
def test_click_grow_runs_sandboxed_per_budget_through_the_grand_challenge_interface(
    autopet_ws: Workspace, docker_backend: Any
) -> None:
    """The built image, sandboxed, one container per case and budget: it reads the clicks the
    harness staged (prompts.json and autoPET IV's lesion-clicks.json) and grows from them."""
    from evaluator.runner.baselines import build_baselines
    from evaluator.runner.submissions import submit_image

    (build,) = build_baselines(
        workspace=autopet_ws, submissions_dir=autopet_ws.submissions, names=["click-grow"]
    )
    try:
        submit_image(
            build.image, name="click-grow-gc", tasks=(TASK,), prompts=("clicks",),
            submissions_dir=autopet_ws.submissions, interface="grand-challenge",
        )  # fmt: skip
        seen: list[Any] = []
        run_entry(
            "click-grow-gc", task=TASK, split="test", workspace=autopet_ws,
            submissions_dir=autopet_ws.submissions, clicks=ClickProtocol(budgets=2),
            on_budget=lambda k, o: seen.append(o), workers=1,
        )  # fmt: skip
        assert len(seen) == 3
        for budget, outcome in enumerate(seen):
            assert outcome.provenance["backend"] == "docker"
            assert len(outcome.container_runs) == len(outcome.case_ids)  # one per case
            assert set(outcome.predictions) == set(outcome.case_ids), outcome.case_errors
            with Store.open(workspace=autopet_ws) as db:
                run = db.find_run(outcome.evaluation.run.name)
                assert run is not None
                prompts, logs = db.prompts(run.id), db.logs(run.id)
            said = {cid: msg for cid, stream, msg in logs if stream == "container"}
            grew = []
            for cid, prompt in prompts.items():
                n_t, n_b = len(_points(prompt, "tumor")), len(_points(prompt, "background"))
                assert max(n_t, n_b) <= budget
                assert f"{n_t} lesion and {n_b} background clicks" in said[cid]
                grown = sitk.GetArrayFromImage(sitk.ReadImage(str(outcome.predictions[cid])))
                assert n_t > 0 or not grown.any()  # no lesion click: nothing grown
                grew.append(bool(grown.any()))
            assert any(grew) == (budget > 0)
    finally:
        docker_backend.client.images.remove(build.image)


def test_a_previous_prediction_scoring_refuses_counts_as_empty(
    autopet_ws: Workspace, tmp_path: Path
) -> None:
    """Corrective clicks read the previous prediction with scoring's checks: an all-lesion
    prediction on the wrong grid (refused as ``geometry``) gives the clicks of an empty one."""
    from evaluator.prompts.clicks import corrective_clicks

    script = tmp_path / "everything.py"
    script.write_text(
        "import json, os, pathlib, SimpleITK as sitk\n"
        "inp, out = pathlib.Path(os.environ['CCBENCH_INPUT']), pathlib.Path(os.environ['CCBENCH_OUTPUT'])\n"
        "for case in json.loads((inp / 'cases.json').read_text())['cases']:\n"
        "    pet = sitk.ReadImage(str(inp / case['channels']['PET']))\n"
        "    seg = sitk.Cast(pet * 0 + 1, sitk.sitkUInt8)\n"
        "    seg.SetSpacing([2 * s for s in pet.GetSpacing()])\n"
        "    sitk.WriteImage(seg, str(out / (case['case_id'] + '.nii.gz')))\n"
    )
    folder = _submit(autopet_ws, "test-everything", prompts=("clicks",))
    manifest = (folder / "test-everything.yaml").read_text()
    (folder / "test-everything.yaml").write_text(
        manifest.replace(str(CLICK_GROW / "predict.py"), str(script))
    )
    seen: list[Any] = []
    run_entry(
        "test-everything", task=TASK, split="test", workspace=autopet_ws, backend="local",
        submissions_dir=folder, workers=1, clicks=ClickProtocol(budgets=1, mode="corrective"),
        on_budget=lambda k, o: seen.append(o),
    )  # fmt: skip
    second = _stored(autopet_ws, seen)[1][1]
    with Store.open(workspace=autopet_ws) as db:
        errors = db.errors_frame(run_ids=[seen[0].evaluation.run.id])
    assert set(errors["error_class"]) == {"geometry"}  # scoring refused budget 0
    dataset = open_dataset(load_registry().task(TASK), workspace=autopet_ws)
    for cid, prompt in second.items():
        image = dataset.case(cid).read_label()
        label = sitk.GetArrayFromImage(image)
        empty = corrective_clicks(
            label, np.zeros_like(label), spacing=tuple(reversed(image.GetSpacing()))
        )
        assert _points(prompt, "tumor") == [tuple(p) for p in empty.tumor]
        assert _points(prompt, "background") == []  # no false positive seen


def test_click_options_and_shots_are_checked_before_anything_runs(autopet_ws: Workspace) -> None:
    from typer.testing import CliRunner

    from evaluator.cli import app

    submissions = _submit(autopet_ws, "test-plain")
    common = ["run", "test-plain", "-t", TASK, "-s", "test", "--backend", "local"]
    common += ["--workspace", str(autopet_ws.root), "--submissions", str(submissions)]
    runner = CliRunner(env={"COLUMNS": "200"})
    for option in (["--clicks", "2"], ["--click-mode", "corrective"], ["--click-seed", "3"]):
        result = runner.invoke(app, [*common, *option])
        assert result.exit_code == 2, result.output
        assert option[0] in result.output and "prompts: clicks" in result.output
    assert runner.invoke(app, [*common, "--click-seed", "-1"]).exit_code == 2
    with pytest.raises(SubmissionError, match=r"no 7-shot subsets .* --shots 7"):
        run_entry(
            "test-plain", task=TASK, split="test", workspace=autopet_ws, backend="local",
            submissions_dir=submissions, shots=7,
        )  # fmt: skip
    hecktor = load_registry().task("hecktor-phantom")
    from evaluator.runner.interactive import pet_channel

    with pytest.raises(SubmissionError, match="2 labels"):
        pet_channel(hecktor)
    assert not list(autopet_ws.runs.glob("test-plain*"))  # nothing ran
