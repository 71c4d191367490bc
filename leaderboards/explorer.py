"""The disagreement explorer: where a standard metric and its CC counterpart disagree, and why.

For each ranked pair (``dice`` / ``cc_dice``, ``hd95`` / ``cc_hd95`` ...) of a board,
:func:`disagreements` lists the (entry, case) pairs where the two metrics disagree most: first by
how differently they rank the entry among all entries on that case (rank difference), then by
how far apart the values are (value difference, in the metric's unit). Each pair opens a
*case view* (:func:`write_case_view`): axial, coronal and sagittal slices through the centre
of every reference component and every false-positive component, with reference (green) and
prediction (red) contours, and the components listed with their volume (ml), centre (mm),
per-component CC scores and whether they were detected.

The numbers come from the store only (the per-component rows ``ccbench evaluate`` recorded,
:meth:`evaluator.metrics.api.ComponentInfo.fields`); the slices from the files the run recorded
(:class:`leaderboards.cases.CaseLoader`), drawn with numpy and Pillow: nothing is scored again.
The false-positive components (predicted components touching no reference voxel of the label)
are found from the prediction file by one connected-component labelling.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluator.metrics.api import COMPONENT_FIELD, ComponentInfo
from evaluator.metrics.registry import METRICS

if TYPE_CHECKING:
    import pandas as pd

    from evaluator.store import Store
    from leaderboards.board import Leaderboard
    from leaderboards.cases import CaseVolumes
    from leaderboards.data import LeaderboardData

__all__ = [
    "PLANES",
    "CaseComponents",
    "Disagreement",
    "case_components",
    "case_slug",
    "disagreements",
    "explorer_components",
    "explorer_context",
    "render_plane",
    "write_case_view",
]

#: The three planes of a case view: name -> the array axis held fixed (arrays are ``(z, y, x)``).
PLANES: dict[str, int] = {"axial": 0, "coronal": 1, "sagittal": 2}
#: Contour colours (RGB): reference, prediction, both.
REFERENCE_RGB = (0, 190, 0)
PREDICTION_RGB = (230, 0, 0)
BOTH_RGB = (240, 200, 0)
#: Outline of the component a slice is about.
SUBJECT_RGB = (0, 200, 255)
#: Side of a drawn slice, px (the longer side of the crop scaled to it, nearest neighbour).
SLICE_PX = 160
#: Components drawn per label and kind in one case view (all are listed).
MAX_DRAWN = 12
#: (entry, case) pairs listed per metric pair.
N_LISTED = 5
#: False-positive components listed per label (the largest; a speckled prediction has
#: thousands, and the page says how many there are).
MAX_FP_LISTED = 100


@dataclass(frozen=True)
class Disagreement:
    """One (entry, case) where a standard metric and its CC counterpart disagree.

    Attributes
    ----------
    standard, cc : str
        The metric pair.
    entry, case : str
        Where.
    standard_value, cc_value : float
        The case's values (mean over labels, capped at the board's worst value).
    standard_rank, cc_rank : int
        The entry's rank among all entries on this case by each metric (1 = best, ties min).
    """

    standard: str
    cc: str
    entry: str
    case: str
    standard_value: float
    cc_value: float
    standard_rank: int
    cc_rank: int

    @property
    def rank_difference(self) -> int:
        """``cc_rank - standard_rank``: positive when CC ranks the entry worse on this case."""
        return self.cc_rank - self.standard_rank

    @property
    def value_difference(self) -> float:
        """``standard_value - cc_value`` (metric units)."""
        return self.standard_value - self.cc_value


def _case_ranks(scores: pd.DataFrame, higher_is_better: bool) -> pd.DataFrame:
    """Each entry's rank on each case (rows), 1 = best, ties share the best rank; NaN stays."""
    return scores.rank(axis=1, method="min", ascending=not higher_is_better)


