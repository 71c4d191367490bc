"""The challenge definition file: tasks, phases, limits, what the public sees.

A challenge is one YAML file (like Codabench's competition YAML), read by ``ccbench challenge
init`` into the store; the server never reads it again, so editing the file changes nothing
until ``init --update``. Example::

    name: autopet-demo                 # letters, digits, _ . - (a workspace name)
    title: AutoPET lesion segmentation (demo)
    interface: batch                   # or grand-challenge: how images are run
    resources: {memory_mb: 4096, time_limit_s: 900}
    upload: {max_archive_mb: 4096, max_image_mb: 12288}
    phases:
      - name: sanity
        task: autopet-phantom
        split: all
        start: 2026-12-01T00:00:00Z
        end: 2027-01-31T23:59:59Z
        limits: {per_day: 5, total: 50}
        hidden: false                  # per-case results and logs shown to the team
      - name: final
        task: autopet
        split: test
        start: 2027-02-01T00:00:00Z
        end: 2027-02-14T23:59:59Z
        limits: {per_day: 1, total: 3}
        hidden: true                   # aggregates only; container logs never shown
        public_metrics: [dice, fn_volume_ml, fp_volume_ml]

Times are ISO 8601 with a zone (UTC when written with ``Z``); a phase accepts submissions from
``start`` (inclusive) to ``end`` (exclusive). A hidden phase shows the public and the teams only
run-level aggregates of ``public_metrics``; its container logs are never shown to a team, since
logs can carry test data.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from evaluator.errors import CCBenchError

__all__ = [
    "ChallengeError",
    "ChallengeSpec",
    "Limits",
    "PhaseSpec",
    "UploadLimits",
    "load_challenge",
]

#: A name that may become a file or URL path segment (as :func:`evaluator.workspace.check_name`).
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ChallengeError(CCBenchError):
    """A challenge definition, team, token or phase rule that does not hold."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Limits(_Frozen):
    """Submissions a team may make in a phase: per UTC day and in total (None: no limit)."""

    per_day: int | None = Field(default=None, ge=0)
    total: int | None = Field(default=None, ge=0)


class UploadLimits(_Frozen):
    """Largest upload (the ``docker save`` archive as sent) and largest loaded image, MB."""

    max_archive_mb: int = Field(default=4096, ge=1)
    max_image_mb: int = Field(default=12288, ge=1)


class PhaseSpec(_Frozen):
    """One phase: which task and split its submissions run on, when, and what is shown."""

    name: str = Field(pattern=_NAME)
    task: str
    split: str = "test"
    start: AwareDatetime
    end: AwareDatetime
    limits: Limits = Limits()
    hidden: bool = True
    public_metrics: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _ordered(self) -> PhaseSpec:
        if self.end <= self.start:
            raise ValueError(f"phase '{self.name}': end {self.end} is not after start {self.start}")
        return self

    def is_open(self, now: datetime) -> bool:
        """Whether the phase accepts submissions at ``now`` (an aware datetime)."""
        return self.start <= now < self.end


class ChallengeSpec(_Frozen):
    """A challenge: its phases, the interface and resources of every run, upload limits."""

    name: str = Field(pattern=_NAME)
    title: str = ""
    interface: Literal["batch", "grand-challenge"] = "batch"
    resources: dict[str, int | float | str] = Field(default_factory=dict)
    upload: UploadLimits = UploadLimits()
    phases: tuple[PhaseSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_phases(self) -> ChallengeSpec:
        from evaluator.errors import SubmissionError
        from evaluator.runner.contract import Resources, SandboxLimits, invalid_fields

        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError(f"phase names repeat: {names}")
        try:  # checked here, not when a team's submission runs (and is charged for it)
            SandboxLimits().check(Resources.model_validate(self.resources), entry=self.name)
        except ValidationError as err:
            raise ValueError(f"resources: {invalid_fields(err)}") from None
        except SubmissionError as err:
            raise ValueError(f"resources: {err}") from None
        return self

    def warnings(self) -> list[str]:
        """What an organiser may not mean: a hidden phase that names no public metrics, and a
        phase that is not hidden on the same task as a hidden one whose split may hold the
        hidden cases (its teams would read their per-case results and logs)."""
        out = []
        for phase in self.phases:
            if phase.hidden and not phase.public_metrics:
                out.append(
                    f"phase {phase.name} is hidden and names no public_metrics: the public "
                    "board shows the means of every metric of its task"
                )
            for other in self.phases:
                same = other.split == phase.split or phase.split == "all"
                if not phase.hidden and other.hidden and other.task == phase.task and same:
                    out.append(
                        f"phase {phase.name} is not hidden but its split '{phase.split}' holds "
                        f"the cases of hidden phase {other.name}: its teams would read their "
                        "per-case results and logs on them"
                    )
        return out

    def phase(self, name: str) -> PhaseSpec:
        """The phase called ``name``.

        Raises
        ------
        ChallengeError
            No such phase (the message lists the phases).
        """
        for p in self.phases:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.phases)
        raise ChallengeError(f"challenge '{self.name}' has no phase {name!r} (phases: {known})")


def load_challenge(path: str | Path) -> ChallengeSpec:
    """Read and check a challenge definition file.

    Every task must be in ``datasets.yaml`` and every public metric in the task's profile.

    Raises
    ------
    ChallengeError
        Naming the file and what is wrong.
    """
    from evaluator.datasets.registry import load_registry

    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        spec = ChallengeSpec.model_validate(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ChallengeError(f"{file}: cannot be read: {err}") from err
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ChallengeError(f"{file}: {where}: {first['msg']}") from err
    registry = load_registry()
    for phase in spec.phases:
        if phase.task not in registry.tasks:
            raise ChallengeError(f"{file}: phase '{phase.name}': unknown task '{phase.task}'")
        profile = registry.profile(registry.task(phase.task))
        unknown = [m for m in phase.public_metrics if m not in profile.metrics]
        if unknown:
            raise ChallengeError(
                f"{file}: phase '{phase.name}': public_metrics {unknown} are not scored on "
                f"task '{phase.task}' (its metrics: {', '.join(profile.metrics)})"
            )
    return spec
