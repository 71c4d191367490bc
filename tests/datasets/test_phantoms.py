"""The phantom datasets: layouts read with plain SimpleITK/nibabel/csv/json, and their content.

Each task is written once per module (default cases, seed 0) and inspected from the files only.
Reading through the adapters is covered by ``test_adapters_on_phantoms.py``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import cc3d
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.stats import mannwhitneyu
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.datasets.phantoms import MARKER, PhantomResult, phantom_tasks, write_phantoms
from evaluator.datasets.registry import load_registry
from evaluator.errors import CCBenchError
from evaluator.workspace import Workspace

Written = tuple[PhantomResult, Path]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Written]:
    """Write a task once per module (default cases, small, seed 0)."""
    cache: dict[str, Written] = {}

    def get(task: str) -> Written:
        if task not in cache:
            root = tmp_path_factory.mktemp(task)
            result = write_phantoms(task, workspace=Workspace(root), seed=0)
            cache[task] = (result, result.out)
        return cache[task]

    return get


def read(path: Path) -> tuple[sitk.Image, np.ndarray]:
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def auc(values: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``values`` separating ``positive`` from the rest."""
    u = mannwhitneyu(values[positive], values[~positive]).statistic
    return float(u / (positive.sum() * (~positive).sum()))


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---- AutoPET ----------------------------------------------------------------------------------


def autopet_studies(root: Path) -> list[Path]:
    return sorted(p for p in (root / "FDG-PET-CT-Lesions").glob("*/*") if p.is_dir())


def test_autopet_layout_and_headers(written: Callable[[str], Written]) -> None:
    result, root = written("autopet")
    assert root == Workspace(root.parent.parent).phantoms / "autopet"  # the registry root
    studies = autopet_studies(root)
    assert len(studies) == result.cases == 12
    for study in studies:
        ct, ct_arr = read(study / "CTres.nii.gz")
        pet, pet_arr = read(study / "SUV.nii.gz")
        seg, seg_arr = read(study / "SEG.nii.gz")
        assert ct.GetSize() == pet.GetSize() == seg.GetSize() == (96, 96, 80)
        for image in (ct, pet, seg):
            assert image.GetSpacing() == pytest.approx((2.0364, 2.0364, 2.0))
            assert image.GetOrigin() == pytest.approx(ct.GetOrigin())
            assert image.GetDirection() == pytest.approx(np.eye(3).ravel())
        assert (ct_arr.dtype, pet_arr.dtype, seg_arr.dtype) == (np.int16, np.float32, np.uint8)
        assert set(np.unique(seg_arr)) <= {0, 1}
        assert ct_arr.min() >= -1024 and pet_arr.min() >= 0
        # nibabel reads the same header: a NIfTI-1 file, zooms in (x, y, z) order
        header = nib.load(study / "SEG.nii.gz").header
        assert isinstance(header, nib.Nifti1Header)
        assert header.get_zooms() == pytest.approx((2.0364, 2.0364, 2.0))


def test_autopet_metadata_matches_studies(written: Callable[[str], Written]) -> None:
    _, root = written("autopet")
    with (root / "Metadata.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"Subject ID", "Study UID", "diagnosis", "sex", "age", "File Location"} <= set(rows[0])
    by_study: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        patient, study = row["File Location"].split("/")[2:4]
        by_study.setdefault(f"{patient}/{study}", []).append(row)
    assert all(sorted(r["Modality"] for r in v) == ["CT", "PT", "SEG"] for v in by_study.values())
    studies = autopet_studies(root)
    assert sorted(by_study) == sorted(f"{s.parent.name}/{s.name}" for s in studies)
    diagnoses = set()
    for study in studies:
        row = by_study[f"{study.parent.name}/{study.name}"][0]
        empty = not read(study / "SEG.nii.gz")[1].any()
        assert (row["diagnosis"] == "NEGATIVE") == empty, study
        assert row["sex"] in {"M", "F"} and row["Subject ID"] == study.parent.name
        diagnoses.add(row["diagnosis"])
    assert diagnoses == {"NEGATIVE", "MELANOMA", "LYMPHOMA", "LUNG_CANCER"}
    assert len({s.parent.name for s in studies}) < len(studies)  # some patient has two studies


def test_autopet_lesion_counts_volumes_and_touching(written: Callable[[str], Written]) -> None:
    result, root = written("autopet")
    counts, volumes_ml, near_pairs = [], [], 0
    for study in autopet_studies(root):
        seg, arr = read(study / "SEG.nii.gz")
        labels, n = cc3d.connected_components(arr, connectivity=26, return_N=True)
        counts.append(n)
        if n == 0:
            continue
        voxel_ml = float(np.prod(seg.GetSpacing())) / 1000
        volumes_ml += [c * voxel_ml for c in cc3d.statistics(labels)["voxel_counts"][1:]]
        # components that nearly merge: within 2 voxels of another component
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            grown = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in sl)
            around = ndimage.binary_dilation(labels[grown] == k, iterations=2)
            near_pairs += int(np.any((labels[grown] != k) & (labels[grown] > 0) & around))
    assert 0 in counts and max(counts) >= 40
    assert max(volumes_ml) / min(volumes_ml) >= 1000  # three orders of magnitude
    # touching lesions merge: fewer components than placed lesions, and some nearly merge
    assert sum(counts) < result.objects
    assert near_pairs >= 2