def disagreements(
    data: LeaderboardData, *, n: int = N_LISTED
) -> dict[tuple[str, str], list[Disagreement]]:
    """The ``n`` (entry, case) pairs where each ranked (standard, CC) pair disagrees most.

    Sorted by absolute rank difference, then absolute value difference (both descending), then
    entry and case; pairs with an undefined value (NaN) are skipped, and so are pairs that
    agree exactly (same rank and value).

    Returns
    -------
    dict
        ``(standard, cc)`` -> list of :class:`Disagreement`, for every pair of
        :func:`leaderboards.data.cc_pairs` of the board's metrics.
    """
    from leaderboards.data import cc_pairs

    found: dict[tuple[str, str], list[Disagreement]] = {}
    for standard, cc in cc_pairs(data.metrics):
        a, b = data.scores[standard], data.scores[cc].reindex_like(data.scores[standard])
        ra = _case_ranks(a, METRICS[standard].higher_is_better).to_numpy()
        rb = _case_ranks(b, METRICS[cc].higher_is_better).to_numpy()
        x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        differ = ~np.isnan(x) & ~np.isnan(y) & ((ra != rb) | (x != y))
        items = [
            Disagreement(
                standard,
                cc,
                str(a.columns[j]),
                str(a.index[i]),
                float(x[i, j]),
                float(y[i, j]),
                int(ra[i, j]),
                int(rb[i, j]),
            )
            for i, j in zip(*np.nonzero(differ), strict=True)
        ]
        items.sort(
            key=lambda d: (-abs(d.rank_difference), -abs(d.value_difference), d.entry, d.case)
        )
        found[(standard, cc)] = items[:n]
    return found


def explorer_components(data: LeaderboardData, store: Store, *, n: int = N_LISTED) -> pd.DataFrame:
    """The store's per-component rows of the (entry, case) pairs the explorer lists.

    Only those cases are read (a board of many cases and lesions holds millions of rows);
    the result goes to :attr:`~leaderboards.data.LeaderboardData.components`.
    """
    wanted = {(d.entry, d.case) for items in disagreements(data, n=n).values() for d in items}
    runs = {data.runs[entry].id: entry for entry, _ in wanted}
    if not wanted:
        return data.components
    frame = store.components_frame(
        run_ids=list(runs), case_ids=sorted({case for _, case in wanted})
    )
    frame["entry"] = frame["run_id"].map(runs)
    keep = np.array(
        [(e, c) in wanted for e, c in zip(frame["entry"], frame["case_id"], strict=True)],
        dtype=bool,
    )  # an array: an empty list would select columns
    return frame[keep].reset_index(drop=True)


def case_slug(entry: str, case: str) -> str:
    """A safe, unique file name stem for the case view of (entry, case).

    Examples
    --------
    >>> case_slug("team/a", "CASE 01")[:14]
    'CASE-01--team-'
    """

    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-.")[:32] or "x"

    digest = hashlib.sha1(f"{entry}\0{case}".encode()).hexdigest()[:8]
    return f"{clean(case)}--{clean(entry)}-{digest}"


@dataclass
class CaseComponents:
    """The store's per-component record of one (entry, case, label).

    Attributes
    ----------
    label : int
        Label value.
    infos : list of ComponentInfo
        Reference components in the store's numbering (voxels, volume, centre, detected).
    scores : dict
        CC metric -> one value per component (same order).
    """

    label: int
    infos: list[ComponentInfo] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)


def case_components(components: pd.DataFrame, entry: str, case: str) -> list[CaseComponents]:
    """The per-component rows the store holds for (entry, case), per label.

    Parameters
    ----------
    components
        :attr:`leaderboards.data.LeaderboardData.components` (the store's ``components``
        rows of the board's runs, with an ``entry`` column).

    Returns
    -------
    list of CaseComponents
        One per label with rows, by label value; empty when the run recorded none (a rejected
        prediction, or a store written before component records were kept).
    """
    rows = components[(components["entry"] == entry) & (components["case_id"] == case)]
    out = []
    for label, part in rows.groupby("label", sort=True):
        found = CaseComponents(int(label))
        fields = part[part["metric"].str.startswith(COMPONENT_FIELD)]
        by_component = fields.assign(key=fields["metric"].str.slice(len(COMPONENT_FIELD)))
        for _, one in by_component.groupby("component", sort=True):
            found.infos.append(
                ComponentInfo.from_fields(dict(zip(one["key"], one["value"], strict=True)))
            )
        values = part[~part["metric"].str.startswith(COMPONENT_FIELD)]
        for metric, one in values.groupby("metric", sort=False):
            found.scores[str(metric)] = one.sort_values("component")["value"].astype(float).tolist()
        if len(found.infos) == 0 and not found.scores:
            continue
        out.append(found)
    return out


