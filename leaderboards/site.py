"""The published leaderboard: a self-contained static site (jinja2, inline CSS and JS).

Layout of ``out``::

    index.html                      every task/split published into this folder (site.json)
    site.json                       the list the index is made from
    <task>--<split>/index.html      rankings (sortable tables), standard vs CC, per metric,
                                    "reported in" literature rows, plots, downloads
    <task>--<split>/entries/*.html  one page per entry: provenance, per-case results, error classes
    <task>--<split>/plots/*.png|svg every figure of :mod:`leaderboards.plots`
    <task>--<split>/downloads/      ranking.csv, metrics.csv, results.csv, leaderboard.json

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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluator.datasets.registry import Registry, load_registry
from evaluator.evaluate import ERROR_CLASSES
from evaluator.store import Store
from evaluator.workspace import Workspace
from leaderboards.board import Leaderboard, compute_leaderboard
from leaderboards.data import load_leaderboard_data
from leaderboards.plots import (
    metric_title,
    plot_blob,
    plot_dot_box,
    plot_rank_heatmap,
    plot_slice_gallery,
    plot_std_vs_cc,
)
from leaderboards.reference import parse_reported, reference_tables_for

if TYPE_CHECKING:
    import jinja2

__all__ = ["entry_slug", "fmt", "publish_leaderboard", "render_site", "simulation_plots"]

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


def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("leaderboards", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def simulation_plots(
    task: str, workspace: Workspace, *, phantom_of: str | None = None
) -> list[Path]:
    """PNG figures of degradation studies of ``task`` (or the task it is a phantom of).

    Looks in ``<workspace>/simulations/<name>-*/`` (where ``ccbench simulate dataset`` writes).
    """
    names = {task} | ({phantom_of} if phantom_of else set())
    root = workspace.simulations
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and any(folder.name.startswith(f"{n}-") for n in names):
            found += sorted(folder.glob("*.png"))
    return found


def _plots(
    lb: Leaderboard, folder: Path, workspace: Workspace, *, show_images: bool
) -> list[dict[str, str]]:
    """Write every figure; return (png, svg, caption) records relative to the board folder.

    The slice gallery shows the cases' images and reference contours: only with
    ``show_images``.
    """
    plots = folder / "plots"
    made: list[tuple[list[Path], str]] = []
    made.append(
        (plot_blob(lb, plots / "rank_blob"), "Bootstrap rank distributions (overall ranking)")
    )
    made.append((plot_rank_heatmap(lb, plots / "rank_heatmap"), "Rank of each entry per metric"))
    for std, cc in [(c.standard, c.cc) for c in lb.cc]:
        made.append(
            (
                plot_std_vs_cc(lb, std, cc, plots / f"scatter_{std}_vs_{cc}"),
                f"{std} vs {cc} per case; the largest disagreements are labelled",
            )
        )
    gallery = (
        plot_slice_gallery(lb, plots / "gallery_dice_vs_cc_dice", workspace=workspace)
        if show_images
        else []
    )
    if gallery:
        made.append((gallery, "Cases where Dice and CC-Dice disagree most"))
    for metric in lb.data.metrics:
        made.append(
            (
                plot_dot_box(lb, metric, plots / f"cases_{metric}"),
                f"Per-case {metric_title(metric)}",
            )
        )
    spec = lb.data.spec
    for png in simulation_plots(spec.name, workspace, phantom_of=spec.phantom_of):
        dest = plots / f"simulation_{png.parent.name}_{png.name}"
        shutil.copyfile(png, dest)
        svg = png.with_suffix(".svg")
        dest_svg = dest.with_suffix(".svg")
        if svg.exists():
            shutil.copyfile(svg, dest_svg)
        made.append(
            (
                [dest, dest_svg if svg.exists() else dest],
                f"Degradation study {png.parent.name}: {png.stem}",
            )
        )
    return [
        {
            "png": paths[0].relative_to(folder).as_posix(),
            "svg": paths[-1].relative_to(folder).as_posix(),
            "caption": caption,
        }
        for paths, caption in made
    ]


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
    results.to_csv(out / "results.csv", index=False)
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
        {"href": "downloads/metrics.csv", "name": "metrics.csv", "what": "per-metric table"},
        {"href": "downloads/results.csv", "name": "results.csv", "what": "every per-case value"},
        {"href": "downloads/leaderboard.json", "name": "leaderboard.json", "what": "all tables"},
    ]


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _scheme_text(lb: Leaderboard) -> str:
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
    overall = []
    for entry, row in lb.overall.iterrows():
        overall.append(
            {
                "entry": entry,
                "href": href[str(entry)],
                "rank": int(row["rank"]),
                "metric_ranks": [int(row[f"rank_{m}"]) for m in rank_metrics],
                "score": fmt(row["score"]),
                "score_raw": _raw(row["score"]),
                "tiebreak": fmt(row["tiebreak"]),
                "tiebreak_raw": _raw(row["tiebreak"]),
                "median_rank": fmt(row["median_rank"], 1),
                "rank_low": int(row["rank_low"]),
                "rank_high": int(row["rank_high"]),
                "p_first": f"{100 * row['p_first']:.0f}%",
                "p_first_raw": _raw(row["p_first"]),
            }
        )
    metrics = []
    for metric, table in lb.per_metric.items():
        rows = [
            {
                "entry": entry,
                "href": href[str(entry)],
                "mean": fmt(r["mean"]),
                "mean_raw": _raw(r["mean"]),
                "ci": f"{fmt(r['ci_low'])} – {fmt(r['ci_high'])}",
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
        )
    return {
        "task": data.task,
        "split": data.split,
        "dataset": data.spec.dataset,
        "n_entries": len(data.entries),
        "n_cases": len(data.cases),
        "excluded": _excluded_note(data.excluded_cases),
        "n_resamples": lb.n_resamples,
        "seed": lb.seed,
        "alpha": lb.alpha,
        "scheme": _scheme_text(lb),
        "rank_metrics": rank_metrics,
        "overall": overall,
        "cc": cc,
        "metrics": metrics,
        "references": references,
        "plots": plots,
        "downloads": downloads,
    }


def _entry_context(lb: Leaderboard, entry: str) -> dict[str, Any]:
    data = lb.data
    run = data.runs[entry]
    manifest = run.parameters.get("manifest") or {}
    # Run parameters (prediction folder, data root, store, run folder) are never shown; of the
    # provenance, anything that looks like a path or URL is dropped.
    provenance = [
        ("run", run.name),
        ("team", _public(manifest.get("team", run.parameters.get("team")))),
        ("image", _public(manifest.get("image", run.parameters.get("image")))),
        ("image digest", _public(run.image_digest)),
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
    listing = out / "site.json"
    boards: list[dict[str, Any]] = []
    if listing.exists():
        try:
            boards = [b for b in json.loads(listing.read_text()) if isinstance(b, dict)]
        except (OSError, json.JSONDecodeError):
            boards = []
    boards = [b for b in boards if b.get("path") != board["path"]] + [board]
    boards.sort(key=lambda b: (str(b.get("task")), str(b.get("split"))))
    listing.write_text(json.dumps(boards, indent=1))
    index = out / "index.html"
    index.write_text(env.get_template("index.html").render(boards=boards, root="", **common))
    return index


def render_site(
    lb: Leaderboard, out: Path, *, workspace: Workspace, show_images: bool | None = None
) -> Path:
    """Write one task's board (pages, plots, downloads) into ``out`` and refresh the index.

    ``show_images``: publish slices of the cases' images and references (the slice gallery);
    by default only for phantom tasks, since a held-out test image must not reach a public page
    unless the organiser says so.

    Returns
    -------
    Path
        ``out/index.html``.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        ccbench_version = version("ccbench")
    except PackageNotFoundError:
        ccbench_version = "unknown"
    env = _environment()
    common = {
        "version": ccbench_version,
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
    }
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{lb.data.task}--{lb.data.split}")
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "entries").mkdir(parents=True)
    if show_images is None:
        show_images = lb.data.spec.phantom_of is not None
    plots = _plots(lb, folder, workspace, show_images=show_images)
    downloads = _downloads(lb, folder)
    context = _board_context(lb, plots, downloads)
    (folder / "index.html").write_text(
        env.get_template("task.html").render(root="../", **context, **common), encoding="utf-8"
    )
    for entry in lb.data.entries:
        page = folder / "entries" / f"{entry_slug(entry)}.html"
        page.write_text(
            env.get_template("entry.html").render(
                root="../../", **_entry_context(lb, entry), **common
            ),
            encoding="utf-8",
        )
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
    }
    return _update_index(out, board, env, common)


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
) -> Path:
    """Rank every finished run of a task and split and publish the static site.

    Parameters
    ----------
    task, split
        What to rank (as stored by ``ccbench evaluate`` / ``ccbench run``).
    workspace
        Holds the store (by default), the data (slice gallery) and simulation outputs.
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

    Returns
    -------
    Path
        The site's ``index.html``.

    Raises
    ------
    StoreError
        When the store holds no finished run of the task and split.
    """
    reg = registry or load_registry()
    db = store if isinstance(store, Store) else Store.open(store, workspace=workspace)
    try:
        data = load_leaderboard_data(task, split, store=db, registry=reg)
    finally:
        if not isinstance(store, Store):
            db.close()
    board = compute_leaderboard(data, n_resamples=n_resamples, seed=seed, alpha=alpha)
    folder = Path(out) if out is not None else workspace.sites
    folder.mkdir(parents=True, exist_ok=True)
    return render_site(board, folder, workspace=workspace, show_images=show_images)