def test_autopet_pet_shows_lesions_ct_barely(written: Callable[[str], Written]) -> None:
    _, root = written("autopet")
    ct_vals, pet_vals, lesion = [], [], []
    for study in autopet_studies(root):
        ct = read(study / "CTres.nii.gz")[1]
        pet = read(study / "SUV.nii.gz")[1]
        seg = read(study / "SEG.nii.gz")[1] > 0
        body = ct > -500
        ct_vals.append(ct[body])
        pet_vals.append(pet[body])
        lesion.append(seg[body])
        if seg.any():
            # background: the typical tissue (median; brain and bladder are hotter)
            assert pet[seg].mean() > 1.5 * np.median(pet[body & ~seg]), study
    ct_all, pet_all, pos = np.concatenate(ct_vals), np.concatenate(pet_vals), np.concatenate(lesion)
    assert auc(pet_all, pos) > 0.85
    assert abs(auc(ct_all.astype(np.float64), pos) - 0.5) < 0.25
    # physiological uptake (brain, bladder, heart) keeps a PET threshold from giving the label
    dice = [
        2 * (pet_all > t)[pos].sum() / ((pet_all > t).sum() + pos.sum())
        for t in np.linspace(1.0, 10.0, 37)
    ]
    assert max(dice) < 0.7
    assert pet_all.max() > 8.0  # brain/bladder are hotter than most lesions


# ---- HECKTOR ----------------------------------------------------------------------------------


def test_hecktor_layout_grids_and_table(written: Callable[[str], Written]) -> None:
    result, root = written("hecktor")
    labels = sorted((root / "labelsTr").glob("*.nii.gz"))
    assert len(labels) == result.cases == 10
    with (root / "hecktor2022_patient_info.csv").open(newline="") as handle:
        rows = {r["PatientID"]: r for r in csv.DictReader(handle)}
    names = [p.name.removesuffix(".nii.gz") for p in labels]
    assert sorted(rows) == names
    assert len({n.split("-")[0] for n in names}) >= 5  # several centres
    for name in names:
        ct, _ = read(root / "imagesTr" / f"{name}__CT.nii.gz")
        pt, pt_arr = read(root / "imagesTr" / f"{name}__PT.nii.gz")
        label, arr = read(root / "labelsTr" / f"{name}.nii.gz")
        assert ct.GetSpacing() == pytest.approx((0.977, 0.977, 3.0))
        assert pt.GetSpacing() == pytest.approx((4.0, 4.0, 3.0))
        assert label.GetSize() == ct.GetSize() and label.GetOrigin() == ct.GetOrigin()
        assert set(np.unique(arr)) <= {0, 1, 2} and pt_arr.dtype == np.float32
        # PET: another origin (off the CT grid) and an extent that covers the CT
        offset = np.subtract(ct.GetOrigin(), pt.GetOrigin())
        assert np.all(offset > 0) and not np.allclose(offset % 3.0, 0)
        far_ct = np.add(ct.GetOrigin(), np.multiply(ct.GetSize(), ct.GetSpacing()))
        far_pt = np.add(pt.GetOrigin(), np.multiply(pt.GetSize(), pt.GetSpacing()))
        assert np.all(far_pt > far_ct)
        assert rows[name]["Gender"] in {"M", "F"} and rows[name]["CenterID"].isdigit()


def test_hecktor_primaries_nodes_and_uptake(written: Callable[[str], Written]) -> None:
    _, root = written("hecktor")
    both, many_nodes, touching = 0, 0, 0
    ct_vals, pet_vals, lesion = [], [], []
    for path in sorted((root / "labelsTr").glob("*.nii.gz")):
        name = path.name.removesuffix(".nii.gz")
        _, arr = read(path)
        n_nodes = cc3d.connected_components(arr == 2, connectivity=26, return_N=True)[1]
        both += int((arr == 1).any() and n_nodes > 0)
        many_nodes += int(n_nodes >= 3)
        touching += int(((arr == 1) & ndimage.binary_dilation(arr == 2, iterations=2)).any())
        ct, ct_arr = read(root / "imagesTr" / f"{name}__CT.nii.gz")
        pt, _ = read(root / "imagesTr" / f"{name}__PT.nii.gz")
        pet = sitk.GetArrayFromImage(sitk.Resample(pt, ct, sitk.Transform(), sitk.sitkLinear))
        body = ct_arr > -500
        if arr.any():
            assert pet[arr > 0].mean() > 1.5 * np.median(pet[body & (arr == 0)]), name
        ct_vals.append(ct_arr[body].astype(np.float64))
        pet_vals.append(pet[body])
        lesion.append(arr[body] > 0)
    assert both >= 3 and many_nodes >= 1 and touching >= 1
    pos = np.concatenate(lesion)
    assert auc(np.concatenate(pet_vals), pos) > 0.75
    assert abs(auc(np.concatenate(ct_vals), pos) - 0.5) < 0.25


