"""``autopet-2d``: AutoPET volumes as APEX's 2D axial slices, cut lazily, split by patient.

Oracles: the source volumes themselves (every slice file equals the volume's plane, the stack is
(CT, PET, 0)), and the source task's split (a patient's slices are where the patient is).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import open_dataset
from evaluator.datasets.registry import SliceSpec, load_registry
from evaluator.datasets.slices import STACK_CHANNEL, AxialSliceAdapter, choose_slices
from evaluator.datasets.splits import make_split, read_split, resolve_split
from evaluator.errors import DatasetNotFoundError, SplitError
from evaluator.workspace import Workspace

TASK = "autopet-2d-phantom"


def _slices(ws: Workspace) -> AxialSliceAdapter:
    adapter = open_dataset(TASK, workspace=ws)
    assert isinstance(adapter, AxialSliceAdapter)
    return adapter


def test_slices_are_the_volumes_planes_and_apex_stack(autopet_ws: Workspace) -> None:
    adapter = _slices(autopet_ws)
    source = open_dataset("autopet-phantom", workspace=autopet_ws)
    spec = load_registry().task(TASK).slices
    assert spec is not None
    kept: dict[str, list[int]] = {}
    for patient in source.case_ids():
        ref = sitk.GetArrayFromImage(source.case(patient).read_label())
        fg = ref.reshape(ref.shape[0], -1).any(axis=1)
        if not fg.any():  # APEX: patients without lesions are left out
            assert not any(c.startswith(f"{patient}_z") for c in adapter.case_ids())
            continue
        expected = choose_slices(fg, spec, patient=patient)
        assert set(np.flatnonzero(fg)) <= set(expected)  # every lesion slice
        kept[patient] = expected
        got = sorted(int(c.rsplit("_z", 1)[1]) for c in adapter.case_ids() if c.startswith(patient))
        assert got == expected
    assert kept, "the tiny phantom has lesion patients"
    patient, zs = next(iter(kept.items()))
    volume = source.case(patient)
    ct, pet = (sitk.GetArrayFromImage(volume.read_channel(c)) for c in ("CT", "PET"))
    ref = sitk.GetArrayFromImage(volume.read_label())
    case = adapter.case(f"{patient}_z{zs[0]:04d}")
    assert case.metadata["patient"] == patient and case.metadata["slice"] == zs[0]
    assert case.metadata["diagnosis"] == volume.metadata["diagnosis"]
    ct2 = case.read_channel("CT")
    assert ct2.GetDimension() == 2
    assert ct2.GetSpacing() == pytest.approx(volume.read_channel("CT").GetSpacing()[:2])
    assert ct2.GetOrigin() == pytest.approx(volume.read_channel("CT").GetOrigin()[:2])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ct2), ct[zs[0]])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.read_channel("PET")), pet[zs[0]])
    np.testing.assert_array_equal(sitk.GetArrayFromImage(case.read_label()), ref[zs[0]])
    stack = case.read_channel(STACK_CHANNEL)
    assert stack.GetNumberOfComponentsPerPixel() == 3
    arr = sitk.GetArrayFromImage(stack)  # (y, x, component)
    np.testing.assert_allclose(arr[..., 0], ct[zs[0]])
    np.testing.assert_allclose(arr[..., 1], pet[zs[0]])
    assert not arr[..., 2].any()


def test_nothing_is_written_until_a_case_is_used(autopet_ws: Workspace) -> None:
    adapter = _slices(autopet_ws)
    ids = adapter.case_ids()
    assert (adapter.root / "index.json").is_file()
    assert not (adapter.root / "slices").exists()
    case = adapter.case(ids[0])
    written = {p.name for p in (adapter.root / "slices").iterdir()}
    assert written == {case.metadata["patient"]}  # that patient only
    # a second reader uses the cached index and files (an edited index is believed: same key)
    again = _slices(autopet_ws)
    assert again.case_ids() == ids and again.root == adapter.root
    with pytest.raises(DatasetNotFoundError, match="not in task 'autopet-2d-phantom'"):
        adapter.case("PETCT_nope_z0001")


def test_a_changed_reference_rebuilds_the_index(autopet_ws: Workspace) -> None:
    adapter = _slices(autopet_ws)
    before = adapter.case_ids()
    source = open_dataset("autopet-phantom", workspace=autopet_ws)
    patient = sorted({adapter.case(c).metadata["patient"] for c in before})[0]
    label = Path(str(source.case(patient).label))
    img = sitk.ReadImage(str(label))
    sitk.WriteImage(img * 0, str(label))  # the patient loses its lesions
    after = _slices(autopet_ws).case_ids()
    assert not any(c.startswith(f"{patient}_z") for c in after)
    assert set(after) == {c for c in before if not c.startswith(f"{patient}_z")}


def test_a_changed_source_file_rewrites_the_patients_slices(autopet_ws: Workspace) -> None:
    adapter = _slices(autopet_ws)
    first = adapter.case_ids()[0]
    patient, z = adapter.case(first).metadata["patient"], adapter.case(first).metadata["slice"]
    source = open_dataset("autopet-phantom", workspace=autopet_ws).case(patient)
    label = sitk.GetArrayFromImage(source.read_label())
    label[z, :4, :4] = 1  # more lesion on that slice: the same slices are kept
    edited = sitk.GetImageFromArray(label)
    edited.CopyInformation(source.read_label())
    sitk.WriteImage(edited, str(source.label))
    pet = source.read_channel("PET") * 2.0  # and the PET changes too
    sitk.WriteImage(pet, str(source.channels["PET"]))
    again = _slices(autopet_ws).case(first)
    assert np.array_equal(sitk.GetArrayFromImage(again.read_label()), label[z])
    expected = sitk.GetArrayFromImage(pet)[z]
    assert np.array_equal(sitk.GetArrayFromImage(again.read_channel("PET")), expected)
    stack = sitk.GetArrayFromImage(again.read_channel(STACK_CHANNEL))
    assert np.array_equal(stack[..., 1], expected.astype(np.float32))


def test_a_source_split_made_again_is_noticed(autopet_ws: Workspace) -> None:
    seed = json.loads((autopet_ws.splits / "autopet-phantom.test.json").read_text())["seed"]
    derived = make_split(TASK, workspace=autopet_ws)
    test = resolve_split(TASK, "test", workspace=autopet_ws)
    # the same parts again, with few-shot subsets added: the derived split still holds
    make_split("autopet-phantom", workspace=autopet_ws, seed=seed, shots=[1], force=True)
    assert resolve_split(TASK, "test", workspace=autopet_ws) == test
    again = make_split(TASK, workspace=autopet_ws, used_by=lambda _: ["a run"])  # no change
    assert again.test_path.read_text() == derived.test_path.read_text()
    # other parts: refused until the derived split is made again
    make_split("autopet-phantom", workspace=autopet_ws, seed=99, force=True)
    with pytest.raises(
        SplitError, match=r"no longer in .* run `ccbench data split --task autopet-2d"
    ):
        resolve_split(TASK, "test", workspace=autopet_ws)
    make_split(TASK, workspace=autopet_ws, force=True)
    assert resolve_split(TASK, "test", workspace=autopet_ws)


def test_split_is_the_source_split_by_patient(autopet_ws: Workspace) -> None:
    src_folds, src_test = read_split(load_registry().task("autopet-phantom").split_path(autopet_ws))
    result = make_split(TASK, workspace=autopet_ws)
    adapter = _slices(autopet_ws)
    patient_of = {c: c.rsplit("_z", 1)[0] for c in adapter.case_ids()}
    assert {patient_of[c] for c in result.test} <= set(src_test)
    for k, fold in enumerate(result.folds):
        assert {patient_of[c] for c in fold["val"]} <= set(src_folds[k]["val"])
        # no patient in both a fold's training and validation slices
        assert not {patient_of[c] for c in fold["val"]} & {patient_of[c] for c in fold["train"]}
    every = sorted([*result.test, *(c for f in result.folds for c in f["val"])])
    assert every == adapter.case_ids()
    doc = json.loads(result.test_path.read_text())
    assert doc["derived_from"] == "autopet-phantom" and doc["source_parts"].startswith("sha256:")
    assert resolve_split(TASK, "fold1", workspace=autopet_ws) == sorted(result.folds[1]["val"])


def test_split_needs_the_source_split(autopet_ws: Workspace) -> None:
    load_registry().task("autopet-phantom").split_path(autopet_ws).unlink()
    with pytest.raises(SplitError, match="ccbench data split --task autopet-phantom` first"):
        make_split(TASK, workspace=autopet_ws)


def test_choose_slices_draws_the_negative_share_per_patient() -> None:
    fg = np.zeros(100, bool)
    fg[40:45] = True
    spec = SliceSpec(negative_share=0.1, seed=3)
    kept = choose_slices(fg, spec, patient="a")
    assert len(kept) == 5 + 10 and set(range(40, 45)) <= set(kept)
    assert kept == choose_slices(fg, spec, patient="a")  # seeded
    assert kept != choose_slices(fg, spec, patient="b")  # per patient
    assert kept != choose_slices(fg, SliceSpec(negative_share=0.1, seed=4), patient="a")
    assert choose_slices(fg, SliceSpec(slices="all"), patient="a") == list(range(100))


def _read_pet_slice(root: str, case_id: str) -> float:
    case = open_dataset(TASK, workspace=Workspace(Path(root))).case(case_id)
    return float(sitk.GetArrayFromImage(case.read_channel("PET")).sum())


def test_parallel_readers_rewrite_a_stale_patient_once(autopet_ws: Workspace) -> None:
    """Four processes ask for a slice whose source changed at the same time: each gets the new
    slice, none fails on another's half-moved folder."""
    from concurrent.futures import ProcessPoolExecutor

    adapter = _slices(autopet_ws)
    first = adapter.case_ids()[0]
    patient, z = adapter.case(first).metadata["patient"], adapter.case(first).metadata["slice"]
    source = open_dataset("autopet-phantom", workspace=autopet_ws).case(patient)
    pet = source.read_channel("PET") + 1.0
    sitk.WriteImage(pet, str(source.channels["PET"]))
    expected = float(sitk.GetArrayFromImage(pet)[z].sum())
    with ProcessPoolExecutor(4) as pool:
        sums = list(pool.map(_read_pet_slice, [str(autopet_ws.root)] * 8, [first] * 8))
    assert sums == pytest.approx([expected] * 8)
    left = [p.name for p in (adapter.root / "slices").iterdir() if p.name.startswith(".")]
    assert left == []  # no temporary or stale folder left behind
