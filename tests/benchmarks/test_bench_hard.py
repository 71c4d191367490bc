"""Hard inputs: the full metric suite against the time to read the two files, case by case.

Four seeded cases, each written as gzip-compressed NIfTI (reference + prediction) with
SimpleITK; label maps ``(z, y, x)``, spacings in mm:

* ``speckle``: the 400x400x300 case of :mod:`tests.benchmarks.test_bench_metrics` (60 ellipsoid
  lesions, imperfect prediction, spacing 0.98 x 0.98 x 3.0 mm) plus speckle, as a noisy SUV
  threshold gives: white noise smoothed with a Gaussian of one voxel, thresholded at its 99.7th
  percentile (tens of thousands of small false-positive components, most of one to ten voxels);
* ``slab``: the same case with a 4-million-voxel false-positive slab in the prediction
  (25 full 400x400 slices);
* ``one_voxel``: 10,000 one-voxel reference lesions on the same grid (never touching); the
  prediction hits half of them exactly, a quarter shifted by one voxel along x, misses a quarter,
  and adds 5,000 one-voxel false positives, so both maps hold about 10,000 components;
* ``btcv``: one BTCV phantom at its full size (512x512x128, 0.78 x 0.78 x 2.5 mm, 13 organ
  labels, :func:`evaluator.datasets.phantoms.write_phantoms`), predicted by the organs shifted by
  two voxels in-plane with every third organ eroded by one voxel.

Per case, all in one run: the read floor (SimpleITK reading both files, minimum of three), the
full suite (:func:`evaluator.metrics.api.compute_metrics` with every voxel metric and the labels
present, the call ``ccbench evaluate`` makes per case; minimum of two), their ratio (goal: at
most 3), and one run per metric family (overlap, surface, lesion, cc) so the slow part is
visible. Run with ``pytest tests/benchmarks/test_bench_hard.py --benchmark-only -s``; with
``$CCBENCH_BENCH_REPORT`` set (``scripts/bench.sh``) the markdown table replaces the section
between the ``bench:hard`` markers of that file (appended when missing).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.benchmarks.test_bench_metrics import SHAPE, SPACING, make_case

CASES = ("speckle", "slab", "one_voxel", "btcv")
FAMILIES = ("overlap", "surface", "lesion", "cc")
SLAB_SLICES = slice(140, 165)  # 25 x 400 x 400 = 4 M voxels
ONE_VOXEL_LESIONS = 10_000
ONE_VOXEL_FALSE_POSITIVES = 5_000
RATIO_GOAL = 3.0
REPORT_START = "<!-- bench:hard:start -->"
REPORT_END = "<!-- bench:hard:end -->"


# ---------------------------------------------------------------- the cases


def speckle_case(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """The metrics benchmark's case plus thresholded smoothed noise in the prediction (uint8)."""
    from scipy import ndimage

    pred, ref = make_case()
    noise = np.random.default_rng(seed).standard_normal(SHAPE, dtype=np.float32)
    ndimage.gaussian_filter(noise, 1.0, output=noise)
    threshold = np.quantile(noise[::4, ::4, ::4], 0.997)
    return (pred | (noise > threshold)).astype(np.uint8), ref


def slab_case() -> tuple[np.ndarray, np.ndarray]:
    """The metrics benchmark's case plus a 4 M-voxel slab of full slices in the prediction."""
    pred, ref = make_case()
    pred[SLAB_SLICES] = 1
    return pred, ref


