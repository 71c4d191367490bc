"""``ccbench preflight``: run an image on a few cases exactly as ``ccbench run`` would, and say in
plain words what a platform would reject, with the fix for each.

The image runs in the same sandbox, through the same collection and ingestion path, and is scored
in a throw-away store; nothing is registered. A :class:`Finding` is an ``error`` (the image would
not be scored, or would be scored with worst values) or a ``warning`` (it works here but is close
to a limit, or would fail where organisers choose a read-only root). The command exits 0 only when
there is no error.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from evaluator.runner.contract import (
    ContainerRun,
    Interface,
    Manifest,
    Resources,
    gc_slugs,
)
from evaluator.typing import ProgressHook
from evaluator.workspace import Workspace

__all__ = ["Finding", "PreflightReport", "preflight"]

#: Log phrases of a failed network access (Python, requests, urllib, curl, wget, pip).
_NETWORK = re.compile(
    r"(Name or service not known|Temporary failure in name resolution|Network is unreachable"
    r"|getaddrinfo failed|Failed to establish a new connection|Could not resolve host"
    r"|urlopen error|Max retries exceeded with url|Connection refused|No route to host"
    r"|unable to resolve host|Failed to resolve)",
    re.IGNORECASE,
)
#: Share of a limit above which a warning is given.
_CLOSE = 0.8


@dataclass(frozen=True)
class Finding:
    """One thing a platform would reject (``error``) or that is close to failing (``warning``).

    Attributes
    ----------
    code
        Short name: ``no_output``, ``wrong_name``, ``wrong_slug``, ``geometry``, ``format``,
        ``nan``, ``labels``, ``time``, ``memory``, ``exit_code``, ``layer``, ``network``,
        ``writes``, ``dtype``, ``empty``, ``start``.
    severity
        ``error`` or ``warning``.
    what
        What was seen, in plain words (cases named).
    fix
        What to change.
    """

    code: str
    severity: Literal["error", "warning"]
    what: str
    fix: str


@dataclass
class PreflightReport:
    """What ``ccbench preflight`` found."""

    image: str
    task: str
    interface: str
    cases: list[str]
    findings: list[Finding] = field(default_factory=list)
    runs: list[ContainerRun] = field(default_factory=list)
    scored: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the image would be scored (no error finding)."""
        return not any(f.severity == "error" for f in self.findings)

    def add(self, code: str, severity: Literal["error", "warning"], what: str, fix: str) -> None:
        """Record a finding (once per code and text)."""
        finding = Finding(code, severity, what, fix)
        if finding not in self.findings:
            self.findings.append(finding)


def _cases_text(cases: Sequence[str]) -> str:
    return ", ".join(cases[:5]) + (f" and {len(cases) - 5} more" if len(cases) > 5 else "")


def _container_findings(
    report: PreflightReport, runs: Sequence[ContainerRun], res: Resources
) -> None:
    limit = res.time_limit_s
    for run in runs:
        where = "the split" if run.label == "split" else f"case {run.label}"
        budget = limit * (len(report.cases) if run.label == "split" else 1)
        if run.status == "timeout":
            report.add(
                "time", "error", f"{where}: ran past the time limit ({budget:g} s) and was killed",
                f"make inference faster or ask for a larger time_limit_s (now {limit:g} s per case)",
            )  # fmt: skip
        elif run.seconds > _CLOSE * budget:
            report.add(
                "time", "warning", f"{where}: took {run.seconds:.1f} s of its {budget:g} s",
                "leave room: the test cases may be larger than these",
            )  # fmt: skip
        peak = run.details.get("peak_memory_mb")
        if run.status == "oom":
            report.add(
                "memory", "error", f"{where}: ran out of its {res.memory_mb} MiB and was killed",
                "use less memory (smaller patches or batch size, float16) or ask for more "
                "memory_mb; /tmp and /output count against it",
            )  # fmt: skip
        elif peak is not None and peak > _CLOSE * res.memory_mb:
            report.add(
                "memory", "warning", f"{where}: peak memory {peak:.0f} MiB of {res.memory_mb} MiB",
                "leave room: larger cases need more memory",
            )  # fmt: skip
        if run.status == "exit":
            last = run.reason.split(": ", 1)[-1] if ": " in run.reason else ""
            per_case = report.interface == "grand-challenge"
            report.add(
                "exit_code", "error" if per_case else "warning",
                f"{where}: exited with code {run.exit_code}" + (f" ({last})" if last else ""),
                "exit 0 once every output is written: a non-zero exit code fails the job "
                + ("(its outputs are not used)" if per_case else "(cases whose outputs were "
                   "written are still scored in the batch interface)"),
            )  # fmt: skip
        if run.status in ("layer_cap", "output_cap"):
            report.add(
                "layer", "error", f"{where}: {run.reason}",
                f"write less (writable layer: {res.layer_mb} MiB, /output: {res.output_mb} MiB "
                "per case); delete working files when done",
            )  # fmt: skip
        if run.status == "error":
            report.add(
                "start", "error", f"{where}: {run.reason}",
                "check that the image runs with `docker run --network none` as a non-root user",
            )  # fmt: skip
        attempts = sorted({m.group(0) for m in _NETWORK.finditer(run.log)})
        if attempts:
            report.add(
                "network", "error", f"{where}: the log shows network access attempts "
                f"({'; '.join(attempts[:3])})",
                "there is no network: put model weights and every file the model needs into the "
                "image (COPY), and never download at run time",
            )  # fmt: skip
        writes = run.details.get("writes") or []
        if writes:
            shown = ", ".join(writes[:4]) + (" ..." if len(writes) > 4 else "")
            report.add(
                "writes", "warning", f"{where}: wrote outside /output and /tmp ({shown})",
                "fine in the ephemeral file system (thrown away after the run), refused where "
                "organisers choose a read-only root: keep working files under /tmp",
            )  # fmt: skip


