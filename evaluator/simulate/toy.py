"""The toy-sphere studies of the CC-Metrics chapter (thesis section 5.1.4, Figures 28 and 29).

Geometry (unit spacing, voxels where ``(z-cz)^2 + (y-cy)^2 + (x-cx)^2 < r^2``):

* :data:`THREE_SPHERES`: a 500^3 volume with spheres of radius 50, 100 and 20 centred at
  (169, 426, 271), (394, 247, 333) and (187, 431, 423);
* :data:`EQUAL_SPHERES`: a 250^3 volume with three radius-30 spheres at (75, 75, 75),
  (145, 75, 75) and (75, 160, 75), for the Lesion Dice studies.

Each study starts from a perfect prediction (step 0) and degrades it step by step
(:data:`TOY_STUDIES`). ``scale`` shrinks shape, centres and radii (and the number of steps, or the
shift per step) for quick runs; the default ``1.0`` is the thesis geometry.

The masks are rendered only inside the bounding box of the spheres plus a margin that holds
every degraded prediction of the study. This crop is exact for every metric used here: overlap
counts, surface distances and components only involve voxels inside it, and the generalized
Voronoi regions restricted to the box are the regions computed on the box (distances to the
components are Euclidean, not geodesic).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluator.errors import SimulationError
from evaluator.simulate._toy_table import PRED_COMPONENTS, TOY_COLUMNS
from evaluator.simulate.operators import (
    Order,
    dilate_all,
    erode_all,
    erode_components,
    label_components,
    shift_components,
)
from evaluator.typing import BoolArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EQUAL_SPHERES",
    "PRED_COMPONENTS",
    "THREE_SPHERES",
    "TOY_COLUMNS",
    "TOY_STUDIES",
    "Sphere",
    "ToyGeometry",
    "ToyResult",
    "ToyStudy",
    "run_toy_studies",
    "run_toy_study",
]


@dataclass(frozen=True)
class Sphere:
    """A ball of voxels: ``centre`` in (z, y, x) voxel coordinates, ``radius`` in voxels."""

    centre: tuple[float, float, float]
    radius: float


@dataclass(frozen=True)
class ToyGeometry:
    """Spheres in a volume of unit spacing.

    Examples
    --------
    >>> g = THREE_SPHERES.scaled(0.1)
    >>> g.shape, [s.radius for s in g.spheres]
    ((50, 50, 50), [5.0, 10.0, 2.0])
    >>> int(g.render().sum()) > 0
    True
    """

    name: str
    shape: tuple[int, int, int]
    spheres: tuple[Sphere, ...]

    def scaled(self, scale: float) -> ToyGeometry:
        """Shape, centres and radii multiplied by ``scale`` (shape rounded to whole voxels)."""
        if not scale > 0:
            raise SimulationError(f"scale must be > 0, got {scale}")
        shape = tuple(max(1, round(n * scale)) for n in self.shape)
        spheres = tuple(
            Sphere(
                centre=(s.centre[0] * scale, s.centre[1] * scale, s.centre[2] * scale),
                radius=s.radius * scale,
            )
            for s in self.spheres
        )
        return replace(self, shape=(shape[0], shape[1], shape[2]), spheres=spheres)

    def box(self, margin: int = 0) -> tuple[slice, slice, slice]:
        """Bounding box of the spheres grown by ``margin`` voxels, clipped to the volume."""
        lo = [min(math.floor(s.centre[a] - s.radius) for s in self.spheres) for a in range(3)]
        hi = [max(math.ceil(s.centre[a] + s.radius) for s in self.spheres) for a in range(3)]
        return (
            slice(max(0, lo[0] - margin), min(self.shape[0], hi[0] + margin + 1)),
            slice(max(0, lo[1] - margin), min(self.shape[1], hi[1] + margin + 1)),
            slice(max(0, lo[2] - margin), min(self.shape[2], hi[2] + margin + 1)),
        )

    def render(self, box: tuple[slice, slice, slice] | None = None) -> BoolArray:
        """The reference mask, the whole volume or only ``box`` (from :meth:`box`)."""
        box = box or (slice(0, self.shape[0]), slice(0, self.shape[1]), slice(0, self.shape[2]))
        z, y, x = np.ogrid[box[0], box[1], box[2]]
        mask = np.zeros((z.shape[0], y.shape[1], x.shape[2]), bool)
        for s in self.spheres:
            cz, cy, cx = s.centre
            mask |= (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 < s.radius**2
        return mask


THREE_SPHERES = ToyGeometry(
    name="three_spheres",
    shape=(500, 500, 500),
    spheres=(
        Sphere((169, 426, 271), 50),
        Sphere((394, 247, 333), 100),
        Sphere((187, 431, 423), 20),
    ),
)
EQUAL_SPHERES = ToyGeometry(
    name="equal_spheres",
    shape=(250, 250, 250),
    spheres=(Sphere((75, 75, 75), 30), Sphere((145, 75, 75), 30), Sphere((75, 160, 75), 30)),
)

#: Degrade ``ref`` for ``step`` of a study at ``scale``: ``f(ref, step, scale) -> prediction``.
Degrade = Callable[[BoolArray, int, float], BoolArray]


@dataclass(frozen=True)
class ToyStudy:
    """One toy study: a geometry, the metrics it plots and one degradation per variant.

    Attributes
    ----------
    name, title
        Key of :data:`TOY_STUDIES` and the figure title.
    geometry
        The unscaled geometry.
    metrics
        Metric names of :data:`evaluator.metrics.METRICS`.
    steps
        Number of degradation steps at scale 1 (step 0, the perfect prediction, comes first).
    scale_steps
        Whether the number of steps shrinks with the geometry (all studies but the shift study,
        whose shift per step shrinks instead).
    variants
        Variant name -> degradation function.
    amount
        Step -> amount of degradation (voxels of erosion, dilation or shift) at a given scale.
    margin
        Voxels the predictions may extend beyond the spheres at the largest step.
    per_component
        Also record the per-component value of these CC metrics (one per sphere).
    lesion_match
        Matching rule of the lesion metrics (PQ always matches at IoU > 0.5).
    """

    name: str
    title: str
    geometry: ToyGeometry
    metrics: tuple[str, ...]
    steps: int
    scale_steps: bool
    variants: dict[str, Degrade]
    amount: Callable[[int, float], int]
    margin: Callable[[int, float], int] = lambda steps, scale: 2
    per_component: tuple[str, ...] = ()
    lesion_match: str = "any_overlap"

    def n_steps(self, scale: float) -> int:
        """Number of degradation steps at ``scale`` (at least 2)."""
        return max(2, round(self.steps * scale)) if self.scale_steps else self.steps


def _shift_voxels(step: int, scale: float) -> int:
    return step * max(1, round(4 * scale))


def _dilations(step: int, scale: float) -> int:
    """Two dilations at the first step, then one more per step."""
    return 0 if step == 0 else step + 1


def _separate_dilation(ref: BoolArray, iterations: int) -> BoolArray:
    """The dilated mask cut along the Voronoi boundaries: one separate mask per sphere.

    Voxels with a neighbour (3x3x3) in another sphere's Voronoi region are removed, leaving a
    two-voxel gap, so the masks never merge although they cover almost the same voxels.
    """
    from scipy import ndimage

    from evaluator.metrics.cc import voronoi_regions

    grown = dilate_all(ref, iterations=iterations)
    regions = voronoi_regions(ref, spacing=(1.0, 1.0, 1.0))
    full = np.ones((3, 3, 3), bool)
    border = ndimage.grey_dilation(regions, footprint=full) != ndimage.grey_erosion(
        regions, footprint=full
    )
    return grown & ~border


def _erode_one(order: Order) -> Degrade:
    """Erode the smallest or largest sphere by ``step`` voxels of the 6-connected cross."""

    def degrade(ref: BoolArray, step: int, scale: float) -> BoolArray:
        return erode_components(ref, 1, order=order, iterations=step, structure="cross")

    return degrade


def _shift_one(order: Order) -> Degrade:
    """Shift the smallest or largest sphere along the second axis (4 voxels per step at scale 1)."""

    def degrade(ref: BoolArray, step: int, scale: float) -> BoolArray:
        return shift_components(ref, 1, order=order, offset=(0, _shift_voxels(step, scale), 0))

    return degrade


def _merged_dilation(ref: BoolArray, step: int, scale: float) -> BoolArray:
    return dilate_all(ref, iterations=_dilations(step, scale))


TOY_STUDIES: dict[str, ToyStudy] = {
    study.name: study
    for study in (
        ToyStudy(
            name="erode_all",
            title="Erode all components (full 3x3x3 element): Dice, CC-Dice, PQ",
            geometry=THREE_SPHERES,
            metrics=("dice", "cc_dice", "pq"),
            steps=20,
            scale_steps=True,
            variants={"all": lambda ref, k, s: erode_all(ref, iterations=k, structure="full")},
            amount=lambda k, s: k,
            per_component=("cc_dice",),
        ),
        ToyStudy(
            name="erode_smallest",
            title="Erode only the smallest component (6-connected cross): Dice, CC-Dice, PQ",
            geometry=THREE_SPHERES,
            metrics=("dice", "cc_dice", "pq"),
            steps=22,
            scale_steps=True,
            variants={
                "smallest": lambda ref, k, s: erode_components(
                    ref, 1, order="smallest", iterations=k, structure="cross"
                )
            },
            amount=lambda k, s: k,
            per_component=("cc_dice",),
        ),
        ToyStudy(
            name="dilate_merge",
            title="Dilate three equal spheres until they merge: Dice, CC-Dice, Lesion Dice",
            geometry=EQUAL_SPHERES,
            metrics=("dice", "cc_dice", "lesion_dice"),
            steps=14,
            scale_steps=True,
            variants={"all": _merged_dilation},
            amount=_dilations,
            margin=lambda steps, scale: _dilations(steps, scale) + 2,
        ),
        ToyStudy(
            name="lesion_dice_pitfall",
            title="Lesion Dice pitfall: merged vs separate dilated masks",
            geometry=EQUAL_SPHERES,
            metrics=("dice", "cc_dice", "lesion_dice"),
            steps=14,
            scale_steps=True,
            variants={
                "merged": _merged_dilation,
                "separate": lambda ref, k, s: _separate_dilation(ref, _dilations(k, s)),
            },
            amount=_dilations,
            margin=lambda steps, scale: _dilations(steps, scale) + 2,
        ),
        ToyStudy(
            name="hd95_erode",
            title="Erode the smallest vs the largest component: HD95 and CC-HD95",
            geometry=THREE_SPHERES,
            metrics=("hd95", "cc_hd95"),
            steps=15,
            scale_steps=True,
            variants={order: _erode_one(order) for order in ("smallest", "largest")},
            amount=lambda k, s: k,
            per_component=("cc_hd95",),
        ),
        ToyStudy(
            name="nsd_shift",
            title="Shift the smallest vs the largest component along y: NSD and CC-NSD (1 mm)",
            geometry=THREE_SPHERES,
            metrics=("nsd", "cc_nsd"),
            steps=10,
            scale_steps=False,
            variants={order: _shift_one(order) for order in ("smallest", "largest")},
            amount=_shift_voxels,
            margin=lambda steps, scale: _shift_voxels(steps, scale) + 2,
            per_component=("cc_nsd",),
        ),
    )
}


@dataclass
class ToyResult:
    """What :func:`run_toy_studies` wrote.

    Attributes
    ----------
    table
        Every number (columns :data:`TOY_COLUMNS`).
    csv
        The CSV of ``table``.
    figures
        PNG and SVG files, two per study.
    seconds
        Wall-clock time per study, s.
    """

    table: pd.DataFrame
    csv: Path | None = None
    figures: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _component_names(geometry: ToyGeometry, ref: BoolArray, box: tuple[slice, ...]) -> list[str]:
    """Name of each reference component (in the metrics' numbering) after its sphere."""
    from evaluator.metrics.cc import voronoi_regions

    labels = voronoi_regions(ref, spacing=(1.0, 1.0, 1.0), where=ref)
    names: dict[int, str] = {}
    for sphere in geometry.spheres:
        centre = tuple(round(c) - b.start for c, b in zip(sphere.centre, box, strict=True))
        names[int(labels[centre])] = f"r={sphere.radius:g}"
    return [names.get(k, f"component {k}") for k in range(1, int(labels.max()) + 1)]


def run_toy_study(
    study: str | ToyStudy,
    *,
    scale: float = 1.0,
    on_step: Callable[[], None] | None = None,
    metrics: Sequence[str] = (),
) -> pd.DataFrame:
    """Run one toy study and return its numbers.

    Parameters
    ----------
    study
        A key of :data:`TOY_STUDIES` or a :class:`ToyStudy`.
    scale
        Geometry scale, default 1 (the thesis geometry: heavy, minutes); 0.2-0.3 for tests.
    on_step
        Called after each (variant, step), e.g. to advance a progress bar.
    metrics
        Further metrics scored at every step besides the study's own (e.g. activated user
        metrics, :mod:`evaluator.metrics.plugins`).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TOY_COLUMNS`; ``component`` is ``""`` for the case value and ``r=<radius>``
        for the per-component value of a CC metric; ``amount`` is the erosion / dilation /
        shift in voxels.

    Examples
    --------
    >>> df = run_toy_study("nsd_shift", scale=0.1)
    >>> sorted(df["variant"].unique()), int(df["step"].max())
    (['largest', 'smallest'], 10)
    >>> float(df.query("step == 0 and component == ''")["value"].min())
    1.0
    """
    import pandas as pd

    from evaluator.metrics.api import compute_metrics

    if isinstance(study, str) and study not in TOY_STUDIES:
        raise SimulationError(f"unknown toy study {study!r} (known: {', '.join(TOY_STUDIES)})")
    spec = TOY_STUDIES[study] if isinstance(study, str) else study
    geometry = spec.geometry.scaled(scale)
    steps = spec.n_steps(scale)
    box = geometry.box(margin=spec.margin(steps, scale))
    ref = geometry.render(box)
    names = _component_names(geometry, ref, box)
    ref_u8 = ref.astype(np.uint8)
    scored = tuple(dict.fromkeys((*spec.metrics, *metrics)))
    rows: list[tuple[Any, ...]] = []
    for variant, degrade in spec.variants.items():
        for step in range(steps + 1):
            pred = degrade(ref, step, scale)
            result = compute_metrics(
                pred.astype(np.uint8),
                ref_u8,
                spacing=(1.0, 1.0, 1.0),
                metrics=list(scored),
                labels=[1],
                nsd_tolerance_mm=1.0,
                lesion_match=spec.lesion_match,  # type: ignore[arg-type]
            )
            amount = spec.amount(step, scale)
            for metric in scored:
                value = float(result.values[1][metric])
                rows.append((spec.name, variant, step, amount, metric, "", value))
            n_pred = float(label_components(pred)[1])
            rows.append((spec.name, variant, step, amount, PRED_COMPONENTS, "", n_pred))
            for metric in spec.per_component:
                per = result.per_component.get(1, {}).get(metric, [])
                for name, value in zip(names, per, strict=False):
                    rows.append((spec.name, variant, step, amount, metric, name, float(value)))
            if on_step is not None:
                on_step()
    return pd.DataFrame(rows, columns=list(TOY_COLUMNS))


def run_toy_studies(
    out: Path | None = None,
    *,
    scale: float = 1.0,
    studies: Sequence[str] | None = None,
    plots: bool = True,
    progress: Callable[[str, int], Callable[[], None]] | None = None,
    metrics: Sequence[str] = (),
) -> ToyResult:
    """Run the toy studies, write ``toy_results.csv`` and one PNG + SVG figure per study.

    Parameters
    ----------
    out
        Output folder (created); ``None`` writes nothing.
    scale
        Geometry scale (see :func:`run_toy_study`).
    studies
        Keys of :data:`TOY_STUDIES` [default: all].
    plots
        Draw the figures (matplotlib, Agg).
    progress
        ``progress(study, total_steps)`` returns the per-step callback.
    metrics
        Further metrics scored in every study (user metrics: activated first, see
        :mod:`evaluator.metrics.plugins`); each study with some gets a second figure,
        ``toy_<study>_more.png``, of those metrics alone (their units may differ from the
        study's).

    Returns
    -------
    ToyResult
    """
    import time

    import pandas as pd

    names = list(studies or TOY_STUDIES)
    unknown = [n for n in names if n not in TOY_STUDIES]
    if unknown:
        raise SimulationError(f"unknown toy studies {unknown} (known: {', '.join(TOY_STUDIES)})")
    tables: list[pd.DataFrame] = []
    seconds: dict[str, float] = {}
    for name in names:
        spec = TOY_STUDIES[name]
        total = len(spec.variants) * (spec.n_steps(scale) + 1)
        tick = progress(name, total) if progress is not None else None
        start = time.perf_counter()
        tables.append(run_toy_study(spec, scale=scale, on_step=tick, metrics=metrics))
        seconds[name] = time.perf_counter() - start
    table = pd.concat(tables, ignore_index=True)
    result = ToyResult(table=table, seconds=seconds)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        result.csv = out / "toy_results.csv"
        table.to_csv(result.csv, index=False)
        if plots:
            from evaluator.simulate.plots import plot_toy_study

            for name in names:
                rows = table[table["study"] == name]
                own = (*TOY_STUDIES[name].metrics, PRED_COMPONENTS)
                result.figures += plot_toy_study(
                    rows[rows["metric"].isin(own)],
                    out / f"toy_{name}",
                    title=TOY_STUDIES[name].title,
                )
                more = [m for m in metrics if m not in own]
                if more:
                    result.figures += plot_toy_study(
                        rows[rows["metric"].isin((*more, PRED_COMPONENTS))],
                        out / f"toy_{name}_more",
                        title=f"{TOY_STUDIES[name].title}: {', '.join(more)}",
                    )
    return result