def _boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels with a 4-neighbour outside it (its contour, one pixel wide)."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def render_plane(
    volumes: CaseVolumes,
    label: int,
    centre: Sequence[float],
    extent: Sequence[tuple[int, int]],
    plane: str,
    path: Path,
    subject: np.ndarray | None = None,
) -> tuple[int, int]:
    """Draw one slice through ``centre`` (voxel index ``z, y, x``) with both contours as PNG.

    ``subject`` (a mask of the whole volume): the component the slice is about, outlined in
    :data:`SUBJECT_RGB` over the other contours, so that it stands out from its neighbours.
    The slice is cropped to ``extent`` (per array axis, start and stop) widened by a margin,
    shown with a 1-99% intensity window, the vertical axis pointing to the patient's head for
    coronal and sagittal slices, and scaled to :data:`SLICE_PX` on its longer side with the
    voxel spacing's aspect (nearest neighbour, so contours stay one voxel wide).

    Returns
    -------
    tuple of int
        The PNG's width and height, px.
    """
    from PIL import Image

    axis = PLANES[plane]
    index = int(np.clip(round(centre[axis]), 0, volumes.image.shape[axis] - 1))
    box = []
    for a, (lo, hi) in enumerate(extent):
        if a == axis:
            continue
        size = volumes.image.shape[a]
        margin = max(12, hi - lo)
        box.append(slice(max(0, lo - margin), min(size, hi + margin)))
    take: list[Any] = [*box]
    take.insert(axis, index)
    image = volumes.image[tuple(take)]
    ref = volumes.reference[tuple(take)] == label
    pred = volumes.prediction[tuple(take)] == label
    lo_v, hi_v = np.percentile(image, (1, 99)) if image.size else (0.0, 1.0)
    grey = np.clip((image - lo_v) / (hi_v - lo_v or 1.0), 0, 1) * 255
    rgb = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    ref_edge, pred_edge = _boundary(ref), _boundary(pred)
    rgb[ref_edge] = REFERENCE_RGB
    rgb[pred_edge] = PREDICTION_RGB
    rgb[ref_edge & pred_edge] = BOTH_RGB
    if subject is not None:
        rgb[_boundary(subject[tuple(take)])] = SUBJECT_RGB
    if axis != 0:
        rgb = rgb[::-1]  # z up
    spacing = [s for a, s in enumerate(volumes.spacing) if a != axis]
    height_mm, width_mm = rgb.shape[0] * spacing[0], rgb.shape[1] * spacing[1]
    scale = SLICE_PX / max(height_mm, width_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    picture = Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, optimize=True)
    return size


def _extents(
    mask: np.ndarray, connectivity: int | None
) -> tuple[np.ndarray, list[list[tuple[int, int]]], list[int]]:
    """The components of ``mask`` as the CC-Metrics number them: their labels, each one's
    bounding box per axis, and its voxel count."""
    from scipy import ndimage

    from evaluator.metrics.lesion import label_components

    labels, count = label_components(mask, connectivity=connectivity)
    boxes = ndimage.find_objects(labels)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    extents = [[(s.start, s.stop) for s in box] for box in boxes if box is not None]
    return labels, extents, [int(v) for v in sizes]


def _fp_components(
    volumes: CaseVolumes, label: int, connectivity: int | None
) -> tuple[np.ndarray, list[tuple[int, ComponentInfo, list[tuple[int, int]]]]]:
    """Predicted components of ``label`` that touch no reference voxel of it, largest first:
    the prediction's component labels, and (label, record, bounding box) of each."""
    from scipy import ndimage

    from evaluator.metrics.lesion import label_components

    pred = volumes.prediction == label
    ref = volumes.reference == label
    labels, count = label_components(pred, connectivity=connectivity)
    if count == 0:
        return labels, []
    touching = {int(v) for v in np.unique(labels[ref & pred])}
    boxes = ndimage.find_objects(labels)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    voxel_ml = float(np.prod(volumes.spacing)) / 1000.0
    alone = [k for k in range(1, count + 1) if k not in touching and boxes[k - 1] is not None]
    centres = ndimage.center_of_mass(pred, labels, alone) if alone else []
    found = []
    for k, centre in zip(alone, centres, strict=True):
        mm = volumes.reference_image.TransformContinuousIndexToPhysicalPoint(
            [float(v) for v in centre[::-1]]
        )
        info = ComponentInfo(int(sizes[k]), int(sizes[k]) * voxel_ml, tuple(centre), False, mm)
        found.append((k, info, [(s.start, s.stop) for s in boxes[k - 1]]))
    found.sort(key=lambda item: -item[1].voxels)
    return labels, found


def _slices(
    volumes: CaseVolumes,
    label: int,
    centre: Sequence[float],
    extent: Sequence[tuple[int, int]],
    subject: np.ndarray | None,
    stem: str,
    folder: Path,
) -> list[dict[str, Any]]:
    """The three slices of one component (``img/<stem>-<plane>.png``), as the page shows them."""
    images = []
    for plane in PLANES:
        name = f"img/{stem}-{plane}.png"
        width, height = render_plane(
            volumes, label, centre, extent, plane, folder / name, subject=subject
        )
        images.append({"src": name, "plane": plane, "width": width, "height": height})
    return images