# ---- BTCV -------------------------------------------------------------------------------------


def test_btcv_all_organs_plausible(written: Callable[[str], Written]) -> None:
    result, root = written("btcv")
    organs = load_registry().task("btcv").labels
    labels = sorted((root / "label").glob("label*.nii.gz"))
    assert len(labels) == result.cases == 8
    for path in labels:
        label, arr = read(path)
        ct, ct_arr = read(root / "img" / path.name.replace("label", "img"))
        assert ct.GetSize() == label.GetSize() and ct.GetSpacing() == label.GetSpacing()
        assert ct_arr.dtype == np.int16 and arr.dtype == np.uint8
        assert set(np.unique(arr)) == {0, *organs}, path.name
        ml = np.bincount(arr.ravel(), minlength=14) * np.prod(label.GetSpacing()) / 1000
        assert 600 < ml[6] < 2500  # liver, the largest organ
        assert ml[6] == ml[1:].max() and ml[12] < 15 and ml[13] < 15  # adrenals: a few ml
        assert 40 < ml[2] < 250 and 40 < ml[3] < 250  # kidneys
        # contrast-enhanced: aorta brighter than liver, liver brighter than gallbladder
        mean = {k: ct_arr[arr == k].mean() for k in (4, 6, 8)}
        assert mean[8] > mean[6] + 50 > mean[4] + 50
        # patient right (liver, right kidney) at smaller x than the left side (LPS)
        x = {k: np.argwhere(arr == k)[:, 2].mean() for k in (1, 2, 3, 6)}
        assert x[6] < x[1] and x[2] < x[3]


def test_btcv_json_split(written: Callable[[str], Written]) -> None:
    _, root = written("btcv")
    doc = json.loads((root / "dataset_0.json").read_text())
    train = [e["image"] for e in doc["training"]]
    val = [e["image"] for e in doc["validation"]]
    assert len(val) == 2 and not set(train) & set(val)
    assert sorted(train + val) == sorted(f"img/{p.name}" for p in (root / "img").iterdir())
    assert all((root / e["label"]).is_file() for e in doc["training"] + doc["validation"])
    assert doc["labels"]["13"] == "left adrenal gland"


# ---- ChestXDet --------------------------------------------------------------------------------


def polygon_mask(polygon: list[list[int]], size: int = 1024) -> np.ndarray:
    canvas = Image.new("1", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon], fill=1)
    return np.asarray(canvas, dtype=bool)


def test_chestxdet_images_and_annotations(written: Callable[[str], Written]) -> None:
    result, root = written("chestxdet")
    classes = set(load_registry().task("chestxdet").labels.values())
    entries = []
    for subset in ("train", "test"):
        listed = json.loads((root / f"ChestX_Det_{subset}.json").read_text())
        assert sorted(e["file_name"] for e in listed) == sorted(
            p.name for p in (root / subset).glob("*.png")
        )
        entries += [(subset, e) for e in listed]
    assert len(entries) == result.cases == 16
    assert {s for s, _ in entries} == {"train", "test"}
    used, overlaps, negatives = set(), 0, 0
    for subset, entry in entries:
        with Image.open(root / subset / entry["file_name"]) as image:
            assert image.mode == "L" and image.size == (1024, 1024)
            pixels = np.asarray(image)
        # chest-like: dark lungs either side of the bright mediastinum and spine
        lungs = (pixels[400:540, 280:380].mean() + pixels[400:540, 660:740].mean()) / 2
        assert lungs < pixels[400:540, 490:540].mean() - 30 and pixels.std() > 20
        assert len(entry["syms"]) == len(entry["boxes"]) == len(entry["polygons"])
        negatives += int(not entry["syms"])
        masks = []
        for name, box, polygon in zip(
            entry["syms"], entry["boxes"], entry["polygons"], strict=True
        ):
            assert name in classes
            used.add(name)
            xy = np.asarray(polygon)
            assert xy.ndim == 2 and xy.shape[1] == 2 and len(xy) >= 3
            assert xy.min() >= 0 and xy.max() <= 1023
            assert box == [xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()]
            masks.append(polygon_mask(polygon))
            assert masks[-1].any()
        overlaps += sum(
            int((masks[i] & masks[j]).any()) for i in range(len(masks)) for j in range(i)
        )
    assert negatives >= 1 and overlaps >= 3 and len(used) >= 8


