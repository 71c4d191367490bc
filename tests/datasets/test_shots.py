"""Few-shot training subsets (``ccbench data split --shots``): nested, seeded, never test cases.

The oracle for "this case contains its target" is the label file itself, read here with
SimpleITK, not through the adapter that ``make_split`` uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.registry import load_registry
from evaluator.datasets.splits import (
    draw_shots,
    make_split,
    read_shots,
    read_split,
    resolve_split,
    shots_of,
    split_names,
)
from evaluator.errors import SplitError
from evaluator.workspace import Workspace

BTCV = load_registry().task("btcv")
NAME = BTCV.labels  # label value -> target name
SHAPE = (6, 8, 10)
N_CASES = 30
KS = (1, 3, 5)


def _organs(i: int) -> list[int]:
    """Labels of case ``i`` (1-based): liver everywhere, spleen in a third, pancreas in half,
    the gallbladder in cases 1 and 2 only; the other nine organs nowhere."""
    labels = [6]
    if i % 3 == 0:
        labels.append(1)
    if i % 2 == 0:
        labels.append(11)
    if i in (1, 2):
        labels.append(4)
    return labels


def _build_btcv(root: Path, n: int, organs: Callable[[int], Sequence[int]] = _organs) -> Path:
    """BTCV img/label layout; case ``i`` holds one voxel of each label in ``organs(i)``."""
    for i in range(1, n + 1):
        label = np.zeros(SHAPE, dtype=np.uint8)
        for value in organs(i):
            label.flat[value * 7] = value
        for folder, name, arr in (
            ("img", f"img{i:04d}.nii.gz", np.full(SHAPE, i, dtype=np.int16)),
            ("label", f"label{i:04d}.nii.gz", label),
        ):
            (root / folder).mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(sitk.GetImageFromArray(arr), str(root / folder / name))
    return root


@pytest.fixture
def organs_root(tmp_path: Path) -> Path:
    return _build_btcv(tmp_path / "btcv", N_CASES)


def _labels_on_disk(root: Path, case_id: str) -> set[int]:
    """The oracle: the label values stored in a BTCV label file."""
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "label" / f"label{case_id}.nii.gz")))
    return {int(v) for v in np.unique(arr)} - {0}


def _eligible_on_disk(root: Path, development: Sequence[str]) -> dict[str, list[str]]:
    present = {cid: _labels_on_disk(root, cid) for cid in development}
    return {name: [c for c in development if v in present[c]] for v, name in NAME.items()}


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_subsets_are_nested_from_training_cases_that_hold_their_target(
    ws: Workspace, organs_root: Path, seed: int
) -> None:
    result = make_split("btcv", workspace=ws, data_root=organs_root, seed=seed, shots=KS)
    development = sorted(result.folds[0]["train"] + result.folds[0]["val"])
    eligible = _eligible_on_disk(organs_root, development)
    assert result.shots_eligible == {t: len(ids) for t, ids in eligible.items()}
    assert list(result.shots) == list(KS)
    for k in KS:
        assert list(result.shots[k]) == list(NAME.values())  # every target, in label order
        for target, ids in result.shots[k].items():
            assert len(ids) == len(set(ids)) == min(k, len(eligible[target])), (k, target)
            assert not set(ids) & set(result.test)
            assert set(ids) <= set(eligible[target])
    for small, large in combinations(KS, 2):
        for target in NAME.values():
            assert set(result.shots[small][target]) <= set(result.shots[large][target])
            assert result.shots[large][target][:small] == result.shots[small][target]
    # Each chosen case really contains its target, read from the file.
    value_of = {name: value for value, name in NAME.items()}
    for target, ids in result.shots[max(KS)].items():
        for cid in ids:
            assert value_of[target] in _labels_on_disk(organs_root, cid), (target, cid)
    # The file says the same as the result.
    doc = json.loads(result.test_path.read_text())
    assert doc["shots"] == {str(k): v for k, v in result.shots.items()}
    assert doc["shots_short"] == {str(k): v for k, v in result.shots_short.items()}
    assert read_shots(result.path) == result.shots


def test_shortage_is_recorded(ws: Workspace, organs_root: Path) -> None:
    result = make_split("btcv", workspace=ws, data_root=organs_root, seed=0, shots=KS)
    gall = result.shots_eligible["gallbladder"]
    assert gall <= 2
    absent = [name for value, name in NAME.items() if value not in (1, 4, 6, 11)]
    for k in KS:
        expected = {t: 0 for t in absent}
        if gall < k:
            expected["gallbladder"] = gall
        assert result.shots_short.get(k, {}) == dict(sorted(expected.items(), key=_label_order))
        for target in absent:
            assert result.shots[k][target] == []
    assert "liver" not in result.shots_short[5] and "spleen" not in result.shots_short[5]
    doc = json.loads(result.test_path.read_text())
    assert doc["shots_short"]["5"]["gallbladder"] == gall


def _label_order(item: tuple[str, int]) -> int:
    return {name: value for value, name in NAME.items()}[item[0]]


def test_same_seed_same_bytes_and_folds_unchanged(
    ws: Workspace, organs_root: Path, tmp_path: Path
) -> None:
    def split(name: str, seed: int, shots: Sequence[int] = KS):
        return make_split(
            "btcv", workspace=ws, data_root=organs_root, seed=seed, out=tmp_path / name, shots=shots
        )

    a, b, plain = split("a.json", 3), split("b.json", 3), split("p.json", 3, ())
    assert a.test_path.read_bytes() == b.test_path.read_bytes()
    assert a.path.read_bytes() == b.path.read_bytes() == plain.path.read_bytes()
    # Without --shots the test-set file is as it always was; with it, only the shots keys differ.
    plain_doc = json.loads(plain.test_path.read_text())
    assert set(plain_doc) == {
        "task",
        "scheme",
        "seed",
        "folds",
        "test_fraction",
        "stratify",
        "test",
    }
    shots_doc = json.loads(a.test_path.read_text())
    assert {k: v for k, v in shots_doc.items() if k not in ("shots", "shots_short")} == plain_doc
    assert read_shots(plain.path) == {}
    # Another seed draws other subsets.
    other = split("c.json", 4)
    assert other.shots != a.shots


def test_draw_depends_on_seed_and_target_only() -> None:
    pool = [f"c{i:02d}" for i in range(40)]
    eligible = {"liver": pool, "spleen": pool[::2], "aorta": pool[:3]}
    subsets, short = draw_shots(eligible, [5, 1, 5], seed=11)
    assert list(subsets) == [1, 5] and short == {5: {"aorta": 3}}
    # Processing order and the other targets do not matter.
    backwards = dict(reversed(list(eligible.items())))
    assert draw_shots(backwards, [1, 5], seed=11)[0][5]["liver"] == subsets[5]["liver"]
    assert draw_shots({"liver": pool}, [5], seed=11)[0][5]["liver"] == subsets[5]["liver"]
    assert draw_shots({"liver": reversed(pool)}, [5], seed=11)[0][5] == {
        "liver": subsets[5]["liver"]
    }
    # Targets with the same cases still get their own draws; another seed, another draw.
    assert draw_shots({"a": pool, "b": pool}, [5], seed=11)[0][5]["a"] != subsets[5]["liver"]
    assert draw_shots(eligible, [5], seed=12)[0][5]["liver"] != subsets[5]["liver"]
    with pytest.raises(SplitError, match=r"at least 1, got \[0\]"):
        draw_shots(eligible, [0, 1], seed=0)


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 12), min_size=1, max_size=5),
    ks=st.lists(st.integers(1, 14), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_draw_shots_invariants(sizes: list[int], ks: list[int], seed: int) -> None:
    eligible = {f"t{j}": [f"c{i}" for i in range(n)] for j, n in enumerate(sizes)}
    subsets, short = draw_shots(eligible, ks, seed=seed)
    assert list(subsets) == sorted(set(ks))
    for k, per_target in subsets.items():
        for target, ids in per_target.items():
            n = len(eligible[target])
            assert len(ids) == len(set(ids)) == min(k, n) and set(ids) <= set(eligible[target])
            assert (target in short.get(k, {})) == (n < k)
    for small, large in combinations(sorted(set(ks)), 2):
        for target in eligible:
            assert subsets[large][target][:small] == subsets[small][target]
    assert draw_shots(eligible, ks, seed=seed) == (subsets, short)


def test_resolve_shots_split_names(ws: Workspace, organs_root: Path) -> None:
    get = lambda name: resolve_split("btcv", name, workspace=ws, data_root=organs_root)  # noqa: E731
    plain = make_split("btcv", workspace=ws, data_root=organs_root, seed=2)
    with pytest.raises(SplitError, match=r"btcv.test.json has no 1-shot subsets \(written: none\)"):
        get("shots1")
    with pytest.raises(SplitError, match=r"known: .*fold4, shots<k>\[:<target>\] after"):
        get("shots")
    result = make_split("btcv", workspace=ws, data_root=organs_root, seed=2, shots=[1, 5])
    assert result.folds == plain.folds and result.test == plain.test
    union = sorted({cid for ids in result.shots[5].values() for cid in ids})
    assert get("shots5") == union
    assert get("shots5:liver") == sorted(result.shots[5]["liver"]) and len(get("shots5:liver")) == 5
    assert get("shots1:spleen") == result.shots[1]["spleen"]
    assert get("shots5:gallbladder") == sorted(result.shots[5]["gallbladder"])
    assert get("shots1:right kidney") == []  # absent everywhere: an empty subset, not an error
    assert get("fold2") == result.folds[2]["val"] and get("test") == result.test
    assert read_split(result.path) == (plain.folds, plain.test)  # existing readers unchanged
    test_file = str(result.test_path).replace(".", r"\.")
    with pytest.raises(SplitError, match=rf"{test_file} has no 3-shot subsets \(written: 1, 5\)"):
        get("shots3")
    with pytest.raises(SplitError, match=r"--seed 2 --shots 1,3,5`"):
        get("shots3")
    with pytest.raises(SplitError, match=r"no target 'livr' .*targets: spleen, right kidney"):
        get("shots5:livr")
    with pytest.raises(
        SplitError, match=r"unknown split 'shots05' \(known: .*fold4, shots1, shots5"
    ):
        get("shots05")
    assert split_names(5, shots=read_shots(result.path))[-2:] == ["shots1", "shots5"]


def test_resolve_refuses_a_subset_holding_a_test_case(ws: Workspace, organs_root: Path) -> None:
    result = make_split("btcv", workspace=ws, data_root=organs_root, seed=0, shots=[1])
    doc = json.loads(result.test_path.read_text())
    doc["shots"]["1"]["liver"] = [result.test[0]]
    result.test_path.write_text(json.dumps(doc))
    with pytest.raises(SplitError, match=rf"holds test case\(s\) {result.test[0]}"):
        resolve_split("btcv", "shots1", workspace=ws, data_root=organs_root)


def test_adding_shots_to_a_split_runs_use_is_refused_and_says_why(
    ws: Workspace, organs_root: Path
) -> None:
    make_split("btcv", workspace=ws, data_root=organs_root, seed=0)
    used = lambda split_id: ["entry__btcv__test"]  # noqa: E731
    kw: dict[str, Any] = {"workspace": ws, "data_root": organs_root, "used_by": used}
    with pytest.raises(SplitError, match=r"only its few-shot subsets would change.*--force"):
        make_split("btcv", seed=0, shots=[1], **kw)
    with pytest.raises(SplitError, match=r"would mix test sets"):
        make_split("btcv", seed=1, shots=[1], **kw)
    assert make_split("btcv", seed=0, shots=[1], force=True, **kw).shots[1]["liver"]


def test_shots_of() -> None:
    assert [shots_of(n) for n in ("shots1", "shots5", "shots12:liver", "shots1:right kidney")] == [
        1,
        5,
        12,
        1,
    ]
    names = ("all", "train", "test", "fold0", "shots", "shots0", "shots05", "shotsx", "5shots")
    assert [shots_of(n) for n in names] == [None] * len(names)
    # No existing split name reads as a few-shot one.
    assert all(shots_of(n) is None for n in split_names(10))


def test_chestxdet_targets_are_its_findings(ws: Workspace, chestxdet_root: Path) -> None:
    result = make_split("chestxdet", workspace=ws, data_root=chestxdet_root, seed=0, shots=[1, 2])
    assert result.test == ["40001", "40002"]
    assert result.shots[2]["Effusion"] == ["36199"] and result.shots[2]["Mass"] == ["36202"]
    assert result.shots[2]["Pneumothorax"] == []  # only in a test image
    assert result.shots_short[1]["Pneumothorax"] == 0 and result.shots_short[2]["Effusion"] == 1
    assert not {c for ids in result.shots[2].values() for c in ids} & set(result.test)


def test_autopet_phantom_lesion_target(autopet_ws: Workspace) -> None:
    """The generator's own phantoms: the one target is the lesion; negatives are never drawn."""
    result = make_split("autopet-phantom", workspace=autopet_ws, seed=0, shots=[1, 3])
    assert list(result.shots[3]) == ["lesion"]
    development = result.folds[0]["train"] + result.folds[0]["val"]
    root = load_registry().task("autopet-phantom").data_root(autopet_ws)
    from evaluator.datasets.base import open_dataset

    dataset = open_dataset("autopet-phantom", workspace=autopet_ws)
    positive = set()
    for cid in development:
        label = dataset.case(cid).label
        assert label is not None and root in label.parents
        if sitk.GetArrayFromImage(sitk.ReadImage(str(label))).any():
            positive.add(cid)
    assert result.shots_eligible == {"lesion": len(positive)}
    assert set(result.shots[3]["lesion"]) <= positive
    assert result.shots[3]["lesion"][:1] == result.shots[1]["lesion"]