def one_voxel_case(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """10,000 one-voxel reference lesions and a prediction of one-voxel components (uint8).

    Voxels sit on a lattice of step 3 (a shift by one along x keeps every pair apart), so no
    two components touch under any connectivity.
    """
    rng = np.random.default_rng(seed)
    sites = tuple(int(n) for n in (np.array(SHAPE) - 1) // 3)
    count = ONE_VOXEL_LESIONS + ONE_VOXEL_FALSE_POSITIVES
    flat = rng.choice(int(np.prod(sites)), count, replace=False)
    points = np.stack(np.unravel_index(flat, sites), axis=1) * 3 + 1
    lesions, false_positives = points[:ONE_VOXEL_LESIONS], points[ONE_VOXEL_LESIONS:]
    ref = np.zeros(SHAPE, np.uint8)
    ref[tuple(lesions.T)] = 1
    kind = rng.random(ONE_VOXEL_LESIONS)
    shifted = lesions[(kind >= 0.5) & (kind < 0.75)] + np.array([0, 0, 1])
    pred = np.zeros(SHAPE, np.uint8)
    for part in (lesions[kind < 0.5], shifted, false_positives):
        pred[tuple(part.T)] = 1
    return pred, ref


def btcv_case(folder: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """One full-size BTCV phantom label map, a shifted and partly eroded prediction, spacing."""
    import SimpleITK as sitk
    from scipy import ndimage

    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.workspace import Workspace

    ws = Workspace(folder / "ws").ensure()
    write_phantoms("btcv", workspace=ws, cases=1, size="full", out=folder / "btcv")
    image = sitk.ReadImage(str(next((folder / "btcv" / "label").glob("*.nii.gz"))))
    ref = sitk.GetArrayFromImage(image)
    pred = np.roll(ref, (2, 2), axis=(1, 2))
    for label in range(1, int(ref.max()) + 1, 3):
        organ = pred == label
        pred[organ & ~ndimage.binary_erosion(organ)] = 0
    return pred, ref, tuple(reversed(image.GetSpacing()))


# ---------------------------------------------------------------- fixtures


@dataclass
class HardCase:
    """One case in memory and on disk."""

    pred: np.ndarray
    ref: np.ndarray
    spacing: tuple[float, ...]
    pred_path: Path
    ref_path: Path


@dataclass
class Report:
    """Seconds per case and step, and facts about each case, from one run."""

    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)


def _write(folder: Path, pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]) -> HardCase:
    """Write both maps as gzip-compressed NIfTI (SimpleITK spacing: x first)."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    case = HardCase(pred, ref, spacing, folder / "pred.nii.gz", folder / "ref.nii.gz")
    for array, path in ((pred, case.pred_path), (ref, case.ref_path)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(reversed(spacing)))
        sitk.WriteImage(image, str(path), useCompression=True)
    return case


@pytest.fixture(scope="module")
def hard_case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], HardCase]:
    """Cases by name, built and written on first use."""
    options = request.config.getoption
    if options("benchmark_skip", default=False) and not options("benchmark_only", default=False):
        pytest.skip("benchmarks are skipped (run with --benchmark-only)")
    root = tmp_path_factory.mktemp("bench-hard")
    built: dict[str, HardCase] = {}

    def get(name: str) -> HardCase:
        if name not in built:
            if name == "btcv":
                pred, ref, spacing = btcv_case(root / "phantom")
            else:
                pred, ref = {"speckle": speckle_case, "slab": slab_case}.get(name, one_voxel_case)()
                spacing = SPACING
            built[name] = _write(root / name, pred, ref, spacing)
        return built[name]

    return get


@pytest.fixture(scope="module")
def report() -> Iterator[Report]:
    """The timings of the module; their section goes to ``$CCBENCH_BENCH_REPORT`` at the end."""
    rep = Report()
    yield rep
    if rep.seconds and os.environ.get("CCBENCH_BENCH_REPORT"):
        update_report(Path(os.environ["CCBENCH_BENCH_REPORT"]), rep)


# ---------------------------------------------------------------- the benchmark


def _min_seconds(func: Callable[[], Any], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", CASES)
def test_bench_hard(
    benchmark: Any, hard_case: Callable[[str], HardCase], report: Report, name: str
) -> None:
    import SimpleITK as sitk

    from evaluator.metrics.api import compute_metrics, present_labels
    from evaluator.metrics.lesion import label_components
    from evaluator.metrics.registry import METRICS, VOXEL_METRICS

    case = hard_case(name)
    labels = sorted(set(present_labels(case.pred)) | set(present_labels(case.ref)))

    def read() -> None:
        for path in (case.pred_path, case.ref_path):
            sitk.GetArrayFromImage(sitk.ReadImage(str(path)))

    def suite(metrics: tuple[str, ...]) -> Any:
        return compute_metrics(
            case.pred, case.ref, spacing=case.spacing, metrics=metrics, labels=labels
        )

    floor = _min_seconds(read, rounds=3)
    result = benchmark.pedantic(lambda: suite(VOXEL_METRICS), rounds=2, iterations=1)
    seconds = {"read_floor": floor, "full_suite": float(benchmark.stats.stats.min)}
    for family in FAMILIES:
        names = tuple(n for n in VOXEL_METRICS if METRICS[n].kind == family)
        seconds[family] = _min_seconds(lambda names=names: suite(names), rounds=1)
    components = {
        "ref_components": sum(len(v) for v in result.components.values()),
        "pred_components": sum(label_components(case.pred == lab)[1] for lab in labels),
        "pred_voxels": int(np.count_nonzero(case.pred)),
        "ref_voxels": int(np.count_nonzero(case.ref)),
        "labels": len(labels),
        "shape_zyx": list(case.ref.shape),
    }
    report.seconds[name] = seconds
    report.info[name] = components
    ratio = seconds["full_suite"] / floor
    benchmark.extra_info.update({**seconds, **components, "ratio_to_floor": ratio})
    print(name, {k: round(v, 3) for k, v in seconds.items()}, f"ratio {ratio:.2f}", components)


# ---------------------------------------------------------------- the report


def render_table(rep: Report) -> list[str]:
    """The markdown lines of the hard-input table (seconds, ratio, goal met) and case facts."""
    head = " | ".join(f"{f} (s)" for f in FAMILIES)
    lines = [
        f"| case | read floor (s) | full suite (s) | ratio | <= {RATIO_GOAL:g}x | {head} |",
        "|---|---|---|---|---|" + "---|" * len(FAMILIES),
    ]
    for name, s in rep.seconds.items():
        ratio = s["full_suite"] / s["read_floor"]
        families = " | ".join(f"{s[f]:.3f}" for f in FAMILIES)
        met = "yes" if ratio <= RATIO_GOAL else "NO"
        lines.append(
            f"| {name} | {s['read_floor']:.3f} | {s['full_suite']:.3f} | {ratio:.2f}x | {met} "
            f"| {families} |"
        )
    lines += [
        "",
        "| case | shape (z, y, x) | labels | pred voxels | pred components "
        "| ref voxels | ref components |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, i in rep.info.items():
        lines.append(
            f"| {name} | {'x'.join(map(str, i['shape_zyx']))} | {i['labels']} "
            f"| {i['pred_voxels']} | {i['pred_components']} | {i['ref_voxels']} "
            f"| {i['ref_components']} |"
        )
    return lines


def render_section(rep: Report) -> str:
    """The "Hard inputs" section, between its markers."""
    lines = [
        REPORT_START,
        "## Hard inputs",
        "",
        "Generated by `tests/benchmarks/test_bench_hard.py` (cases described there); all numbers",
        "from one run on one machine. Read floor: SimpleITK reading the two gzip-compressed",
        "NIfTI files (minimum of 3); full suite: `compute_metrics` with every voxel metric and",
        "the labels present (minimum of 2); one run per metric family. Components: 26-connected,",
        "summed over labels.",
        "",
        *render_table(rep),
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared with other jobs), Python {platform.python_version()}, numpy {np.__version__}.",
        REPORT_END,
    ]
    return "\n".join(lines)


def update_report(path: Path, rep: Report) -> None:
    """Replace the section between the markers of `path`, or append it (file created)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start, end = text.find(REPORT_START), text.find(REPORT_END)
    body = render_section(rep)
    if 0 <= start < end:
        text = text[:start] + body + text[end + len(REPORT_END) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + body + "\n"
    path.write_text(text, encoding="utf-8")
