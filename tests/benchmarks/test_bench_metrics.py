"""The metrics core against its references: speed ratios and extra peak memory on one CT-sized case.

The case: a seeded 400x400x300 (x, y, z) label map with 60 ellipsoid lesions (radii 1.5-14
voxels, some touching, some at the image border), spacing 0.98 x 0.98 x 3.0 mm, and an imperfect
prediction (missed, eroded, dilated and shifted lesions plus false-positive blobs), written as
NIfTI (``.nii.gz``). Timings, all in one run:

* ``ccmetrics`` (0.0.3) CC-Dice + CC-HD95 + CC-NSD, run once (it takes minutes), against our
  whole CC suite (all seven CC-Metrics, one :func:`~evaluator.metrics.cc.cc_metrics` call);
* MONAI's Dice + HD95 + NSD + ASSD against ours (:func:`~evaluator.metrics.api.compute_metrics`);
* our full suite (every voxel metric: standard + CC + lesion) against reading the two NIfTI files
  with SimpleITK;
* extra peak memory (peak RSS above the RSS with the two arrays loaded) of the full suite, in a
  fresh subprocess.

Run with ``scripts/bench.sh`` (or ``pytest tests/benchmarks/test_bench_metrics.py
--benchmark-only``); the markdown table goes to the file named by ``$CCBENCH_BENCH_REPORT``
(``scripts/bench.sh``: ``docs/benchmarks.md``). ``CCBENCH_BENCH_SKIP_REFERENCE=1`` leaves out
the minutes-long ccmetrics run while iterating (its row then reads "not measured"; the published
table comes from a full run). ccmetrics and MONAI run in voxel units without
spacing, as they are used in practice; the timings compare work, not units.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHAPE = (300, 400, 400)  # (z, y, x)
SPACING = (3.0, 0.98, 0.98)  # mm, array axis order
LESIONS = 60
SEED = 2025
CC_ALL = ("cc_dice", "cc_iou", "cc_nsd", "cc_boundary_iou", "cc_hd", "cc_hd95", "cc_assd")
STANDARD = ("dice", "hd95", "nsd", "assd")
CC_CHECK = ("cc_dice", "cc_hd95", "cc_nsd")  # the three ccmetrics runs


def _ellipsoid(mask: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> None:
    """Set one axis-aligned ellipsoid (voxels) of `mask`, touching only its bounding box."""
    lo = np.maximum(np.floor(centre - radii).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radii).astype(int) + 1, mask.shape)
    if np.any(hi <= lo):
        return
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True))
    mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] |= dist <= 1.0


def make_case(
    seed: int = SEED, shape: tuple[int, ...] = SHAPE, lesions: int = LESIONS
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded reference with `lesions` ellipsoids and an imperfect prediction (uint8 maps)."""
    rng = np.random.default_rng(seed)
    ref = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    dims = np.array(shape, dtype=float)
    for i in range(lesions):
        radii = rng.uniform(1.5, 14.0, size=3) / np.array([3.0, 1.0, 1.0])  # mm-ish, z coarse
        radii = np.maximum(radii, 0.8)
        if i % 15 == 0:  # at the image border
            centre = rng.uniform(0, dims) * (rng.random(3) < 0.5)
        else:
            centre = rng.uniform(0.05, 0.95, size=3) * dims
        _ellipsoid(ref, centre, radii)
        kind = rng.choice(
            ["exact", "missed", "eroded", "dilated", "shifted"], p=[0.2, 0.1, 0.25, 0.25, 0.2]
        )
        if kind == "missed":
            continue
        if kind == "eroded":
            _ellipsoid(pred, centre, np.maximum(radii * 0.7, 0.5))
        elif kind == "dilated":
            _ellipsoid(pred, centre, radii * 1.3 + 0.5)
        elif kind == "shifted":
            _ellipsoid(pred, centre + rng.normal(0, 1.5, size=3), radii)
        else:
            _ellipsoid(pred, centre, radii)
        if i % 10 == 3:  # a touching neighbour (not predicted)
            _ellipsoid(ref, centre + radii * np.array([0.0, 1.6, 0.0]), radii * 0.6)
    for _ in range(12):  # false positives
        _ellipsoid(pred, rng.uniform(0, 1, size=3) * dims, rng.uniform(1.0, 5.0, size=3))
    return pred.astype(np.uint8), ref.astype(np.uint8)


# ---------------------------------------------------------------- fixtures


@dataclass
class Case:
    """The benchmark case in memory and on disk."""

    pred: np.ndarray
    ref: np.ndarray
    pred_path: Path
    ref_path: Path
    npz_path: Path


