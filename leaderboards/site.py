"""The published leaderboard: a self-contained static site (jinja2, inline CSS and JS).

Layout of ``out``::

    index.html                      every task/split published into this folder (site.json),
                                    what each task measures, how to read a board
    metrics.html                    every metric of the registry: unit, direction, best and
                                    worst value, definition, values for empty masks
    site.json                       the list the index is made from
    <task>--<split>/index.html      the official score and ranking first, then rankings
                                    (sortable tables), standard vs CC, per metric,
                                    "reported in" literature rows, plots, downloads
    <task>--<split>/entries/*.html  one page per entry: provenance, per-case results, error classes
    <task>--<split>/plots/*.png|svg every figure of :mod:`leaderboards.plots`
    <task>--<split>/downloads/      ranking.csv, official.csv, metrics.csv, results.csv (raw
                                    per-case values, inf included), leaderboard.json
    cross-task.html                 consensus rankings across the tasks of one split name
                                    (:func:`publish_cross_task`), with cross-task/plots/ and
                                    cross-task/downloads/

Every string that comes from a submission (entry, team, image, case ids) goes through jinja2's
autoescaping; file names of entry pages are derived slugs, never the raw name. No page loads
anything from outside the folder.

What is never published, in any page or download: container log lines (a container can print its
input, i.e. held-out test data), per-case error messages (they quote container output and host
paths; the site shows the error class and the harness's description of it from
:data:`evaluator.evaluate.ERROR_CLASSES`), and run parameters (prediction folder, data root,
store URL, run folders); provenance values that look like a path or URL are shown as "–".
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.datasets.registry import Registry, TaskSpec, load_registry
from evaluator.evaluate import ERROR_CLASSES
from evaluator.metrics.registry import METRICS
from evaluator.store import Store
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace
from leaderboards.board import Leaderboard, compute_leaderboard
from leaderboards.comparisons import check_reference_entry, compute_comparisons, podium_ranks
from leaderboards.consensus import (
    CONSENSUS_METHODS,
    CrossTaskConsensus,
    cross_task_consensus,
    sharing_tasks,
)
from leaderboards.data import LeaderboardData, load_leaderboard_data
from leaderboards.explorer import explorer_components, explorer_context
from leaderboards.folds import FoldSummary, fold_summary
from leaderboards.official import metric_short_title
from leaderboards.plots import FigureJob, draw_figures, metric_title
from leaderboards.protocols import (
    InteractiveSummary,
    interactive_summary,
    plot_click_curves,
    shots_summary,
)
from leaderboards.reference import parse_reported, reference_tables_for
from leaderboards.sensitivity import sensitivity_context

if TYPE_CHECKING:
    import jinja2
    from markupsafe import Markup

__all__ = [
    "CROSS_TASK_PAGE",
    "PUBLISH_STAGES",
    "copy_figure",
    "cross_task_groups",
    "entry_slug",
    "fmt",
    "publish_cross_task",
    "publish_leaderboard",
    "render_site",
    "simulation_plots",
]

# A URL, a backslash (Windows path), or an absolute / home / relative POSIX path at the start of
# the text or of a word.
_PATHLIKE = re.compile(r"://|\\|^[A-Za-z]:/|(?:^|[\s\"'=(,;:])(?:~|\.{1,2})?/")


def fmt(value: Any, digits: int = 3) -> str:
    """A number as shown in the tables: ``inf`` as ∞, NaN as an en dash.

    Examples
    --------
    >>> fmt(0.84178), fmt(32.2767), fmt(float("inf")), fmt(float("nan")), fmt(3)
    ('0.842', '32.28', '∞', '–', '3')
    """
    if isinstance(value, int | bool):
        return str(int(value))
    number = float(value)
    if math.isnan(number):
        return "–"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number.is_integer() and abs(number) >= 100:
        return str(int(number))
    return f"{number:.{digits}f}" if abs(number) < 10 else f"{number:.2f}"


def _raw(value: Any) -> str:
    """Sort key of a cell for the site's JavaScript (``inf``, ``nan`` or a plain number)."""
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return repr(number)


def _public(value: Any) -> str:
    """A provenance value as published: "–" when it is empty or looks like a path or URL.

    Examples
    --------
    >>> _public("ghcr.io/team/model:1"), _public("/srv/runs/x"), _public("sqlite:///r.db")
    ('ghcr.io/team/model:1', '–', '–')
    >>> _public("team at ~/x"), _public(None)
    ('–', '–')
    """
    text = "" if value is None else str(value)
    return "–" if not text or _PATHLIKE.search(text) else text


def _excluded_note(excluded: dict[str, str]) -> list[str]:
    """One sentence per error class that took cases out of the leaderboard.

    Examples
    --------
    >>> _excluded_note({"c1": "dataset", "c7": "dataset"})
    ['2 cases not scorable because of dataset errors: c1, c7.']
    """
    by_class: dict[str, list[str]] = {}
    for case, error_class in excluded.items():
        by_class.setdefault(error_class, []).append(case)
    return [
        f"{len(cases)} case{'s' if len(cases) != 1 else ''} not scorable because of "
        f"{error_class} errors: {', '.join(cases)}."
        for error_class, cases in by_class.items()
    ]


def entry_slug(entry: str) -> str:
    """A safe, unique file name stem for an entry's page.

    Examples
    --------
    >>> entry_slug("team A/v2")
    'team-A-v2-...'
    >>> entry_slug("<script>")[:7]
    'script-'
    """
    stem = re.sub(r"[^A-Za-z0-9_.]+", "-", entry).strip("-.")[:40] or "entry"
    return f"{stem}-{hashlib.sha1(entry.encode()).hexdigest()[:8]}"


