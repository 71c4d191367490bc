"""Lesion-level metrics: connected components, matching, detection counts, PQ, BraTS and autoPET.

Every metric here starts from the connected components of the prediction and of the reference
(26-connectivity in 3D and 8 in 2D unless `connectivity` says otherwise, numbered as
``scipy.ndimage.label``), labelled once per image from its foreground voxels alone (a sparse
neighbour graph, :func:`evaluator.metrics._grid.label_sparse`); all overlaps between
components come from one table of (reference component, prediction component, shared voxels) built from the voxels where
both masks are set, so no metric loops over the full volume per component.

Definitions
-----------
Matching (``match``):

* ``"any_overlap"`` (autoPET, ISLES/ATLAS lesion-wise counts): a reference lesion is a true
  positive when at least one prediction voxel lies in it, otherwise a false negative; a predicted
  component that touches no reference voxel is a false positive. One predicted blob covering two
  lesions detects both; a lesion split into three predicted pieces is one TP and no FP.
* ``"iou_0.5"`` (Kirillov et al. 2019, panoptica): a reference lesion and a predicted component
  match when their IoU is > 0.5 (strictly; decided in integers as ``2 |G∩P| > |G∪P|``). Because
  the components of one image are disjoint, each lesion has at most one such partner, so this
  matching is already one-to-one and equals the Hungarian / greedy-by-IoU matching that PQ
  defines. TP = matched pairs, FP = unmatched predicted components, FN = unmatched lesions.

Counts and ratios: ``lesion_tp``, ``lesion_fp``, ``lesion_fn`` (floats),
``lesion_precision = TP / (TP + FP)``, ``lesion_recall = TP / (TP + FN)``,
``lesion_f1 = 2 TP / (2 TP + FP + FN)``.

Panoptic quality (always ``"iou_0.5"`` matching): ``sq`` = mean IoU of the matched pairs,
``rq = TP / (TP + FP/2 + FN/2)``, ``pq = sq * rq``; ``sq`` is 0 when nothing matches.

``lesion_dice`` (BraTS 2023 lesion-wise Dice, ``rachitsaluja/BraTS-2023-Metrics``): reference
lesions whose `dilation`-fold dilations (18-neighbourhood, scipy ``generate_binary_structure(3,
2)``; its 2D analogue) touch are merged into one lesion; for each lesion, the predicted
components that intersect the lesion dilated `dilation` times are its detections and the lesion's
Dice is taken against their union; predicted components intersecting no dilated lesion are false
positives and score 0; the result is the sum of the Dice values of the lesions larger than
`min_volume_ml` divided by (their number + the number of false positives). BraTS-GLI uses
``dilation=3, min_volume_ml=0.05`` (50 mm³), BraTS-MET ``dilation=1, min_volume_ml=0.002``; the
defaults here (``dilation=0, min_volume_ml=0``) give the plain lesion-wise Dice with the
``"any_overlap"`` detection rule.

``fp_volume_ml`` / ``fn_volume_ml`` (autoPET I-IV ``false_pos_pix`` / ``false_neg_pix``):
volume of the predicted (reference) 18-connected components (8-connected in 2D) that share no
voxel with the reference (prediction), times the voxel volume ``sx * sy * sz / 1000`` ml.

Empty masks follow :data:`evaluator.metrics.registry.EDGE_CASES` (ratios: 1 if both masks are
empty, 0 if exactly one is; counts and volumes: their formula).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, get_args

import numpy as np
from scipy import ndimage

from evaluator.choices import LesionMatch
from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics._grid import (
    SparseGrid,
    bounding_box,
    check_connectivity,
    check_spacing,
    default_connectivity,
    label_sparse,
)
from evaluator.metrics.overlap import check_pair
from evaluator.metrics.registry import METRICS, edge_value
from evaluator.typing import BoolArray, Connectivity, IntArray, Spacing

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AUTOPET_CONNECTIVITY",
    "LESION_METRICS",
    "DetectionMetric",
    "LesionMatch",
    "PanopticMetric",
    "default_connectivity",
    "fn_volume_ml",
    "fp_volume_ml",
    "label_components",
    "lesion_dice",
    "lesion_f1",
    "lesion_fn",
    "lesion_fp",
    "lesion_metrics",
    "lesion_precision",
    "lesion_recall",
    "lesion_table",
    "lesion_tp",
    "pq",
    "rq",
    "sq",
]

#: Metric names computed by :func:`lesion_metrics`: the ``lesion`` family of the registry.
LESION_METRICS: tuple[str, ...] = tuple(n for n, s in METRICS.items() if s.kind == "lesion")

#: Connectivity of the autoPET false-positive/false-negative volumes (3D; 8 in 2D).
AUTOPET_CONNECTIVITY: Connectivity = 18

_MATCH_RULES: tuple[LesionMatch, ...] = get_args(LesionMatch)


def label_components(mask: Any, *, connectivity: int | None = None) -> tuple[IntArray, int]:
    """Connected components of a mask, labelled ``1..n`` as ``scipy.ndimage.label`` does.

    Components are numbered in raster (C) order of their first voxel, in 2D and 3D; only the
    foreground voxels are visited (:func:`evaluator.metrics._grid.label_sparse`).

    Parameters
    ----------
    mask : array_like
        2D ``(y, x)`` or 3D ``(z, y, x)`` mask; non-zero is foreground.
    connectivity : {4, 8} in 2D, {6, 18, 26} in 3D, optional
        Neighbourhood; default :func:`default_connectivity`.

    Returns
    -------
    labels : numpy.ndarray of unsigned int, same shape as `mask`
        0 for background.
    n : int
        Number of components (0 for an empty mask).

    Raises
    ------
    MetricInputError
        Invalid mask, or a connectivity that does not fit the number of dimensions.

    Examples
    --------
    >>> m = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    >>> label_components(m)[1], label_components(m, connectivity=4)[1]
    (1, 2)
    """
    m, _ = check_pair(mask, mask)
    conn = check_connectivity(connectivity, m.ndim)
    grid = SparseGrid.from_mask(m)
    labels, n = label_sparse(grid, conn)
    out = np.zeros(m.shape, dtype=np.uint32)
    out.ravel()[grid.unpadded_flat(grid.idx)] = labels
    return out, n


def _voxel_volume_ml(spacing: Spacing) -> float:
    # autoPET: pixdim[1] * pixdim[2] * pixdim[3] / 1000 with pixdim in (x, y, z) order; the
    # product is taken in the same order so the float64 result is bit-identical.
    return math.prod(reversed(spacing)) / 1000.0


class _Case:
    """One pred/ref pair stored sparsely (foreground voxels only), with shared labellings.

    Labellings are cached on the grids by connectivity, so several metrics of one call (and the
    CC-Metrics of the same pair, see :func:`evaluator.metrics.api.compute_metrics`) share them.
    """

    def __init__(self, grid_p: SparseGrid, grid_r: SparseGrid, spacing: Spacing, connectivity: int):
        self.grids = {"pred": grid_p, "ref": grid_r}
        self.ndim = len(grid_p.shape)
        self.spacing = spacing
        self.connectivity = connectivity
        self.voxel_ml = _voxel_volume_ml(spacing)

    def labels(self, which: Literal["pred", "ref"], connectivity: int) -> tuple[IntArray, int]:
        """Component number of each foreground voxel (sorted flat order) and their number."""
        return self.grids[which].components(connectivity)

    # Sorted flat indices (padded grid) of the foreground voxels: every per-component quantity
    # is a lookup at these indices plus a bincount, never a pass over the whole volume.
    @property
    def pred_index(self) -> IntArray:
        return self.grids["pred"].idx

    @property
    def ref_index(self) -> IntArray:
        return self.grids["ref"].idx

    @cached_property
    def both_index(self) -> IntArray:
        return np.intersect1d(self.pred_index, self.ref_index, assume_unique=True)

    def labels_at(
        self, which: Literal["pred", "ref"], connectivity: int, index: IntArray
    ) -> IntArray:
        """Component numbers at foreground voxels `index` (sorted flat indices) of `which`."""
        lab, _ = self.labels(which, connectivity)
        return lab[self.grids[which].position(index)]

    def sizes(self, which: Literal["pred", "ref"], connectivity: int) -> IntArray:
        """Voxel count per component, index 0 unused (0)."""
        lab, n = self.labels(which, connectivity)
        return np.bincount(lab, minlength=n + 1)

    @property
    def n_pred(self) -> int:
        return self.labels("pred", self.connectivity)[1]

    @property
    def n_ref(self) -> int:
        return self.labels("ref", self.connectivity)[1]

    @cached_property
    def pred_sizes(self) -> IntArray:
        return self.sizes("pred", self.connectivity)

    @cached_property
    def ref_sizes(self) -> IntArray:
        return self.sizes("ref", self.connectivity)

    @cached_property
    def pairs(self) -> tuple[IntArray, IntArray, IntArray]:
        """Overlapping component pairs: (ref id, pred id, shared voxels), sorted by ref id."""
        n_pred = self.n_pred
        r = self.labels_at("ref", self.connectivity, self.both_index)
        p = self.labels_at("pred", self.connectivity, self.both_index)
        keys, counts = np.unique(r * (n_pred + 1) + p, return_counts=True)
        return keys // (n_pred + 1), keys % (n_pred + 1), counts

    @cached_property
    def pair_iou_match(self) -> BoolArray:
        """Which pairs have IoU > 0.5 (exact integer test ``2 * inter > union``)."""
        r, p, inter = self.pairs
        union = self.ref_sizes[r] + self.pred_sizes[p] - inter
        return cast(BoolArray, 2 * inter > union)

    def detection(self, match: str) -> tuple[int, int, int]:
        """(TP, FP, FN) under the matching rule."""
        r, p, _ = self.pairs
        if match == "iou_0.5":
            tp = int(np.count_nonzero(self.pair_iou_match))
            return tp, self.n_pred - tp, self.n_ref - tp
        tp = int(np.unique(r).size)
        fp = self.n_pred - int(np.unique(p).size)
        return tp, fp, self.n_ref - tp

    def panoptic(self) -> tuple[float, float, float]:
        """(PQ, SQ, RQ) with IoU > 0.5 matching (SQ = 0 without matches)."""
        r, p, inter = self.pairs
        hit = self.pair_iou_match
        tp = int(np.count_nonzero(hit))
        fp, fn = self.n_pred - tp, self.n_ref - tp
        if tp == 0:
            return 0.0, 0.0, 0.0
        union = self.ref_sizes[r[hit]] + self.pred_sizes[p[hit]] - inter[hit]
        sq = float(np.mean(inter[hit] / union))
        rq = tp / (tp + 0.5 * fp + 0.5 * fn)
        return sq * rq, sq, rq

    def autopet_volume(self, side: Literal["fp", "fn"], connectivity: int | None) -> float:
        """autoPET FP (FN) volume: components of pred (ref) with no voxel in ref (pred), ml."""
        conn = check_connectivity(
            AUTOPET_CONNECTIVITY if connectivity is None and self.ndim == 3 else connectivity,
            self.ndim,
        )
        which: Literal["pred", "ref"] = "pred" if side == "fp" else "ref"
        _, n = self.labels(which, conn)
        if n == 0:
            return 0.0
        touched = np.zeros(n + 1, dtype=bool)
        touched[self.labels_at(which, conn, self.both_index)] = True
        sizes = self.sizes(which, conn)
        missed = int(sizes[1:][~touched[1:]].sum())
        return missed * self.voxel_ml

    def _pred_labels_in(self, region: tuple[slice, ...]) -> IntArray:
        """Prediction labels (lesion connectivity) on a box given in image coordinates."""
        lab, _ = self.labels("pred", self.connectivity)
        grid = self.grids["pred"]
        out = np.zeros(tuple(r.stop - r.start for r in region), dtype=np.int64)
        pts = grid.grid_coords(grid.idx) - np.array([r.start for r in region], dtype=np.int64)
        keep = np.all((pts >= 0) & (pts < np.array(out.shape)), axis=1)
        out[tuple(pts[keep].T)] = lab[keep]
        return out

    def brats_dice(self, dilation: int, min_volume_ml: float) -> float:
        """BraTS 2023 lesion-wise Dice (see the module docstring)."""
        n_pred = self.n_pred
        if dilation > 0:
            # Merge lesions whose dilations touch, then find detections in each dilated lesion.
            # Work on the reference's bounding box widened by `dilation` inside the image (the
            # image border stays background, as in scipy), with the prediction's labels of the
            # whole crop copied in, so predicted components keep their identity.
            ref_full = self.grids["ref"].dense()
            region = bounding_box(ref_full, margin=dilation) or ()
            pred_lab = self._pred_labels_in(region)
            pred_sizes = self.pred_sizes
            ref_crop = ref_full[region]
            structure = ndimage.generate_binary_structure(ref_crop.ndim, 2)
            grown = ndimage.binary_dilation(ref_crop, structure, iterations=dilation)
            grown_lab, n_ref = label_components(grown, connectivity=self.connectivity)
            ref_lab = np.where(ref_crop, grown_lab, 0)
            ref_idx = np.flatnonzero(ref_crop)
            ref_ids = ref_lab.ravel()[ref_idx].astype(np.int64)
            sizes = np.bincount(ref_ids, minlength=n_ref + 1)
            hit = pred_lab.ravel()[ref_idx] > 0
            inter = np.bincount(ref_ids[hit], minlength=n_ref + 1)
            detected_sets: list[IntArray] = []
            for i, lesion_box in enumerate(ndimage.find_objects(ref_lab), start=1):
                if lesion_box is None:  # pragma: no cover - labels are consecutive
                    detected_sets.append(np.zeros(0, np.int64))
                    continue
                wide = tuple(
                    slice(max(sl.start - dilation, 0), min(sl.stop + dilation, size))
                    for sl, size in zip(lesion_box, ref_lab.shape, strict=True)
                )
                zone = ndimage.binary_dilation(ref_lab[wide] == i, structure, iterations=dilation)
                found = np.unique(pred_lab[wide][zone])
                detected_sets.append(found[found > 0].astype(np.int64))
        else:
            n_ref = self.n_ref
            r, p, counts = self.pairs
            sizes = np.asarray(self.ref_sizes, dtype=np.int64)
            pred_sizes = np.asarray(self.pred_sizes, dtype=np.int64)
            inter = np.bincount(r, weights=counts, minlength=n_ref + 1).astype(np.int64)
            bounds = np.searchsorted(r, np.arange(1, n_ref + 2))
            detected_sets = [p[bounds[i] : bounds[i + 1]] for i in range(n_ref)]
        detected = np.zeros(n_pred + 1, dtype=bool)
        scores: list[float] = []
        for i, found in enumerate(detected_sets, start=1):
            detected[found] = True
            if sizes[i] * self.voxel_ml <= min_volume_ml:
                continue
            pred_voxels = int(pred_sizes[found].sum())
            scores.append(2.0 * int(inter[i]) / (int(sizes[i]) + pred_voxels))
        n_fp = n_pred - int(np.count_nonzero(detected[1:]))
        if len(scores) + n_fp == 0:
            return 1.0
        return float(np.sum(scores)) / (len(scores) + n_fp)


def _prepare(
    pred: Any, ref: Any, spacing: Sequence[float] | None, connectivity: int | None
) -> _Case:
    p, r = check_pair(pred, ref)
    sp = check_spacing((1.0,) * p.ndim if spacing is None else spacing, p.ndim)
    conn = check_connectivity(connectivity, p.ndim)
    return _Case(SparseGrid.from_mask(p), SparseGrid.from_mask(r), sp, conn)


def _check_match(match: str) -> None:
    if match not in _MATCH_RULES:
        raise MetricInputError(
            f"unknown lesion match rule {match!r} (use one of: {', '.join(_MATCH_RULES)})"
        )


def _ratio(name: str, num: float, den: float, case: _Case) -> float:
    edge = edge_value(name, case.n_pred == 0, case.n_ref == 0)
    if edge is not None:
        return edge
    return num / den if den else 0.0


def _compute(
    case: _Case,
    names: Iterable[str],
    *,
    match: str,
    dilation: int,
    min_volume_ml: float,
    volume_connectivity: int | None,
) -> dict[str, float]:
    out: dict[str, float] = {}
    tp, fp, fn = case.detection(match)
    panoptic: tuple[float, float, float] | None = None
    for name in names:
        if name == "lesion_tp":
            out[name] = float(tp)
        elif name == "lesion_fp":
            out[name] = float(fp)
        elif name == "lesion_fn":
            out[name] = float(fn)
        elif name == "lesion_precision":
            out[name] = _ratio(name, tp, tp + fp, case)
        elif name == "lesion_recall":
            out[name] = _ratio(name, tp, tp + fn, case)
        elif name == "lesion_f1":
            out[name] = _ratio(name, 2 * tp, 2 * tp + fp + fn, case)
        elif name in ("pq", "sq", "rq"):
            edge = edge_value(name, case.n_pred == 0, case.n_ref == 0)
            if edge is not None:
                out[name] = edge
                continue
            panoptic = panoptic or case.panoptic()
            out[name] = panoptic[("pq", "sq", "rq").index(name)]
        elif name == "lesion_dice":
            edge = edge_value(name, case.n_pred == 0, case.n_ref == 0)
            out[name] = edge if edge is not None else case.brats_dice(dilation, min_volume_ml)
        elif name in ("fp_volume_ml", "fn_volume_ml"):
            edge = edge_value(name, case.n_pred == 0, case.n_ref == 0)
            side: Literal["fp", "fn"] = "fp" if name == "fp_volume_ml" else "fn"
            out[name] = edge if edge is not None else case.autopet_volume(side, volume_connectivity)
        else:
            raise UnknownMetricError(
                f"unknown lesion metric {name!r} (known: {', '.join(LESION_METRICS)})"
            )
    return out


def lesion_metrics(
    pred: Any,
    ref: Any,
    *,
    spacing: Sequence[float],
    metrics: Sequence[str] = LESION_METRICS,
    connectivity: Connectivity | None = None,
    match: LesionMatch = "any_overlap",
    dilation: int = 0,
    min_volume_ml: float = 0.0,
    volume_connectivity: Connectivity | None = None,
) -> dict[str, float]:
    """Any set of lesion-level metrics of one case, sharing one labelling per image.

    Parameters
    ----------
    pred, ref : array_like
        Prediction and reference masks of equal shape, 2D ``(y, x)`` or 3D ``(z, y, x)``;
        non-zero is foreground.
    spacing : sequence of float
        Voxel size per array axis (mm); used for the volumes (ml) and `min_volume_ml`.
    metrics : sequence of str
        Names from :data:`LESION_METRICS` (default: all of them).
    connectivity : {4, 8} in 2D, {6, 18, 26} in 3D, optional
        Lesion connectivity; default 26 (3D) / 8 (2D).
    match : {"any_overlap", "iou_0.5"}
        Matching rule of ``lesion_tp/fp/fn/precision/recall/f1`` (PQ always uses IoU > 0.5).
    dilation : int
        BraTS dilation iterations for ``lesion_dice`` (0: none).
    min_volume_ml : float
        ``lesion_dice`` ignores reference lesions of at most this volume (ml).
    volume_connectivity : int, optional
        Connectivity of ``fp_volume_ml``/``fn_volume_ml``; default 18 (3D) / 8 (2D) as autoPET.

    Returns
    -------
    dict of str to float
        One value per requested metric, in the requested order. Counts are floats; ratios are
        in [0, 1]; volumes in ml. Empty masks follow the registry's EDGE_CASES rows.

    Raises
    ------
    MetricInputError
        Shape mismatch, invalid masks or spacing, bad connectivity or match rule.
    UnknownMetricError
        A name not in :data:`LESION_METRICS`.

    Examples
    --------
    >>> ref = np.zeros((1, 4, 8), bool); ref[0, 1:3, 0:2] = ref[0, 1:3, 5:7] = True
    >>> pred = np.zeros_like(ref); pred[0, 1:3, 1:3] = True
    >>> lesion_metrics(pred, ref, spacing=(2.0, 1.0, 1.0),
    ...                metrics=["lesion_tp", "lesion_fn", "lesion_f1", "fn_volume_ml"])
    {'lesion_tp': 1.0, 'lesion_fn': 1.0, 'lesion_f1': 0.6666666666666666, 'fn_volume_ml': 0.008}
    """
    _check_match(match)
    if dilation < 0:
        raise MetricInputError(f"lesion_dice dilation must be >= 0, got {dilation}")
    case = _prepare(pred, ref, spacing, connectivity)
    return _compute(
        case,
        metrics,
        match=match,
        dilation=int(dilation),
        min_volume_ml=float(min_volume_ml),
        volume_connectivity=volume_connectivity,
    )


def _lesion_on_grids(
    grid_p: SparseGrid,
    grid_r: SparseGrid,
    spacing: Spacing,
    metrics: Sequence[str],
    *,
    connectivity: int | None,
    match: str,
) -> dict[str, float]:
    """:func:`lesion_metrics` (no BraTS dilation) on validated, sparsely stored masks."""
    _check_match(match)
    conn = check_connectivity(connectivity, len(grid_p.shape))
    case = _Case(grid_p, grid_r, spacing, conn)
    return _compute(
        case, metrics, match=match, dilation=0, min_volume_ml=0.0, volume_connectivity=None
    )


def lesion_table(
    pred: Any,
    ref: Any,
    *,
    spacing: Sequence[float],
    connectivity: Connectivity | None = None,
    match: LesionMatch = "any_overlap",
) -> pd.DataFrame:
    """One row per reference lesion: size, detection and overlap with the prediction.

    Parameters
    ----------
    pred, ref, spacing, connectivity, match
        As in :func:`lesion_metrics`.

    Returns
    -------
    pandas.DataFrame
        Columns ``lesion`` (component id, 1-based in raster order of the first voxel), ``voxels``,
        ``volume_ml``, ``detected`` (bool, under `match`), ``n_pred`` (predicted components that
        overlap the lesion), ``iou`` and ``dice`` (against the union of those components; 0 when
        there are none) and ``best_iou`` (largest IoU with a single predicted component, the
        quantity that ``"iou_0.5"`` thresholds). Empty (with these columns) when the reference
        is empty.

    Examples
    --------
    >>> ref = np.zeros((4, 8), bool); ref[1:3, 0:2] = ref[1:3, 5:7] = True
    >>> pred = np.zeros_like(ref); pred[1:3, 1:3] = True
    >>> lesion_table(pred, ref, spacing=(1.0, 1.0))[["lesion", "voxels", "detected", "dice"]]
       lesion  voxels  detected  dice
    0       1       4      True   0.5
    1       2       4     False   0.0
    """
    import pandas as pd

    _check_match(match)
    case = _prepare(pred, ref, spacing, connectivity)
    n_ref = case.n_ref
    r, p, inter = case.pairs
    sizes = case.ref_sizes[1:]
    shared = np.bincount(r, weights=inter, minlength=n_ref + 1)[1:]
    pred_voxels = np.bincount(r, weights=case.pred_sizes[p], minlength=n_ref + 1)[1:]
    n_pred = np.bincount(r, minlength=n_ref + 1)[1:]
    pair_iou = inter / (case.ref_sizes[r] + case.pred_sizes[p] - inter)
    best = np.zeros(n_ref + 1)
    np.maximum.at(best, r, pair_iou)
    if match == "iou_0.5":
        detected = np.zeros(n_ref + 1, dtype=bool)
        detected[r[case.pair_iou_match]] = True
        detected = detected[1:]
    else:
        detected = n_pred > 0
    union = sizes + pred_voxels - shared
    return pd.DataFrame(
        {
            "lesion": np.arange(1, n_ref + 1, dtype=np.int64),
            "voxels": sizes.astype(np.int64),
            "volume_ml": sizes * case.voxel_ml,
            "detected": detected,
            "n_pred": n_pred.astype(np.int64),
            "iou": shared / union,
            "dice": 2.0 * shared / (sizes + pred_voxels),
            "best_iou": best[1:],
        }
    )


def _one(
    name: str,
    pred: Any,
    ref: Any,
    spacing: Sequence[float] | None,
    *,
    connectivity: int | None = None,
    match: str = "any_overlap",
    dilation: int = 0,
    min_volume_ml: float = 0.0,
    volume_connectivity: int | None = None,
) -> float:
    _check_match(match)
    case = _prepare(pred, ref, spacing, connectivity)
    values = _compute(
        case,
        [name],
        match=match,
        dilation=dilation,
        min_volume_ml=min_volume_ml,
        volume_connectivity=volume_connectivity,
    )
    return values[name]


class DetectionMetric(Protocol):
    """Signature of the thin count/ratio functions (``lesion_tp`` ... ``lesion_f1``)."""

    def __call__(
        self,
        pred: Any,
        ref: Any,
        *,
        connectivity: Connectivity | None = None,
        match: LesionMatch = "any_overlap",
    ) -> float: ...


class PanopticMetric(Protocol):
    """Signature of ``pq``, ``sq`` and ``rq`` (always IoU > 0.5 matching)."""

    def __call__(
        self, pred: Any, ref: Any, *, connectivity: Connectivity | None = None
    ) -> float: ...


def _detection(name: str, doc: str) -> DetectionMetric:
    def metric(
        pred: Any,
        ref: Any,
        *,
        connectivity: Connectivity | None = None,
        match: LesionMatch = "any_overlap",
    ) -> float:
        return _one(name, pred, ref, None, connectivity=connectivity, match=match)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc
    return metric


def _panoptic(name: str, doc: str) -> PanopticMetric:
    def metric(pred: Any, ref: Any, *, connectivity: Connectivity | None = None) -> float:
        return _one(name, pred, ref, None, connectivity=connectivity)

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc
    return metric


lesion_tp = _detection(
    "lesion_tp",
    """Number of detected reference lesions (see :func:`lesion_metrics` for `match`).

    Examples
    --------
    >>> lesion_tp(np.array([[1, 0, 0, 1]]), np.array([[1, 1, 0, 0]]))
    1.0
    """,
)
lesion_fp = _detection(
    "lesion_fp",
    """Number of predicted components matched to no reference lesion.

    Examples
    --------
    >>> lesion_fp(np.array([[1, 0, 0, 1]]), np.array([[1, 1, 0, 0]]))
    1.0
    """,
)
lesion_fn = _detection(
    "lesion_fn",
    """Number of reference lesions that are not detected.

    Examples
    --------
    >>> lesion_fn(np.array([[1, 0, 0, 0]]), np.array([[1, 0, 0, 1]]))
    1.0
    """,
)
lesion_precision = _detection(
    "lesion_precision",
    """Lesion precision ``TP / (TP + FP)``; 1 if both masks are empty, 0 if one is.

    Examples
    --------
    >>> lesion_precision(np.array([[1, 0, 0, 1]]), np.array([[1, 1, 0, 0]]))
    0.5
    """,
)
lesion_recall = _detection(
    "lesion_recall",
    """Lesion recall (sensitivity) ``TP / (TP + FN)``; 1 if both masks are empty, 0 if one is.

    Examples
    --------
    >>> lesion_recall(np.array([[1, 0, 0, 0]]), np.array([[1, 0, 0, 1]]))
    0.5
    """,
)
lesion_f1 = _detection(
    "lesion_f1",
    """Lesion F1 ``2 TP / (2 TP + FP + FN)``; 1 if both masks are empty, 0 if one is.

    Examples
    --------
    >>> lesion_f1(np.array([[1, 0, 0, 1, 0, 0]]), np.array([[1, 0, 0, 0, 0, 1]]))
    0.5
    """,
)
pq = _panoptic(
    "pq",
    """Panoptic quality ``SQ * RQ`` with IoU > 0.5 matching (Kirillov et al. 2019).

    Examples
    --------
    >>> pq(np.array([[1, 1, 0, 0]]), np.array([[1, 1, 1, 0]]))   # IoU 2/3, one TP
    0.6666666666666666
    """,
)
sq = _panoptic(
    "sq",
    """Segmentation quality: mean IoU of the pairs matched with IoU > 0.5 (0 if none).

    Examples
    --------
    >>> sq(np.array([[1, 1, 0, 0, 1]]), np.array([[1, 1, 1, 0, 0]]))
    0.6666666666666666
    """,
)
rq = _panoptic(
    "rq",
    """Recognition quality ``TP / (TP + FP/2 + FN/2)`` with IoU > 0.5 matching.

    Examples
    --------
    >>> rq(np.array([[1, 1, 0, 0, 1]]), np.array([[1, 1, 1, 0, 0]]))
    0.6666666666666666
    """,
)


def lesion_dice(
    pred: Any,
    ref: Any,
    *,
    spacing: Sequence[float],
    connectivity: Connectivity | None = None,
    dilation: int = 0,
    min_volume_ml: float = 0.0,
) -> float:
    """BraTS 2023 lesion-wise Dice (see the module docstring); 1 if both masks are empty.

    Parameters
    ----------
    pred, ref : array_like
        Masks of equal shape.
    spacing : sequence of float
        Voxel size (mm), for `min_volume_ml`.
    connectivity : int, optional
        Lesion connectivity (default 26 / 8).
    dilation : int
        Dilation iterations used to merge nearby lesions and to find their detections
        (BraTS-GLI: 3, BraTS-MET: 1; default 0).
    min_volume_ml : float
        Lesions of at most this volume are left out (BraTS-GLI: 0.05 ml).

    Examples
    --------
    >>> ref = np.array([[1, 1, 0, 0, 0, 0]]); pred = np.array([[0, 1, 0, 0, 1, 0]])
    >>> lesion_dice(pred, ref, spacing=(1.0, 1.0))   # (2/3 + 0) / (1 lesion + 1 FP)
    0.3333333333333333
    """
    if dilation < 0:
        raise MetricInputError(f"lesion_dice dilation must be >= 0, got {dilation}")
    return _one(
        "lesion_dice",
        pred,
        ref,
        spacing,
        connectivity=connectivity,
        dilation=int(dilation),
        min_volume_ml=float(min_volume_ml),
    )


def fp_volume_ml(
    pred: Any, ref: Any, *, spacing: Sequence[float], connectivity: Connectivity | None = None
) -> float:
    """autoPET false-positive volume (ml): predicted components that touch no reference voxel.

    Components are 18-connected in 3D (8 in 2D) unless `connectivity` is given.

    Examples
    --------
    >>> pred = np.array([[[1, 0, 0, 1, 1]]]); ref = np.array([[[1, 0, 0, 0, 0]]])
    >>> fp_volume_ml(pred, ref, spacing=(2.0, 1.0, 1.0))   # 2 voxels of 2 mm^3
    0.004
    """
    return _one("fp_volume_ml", pred, ref, spacing, volume_connectivity=connectivity)


def fn_volume_ml(
    pred: Any, ref: Any, *, spacing: Sequence[float], connectivity: Connectivity | None = None
) -> float:
    """autoPET false-negative volume (ml): reference components that touch no predicted voxel.

    Components are 18-connected in 3D (8 in 2D) unless `connectivity` is given.

    Examples
    --------
    >>> pred = np.array([[[1, 0, 0, 0, 0]]]); ref = np.array([[[1, 0, 0, 1, 1]]])
    >>> fn_volume_ml(pred, ref, spacing=(1.0, 1.0, 1.0))
    0.002
    """
    return _one("fn_volume_ml", pred, ref, spacing, volume_connectivity=connectivity)
