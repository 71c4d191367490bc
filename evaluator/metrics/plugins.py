"""Your own metric: declared with :func:`user_metric`, found through an entry point or a path.

A user metric is a function with the signature of the built-ins, ``f(pred, ref, *, spacing) ->
float`` on two boolean masks of one label (array order ``(z, y, x)`` or ``(y, x)``, spacing in
mm per array axis), declared with its registry row and its edge-case conventions::

    from evaluator.metrics.plugins import user_metric

    @user_metric(name="volume_error_ml", unit="ml", higher_is_better=False, best=0.0,
                 worst=float("inf"), both_empty=0.0, ref_empty=None, pred_empty=None,
                 description="|predicted volume - reference volume|")
    def volume_error_ml(pred, ref, *, spacing):
        voxel_ml = float(np.prod(spacing)) / 1000.0
        return abs(int(pred.sum()) - int(ref.sum())) * voxel_ml

ccbench finds it in two ways, both by the reference ``module:attribute``:

- **registered**: an installed package lists it under the entry point group
  :data:`ENTRY_POINT_GROUP` (``ccbench.metrics``), the entry point's name being the metric's
  name (or, without a package, the environment variable :data:`ENV_METRICS` lists it). Every
  evaluation then scores it on every label of every voxel task, the leaderboards rank it, and
  the dataset and toy studies put it through their degradations;
- **named**: ``--metric mypkg.metrics:volume_error_ml`` on ``ccbench simulate dataset`` / ``toy``
  (and ``ccbench evaluate``) adds it to that command only.

Nothing happens at import: :func:`activate` loads the metrics and adds their rows to
:data:`~evaluator.metrics.registry.METRICS` and :data:`~evaluator.metrics.registry.EDGE_CASES`
of the calling process, so every consumer of the registry (ranking directions, worst values,
the metrics page) treats them as built-ins. Worker processes activate the references the
scoring plan carries (:attr:`evaluator.scoring.ScoringPlan.user_metrics`).
"""

from __future__ import annotations

import importlib
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluator.errors import UnknownMetricError, UserMetricError
from evaluator.metrics.registry import EDGE_CASES, METRICS, EdgeCase, MetricSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_METRICS",
    "UserMetric",
    "activate",
    "active_refs",
    "active_user_metrics",
    "entry_point_refs",
    "evaluate_user_metric",
    "load_user_metric",
    "registered",
    "resolve_metric_options",
    "user_metric",
    "user_metric_ref",
]

#: The entry point group under which an installed package registers its metrics.
ENTRY_POINT_GROUP = "ccbench.metrics"
#: Environment variable registering metrics without a package: comma-separated
#: ``module:attribute`` references, treated like entry points (scored by every evaluation).
ENV_METRICS = "CCBENCH_METRICS"
#: A metric name: lower case, digits and underscores, starting with a letter (it becomes a
#: column of CSV files and part of file names on the site).
_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
#: ``module.path:attribute``.
_REF = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_UNITS = ("", "mm", "ml", "count")

#: Metrics activated in this process: name -> metric.
_ACTIVE: dict[str, UserMetric] = {}
#: Name -> the reference it was activated from (what a worker process imports).
_REFS: dict[str, str] = {}


@dataclass(frozen=True)
class UserMetric:
    """A user metric: its registry row, edge cases and function (callable like the function).

    Attributes
    ----------
    spec : MetricSpec
        Registry row (``kind="user"``).
    edge : EdgeCase
        Values for empty masks (``None``: the function is called).
    function : callable
        ``function(pred, ref, *, spacing) -> float``.
    """

    spec: MetricSpec
    edge: EdgeCase
    function: Callable[..., float]

    def __call__(self, pred: Any, ref: Any, *, spacing: Sequence[float]) -> float:
        """The metric of two masks, edge cases applied (:func:`evaluate_user_metric`)."""
        return evaluate_user_metric(self, np.asarray(pred, bool), np.asarray(ref, bool), spacing)


