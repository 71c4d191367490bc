"""Local base images, built without any registry: ``ccbench images build-base``.

Four images, each built only when missing (idempotent):

``ccbench/python:bookworm-slim``
    Debian bookworm ``minbase`` made with ``debootstrap`` from the Debian mirror that apt on this
    host already uses, plus ``python3``, ``python3-venv`` and ``ca-certificates``; imported with
    ``docker import`` (about 190 MB). Needs root and ``debootstrap`` (``scripts/docker-engine.sh``
    installs it).
``ccbench/python-sci:bookworm``
    The above plus a virtual environment ``/opt/venv`` (on ``PATH``) with numpy, SimpleITK and
    nibabel.
``ccbench/python-torch:bookworm``
    The scientific image plus torch (CPU), MONAI and einops (MONAI's transformer blocks).
``ccbench/python-nnunet:bookworm``
    The torch image plus nnU-Net v2 (for ``ccbench submit --nnunet-results``), without the
    torchvision it pulls in (a CUDA build that cannot load with the CPU torch).

Containers cannot reach the package index, so wheels are fetched on the host with
``pip download`` (the host's pip configuration applies, including local wheel folders) into
``<workspace>/images/wheels/<image>`` and the image is built with ``--network none``, installing
from a build-time bind mount of that folder, so the wheels never stay in a layer. Builds use the
docker.io package's own client with BuildKit (``/usr/bin/docker`` when present). Dockerfiles take
the base image as the build argument ``BASE``, so ``python:3.11-slim`` works too where a registry
can be reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from evaluator.errors import DockerUnavailableError
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

__all__ = [
    "BASE_IMAGES",
    "BaseImageResult",
    "BaseImageSpec",
    "apt_mirror",
    "build_base_images",
    "build_context",
    "docker_client_path",
    "image_exists",
    "image_size_mb",
]

DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")

_VENV_DOCKERFILE = """\
ARG BASE
FROM ${{BASE}}
RUN [ -x /opt/venv/bin/python ] || python3 -m venv /opt/venv
RUN --mount=type=bind,source=wheels,target=/wheels \\
    /opt/venv/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \\
    --find-links /wheels {packages}{remove}
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
CMD ["python"]
"""


@dataclass(frozen=True)
class BaseImageSpec:
    """One local base image.

    Attributes
    ----------
    key
        Short name used on the command line (``python``, ``sci``, ``torch``).
    tag
        Image tag in the local engine.
    parent
        Key of the image it is built on (``None``: made with debootstrap).
    packages
        Python distributions installed into ``/opt/venv`` (pip requirement strings).
    remove
        Distributions uninstalled again after the install (pulled in, but unusable here).
    build
        Build wheels of packages published as source only (``pip wheel``) on the host.
    """

    key: str
    tag: str
    parent: str | None
    packages: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    build: bool = False


#: The local base images, in build order.
BASE_IMAGES: dict[str, BaseImageSpec] = {
    "python": BaseImageSpec("python", "ccbench/python:bookworm-slim", None),
    "sci": BaseImageSpec(
        "sci", "ccbench/python-sci:bookworm", "python", ("numpy", "SimpleITK", "nibabel")
    ),
    "torch": BaseImageSpec(
        "torch", "ccbench/python-torch:bookworm", "sci", ("torch", "monai", "einops")
    ),
    # timm (a dependency of nnU-Net's network library) pulls torchvision, whose only build here
    # is a CUDA one that cannot load with the CPU torch; nnU-Net's inference does not use it.
    "nnunet": BaseImageSpec(
        "nnunet", "ccbench/python-nnunet:bookworm", "torch", ("nnunetv2",), ("torchvision",), True
    ),
}


@dataclass(frozen=True)
class BaseImageResult:
    """What :func:`build_base_images` did for one image.

    ``status`` is ``"exists"`` (skipped), ``"built"``; ``seconds`` is the wall time spent.
    """

    key: str
    tag: str
    status: Literal["exists", "built"]
    seconds: float
    size_mb: float


def docker_client_path() -> str:
    """The Docker client used for builds: the docker.io package's, else the first on ``PATH``.

    Raises
    ------
    DockerUnavailableError
        When no client is installed.
    """
    if os.access("/usr/bin/docker", os.X_OK):
        return "/usr/bin/docker"
    found = shutil.which("docker")
    if found is None:
        raise DockerUnavailableError(
            "no Docker client installed: run `bash scripts/docker-engine.sh` (as root) or install "
            "Docker; for development use `ccbench run --backend local`"
        )
    return found


def _docker(args: Sequence[str], *, check: bool = True, **kwargs: object) -> str:
    cmd = [docker_client_path(), *args]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, **kwargs)  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip()[-2000:]
        if "Cannot connect to the Docker daemon" in tail or "permission denied" in tail.lower():
            raise DockerUnavailableError(
                f"the Docker engine does not answer ({tail.splitlines()[-1] if tail else ''}): "
                "run `bash scripts/docker-engine.sh` or use `--backend local`"
            )
        raise DockerUnavailableError(f"`docker {' '.join(args[:2])}` failed: {tail}")
    return str(proc.stdout)


def image_exists(tag: str) -> bool:
    """True when the local engine has an image called ``tag``."""
    cmd = [docker_client_path(), "image", "inspect", "--format", "{{.Id}}", tag]
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def image_size_mb(tag: str) -> float:
    """Size of a local image, MB (10^6 bytes)."""
    out = _docker(["image", "inspect", "--format", "{{.Size}}", tag]).strip()
    return int(out) / 1e6 if out.isdigit() else float("nan")


def apt_mirror(sources: Sequence[Path] | None = None, *, suite: str = DEBIAN_SUITE) -> str:
    """The Debian mirror apt on this host uses for ``suite`` (not the security archive).

    Reads deb822 ``*.sources`` files and one-line ``sources.list`` files.

    Parameters
    ----------
    sources
        Files to read [default: ``/etc/apt/sources.list`` and ``/etc/apt/sources.list.d/*``].
    suite
        Distribution code name that must be listed.

    Raises
    ------
    DockerUnavailableError
        When no source lists ``suite``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.sources").write_text(
    ...     "Types: deb\\nURIs: http://mirror.example/debian\\nSuites: bookworm bookworm-updates\\n"
    ...     "\\nTypes: deb\\nURIs: http://mirror.example/debian-security\\n"
    ...     "Suites: bookworm-security\\n")
    >>> apt_mirror([d / "a.sources"])
    'http://mirror.example/debian'
    """
    if sources is None:
        etc = Path("/etc/apt")
        sources = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (k.strip().lower(), v.strip())
                    for k, v in (
                        line.split(":", 1)
                        for line in stanza.splitlines()
                        if ":" in line and not line.startswith("#")
                    )
                )
                if (
                    "deb" in fields.get("types", "").split()
                    and suite in fields.get("suites", "").split()
                ):
                    return fields.get("uris", "").split()[0]
        elif path.name.endswith(".list"):
            for line in text.splitlines():
                parts = re.sub(r"\[[^]]*\]", "", line).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite:
                    return parts[1]
    raise DockerUnavailableError(
        f"no apt source for Debian '{suite}' in {', '.join(map(str, sources))}: cannot debootstrap"
    )


def _debootstrap_base(tag: str, workdir: Path) -> None:
    """Make ``tag`` from a debootstrap minbase tree (root only)."""
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.access(debootstrap, os.X_OK):
        raise DockerUnavailableError(
            "debootstrap is not installed: run `bash scripts/docker-engine.sh` as root"
        )
    if os.geteuid() != 0:
        raise DockerUnavailableError(f"building {tag} with debootstrap needs root")
    mirror = apt_mirror()
    workdir.mkdir(parents=True, exist_ok=True)
    rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=workdir))
    try:
        _run([debootstrap, "--variant=minbase", DEBIAN_SUITE, str(rootfs), mirror], what=tag)
        # Refuse service starts inside the chroot while packages are installed.
        policy = rootfs / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        apt = ["chroot", str(rootfs), "apt-get", "-y", "-q"]
        _run([*apt, "install", "--no-install-recommends", *DEBIAN_PACKAGES], what=tag, env=env)
        _run([*apt, "clean"], what=tag, env=env)
        policy.unlink()
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        imp = subprocess.run(
            [docker_client_path(), "import", "--change", 'CMD ["python3"]', "-", tag],
            stdin=tar.stdout,
            capture_output=True,
            check=False,
        )
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise DockerUnavailableError(
                f"docker import of {tag} failed: {imp.stderr.decode(errors='replace')[-500:]}"
            )
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)


def _run(cmd: Sequence[str], *, what: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise DockerUnavailableError(
            f"building {what}: `{' '.join(cmd[:3])} ...` failed ({proc.returncode}): {tail}"
        )


def _download_wheels(packages: Sequence[str], dest: Path, *, build: bool = False) -> None:
    """``pip download`` binary wheels for the host's Python into ``dest`` (kept as a cache).

    With ``build``, ``pip wheel`` also builds wheels of source-only packages.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if build:
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--prefer-binary"]
        cmd += ["--wheel-dir", str(dest)]
    else:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
        cmd += ["--dest", str(dest)]
    constraints = Path(__file__).resolve().parents[2] / "constraints.txt"
    if constraints.is_file():
        cmd += ["-c", str(constraints)]
    _run([*cmd, *packages], what=f"wheels for {', '.join(packages)}")


def build_context(
    context: Path,
    tag: str,
    *,
    base: str | None = None,
    build_args: dict[str, str] | None = None,
    network: bool = False,
) -> None:
    """Build a Dockerfile build context with BuildKit, without network by default.

    Parameters
    ----------
    context
        Folder holding ``Dockerfile``.
    tag
        Tag of the image built.
    base
        Value of the ``BASE`` build argument (the Dockerfile's ``FROM ${BASE}``).
    build_args
        Further build arguments.
    network
        Allow network access during ``RUN`` steps (default: ``--network none``).

    Raises
    ------
    DockerUnavailableError
        When the engine is missing or the build fails (the message ends with the build log tail).
    """
    args = ["build", "--quiet", "-t", tag]
    if not network:
        args += ["--network", "none"]
    for key, value in {**({"BASE": base} if base else {}), **(build_args or {})}.items():
        args += ["--build-arg", f"{key}={value}"]
    _docker([*args, str(context)])


def build_base_images(
    workspace: Workspace,
    *,
    images: Sequence[str] | None = None,
    force: bool = False,
    progress: ProgressHook | None = None,
) -> list[BaseImageResult]:
    """Build the local base images that are missing (parents first).

    Parameters
    ----------
    workspace
        Build folders and the wheel cache go to ``workspace.images``.
    images
        Keys of :data:`BASE_IMAGES` (default: all); their parents are added.
    force
        Rebuild even when the tag exists.
    progress
        Called as ``progress(done, total, status)`` before each stage of each image (images
        done of those wanted; the stage: exists, debootstrap, wheels, docker build).

    Returns
    -------
    list of BaseImageResult
        One per image, in build order.

    Raises
    ------
    DockerUnavailableError
        Unknown key, no engine, not root for debootstrap, or a failed step (named).
    """
    import time

    images = list(BASE_IMAGES) if images is None else images
    unknown = [k for k in images if k not in BASE_IMAGES]
    if unknown:
        raise DockerUnavailableError(
            f"unknown base image(s) {unknown} (known: {', '.join(BASE_IMAGES)})"
        )
    wanted: list[str] = []
    for key in images:
        chain = []
        cur: str | None = key
        while cur is not None:
            chain.append(cur)
            cur = BASE_IMAGES[cur].parent
        wanted += [k for k in reversed(chain) if k not in wanted]
    order = [k for k in BASE_IMAGES if k in wanted]
    tick = progress or (lambda done, total, status: None)
    results = []
    for done, key in enumerate(order):
        spec = BASE_IMAGES[key]
        start = time.perf_counter()
        if image_exists(spec.tag) and not force:
            results.append(BaseImageResult(key, spec.tag, "exists", 0.0, image_size_mb(spec.tag)))
            tick(done + 1, len(order), f"{spec.tag} exists")
            continue
        folder = workspace.images / key
        if spec.parent is None:
            tick(done, len(order), f"{spec.tag}: debootstrap and apt (a minute or two)")
            _debootstrap_base(spec.tag, folder)
        else:
            tick(done, len(order), f"{spec.tag}: downloading wheels")
            _download_wheels(spec.packages, folder / "wheels", build=spec.build)
            tick(done, len(order), f"{spec.tag}: docker build")
            remove = (
                " \\\n    && /opt/venv/bin/pip uninstall --yes --quiet " + " ".join(spec.remove)
                if spec.remove
                else ""
            )
            (folder / "Dockerfile").write_text(
                _VENV_DOCKERFILE.format(packages=" ".join(spec.packages), remove=remove)
            )
            build_context(folder, spec.tag, base=BASE_IMAGES[spec.parent].tag)
        elapsed = time.perf_counter() - start
        results.append(BaseImageResult(key, spec.tag, "built", elapsed, image_size_mb(spec.tag)))
        tick(done + 1, len(order), f"{spec.tag} built in {elapsed:.0f} s")
    return results
