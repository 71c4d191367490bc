"""End to end: submit the threshold baseline, run it (batch and grand-challenge), score it.

Oracle: the baseline is a fixed rule (CT in [100, 300] HU -> 1; SUV >= 4 -> 1), so each expected
prediction and its Dice against the reference are computed here with numpy from the arrays the
fixture wrote, independently of the runner and of the metric code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import Case
from evaluator.datasets.registry import load_registry
from evaluator.errors import SubmissionError
from evaluator.runner.contract import Manifest, Resources, SandboxLimits, load_manifest
from evaluator.runner.local_backend import LocalBackend
from evaluator.runner.run import run_cases, run_entry
from evaluator.runner.submissions import submit_image
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import BASELINE_CONTEXT, BASELINE_TAG, SPACING, TinyDataset

FAST = Resources(memory_mb=512, cpus=1.0, pids=64, time_limit_s=20.0, gpus="never")


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    inter = np.logical_and(pred, ref).sum()
    return float(2 * inter / (pred.sum() + ref.sum()))


def _expected_btcv(tiny: TinyDataset) -> dict[str, np.ndarray]:
    return {cid: ((ct >= 100) & (ct <= 300)).astype(np.uint8) for cid, ct in tiny.ct.items()}


def _check_predictions(predictions: dict[str, Path], expected: dict[str, np.ndarray]) -> None:
    assert sorted(predictions) == sorted(expected)
    for cid, path in predictions.items():
        img = sitk.ReadImage(str(path))
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), expected[cid])
        assert img.GetSpacing() == pytest.approx(SPACING)


@pytest.mark.docker
@pytest.mark.usefixtures("leftover_check")
def test_submit_and_run_scores_a_split_end_to_end(
    tiny: TinyDataset,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
    tmp_path: Path,
) -> None:
    subs = tmp_path / "submissions"
    manifest, path = submit_image(
        BASELINE_TAG,
        name="test-threshold",
        tasks=["btcv-phantom"],
        team="ccbench",
        resources=FAST,
        submissions_dir=subs,
        backend=docker_backend,
    )
    assert path == subs / "test-threshold.yaml"
    assert load_manifest("test-threshold", submissions_dir=subs) == manifest
    assert manifest.image_digest == test_images["baseline"]

    outcome = run_entry(
        "test-threshold",
        task="btcv-phantom",
        split="all",
        workspace=workspace,
        backend=docker_backend,
        submissions_dir=subs,
        data_root=tiny.root,
        workers=1,
    )
    assert outcome.case_errors == {} and outcome.container_runs[0].ok
    expected = _expected_btcv(tiny)
    _check_predictions(outcome.predictions, expected)
    assert outcome.provenance["image_digest"] == test_images["baseline"]

    result = outcome.evaluation
    assert result.run.image_digest == test_images["baseline"]
    assert result.run.entry == "test-threshold"
    frame = result.results
    for cid, ref in tiny.label.items():
        got = frame.loc[(frame["case_id"] == cid) & (frame["label"] == 1), "dice"]
        assert float(got.iloc[0]) == pytest.approx(_dice(expected[cid] == 1, ref == 1))
    db = Store.open(result.store_url)
    try:
        streams = {stream for _, stream, _ in db.logs(result.run.id)}
    finally:
        db.close()
    assert "container" in streams
    assert (outcome.run_dir / "container.json").is_file()
    assert (outcome.run_dir / "results.csv").is_file()


@pytest.mark.docker
@pytest.mark.usefixtures("leftover_check")
def test_changed_image_is_refused(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    stale = Manifest(
        name="test-stale",
        image=BASELINE_TAG,
        image_digest="sha256:" + "1" * 64,
        tasks=("btcv-phantom",),
    )
    with pytest.raises(SubmissionError, match=r"does not exist|differs"):
        run_cases(
            stale,
            tiny.cases,
            task=tiny.task,
            run_dir=workspace.runs / "stale",
            backend=docker_backend,
            workspace=workspace,
        )


def _autopet_cases(root: Path, n: int = 2) -> tuple[list[Case], dict[str, np.ndarray]]:
    """CT + PET cases with two hot spots (SUV 6 and 9) on a SUV 1 background."""
    cases, expected = [], {}
    for i in range(n):
        folder = root / f"patient{i}"
        folder.mkdir(parents=True)
        ct = np.full((5, 6, 7), 40, dtype=np.int16)
        pet = np.ones((5, 6, 7), dtype=np.float32)
        pet[1:3, 1:3, 1 : 2 + i] = 6.0
        pet[4, 5, 6] = 9.0
        for name, arr in (("CTres", ct), ("SUV", pet)):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing(SPACING)
            sitk.WriteImage(img, str(folder / f"{name}.nii.gz"))
        cid = f"PETCT_{i:04d}"
        cases.append(
            Case(
                case_id=cid,
                channels={"CT": folder / "CTres.nii.gz", "PET": folder / "SUV.nii.gz"},
                label=None,
            )
        )
        expected[cid] = (pet >= 4.0).astype(np.uint8)
    return cases, expected


@pytest.mark.docker
@pytest.mark.usefixtures("leftover_check")
def test_grand_challenge_interface_runs_an_autopet_style_container(
    tmp_path: Path, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    cases, expected = _autopet_cases(tmp_path / "autopet")
    manifest = Manifest(
        name="test-threshold-gc",
        image=BASELINE_TAG,
        image_digest=test_images["baseline"],
        interface="grand-challenge",
        tasks=("autopet-phantom",),
        resources=FAST,
    )
    ticks: list[tuple[int, int | None, str]] = []
    outcome = run_cases(
        manifest,
        cases,
        task=load_registry().task("autopet-phantom"),
        run_dir=workspace.runs / "gc",
        backend=docker_backend,
        workspace=workspace,
        progress=lambda *tick: ticks.append(tick),
    )
    # progress: before the first container, then one tick per case with its status
    assert ticks == [(0, len(cases), "")] + [
        (i, len(cases), f"{c.case_id}: ok") for i, c in enumerate(cases, start=1)
    ]
    assert [r.label for r in outcome.container_runs] == [c.case_id for c in cases]
    assert all(r.ok for r in outcome.container_runs), outcome.container_runs
    assert outcome.case_errors == {}
    _check_predictions(outcome.predictions, expected)
    assert all(p.suffix == ".mha" for p in outcome.predictions.values())


def test_local_backend_runs_the_baseline_without_docker(
    tiny: TinyDataset, workspace: Workspace
) -> None:
    manifest = Manifest(
        name="test-threshold-local",
        image=BASELINE_TAG,
        image_digest="sha256:" + "0" * 64,
        tasks=("btcv-phantom",),
        command=("{python}", str(BASELINE_CONTEXT / "predict.py")),
        resources=FAST,
    )
    ticks: list[tuple[int, int | None, str]] = []
    outcome = run_cases(
        manifest,
        tiny.cases,
        task=tiny.task,
        run_dir=workspace.runs / "local",
        backend=LocalBackend(),
        workspace=workspace,
        progress=lambda *tick: ticks.append(tick),
    )
    n = len(tiny.cases)
    assert ticks == [(0, 1, f"one container for {n} cases"), (1, 1, f"{n} predictions, ok")]
    assert outcome.container_runs[0].ok, outcome.container_runs[0].log
    assert outcome.provenance["sandboxed"] is False
    _check_predictions(outcome.predictions, _expected_btcv(tiny))
    assert not any(workspace.tmp.iterdir())


def test_local_backend_kills_on_timeout(tiny: TinyDataset, workspace: Workspace) -> None:
    manifest = Manifest(
        name="test-sleep",
        image="none",
        image_digest="sha256:" + "0" * 64,
        tasks=("btcv-phantom",),
        command=("sh", "-c", "trap '' TERM; sleep 30 & sleep 30"),
        resources=FAST.model_copy(update={"time_limit_s": 0.5}),
    )
    outcome = run_cases(
        manifest,
        tiny.cases[:1],
        task=tiny.task,
        run_dir=workspace.runs / "sleep",
        backend=LocalBackend(),
        workspace=workspace,
    )
    run = outcome.container_runs[0]
    assert run.status == "timeout" and run.seconds < 5
    assert "timed out after 0.5 s" in outcome.case_errors["0001"]


def test_entry_must_be_registered_for_the_task_and_within_limits(
    tiny: TinyDataset, workspace: Workspace
) -> None:
    manifest = Manifest(
        name="test-x",
        image="x",
        image_digest="sha256:" + "0" * 64,
        tasks=("hecktor-phantom",),
        command=("true",),
    )
    kwargs = {"run_dir": workspace.runs / "x", "backend": LocalBackend(), "workspace": workspace}
    with pytest.raises(SubmissionError, match="not registered for task 'btcv-phantom'"):
        run_cases(manifest, tiny.cases, task=tiny.task, **kwargs)  # type: ignore[arg-type]
    greedy = manifest.model_copy(
        update={"tasks": ("btcv-phantom",), "resources": Resources(memory_mb=10**6)}
    )
    with pytest.raises(SubmissionError, match="memory_mb 1000000 exceeds"):
        run_cases(greedy, tiny.cases, task=tiny.task, limits=SandboxLimits(), **kwargs)  # type: ignore[arg-type]


def test_entry_provenance_reaches_the_store(tiny: TinyDataset, workspace: Workspace) -> None:
    """Team, image, digest, interface and submitted time of a container entry are stored with
    the entry (the leaderboard's entry page shows them)."""
    from evaluator.runner.contract import write_manifest
    from evaluator.store import Store

    manifest = Manifest(
        name="test-provenance",
        team="Team Lesion",
        image=BASELINE_TAG,
        image_digest="sha256:" + "1" * 64,
        tasks=("btcv-phantom",),
        command=("{python}", str(BASELINE_CONTEXT / "predict.py")),
        resources=FAST,
    )
    submissions = workspace.root / "submissions"
    write_manifest(manifest, submissions)
    run_entry(
        manifest.name,
        task="btcv-phantom",
        split="all",
        workspace=workspace,
        backend="local",
        submissions_dir=submissions,
        data_root=tiny.root,
        workers=1,
    )
    with Store.open(workspace=workspace) as db:
        info = db.entry(manifest.name)
    assert info is not None
    assert info.image == BASELINE_TAG and info.image_digest == manifest.image_digest
    assert info.manifest["team"] == "Team Lesion" and info.manifest["interface"] == "batch"
    assert info.manifest["submitted"] and info.manifest["backend"] == "local"


def test_broken_images_are_dataset_errors_and_permissions_are_kept(
    tiny: TinyDataset, workspace: Workspace
) -> None:
    """A missing and a corrupt CT are the dataset's fault (every entry, no worst values); a
    private dataset file keeps its permissions after staging."""
    from evaluator.runner.contract import write_manifest
    from evaluator.store import Store

    (tiny.root / "img" / "img0001.nii.gz").unlink()
    (tiny.root / "img" / "img0002.nii.gz").write_bytes(b"\x1f\x8bnot an image")
    private = tiny.root / "img" / "img0003.nii.gz"
    private.chmod(0o600)
    manifest = Manifest(
        name="test-broken-data",
        image=BASELINE_TAG,
        image_digest="sha256:" + "2" * 64,
        tasks=("btcv-phantom",),
        command=("{python}", str(BASELINE_CONTEXT / "predict.py")),
        resources=FAST,
    )
    submissions = workspace.root / "submissions"
    write_manifest(manifest, submissions)
    outcome = run_entry(
        manifest.name,
        task="btcv-phantom",
        split="all",
        workspace=workspace,
        backend="local",
        submissions_dir=submissions,
        data_root=tiny.root,
        workers=1,
    )
    assert sorted(outcome.dataset_errors) == ["0001", "0002"]
    assert oct(private.stat().st_mode & 0o777) == oct(0o600)
    with Store.open(workspace=workspace) as db:
        run_id = outcome.evaluation.run.id
        errors = db.errors_frame(run_ids=[run_id])
        results = db.results_frame(run_ids=[run_id])
    assert dict(zip(errors["case_id"], errors["error_class"], strict=True)) == {
        "0001": "dataset",
        "0002": "dataset",
    }
    dice = results[(results["metric"] == "dice") & (results["label"] == 1)].set_index("case_id")
    assert dice.loc[["0001", "0002"], "value"].isna().all() and dice.loc["0003", "value"] > 0