def _output_findings(
    report: PreflightReport,
    case_errors: dict[str, str],
    rejected: Sequence[str],
    *,
    manifest: Manifest,
    task: Any,
) -> None:
    missing = [c for c, why in case_errors.items() if "no output" in why]
    if manifest.interface == "grand-challenge":
        slug = gc_slugs(manifest, task).output
        expected = f"/output/images/{slug}/<uuid>.mha (the uuid of the input image)"
        stray = [r for r in rejected if "not the output folder" in r]
        if stray:
            report.add(
                "wrong_slug", "error", f"outputs went to another folder: {stray[0].split(':')[0]}",
                f"write the segmentation to {expected}",
            )  # fmt: skip
    else:
        expected = "/output/<case_id>.nii.gz (or .nii, .mha), named exactly after the case id"
        stray = [r for r in rejected if "not <case_id><ext>" in r]
        if stray:
            names = ", ".join(r.split(":")[0] for r in stray[:3])
            report.add(
                "wrong_name", "error", f"files with names that match no case: {names}",
                f"name each prediction after its case: {expected}; cases are listed in "
                "/input/cases.json",
            )  # fmt: skip
    if missing and not stray:
        report.add(
            "no_output", "error", f"no prediction for {_cases_text(missing)}",
            f"write {expected}",
        )  # fmt: skip
    other = {c: why for c, why in case_errors.items() if c not in missing}
    for case, why in other.items():
        if "not an accepted format" in why:
            report.add("format", "error", f"case {case}: {why}",
                       "write NIfTI (.nii.gz) or MetaImage (.mha)")  # fmt: skip
        elif "no output used" not in why:  # several files, links, special files, too large
            report.add("output", "error", f"case {case}: {why}",
                       f"write exactly one regular file per case: {expected}")  # fmt: skip


_SCORING_FIXES = {
    "geometry": "copy the input image's geometry onto the prediction (SimpleITK: "
    "out.CopyInformation(input_image)); same size, spacing, origin and direction",
    "format": "write single-file NIfTI (.nii.gz) or MetaImage (.mha, ElementDataFile = LOCAL)",
    "unsafe": "write a regular file with its pixel data inside it (no links, no detached data)",
    "undecodable": "write a complete, valid .nii.gz or .mha file",
    "nan": "write integer labels; no NaN or infinite values",
    "label": "write only the task's label values",
    "scoring_limit": "the prediction is far too large or complex to score: check it",
}


def _scoring_findings(report: PreflightReport, errors: Any, task: Any) -> None:
    labels = "{0 (background), " + ", ".join(f"{k} ({v})" for k, v in task.labels.items()) + "}"
    codes = {"label": "labels", "undecodable": "format", "unsafe": "format"}
    for row in errors.itertuples():
        cls = str(row.error_class)
        if cls in ("container", "missing", "dataset"):
            continue
        if cls == "empty":
            report.add(
                "empty", "warning", f"case {row.case_id}: the prediction holds no foreground",
                "check the output is not empty by mistake (thresholds, label values)",
            )  # fmt: skip
            continue
        fix = _SCORING_FIXES.get(cls, "see the message")
        if cls == "label":
            fix = f"write only the label values of the task: {labels}"
        message = str(row.message).split(": ", 1)[-1]
        report.add(codes.get(cls, cls), "error", f"case {row.case_id}: {message}", fix)


