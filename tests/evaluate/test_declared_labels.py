"""An entry that predicts only some labels of a task (the manifest's ``labels``): real files,
``ccbench evaluate --labels`` through the CLI, a real SQLite store and the published board.

The task ``organs3`` (BTCV layout, 3 organs) is added to a copy of the registry; the
multi-dataset entry declares spleen and kidney (by name and by value), not liver.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.registry import ENV_REGISTRY, find_registry_file
from evaluator.errors import SubmissionError
from evaluator.runner.contract import load_manifest
from evaluator.runner.submissions import submit_image
from evaluator.store import Store
from tests.evaluate.conftest import SHAPE, ball, write_label

DIGEST = "sha256:" + "0" * 64
LABELS = {1: "spleen", 2: "kidney", 3: "liver"}
CASES = ("0001", "0002", "0003")


def _reference(i: int) -> np.ndarray:
    ref = np.zeros(SHAPE, dtype=np.uint8)
    ref[ball(SHAPE, (5, 5, 4), 2.5)] = 1
    ref[ball(SHAPE, (5, 12, 5 + i), 2.5)] = 2
    ref[ball(SHAPE, (5, 8, 13), 3)] = 3
    return ref


def _kidney_cut(ref: np.ndarray, i: int) -> np.ndarray:
    """The kidney with its first ``i + 1`` z-slices removed (a known, different Dice per case)."""
    kidney = ref == 2
    zs = np.flatnonzero(kidney.any(axis=(1, 2)))
    kidney[zs[: i + 1]] = False
    return kidney


@pytest.fixture
def organs3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A registry with task ``organs3``, its data, and two prediction folders.

    ``multi``: exact spleen, a cut kidney, and (case 0002 only) liver voxels it does not
    declare; ``full``: the references (every label exact).
    """
    raw = yaml.safe_load(find_registry_file().read_text())
    raw["tasks"]["organs3"] = {
        "dataset": "three organs (BTCV layout)",
        "adapter": "btcv",
        "root": str(tmp_path / "organs3"),
        "split_file": "splits/organs3.json",
        "dims": 3,
        "channels": ["CT"],
        "labels": LABELS,
        "connectivity": 26,
        "metric_profile": "btcv",
        "split": {"scheme": "kfold", "folds": 2, "test_fraction": 0.2, "stratify": []},
    }
    registry = tmp_path / "datasets.yaml"
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv(ENV_REGISTRY, str(registry))
    root, multi, full = tmp_path / "organs3", tmp_path / "multi", tmp_path / "full"
    for i, cid in enumerate(CASES):
        ref = _reference(i)
        write_label(root / "label" / f"label{cid}.nii.gz", ref)
        write_label(root / "img" / f"img{cid}.nii.gz", np.zeros(SHAPE, dtype=np.int16))
        write_label(full / f"{cid}.nii.gz", ref)
        pred = np.zeros_like(ref)
        pred[ref == 1] = 1
        pred[_kidney_cut(ref, i)] = 2
        if cid == "0002":
            pred[ref == 3] = 3  # undeclared: ignored, noted
        write_label(multi / f"{cid}.nii.gz", pred)
    return {"root": root, "multi": multi, "full": full, "ws": tmp_path / "ws"}


