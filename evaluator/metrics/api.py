"""Any set of metrics for one case in one call, sharing work between metrics.

:func:`compute_metrics` takes two label maps and a spacing, finds the foreground voxels of each map in
one pass, splits them into one sparse mask pair per label (``pred == label``, ``ref == label``,
stored as sorted voxel indices; no further pass over the volume), and computes every requested
metric from shared intermediate results: one TP/FP/FN count for the overlap metrics, one
surface-distance computation for HD/HD95/ASSD/NSD, one skeleton per mask for clDice and the
topology precision and sensitivity, one connected-component labelling per image
and connectivity shared by the lesion metrics and the CC-Metrics, and one CC-Metrics pass
(:func:`evaluator.metrics.cc.cc_metrics`' core). Every value equals a direct call of
the metric's own function on the full masks (edge cases included).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np

from evaluator.choices import CCMode, LesionMatch
from evaluator.errors import MetricInputError, UnknownMetricError
from evaluator.metrics._grid import SparseGrid, check_spacing, image_diagonal_mm
from evaluator.metrics.overlap import OverlapCounts, overlap_value
from evaluator.metrics.registry import METRICS
from evaluator.metrics.surface import BOUNDARY_DILATION_RATIO, _surface_values
from evaluator.typing import Connectivity, IntArray, LabelArray, Spacing

__all__ = [
    "COMPONENT_FIELD",
    "CaseMetrics",
    "ComponentInfo",
    "check_label_map",
    "compute_metrics",
    "present_labels",
    "resolve_metrics",
]

_LESION_MATCHES: tuple[LesionMatch, ...] = get_args(LesionMatch)
_CC_MODES: tuple[CCMode, ...] = get_args(CCMode)


#: Prefix of the ``components`` rows that describe a component itself rather than a metric
#: value of it (:meth:`ComponentInfo.fields`): ``component:voxels``, ``component:detected`` ...
COMPONENT_FIELD = "component:"


@dataclass(frozen=True)
class ComponentInfo:
    """One reference connected component of a case: its size, where it is, whether it was found.

    Attributes
    ----------
    voxels : int
        Voxel count.
    volume_ml : float
        Volume, ml (voxel count x voxel volume; in 2D the area in mm² / 1000).
    centre_index : tuple of float
        Centre of mass as a (fractional) voxel index, array order ``(z, y, x)``.
    detected : bool
        Whether the prediction has voxels in the component's region (otherwise its CC-Metrics
        take their worst values).
    centre_mm : tuple of float, optional
        Centre of mass in the image's physical space, ``(x, y, z)`` mm, as a viewer shows it;
        set when the image geometry is known (:func:`evaluator.metrics.files.score_files`).
    """

    voxels: int
    volume_ml: float
    centre_index: tuple[float, ...]
    detected: bool
    centre_mm: tuple[float, ...] | None = None

    def fields(self) -> dict[str, float]:
        """The numbers the results store keeps of the component, by field name.

        Stored as rows of the ``components`` table whose metric is :data:`COMPONENT_FIELD`
        + field (``component:voxels``, ``component:centre_x_mm`` ...); positions per axis
        ``x, y, z`` (voxel index ``index_*``, physical ``centre_*_mm`` when known).

        Examples
        --------
        >>> info = ComponentInfo(4, 0.004, (1.0, 2.5), True, (10.0, 20.0))
        >>> ComponentInfo.from_fields(info.fields()) == info
        True
        """
        out = {
            "voxels": float(self.voxels),
            "volume_ml": float(self.volume_ml),
            "detected": float(self.detected),
        }
        for axis, value in zip("xyz", self.centre_index[::-1], strict=False):
            out[f"index_{axis}"] = float(value)
        for axis, value in zip("xyz", self.centre_mm or (), strict=False):
            out[f"centre_{axis}_mm"] = float(value)
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[str, float]) -> ComponentInfo:
        """The component from :meth:`fields` (as read back from the store)."""
        index = [fields[f"index_{a}"] for a in "xyz" if f"index_{a}" in fields]
        mm = [fields[f"centre_{a}_mm"] for a in "xyz" if f"centre_{a}_mm" in fields]
        return cls(
            voxels=int(fields["voxels"]),
            volume_ml=float(fields["volume_ml"]),
            centre_index=tuple(index[::-1]),
            detected=bool(fields["detected"]),
            centre_mm=tuple(mm) if mm else None,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary; positions in ``(x, y, z)`` order (``(x, y)`` in 2D).

        ``volume_ml`` in 3D, ``area_mm2`` in 2D; ``centre_voxel_xyz`` is :attr:`centre_index`
        reversed (the order of ``centre_mm_xyz`` and of image viewers).

        Examples
        --------
        >>> ComponentInfo(4, 0.004, (1.0, 2.5), True).as_dict()
        {'voxels': 4, 'area_mm2': 4.0, 'centre_voxel_xyz': [2.5, 1.0], 'centre_mm_xyz': None, 'detected': True}
        """
        size = (
            {"area_mm2": self.volume_ml * 1000.0}
            if len(self.centre_index) == 2
            else {"volume_ml": self.volume_ml}
        )
        return {
            "voxels": self.voxels,
            **size,
            "centre_voxel_xyz": list(self.centre_index[::-1]),
            "centre_mm_xyz": None if self.centre_mm is None else list(self.centre_mm),
            "detected": self.detected,
        }


