"""`ccbench preflight` names each seeded fault, each in its own test image, with its fix."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.runner.contract import Resources
from evaluator.runner.preflight import PreflightReport, preflight
from evaluator.workspace import Workspace

from .conftest import ROOT, TinyDataset

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("leftover_check")]

FAULTY = ROOT / "tests" / "runner" / "images" / "faulty"
#: fault -> (the finding expected, its severity, the interface it is run with)
FAULTS: dict[str, tuple[str | None, str | None, str]] = {
    "none": (None, None, "batch"),
    "nooutput": ("no_output", "error", "batch"),
    "wrongname": ("wrong_name", "error", "batch"),
    "wrongslug": ("wrong_slug", "error", "grand-challenge"),
    "geometry": ("geometry", "error", "batch"),
    "nan": ("nan", "error", "batch"),
    "labels": ("labels", "error", "batch"),
    "slow": ("time", "error", "batch"),
    "memory": ("memory", "error", "batch"),
    "network": ("network", "error", "batch"),
    "crash": ("exit_code", "error", "grand-challenge"),  # a failed job: outputs not used
    "writes": ("writes", "warning", "batch"),
    "twofiles": ("output", "error", "batch"),
}
SMALL = Resources(memory_mb=256, cpus=1.0, pids=64, time_limit_s=4.0, tmp_mb=16, gpus="never")


def _tag(fault: str) -> str:
    return f"ccbench-test/faulty-{fault}:latest"


@pytest.fixture(scope="session")
def faulty_images(docker_backend: Any, test_images: dict[str, str]) -> dict[str, str]:
    """One image per fault (same program, the fault baked in at build time)."""
    from evaluator.runner.images import BASE_IMAGES

    base = BASE_IMAGES["sci"].tag
    for fault in FAULTS:
        docker_backend.client.images.build(
            path=str(FAULTY), tag=_tag(fault), buildargs={"BASE": base, "FAULT": fault}, rm=True
        )
    return {fault: _tag(fault) for fault in FAULTS}


def _preflight(fault: str, tiny: TinyDataset, ws: Workspace, backend: Any) -> PreflightReport:
    return preflight(
        _tag(fault),
        task="btcv-phantom",
        workspace=ws,
        interface=FAULTS[fault][2],  # type: ignore[arg-type]
        cases=2,
        data_root=tiny.root,
        resources=SMALL,
        backend=backend,
    )


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_each_seeded_fault_is_named_with_its_fix(
    fault: str,
    faulty_images: dict[str, str],
    tiny: TinyDataset,
    workspace: Workspace,
    docker_backend: Any,
) -> None:
    report = _preflight(fault, tiny, workspace, docker_backend)
    code, severity, _ = FAULTS[fault]
    errors = [f for f in report.findings if f.severity == "error"]
    if code is None:
        assert report.ok and not errors, report.findings
        assert report.scored["dice"] > 0
        return
    found = [f for f in report.findings if f.code == code]
    assert found, (fault, report.findings)
    assert found[0].severity == severity and found[0].fix
    assert report.ok is (severity == "warning")
    if severity == "error":  # the fault is named first, not drowned in follow-on noise
        assert errors[0].code == code or code in {f.code for f in errors}
    assert not any(workspace.tmp.iterdir()) and not list((workspace.root / "preflight").glob("*/*"))


def test_exit_code_says_whether_the_image_would_be_scored(
    faulty_images: dict[str, str], tiny: TinyDataset, workspace: Workspace
) -> None:
    base = ["--task", "btcv-phantom", "--data-root", str(tiny.root), "--workspace",
            str(workspace.root), "--memory-mb", "256", "--time-limit", "20", "--gpus", "never"]  # fmt: skip
    good = CliRunner().invoke(app, ["preflight", _tag("none"), *base])
    assert good.exit_code == 0, good.output
    assert "would be scored" in good.output
    bad = CliRunner().invoke(app, ["preflight", _tag("labels"), *base])
    assert bad.exit_code == 1, bad.output
    assert "labels" in bad.output and "would not be scored" in bad.output