def _draw_order(infos: list[ComponentInfo], scores: dict[str, list[float]]) -> list[int]:
    """Which reference components get slices first: the missed ones, then the worst scored
    (by the first CC metric), then the rest in their numbering.

    Examples
    --------
    >>> infos = [ComponentInfo(9, 0.01, (0, 0, 0), True), ComponentInfo(1, 0.0, (1, 1, 1), False),
    ...          ComponentInfo(5, 0.0, (2, 2, 2), True)]
    >>> _draw_order(infos, {"cc_dice": [0.9, 0.0, 0.4]})
    [1, 2, 0]
    """
    metric = next((m for m in scores if m in METRICS), None)

    def badness(k: int) -> float:
        if metric is None or k >= len(scores[metric]) or math.isnan(scores[metric][k]):
            return 0.0
        value = scores[metric][k]
        return -value if METRICS[metric].higher_is_better else value

    return sorted(range(len(infos)), key=lambda k: (infos[k].detected, -badness(k), k))


def _fmt(value: float, digits: int = 3) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def _centre_text(info: ComponentInfo) -> str:
    if info.centre_mm is None:
        return "(" + ", ".join(f"{v:.0f}" for v in info.centre_index[::-1]) + ") vox"
    return "(" + ", ".join(f"{v:.1f}" for v in info.centre_mm) + ")"


def write_case_view(
    lb: Leaderboard,
    entry: str,
    case: str,
    found: Sequence[Disagreement],
    *,
    volumes: CaseVolumes | None,
    folder: Path,
) -> dict[str, Any]:
    """The context of one case view, with its slice PNGs written under ``folder/img``.

    Parameters
    ----------
    lb
        The board.
    entry, case
        The (entry, case) shown.
    found
        The disagreements that point to this case view (their values head the page).
    volumes
        The case's volumes (:meth:`leaderboards.cases.CaseLoader.load`); None: the tables only
        (the files are gone), said on the page.
    folder
        The board's ``cases`` folder.

    Returns
    -------
    dict
        Template context of ``case.html``: ``labels`` (per label: the reference component
        rows with their per-component scores and slice images, the false-positive rows) and
        ``pairs`` (the disagreements).
    """
    slug = case_slug(entry, case)
    names = lb.data.spec.labels
    connectivity = lb.data.spec.connectivity
    labels = []
    for record in case_components(lb.data.components, entry, case):
        metrics = [m for m in METRICS if m in record.scores]
        extents: list[list[tuple[int, int]]] = []
        sizes: list[int] = []
        numbered = None
        if volumes is not None:
            numbered, extents, sizes = _extents(volumes.reference == record.label, connectivity)
        consistent = sizes == [info.voxels for info in record.infos]
        drawn = set(_draw_order(record.infos, record.scores)[:MAX_DRAWN])
        rows = []
        for k, info in enumerate(record.infos):
            images = []
            if volumes is not None and k in drawn:
                extent = (
                    extents[k]
                    if consistent
                    else [(round(c), round(c) + 1) for c in info.centre_index]
                )
                subject = numbered == k + 1 if numbered is not None and consistent else None
                stem = f"{slug}-l{record.label}-c{k + 1}"
                images = _slices(
                    volumes, record.label, info.centre_index, extent, subject, stem, folder
                )
            rows.append(
                {
                    "number": k + 1,
                    "voxels": info.voxels,
                    "volume": _fmt(info.volume_ml, 3),
                    "volume_raw": info.volume_ml,
                    "centre": _centre_text(info),
                    "detected": "yes" if info.detected else "no (missed)",
                    "state": "detected" if info.detected else "missed",
                    "scores": [
                        {"raw": record.scores[m][k], "text": _fmt(record.scores[m][k])}
                        if k < len(record.scores[m])
                        else {"raw": math.nan, "text": "–"}
                        for m in metrics
                    ],
                    "images": images,
                }
            )
        fps = []
        fp_total = None
        if volumes is not None:
            fp_labels, found_fps = _fp_components(volumes, record.label, connectivity)
            fp_total = len(found_fps)
            for k, (number, info, extent) in enumerate(found_fps[:MAX_FP_LISTED]):
                images = []
                if k < MAX_DRAWN:
                    stem = f"{slug}-l{record.label}-fp{k + 1}"
                    images = _slices(
                        volumes, record.label, info.centre_index, extent, fp_labels == number,
                        stem, folder,
                    )  # fmt: skip
                fps.append(
                    {
                        "number": k + 1,
                        "voxels": info.voxels,
                        "volume": _fmt(info.volume_ml, 3),
                        "volume_raw": info.volume_ml,
                        "centre": _centre_text(info),
                        "images": images,
                    }
                )
        labels.append(
            {
                "label": record.label,
                "name": names.get(record.label, str(record.label)),
                "metrics": metrics,
                "rows": rows,
                "fps": fps,
                "drawn": volumes is not None,
                "consistent": consistent or volumes is None,
                "more": sum(not r["images"] for r in rows) + sum(not r["images"] for r in fps)
                if volumes is not None
                else 0,
                "fp_total": fp_total,
            }
        )
    pairs = [
        {
            "standard": d.standard,
            "cc": d.cc,
            "standard_value": _fmt(d.standard_value),
            "cc_value": _fmt(d.cc_value),
            "standard_rank": d.standard_rank,
            "cc_rank": d.cc_rank,
        }
        for d in found
    ]
    params = lb.data.profile.params if lb.data.profile is not None else {}
    return {
        "entry": entry,
        "case": case,
        "slug": slug,
        "labels": labels,
        "pairs": pairs,
        "n_entries": len(lb.data.entries),
        "images": volumes is not None,
        "scoring": _scoring_text(params, connectivity),
    }