def test_chestxdet_findings_change_the_image(written: Callable[[str], Written]) -> None:
    """Bright findings (nodule, mass, consolidation) are brighter than the lung around them."""
    _, root = written("chestxdet")
    diffs = []
    for subset in ("train", "test"):
        for entry in json.loads((root / f"ChestX_Det_{subset}.json").read_text()):
            pixels = np.asarray(Image.open(root / subset / entry["file_name"]), dtype=float)
            for name, polygon in zip(entry["syms"], entry["polygons"], strict=True):
                if name in {"Nodule", "Mass", "Consolidation"}:
                    mask = polygon_mask(polygon)
                    ring = ndimage.binary_dilation(mask, iterations=15) & ~mask
                    diffs.append(pixels[mask].mean() - pixels[ring].mean())
    assert len(diffs) >= 3 and np.median(diffs) > 5


# ---- determinism, sizes, CLI ----------------------------------------------------------------


@pytest.mark.parametrize("task", phantom_tasks())
def test_same_seed_same_bytes_and_cases_independent(
    task: str, tmp_path: Path, written: Callable[[str], Written]
) -> None:
    ws = Workspace(tmp_path)
    a = write_phantoms(task, workspace=ws, cases=2, seed=0, out=tmp_path / "a")
    b = write_phantoms(task, workspace=ws, cases=2, seed=0, out=tmp_path / "b")
    c = write_phantoms(task, workspace=ws, cases=2, seed=1, out=tmp_path / "c")
    hashes = file_hashes(a.out)
    assert hashes == file_hashes(b.out)
    assert len(hashes) >= 3
    images = {k: v for k, v in hashes.items() if k.endswith((".nii.gz", ".png"))}
    # another seed gives other images (labels of negative cases may coincide: all zero)
    scans = {v for k, v in images.items() if not Path(k).name.startswith(("SEG", "label"))}
    scans -= {v for k, v in images.items() if k.startswith("labelsTr")}
    assert scans and scans.isdisjoint(file_hashes(c.out).values())
    # case i does not depend on how many cases are written: the 2-case images equal the
    # first two cases of the default-size run
    _, full_root = written(task)
    full = file_hashes(full_root)
    assert all(full.get(k) == v for k, v in images.items())


def test_custom_size_and_errors(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    res = write_phantoms("hecktor-phantom", workspace=ws, cases=1, size="64x48x20")
    assert res.out == tmp_path / "phantoms" / "hecktor"
    ct, _ = read(next((res.out / "imagesTr").glob("*__CT.nii.gz")))
    assert ct.GetSize() == (64, 48, 20) == res.size
    with pytest.raises(CCBenchError, match="no phantom generator"):
        write_phantoms("nnunet", workspace=ws)
    with pytest.raises(CCBenchError, match="at least 1"):
        write_phantoms("btcv", workspace=ws, cases=0)


def test_rerun_replaces_own_files_but_never_real_data(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    out = tmp_path / "btcv"
    write_phantoms("btcv", workspace=ws, cases=3, size="32x32x16", out=out)
    (out / "notes.txt").write_text("kept")
    write_phantoms("btcv", workspace=ws, cases=2, size="32x32x16", out=out)
    assert sorted(p.name for p in (out / "img").iterdir()) == ["img0001.nii.gz", "img0002.nii.gz"]
    assert (out / "notes.txt").read_text() == "kept"
    assert json.loads((out / MARKER).read_text())["cases"] == 2
    real = tmp_path / "real"
    (real / "img").mkdir(parents=True)
    (real / "img" / "img0001.nii.gz").write_bytes(b"real data")
    with pytest.raises(CCBenchError, match="not written by"):
        write_phantoms("btcv", workspace=ws, cases=1, out=real)
    assert (real / "img" / "img0001.nii.gz").read_bytes() == b"real data"


def test_cli_writes_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "btcv"
    run = CliRunner().invoke(
        app,
        [
            "data",
            "phantoms",
            "--task",
            "btcv",
            "--cases",
            "2",
            "--size",
            "48x48x24",
            "--seed",
            "3",
            "--out",
            str(out),
            "--workspace",
            str(tmp_path / "ws"),
        ],
    )
    assert run.exit_code == 0, run.output
    assert "Phantom datasets" in run.output and "btcv" in run.output
    assert len(list((out / "img").glob("*.nii.gz"))) == 2
    bad = CliRunner().invoke(
        app, ["data", "phantoms", "--task", "btcv", "--size", "big", "-w", str(tmp_path / "ws")]
    )
    assert bad.exit_code == 1 and "phantom size" in bad.output