@dataclass
class CaseMetrics:
    """Metric values of one case.

    Attributes
    ----------
    values : dict of int to dict of str to float
        Label -> metric name -> value, metrics in the requested order. Units as in
        :data:`evaluator.metrics.registry.METRICS` (mm, ml, counts, or [0, 1]).
    per_component : dict of int to dict of str to list of float
        Label -> CC-metric name -> one value per reference connected component (scan order of
        the component labelling); empty when no CC-Metric was requested.
    components : dict of int to list of ComponentInfo
        Label -> the reference components in the order of :attr:`per_component` (size, centre,
        detected); empty when no CC-Metric was requested.
    """

    values: dict[int, dict[str, float]]
    per_component: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    components: dict[int, list[ComponentInfo]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (label keys as strings; ``inf``/``nan`` stay floats).

        ``components`` is there only when some are known (a CC-Metric was computed).

        Examples
        --------
        >>> CaseMetrics({1: {"dice": 0.5}}).as_dict()
        {'values': {'1': {'dice': 0.5}}, 'per_component': {}}
        """
        out: dict[str, Any] = {
            "values": {str(k): dict(v) for k, v in self.values.items()},
            "per_component": {
                str(k): {m: list(vals) for m, vals in v.items()}
                for k, v in self.per_component.items()
            },
        }
        if self.components:
            out["components"] = {
                str(k): [c.as_dict() for c in comps] for k, comps in self.components.items()
            }
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`as_dict`; non-finite values are written as ``Infinity``/``NaN``.

        Examples
        --------
        >>> print(CaseMetrics({1: {"hd": math.inf}}).to_json(indent=None))
        {"values": {"1": {"hd": Infinity}}, "per_component": {}}
        """
        return json.dumps(self.as_dict(), indent=indent)


def resolve_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    """Validate metric names against the registry (order kept, duplicates removed).

    Raises
    ------
    UnknownMetricError
        A name not in :data:`~evaluator.metrics.registry.METRICS`, or an instance (COCO) metric,
        which needs instance annotations rather than label maps.

    Examples
    --------
    >>> resolve_metrics(["dice", "hd95", "dice"])
    ('dice', 'hd95')
    """
    names = tuple(dict.fromkeys(metrics))
    if not names:
        raise UnknownMetricError("no metric requested")
    for name in names:
        spec = METRICS.get(name)
        if spec is None:
            raise UnknownMetricError(
                f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}"
            )
        if spec.kind == "instance":
            raise UnknownMetricError(
                f"{name!r} is an instance metric (COCO mask AP); it needs instance annotations, "
                "use evaluator.metrics.coco"
            )
    return names


