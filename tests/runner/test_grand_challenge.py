"""grand-challenge images run unchanged: an archive loaded by `submit --image-file`, its own user,
/input/inputs.json, a writable throw-away layer under a cap, .mha in and out.

The image (tests/runner/images/gc-algorithm) is built once, saved with `docker save` as .tar.gz,
and removed from the engine, so every test loads it from the archive as a participant's upload.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.errors import SubmissionError
from evaluator.runner.contract import Manifest, gc_inputs_json, gc_slugs
from evaluator.runner.run import run_cases
from evaluator.runner.submissions import load_image_archive, read_archive
from evaluator.store import Store
from evaluator.workspace import Workspace

from .conftest import ROOT, TIGHT, TinyDataset

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("leftover_check")]

GC_CONTEXT = ROOT / "tests" / "runner" / "images" / "gc-algorithm"
GC_TAG = "ccbench-test/gc-algorithm:latest"


@pytest.fixture(scope="session")
def gc_archive(
    docker_backend: Any, test_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The grand-challenge style image as `docker save | gzip` wrote it; not in the engine."""
    from evaluator.runner.images import BASE_IMAGES, build_context

    build_context(GC_CONTEXT, GC_TAG, base=BASE_IMAGES["sci"].tag)
    image = docker_backend.client.images.get(GC_TAG)
    path = tmp_path_factory.mktemp("gc") / "algorithm.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for chunk in image.save(named=True):
            fh.write(chunk)
    docker_backend.client.images.remove(image.id, force=True)
    return path


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _submit(archive: Path, ws: Workspace, name: str, *extra: str) -> Path:
    submissions = ws.root / "submissions"
    result = _cli(
        "submit", "--image-file", str(archive), "--name", name, "--task", "btcv-phantom",
        "--interface", "grand-challenge", "--submissions", str(submissions), "--pids", "64",
        "--memory-mb", "512", "--time-limit", "60", "--gpus", "never", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return submissions


def _errors(ws: Workspace) -> dict[str, str]:
    with Store.open(workspace=ws) as db:
        run = db.list_runs(task="btcv-phantom")[-1]
        frame = db.errors_frame(run_ids=[run.id])
        return dict(zip(frame["case_id"], frame["message"], strict=True))


def test_archive_runs_unchanged_with_the_grand_challenge_interface(
    gc_archive: Path, tiny: TinyDataset, workspace: Workspace, docker_backend: Any
) -> None:
    found = read_archive(gc_archive)
    assert found.tags == (GC_TAG,) and found.image_id.startswith("sha256:")
    submissions = _submit(gc_archive, workspace, "test-gc")
    manifest = yaml_manifest(submissions / "test-gc.yaml")
    assert manifest["image_digest"] == found.image_id and manifest["image"] == GC_TAG
    result = _cli(
        "run", "test-gc", "--task", "btcv-phantom", "--split", "all", "--submissions",
        str(submissions), "--data-root", str(tiny.root), "--workspace", str(workspace.root),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _errors(workspace) == {}
    run_dir = next(workspace.runs.iterdir())
    log = (run_dir / "logs" / "0001.log").read_text()
    assert "sockets: ct-image" in log  # found through /input/inputs.json
    details = json.loads((run_dir / "container.json").read_text())["container_runs"][0]["details"]
    assert details["filesystem"] == "ephemeral" and not details["user"].startswith("0:")
    assert details["user"] != "1000:1000"  # the image's own user, as on grand-challenge


def yaml_manifest(path: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(path.read_text()))


def test_the_same_image_under_a_read_only_root_fails_per_case(
    gc_archive: Path, tiny: TinyDataset, workspace: Workspace, docker_backend: Any
) -> None:
    submissions = _submit(gc_archive, workspace, "test-gc-ro")
    result = _cli(
        "run", "test-gc-ro", "--task", "btcv-phantom", "--split", "all", "--read-only",
        "--submissions", str(submissions), "--data-root", str(tiny.root),
        "--workspace", str(workspace.root),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    errors = _errors(workspace)
    assert sorted(errors) == ["0001", "0002", "0003"]
    assert all("Read-only file system" in message for message in errors.values()), errors


def test_the_writable_layer_is_capped(
    gc_archive: Path, tiny: TinyDataset, workspace: Workspace, docker_backend: Any
) -> None:
    found = load_image_archive(gc_archive, backend=docker_backend)
    manifest = Manifest(
        name="test-gc-fill",
        image=GC_TAG,
        image_digest=found.image_id,
        tasks=("btcv-phantom",),
        interface="grand-challenge",
        command=("fill",),
        resources=TIGHT.model_copy(
            update={"filesystem": "ephemeral", "layer_mb": 16, "time_limit_s": 60.0}
        ),
    )
    out = run_cases(
        manifest,
        tiny.cases[:1],
        task=tiny.task,
        run_dir=workspace.runs / "fill",
        backend=docker_backend,
        workspace=workspace,
    )
    run = out.container_runs[0]
    assert run.status == "layer_cap", (run.status, run.log[-300:])
    assert run.details["layer_mb"] is not None and run.details["layer_mb"] < 16 + 200
    assert "writable layer" in out.case_errors["0001"]


def test_archive_tags_never_move_a_local_image_silently(
    gc_archive: Path, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    other = docker_backend.client.images.get(test_images["hostile"])
    other.tag(GC_TAG)  # the archive's tag now names another local image
    try:
        with pytest.raises(SubmissionError, match="already names another local image"):
            load_image_archive(gc_archive, backend=docker_backend)
        assert docker_backend.client.images.get(GC_TAG).id == other.id
        found = load_image_archive(gc_archive, backend=docker_backend, replace_tags=True)
        assert docker_backend.client.images.get(GC_TAG).id == found.image_id
    finally:
        docker_backend.client.images.remove(GC_TAG, force=True)


def test_archives_that_are_too_large_or_not_archives_are_refused(
    gc_archive: Path, tmp_path: Path, docker_backend: Any
) -> None:
    with pytest.raises(SubmissionError, match="GiB accepted"):
        read_archive(gc_archive, max_bytes=1024)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive" * 100)
    with pytest.raises(SubmissionError, match="not a readable"):
        load_image_archive(junk, backend=docker_backend)


def test_inputs_json_lists_every_input_socket() -> None:
    from evaluator.datasets.registry import load_registry

    task = load_registry().task("autopet-phantom")
    manifest = Manifest(name="x", image="x", image_digest="sha256:" + "0" * 64, tasks=(task.name,))
    values = gc_inputs_json(gc_slugs(manifest, task), task.channels, "abc")
    assert [v["interface"]["slug"] for v in values] == ["ct-image", "pet-image"]
    assert [v["interface"]["relative_path"] for v in values] == ["images/ct", "images/pet"]
    assert all(v["image"]["name"] == "abc.mha" for v in values)


@pytest.mark.parametrize("gpus", ["all", 2])
def test_required_gpus_fail_clearly_on_a_host_without_them(
    gpus: Any,
    tiny: TinyDataset,
    workspace: Workspace,
    docker_backend: Any,
    test_images: dict[str, str],
) -> None:
    from .conftest import hostile_manifest

    if docker_backend.gpus_available(test_images["hostile"]):
        pytest.skip("this host has GPUs: the run would get them")
    manifest = hostile_manifest(
        test_images["hostile"], "good", resources=TIGHT.model_copy(update={"gpus": gpus})
    )
    with pytest.raises(SubmissionError, match="requires GPUs"):  # the run never starts
        run_cases(
            manifest,
            tiny.cases[:1],
            task=tiny.task,
            run_dir=workspace.runs / "gpu",
            backend=docker_backend,
            workspace=workspace,
        )
    assert not (workspace.runs / "gpu").exists()


def _drop(docker_backend: Any, tag: str) -> None:
    """Remove a test image; a daemon too busy to answer in time leaves it for the next build."""
    import contextlib

    import docker
    import requests

    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        docker_backend.client.images.remove(tag, force=True)


def _build(docker_backend: Any, tag: str, dockerfile: str) -> str:
    """An image from a Dockerfile text on the local sci base; its id."""
    import io

    from evaluator.runner.images import BASE_IMAGES

    text = f"FROM {BASE_IMAGES['sci'].tag}\n{dockerfile}"
    image, _ = docker_backend.client.images.build(
        fileobj=io.BytesIO(text.encode()), tag=tag, rm=True
    )
    return str(image.id)


def test_image_volumes_are_capped_tmpfs_and_leave_nothing_behind(
    tiny: TinyDataset, workspace: Workspace, docker_backend: Any, test_images: dict[str, str]
) -> None:
    """A VOLUME would be an uncapped, writable host folder, even under a read-only root."""
    script = (
        "import os,json,shutil;"
        "n=0\\ntry:\\n for i in range(64):\\n  open(f'/scratch/{i}','wb').write(b'x'*2**20); n+=1\\n"
        "except OSError as e: print('stopped', n, e.strerror)\\n"
        "for c in json.load(open('/input/cases.json'))['cases']:\\n"
        " shutil.copy('/input/'+c['channels']['CT'], '/output/'+c['case_id']+'.nii.gz')"
    )
    digest = _build(
        docker_backend,
        "ccbench-test/volume:latest",
        f'VOLUME /scratch\nENTRYPOINT ["python", "-c", "{script}"]\n',
    )
    volumes_before = {v.name for v in docker_backend.client.volumes.list()}
    manifest = Manifest(
        name="test-volume",
        image="ccbench-test/volume:latest",
        image_digest=digest,
        tasks=("btcv-phantom",),
        resources=TIGHT,  # read-only root, /tmp-like folders of 16 MiB
    )
    try:
        out = run_cases(
            manifest, tiny.cases[:1], task=tiny.task, run_dir=workspace.runs / "vol",
            backend=docker_backend, workspace=workspace,
        )  # fmt: skip
        log = out.container_runs[0].log
        assert "stopped" in log and int(log.split("stopped ")[1].split()[0]) <= 16, log
        assert {v.name for v in docker_backend.client.volumes.list()} <= volumes_before
    finally:
        _drop(docker_backend, "ccbench-test/volume:latest")


@pytest.mark.parametrize(
    "dockerfile",
    [
        "RUN mv /etc/passwd /etc/passwd.real && ln -s passwd.real /etc/passwd\\nUSER nobody",
        "USER ²",
        "RUN echo 'big:x:99999999999:99999999999::/:/bin/sh' >> /etc/passwd\\nUSER big",
        "RUN python -c \"open('/etc/passwd','a').write('#'*(3*2**20))\"\\nUSER nobody",
        "RUN echo 'app:x:4242:0::/:/bin/sh' >> /etc/passwd\\nUSER app",
        "USER 4243:0",
    ],
)
def test_odd_image_users_never_crash_and_never_run_as_root(
    dockerfile: str, docker_backend: Any
) -> None:
    from evaluator.runner.docker_backend import DockerBackend

    digest = _build(docker_backend, "ccbench-test/user:latest", dockerfile.replace("\\n", "\n"))
    try:
        manifest = Manifest(
            name="test-user", image="x", image_digest=digest, tasks=("btcv-phantom",)
        )
        uid, gid = DockerBackend(docker_backend.client).user_for(manifest)
        assert uid > 0 and gid > 0 and uid < 2**31 - 1
    finally:
        _drop(docker_backend, "ccbench-test/user:latest")
