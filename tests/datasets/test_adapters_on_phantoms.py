"""The adapters, the check and the split read what the phantom generator writes."""

from __future__ import annotations

import pytest

from evaluator.datasets.base import open_dataset
from evaluator.datasets.check import check_dataset
from evaluator.datasets.phantoms import phantom_tasks, write_phantoms
from evaluator.datasets.splits import make_split, resolve_split
from evaluator.workspace import Workspace


@pytest.mark.parametrize("task", phantom_tasks())
def test_phantoms_open_check_and_split(task: str, ws: Workspace) -> None:
    result = write_phantoms(task, workspace=ws, cases=7, size="small", seed=0)
    phantom = f"{task}-phantom"
    adapter = open_dataset(phantom, workspace=ws)
    assert adapter.root == result.out
    assert len(adapter.case_ids()) == 7
    report = check_dataset(phantom, workspace=ws)
    assert report.ok, report.problems[:3]
    case = next(adapter.cases())
    label = case.read_label()
    for name in case.channels:
        assert case.read_channel(name).GetSize() == label.GetSize()
    split = make_split(phantom, workspace=ws, seed=0)
    assert sorted(resolve_split(phantom, "all", workspace=ws)) == adapter.case_ids()
    assert sorted(split.test + resolve_split(phantom, "train", workspace=ws)) == adapter.case_ids()
