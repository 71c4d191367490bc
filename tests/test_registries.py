"""Every list that names tasks, metrics or adapters is derived from its one registry.

The registries: ``datasets.yaml`` (tasks), :data:`evaluator.metrics.registry.METRICS` (metric
names and families) and :data:`evaluator.datasets.registry.ADAPTERS` (on-disk formats). These
tests fail when a second list drifts from the first one.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import get_args

import pytest

import evaluator.datasets.phantoms as phantoms_package
from evaluator.datasets.base import DatasetAdapter, FolderAdapter
from evaluator.datasets.phantoms import phantom_tasks, phantom_writer
from evaluator.datasets.registry import ADAPTERS, TaskSpec, load_registry
from evaluator.errors import PhantomError, UnknownMetricError
from evaluator.metrics.cc import CC_METRICS
from evaluator.metrics.lesion import LESION_METRICS
from evaluator.metrics.overlap import OVERLAP_FORMULAS, OverlapCounts, overlap_value
from evaluator.metrics.registry import METRICS
from evaluator.metrics.surface import SURFACE_METRICS
from evaluator.metrics.topology import TOPOLOGY_METRICS
from evaluator.runner.baselines import baseline_tasks


def _family(kind: str) -> set[str]:
    return {name for name, spec in METRICS.items() if spec.kind == kind}


def test_metric_families_are_the_registry_s() -> None:
    assert set(OVERLAP_FORMULAS) == _family("overlap")
    assert set(SURFACE_METRICS) == _family("surface")
    assert set(TOPOLOGY_METRICS) == _family("topology")
    assert set(LESION_METRICS) == _family("lesion")
    assert set(CC_METRICS) == _family("cc")


def test_overlap_value_refuses_other_names() -> None:
    counts = OverlapCounts(tp=3, fp=1, fn=2)
    assert overlap_value("dice", counts) == pytest.approx(6 / 9)
    assert overlap_value("iou", counts) == pytest.approx(3 / 6)
    with pytest.raises(UnknownMetricError, match="not an overlap metric"):
        overlap_value("cc_dice", counts)


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_every_adapter_of_the_table_loads(name: str) -> None:
    module_name, class_name = ADAPTERS[name].split(":")
    cls = getattr(importlib.import_module(f"evaluator.datasets.{module_name}"), class_name)
    registry = load_registry()
    if name == "axial_slices":  # a view of another task's adapter
        spec = registry.task("autopet-2d-phantom")
        source = ADAPTERS["autopet"].split(":")
        source_cls = getattr(importlib.import_module(f"evaluator.datasets.{source[0]}"), source[1])
        adapter = cls(
            spec, Path("/"), source=source_cls(registry.task("autopet-phantom"), Path("/"))
        )
        assert isinstance(adapter, DatasetAdapter)
        return
    assert issubclass(cls, FolderAdapter)
    spec = next(iter(registry.tasks.values()))
    assert isinstance(cls(spec, Path("/")), DatasetAdapter)


def test_every_adapter_class_is_in_the_table() -> None:
    listed = {tuple(v.split(":")) for v in ADAPTERS.values()}
    found = set()
    for info in pkgutil.iter_modules(importlib.import_module("evaluator.datasets").__path__):
        module = importlib.import_module(f"evaluator.datasets.{info.name}")
        for attr, value in vars(module).items():
            if (
                isinstance(value, type)
                and attr.endswith("Adapter")
                and value is not FolderAdapter
                and value is not DatasetAdapter
                and value.__module__ == module.__name__
            ):
                found.add((info.name, attr))
    assert found == listed


def test_registry_refuses_an_unknown_adapter() -> None:
    spec = load_registry().task("btcv").model_dump()
    spec["adapter"] = "dicom"
    with pytest.raises(ValueError, match="unknown adapter 'dicom'"):
        TaskSpec(**spec)


def test_phantom_tasks_are_the_registry_s_and_each_has_a_generator() -> None:
    registry = load_registry()
    declared = [t.phantom_of for t in registry.tasks.values() if t.phantom_of]
    assert list(phantom_tasks(registry)) == list(dict.fromkeys(declared))
    generators = {
        info.name
        for info in pkgutil.iter_modules(phantoms_package.__path__)
        if not info.name.startswith("_")
    }
    assert generators == set(phantom_tasks(registry))
    for task in phantom_tasks(registry):
        assert phantom_writer(task).task == task
    with pytest.raises(PhantomError, match="no phantom generator"):
        phantom_writer("brats")


def test_baselines_run_on_every_volume_task() -> None:
    registry = load_registry()
    tasks = baseline_tasks(registry)
    assert set(tasks) == {n for n, t in registry.tasks.items() if not t.instances}
    assert "chestxdet-phantom" not in tasks and "autopet-phantom" in tasks
    assert "autopet-2d-phantom" in tasks  # 2D label images, written like volumes


def test_ranking_methods_are_the_literal_s() -> None:
    from leaderboards.ranking import RANKING_METHODS, RankingMethod

    assert tuple(RANKING_METHODS) == get_args(RankingMethod)