def user_metric(
    *,
    name: str,
    higher_is_better: bool,
    best: float,
    worst: float,
    both_empty: float | None,
    ref_empty: float | None,
    pred_empty: float | None,
    description: str,
    unit: str = "",
    title: str = "",
    needs_spacing: bool = True,
) -> Callable[[Callable[..., float]], UserMetric]:
    """Declare a metric function with its registry row and edge-case conventions.

    Parameters
    ----------
    name : str
        Registry key (``[a-z][a-z0-9_]*``, at most 48 characters, not a built-in's name).
    higher_is_better : bool
        Ranking direction.
    best, worst : float
        Best and worst possible values; ``worst`` is what a missing or failed case scores
        (``inf`` for unbounded distances).
    both_empty, ref_empty, pred_empty : float or None
        The value when both masks, only the reference, or only the prediction are empty;
        ``None``: the function is called and must cope (as the counts of the built-ins).
    description : str
        One line: the definition, shown on the site's metrics page.
    unit : {"", "mm", "ml", "count"}
        ``""`` for dimensionless scores.
    title : str
        Name on plots (default: ``name``).
    needs_spacing : bool
        Whether the value depends on the voxel spacing.

    Returns
    -------
    callable
        A decorator turning ``f(pred, ref, *, spacing) -> float`` into a :class:`UserMetric`.

    Raises
    ------
    UserMetricError
        A name that breaks the pattern or is a built-in's, an unknown unit, a NaN bound.

    Examples
    --------
    >>> @user_metric(name="voxel_error", unit="count", higher_is_better=False, best=0.0,
    ...              worst=float("inf"), both_empty=0.0, ref_empty=None, pred_empty=None,
    ...              description="|P xor R| voxels", needs_spacing=False)
    ... def voxel_error(pred, ref, *, spacing):
    ...     return float(np.count_nonzero(pred ^ ref))
    >>> voxel_error(np.array([[1, 1, 0]]), np.array([[0, 1, 1]]), spacing=(1.0, 1.0))
    2.0
    >>> voxel_error.spec.kind, voxel_error.edge.both_empty
    ('user', 0.0)
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserMetricError(
            f"user metric name {name!r}: use lower-case letters, digits and underscores, "
            "starting with a letter (at most 48 characters)"
        )
    if name in METRICS and name not in _ACTIVE:
        raise UserMetricError(f"user metric {name!r}: a built-in metric has that name")
    if unit not in _UNITS:
        raise UserMetricError(f"user metric {name!r}: unit {unit!r} is not one of {_UNITS}")
    for what, bound in (("best", best), ("worst", worst)):
        if not isinstance(bound, (int, float)) or math.isnan(bound):
            raise UserMetricError(f"user metric {name!r}: {what} must be a number, got {bound!r}")
    empty: tuple[tuple[str, float | None], ...] = (
        ("both_empty", both_empty),
        ("ref_empty", ref_empty),
        ("pred_empty", pred_empty),
    )
    for what, value in empty:
        if value is not None and not isinstance(value, (int, float)):
            raise UserMetricError(f"user metric {name!r}: {what} must be a number or None")
    spec = MetricSpec(
        name,
        unit,
        bool(higher_is_better),
        bool(needs_spacing),
        "user",
        float(best),
        float(worst),
        str(description).replace("\n", " ")[:300],
        str(title)[:60],
    )

    def _edge(value: float | None) -> float | None:
        return None if value is None else float(value)

    edge = EdgeCase(_edge(both_empty), _edge(ref_empty), _edge(pred_empty))

    def wrap(function: Callable[..., float]) -> UserMetric:
        if not callable(function):
            raise UserMetricError(f"user metric {name!r}: {function!r} is not callable")
        return UserMetric(spec, edge, function)

    return wrap


def evaluate_user_metric(
    metric: UserMetric, pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float]
) -> float:
    """The value of ``metric`` on two boolean masks: the edge-case row first, then the function.

    Raises
    ------
    UserMetricError
        The function raised, or returned something that is not a number, NaN, or a value
        outside ``[best, worst]``; the message names the metric.
    """
    name = metric.spec.name
    pred_empty, ref_empty = not pred.any(), not ref.any()
    if pred_empty or ref_empty:
        row = metric.edge
        value = (
            row.both_empty
            if pred_empty and ref_empty
            else row.ref_empty
            if ref_empty
            else row.pred_empty
        )
        if value is not None:
            return value
    try:
        raw = metric.function(pred, ref, spacing=tuple(float(s) for s in spacing))
    except Exception as err:  # the user's code: any failure becomes a named error
        raise UserMetricError(
            f"user metric {name!r} raised {type(err).__name__}: {str(err)[:300]}"
        ) from err
    if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, float, np.number)):
        raise UserMetricError(f"user metric {name!r} returned {type(raw).__name__}, not a number")
    value = float(raw)
    low, high = sorted((metric.spec.best, metric.spec.worst))
    if math.isnan(value) or not low <= value <= high:
        # NaN would leave the case out of every mean; a value past the bounds would rank it
        # better than possible: either is the metric failing on this prediction
        raise UserMetricError(
            f"user metric {name!r} returned {value!r}, outside its declared range "
            f"[{low:g}, {high:g}] (best {metric.spec.best:g}, worst {metric.spec.worst:g})"
        )
    return value


def load_user_metric(ref: str) -> UserMetric:
    """Import ``module:attribute`` and check that it is a :class:`UserMetric`.

    Raises
    ------
    UserMetricError
        A malformed reference, a module that cannot be imported, a missing attribute, or an
        object not declared with :func:`user_metric`.

    Examples
    --------
    >>> load_user_metric("evaluator.metrics.examples:volume_error_ml").spec.unit
    'ml'
    >>> load_user_metric("no colon")
    Traceback (most recent call last):
    ...
    evaluator.errors.UserMetricError: metric reference 'no colon': use module.path:attribute
    """
    if not _REF.fullmatch(ref):
        raise UserMetricError(f"metric reference {ref!r}: use module.path:attribute")
    module_name, attr = ref.split(":")
    try:
        module = importlib.import_module(module_name)
    except UserMetricError as err:  # a declaration in the module is wrong
        raise UserMetricError(f"metric reference {ref!r}: {err}") from err
    except Exception as err:  # any failure while importing the user's module
        raise UserMetricError(
            f"metric reference {ref!r}: cannot import {module_name!r} "
            f"({type(err).__name__}: {str(err)[:200]})"
        ) from err
    obj = getattr(module, attr, None)
    if obj is None:
        raise UserMetricError(f"metric reference {ref!r}: {module_name!r} has no {attr!r}")
    if not isinstance(obj, UserMetric):
        raise UserMetricError(
            f"metric reference {ref!r} is a {type(obj).__name__}, not a metric declared with "
            "evaluator.metrics.plugins.user_metric"
        )
    return obj


def entry_point_refs() -> tuple[str, ...]:
    """References of the registered metrics: entry points, then :data:`ENV_METRICS`.

    An entry point gives ``module:attribute=name`` (its name must be the metric's); the
    environment variable's comma-separated ``module:attribute`` references follow.

    Raises
    ------
    UserMetricError
        An entry point whose name is not the name of the metric it points to (checked when
        activated) or whose value is not ``module:attribute``.
    """
    from importlib.metadata import entry_points

    refs = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
        if not _REF.fullmatch(point.value):
            raise UserMetricError(
                f"entry point {point.name!r} of group {ENTRY_POINT_GROUP}: value "
                f"{point.value!r} is not module.path:attribute"
            )
        refs.append(f"{point.value}={point.name}")
    for ref in os.environ.get(ENV_METRICS, "").split(","):
        if ref.strip():
            refs.append(ref.strip())
    return tuple(refs)


def activate(refs: Sequence[str] = (), *, entry_points: bool = True) -> tuple[str, ...]:
    """Load user metrics and add them to this process's registry; return their names.

    Parameters
    ----------
    refs
        ``module:attribute`` references (``module:attribute=name`` for an entry point, whose
        name must be the metric's).
    entry_points
        Also activate every metric registered under :data:`ENTRY_POINT_GROUP`.

    Returns
    -------
    tuple of str
        Names of the metrics, entry points first, then ``refs``, without duplicates.

    Raises
    ------
    UserMetricError
        A reference that cannot be loaded, two metrics of one name, or an entry point named
        differently from its metric.
    """
    wanted = [*(entry_point_refs() if entry_points else ()), *refs]
    names: list[str] = []
    for ref in wanted:
        path, _, declared = ref.partition("=")
        metric = load_user_metric(path)
        name = metric.spec.name
        if declared and declared != name:
            raise UserMetricError(
                f"entry point {declared!r} of group {ENTRY_POINT_GROUP} points to metric "
                f"{name!r}: name the entry point after the metric"
            )
        known = _ACTIVE.get(name)
        if known is None and name in METRICS:
            raise UserMetricError(f"user metric {name!r} ({path}): a built-in metric has that name")
        if known is not None and known.function is not metric.function:
            raise UserMetricError(f"two user metrics are named {name!r} (the second: {path})")
        _ACTIVE[name] = metric
        METRICS[name] = metric.spec
        EDGE_CASES[name] = metric.edge
        _REFS[name] = path
        if name not in names:
            names.append(name)
    return tuple(names)


def active_user_metrics() -> dict[str, UserMetric]:
    """The user metrics activated in this process, by name."""
    return dict(_ACTIVE)


def active_refs() -> tuple[str, ...]:
    """The ``module:attribute`` of every user metric active in this process (what another
    process activates to know the same metrics)."""
    return tuple(_REFS.values())


def user_metric_ref(name: str) -> str:
    """The ``module:attribute`` an active user metric was loaded from."""
    try:
        return _REFS[name]
    except KeyError:
        raise UnknownMetricError(f"{name!r} is not an active user metric") from None


def resolve_metric_options(options: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--metric`` values (names or ``module:attribute``) -> (metric names, references).

    Entry-point metrics are activated too (a registered metric can be named by its name).

    Raises
    ------
    UnknownMetricError
        A name that is neither built in nor registered.
    UserMetricError
        A reference that cannot be loaded.

    Examples
    --------
    >>> resolve_metric_options(["dice", "evaluator.metrics.examples:volume_error_ml"])
    (('dice', 'volume_error_ml'), ('evaluator.metrics.examples:volume_error_ml',))
    """
    activate()
    names: list[str] = []
    refs: list[str] = []
    for option in options:
        if ":" in option:
            (name,) = activate([option], entry_points=False)
            refs.append(option)
        else:
            if option not in METRICS:
                raise UnknownMetricError(
                    f"unknown metric {option!r}; known metrics: {', '.join(METRICS)} (or give "
                    "your own as module.path:attribute)"
                )
            name = option
        names.append(name)
    return tuple(dict.fromkeys(names)), tuple(dict.fromkeys(refs))


@contextmanager
def registered(refs: Sequence[str]) -> Iterator[None]:
    """Register ``refs`` (``module:attribute``) for the duration of a block, as
    :data:`ENV_METRICS` would, then leave the registry as it was.

    ``ccbench demo`` registers its example metrics this way: every evaluation, study and board
    of the block (worker processes included) scores them. Afterwards the environment variable
    and :data:`~evaluator.metrics.registry.METRICS` are restored (metrics activated inside the
    block are removed again).
    """
    before = os.environ.get(ENV_METRICS)
    active = dict(_ACTIVE)
    os.environ[ENV_METRICS] = ",".join([*(before.split(",") if before else []), *refs])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_METRICS, None)
        else:
            os.environ[ENV_METRICS] = before
        for name in [n for n in _ACTIVE if n not in active]:
            del _ACTIVE[name], _REFS[name], METRICS[name], EDGE_CASES[name]
