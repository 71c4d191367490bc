"""docs/architecture.md's recipe "Add a dataset adapter", followed step by step.

The adapter lives in a module this test writes (a flat layout no real dataset uses), is named in
``ADAPTERS`` (step 2) and in a registry file (step 3), and a real run is scored through it: the
recipe's promise is that nothing else needs to change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from evaluator.datasets.base import open_dataset
from evaluator.datasets.registry import ADAPTERS, find_registry_file, load_registry
from evaluator.errors import RegistryError
from evaluator.evaluate import evaluate_run
from evaluator.store import Store
from evaluator.workspace import Workspace

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

ADAPTER_MODULE = '''
from evaluator.datasets.base import Case, FolderAdapter


class FlatAdapter(FolderAdapter):
    """<root>/images/<case>.nii.gz with <root>/labels/<case>.nii.gz."""

    def _scan(self):
        return [
            Case(case_id=p.name.removesuffix(".nii.gz"), channels={"CT": p},
                 label=self.root / "labels" / p.name)
            for p in sorted((self.root / "images").glob("*.nii.gz"))
        ]
'''


def _write(path: Path, arr: np.ndarray) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 2.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), True)


def test_the_recipe_names_the_files_this_test_touches() -> None:
    text = DOC.read_text(encoding="utf-8")
    recipe = text.split("### Add a dataset adapter", 1)[1].split("###", 1)[0]
    assert "`evaluator/datasets/<format>.py`" in recipe
    assert "`ADAPTERS`" in recipe and "`datasets.yaml`" in recipe
    assert "tests/test_architecture_recipes.py" in recipe


def test_a_new_adapter_scores_a_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # step 1: the adapter module
    package = tmp_path / "ccbench_recipe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "formats.py").write_text(ADAPTER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    # step 2: one line in ADAPTERS
    monkeypatch.setitem(ADAPTERS, "flat", "ccbench_recipe.formats:FlatAdapter")
    # step 3: a task in a registry file
    raw = yaml.safe_load(find_registry_file().read_text(encoding="utf-8"))
    raw["tasks"] = {
        "flat": {
            "dataset": "a flat layout",
            "adapter": "flat",
            "root": str(tmp_path / "data"),
            "dims": 3,
            "channels": ["CT"],
            "labels": {1: "organ"},
            "connectivity": 26,
            "metric_profile": "btcv",
            "split_file": "splits/flat.json",
            "split": {"scheme": "kfold", "folds": 2, "test_fraction": 0.0},
        }
    }
    registry_file = tmp_path / "datasets.yaml"
    registry_file.write_text(yaml.safe_dump(raw))
    registry = load_registry(registry_file)

    rng = np.random.default_rng(0)
    pred = tmp_path / "pred"
    for i in range(3):
        ref = np.zeros((6, 16, 16), dtype=np.uint8)
        z, y, x = rng.integers(1, 3), rng.integers(2, 8), rng.integers(2, 8)
        ref[z : z + 3, y : y + 6, x : x + 6] = 1
        _write(tmp_path / "data" / "images" / f"c{i}.nii.gz", ref * 100)
        _write(tmp_path / "data" / "labels" / f"c{i}.nii.gz", ref)
        # case 2 predicts nothing
        _write(pred / f"c{i}.nii.gz", ref if i < 2 else np.zeros_like(ref))

    ws = Workspace(tmp_path / "ws").ensure()
    adapter = open_dataset("flat", workspace=ws, registry=registry)
    assert type(adapter).__name__ == "FlatAdapter" and adapter.case_ids() == ["c0", "c1", "c2"]

    result = evaluate_run("flat", "all", pred, workspace=ws, registry=registry, workers=1)
    assert result.summary["completed"] == 3
    with Store.open(workspace=ws) as store:
        frame = store.results_frame(task="flat", run_ids=[result.run.id])
    dice = frame[frame["metric"] == "dice"].set_index("case_id")["value"]
    assert dice.to_dict() == {"c0": 1.0, "c1": 1.0, "c2": 0.0}


def test_a_mistyped_adapter_entry_is_a_named_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    for wrong in ("flatt:FlatAdapter", "btcv:BtcvAdapterr", "btcv.BTCVAdapter"):
        monkeypatch.setitem(ADAPTERS, "btcv", wrong)
        with pytest.raises(RegistryError, match=f"adapter 'btcv' of task 'btcv' is '{wrong}'"):
            open_dataset("btcv", workspace=Workspace(tmp_path), data_root=tmp_path / "data")