runner = CliRunner()


def test_cli_split_shots(ws: Workspace, organs_root: Path) -> None:
    args = ["data", "split", "--task", "btcv", "--data-root", str(organs_root), "-w", str(ws.root)]
    result = runner.invoke(app, [*args, "--shots", "1,5"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Few-shot training subsets" in result.output
    assert "warning: gallbladder has only" in result.output and "its 5-shot subset" in result.output
    assert "warning: aorta has no eligible case; its 1- and 5-shot subsets are" in result.output
    doc = json.loads((ws.root / "splits" / "btcv.test.json").read_text())
    assert list(doc["shots"]) == ["1", "5"] and len(doc["shots"]["5"]["liver"]) == 5
    assert doc["shots"]["5"]["liver"][:1] == doc["shots"]["1"]["liver"]
    where = ["--task", "btcv", "--data-root", str(organs_root), "-w", str(ws.root)]
    listed = runner.invoke(app, ["data", "cases", *where, "--split", "shots5:liver", "--json"])
    assert listed.exit_code == 0, listed.output
    ids = [c["case_id"] for c in json.loads(listed.output)["cases"]]
    assert ids == sorted(doc["shots"]["5"]["liver"])
    for bad in ("0", "1,x", ","):
        refused = runner.invoke(app, [*args, "--shots", bad], terminal_width=200)
        assert refused.exit_code == 2 and "--shots" in refused.output, (bad, refused.output)
    plain = runner.invoke(app, args, terminal_width=200)
    assert plain.exit_code == 0 and "Few-shot" not in plain.output
    assert "shots" not in json.loads((ws.root / "splits" / "btcv.test.json").read_text())