def _dtype_findings(report: PreflightReport, predictions: dict[str, Path]) -> None:
    import SimpleITK as sitk

    from evaluator.ingest import ACCEPTED_FORMATS, accepted_suffix

    floats = []
    for case, path in predictions.items():
        suffix = accepted_suffix(path.name)
        if suffix is None:
            continue
        reader = sitk.ImageFileReader()
        reader.SetImageIO(ACCEPTED_FORMATS[suffix][1])
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            continue
        if reader.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
            floats.append(case)
    if floats:
        report.add(
            "dtype", "warning", f"floating-point predictions for {_cases_text(floats)}",
            "write integer labels (uint8): floats are accepted only when every value is whole",
        )  # fmt: skip


def _image_findings(report: PreflightReport, runner: Any, manifest: Manifest) -> None:
    """What the image itself declares: its user, its volumes."""
    from evaluator.runner.contract import container_user

    config: dict[str, Any] = {}
    try:
        config = runner.client.images.get(manifest.image_digest).attrs.get("Config") or {}
    except Exception:  # the image was found a moment ago; nothing to add if it is gone
        return
    user = str(config.get("User") or "")
    if user.split(":")[0] in ("", "root", "0"):
        uid = container_user()[0]
        report.add(
            "user", "warning", f"the image runs as root (USER {user or 'not set'})",
            f"ccbench never runs a container as root: it runs as uid {uid}, so files the image "
            "keeps in root-owned folders are read-only to it; add a user (useradd) and "
            "`USER user`, and own your working folder with it",
        )  # fmt: skip
    volumes = sorted(config.get("Volumes") or {})
    if volumes:
        report.add(
            "volume", "warning", f"the image declares VOLUME {', '.join(volumes[:4])}",
            f"each is given as an empty, capped /tmp-like folder ({manifest.resources.tmp_mb} "
            "MiB, counted against memory); ship files in the image elsewhere",
        )  # fmt: skip


def preflight(
    image: str,
    *,
    task: str,
    workspace: Workspace,
    interface: Interface = "batch",
    cases: int = 2,
    split: str = "all",
    data_root: Path | None = None,
    resources: Resources | None = None,
    command: Sequence[str] | None = None,
    backend: Any = None,
    progress: ProgressHook | None = None,
) -> PreflightReport:
    """Run ``image`` on the first ``cases`` cases of a split as ``ccbench run`` would; report.

    Parameters
    ----------
    image
        Image tag or id in the local engine.
    task, split, data_root
        Where the cases come from (phantoms work: ``ccbench data phantoms``).
    interface, resources, command
        As the entry's manifest would have them.
    cases
        How many cases to run (the first of the split, in order).
    backend
        A :class:`~evaluator.runner.docker_backend.DockerBackend` [default: connect].
    progress
        Container progress, as :func:`evaluator.runner.run.run_cases`.

    Returns
    -------
    PreflightReport
        ``.ok`` when the image would be scored.
    """
    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.registry import load_registry
    from evaluator.datasets.splits import resolve_split
    from evaluator.evaluate import evaluate_run
    from evaluator.runner.docker_backend import DockerBackend
    from evaluator.runner.run import run_cases
    from evaluator.store import Store

    runner = backend if backend is not None else DockerBackend()
    runner.record_writes = True
    spec = load_registry().task(task)
    res = resources or Resources()
    manifest = Manifest(
        name="preflight",
        image=image,
        image_digest=runner.image_id(image),
        tasks=(task,),
        interface=interface,
        resources=res,
        command=tuple(command) if command else None,
    )
    dataset = open_dataset(spec, workspace=workspace, data_root=data_root)
    ids = [c for c in resolve_split(spec, split, workspace=workspace, data_root=data_root)]
    ids = [c for c in ids if dataset.case(c).label is not None][: max(1, cases)]
    report = PreflightReport(image, task, interface, ids)
    _image_findings(report, runner, manifest)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    run_dir = workspace.root / "preflight" / f"{stamp}"
    try:
        outcome = run_cases(
            manifest,
            [dataset.case(c) for c in ids],
            task=spec,
            run_dir=run_dir,
            backend=runner,
            workspace=workspace,
            split=split,
            progress=progress,
        )
        report.runs = outcome.container_runs
        _container_findings(report, outcome.container_runs, res)
        _output_findings(
            report, outcome.case_errors, outcome.rejected, manifest=manifest, task=spec
        )
        _dtype_findings(report, outcome.predictions)
        store = f"sqlite:///{run_dir / 'preflight.sqlite'}"
        result = evaluate_run(
            task,
            split,
            run_dir / "predictions",
            workspace=workspace,
            store=store,
            run_name="preflight",
            out=run_dir,
            data_root=data_root,
            case_errors=outcome.case_errors,
            workers=1,
            only_cases=ids,
        )
        with Store.open(store) as db:
            errors = db.errors_frame(run_ids=[result.run.id])
        _scoring_findings(report, errors, spec)
        report.scored = dict(result.summary["mean_over_labels"])
    finally:
        runner.record_writes = False
        shutil.rmtree(run_dir, ignore_errors=True)
    return report
