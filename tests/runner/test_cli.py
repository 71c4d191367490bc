"""The ``images build-base``, ``submit`` and ``run`` commands through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.runner.contract import load_manifest

from .conftest import BASELINE_CONTEXT, BASELINE_TAG, TinyDataset

runner = CliRunner()


def _run_args(entry: str, subs: Path, tiny: TinyDataset, tmp_path: Path) -> list[str]:
    return [
        *("run", entry, "-t", "btcv-phantom", "-s", "all", "--submissions", str(subs)),
        *("--data-root", str(tiny.root), "-w", str(tmp_path / "ws")),
    ]


@pytest.mark.docker
def test_build_base_skips_existing_images(test_images: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["images", "build-base", "--image", "sci", "-w", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "ccbench/python:bookworm-slim" in result.output and "exists" in result.output


@pytest.mark.docker
@pytest.mark.usefixtures("leftover_check")
def test_submit_then_run(tiny: TinyDataset, test_images: dict[str, str], tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    args = ["submit", BASELINE_TAG, "--name", "test-cli", "--task", "btcv-phantom"]
    args += ["--memory-mb", "512", "--time-limit", "20", "--gpus", "never"]
    result = runner.invoke(app, [*args, "--submissions", str(subs)])
    assert result.exit_code == 0, result.output
    assert load_manifest("test-cli", submissions_dir=subs).image_digest == test_images["baseline"]
    result = runner.invoke(
        app,
        _run_args("test-cli", subs, tiny, tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "3/3 with a prediction" in result.output
    assert test_images["baseline"][:20] in result.output


def test_run_local_backend(tiny: TinyDataset, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    cmd = f"{{python}} {BASELINE_CONTEXT / 'predict.py'}"
    result = runner.invoke(
        app,
        [
            "submit",
            "any:tag",
            "--name",
            "dev",
            "-t",
            "btcv-phantom",
            "--command",
            cmd,
            "--submissions",
            str(subs),
        ],
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )
    # Without an engine the image cannot be inspected: a clear one-line error.
    assert result.exit_code == 1
    assert "no Docker engine answers" in result.output and "--backend local" in result.output
    subs.mkdir()
    (subs / "dev.yaml").write_text(
        "name: dev\nimage: any:tag\nimage_digest: sha256:" + "0" * 64 + "\n"
        f"tasks: [btcv-phantom]\ncommand: ['{{python}}', '{BASELINE_CONTEXT / 'predict.py'}']\n"
    )
    result = runner.invoke(
        app,
        [*_run_args("dev", subs, tiny, tmp_path), "--backend", "local", "--no-evaluate"],
    )
    assert result.exit_code == 0, result.output
    assert "3/3 with a prediction" in result.output and "local" in result.output


def test_run_docker_without_engine_says_what_to_do(
    tiny: TinyDataset, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "dev.yaml").write_text(
        "name: dev\nimage: any:tag\nimage_digest: sha256:" + "0" * 64 + "\ntasks: [btcv-phantom]\n"
    )
    result = runner.invoke(
        app,
        _run_args("dev", subs, tiny, tmp_path),
    )
    assert result.exit_code == 1
    assert "scripts/docker-engine.sh" in result.output


def test_manifests_live_in_the_workspace_and_run_also_reads_the_repository_folder(
    tiny: TinyDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`baselines build`, `submit` and the demo write to WORKSPACE/submissions, where `run` looks
    first; an entry found only in ./submissions is read from there."""
    manifest = (
        "name: {name}\nimage: any:tag\nimage_digest: sha256:" + "0" * 64 + "\n"
        f"tasks: [btcv-phantom]\ncommand: ['{{python}}', '{BASELINE_CONTEXT / 'predict.py'}']\n"
    )
    ws = tmp_path / "ws"
    build = runner.invoke(app, ["baselines", "build", "--local", "-w", str(ws)])
    assert build.exit_code == 0, build.output
    assert (ws / "submissions" / "threshold.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "submissions").mkdir()
    (tmp_path / "submissions" / "repo-entry.yaml").write_text(
        manifest.replace("{name}", "repo-entry")
    )
    for entry in ("threshold", "repo-entry"):
        result = runner.invoke(
            app,
            [
                *("run", entry, "-t", "btcv-phantom", "-s", "all", "--backend", "local"),
                *("--no-evaluate", "--data-root", str(tiny.root), "-w", str(ws)),
            ],
        )
        assert result.exit_code == 0, (entry, result.output)
        assert "3/3 with a prediction" in result.output
    missing = runner.invoke(app, ["run", "nobody", "-t", "btcv-phantom", "-w", str(ws)])
    assert missing.exit_code == 1
    assert f"{ws / 'submissions' / 'nobody.yaml'} does not exist" in " ".join(
        missing.output.split()
    )