def _scoring_text(params: Mapping[str, Any], connectivity: int) -> str:
    """The task profile's settings that the per-component values depend on, and the
    ``ccbench metrics`` options that reproduce them on one case.

    Examples
    --------
    >>> _scoring_text({"nsd_tolerance_mm": 2.0}, 26)
    'connectivity 26, surface tolerance 2 mm, CC distances in mm with 50 mm for a missed component; one case again: `ccbench metrics PRED REF --per-component --connectivity 26 --nsd-tolerance-mm 2`'
    """
    tolerance = float(params.get("nsd_tolerance_mm", 1.0))
    worst = float(params.get("cc_worst_distance_mm", 50.0))
    mode = str(params.get("cc_mode", "mm"))
    command = (
        f"ccbench metrics PRED REF --per-component --connectivity {connectivity} "
        f"--nsd-tolerance-mm {tolerance:g}" + (f" --mode {mode}" if mode != "mm" else "")
    )
    return (
        f"connectivity {connectivity}, surface tolerance {tolerance:g} mm, CC distances in "
        f"{mode} with {worst:g} mm for a missed component; one case again: `{command}`"
    )


def explorer_context(
    lb: Leaderboard,
    folder: Path,
    *,
    workspace: Any,
    case_views: bool,
    n: int = N_LISTED,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The explorer's section of the task page and the contexts of its case views.

    Parameters
    ----------
    lb
        The board.
    folder
        The board's folder; case views and their slices go to ``folder/cases``.
    workspace
        The workspace (opening the recorded data roots).
    case_views
        Write case views (slices of the images and the reference, component positions): only
        where the board may show images (phantom data, or the organiser's ``--show-images``).
    n
        Disagreements listed per metric pair.

    Returns
    -------
    tuple of list
        Per metric pair its rows (entry, case, values, ranks, the case view's link when there
        is one), and one context per case view (:func:`write_case_view`).
    """
    from leaderboards.cases import CaseLoader

    found = disagreements(lb.data, n=n)
    by_view: dict[tuple[str, str], list[Disagreement]] = {}
    for items in found.values():
        for d in items:
            by_view.setdefault((d.entry, d.case), []).append(d)
    views = []
    if case_views and lb.data.spec.dims == 3:
        loader = CaseLoader(lb.data, workspace)
        for (entry, case), items in by_view.items():
            views.append(
                write_case_view(
                    lb,
                    entry,
                    case,
                    items,
                    volumes=loader.load(entry, case),
                    folder=folder / "cases",
                )
            )
    linked = {(v["entry"], v["case"]): f"cases/{v['slug']}.html" for v in views}
    sections = []
    for (standard, cc), items in found.items():
        unit = METRICS[standard].unit
        sections.append(
            {
                "standard": standard,
                "cc": cc,
                "unit": unit if unit in ("mm", "ml") else "",
                "rows": [
                    {
                        "entry": d.entry,
                        "case": d.case,
                        "standard": _fmt(d.standard_value),
                        "standard_raw": d.standard_value,
                        "cc": _fmt(d.cc_value),
                        "cc_raw": d.cc_value,
                        "standard_rank": d.standard_rank,
                        "cc_rank": d.cc_rank,
                        "rank_difference": f"{d.rank_difference:+d}",
                        "rank_difference_raw": d.rank_difference,
                        "value_difference": _fmt(d.value_difference),
                        "value_difference_raw": d.value_difference,
                        "href": linked.get((d.entry, d.case)),
                    }
                    for d in items
                ],
            }
        )
    return sections, views