@dataclass
class Report:
    """Seconds (minimum over rounds) per timed step, and measured memory, in one run."""

    seconds: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    options = request.config.getoption
    if options("benchmark_skip", default=False) and not options("benchmark_only", default=False):
        pytest.skip("benchmarks are skipped (run with --benchmark-only)")
    import SimpleITK as sitk

    pred, ref = make_case()
    folder = tmp_path_factory.mktemp("bench-metrics")
    paths = []
    for name, array in (("pred", pred), ("ref", ref)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(reversed(SPACING)))
        path = folder / f"{name}.nii.gz"
        sitk.WriteImage(image, str(path), useCompression=True)
        paths.append(path)
    npz = folder / "case.npz"
    np.savez(npz, pred=pred, ref=ref)
    return Case(pred, ref, paths[0], paths[1], npz)


@pytest.fixture(scope="module")
def report() -> Iterator[Report]:
    rep = Report()
    yield rep
    target = os.environ.get("CCBENCH_BENCH_REPORT")
    if target and rep.seconds:
        path = Path(target)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(keep_marked_blocks(old, render_markdown(rep)), encoding="utf-8")
    readme = os.environ.get("CCBENCH_BENCH_README")
    if readme and rep.seconds:
        update_readme(Path(readme), rep)


def _timed(benchmark: Any, report: Report, key: str, func: Callable[[], Any], rounds: int) -> Any:
    result = benchmark.pedantic(func, rounds=rounds, iterations=1, warmup_rounds=0)
    report.seconds[key] = float(benchmark.stats.stats.min)
    return result


# ---------------------------------------------------------------- timings


def test_bench_read_nifti(benchmark: Any, case: Case, report: Report) -> None:
    import SimpleITK as sitk

    def read() -> None:
        for path in (case.pred_path, case.ref_path):
            sitk.GetArrayFromImage(sitk.ReadImage(str(path)))

    _timed(benchmark, report, "read_nifti", read, rounds=3)


def test_bench_full_suite(benchmark: Any, case: Case, report: Report) -> None:
    from evaluator.metrics.api import compute_metrics
    from evaluator.metrics.registry import VOXEL_METRICS

    def run() -> Any:
        return compute_metrics(case.pred, case.ref, spacing=SPACING, metrics=VOXEL_METRICS)

    result = _timed(benchmark, report, "full_suite", run, rounds=3)
    report.info["full_suite_metrics"] = len(VOXEL_METRICS)
    report.info["components"] = len(result.per_component[1]["cc_dice"])


def test_bench_cc_suite(benchmark: Any, case: Case, report: Report) -> None:
    from evaluator.metrics.cc import cc_metrics

    pred, ref = case.pred > 0, case.ref > 0
    result = _timed(
        benchmark,
        report,
        "cc_suite",
        lambda: cc_metrics(pred, ref, spacing=SPACING, metrics=CC_ALL),
        rounds=3,
    )
    report.info["cc_means"] = {k: round(v, 4) for k, v in result.means.items()}
    voxel = cc_metrics(pred, ref, spacing=SPACING, metrics=CC_CHECK, mode="voxel")
    report.info["cc_means_voxel_mode"] = {k: round(v, 4) for k, v in voxel.means.items()}


def test_bench_standard_suite(benchmark: Any, case: Case, report: Report) -> None:
    from evaluator.metrics.api import compute_metrics

    def run() -> Any:
        return compute_metrics(case.pred, case.ref, spacing=SPACING, metrics=STANDARD)

    result = _timed(benchmark, report, "standard_suite", run, rounds=3)
    report.info["standard_ours"] = {k: round(v, 4) for k, v in result.values[1].items()}


def _onehot(mask: np.ndarray) -> Any:
    import torch

    m = torch.from_numpy(mask > 0)
    return torch.stack([~m, m])[None].float()


def test_bench_monai_standard(benchmark: Any, case: Case, report: Report) -> None:
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    pred, ref = _onehot(case.pred), _onehot(case.ref)
    values: dict[str, float] = {}

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values["dice"] = float(metrics.DiceMetric(include_background=False)(pred, ref))
            values["hd95"] = float(
                metrics.HausdorffDistanceMetric(percentile=95)(pred, ref, spacing=SPACING)
            )
            values["nsd"] = float(
                metrics.SurfaceDiceMetric(class_thresholds=[1.0])(pred, ref, spacing=SPACING)
            )
            values["assd"] = float(
                metrics.SurfaceDistanceMetric(symmetric=True)(pred, ref, spacing=SPACING)
            )

    with torch.no_grad():
        _timed(benchmark, report, "monai_standard", run, rounds=1)
    report.info["standard_monai"] = {k: round(v, 4) for k, v in values.items()}


