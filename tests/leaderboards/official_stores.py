"""Results stores of HECKTOR, BTCV and ChestXDet entries of known quality, scored by ccbench.

Each builder writes a tiny dataset in the task's real on-disk layout, predictions for a few
entries, and scores them with :func:`evaluator.evaluate.evaluate_run` into the workspace's
SQLite store. The arrays are kept, so tests can recompute official scores from them directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from evaluator.workspace import Workspace
from tests.evaluate.conftest import ball, degrade, hecktor_reference, write_label

#: HECKTOR cases on different grids (SimpleITK order x, y, z; mm): DSCagg weights by mm³.
HECKTOR_SPACINGS = [(1.0, 1.0, 2.0), (2.0, 2.0, 2.0), (0.98, 0.98, 3.27), (1.0, 1.0, 1.0)]
BTCV_SHAPE = (10, 18, 18)


@dataclass
class Board:
    """A workspace with a scored store, the task's data root and every array written.

    ``refs``: case -> reference; ``preds``: entry -> case -> prediction (a case absent from an
    entry's dict has no prediction file); ``spacing``: case -> (x, y, z) mm.
    """

    workspace: Workspace
    task: str
    data_root: Path
    refs: dict[str, np.ndarray]
    preds: dict[str, dict[str, np.ndarray]]
    spacing: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def voxel_mm3(self, case: str) -> float:
        return float(np.prod(self.spacing[case]))


def _score(board: Board, entry: str, folder: Path, **kwargs: object) -> None:
    from evaluator.evaluate import evaluate_run

    evaluate_run(
        board.task,
        "all",
        folder,
        workspace=board.workspace,
        data_root=board.data_root,
        workers=1,
        entry=entry,
        run_name=f"{board.task}-{entry}",
        **kwargs,  # type: ignore[arg-type]
    )


def hecktor_board(root: Path) -> Board:
    """Four HECKTOR cases on four grids; entries perfect, degraded, no-nodes, missing.

    ``no-nodes`` never predicts GTVn (HD95 of GTVn is inf on every case with nodes);
    ``missing`` is ``degraded`` without a prediction for CHUM-002 (worst values, inf HD95).
    """
    ws = Workspace(root / "ws").ensure()
    board = Board(ws, "hecktor", root / "hecktor", {}, {})
    for i, spacing in enumerate(HECKTOR_SPACINGS):
        cid = f"CHUM-{i + 1:03d}"
        board.refs[cid] = hecktor_reference(i)
        board.spacing[cid] = spacing
        write_label(
            board.data_root / "labelsTr" / f"{cid}.nii.gz", board.refs[cid], spacing=spacing
        )
    for entry in ("perfect", "degraded", "no-nodes", "missing"):
        preds: dict[str, np.ndarray] = {}
        for i, (cid, ref) in enumerate(board.refs.items()):
            if entry == "perfect":
                preds[cid] = ref.copy()
            elif entry == "no-nodes":
                preds[cid] = np.where(ref == 2, 0, ref).astype(np.uint8)
            elif entry == "missing" and cid == "CHUM-002":
                continue
            else:
                preds[cid] = degrade(ref, i)
        folder = root / "preds" / entry
        for cid, arr in preds.items():
            write_label(folder / f"{cid}.nii.gz", arr, spacing=board.spacing[cid])
        board.preds[entry] = preds
        _score(board, entry, folder)
    return board


def btcv_reference(i: int) -> np.ndarray:
    """Liver (6) and spleen (1) in a BTCV-shaped volume; the other 11 organs absent."""
    ref = np.zeros(BTCV_SHAPE, dtype=np.uint8)
    ref[ball(BTCV_SHAPE, (5, 8, 5 + i), 3)] = 6
    ref[ball(BTCV_SHAPE, (4, 8, 14), 2)] = 1
    return ref


def write_btcv_case(board: Board, cid: str, ref: np.ndarray) -> None:
    board.refs[cid] = ref
    board.spacing[cid] = (1.0, 1.0, 2.0)
    write_label(board.data_root / "label" / f"label{cid}.nii.gz", ref)
    write_label(board.data_root / "img" / f"img{cid}.nii.gz", np.zeros(BTCV_SHAPE, dtype=np.int16))


def btcv_prediction(entry: str, ref: np.ndarray) -> np.ndarray:
    """``perfect`` / ``missing-case``: the reference; ``shifted``: the liver moved by one voxel;
    ``no-spleen``: the spleen left out (its HD95 and ASSD are inf)."""
    if entry == "shifted":
        pred = np.where(ref == 6, 0, ref).astype(np.uint8)
        pred[np.roll(ref == 6, 1, axis=2) & (pred == 0)] = 6
        return pred
    if entry == "no-spleen":
        return np.where(ref == 1, 0, ref).astype(np.uint8)
    return ref.copy()


BTCV_ENTRIES = ("perfect", "shifted", "no-spleen", "missing-case")


def btcv_board(
    root: Path,
    *,
    entries: tuple[str, ...] = BTCV_ENTRIES,
    manifests: dict[str, dict[str, str]] | None = None,
) -> Board:
    """Three BTCV cases; ``missing-case`` has no prediction for case 0002."""
    ws = Workspace(root / "ws").ensure()
    board = Board(ws, "btcv", root / "btcv", {}, {})
    for i in range(3):
        write_btcv_case(board, f"000{i + 1}", btcv_reference(i))
    for entry in entries:
        score_btcv_entry(
            board, entry, root / "preds" / entry, manifest=(manifests or {}).get(entry)
        )
    return board


def score_btcv_entry(
    board: Board,
    entry: str,
    folder: Path,
    *,
    kind: str | None = None,
    manifest: dict[str, str] | None = None,
) -> None:
    """Write the predictions of ``entry`` (of kind ``kind``, default its name) and score them."""
    kind = kind or entry
    preds = {
        cid: btcv_prediction(kind, ref)
        for cid, ref in board.refs.items()
        if not (kind == "missing-case" and cid == "0002")
    }
    for cid, arr in preds.items():
        write_label(folder / f"{cid}.nii.gz", arr)
    board.preds[entry] = preds
    extra = {} if manifest is None else {"entry_manifest": manifest}
    _score(board, entry, folder, **extra)


#: ChestXDet images -> [(class, polygon)]; Effusion = 6, Nodule = 11, Mass = 10.
CHEST_SIZE = 64
CHEST_GT = {
    "100": [("Effusion", [[4, 4], [30, 4], [30, 20], [4, 20]]), ("Nodule", [[40, 40], [50, 40], [50, 50], [40, 50]])],
    "200": [("Effusion", [[10, 30], [40, 30], [40, 60], [10, 60]]), ("Mass", [[44, 4], [60, 4], [60, 20], [44, 20]])],
}  # fmt: skip
_CHEST_IDS = {"Effusion": 6, "Nodule": 11, "Mass": 10}
#: Entry -> the ground-truth instances it leaves out; its COCO mAP over the three classes with
#: ground truth (Effusion, Nodule, Mass) is 1, 2/3 and 1/3.
CHEST_DROPS = {
    "all": set(),
    "no-mass": {("200", "Mass")},
    "no-mass-no-nodule": {("200", "Mass"), ("100", "Nodule")},
}
CHEST_MAP = {"all": 1.0, "no-mass": 2 / 3, "no-mass-no-nodule": 1 / 3}


def _polygon_mask(poly: list[list[int]]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    rle = mask_utils.frPyObjects([[float(c) for xy in poly for c in xy]], CHEST_SIZE, CHEST_SIZE)
    return np.asarray(mask_utils.decode(mask_utils.merge(rle)), dtype=bool)


def chestxdet_board(root: Path) -> Board:
    """Two ChestXDet images with three classes; entries ``all``, ``no-mass``,
    ``no-mass-no-nodule`` as COCO results JSON (RLE masks)."""
    from pycocotools import mask as mask_utils

    ws = Workspace(root / "ws").ensure()
    board = Board(ws, "chestxdet", root / "chestxdet", {}, {})
    (board.data_root / "test").mkdir(parents=True)
    annotations = []
    for name, instances in CHEST_GT.items():
        img = sitk.GetImageFromArray(np.zeros((CHEST_SIZE, CHEST_SIZE), dtype=np.uint8))
        sitk.WriteImage(img, str(board.data_root / "test" / f"{name}.png"))
        annotations.append(
            {
                "file_name": f"{name}.png",
                "syms": [c for c, _ in instances],
                "boxes": [
                    [
                        min(p[0] for p in poly),
                        min(p[1] for p in poly),
                        max(p[0] for p in poly),
                        max(p[1] for p in poly),
                    ]
                    for _, poly in instances
                ],
                "polygons": [poly for _, poly in instances],
            }
        )
    (board.data_root / "ChestX_Det_test.json").write_text(json.dumps(annotations))
    for entry, drop in CHEST_DROPS.items():
        results = []
        for name, instances in CHEST_GT.items():
            for cls, poly in instances:
                if (name, cls) in drop:
                    continue
                rle = mask_utils.encode(np.asfortranarray(_polygon_mask(poly).astype(np.uint8)))
                rle["counts"] = rle["counts"].decode("ascii")
                results.append(
                    {
                        "image_id": name,
                        "category_id": _CHEST_IDS[cls],
                        "segmentation": rle,
                        "score": 0.9,
                    }
                )
        pred = root / "preds" / f"{entry}.json"
        pred.parent.mkdir(parents=True, exist_ok=True)
        pred.write_text(json.dumps(results))
        _score(board, entry, pred)
    return board