def _evaluate(paths: dict[str, Path], pred: str, *extra: str) -> None:
    args = ["evaluate", "-t", "organs3", "--split", "all", "--pred", str(paths[pred])]
    args += ["--data-root", str(paths["root"]), "--workspace", str(paths["ws"])]
    args += ["--run-name", pred, "--entry", pred, "--workers", "1", "--quiet", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(pred & ref) / (np.count_nonzero(pred) + np.count_nonzero(ref))


def test_a_label_not_declared_is_not_predicted_not_dice_zero(organs3: dict[str, Path]) -> None:
    _evaluate(organs3, "multi", "--labels", "organs3=Spleen,2")
    with Store.open(None, workspace=_ws(organs3)) as db:
        run = db.find_run("multi")
        assert run is not None
        assert run.parameters["labels"] == [1, 2]
        frame = db.results_frame(run_ids=[run.id])
        logs = db.logs(run.id)
    dice = frame[frame["metric"] == "dice"].set_index(["case_id", "label"])["value"]
    for i, cid in enumerate(CASES):
        ref = _reference(i)
        assert dice[(cid, 1)] == pytest.approx(1.0)
        assert dice[(cid, 2)] == pytest.approx(_dice(_kidney_cut(ref, i), ref == 2))
        assert math.isnan(dice[(cid, 3)])  # not 0.0 (scored as empty), not 1.0 (case 0002)
    liver = frame[frame["label"] == 3]
    assert liver["value"].isna().all()  # every metric of the liver: not predicted
    notes = [(case, text) for case, stream, text in logs if stream == "validation"]
    assert len(notes) == 1 and notes[0][0] == "0002"
    assert "3 (liver)" in notes[0][1] and "ignored" in notes[0][1]


def test_without_a_declaration_every_label_is_scored(organs3: dict[str, Path]) -> None:
    _evaluate(organs3, "multi")
    with Store.open(None, workspace=_ws(organs3)) as db:
        run = db.find_run("multi")
        assert run is not None and "labels" not in run.parameters
        frame = db.results_frame(run_ids=[run.id])
    dice = frame[frame["metric"] == "dice"].set_index(["case_id", "label"])["value"]
    assert dice[("0001", 3)] == 0.0 and dice[("0002", 3)] == pytest.approx(1.0)


def test_board_says_not_predicted_and_ranks_the_label_at_worst(organs3: dict[str, Path]) -> None:
    from leaderboards.data import load_leaderboard_data

    _evaluate(organs3, "multi", "--labels", "organs3=spleen,kidney")
    _evaluate(organs3, "full")
    with Store.open(None, workspace=_ws(organs3)) as db:
        data = load_leaderboard_data("organs3", "all", store=db)
    assert data.not_predicted == {"multi": (3,)}
    for i, cid in enumerate(CASES):  # per case: the mean over 3 labels, liver at Dice 0
        ref = _reference(i)
        expected = (1.0 + _dice(_kidney_cut(ref, i), ref == 2) + 0.0) / 3
        assert data.scores["dice"].loc[cid, "multi"] == pytest.approx(expected)
        assert data.scores["dice"].loc[cid, "full"] == pytest.approx(1.0)
    assert (
        data.results.loc[data.results["label"] == 3].query("entry == 'multi'")["value"].isna().all()
    )  # the per-case values stay raw

    out = organs3["ws"] / "site"
    args = ["leaderboard", "--task", "organs3", "--split", "all", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--workspace", str(organs3["ws"])])
    assert result.exit_code == 0, result.output
    page = next(out.rglob("organs3*/index.html")).read_text()
    assert "multi predicts 2 of 3 labels (missing: liver)" in page
    assert "counts at the metric&#39;s worst value" in page or "counts at the metric's" in page
    official = page[page.index("BTCV (per-organ Dice)") :]
    assert "not predicted" in official


def _ws(paths: dict[str, Path]) -> object:
    from evaluator.workspace import Workspace

    return Workspace(paths["ws"])


def test_manifest_labels_are_checked_at_submit_and_load(
    organs3: dict[str, Path], tmp_path: Path
) -> None:
    subs = tmp_path / "subs"
    _manifest, path = submit_image(
        "img",
        name="multi",
        tasks=["organs3", "btcv"],
        image_digest=DIGEST,
        submissions_dir=subs,
        labels={"organs3": ["spleen", 2]},
    )
    assert load_manifest("multi", submissions_dir=subs).labels == {"organs3": ("spleen", 2)}
    with pytest.raises(SubmissionError, match=r"multi\.yaml.*'pancreas' is not a label"):
        submit_image(
            "img", name="multi", tasks=["organs3"], image_digest=DIGEST, submissions_dir=subs,
            labels={"organs3": ["pancreas"]}, overwrite=True,
        )  # fmt: skip
    with pytest.raises(SubmissionError, match="task 'hecktor' is not one of the entry's"):
        submit_image(
            "img", name="multi", tasks=["organs3"], image_digest=DIGEST, submissions_dir=subs,
            labels={"hecktor": ["GTVp"]}, overwrite=True,
        )  # fmt: skip
    raw = yaml.safe_load(path.read_text())
    raw["labels"] = {"organs3": ["spleen", 7]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SubmissionError, match=rf"{path}.*label 7 is not a label"):
        load_manifest("multi", submissions_dir=subs)
    raw["labels"] = {"nosuchtask": ["spleen"]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SubmissionError, match=rf"{path}.*'nosuchtask'"):
        load_manifest("multi", submissions_dir=subs)


def test_cli_submit_labels_and_summary(organs3: dict[str, Path], tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    base = ["submit", "img", "--name", "multi", "--task", "organs3", "--submissions", str(subs)]
    runner = CliRunner()
    bad = runner.invoke(app, [*base, "--labels", "organs3=spleen,bladder"])
    assert bad.exit_code != 0 and "bladder" in bad.output
    bad = runner.invoke(app, [*base, "--labels", "spleen"])
    assert bad.exit_code != 0 and "TASK=name" in bad.output


def test_evaluate_refuses_an_unknown_label(organs3: dict[str, Path]) -> None:
    args = ["evaluate", "-t", "organs3", "--split", "all", "--pred", str(organs3["multi"])]
    args += ["--data-root", str(organs3["root"]), "--workspace", str(organs3["ws"])]
    result = CliRunner().invoke(app, [*args, "--labels", "organs3=spleen,appendix"])
    assert result.exit_code != 0 and "appendix" in result.output
    result = CliRunner().invoke(app, [*args, "--labels", "btcv=spleen"])
    assert result.exit_code != 0 and "organs3" in result.output


def test_the_official_tie_break_counts_an_undeclared_label_at_worst(tmp_path: Path) -> None:
    """HECKTOR's official table breaks ties by the median HD95 over cases (mean over labels):
    an entry that declares GTVp only must not get the HD95 of GTVp alone."""
    import math

    from evaluator.store import ResultRow, Store
    from leaderboards.data import load_leaderboard_data
    from leaderboards.official import official_score

    with Store.open(f"sqlite:///{tmp_path / 'h.sqlite'}") as db:
        for entry, labels in (("full", None), ("part", [1])):
            params = {} if labels is None else {"labels": labels}
            run = db.create_run(
                name=entry, task="hecktor", split="test", entry=entry, parameters=params
            )
            for case in ("c1", "c2", "c3"):
                rows = [ResultRow(1, "dice", 0.8), ResultRow(1, "hd95", 2.0)]
                rows += [ResultRow(1, "agg_intersection", 8.0), ResultRow(1, "agg_volume", 20.0)]
                if labels is None:  # GTVn: a worse HD95 than GTVp
                    rows += [ResultRow(2, "dice", 0.6), ResultRow(2, "hd95", 6.0)]
                    rows += [
                        ResultRow(2, "agg_intersection", 6.0),
                        ResultRow(2, "agg_volume", 20.0),
                    ]
                else:
                    rows += [ResultRow(2, m, math.nan) for m in ("dice", "hd95")]
                db.record_case(run.id, case, rows)
            db.finish_run(run.id, status="finished")
        data = load_leaderboard_data("hecktor", "test", store=db)
    score = official_score(data, n_resamples=10)
    assert score is not None
    tie = next(c for c in score.columns if c.secondary)
    assert "hd95" in tie.key
    assert score.table.loc["full", tie.key] == pytest.approx(4.0)  # (2 + 6) / 2 per case
    assert score.table.loc["part", tie.key] == math.inf  # GTVn not predicted: the worst HD95