def _breakable(text: str) -> Markup:
    """``text`` HTML-escaped, with a line-break opportunity after each underscore, so that a
    metric name in a table header (``fp_volume_ml``) can wrap.

    Examples
    --------
    >>> str(_breakable("fp_volume_ml")), str(_breakable("<b>"))
    ('fp_<wbr>volume_<wbr>ml', '&lt;b&gt;')
    """
    from markupsafe import Markup, escape

    return Markup(str(escape(text)).replace("_", "_<wbr>"))


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("leaderboards", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["breakable"] = _breakable
    return env


#: What a study figure must look like to be published: a matplotlib PNG or SVG (the name of the
#: library is in the first bytes of both), at most this size.
_FIGURE_SIGNATURES = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<?xml"}
_FIGURE_MAX_BYTES = 32 << 20


def simulation_plots(lb: Leaderboard) -> list[tuple[Path, Path | None]]:
    """The degradation-study figures of the board's task and split, as recorded in the store.

    One ``(png, svg)`` pair per recorded PNG (:attr:`LeaderboardData.study_plots`); ``svg`` is
    the SVG of the same name when that was recorded too, else None. Whether a file is still
    there and may be published is decided when it is copied (:func:`copy_figure`).
    """
    recorded = {Path(a.path) for a in lb.data.study_plots}
    return [
        (path, path.with_suffix(".svg") if path.with_suffix(".svg") in recorded else None)
        for path in sorted(recorded)
        if path.suffix == ".png"
    ]


def copy_figure(src: Path, dest: Path) -> bool:
    """Copy a figure ccbench drew (matplotlib PNG or SVG) to ``dest``; False when it is not one.

    The file is opened without following a link (the last component), must be a regular file of
    at most :data:`_FIGURE_MAX_BYTES`, start like a PNG or SVG and name matplotlib in its first
    4 KiB: any other file (``/etc/passwd``, a patient's image) is not published, whatever path a
    store row names. Nothing raises: a file that fails a check, or cannot be read, is left out.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "x.png").write_text("not a figure")
    >>> copy_figure(folder / "x.png", folder / "copy.png"), (folder / "copy.png").exists()
    (False, False)
    """
    import os
    import stat

    signature = _FIGURE_SIGNATURES.get(src.suffix)
    if signature is None:
        return False
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _FIGURE_MAX_BYTES:
            return False
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(_FIGURE_MAX_BYTES + 1)
    except OSError:
        return False
    finally:
        os.close(fd)
    if len(data) > _FIGURE_MAX_BYTES or not data.startswith(signature):
        return False
    if b"Matplotlib" not in data[:4096]:
        return False
    dest.write_bytes(data)
    return True


def _plots(
    lb: Leaderboard,
    folder: Path,
    workspace: Workspace,
    *,
    show_images: bool,
    workers: int | None = None,
) -> list[dict[str, Any]]:
    """Write every figure; return their records (:func:`_figure`) relative to the board folder.

    The figures are drawn in ``workers`` processes (:func:`leaderboards.plots.draw_figures`).

    The slice gallery shows the cases' images and reference contours: only with
    ``show_images``. The per-case plots of metrics the ranking does not read come next, marked
    ``more`` (the page folds them away); the degradation studies' figures last, marked
    ``study`` (shown on the board's sensitivity page).
    """
    plots = folder / "plots"
    drawn: list[tuple[FigureJob, str, bool]] = []  # (job, caption, shown unfolded)
    if not lb.boot_overall.empty:  # a run-level score without per-case values has none
        job = FigureJob("plot_blob", (lb, plots / "rank_blob"))
        drawn.append((job, "Bootstrap rank distributions (overall ranking)", True))
    job = FigureJob("plot_rank_heatmap", (lb, plots / "rank_heatmap"))
    drawn.append((job, "Rank of each entry per metric", True))
    for std, cc in [(c.standard, c.cc) for c in lb.cc]:
        job = FigureJob("plot_std_vs_cc", (lb, std, cc, plots / f"scatter_{std}_vs_{cc}"))
        drawn.append((job, f"{std} vs {cc} per case; the largest disagreements are labelled", True))
    if show_images:
        job = FigureJob(
            "plot_slice_gallery",
            (lb, plots / "gallery_dice_vs_cc_dice"),
            {"workspace": workspace},
        )
        drawn.append((job, "Cases where Dice and CC-Dice disagree most", True))
    for metric in lb.data.metrics:
        job = FigureJob("plot_dot_box", (lb, metric, plots / f"cases_{metric}"))
        drawn.append((job, f"Per-case {metric_title(metric)}", metric in lb.data.ranking.metrics))
    figures = draw_figures([job for job, _, _ in drawn], workers=workers)
    made: list[tuple[list[Path], str]] = []
    more: list[tuple[list[Path], str]] = []
    studies: list[tuple[list[Path], str]] = []
    for (_, caption, shown), paths in zip(drawn, figures, strict=True):
        if paths:  # the gallery draws nothing when no case can be read
            (made if shown else more).append((paths, caption))
    for png, svg in simulation_plots(lb):
        dest = plots / f"simulation_{png.parent.name}_{png.name}"
        if dest.exists():  # two studies' folders of the same name
            dest = dest.with_name(f"{dest.stem}_{len(studies)}.png")
        if not copy_figure(png, dest):
            continue
        dest_svg = dest.with_suffix(".svg")
        has_svg = svg is not None and copy_figure(svg, dest_svg)
        studies.append(
            (
                [dest, dest_svg] if has_svg else [dest],
                f"Degradation study {png.parent.name}: {png.stem}",
            )
        )
    return (
        [_figure(paths, caption, folder) for paths, caption in made]
        + [_figure(paths, caption, folder) | {"more": True} for paths, caption in more]
        + [_figure(paths, caption, folder) | {"study": True} for paths, caption in studies]
    )


#: CSS pixels per inch: a figure is shown at most at the size matplotlib drew it.
_CSS_DPI = 96.0


def _png_size(path: Path) -> tuple[int, int, float]:
    """Width and height in pixels and resolution in dots per inch of a PNG file.

    The size is read from the IHDR chunk, the resolution from the pHYs chunk that matplotlib
    writes (unit: metre); a PNG without one is taken to be at :data:`_CSS_DPI`.

    Examples
    --------
    >>> import struct, tempfile, zlib
    >>> def chunk(kind, data):
    ...     body = kind + data
    ...     return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    >>> header = struct.pack(">IIBBBBB", 300, 200, 8, 2, 0, 0, 0)
    >>> phys = struct.pack(">IIB", 5906, 5906, 1)  # 150 dpi
    >>> path = Path(tempfile.mkdtemp()) / "f.png"
    >>> signature = _FIGURE_SIGNATURES[".png"]
    >>> _ = path.write_bytes(signature + chunk(b"IHDR", header) + chunk(b"pHYs", phys))
    >>> width, height, dpi = _png_size(path)
    >>> width, height, round(dpi)
    (300, 200, 150)
    """
    import struct

    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    width, height = struct.unpack(">II", head[16:24])
    dpi = _CSS_DPI
    at = 8
    while at + 8 <= len(head):
        (length,) = struct.unpack(">I", head[at : at + 4])
        kind = head[at + 4 : at + 8]
        if kind == b"pHYs" and length >= 9:
            per_metre, _, unit = struct.unpack(">IIB", head[at + 8 : at + 17])
            if unit == 1 and per_metre > 0:
                dpi = per_metre * 0.0254
            break
        if kind == b"IDAT":
            break
        at += 12 + length
    return width, height, dpi


def _figure(paths: list[Path], caption: str, folder: Path) -> dict[str, Any]:
    """A figure as the pages show it: its PNG (and SVG, when ``paths`` holds one), caption, and
    the size it is drawn at in CSS pixels (the size matplotlib drew it at, ``width`` and
    ``height``); the page shrinks it to the content width, never enlarges it. ``more`` is False:
    the figure is shown, not folded away with the rarely needed ones."""
    png = paths[0]
    svg = next((p for p in paths if p.suffix == ".svg"), None)
    width, height, dpi = _png_size(png)
    scale = _CSS_DPI / dpi
    return {
        "png": png.relative_to(folder).as_posix(),
        "svg": svg.relative_to(folder).as_posix() if svg is not None else None,
        "caption": caption,
        "width": max(1, round(width * scale)),
        "height": max(1, round(height * scale)),
        "more": False,
        "study": False,
    }


def _downloads(lb: Leaderboard, folder: Path) -> list[dict[str, str]]:
    out = folder / "downloads"
    out.mkdir(parents=True, exist_ok=True)
    lb.overall.to_csv(out / "ranking.csv")
    import pandas as pd

    per_metric = pd.concat(
        {m: t for m, t in lb.per_metric.items()}, names=["metric", "entry"]
    ).reset_index()
    per_metric.to_csv(out / "metrics.csv", index=False)
    results = lb.data.results[["entry", "run", "case", "label", "metric", "value"]]
    results.to_csv(out / "results.csv", index=False)  # raw values: an infinite HD95 stays inf
    official = []
    if lb.official is not None:
        lb.official.table.to_csv(out / "official.csv")
        official.append(
            {"href": "downloads/official.csv", "name": "official.csv", "what": "official score"}
        )
    if lb.ranked_officially and lb.profile_overall is not None:
        lb.profile_overall.to_csv(out / "profile_ranking.csv")
        official.append(
            {
                "href": "downloads/profile_ranking.csv",
                "name": "profile_ranking.csv",
                "what": "ranking by per-case metrics",
            }
        )
    payload = {
        "task": lb.data.task,
        "split": lb.data.split,
        "ranking": lb.data.ranking.model_dump(mode="json"),
        "n_resamples": lb.n_resamples,
        "seed": lb.seed,
        "alpha": lb.alpha,
        "entries": lb.data.entries,
        "cases": lb.data.cases,
        "excluded_cases": lb.data.excluded_cases,
        "left_out_runs": lb.data.left_out,
        "worst_values": {m: _json_safe(v) for m, v in lb.data.worst.items()},
        "official": _official_json(lb),
        "overall": json.loads(lb.overall.reset_index().to_json(orient="records")),
        "metrics": json.loads(per_metric.to_json(orient="records")),
        "cc": [
            {"standard": c.standard, "cc": c.cc, "kendall_tau": _json_safe(c.tau)} for c in lb.cc
        ],
    }
    (out / "leaderboard.json").write_text(
        json.dumps(payload, indent=1, allow_nan=False, default=str)
    )
    return [
        {"href": "downloads/ranking.csv", "name": "ranking.csv", "what": "overall ranking"},
        *official,
        {"href": "downloads/metrics.csv", "name": "metrics.csv", "what": "per-metric table"},
        {"href": "downloads/results.csv", "name": "results.csv", "what": "every per-case value"},
        {"href": "downloads/leaderboard.json", "name": "leaderboard.json", "what": "all tables"},
    ]


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _official_json(lb: Leaderboard) -> dict[str, Any] | None:
    """The official score as published in ``leaderboard.json`` (None without one)."""
    official = lb.official
    if official is None:
        return None
    return {
        "name": official.spec.name,
        "source": official.spec.source,
        "rank_by": official.spec.rank_by,
        "run_level": official.run_level,
        "columns": {c.key: c.header for c in official.columns},
        "table": json.loads(official.table.reset_index().to_json(orient="records")),
        "per_label": {
            m: json.loads(t.reset_index().to_json(orient="records"))
            for m, t in official.per_label.items()
        },
        "no_bootstrap": official.no_bootstrap,
    }


def _interval(low: Any, high: Any, digits: int = 3) -> str:
    """An interval as shown: ``low – high``, or a single en dash when a bound is undefined.

    Examples
    --------
    >>> _interval(0.12, 0.5), _interval(float("nan"), 3.0), _interval(2, 2)
    ('0.120 – 0.500', '–', '2 – 2')
    """
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return "–"
    return f"{fmt(low, digits)} – {fmt(high, digits)}"


def _rank_interval(low: Any, high: Any) -> str:
    """A bootstrap rank interval, ``2–3``; an en dash without a bootstrap.

    Examples
    --------
    >>> _rank_interval(1.0, 3.0), _rank_interval(float("nan"), float("nan"))
    ('1–3', '–')
    """
    if math.isnan(float(low)) or math.isnan(float(high)):
        return "–"
    return f"{int(low)}–{int(high)}"


def _percent(value: Any) -> str:
    """A share as a whole percentage; an en dash when undefined.

    Examples
    --------
    >>> _percent(0.256), _percent(float("nan"))
    ('26%', '–')
    """
    number = float(value)
    return "–" if math.isnan(number) else f"{100 * number:.0f}%"


def _worst_note(lb: Leaderboard) -> str:
    """Which worst value each unbounded metric counts with, for the task page.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from evaluator.datasets.registry import MetricProfile
    >>> data = SimpleNamespace(worst={"dice": 0.0, "hd95": 50.0, "fp_volume_ml": 7.5},
    ...                        profile=MetricProfile(name="p", metrics=("dice",)))
    >>> print(_worst_note(SimpleNamespace(data=data)))  # doctest: +NORMALIZE_WHITESPACE
    A case counts at worst with these values in every mean, interval and rank: hd95 50.00 mm,
    fp_volume_ml 7.500 ml (the worst value any entry reached). Worse values (an infinite
    distance: one side empty) count as these; the raw values are in results.csv.
    """
    from evaluator.evaluate import ranking_worst

    parts = []
    for metric, value in lb.data.worst.items():
        spec = METRICS[metric]
        if not (math.isfinite(value) and math.isinf(spec.worst)):
            continue  # bounded metrics (Dice) keep their own worst value
        unit = f" {spec.unit}" if spec.unit in ("mm", "ml") else ""
        declared = lb.data.profile is not None and math.isfinite(
            ranking_worst(lb.data.profile, metric)
        )
        seen = "" if declared else " (the worst value any entry reached)"
        parts.append(f"{metric} {fmt(value)}{unit}{seen}")
    if not parts:
        return ""
    medians = ""
    official = lb.data.profile.official if lb.data.profile is not None else None
    if official is not None and any(a == "median" for a in official.secondary.values()):
        medians = (
            " The official table's medians use the raw values, as the official evaluation "
            "does (a missing or empty side is ∞ there)."
        )
    return (
        "A case counts at worst with these values in every mean, interval and rank: "
        f"{', '.join(parts)}. Worse values (an infinite distance: one side empty) count as "
        f"these; the raw values are in results.csv.{medians}"
    )


def _official_context(lb: Leaderboard) -> dict[str, Any] | None:
    """The official section's header, per-entry cells and per-label tables."""
    official = lb.official
    if official is None:
        return None
    href = {e: f"entries/{entry_slug(e)}.html" for e in lb.data.entries}

    missing = {
        e: {lb.data.spec.labels[v] for v in labels} for e, labels in lb.data.not_predicted.items()
    }

    def cell(value: Any, entry: str = "", label: str | None = None) -> dict[str, str]:
        if label is not None and label in missing.get(entry, ()):
            return {"text": NOT_PREDICTED_TEXT, "raw": ""}
        return {"text": fmt(value), "raw": _raw(value)}

    cells = {
        str(entry): [cell(row[c.key], str(entry), c.label) for c in official.columns]
        for entry, row in official.table.iterrows()
    }
    order = [str(e) for e in lb.overall.index]
    per_label = []
    for metric, table in official.per_label.items():
        column = next(c for c in official.columns if c.metric == metric and not c.secondary)
        labels = [str(c) for c in table.columns if c != "mean"]
        if len(order) < len(labels):  # one column per entry, one row per label: fits a page
            corner, columns = "label", order
            rows = [
                {
                    "name": label,
                    "href": None,
                    "cells": [cell(table.loc[e, label], e, label) for e in order],
                }
                for label in labels
            ]
            foot = {"name": "mean", "cells": [cell(table.loc[e, "mean"]) for e in order]}
        else:  # one column per label (and the mean), one row per entry
            corner, columns = "entry", [*labels, "mean"]
            rows = [
                {
                    "name": e,
                    "href": href[e],
                    "cells": [cell(table.loc[e, c], e, c) for c in columns],
                }
                for e in order
            ]
            foot = None
        per_label.append(
            {
                "metric": metric,
                "title": f"{column.header.split(' (')[0]} per label",
                "corner": corner,
                "columns": columns,
                "rows": rows,
                "foot": foot,
            }
        )
    return {
        "name": official.spec.name,
        "source": official.spec.source,
        "headers": [c.header for c in official.columns],
        "cells": cells,
        "per_label": per_label,
        "note": official.no_bootstrap,
        "run_level": official.run_level,
    }


def _ranking_rows(
    table: Any, href: dict[str, str], rank_metrics: list[str], baselines: set[str]
) -> list[dict[str, Any]]:
    """Rows of a ranking table (overall or the profile's): ranks, scores, bootstrap summary;
    ``baselines`` are the entries marked as reference algorithms."""
    rows = []
    for entry, row in table.iterrows():
        rows.append(
            {
                "entry": entry,
                "baseline": str(entry) in baselines,
                "href": href[str(entry)],
                "rank": int(row["rank"]),
                "metric_ranks": [int(row[f"rank_{m}"]) for m in rank_metrics],
                "score": fmt(row["score"]),
                "score_raw": _raw(row["score"]),
                "tiebreak": fmt(row["tiebreak"]),
                "tiebreak_raw": _raw(row["tiebreak"]),
                "median_rank": fmt(row["median_rank"], 1),
                "rank_interval": _rank_interval(row["rank_low"], row["rank_high"]),
                "rank_low_raw": _raw(row["rank_low"]),
                "p_first": _percent(row["p_first"]),
                "p_first_raw": _raw(row["p_first"]),
            }
        )
    return rows


def _ranking_rule(lb: Leaderboard) -> str:
    """How the board's overall ranking orders the entries, in one or two sentences: the
    official run-level score when the board is ranked by one, else :func:`_scheme_text`."""
    official = lb.official
    if official is None or not official.run_level:
        return _scheme_text(lb)
    tie = official.tiebreak
    score = metric_short_title(official.spec.rank_by)
    rule = f"Ranked by the run's {score} over all labels (higher is better)"
    if tie is not None:
        rule += f", ties broken by the {tie.header}"
    return rule + "."


#: What a per-label cell says for a label the entry does not predict (its manifest's ``labels``).
NOT_PREDICTED_TEXT = "not predicted"


def not_predicted_notes(data: LeaderboardData) -> list[str]:
    """One sentence per entry that predicts only some labels, and the ranking rule.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> data = SimpleNamespace(not_predicted={"multi": (3,)}, entries=["multi", "full"],
    ...                        spec=SimpleNamespace(labels={1: "spleen", 2: "kidney", 3: "liver"}))
    >>> print(not_predicted_notes(data)[0])  # doctest: +NORMALIZE_WHITESPACE
    multi predicts 2 of 3 labels (missing: liver); a label not predicted counts at the
    metric's worst value in every mean, interval and rank (as a missing case does), so the
    ranking stays comparable; its per-label values are shown as "not predicted".
    """
    labels = data.spec.labels
    notes = []
    for entry in data.entries:
        missing = data.not_predicted.get(entry)
        if not missing:
            continue
        names = ", ".join(labels[v] for v in missing)
        notes.append(
            f"{entry} predicts {len(labels) - len(missing)} of {len(labels)} labels "
            f"(missing: {names}); a label not predicted counts at the metric's worst value in "
            "every mean, interval and rank (as a missing case does), so the ranking stays "
            f'comparable; its per-label values are shown as "{NOT_PREDICTED_TEXT}".'
        )
    return notes


def _scheme_text(lb: Leaderboard) -> str:
    """The profile's ranking scheme (:class:`evaluator.datasets.registry.RankingSpec`)."""
    r = lb.data.ranking
    tie = f", ties broken by the {r.aggregate} {r.tiebreak}" if r.tiebreak else ""
    if r.weights:
        parts = ", ".join(f"{m} {w:g}" for m, w in r.weights.items())
        return f"Weighted mean of per-metric ranks of the {r.aggregate} ({parts}){tie}."
    return f"Ranked by the {r.aggregate} {r.primary}{tie}."


def _board_context(
    lb: Leaderboard, plots: list[dict[str, str]], downloads: list[dict[str, str]]
) -> dict[str, Any]:
    data = lb.data
    href = {e: f"entries/{entry_slug(e)}.html" for e in data.entries}
    rank_metrics = [
        c[5:] for c in lb.overall.columns if c.startswith("rank_") and c[5:] in data.metrics
    ]
    baselines = {e for e, r in data.runs.items() if r.kind == "baseline"}
    overall = _ranking_rows(lb.overall, href, rank_metrics, baselines)
    official = _official_context(lb)
    if official is not None:
        for ranked in overall:
            ranked["official"] = official["cells"][str(ranked["entry"])]
    profile_ranking = None
    if lb.ranked_officially and lb.profile_overall is not None:
        profile_metrics = [
            c[5:]
            for c in lb.profile_overall.columns
            if c.startswith("rank_") and c[5:] in data.metrics
        ]
        profile_ranking = {
            "scheme": _scheme_text(lb),
            "rank_metrics": profile_metrics,
            "rows": _ranking_rows(lb.profile_overall, href, profile_metrics, baselines),
        }
    metrics = []
    for metric, table in lb.per_metric.items():
        rows = [
            {
                "entry": entry,
                "href": href[str(entry)],
                "mean": fmt(r["mean"]),
                "mean_raw": _raw(r["mean"]),
                "ci": _interval(r["ci_low"], r["ci_high"]),
                "ci_low_raw": _raw(r["ci_low"]),
                "median": fmt(r["median"]),
                "median_raw": _raw(r["median"]),
                "rank_mean": int(r["rank_mean"]),
                "rank_median": int(r["rank_median"]),
                "case_rank": fmt(r["rank_then_mean"], 2),
                "case_rank_raw": _raw(r["rank_then_mean"]),
                "rank_case": int(r["rank_rank_then_mean"]),
                "wins": int(r["wins"]),
                "rank_test": int(r["rank_test_based"]),
            }
            for entry, r in table.iterrows()
        ]
        metrics.append({"name": metric, "title": metric_title(metric), "rows": rows})
    cc = [
        {
            "standard": c.standard,
            "cc": c.cc,
            "tau": fmt(c.tau, 2),
            "rows": [
                {
                    "entry": entry,
                    "std": fmt(r[c.standard]),
                    "std_raw": _raw(r[c.standard]),
                    "std_rank": int(r[f"rank_{c.standard}"]),
                    "cc": fmt(r[c.cc]),
                    "cc_raw": _raw(r[c.cc]),
                    "cc_rank": int(r[f"rank_{c.cc}"]),
                }
                for entry, r in c.table.iterrows()
            ],
        }
        for c in lb.cc
    ]
    references = []
    for table in reference_tables_for(data.task):
        columns = list(table.columns)
        rows = []
        for row in table.rows:
            cells = []
            for col in columns:
                text = row.values.get(col, "")
                parsed = parse_reported(text)
                cells.append({"text": text or "–", "raw": _raw(parsed[0]) if parsed else text})
            rows.append({"method": row.method, "cells": cells})
        references.append(
            {"source": table.source, "file": table.file, "columns": columns, "rows": rows}
            | {
                "citation": table.citation.text,
                "protocol": table.protocol,
                "comparable": table.comparable,
                "caveat": table.caveat,
            }
        )
    return {
        "task": data.task,
        "split": data.split,
        "dataset": data.spec.dataset,
        "n_entries": len(data.entries),
        "n_cases": len(data.cases),
        "excluded": _excluded_note(data.excluded_cases),
        "left_out": [f"Run {run} is not ranked: {why}." for run, why in data.left_out.items()]
        + [f"Metric {metric} is not ranked: {why}." for metric, why in data.unranked.items()],
        "worst_note": _worst_note(lb),
        "not_predicted": not_predicted_notes(data),
        "n_resamples": lb.n_resamples,
        "seed": lb.seed,
        "alpha": lb.alpha,
        "scheme": _ranking_rule(lb),
        "official": official,
        "profile_ranking": profile_ranking,
        "rank_metrics": rank_metrics,
        "overall": overall,
        "cc": cc,
        "metrics": metrics,
        "references": references,
        "plots": plots,
        "downloads": downloads,
    }


def _utc(value: Any) -> str:
    """A submission time as published: ``YYYY-MM-DD HH:MM:SS`` in UTC (naive times are UTC).

    Examples
    --------
    >>> _utc("2025-03-01T14:05:09+02:00"), _utc("2025-03-01T12:05:09"), _utc(None)
    ('2025-03-01 12:05:09', '2025-03-01 12:05:09', '–')
    >>> _utc("2025-03-01T23:30:00-01:00"), _utc("2025-03-01T12:00:00Z"), _utc("/srv/x")
    ('2025-03-02 00:30:00', '2025-03-01 12:00:00', '–')
    """
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return _public(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _provenance(data: LeaderboardData, entry: str) -> list[tuple[str, str]]:
    """Team, image, digest, interface, submission time and backend of an entry.

    From the store's entries table (:meth:`evaluator.store.Store.entry`: what ``ccbench
    submit`` / ``ccbench run`` recorded), else from the run's own fields and parameters.
    """
    run = data.runs[entry]
    info = data.entry_info.get(entry)
    recorded = dict(info.manifest) if info is not None else {}
    legacy = run.parameters.get("manifest") or {}

    def first(*values: Any) -> Any:
        return next((v for v in values if v not in (None, "")), None)

    def field(key: str) -> Any:
        return first(recorded.get(key), legacy.get(key), run.parameters.get(key))

    submitted = field("submitted")
    return [
        ("team", _public(field("team"))),
        ("image", _public(first(info.image if info else None, field("image")))),
        (
            "image digest",
            _public(
                first(info.image_digest if info else None, field("image_digest"), run.image_digest)
            ),
        ),
        ("interface", _public(field("interface"))),
        ("submitted (UTC)", _utc(submitted) if submitted is not None else "–"),
        ("backend", _public(field("backend"))),
    ]


def _entry_context(lb: Leaderboard, entry: str) -> dict[str, Any]:
    data = lb.data
    run = data.runs[entry]
    # Run parameters (prediction folder, data root, store, run folder) are never shown; of the
    # provenance, anything that looks like a path or URL is dropped.
    provenance = [
        ("run", run.name),
        ("kind", run.kind),
        *_provenance(data, entry),
        ("dataset fingerprint", _public(run.dataset_fingerprint)),
        ("ccbench version", _public(run.ccbench_version)),
        ("started (UTC)", str(run.started_at or "–")),
        ("finished (UTC)", str(run.finished_at or "–")),
        ("status", run.status),
    ]
    status = {
        str(r.case_id): str(r.status)
        for r in data.cases_frame[data.cases_frame["entry"] == entry].itertuples()
    }
    cases = [
        {
            "case": case,
            "status": status.get(case, "missing"),
            "cells": [
                {
                    "text": fmt(data.scores[m].loc[case, entry]),
                    "raw": _raw(data.scores[m].loc[case, entry]),
                }
                for m in data.metrics
            ],
        }
        for case in data.cases
    ]
    # The class and the harness's description only: messages quote container output and paths.
    errors = [
        {
            "case": str(r.case_id),
            "error_class": str(r.error_class),
            "description": ERROR_CLASSES.get(str(r.error_class), ""),
        }
        for r in data.errors[data.errors["entry"] == entry].itertuples()
    ]
    return {
        "entry": entry,
        "task": data.task,
        "split": data.split,
        "rank": int(lb.overall.loc[entry, "rank"]),
        "n_entries": len(data.entries),
        "provenance": provenance,
        "metrics": list(data.metrics),
        "cases": cases,
        "excluded": _excluded_note(data.excluded_cases),
        "errors": errors,
    }


def _update_index(
    out: Path, board: dict[str, Any], env: jinja2.Environment, common: dict[str, Any]
) -> Path:
    """Add ``board`` to ``site.json`` and rewrite the site's ``index.html`` and ``metrics.html``.

    Boards listed by an older ccbench (without ``measures``) are described from the default task
    registry when it knows their task.
    """
    boards = [b for b in _listing(out) if b.get("path") != board["path"]] + [board]
    boards.sort(key=lambda b: (str(b.get("task")), str(b.get("split"))))
    (out / "site.json").write_text(json.dumps(boards, indent=1))
    return _render_index(out, boards, env, common)


def _listing(out: Path) -> list[dict[str, Any]]:
    """The boards listed in the site's ``site.json`` (none when it is missing or unreadable)."""
    listing = out / "site.json"
    if not listing.exists():
        return []
    try:
        return [b for b in json.loads(listing.read_text()) if isinstance(b, dict)]
    except (OSError, json.JSONDecodeError):
        return []


def _render_index(
    out: Path, boards: list[dict[str, Any]], env: jinja2.Environment, common: dict[str, Any]
) -> Path:
    """Write the site's ``index.html`` (linking the cross-task page when there is one) and
    ``metrics.html``."""
    tasks: dict[str, dict[str, Any]] = {}
    for b in boards:
        task = tasks.setdefault(
            str(b.get("task")),
            {"task": str(b.get("task")), "measures": b.get("measures"), "boards": []},
        )
        task["measures"] = task["measures"] or b.get("measures") or _registry_line(task["task"])
        task["boards"].append(b)
    index = out / "index.html"
    index.write_text(
        env.get_template("index.html").render(
            boards=boards,
            tasks=list(tasks.values()),
            cross_task=(out / CROSS_TASK_PAGE).is_file(),
            root="",
            **common,
        ),
        encoding="utf-8",
    )
    (out / "metrics.html").write_text(
        env.get_template("metrics.html").render(families=_metric_families(), root="", **common),
        encoding="utf-8",
    )
    return index


def _task_line(spec: TaskSpec) -> str:
    """What a task measures, in one sentence, from its entry in the task registry.

    Examples
    --------
    >>> print(_task_line(load_registry().task("hecktor")))
    HECKTOR 2022 (head-and-neck PET/CT, primary tumours and nodes): segmentation of GTVp and GTVn in 3D CT + PT images.
    >>> print(_task_line(load_registry().task("btcv")))  # doctest: +ELLIPSIS
    BTCV (...): segmentation of 13 classes (spleen, right kidney, left kidney, ...) in 3D CT images.
    """
    names = list(spec.labels.values())
    if len(names) > 3:
        what = f"{len(names)} classes ({', '.join(names[:3])}, …)"
    elif len(names) > 1:
        what = f"{', '.join(names[:-1])} and {names[-1]}"
    else:
        what = names[0]
    return f"{spec.dataset}: segmentation of {what} in {spec.dims}D {' + '.join(spec.channels)} images."


def _registry_line(task: str) -> str | None:
    """:func:`_task_line` of a task of the default registry; None when it has no such task."""
    from evaluator.errors import CCBenchError

    try:
        return _task_line(load_registry().task(task))
    except CCBenchError:
        return None


#: What each family of metrics (:data:`evaluator.metrics.registry.MetricKind`) measures.
_FAMILIES: dict[str, tuple[str, str]] = {
    "overlap": ("Overlap", "Voxel overlap of the predicted mask P and the reference mask R."),
    "surface": (
        "Surface distances",
        "Distances between the surfaces of P and R, in millimetres with the image spacing.",
    ),
    "topology": (
        "Topology",
        "Centreline overlap (clDice, Shit et al. 2021): the skeleton S(P) of the prediction "
        "inside R, the skeleton S(R) of the reference inside P, and their harmonic mean; "
        "for tubular structures such as vessels. Scored only when named.",
    ),
    "lesion": (
        "Lesion level",
        "Connected components (lesions) of P matched to those of R, counted as detections, "
        "and autoPET's false-positive and false-negative volumes in millilitres.",
    ),
    "cc": (
        "CC-Metrics",
        "The image is split into one Voronoi region per reference component (nearest "
        "component in mm); the standard metric is computed inside each region and averaged, "
        "so a small lesion weighs as much as a large one.",
    ),
    "user": (
        "Your metrics",
        "Metrics declared with evaluator.metrics.plugins.user_metric and registered under the "
        "ccbench.metrics entry points (or named with --metric): scored, ranked and studied "
        "like the built-ins, with the edge-case values their authors declared.",
    ),
    "instance": (
        "Instances",
        "COCO mask average precision of instance predictions, per class (pycocotools).",
    ),
}


def _edge_text(value: float | None) -> str:
    """A value of the metric registry as the metrics page shows it.

    Examples
    --------
    >>> _edge_text(None), _edge_text(float("nan")), _edge_text(float("inf")), _edge_text(1.0)
    ('formula', 'NaN', '∞', '1')
    """
    if value is None:
        return "formula"
    if math.isnan(value):
        return "NaN"
    return fmt(value) if math.isinf(value) else f"{value:g}"


def _metric_families() -> list[dict[str, Any]]:
    """The metric registry (:data:`~evaluator.metrics.registry.METRICS`, ``EDGE_CASES``) by
    family, as ``metrics.html`` lists it."""
    from typing import get_args

    from evaluator.metrics.registry import EDGE_CASES, METRICS, MetricKind

    families = []
    for kind in get_args(MetricKind):
        title, text = _FAMILIES.get(kind, (kind, ""))
        rows = []
        for name, spec in METRICS.items():
            if spec.kind != kind:
                continue
            edge = EDGE_CASES[name]
            rows.append(
                {
                    "name": name,
                    "title": spec.title,
                    "unit": spec.unit or "–",
                    "better": "higher" if spec.higher_is_better else "lower",
                    "best": "no bound" if math.isnan(spec.best) else _edge_text(spec.best),
                    "worst": "no bound" if math.isnan(spec.worst) else _edge_text(spec.worst),
                    "spacing": "yes" if spec.needs_spacing else "no",
                    "description": spec.description,
                    "edges": [
                        _edge_text(v) for v in (edge.both_empty, edge.ref_empty, edge.pred_empty)
                    ],
                }
            )
        if rows:
            families.append({"kind": kind, "title": title, "text": text, "rows": rows})
    return families


def _fmt_p(value: float) -> str:
    """A p-value as shown: three decimals, scientific below 0.001, NaN as an en dash.

    Examples
    --------
    >>> _fmt_p(0.03125), _fmt_p(1.0), _fmt_p(3.1e-05), _fmt_p(float("nan"))
    ('0.031', '1.000', '3.1e-05', '–')
    """
    if math.isnan(value):
        return "–"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _comparisons_context(
    lb: Leaderboard,
    folder: Path,
    *,
    reference_entry: str | None,
    folds: FoldSummary | None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Paired tests, significance maps, podiums, bootstrap taus and fold-wise mean ± SD.

    Writes their figures under ``plots/`` and CSVs under ``downloads/``; returns the template
    context (``paired`` for the ranking's metrics, ``paired_other``, ``paired_against``,
    ``paired_plots``, ``tau``, ``tau_plot``, ``folds``) and the ``downloads`` to add.
    """
    import numpy as np
    import pandas as pd

    data = lb.data
    comp = compute_comparisons(lb, reference_entry=reference_entry)
    href = {e: f"entries/{entry_slug(e)}.html" for e in data.entries}
    plots, downloads = folder / "plots", folder / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)

    order = [str(e) for e in lb.overall.index]
    ranking_metrics = [m for m in data.ranking.metrics if m in data.metrics]
    paired: dict[str, dict[str, Any]] = {}
    records = []
    for test in comp.paired:
        block = paired.setdefault(
            test.metric,
            {
                "name": test.metric,
                "title": metric_title(test.metric),
                "in_ranking": test.metric in ranking_metrics,
                "rows": {e: {"entry": e, "href": href[e], "cells": []} for e in order},
            },
        )
        for entry in order:
            if entry not in test.table.index:  # the compared entry itself
                block["rows"][entry]["cells"].append(None)
                continue
            r = test.table.loc[entry]
            block["rows"][entry]["cells"].append(
                {
                    "n": int(r["n"]),
                    "diff": fmt(r["mean_difference"]),
                    "diff_raw": _raw(r["mean_difference"]),
                    "p": _fmt_p(float(r["p"])),
                    "p_raw": _raw(r["p"]),
                    "p_holm": _fmt_p(float(r["p_holm"])),
                    "p_holm_raw": _raw(r["p_holm"]),
                    "significant": "yes" if bool(r["significant"]) else "no",
                }
            )
            records.append(
                {"metric": test.metric, "against": test.against, "role": test.role}
                | {"entry": entry, **r.to_dict()}
            )
    for block in paired.values():
        block["rows"] = list(block["rows"].values())
    paired_against = [
        {"role": t.role, "against": t.against} for t in comp.paired if t.metric == data.metrics[0]
    ]
    pd.DataFrame.from_records(records).to_csv(downloads / "paired_tests.csv", index=False)
    significance = pd.concat(
        {m: p.stack(future_stack=True) for m, p in comp.significance.items()},
        names=["metric", "entry", "compared_with"],
    )
    significance.rename("p_one_sided").reset_index().to_csv(
        downloads / "significance.csv", index=False
    )

    directions = data.directions()
    jobs: list[tuple[FigureJob, str]] = []
    for metric in ranking_metrics:
        jobs.append(
            (
                FigureJob(
                    "plot_significance_map",
                    (lb, metric, comp.significance[metric], plots / f"significance_{metric}"),
                    {"alpha": lb.alpha},
                ),
                f"Significance map of {metric}: one-sided Wilcoxon signed-rank test of each "
                f"row entry against each column entry (\u03b1 = {lb.alpha:g})",
            )
        )
        ranks = podium_ranks(data.scores[metric], higher_is_better=directions[metric])
        jobs.append(
            (
                FigureJob("plot_podium", (lb, metric, ranks, plots / f"podium_{metric}")),
                f"Podium of {metric}: each case's values placed by their rank on the case",
            )
        )

    tau_rows = []
    if comp.tau:
        observed = {(c.standard, c.cc): c.tau for c in lb.cc}
        for (std, cc), taus in comp.tau.items():
            defined = taus[~np.isnan(taus)]
            low, high = np.quantile(defined, [0.025, 0.975]) if defined.size else (np.nan,) * 2
            tau_rows.append(
                {
                    "standard": std,
                    "cc": cc,
                    "observed": fmt(observed[(std, cc)], 2),
                    "median": fmt(float(np.median(defined)) if defined.size else np.nan, 2),
                    "interval": _interval(float(low), float(high), 2),
                    "p_one": f"{100 * float(np.mean(defined == 1.0)) if defined.size else 0:.0f}%",
                    "undefined": int(taus.size - defined.size),
                }
            )
        jobs.append(
            (
                FigureJob(
                    "plot_tau_bootstrap",
                    (comp.tau, observed, plots / "tau_bootstrap"),
                    {
                        "title": f"Kendall's \u03c4, standard vs CC ranking, on "
                        f"{lb.n_resamples} bootstrap samples of the cases (seed {lb.seed})"
                    },
                ),
                "Bootstrap distribution of Kendall's \u03c4 between each standard metric's "
                "ranking and its CC counterpart's; solid line: observed \u03c4, dashed: central 95%",
            )
        )
        pd.DataFrame({f"{s}_vs_{c}": t for (s, c), t in comp.tau.items()}).rename_axis(
            "resample"
        ).to_csv(downloads / "tau_bootstrap.csv")
    figures = [
        _figure(paths, caption, folder)
        for paths, (_, caption) in zip(
            draw_figures([job for job, _ in jobs], workers=workers), jobs, strict=True
        )
    ]
    tau_plot = figures.pop() if comp.tau else None
    paired_plots = figures

    fold_context = None
    extra = [
        {"href": "downloads/paired_tests.csv", "name": "paired_tests.csv", "what": "paired tests"},
        {"href": "downloads/significance.csv", "name": "significance.csv", "what": "pairwise p"},
    ]
    if tau_plot is not None:
        extra.append(
            {"href": "downloads/tau_bootstrap.csv", "name": "tau_bootstrap.csv", "what": "taus"}
        )
    if folds is not None:

        def fold_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
            rows = []
            for entry, r in table.iterrows():
                cells = [
                    {
                        "text": f"{fmt(r[f'{m}_mean'])} ± {fmt(r[f'{m}_std'])}",
                        "raw": _raw(r[f"{m}_mean"]),
                    }
                    for m in folds.metrics
                ]
                rows.append({"entry": entry, "href": href.get(str(entry)), "cells": cells})
            return rows

        fold_context = {
            "folds": list(folds.folds),
            "metrics": list(folds.metrics),
            "rows": fold_rows(folds.table),
            "left_out": [f"{e}: {why}" for e, why in folds.left_out.items()],
            "test_rows": fold_rows(folds.test_table) if folds.test_table is not None else [],
            "test_left_out": [f"{e}: {why}" for e, why in folds.test_left_out.items()],
            "patient_rows": [] if folds.patient_table is None else fold_rows(folds.patient_table),
            "patient_test_rows": (
                [] if folds.patient_test_table is None else fold_rows(folds.patient_test_table)
            ),
        }
        per_fold = folds.per_fold.reset_index()
        per_fold.to_csv(downloads / "folds.csv", index=False)
        extra.append({"href": "downloads/folds.csv", "name": "folds.csv", "what": "per-fold means"})
        if folds.per_patient is not None:
            folds.per_patient.reset_index().to_csv(downloads / "patients.csv", index=False)
            extra.append(
                {
                    "href": "downloads/patients.csv",
                    "name": "patients.csv",
                    "what": "per-patient means",
                }
            )
    return {
        "leader": comp.leader,
        "reference_entry": comp.reference,
        "paired": [b for b in paired.values() if b["in_ranking"]],
        "paired_other": [b for b in paired.values() if not b["in_ranking"]],
        "paired_against": paired_against,
        "paired_plots": paired_plots,
        "tau": tau_rows,
        "tau_plot": tau_plot,
        "folds": fold_context,
        "downloads": extra,
    }


def _protocols_context(
    lb: Leaderboard, folder: Path, interactive: InteractiveSummary | None
) -> dict[str, Any]:
    """The interactive entries' curves and areas, the few-shot groups, and their downloads."""
    href = {e: f"entries/{entry_slug(e)}.html" for e in lb.data.entries}
    downloads: list[dict[str, str]] = []
    click_context = None
    if interactive is not None:
        paths = plot_click_curves(interactive, folder / "plots" / "click_curves")
        rows = []
        for entry, r in interactive.table.iterrows():
            cells = [
                {"text": fmt(r[f"{m}_{part}"]), "raw": _raw(r[f"{m}_{part}"])}
                for m in interactive.metrics
                for part in ("auc", "final")
            ]
            rows.append(
                {
                    "rank": int(r["rank"]),
                    "entry": entry,
                    "href": href.get(str(entry)),
                    "cells": cells,
                    "budgets": int(r["budgets"]),
                    "mode": r["click_mode"],
                    "cases": int(r["cases"]),
                }
            )
        click_context = {
            "metrics": list(interactive.metrics),
            "rows": rows,
            "left_out": [f"{e}: {why}" for e, why in interactive.left_out.items()],
            "figure": _figure(paths, "Mean over the cases at each click budget", folder),
        }
        out = folder / "downloads"
        out.mkdir(exist_ok=True)
        interactive.per_case.to_csv(out / "click_auc.csv", index=False)
        interactive.curves.to_csv(out / "click_curves.csv", index=False)
        downloads += [
            {"href": "downloads/click_auc.csv", "name": "click_auc.csv", "what": "per-case AUC"},
            {"href": "downloads/click_curves.csv", "name": "click_curves.csv", "what": "curves"},
        ]
    shots = shots_summary(lb.data)
    shots_context = None
    if shots is not None:
        metrics = list(lb.data.metrics)
        shots_context = {
            "metrics": metrics,
            "groups": [
                {
                    "name": group,
                    "rows": [
                        {
                            "entry": r["entry"],
                            "href": href.get(str(r["entry"])),
                            "cells": [{"text": fmt(r[m]), "raw": _raw(r[m])} for m in metrics],
                        }
                        for _, r in frame.iterrows()
                    ],
                }
                for group, frame in shots.groupby("shots", sort=False)
            ],
        }
    return {"interactive": click_context, "shots": shots_context, "downloads": downloads}


def render_site(
    lb: Leaderboard,
    out: Path,
    *,
    workspace: Workspace,
    show_images: bool | None = None,
    reference_entry: str | None = None,
    folds: FoldSummary | None = None,
    progress: ProgressHook | None = None,
    workers: int | None = None,
    interactive: InteractiveSummary | None = None,
) -> Path:
    """Write one task's board (pages, plots, downloads) into ``out`` and refresh the index.

    ``show_images``: publish slices of the cases' images and references (the slice gallery);
    by default only for phantom tasks whose recorded data roots were written by ``ccbench data
    phantoms`` (a phantom task scored with ``--data-root`` on real data shows none), since a held-out test image must not reach a public page
    unless the organiser says so. ``reference_entry``: an entry every other entry is also
    compared with (paired tests); ``folds``: the task's fold-wise summary
    (:func:`leaderboards.folds.fold_summary`), shown when given. ``progress``: called as
    ``progress(done, total, stage)`` through the stages of :data:`PUBLISH_STAGES` from
    ``plots`` on. ``workers``: processes drawing the figures
    (:func:`leaderboards.plots.draw_figures`; 1: in this process). ``interactive``: the
    interactive entries' click curves and areas (:func:`leaderboards.protocols.interactive_summary`),
    shown when given.

    Returns
    -------
    Path
        ``out/index.html``.
    """
    env = _environment()
    common = _common()
    name = _board_folder(lb.data.task, lb.data.split)
    if show_images is None:
        show_images = _phantom_data_only(lb)
    # Built beside the old board and swapped in at the end: a failure leaves the old one.
    folder = out / f".{name}.building"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "entries").mkdir(parents=True)
    try:
        _write_board(
            lb, folder, workspace, env, common, show_images, reference_entry, folds, progress,
            workers, interactive,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    final = out / name
    if final.exists():
        shutil.rmtree(final)
    folder.rename(final)
    leader = str(lb.overall.index[0])
    board = {
        "task": lb.data.task,
        "split": lb.data.split,
        "dataset": lb.data.spec.dataset,
        "path": f"{name}/index.html",
        "entries": len(lb.data.entries),
        "cases": len(lb.data.cases),
        "leader": leader,
        "published": common["generated"],
        "measures": _task_line(lb.data.spec),
        "ranking": _ranking_rule(lb),
        "metrics": list(lb.data.metrics),
    }
    return _update_index(out, board, env, common)


def _common() -> dict[str, str]:
    """What every page shows in its footer: the ccbench version and the time of writing."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ccbench_version = version("ccbench")
    except PackageNotFoundError:
        ccbench_version = "unknown"
    return {
        "version": ccbench_version,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }


def _safe_name(text: str) -> str:
    """``text`` as a file name or HTML id: every run of other characters than letters, digits,
    ``_``, ``.`` and ``-`` replaced by one ``-``.

    Examples
    --------
    >>> _safe_name("autopet--test"), _safe_name("a/b--<x>")
    ('autopet--test', 'a-b---x-')
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def _board_folder(task: str, split: str) -> str:
    """The folder of a board in the site."""
    return _safe_name(f"{task}--{split}")


#: The stages of :func:`publish_leaderboard`, in order, as its ``progress`` reports them.
PUBLISH_STAGES = ("results", "rankings and bootstrap", "plots", "paired comparisons", "pages")


def _stage_ticker(
    progress: ProgressHook | None,
) -> Callable[[str], None]:
    """``tick(stage)``: report the start of one of :data:`PUBLISH_STAGES`."""

    def tick(stage: str) -> None:
        if progress is not None:
            progress(PUBLISH_STAGES.index(stage), len(PUBLISH_STAGES), stage)

    return tick


def _phantom_data_only(lb: Leaderboard) -> bool:
    """Whether the board's images are synthetic: a phantom task whose every recorded data root
    was written by ``ccbench data phantoms`` (it holds the phantom marker file)."""
    from evaluator.datasets.phantoms import MARKER

    if lb.data.spec.phantom_of is None:
        return False
    roots = [lb.data.artifact(entry, "data") for entry in lb.data.entries]
    return all(root is None or (root / MARKER).is_file() for root in roots)


def _write_board(
    lb: Leaderboard,
    folder: Path,
    workspace: Workspace,
    env: Any,
    common: dict[str, str],
    show_images: bool,
    reference_entry: str | None,
    folds: FoldSummary | None,
    progress: ProgressHook | None = None,
    workers: int | None = None,
    interactive: InteractiveSummary | None = None,
) -> None:
    """The board's pages, plots and downloads, written into ``folder``."""
    tick = _stage_ticker(progress)
    tick("plots")
    plots = _plots(lb, folder, workspace, show_images=show_images, workers=workers)
    explorer, views = explorer_context(lb, folder, workspace=workspace, case_views=show_images)
    downloads = _downloads(lb, folder)
    context = _board_context(lb, plots, downloads)
    context["explorer"] = explorer
    context["case_views"] = show_images and lb.data.spec.dims == 3
    context["sensitivity"] = sensitivity_context(lb)
    tick("paired comparisons")
    extra = _comparisons_context(
        lb, folder, reference_entry=reference_entry, folds=folds, workers=workers
    )
    tick("pages")
    context["downloads"] = [*context["downloads"], *extra.pop("downloads")]
    context.update(extra)
    protocols = _protocols_context(lb, folder, interactive)
    context["downloads"] = [*context["downloads"], *protocols.pop("downloads")]
    context.update(protocols)
    (folder / "index.html").write_text(
        env.get_template("task.html").render(root="../", **context, **common), encoding="utf-8"
    )
    board = {"task": lb.data.task, "split": lb.data.split}
    if views:
        (folder / "cases").mkdir(exist_ok=True)
    for view in views:
        view["href"] = f"../entries/{entry_slug(view['entry'])}.html"
        (folder / "cases" / f"{view['slug']}.html").write_text(
            env.get_template("case.html").render(root="../../", **board, **view, **common),
            encoding="utf-8",
        )
    study = lb.data.sensitivity
    (folder / "sensitivity.html").write_text(
        env.get_template("sensitivity.html").render(
            root="../",
            **board,
            panel=context["sensitivity"],
            full=sensitivity_context(
                lb,
                metrics=tuple(dict.fromkeys(study.table["metric"])) if study is not None else None,
            ),
            plots=[p for p in plots if p.get("study")],
            **common,
        ),
        encoding="utf-8",
    )
    for entry in lb.data.entries:
        page = folder / "entries" / f"{entry_slug(entry)}.html"
        page.write_text(
            env.get_template("entry.html").render(
                root="../../", **_entry_context(lb, entry), **common
            ),
            encoding="utf-8",
        )


def publish_leaderboard(
    task: str,
    split: str,
    *,
    workspace: Workspace,
    out: str | Path | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
    alpha: float = 0.05,
    store: str | Store | None = None,
    registry: Registry | None = None,
    show_images: bool | None = None,
    reference_entry: str | None = None,
    progress: ProgressHook | None = None,
    workers: int | None = None,
    user_metrics: Sequence[str] = (),
) -> Path:
    """Rank every finished run of a task and split and publish the static site.

    Parameters
    ----------
    task, split
        What to rank (as stored by ``ccbench evaluate`` / ``ccbench run``).
    workspace
        Holds the store (by default) and the default site folder. Everything a board shows
        comes from the store: numbers, provenance, and the recorded artifacts (slice gallery
        images, study figures).
    out
        Site folder; default ``<workspace>/site``. Other tasks already published there
        stay listed in its index.
    seed
        Seed of the bootstrap (same data and seed: same intervals).
    n_resamples
        Bootstrap samples over cases (1000 by default).
    alpha
        Significance level of the test-based ranking.
    store
        SQLAlchemy URL or an open store; default ``CCBENCH_STORE`` or the workspace's store.
    registry
        Task registry; default ``datasets.yaml``.
    show_images
        Publish slices of the cases' images with reference and prediction contours; default:
        only for phantom tasks (a held-out test image never reaches the public site unless the
        organiser asks for it).
    reference_entry
        An entry that every other entry is compared with by paired tests, besides the leader;
        default none.
    progress
        Called as ``progress(done, total, stage)`` at each of :data:`PUBLISH_STAGES`.
    workers
        Processes drawing the figures (default: one per CPU, at most 4; 1 draws them in this
        process).
    user_metrics
        ``module:attribute`` of user metrics to rank and judge besides the registered ones
        (the store's own records of them are never imported).

    Returns
    -------
    Path
        The site's ``index.html``.

    Raises
    ------
    StoreError
        When the store holds no finished run of the task and split, or ``reference_entry`` is
        not one of its entries.
    """
    reg = registry or load_registry()
    _stage_ticker(progress)("results")
    db = store if isinstance(store, Store) else Store.open(store, workspace=workspace, create=False)
    try:
        data = load_leaderboard_data(task, split, store=db, registry=reg, user_metrics=user_metrics)
        data = replace(data, components=explorer_components(data, db))
        check_reference_entry(reference_entry, data.entries, task=task, split=split)
        folds = fold_summary(db, task, registry=reg)
        interactive = interactive_summary(db, task, split)
    finally:
        if not isinstance(store, Store):
            db.close()
    _stage_ticker(progress)("rankings and bootstrap")
    board = compute_leaderboard(data, n_resamples=n_resamples, seed=seed, alpha=alpha)
    folder = Path(out) if out is not None else workspace.sites
    folder.mkdir(parents=True, exist_ok=True)
    index = render_site(
        board,
        folder,
        workspace=workspace,
        show_images=show_images,
        reference_entry=reference_entry,
        folds=folds,
        progress=progress,
        workers=workers,
        interactive=interactive,
    )
    if progress is not None:
        progress(len(PUBLISH_STAGES), len(PUBLISH_STAGES), "published")
    return index


#: The cross-task page, at the top of the site folder; its figures and downloads are under
#: ``cross-task/``.
CROSS_TASK_PAGE = "cross-task.html"


def _cross_task_downloads(
    result: CrossTaskConsensus, folder: Path, stem: str
) -> list[dict[str, str]]:
    """Write one split's consensus table and rank frequencies as CSV; their download records."""
    import pandas as pd

    out = folder / "downloads"
    out.mkdir(parents=True, exist_ok=True)
    ranks = result.ranks
    table = pd.concat(
        [
            ranks.ranks.add_prefix("rank_on_"),
            ranks.board_ranks.add_prefix("board_rank_on_"),
            result.table,
        ],
        axis=1,
    ).reindex(result.table.index)
    for method, stability in result.stability.items():
        at = result.table[f"rank_{method}"]
        table[f"p_at_rank_{method}"] = [
            stability.frequencies.loc[e, at[e]] for e in result.table.index
        ]
    table.to_csv(out / f"{stem}.csv")
    records = [
        {
            "href": f"cross-task/downloads/{stem}.csv",
            "name": f"{stem}.csv",
            "what": "per-task ranks and consensus ranks of every method",
        }
    ]
    if result.stability:
        frequencies = pd.concat(
            {m: st.frequencies.stack() for m, st in result.stability.items()},
            names=["method", "entry", "rank"],
        ).rename("share")
        frequencies.reset_index().to_csv(out / f"{stem}-bootstrap.csv", index=False)
        records.append(
            {
                "href": f"cross-task/downloads/{stem}-bootstrap.csv",
                "name": f"{stem}-bootstrap.csv",
                "what": "share of bootstrap samples giving each entry each consensus rank",
            }
        )
    return records


def _cross_task_context(
    result: CrossTaskConsensus, figures: list[dict[str, Any]], downloads: list[dict[str, str]]
) -> dict[str, Any]:
    """What the cross-task page shows of one split's consensus (every name escaped by jinja2)."""
    ranks = result.ranks
    primary = result.stability.get("euclidean")
    rows = []
    for entry in result.table.index:
        row = result.table.loc[entry]
        rows.append(
            {
                "entry": entry,
                "ranks": [
                    {
                        "rank": int(ranks.ranks.loc[entry, t]),
                        "board": int(ranks.board_ranks.loc[entry, t]),
                    }
                    for t in result.tasks
                ],
                "methods": [
                    {"score": fmt(float(row[f"score_{m}"])), "rank": int(row[f"rank_{m}"])}
                    for m in CONSENSUS_METHODS
                ],
                "stable": (
                    _percent(primary.frequencies.loc[entry, int(row["rank_euclidean"])])
                    if primary is not None
                    else "–"
                ),
            }
        )
    methods = []
    for name, spec in CONSENSUS_METHODS.items():
        stability = result.stability.get(name)
        tau = stability.tau_summary() if stability is not None else None
        methods.append(
            {
                "name": name,
                "description": spec.description,
                "tau": fmt(tau["median"], 2) if tau else "–",
                "iqr": _interval(tau["q1"], tau["q3"], 2) if tau else "–",
            }
        )
    return {
        "split": result.split,
        "id": f"split-{_safe_name(result.split)}",
        "tasks": [
            {"task": t, "href": f"{_board_folder(t, result.split)}/index.html"}
            for t in result.tasks
        ],
        "rows": rows,
        "methods": methods,
        "missing": [{"entry": e, "lacks": ", ".join(lacks)} for e, lacks in ranks.missing.items()],
        "unstable": result.unstable_tasks,
        "n_resamples": result.n_resamples,
        "seed": result.seed,
        "figures": figures,
        "downloads": downloads,
    }


def cross_task_groups(boards: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Split name -> the tasks published with it, for split names of at least two tasks.

    Examples
    --------
    >>> cross_task_groups([{"task": "b", "split": "test"}, {"task": "a", "split": "test"},
    ...                    {"task": "a", "split": "all"}])
    {'test': ['a', 'b']}
    """
    by_split: dict[str, set[str]] = {}
    for b in boards:
        by_split.setdefault(str(b.get("split")), set()).add(str(b.get("task")))
    return {split: sorted(tasks) for split, tasks in sorted(by_split.items()) if len(tasks) >= 2}


def publish_cross_task(
    out: str | Path | None = None,
    *,
    workspace: Workspace,
    seed: int = 0,
    n_resamples: int = 1000,
    store: str | Store | None = None,
    registry: Registry | None = None,
    workers: int | None = None,
) -> Path | None:
    """Write the site's cross-task page: a consensus ranking per split name shared by tasks.

    The site's boards (``site.json``, written by :func:`publish_leaderboard`) are grouped by
    split name; for each split name published for at least two tasks whose boards share at least
    two entries (a task sharing fewer is left out and named on the page,
    :func:`leaderboards.consensus.sharing_tasks`), every board is loaded from the store and
    ranked as its own page ranks it, and
    the entries ranked on every one of those tasks get consensus ranks by each method of
    :data:`leaderboards.consensus.CONSENSUS_METHODS` with their bootstrap stability
    (:func:`leaderboards.consensus.cross_task_consensus`). The page (:data:`CROSS_TASK_PAGE`)
    shows per split the per-task ranks, the consensus ranks, the stability (Kendall's tau,
    the share of samples at the consensus rank, a blob plot of the euclidean consensus) and CSV
    downloads; the index links it. Entry names and numbers come from the store only.

    Parameters
    ----------
    out
        The site folder (as given to :func:`publish_leaderboard`); default
        ``<workspace>/site``.
    workspace
        Holds the store (by default) and the default site folder.
    seed, n_resamples
        Bootstrap seed (task ``k`` of a split, in name order, uses ``seed + k``) and resamples
        per task.
    store
        SQLAlchemy URL or an open store; default ``CCBENCH_STORE`` or the workspace's store.
    registry
        Task registry; default ``datasets.yaml``.
    workers
        Processes drawing the figures (:func:`leaderboards.plots.draw_figures`).

    Returns
    -------
    Path or None
        The page; None when no split name has two tasks sharing two entries (an older page is
        then removed and the index no longer links it).
    """
    from evaluator.errors import DatasetNotFoundError, StoreError

    folder = Path(out) if out is not None else workspace.sites
    reg = registry or load_registry()
    groups = cross_task_groups(_listing(folder))
    loaded: dict[str, dict[str, LeaderboardData]] = {}
    skipped: list[str] = []
    if groups:
        db = (
            store
            if isinstance(store, Store)
            else Store.open(store, workspace=workspace, create=False)
        )
        try:
            for split, tasks in groups.items():
                for task in tasks:
                    try:
                        data = load_leaderboard_data(task, split, store=db, registry=reg)
                    except (StoreError, DatasetNotFoundError):  # another store or registry
                        skipped.append(f"{task} / {split}")
                        continue
                    loaded.setdefault(split, {})[task] = data
        finally:
            if not isinstance(store, Store):
                db.close()
    results = []
    unshared: list[str] = []
    for split, boards in loaded.items():
        compared, left = sharing_tasks({t: b.entries for t, b in boards.items()})
        unshared += [f"{task} / {split}" for task in left]
        if len(compared) < 2:
            continue
        result = cross_task_consensus(
            {t: boards[t] for t in compared}, n_resamples=n_resamples, seed=seed
        )
        if len(result.ranks.ranks) >= 2:
            results.append(result)
    page = folder / CROSS_TASK_PAGE
    assets = folder / "cross-task"
    if assets.exists():
        shutil.rmtree(assets)
    env = _environment()
    common = _common()
    if not results:
        page.unlink(missing_ok=True)
        _render_index(folder, _listing(folder), env, common)
        return None
    jobs = []
    for result in results:
        stem = f"consensus-{_safe_name(result.split)}"
        primary = result.stability.get("euclidean")
        if primary is not None:
            order = list(result.table.index)
            title = (
                f"split {result.split}: euclidean consensus rank on "
                f"{len(primary.boot)} bootstrap samples"
            )
            jobs.append(
                (
                    result,
                    stem,
                    FigureJob(
                        "plot_rank_blob",
                        (primary.boot, order, assets / "plots" / stem),
                        {
                            "title": title,
                            "xlabel": "entry (in euclidean consensus order, best first)",
                            "reference": "rank = consensus rank",
                        },
                    ),
                )
            )
    drawn = dict(
        zip(
            [stem for _, stem, _ in jobs],
            draw_figures([job for _, _, job in jobs], workers=workers),
            strict=True,
        )
    )
    sections = []
    for result in results:
        stem = f"consensus-{_safe_name(result.split)}"
        figures = (
            [
                _figure(
                    drawn[stem],
                    f"Split {result.split}: euclidean consensus rank on each bootstrap sample",
                    folder,
                )
            ]
            if stem in drawn
            else []
        )
        downloads = _cross_task_downloads(result, assets, stem)
        sections.append(_cross_task_context(result, figures, downloads))
    page.write_text(
        env.get_template("cross-task.html").render(
            sections=sections, skipped=skipped, unshared=unshared, root="", **common
        ),
        encoding="utf-8",
    )
    _render_index(folder, _listing(folder), env, common)
    return page