def test_bench_ccmetrics(benchmark: Any, case: Case, report: Report) -> None:
    if os.environ.get("CCBENCH_BENCH_SKIP_REFERENCE") == "1":
        pytest.skip("CCBENCH_BENCH_SKIP_REFERENCE=1: ccmetrics not run (its row: not measured)")
    torch = pytest.importorskip("torch")
    grad = torch.is_grad_enabled()
    ccm = pytest.importorskip("CCMetrics")  # turns off autograd: restored below
    pred, ref = _onehot(case.pred), _onehot(case.ref)
    parts = {
        "ccmetrics_cc_dice": ccm.CCDiceMetric(),
        "ccmetrics_cc_hd95": ccm.CCHausdorffDistance95Metric(metric_worst_score=50.0),
        "ccmetrics_cc_nsd": ccm.CCSurfaceDiceMetric(class_thresholds=[1.0]),
    }
    values: dict[str, float] = {}

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for key, metric in parts.items():
                start = time.perf_counter()
                metric(pred, ref)
                values[key] = float(metric.cc_aggregate().mean())
                report.seconds[key] = time.perf_counter() - start

    try:
        _timed(benchmark, report, "ccmetrics", run, rounds=1)
    finally:
        torch.set_grad_enabled(grad)
    report.info["ccmetrics_values"] = {k: round(v, 4) for k, v in values.items()}


_MEMORY_SCRIPT = """
import gc, json, sys
import numpy as np
from evaluator.metrics.api import compute_metrics
from evaluator.metrics.registry import VOXEL_METRICS

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)

data = np.load(sys.argv[1])
pred, ref = data["pred"], data["ref"]
spacing = tuple(float(s) for s in sys.argv[2:])
small = (slice(0, 40),) * 3
compute_metrics(pred[small], ref[small], spacing=spacing, metrics=VOXEL_METRICS)  # imports
gc.collect()
base = status("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
compute_metrics(pred, ref, spacing=spacing, metrics=VOXEL_METRICS)
print(json.dumps({"base": base, "peak": status("VmHWM:")}))
"""


def test_bench_peak_memory(benchmark: Any, case: Case, report: Report) -> None:
    """Extra peak RSS of the full suite above the RSS with both arrays loaded, own process."""
    out: dict[str, int] = {}

    def run() -> None:
        args = [sys.executable, "-c", _MEMORY_SCRIPT, str(case.npz_path), *map(str, SPACING)]
        done = subprocess.run(args, capture_output=True, text=True, check=True)
        out.update(json.loads(done.stdout.strip().splitlines()[-1]))

    _timed(benchmark, report, "memory_subprocess", run, rounds=1)
    extra_mb = (out["peak"] - out["base"]) / 2**20
    report.info["extra_peak_mb"] = round(extra_mb, 1)
    assert extra_mb <= 500, f"extra peak memory {extra_mb:.0f} MB exceeds 500 MB"


# ---------------------------------------------------------------- the report


def _ratio_row(
    what: str, ours: float | None, ref: float | None, target: str, faster: bool, goal: float
) -> str:
    if ours is None or ref is None:
        return f"| {what} | n/a | n/a | n/a | {target} | not measured |"
    ratio = ref / ours if faster else ours / ref
    met = ratio >= goal if faster else ratio <= goal
    shown = f"{ratio:.0f}x faster" if faster and ratio >= 10 else f"{ratio:.2f}x"
    return f"| {what} | {ours:.3f} | {ref:.3f} | {shown} | {target} | {'yes' if met else 'NO'} |"


README_START = "<!-- bench:metrics:start -->"
README_END = "<!-- bench:metrics:end -->"


