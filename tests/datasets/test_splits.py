from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.datasets.splits import assign_split, heldout_path, make_split, resolve_split
from evaluator.errors import SplitError
from evaluator.workspace import Workspace

DIAGNOSES = ["MELANOMA", "LYMPHOMA", "LUNG_CANCER", "NEGATIVE"]


def _autopet_cases(n: int) -> list[tuple[str, str, str, str]]:
    return [
        (f"PETCT_{i:010x}", "01-01-2000-NA-PET-1", DIAGNOSES[i % 4], "MF"[(i // 4) % 2])
        for i in range(n)
    ]


def _check_partition(folds: list[dict], test: list[str], all_ids: list[str]) -> None:
    dev = sorted(set(all_ids) - set(test))
    assert len(folds) == 5
    vals = [set(f["val"]) for f in folds]
    assert sorted(c for v in vals for c in v) == dev  # folds' val partition the dev set
    for f in folds:
        assert set(f) == {"train", "val"}
        assert sorted(f["train"] + f["val"]) == dev and not set(f["train"]) & set(f["val"])
        assert f["train"] == sorted(f["train"]) and f["val"] == sorted(f["val"])


def test_autopet_split_is_stratified_and_nnunet_compatible(
    ws: Workspace, make, tmp_path: Path
) -> None:
    root = make.autopet(tmp_path / "a", _autopet_cases(40))
    result = make_split("autopet", workspace=ws, data_root=root, seed=3)
    assert result.path == ws.root / "splits" / "autopet.json"
    folds = json.loads(result.path.read_text())
    test_doc = json.loads(result.test_path.read_text())
    assert isinstance(folds, list)  # nnU-Net's splits_final.json: a plain list of folds
    ids = [f"{p}_0" for p, *_ in _autopet_cases(40)]
    _check_partition(folds, test_doc["test"], ids)
    assert len(test_doc["test"]) == 8  # 20 % of 40
    assert test_doc["stratify"] == ["diagnosis", "sex"]
    # 8 strata of 5 cases: one test case each, one case in each fold.
    assert set(result.strata) == {f"{d}/{s}" for d in DIAGNOSES for s in "MF"}
    for counts in result.strata.values():
        assert counts.pop("test") == 1
        assert len(counts) == 4 and set(counts.values()) == {1}  # four different folds
    assert result.merged == []


def test_a_patients_studies_stay_in_one_part(ws: Workspace, tmp_path: Path) -> None:
    """AutoPET's repeat studies (``<patient>_0``, ``<patient>_1``): grouped by the metadata's
    ``patient`` (``split.group_by``), never one in the test set and one in a training fold."""
    from evaluator.datasets.phantoms import write_phantoms

    write_phantoms("autopet", workspace=ws, cases=24, size="small", seed=5)
    result = make_split("autopet-phantom", workspace=ws, seed=1)
    ids = resolve_split("autopet-phantom", "all", workspace=ws)
    patients = Counter(c.rsplit("_", 1)[0] for c in ids)
    assert max(patients.values()) >= 2  # the phantom has repeat studies
    part = {c: "test" for c in result.test}
    part.update({c: f"fold{k}" for k, f in enumerate(result.folds) for c in f["val"]})
    assert sorted(part) == sorted(ids)
    for patient in patients:
        assert len({p for c, p in part.items() if c.rsplit("_", 1)[0] == patient}) == 1, patient
    for f in result.folds:  # so a fold's model never trained on another study of its patients
        trained = {c.rsplit("_", 1)[0] for c in f["train"]}
        assert not trained & {c.rsplit("_", 1)[0] for c in f["val"] + result.test}


def test_a_split_made_before_grouping_that_separates_a_patient_is_refused(
    ws: Workspace,
) -> None:
    from evaluator.datasets.phantoms import write_phantoms

    write_phantoms("autopet", workspace=ws, cases=24, size="small", seed=5)
    result = make_split("autopet-phantom", workspace=ws, seed=1)
    doc = json.loads(result.test_path.read_text())
    assert doc["group_by"] == "patient"
    assert resolve_split("autopet-phantom", "test", workspace=ws) == result.test
    # an older file: no group_by, and one study of a two-study patient moved to the test set
    patients = Counter(c.rsplit("_", 1)[0] for f in result.folds for c in f["val"])
    twice = next(p for p, n in patients.items() if n >= 2)
    moved = f"{twice}_0"
    folds = [
        {"train": [c for c in f["train"] if c != moved], "val": [c for c in f["val"] if c != moved]}
        for f in result.folds
    ]
    del doc["group_by"]
    doc["test"] = sorted([*doc["test"], moved])
    result.path.write_text(json.dumps(folds))
    result.test_path.write_text(json.dumps(doc))
    with pytest.raises(SplitError, match=f"cases of patient {twice} in .*--force"):
        resolve_split("autopet-phantom", "fold0", workspace=ws)


def test_same_seed_same_bytes(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.autopet(tmp_path / "a", _autopet_cases(23))
    a = make_split("autopet", workspace=ws, data_root=root, seed=7, out=tmp_path / "s1.json")
    b = make_split("autopet", workspace=ws, data_root=root, seed=7, out=tmp_path / "s2.json")
    c = make_split("autopet", workspace=ws, data_root=root, seed=8, out=tmp_path / "s3.json")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.test_path.read_bytes() == b.test_path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes() or a.test != c.test
    assert a.test_path == tmp_path / "s1.test.json"


def test_tiny_strata_fall_back_and_still_split(ws: Workspace, make, tmp_path: Path) -> None:
    cases = _autopet_cases(12)
    cases.append(("PETCT_lonely", "01-01-2000-NA-PET-1", "NEGATIVE", "F"))
    root = make.autopet(tmp_path / "a", cases)
    result = make_split("autopet", workspace=ws, data_root=root, seed=0)
    ids = [f"{p}_0" for p, *_ in cases]
    _check_partition(result.folds, result.test, ids)
    assert "NEGATIVE/F" in result.merged  # every stratum has < 5 cases here
    # Merged strata are still spread: no part holds two cases of one stratum.
    for counts in result.strata.values():
        assert max(counts.values()) == 1, result.strata
    sizes = sorted(len(f["val"]) for f in result.folds)
    assert sizes[-1] - sizes[0] <= 1


def test_hecktor_split_by_sex_and_centre(ws: Workspace, make, tmp_path: Path) -> None:
    cases = [(f"{c}-{i:03d}", "MF"[i % 2]) for c in ("CHUM", "CHUP", "MDA") for i in range(10)]
    root = make.hecktor(tmp_path / "h", cases)
    result = make_split("hecktor", workspace=ws, data_root=root, seed=1)
    assert result.stratify == ("sex", "centre")
    _check_partition(result.folds, result.test, [c for c, _ in cases])
    assert len(result.test) == 6
    for counts in result.strata.values():  # 6 strata of 5: one test, one per four folds
        assert counts["test"] == 1 and sum(counts.values()) == 5


def test_btcv_unstratified(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.btcv(tmp_path / "b", n=12)
    result = make_split("btcv", workspace=ws, data_root=root, seed=0)
    assert result.stratify == () and set(result.strata) == {"all"}
    _check_partition(result.folds, result.test, [f"{i:04d}" for i in range(1, 13)])
    assert len(result.test) in (2, 3)


def test_chestxdet_official_split(ws: Workspace, chestxdet_root: Path) -> None:
    result = make_split("chestxdet", workspace=ws, data_root=chestxdet_root, seed=0)
    assert result.test == ["40001", "40002"]
    _check_partition(
        result.folds,
        result.test,
        [f"3619{i}" for i in range(9, 10)] + [f"3620{i}" for i in range(5)] + ["40001", "40002"],
    )


def test_too_few_cases(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.btcv(tmp_path / "b", n=3)
    with pytest.raises(SplitError, match=r"btcv.*only [23] development cases for 5-fold"):
        make_split("btcv", workspace=ws, data_root=root, seed=0)


def test_resolve_split_names(ws: Workspace, make, tmp_path: Path) -> None:
    root = make.btcv(tmp_path / "b", n=12)
    with pytest.raises(SplitError, match=r"no split file .*ccbench data split --task btcv"):
        resolve_split("btcv", "test", workspace=ws, data_root=root)
    result = make_split("btcv", workspace=ws, data_root=root, seed=0)
    get = lambda name: resolve_split("btcv", name, workspace=ws, data_root=root)  # noqa: E731
    assert get("test") == result.test
    assert get("fold3") == result.folds[3]["val"]
    assert get("train") == sorted(set(get("all")) - set(result.test))
    assert len(get("all")) == 12
    with pytest.raises(SplitError, match=r"unknown split 'fold5' \(known: all, train, test, fold0"):
        get("fold5")
    # A split file naming a case the dataset no longer has.
    victim = result.folds[0]["val"][0]
    (root / "img" / f"img{victim}.nii.gz").unlink()
    (root / "label" / f"label{victim}.nii.gz").unlink()
    with pytest.raises(SplitError, match=rf"not in the dataset .*{victim}"):
        get("fold0")


def test_heldout_file_name() -> None:
    assert heldout_path(Path("/w/splits/hecktor.json")) == Path("/w/splits/hecktor.test.json")


@settings(max_examples=40, deadline=None)
@given(
    groups=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    seed=st.integers(0, 10_000),
    fraction=st.sampled_from([0.0, 0.1, 0.2, 0.3]),
)
def test_assign_split_invariants(groups: list[int], seed: int, fraction: float) -> None:
    keys = {f"c{g}_{i}": (f"g{g}",) for g, n in enumerate(groups) for i in range(n)}
    n = len(keys)
    if n - round(n * fraction) - 1 < 3:
        return
    test, val, _ = assign_split(keys, folds=3, test_fraction=fraction, seed=seed)
    assert abs(len(test) - n * fraction) < 1
    assert sorted(test + [c for v in val for c in v]) == sorted(keys)
    sizes = [len(v) for v in val]
    assert max(sizes) - min(sizes) <= 1
    # Groups with at least `folds` members are spread over the folds within one case.
    for g, size in enumerate(groups):
        if size >= 3:
            per_fold = [sum(1 for c in v if keys[c] == (f"g{g}",)) for v in val]
            assert max(per_fold) - min(per_fold) <= 1
    again = assign_split(keys, folds=3, test_fraction=fraction, seed=seed)
    assert again == (test, val, _)


def test_a_small_set_holds_out_fewer_so_every_fold_keeps_a_case() -> None:
    keys = {f"c{i}": () for i in range(6)}
    for seed in range(20):  # 20 % of 6 is 1 or 2; 2 would leave 4 cases for 5 folds
        test, val, _ = assign_split(keys, folds=5, test_fraction=0.2, seed=seed)
        assert len(test) <= 1 and all(val)
    with pytest.raises(SplitError, match="only 4 development cases"):
        assign_split({f"c{i}": () for i in range(4)}, folds=5, test_fraction=0.0, seed=0)


def test_stratum_counts_are_proportional() -> None:
    keys = {f"c{i}": ("A" if i < 50 else "B",) for i in range(100)}
    test, _val, _ = assign_split(keys, folds=5, test_fraction=0.2, seed=0)
    assert Counter(keys[c][0] for c in test) == {"A": 10, "B": 10}