def check_label_map(array: Any, *, name: str) -> LabelArray:
    """Validate a label map: 2D or 3D, integer values, no NaN; booleans become ``uint8``.

    Raises
    ------
    MetricInputError
        Wrong number of dimensions, unsupported dtype, NaN/inf or non-integer values.

    Examples
    --------
    >>> check_label_map(np.array([[0.0, 2.0]]), name="prediction").tolist()
    [[0, 2]]
    """
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise MetricInputError(f"{name}: expected a 2D or 3D label map, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        return arr.view(np.uint8)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise MetricInputError(f"{name}: contains NaN or infinite values")
        if not np.array_equal(arr, np.rint(arr)):
            raise MetricInputError(f"{name}: contains non-integer label values")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        small = np.uint8 if hi <= 255 else np.uint16 if hi <= 65535 else np.int64
        return arr.astype(small if lo >= 0 else np.int64)
    if arr.dtype.kind not in "iu":
        raise MetricInputError(f"{name}: unsupported dtype {arr.dtype} (need integer labels)")
    return arr


def _foreground(array: LabelArray) -> tuple[IntArray, LabelArray]:
    """C-order flat indices of the non-zero voxels of an integer array, and their values.

    Scans the raw bytes eight at a time (one ``uint64`` test per eight bytes), so a sparse map
    costs about one memory pass, several times less than ``np.flatnonzero`` on ``uint8`` data;
    when more than 1/32 of the eight-byte words hold foreground, ``flatnonzero(array != 0)``
    is cheaper and is used instead.
    """
    flat = np.ascontiguousarray(array).reshape(-1)
    raw = flat.view(np.uint8)
    whole = raw.size // 8 * 8
    busy = raw[:whole].view(np.uint64) != 0
    if np.count_nonzero(busy) * 32 > busy.size:  # dense foreground: one plain scan is cheaper
        dense = np.flatnonzero(flat != 0)
        return dense.astype(np.int64), flat[dense]
    words = np.flatnonzero(busy)  # a boolean array: numpy's fast nonzero path
    row, col = np.nonzero(raw[:whole].reshape(-1, 8)[words])
    byte = np.concatenate((words[row] * 8 + col, np.flatnonzero(raw[whole:]) + whole))
    index = byte // flat.itemsize
    if flat.itemsize > 1 and index.size:
        index = index[np.concatenate(([True], np.diff(index) > 0))]
    values = flat[index]
    nonzero = values != 0  # only matters for values whose bytes are not all zero (-0.0)
    return index[nonzero].astype(np.int64), values[nonzero]


def _by_label(index: IntArray, values: LabelArray, labels: list[int]) -> dict[int, IntArray]:
    """The sorted flat indices of each label's voxels, from one stable sort of the values."""
    if values.size and values.min() == values.max():  # one label (binary maps): no sort
        only = int(values[0])
        return {label: index if label == only else index[:0] for label in labels}
    order = np.argsort(values, kind="stable")  # stable: flat order kept within a label
    ranked = values[order]
    wanted = np.asarray(labels, dtype=np.int64)
    lo = np.searchsorted(ranked, wanted, side="left")
    hi = np.searchsorted(ranked, wanted, side="right")
    return {
        label: index[order[a:b]]
        for label, a, b in zip(labels, lo.tolist(), hi.tolist(), strict=True)
    }


def present_labels(array: LabelArray) -> list[int]:
    """Sorted non-zero label values present in an integer label map.

    Only the foreground voxels are sorted, so this is cheap on sparse maps of large volumes.

    Examples
    --------
    >>> present_labels(np.array([[0, 3], [1, 3]], dtype=np.uint8))
    [1, 3]
    """
    return [int(v) for v in np.unique(_foreground(array)[1])]


def _one_label(
    grid_p: SparseGrid,
    grid_r: SparseGrid,
    *,
    names: tuple[str, ...],
    spacing: Spacing,
    diagonal_mm: float,
    connectivity: Connectivity | None,
    nsd_tolerance_mm: float,
    lesion_match: LesionMatch,
    cc_mode: CCMode,
    cc_worst_distance_mm: float,
) -> tuple[dict[str, float], dict[str, list[float]], list[ComponentInfo]]:
    out: dict[str, float] = {}
    per_component: dict[str, list[float]] = {}
    infos: list[ComponentInfo] = []
    kinds = {name: METRICS[name].kind for name in names}

    overlap_names = [name for name in names if kinds[name] == "overlap"]
    if overlap_names:
        tp = int(np.count_nonzero(grid_r.contains(grid_p.idx)))
        counts = OverlapCounts(tp, grid_p.idx.size - tp, grid_r.idx.size - tp)
        out.update({name: overlap_value(name, counts) for name in overlap_names})

    # Lesion metrics and CC-Metrics share the grids, hence one labelling per image.
    lesion_names = [name for name in names if kinds[name] == "lesion"]
    if lesion_names:
        from evaluator.metrics.lesion import _lesion_on_grids

        lesion = _lesion_on_grids(
            grid_p,
            grid_r,
            spacing,
            lesion_names,
            connectivity=connectivity,
            match=lesion_match,
        )
        out.update(lesion)

    cc_names = tuple(name for name in names if kinds[name] == "cc")
    if cc_names:
        from evaluator.metrics.cc import _cc_on_grids

        result = _cc_on_grids(
            grid_p,
            grid_r,
            spacing,
            cc_names,
            connectivity=connectivity,
            mode=cc_mode,
            nsd_tolerance_mm=nsd_tolerance_mm,
            worst_distance_mm=cc_worst_distance_mm,
            diagonal_mm=None,  # the grids span the whole image
        )
        for name in cc_names:
            out[name] = float(result.means[name])
            per_component[name] = [float(v) for v in result.per_component[name]]
        voxel_ml = float(np.prod(spacing)) / 1000.0
        infos = [
            ComponentInfo(int(n), n * voxel_ml, centre, bool(found))
            for n, centre, found in zip(result.sizes, result.centres, result.detected, strict=True)
        ]

    topology_names = [name for name in names if kinds[name] == "topology"]
    if topology_names:
        from evaluator.metrics.topology import grid_skeleton_counts, topology_value

        skeletons = grid_skeleton_counts(grid_p, grid_r)
        out.update({name: topology_value(name, skeletons) for name in topology_names})

    # after the labellings: the Boundary IoU band uses them (SparseGrid.cached_components)
    surface_names = [name for name in names if kinds[name] == "surface"]
    if surface_names:
        band_mm = BOUNDARY_DILATION_RATIO * diagonal_mm
        out.update(
            _surface_values(grid_p, grid_r, spacing, surface_names, nsd_tolerance_mm, band_mm)
        )

    return {name: out[name] for name in names}, per_component, infos


def _user_values(
    names: list[str], flat_p: IntArray, flat_r: IntArray, shape: tuple[int, ...], spacing: Spacing
) -> dict[str, float]:
    """User metrics (:mod:`evaluator.metrics.plugins`) of one label, on its dense masks."""
    from evaluator.metrics.plugins import active_user_metrics, evaluate_user_metric

    active = active_user_metrics()
    size = int(np.prod(shape, dtype=np.int64))
    pred = np.zeros(size, dtype=bool)
    pred[flat_p] = True
    ref = np.zeros(size, dtype=bool)
    ref[flat_r] = True
    pred, ref = pred.reshape(shape), ref.reshape(shape)
    return {name: evaluate_user_metric(active[name], pred, ref, spacing) for name in names}


def compute_metrics(
    pred: LabelArray,
    ref: LabelArray,
    *,
    spacing: Sequence[float],
    metrics: Sequence[str],
    labels: Sequence[int] | None = None,
    connectivity: Connectivity | None = None,
    nsd_tolerance_mm: float = 1.0,
    lesion_match: LesionMatch = "any_overlap",
    cc_mode: CCMode = "mm",
    cc_worst_distance_mm: float = 50.0,
) -> CaseMetrics:
    """Compute any set of voxel metrics of one case, per label, in one call.

    Parameters
    ----------
    pred, ref : numpy.ndarray
        Label maps of equal shape, ``(z, y, x)`` or ``(y, x)``; integer (or whole-valued float,
        or boolean) values, 0 = background.
    spacing : sequence of float
        Voxel size per array axis, mm.
    metrics : sequence of str
        Metric names from :data:`~evaluator.metrics.registry.METRICS` (not the COCO ones);
        user metrics once activated (:func:`evaluator.metrics.plugins.activate`).
    labels : sequence of int, optional
        Label values to score, each as the binary pair ``(pred == l, ref == l)``. Default: every
        non-zero value present in either map; ``[1]`` if both maps are empty (so the result holds
        the both-empty values of the edge-case table).
    connectivity : {4, 8, 6, 18, 26}, optional
        Connected-component connectivity of the lesion and CC metrics (default 26 in 3D, 8 in 2D).
    nsd_tolerance_mm : float
        Tolerance of ``nsd`` and ``cc_nsd``, mm.
    lesion_match : {"any_overlap", "iou_0.5"}
        Match rule of ``lesion_tp/fp/fn/precision/recall/f1``.
    cc_mode : {"mm", "voxel"}
        CC-Metrics units: millimetres (default) or voxels (as the ``ccmetrics`` package).
    cc_worst_distance_mm : float
        Value of a CC distance metric for a missed component, mm.

    Returns
    -------
    CaseMetrics
        Values per label and metric; per-component values of the CC-Metrics.

    Raises
    ------
    MetricInputError
        Shape mismatch, invalid label maps or spacing, bad option values.
    UnknownMetricError
        Unknown or instance metric names.
    UserMetricError
        A user metric raised or returned something that is not a number.

    Examples
    --------
    >>> ref = np.zeros((1, 4, 6), np.uint8); ref[0, 1:3, 1:3] = 1; ref[0, 1:3, 4] = 2
    >>> pred = np.zeros_like(ref); pred[0, 1:3, 2:4] = 1
    >>> res = compute_metrics(pred, ref, spacing=(2.0, 1.0, 1.0), metrics=["dice", "hd"])
    >>> res.values
    {1: {'dice': 0.5, 'hd': 1.0}, 2: {'dice': 0.0, 'hd': inf}}
    """
    names = resolve_metrics(metrics)
    p_map = check_label_map(pred, name="prediction")
    r_map = check_label_map(ref, name="reference")
    if p_map.shape != r_map.shape:
        raise MetricInputError(
            f"prediction shape {p_map.shape} does not match reference {r_map.shape}"
        )
    sp = check_spacing(spacing, p_map.ndim)
    if not (math.isfinite(nsd_tolerance_mm) and nsd_tolerance_mm >= 0):
        raise MetricInputError(f"NSD tolerance {nsd_tolerance_mm!r} mm must be finite and >= 0")
    if lesion_match not in _LESION_MATCHES:
        raise MetricInputError(
            f"unknown lesion match rule {lesion_match!r} (use one of: {', '.join(_LESION_MATCHES)})"
        )
    if cc_mode not in _CC_MODES:
        raise MetricInputError(
            f"unknown CC-Metrics mode {cc_mode!r} (use one of: {', '.join(_CC_MODES)})"
        )
    if not (math.isfinite(cc_worst_distance_mm) and cc_worst_distance_mm >= 0):
        raise MetricInputError(
            f"CC worst distance {cc_worst_distance_mm!r} mm must be finite and >= 0"
        )
    fg_p, values_p = _foreground(p_map)
    fg_r, values_r = _foreground(r_map)
    if labels is None:
        found = np.unique(np.concatenate((values_p, values_r)))
        label_list = [int(v) for v in found] or [1]
    else:
        label_list = [int(v) for v in dict.fromkeys(labels)]
        if not label_list:
            raise MetricInputError("no label requested")
        if 0 in label_list:
            raise MetricInputError("label 0 is the background and cannot be scored")

    diagonal = image_diagonal_mm(p_map.shape, sp)
    result = CaseMetrics(values={}, per_component={}, components={})
    split_p = _by_label(fg_p, values_p, label_list)
    split_r = _by_label(fg_r, values_r, label_list)
    user = [name for name in names if METRICS[name].kind == "user"]
    builtin = tuple(name for name in names if name not in user)
    for label in label_list:
        values, per_comp, infos = _one_label(
            SparseGrid.from_flat(split_p[label], p_map.shape),
            SparseGrid.from_flat(split_r[label], r_map.shape),
            names=builtin,
            spacing=sp,
            diagonal_mm=diagonal,
            connectivity=connectivity,
            nsd_tolerance_mm=float(nsd_tolerance_mm),
            lesion_match=lesion_match,
            cc_mode=cc_mode,
            cc_worst_distance_mm=float(cc_worst_distance_mm),
        )
        if user:
            values.update(_user_values(user, split_p[label], split_r[label], p_map.shape, sp))
            values = {name: values[name] for name in names}
        result.values[label] = values
        if per_comp:
            result.per_component[label] = per_comp
            result.components[label] = infos
    return result