def update_readme(path: Path, rep: Report) -> None:
    """Replace the ratio table between the README's benchmark markers (if both are there)."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return
    table = "\n".join(ratio_table(rep))
    body = f"{README_START}\n{table}\n{README_END}"
    path.write_text(text[:start] + body + text[end + len(README_END) :], encoding="utf-8")


def ratio_table(rep: Report) -> list[str]:
    """The comparison table (markdown lines): ratios, targets, and whether each is met."""
    s = rep.seconds
    lines = [
        "| comparison | ours (s) | reference (s) | ratio | target | met |",
        "|---|---|---|---|---|---|",
        _ratio_row(
            "CC suite (7 CC-Metrics, one call) vs ccmetrics 0.0.3 CC-Dice + CC-HD95 + CC-NSD",
            s.get("cc_suite"),
            s.get("ccmetrics"),
            ">= 100x faster",
            True,
            100.0,
        ),
        _ratio_row(
            "standard suite (Dice, HD95, NSD, ASSD) vs MONAI",
            s.get("standard_suite"),
            s.get("monai_standard"),
            ">= 3x faster",
            True,
            3.0,
        ),
        _ratio_row(
            f"full suite ({rep.info.get('full_suite_metrics', '?')} metrics: standard + CC + "
            "lesion) vs reading the two NIfTI files (SimpleITK)",
            s.get("full_suite"),
            s.get("read_nifti"),
            "<= 2x the read time",
            False,
            2.0,
        ),
    ]
    mem = rep.info.get("extra_peak_mb")
    if mem is not None:
        lines.append(
            f"| extra peak memory of the full suite (RSS above the loaded arrays) | {mem} MB "
            f"| | | <= 500 MB | {'yes' if mem <= 500 else 'NO'} |"
        )
    return lines


#: A section another benchmark maintains in the same file (``test_bench_hard.py``: ``hard``).
_MARKED_BLOCK = re.compile(r"<!-- bench:([\w-]+):start -->.*?<!-- bench:\1:end -->", re.DOTALL)


def keep_marked_blocks(old: str, new: str) -> str:
    """`new`, followed by every ``<!-- bench:NAME:start -->`` ... ``end`` block of `old` it lacks.

    The page is rewritten as a whole, but sections other benchmarks keep between their markers
    (the hard-input tables) survive, in their order.
    """
    kept = [
        m.group(0)
        for m in _MARKED_BLOCK.finditer(old)
        if f"<!-- bench:{m.group(1)}:start -->" not in new
    ]
    if not kept:
        return new
    return new.rstrip("\n") + "\n\n" + "\n\n".join(kept) + "\n"


def test_rewriting_the_page_keeps_other_benchmarks_sections() -> None:
    old = (
        "# Metrics benchmark\n\nold table\n\n<!-- bench:hard:start -->\n## Hard inputs\n| a |\n"
        "<!-- bench:hard:end -->\n\n<!-- bench:hard-history:start -->\nbefore\n"
        "<!-- bench:hard-history:end -->\n"
    )
    new = "# Metrics benchmark\n\nnew table\n"
    got = keep_marked_blocks(old, new)
    assert got.startswith(new.rstrip("\n"))
    assert "old table" not in got
    assert got.index("## Hard inputs") < got.index("before")
    assert got.count("<!-- bench:hard:start -->") == got.count("<!-- bench:hard:end -->") == 1
    assert keep_marked_blocks(got, new) == got  # stable when rewritten again
    assert keep_marked_blocks("", new) == new
    # a block the new page writes itself is not duplicated
    own = "x\n<!-- bench:hard:start -->\nfresh\n<!-- bench:hard:end -->\n"
    assert keep_marked_blocks(old, own).count("bench:hard:start") == 1


def render_markdown(rep: Report) -> str:
    """The benchmark page: one table of ratios, one of raw timings, and the case."""
    s = rep.seconds
    lines = [
        "# Metrics benchmark",
        "",
        "Generated by `scripts/bench.sh` (`tests/benchmarks/test_bench_metrics.py`); all numbers",
        "come from one run on one machine, so the ratios compare like with like. Times are the",
        "minimum over rounds (ccmetrics and MONAI: one round).",
        "",
        f"Case: {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} voxels (x, y, z), spacing "
        f"{SPACING[2]} x {SPACING[1]} x {SPACING[0]} mm, {LESIONS} generated lesions plus a few "
        f"touching neighbours ({rep.info.get('components', '?')} reference components), "
        "imperfect prediction; NIfTI files gzip-compressed.",
        "",
    ]
    lines += ratio_table(rep)
    lines += ["", "Raw timings (s):", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {key} | {value:.3f} |" for key, value in s.items()]
    lines += ["", "Values (sanity check that both sides computed the same case):", ""]
    for key in (
        "cc_means",
        "cc_means_voxel_mode",
        "ccmetrics_values",
        "standard_ours",
        "standard_monai",
    ):
        if key in rep.info:
            lines.append(f"- {key}: `{rep.info[key]}`")
    lines += [
        "",
        "ccmetrics works in voxel units (no spacing), so its values equal ours in `voxel` mode",
        "(`cc_means_voxel_mode`), not in the default mm mode on this anisotropic case; MONAI's",
        "standard metrics get the spacing and equal ours. Exact equality is tested in",
        "`tests/metrics/test_cc.py` and `tests/metrics/test_surface.py`.",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        "(shared with other jobs), Python "
        f"{platform.python_version()}, numpy {np.__version__}.",
        "",
    ]
    return "\n".join(lines)
