from __future__ import annotations

from pathlib import Path

import pytest

from evaluator.datasets.registry import load_registry
from evaluator.errors import DatasetNotFoundError, RegistryError
from evaluator.workspace import Workspace

TASKS = ["autopet", "hecktor", "btcv", "chestxdet"]


def test_every_task_and_its_phantom_is_registered() -> None:
    reg = load_registry()
    for name in TASKS:
        assert reg.tasks[name].phantom_of is None
        phantom = reg.tasks[f"{name}-phantom"]
        assert phantom.phantom_of == name
        assert phantom.labels == reg.tasks[name].labels
        assert reg.profile(name).metrics


def test_btcv_has_the_13_standard_organs() -> None:
    labels = load_registry().task("btcv").labels
    assert sorted(labels) == list(range(1, 14))
    assert labels[1] == "spleen" and labels[6] == "liver" and labels[11] == "pancreas"


def test_data_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    task = load_registry().task("autopet")
    ws = Workspace(tmp_path)
    monkeypatch.delenv("CCBENCH_AUTOPET_ROOT", raising=False)
    assert task.data_root(ws) == tmp_path / "data" / "autopet"
    monkeypatch.setenv("CCBENCH_AUTOPET_ROOT", str(tmp_path / "env"))
    assert task.data_root(ws) == tmp_path / "env"
    assert task.data_root(ws, override=tmp_path / "cli") == tmp_path / "cli"


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(DatasetNotFoundError, match=r"known tasks: .*autopet"):
        load_registry().task("autopett")


BROKEN = {
    "bad_connectivity": (
        "connectivity: 26",
        "connectivity: 7",
        "task 'autopet', field 'connectivity'",
    ),
    "missing_field": ("    adapter: autopet\n", "", "task 'autopet', field 'adapter'"),
    "bad_adapter": ("adapter: btcv", "adapter: dicom", "task 'btcv', field 'adapter'"),
    "unknown_profile": (
        "metric_profile: hecktor",
        "metric_profile: nope",
        "field 'metric_profile'",
    ),
    "background_label": ("labels: {1: lesion}", "labels: {0: lesion}", "field 'labels'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_registry_names_entry_and_field(case: str, tmp_path: Path) -> None:
    old, new, expected = BROKEN[case]
    text = load_registry().path.read_text()
    assert old in text
    path = tmp_path / "datasets.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "datasets.yaml"
    path.write_text("tasks: [unclosed")
    with pytest.raises(RegistryError, match="YAML"):
        load_registry(path)
