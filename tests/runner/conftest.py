"""Fixtures of the runner tests: a tiny BTCV-layout dataset, the Docker engine and test images.

Container tests are marked ``docker``. When no Docker engine answers, ``scripts/docker-engine.sh``
is run once to install and start one (as root); only when that fails too are they skipped, with
the script's reason.
Images are built once per session on the local base image (``ccbench images build-base``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import Case
from evaluator.datasets.registry import TaskSpec, load_registry
from evaluator.errors import DockerUnavailableError
from evaluator.runner.contract import Manifest, Resources
from evaluator.runner.docker_backend import labelled_containers
from evaluator.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_CONTEXT = ROOT / "tests" / "runner" / "images" / "hostile"
BASELINE_CONTEXT = ROOT / "baselines" / "threshold"
HOSTILE_TAG = "ccbench-test/hostile:latest"
BASELINE_TAG = "ccbench-test/threshold:latest"
SHAPE = (6, 8, 10)  # (z, y, x)
SPACING = (1.0, 1.5, 2.0)  # SimpleITK order (x, y, z), mm
#: Small, fast limits for misbehaving containers.
TIGHT = Resources(
    memory_mb=256,
    cpus=1.0,
    pids=64,
    time_limit_s=3.0,
    tmp_mb=16,
    output_mb=1,
    gpus="never",
    filesystem="read-only",
)


@dataclass(frozen=True)
class TinyDataset:
    """A BTCV-layout dataset: ``img/imgNNNN.nii.gz`` (CT) and ``label/labelNNNN.nii.gz``."""

    root: Path
    task: TaskSpec
    cases: list[Case]
    ct: dict[str, np.ndarray]
    label: dict[str, np.ndarray]


def _write(path: Path, arr: np.ndarray) -> None:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin((-3.0, 2.0, 5.0))
    sitk.WriteImage(img, str(path))


def make_tiny_btcv(root: Path, n: int = 3) -> TinyDataset:
    """``n`` cases: a 200 HU block labelled 1 (spleen) and a 250 HU block left unlabelled.

    The threshold baseline (100..300 HU -> 1) therefore finds the spleen block exactly plus one
    false-positive block; the expected Dice is computed from these arrays in the tests.
    """
    (root / "img").mkdir(parents=True)
    (root / "label").mkdir()
    ct, label, cases = {}, {}, []
    task = load_registry().task("btcv-phantom")
    for i in range(1, n + 1):
        arr = np.full(SHAPE, -500, dtype=np.int16)
        lab = np.zeros(SHAPE, dtype=np.uint8)
        arr[1:4, 2:5, 1 : 3 + i] = 200
        lab[1:4, 2:5, 1 : 3 + i] = 1
        arr[4:6, 6:8, 7:9] = 250
        cid = f"{i:04d}"
        _write(root / "img" / f"img{cid}.nii.gz", arr)
        _write(root / "label" / f"label{cid}.nii.gz", lab)
        ct[cid], label[cid] = arr, lab
        cases.append(
            Case(
                case_id=cid,
                channels={"CT": root / "img" / f"img{cid}.nii.gz"},
                label=root / "label" / f"label{cid}.nii.gz",
            )
        )
    return TinyDataset(root, task, cases, ct, label)


@pytest.fixture
def tiny(tmp_path: Path) -> TinyDataset:
    """Three tiny BTCV-layout cases in a fresh folder."""
    return make_tiny_btcv(tmp_path / "btcv")


@pytest.fixture(scope="session")
def docker_backend() -> Any:
    """A connected :class:`DockerBackend`; skips (with the reason) when no engine answers."""
    import subprocess

    from evaluator.runner.docker_backend import DockerBackend

    try:
        return DockerBackend()
    except DockerUnavailableError:
        # Try to set one up (installs and starts dockerd when root), then ask again.
        script = ROOT / "scripts" / "docker-engine.sh"
        proc = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, check=False, timeout=900
        )
        try:
            return DockerBackend()
        except DockerUnavailableError as err:
            why = (proc.stderr.strip().splitlines() or [""])[-1]
            pytest.skip(f"no Docker engine ({why or err})")


@pytest.fixture(scope="session")
def test_images(
    docker_backend: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Build the local base image (if missing), the hostile and the baseline test images.

    At the end of the session every ``ccbench-test/*`` tag is removed again (the engine's
    build cache keeps the next session's builds quick; an image that also has another tag
    keeps it); the base images stay.
    """
    import contextlib

    import docker

    from evaluator.runner.images import BASE_IMAGES, build_base_images, build_context

    cache = Workspace(tmp_path_factory.mktemp("image-cache"))
    build_base_images(cache, images=["sci"])
    base = BASE_IMAGES["sci"].tag
    build_context(HOSTILE_CONTEXT, HOSTILE_TAG, base=base)
    build_context(BASELINE_CONTEXT, BASELINE_TAG, base=base)
    yield {
        "hostile": docker_backend.image_id(HOSTILE_TAG),
        "baseline": docker_backend.image_id(BASELINE_TAG),
    }
    # by tag: an image that also carries another tag (a user's identical build) keeps it
    images = docker_backend.client.images
    for image in images.list(filters={"reference": "ccbench-test/*"}):
        for tag in (t for t in image.tags if t.startswith("ccbench-test/")):
            with contextlib.suppress(docker.errors.APIError):
                images.remove(tag)


def hostile_manifest(
    digest: str,
    mode: str,
    *,
    resources: Resources = TIGHT,
    args: tuple[str, ...] = (),
    **fields: Any,
) -> Manifest:
    """An entry running the hostile image in ``mode`` (with ``args``) on ``btcv-phantom``."""
    return Manifest(
        name=f"hostile-{mode}",
        image=HOSTILE_TAG,
        image_digest=digest,
        tasks=("btcv-phantom",),
        command=(mode, *args),
        resources=resources,
        **fields,
    )


@pytest.fixture
def leftover_check(docker_backend: Any) -> Iterator[None]:
    """Fails the test when a container of a test entry (``hostile-*``, ``test-*``) survives it."""

    def ours() -> set[str]:
        found = labelled_containers(docker_backend.client, "ccbench.entry")
        return {
            c.name
            for c in found
            if c.labels.get("ccbench.entry", "").startswith(("hostile-", "test-"))
        }

    before = ours()
    yield
    left = ours() - before
    assert not left, f"containers left behind: {sorted(left)}"
